//! `sandboxd kill POD [SIGNAL]`: signal a pod's containers.

use std::path::PathBuf;

use argh::FromArgs;

use super::pods::{exit_code, find, parse_signal, require, PodError};
use crate::control::client::{Client, ControlError};
use crate::control::{Request, Response};
use crate::state::Status;

/// Send a signal (default SIGTERM) to the first process of each container
/// of a running or paused pod, or to every process with --all.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "kill",
    help_triggers("-h", "--help", "help"),
    example = "{command_name} web",
    example = "{command_name} --all web KILL",
    note = "SIGNAL is a number (9) or a name (KILL, SIGKILL, sigkill). With the",
    note = "mini-init as PID 1 the signal is passed on to the container's command."
)]
pub struct KillCmd {
    /// signal every process of the container(s), not just the first
    #[argh(switch)]
    all: bool,

    /// only this container
    #[argh(option, short = 'c', arg_name = "NAME")]
    container: Option<String>,

    /// the state root (see `sandboxd list --help`)
    #[argh(option, arg_name = "DIR")]
    root: Option<PathBuf>,

    /// the pod: its id, a unique prefix of it, or its name
    #[argh(positional, arg_name = "POD")]
    pod: String,

    /// the signal (default TERM)
    #[argh(positional, arg_name = "SIGNAL", default = "String::from(\"TERM\")")]
    signal: String,
}

impl KillCmd {
    pub(super) fn execute(self) -> i32 {
        exit_code(self.kill())
    }

    fn kill(&self) -> Result<i32, PodError> {
        let signal = parse_signal(&self.signal).map_err(PodError::Usage)?;
        let (dir, meta) = find(&self.root, &self.pod)?;
        require(
            &meta,
            &[Status::Running, Status::Paused],
            "nothing to signal",
        )?;
        let req = Request::Signal {
            container: self.container.clone(),
            signal,
            all: self.all,
        };
        match Client::call(&dir.control_path(), &req)? {
            Response::Ok => Ok(0),
            other => Err(ControlError::unexpected(&other).into()),
        }
    }
}
