//! `sandboxd pause POD` / `sandboxd resume POD`.

use std::path::PathBuf;

use argh::FromArgs;

use super::pods::{exit_code, require, root, PodError};
use crate::control::client::{Client, ControlError};
use crate::control::{Request, Response};
use crate::state::Status;

/// Stop every guest thread of a running pod: no guest code runs until
/// `resume`. Guest clocks keep going: after resume the guest sees the time
/// that passed, and its timers that expired meanwhile fire at once.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "pause", help_triggers("-h", "--help", "help"))]
pub struct PauseCmd {
    /// the state root (see `sandboxd list --help`)
    #[argh(option, arg_name = "DIR")]
    root: Option<PathBuf>,

    /// the pod: its id, a unique prefix of it, or its name
    #[argh(positional, arg_name = "POD")]
    pod: String,
}

/// Let the guest threads of a paused pod run again.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "resume", help_triggers("-h", "--help", "help"))]
pub struct ResumeCmd {
    /// the state root (see `sandboxd list --help`)
    #[argh(option, arg_name = "DIR")]
    root: Option<PathBuf>,

    /// the pod: its id, a unique prefix of it, or its name
    #[argh(positional, arg_name = "POD")]
    pod: String,
}

impl PauseCmd {
    pub(super) fn execute(self) -> i32 {
        let r = switch(&self.root, &self.pod, Status::Running, Status::Paused);
        exit_code(r)
    }
}

impl ResumeCmd {
    pub(super) fn execute(self) -> i32 {
        let r = switch(&self.root, &self.pod, Status::Paused, Status::Running);
        exit_code(r)
    }
}

/// Moves the pod from `from` to `to`, holding its lock across the request
/// so that no other command changes its status meanwhile.
fn switch(
    root_opt: &Option<PathBuf>,
    pod: &str,
    from: Status,
    to: Status,
) -> Result<i32, PodError> {
    let dir = root(root_opt)?.find(pod)?;
    let lock = dir.lock()?;
    let mut meta = lock.read()?;
    let real = meta.effective_status();
    let why = if to == Status::Paused {
        "only a running pod can be paused"
    } else {
        "only a paused pod can be resumed"
    };
    require(
        &crate::state::Meta {
            status: real,
            ..meta.clone()
        },
        &[from],
        why,
    )?;
    let req = if to == Status::Paused {
        Request::Pause
    } else {
        Request::Resume
    };
    match Client::call(&dir.control_path(), &req)? {
        Response::Ok => {}
        other => return Err(ControlError::unexpected(&other).into()),
    }
    crate::state::transition(&mut meta, to)?;
    lock.write(&meta)?;
    Ok(0)
}
