//! Event files: eventfd, timerfd, signalfd and memfd_create. Each makes
//! an anonymous file (see `vfs/eventfd.rs`, `timerfd.rs`, `signalfd.rs`,
//! `memfd.rs`) and installs it.

use std::sync::Arc;

use crate::abi::{Errno, SysResult};
use crate::sentry::kernel::Task;
use crate::sentry::vfs::eventfd::EventFd;
use crate::sentry::vfs::{FileOps, OpenFile, FD_CLOEXEC};

const O_NONBLOCK: u64 = libc::O_NONBLOCK as u64;
const O_CLOEXEC: u64 = libc::O_CLOEXEC as u64;

/// Installs `ops` as a new file opened with `access` (O_RDONLY, O_RDWR)
/// and O_NONBLOCK / O_CLOEXEC as `flags` says.
pub(super) fn install(t: &Task, ops: Arc<dyn FileOps>, access: u32, flags: u64) -> SysResult<u64> {
    let status = access | (flags & O_NONBLOCK) as u32;
    let fdflags = if flags & O_CLOEXEC != 0 {
        FD_CLOEXEC
    } else {
        0
    };
    Ok(t.fds.insert(OpenFile::new(ops, status), fdflags, 0)? as u64)
}

/// Implements eventfd2(2).
pub fn sys_eventfd2(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    const EFD_SEMAPHORE: u64 = 1;
    let flags = a[1];
    if flags & !(EFD_SEMAPHORE | O_NONBLOCK | O_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let ops = EventFd::new(a[0] as u32 as u64, flags & EFD_SEMAPHORE != 0);
    install(t, ops, libc::O_RDWR as u32, flags)
}

/// Implements eventfd(2).
pub fn sys_eventfd(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    sys_eventfd2(t, [a[0], 0, 0, 0, 0, 0])
}
