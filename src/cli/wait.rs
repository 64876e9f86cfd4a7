//! `sandboxd wait POD`: block until the pod stops; print its status.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use argh::FromArgs;

use super::pods::{exit_code, root, PodError};
use crate::state::{Meta, PodDir, Status};

/// How long a stopped sandbox's monitor may take to record the status.
const RECORD_GRACE: Duration = Duration::from_secs(5);

/// Wait until a pod has stopped, print its exit status and exit with it
/// (125 when it is unknown: the pod's monitor died with it).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "wait", help_triggers("-h", "--help", "help"))]
pub struct WaitCmd {
    /// the state root (see `sandboxd list --help`)
    #[argh(option, arg_name = "DIR")]
    root: Option<PathBuf>,

    /// the pod: its id, a unique prefix of it, or its name
    #[argh(positional, arg_name = "POD")]
    pod: String,
}

impl WaitCmd {
    pub(super) fn execute(self) -> i32 {
        exit_code(self.wait())
    }

    fn wait(&self) -> Result<i32, PodError> {
        let dir = root(&self.root)?.find(&self.pod)?;
        let meta = wait_stopped(&dir)?;
        match meta.exit_status {
            Some(s) => {
                println!("{s}");
                Ok(s)
            }
            None => {
                println!("unknown");
                Ok(125)
            }
        }
    }
}

/// Polls meta.json until the pod has stopped and its status is recorded
/// (or its monitor is gone too).
pub fn wait_stopped(dir: &PodDir) -> Result<Meta, PodError> {
    let mut stopped_at = None;
    loop {
        let meta = dir.read()?;
        if meta.status == Status::Stopped {
            return Ok(meta);
        }
        if meta.effective_status() == Status::Stopped {
            let monitor_alive = meta.monitor.is_some_and(|p| p.alive());
            let since = *stopped_at.get_or_insert_with(Instant::now);
            if !monitor_alive || since.elapsed() > RECORD_GRACE {
                // Read again: the monitor may have recorded the status
                // and exited since the read above.
                return Ok(Meta {
                    status: Status::Stopped,
                    ..dir.read()?
                });
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
