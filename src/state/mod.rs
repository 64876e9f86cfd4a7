//! Pods on disk: one directory per pod under the state root, so that
//! commands run later (`list`, `exec`, `kill`, `delete`, ...) find a pod
//! that another command started.
//!
//! ```text
//! <root>/                 /run/sandboxd as root, else $XDG_RUNTIME_DIR/sandboxd
//!   <id>/                 0700; id: 12 random hex digits
//!     meta.json           Meta, replaced atomically (temp file, fsync, rename)
//!     meta.lock           flock(2)ed around every read-modify-write
//!     control.sock        the sentry's control socket (bound by the launcher)
//!     log                 stdout/stderr of a detached pod
//! ```
//!
//! Readers never lock: a rename makes every version of meta.json whole.
//! Writers take `meta.lock` (exclusive), read, check the status
//! transition, write, and unlock; commands that must act on the pod in a
//! given status (pause, delete) hold the lock across the action too, so
//! nobody changes the status under them. Lock order: one pod's lock at a
//! time, never two.
#![forbid(unsafe_code)]

mod dir;
mod meta;
mod proc;
mod root;

pub use dir::{transition, Locked, PodDir};
pub use meta::{Meta, PodEvent, Status};
pub use proc::ProcRef;
pub use root::{Root, ROOT_VAR};

use std::io;
use std::path::PathBuf;

/// A failure of the state store; printed as one line.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("no state root: set XDG_RUNTIME_DIR or SANDBOXD_STATE_ROOT")]
    NoRoot,
    #[error("state root {}", .path.display())]
    CreateRoot {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("pod {0:?} does not exist")]
    NotFound(String),
    #[error("pod {arg:?} is ambiguous: it matches {}", .ids.join(", "))]
    Ambiguous { arg: String, ids: Vec<String> },
    #[error("{what} {}", .path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("parse {}", .path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("pod {id} is {from}: it cannot become {to}")]
    Transition {
        id: String,
        from: Status,
        to: Status,
    },
    #[error("control socket path {} is too long for a unix socket", .0.display())]
    SocketPath(PathBuf),
}

impl StateError {
    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> StateError {
        let path = path.into();
        move |source| StateError::Io { what, path, source }
    }
}
