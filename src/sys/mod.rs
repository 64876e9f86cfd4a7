//! Thin safe wrappers over libc for the process plumbing: fds (pipes,
//! socketpairs, memfds), spawning a role in new namespaces, mounts and
//! pivot_root, capabilities, signals and wait statuses.
//!
//! Every raw resource has one owner (`OwnedFd`); raw fd numbers appear only
//! at the re-exec boundary (`spawn`). The wrappers return `std::io::Result`;
//! callers add the context (which path, which role) in their own error enum.

pub mod caps;
pub mod clock;
pub mod fd;
pub mod fs;
pub mod mount;
pub mod process;
pub mod signal;
pub mod spawn;
pub mod term;
pub mod unix;
