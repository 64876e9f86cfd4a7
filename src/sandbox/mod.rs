//! Launcher side: starting the gofer and sandbox roles, and the roles' own
//! set-up (namespaces, pivot_root, capabilities, seccomp).
//! (Skeleton: the interface is fixed; the body is to be written.)

use std::path::PathBuf;

use crate::exit::ExitStatus;
use crate::pod::Pod;

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

/// Runs `pod` once in the foreground and returns how it ended.
pub fn run_pod(pod: &Pod, opts: &RunOptions) -> ExitStatus {
    let _ = (pod, opts);
    todo!()
}

/// Entry of the gofer role; returns the process exit code.
pub fn gofer_main() -> i32 {
    todo!()
}

/// Entry of the sandbox role; returns the process exit code.
pub fn sandbox_main() -> i32 {
    todo!()
}
