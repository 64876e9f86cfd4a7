//! `sandboxd delete POD`: remove a stopped pod (or kill and remove a
//! running one with --force), leaving nothing behind.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use argh::FromArgs;

use super::pods::{exit_code, require, root, PodError};
use crate::state::{Meta, ProcRef, Status};

/// How long delete waits for the pod's processes to go.
const GONE_TIMEOUT: Duration = Duration::from_secs(5);

/// Remove a stopped pod's state (its directory, with the log). A pod that
/// still runs is refused unless --force, which kills it first.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "delete", help_triggers("-h", "--help", "help"))]
pub struct DeleteCmd {
    /// kill the pod first if it still runs (SIGKILL to its sandbox)
    #[argh(switch, short = 'f')]
    force: bool,

    /// the state root (see `sandboxd list --help`)
    #[argh(option, arg_name = "DIR")]
    root: Option<PathBuf>,

    /// the pod: its id, a unique prefix of it, or its name
    #[argh(positional, arg_name = "POD")]
    pod: String,
}

impl DeleteCmd {
    pub(super) fn execute(self) -> i32 {
        exit_code(self.delete())
    }

    fn delete(&self) -> Result<i32, PodError> {
        let dir = root(&self.root)?.find(&self.pod)?;
        let lock = dir.lock()?;
        let meta = lock.read()?;
        let real = Meta {
            status: meta.effective_status(),
            ..meta.clone()
        };
        if !self.force {
            require(
                &real,
                &[Status::Stopped],
                "stop it first, or delete --force",
            )?;
        }
        if let Some(sandbox) = meta.sandbox {
            sandbox.kill(libc::SIGKILL);
            wait_gone(&[sandbox]);
        }
        dir.remove()?;
        drop(lock);
        // The monitor records the end, finds the pod gone and exits; the
        // gofers die with it. Whatever is left after that is killed.
        let rest: Vec<ProcRef> = meta.monitor.iter().chain(&meta.gofers).copied().collect();
        // A foreground launcher outlives its pod by its own cleanup only.
        let ours = std::process::id() as i32;
        let rest: Vec<ProcRef> = rest.into_iter().filter(|p| p.pid != ours).collect();
        if !wait_gone(&rest) {
            rest.iter().for_each(|p| p.kill(libc::SIGKILL));
            wait_gone(&rest);
        }
        Ok(0)
    }
}

/// Waits until none of `procs` runs; false on timeout.
fn wait_gone(procs: &[ProcRef]) -> bool {
    let start = Instant::now();
    while procs.iter().any(ProcRef::alive) {
        if start.elapsed() > GONE_TIMEOUT {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}
