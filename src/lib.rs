//! sandboxd: a gVisor-class sandbox runtime. One binary plays every role,
//! chosen by argv[0] (see `main.rs`): the CLI/launcher, one gofer per
//! container (the only process that touches image files), and one sandbox
//! per pod that becomes the sentry, a user-space kernel that implements the
//! Linux system-call interface for guest code running under KVM.

pub mod abi;
pub mod cli;
pub mod control;
pub mod exit;
pub mod gofer;
pub mod image;
pub mod init_binary;
pub mod pod;
pub mod proto;
pub mod sandbox;
pub mod seccomp;
pub mod sentry;
pub mod state;
pub mod sys;
