//! `sandboxd list`: the pods in the state root.

use std::path::PathBuf;

use argh::FromArgs;

use super::pods::{exit_code, root, utc, PodError};
use crate::state::{PodDir, Status};

/// List the pods: id, name, status, creation time and sandbox pid.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "list",
    help_triggers("-h", "--help", "help"),
    note = "A pod whose sandbox died is shown as stopped. Foreground runs appear while",
    note = "they run; one whose launcher was killed is removed from the list."
)]
pub struct ListCmd {
    /// print only the ids
    #[argh(switch, short = 'q')]
    quiet: bool,

    /// the state root (default: $SANDBOXD_STATE_ROOT, else /run/sandboxd as
    /// root, else $XDG_RUNTIME_DIR/sandboxd)
    #[argh(option, arg_name = "DIR")]
    root: Option<PathBuf>,
}

impl ListCmd {
    pub(super) fn execute(self) -> i32 {
        exit_code(self.list())
    }

    fn list(&self) -> Result<i32, PodError> {
        let pods = root(&self.root)?.list()?;
        if !self.quiet {
            println!(
                "{:<12}  {:<16}  {:<8}  {:<20}  {:>7}  EXIT",
                "ID", "NAME", "STATUS", "CREATED", "PID"
            );
        }
        for dir in pods {
            let Ok(meta) = dir.read() else { continue };
            let status = meta.effective_status();
            if !meta.detached && status == Status::Stopped {
                forget(&dir);
                continue;
            }
            if self.quiet {
                println!("{}", meta.id);
                continue;
            }
            let pid = meta.sandbox.map_or("-".into(), |p| p.pid.to_string());
            let pid = if status == Status::Stopped {
                "-".into()
            } else {
                pid
            };
            let exit = match (status, meta.exit_status) {
                (Status::Stopped, Some(s)) => s.to_string(),
                (Status::Stopped, None) => "?".into(),
                _ => "-".into(),
            };
            println!(
                "{:<12}  {:<16}  {:<8}  {:<20}  {:>7}  {exit}",
                meta.id,
                meta.name,
                status.name(),
                utc(meta.created),
                pid
            );
        }
        Ok(0)
    }
}

/// Removes the entry of a foreground run whose launcher is gone (killed
/// before it could clean up): nobody will ever `delete` it.
fn forget(dir: &PodDir) {
    if let Ok(lock) = dir.lock() {
        let stale = lock.read().is_ok_and(|m| {
            let launcher_alive = m.monitor.is_some_and(|p| p.alive());
            !m.detached && m.effective_status() == Status::Stopped && !launcher_alive
        });
        if stale {
            let _ = dir.remove();
        }
    }
}
