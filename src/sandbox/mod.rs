//! Launcher side: starting the gofer and sandbox roles, and the roles' own
//! set-up (namespaces, pivot_root, capabilities, seccomp).
//!
//! One binary, three roles chosen by argv[0] (see `main.rs`). The launcher
//! opens `/proc/self/exe` once and re-executes it with `execveat` for each
//! child role, in new mount/pid/ipc/uts/net namespaces (plus a user
//! namespace when not root), handing each child its fds by number:
//!
//! ```text
//! sandboxd-gofer   --container NAME --err-fd 3 --sock-fd 4 --root DIR
//!     fd 3: error pipe (write end), fd 4: its end of the SOCK_SEQPACKET pair
//! sandboxd-sandbox --err-fd 3 --spec-fd 4 --gofer-fds 5,6,...
//!     fd 3: error pipe, fd 4: sealed memfd with the SentrySpec JSON,
//!     fd 5..: the sentry's ends of the gofer sockets, in spec order
//! ```
//!
//! Both get stdio (0-2) and nothing else. Each reports on its error pipe
//! (`errpipe`): ready, or one line saying what failed; the launcher prints
//! `sandboxd: <line>` and exits 125.

mod args;
mod auto_platform;
mod errpipe;
mod gofer_role;
mod launch;
pub mod monitor;
mod sandbox_role;
mod setup;
mod spec;
#[cfg(test)]
mod tests;
pub mod track;

use std::path::PathBuf;

use crate::exit::ExitStatus;
use crate::pod::Pod;

pub use launch::LaunchError;
pub use monitor::start_detached;
pub use setup::SetupError;

/// argv[0] of the gofer role.
pub const GOFER_ROLE: &str = "sandboxd-gofer";
/// argv[0] of the sandbox role (which becomes the sentry).
pub const SANDBOX_ROLE: &str = "sandboxd-sandbox";

/// Options of one run that do not come from the pod file.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Print every guest syscall with its arguments and result.
    pub strace: bool,
    /// Write each role's log into this directory.
    pub debug_log: Option<PathBuf>,
    /// Overrides the pod's `platform`.
    pub platform: Option<String>,
    /// Overrides the image store location.
    pub store: Option<PathBuf>,
}

/// Runs `pod` once and returns how it ended; with `track`, records it in
/// its state directory and starts it through its control socket.
pub fn run_pod(pod: &Pod, opts: &RunOptions, track: Option<&track::Track>) -> ExitStatus {
    launch::run(pod, opts, track)
}

/// Entry of the gofer role; returns the process exit code.
pub fn gofer_main() -> i32 {
    gofer_role::main()
}

/// Entry of the sandbox role; returns the process exit code.
pub fn sandbox_main() -> i32 {
    sandbox_role::main()
}
