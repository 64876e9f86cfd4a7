//! Launcher side: starting the gofer and sandbox roles. (Skeleton: to be written.)

/// argv[0] of the gofer role.
pub const GOFER_ROLE: &str = "sandboxd-gofer";
/// argv[0] of the sandbox role (which becomes the sentry).
pub const SANDBOX_ROLE: &str = "sandboxd-sandbox";

/// Entry of the gofer role; returns the process exit code.
pub fn gofer_main() -> i32 {
    todo!()
}

/// Entry of the sandbox role; returns the process exit code.
pub fn sandbox_main() -> i32 {
    todo!()
}
