//! `sandboxd ps POD`: the processes of a pod, as its sentry sees them.

use std::path::PathBuf;

use argh::FromArgs;

use super::pods::{exit_code, find, require, PodError};
use crate::control::client::{Client, ControlError};
use crate::control::{Request, Response};
use crate::state::Status;

/// List the processes of every container of a running pod (pids as the
/// containers see them: one namespace per container, or the pod's with
/// "pid": "pod").
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "ps", help_triggers("-h", "--help", "help"))]
pub struct PsCmd {
    /// print one JSON object per process
    #[argh(switch)]
    json: bool,

    /// the state root (see `sandboxd list --help`)
    #[argh(option, arg_name = "DIR")]
    root: Option<PathBuf>,

    /// the pod: its id, a unique prefix of it, or its name
    #[argh(positional, arg_name = "POD")]
    pod: String,
}

impl PsCmd {
    pub(super) fn execute(self) -> i32 {
        exit_code(self.ps())
    }

    fn ps(&self) -> Result<i32, PodError> {
        let (dir, meta) = find(&self.root, &self.pod)?;
        let live = [Status::Created, Status::Running, Status::Paused];
        require(&meta, &live, "it has no processes")?;
        let procs = match Client::call(&dir.control_path(), &Request::Ps)? {
            Response::Ps { processes } => processes,
            other => return Err(ControlError::unexpected(&other).into()),
        };
        if self.json {
            for p in procs {
                println!("{}", serde_json::to_string(&p).unwrap_or_default());
            }
            return Ok(0);
        }
        println!(
            "{:<12}  {:>5}  {:>5}  {:<8}  {:>4}  {:>9}  COMMAND",
            "CONTAINER", "PID", "PPID", "STATE", "THR", "TIME"
        );
        for p in procs {
            let secs = p.cpu_ns as f64 / 1e9;
            println!(
                "{:<12}  {:>5}  {:>5}  {:<8}  {:>4}  {:>8.2}s  {}",
                p.container, p.pid, p.ppid, p.state, p.threads, secs, p.command
            );
        }
        Ok(0)
    }
}
