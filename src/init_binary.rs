//! The mini-init (source in `init/`), built by `build.rs` and embedded:
//! PID 1 of each container, it starts the command, reaps orphans, forwards
//! termination signals, and exits with the command's status.

/// The static x86-64 ELF executable of the mini-init.
pub static INIT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/sandboxd-init"));
