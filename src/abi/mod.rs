//! The Linux x86-64 ABI as the guest sees it: errno values, syscall numbers,
//! and the binary layouts of the structures syscalls copy in and out.
//! Plain data only: no host calls happen here.
#![forbid(unsafe_code)]

pub mod errno;
pub mod sysno;
pub mod types;

pub use errno::{Errno, SysResult};
