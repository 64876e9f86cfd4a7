//! `sandboxd logs POD [CONTAINER]`: what a detached pod printed.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::time::Duration;

use argh::FromArgs;

use super::pods::{exit_code, find, PodError};
use crate::state::Status;

/// Print the output (stdout and stderr) of a detached pod. A pod with
/// several containers has each line prefixed with "[container] ".
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "logs", help_triggers("-h", "--help", "help"))]
pub struct LogsCmd {
    /// keep printing new output until the pod stops
    #[argh(switch, short = 'f')]
    follow: bool,

    /// the state root (see `sandboxd list --help`)
    #[argh(option, arg_name = "DIR")]
    root: Option<PathBuf>,

    /// the pod: its id, a unique prefix of it, or its name
    #[argh(positional, arg_name = "POD")]
    pod: String,

    /// only this container's lines (pods with several containers)
    #[argh(positional, arg_name = "CONTAINER")]
    container: Option<String>,
}

impl LogsCmd {
    pub(super) fn execute(self) -> i32 {
        exit_code(self.logs())
    }

    fn logs(&self) -> Result<i32, PodError> {
        let (dir, meta) = find(&self.root, &self.pod)?;
        if !meta.detached {
            return Err(PodError::Usage(format!(
                "pod {} runs in the foreground: its output goes to its terminal",
                meta.id
            )));
        }
        if let Some(c) = &self.container {
            if !meta.containers.contains(c) {
                return Err(PodError::Usage(format!(
                    "pod {} has no container {c:?}",
                    meta.id
                )));
            }
        }
        let prefix = match &self.container {
            Some(c) if meta.containers.len() > 1 => Some(format!("[{c}] ")),
            _ => None,
        };
        let path = dir.log_path();
        let read_err = |source| PodError::Read {
            path: path.clone(),
            source,
        };
        let mut file = std::fs::File::open(&path).map_err(read_err)?;
        let mut pending = Vec::new();
        let mut pos = 0u64;
        loop {
            let mut chunk = Vec::new();
            file.seek(SeekFrom::Start(pos)).map_err(read_err)?;
            file.read_to_end(&mut chunk).map_err(read_err)?;
            pos += chunk.len() as u64;
            pending.extend_from_slice(&chunk);
            emit(&mut pending, prefix.as_deref());
            if !self.follow {
                break;
            }
            let stopped = dir
                .read()
                .map_or(true, |m| m.effective_status() == Status::Stopped);
            if stopped && chunk.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if !pending.is_empty() {
            pending.push(b'\n');
            emit(&mut pending, prefix.as_deref());
        }
        Ok(0)
    }
}

/// Prints the complete lines of `pending` (those starting with `prefix`
/// when given) and keeps the unfinished rest.
fn emit(pending: &mut Vec<u8>, prefix: Option<&str>) {
    let Some(end) = pending.iter().rposition(|&b| b == b'\n') else {
        return;
    };
    let rest = pending.split_off(end + 1);
    let mut out = std::io::stdout().lock();
    match prefix {
        None => {
            let _ = out.write_all(pending);
        }
        Some(p) => {
            for line in pending.split_inclusive(|&b| b == b'\n') {
                if let Some(l) = line.strip_prefix(p.as_bytes()) {
                    let _ = out.write_all(l);
                }
            }
        }
    }
    let _ = out.flush();
    *pending = rest;
}
