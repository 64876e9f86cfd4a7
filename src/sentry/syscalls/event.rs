//! Event files: eventfd, timerfd, signalfd and memfd_create. Each makes
//! an anonymous file (see `vfs/eventfd.rs`, `timerfd.rs`, `signalfd.rs`,
//! `memfd.rs`) and installs it.

use std::sync::Arc;
use std::time::Instant;

use crate::abi::{Errno, SysResult};
use crate::sentry::kernel::Task;
use crate::sentry::vfs::eventfd::EventFd;
use crate::sentry::vfs::memfd::{MemFd, F_SEAL_EXEC, F_SEAL_SEAL};
use crate::sentry::vfs::signalfd::SignalFd;
use crate::sentry::vfs::timerfd::TimerFd;
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
    Ok(t.fds
        .insert(OpenFile::new(ops, status), fdflags, 0, t.nofile())? as u64)
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

const TFD_TIMER_ABSTIME: u64 = 1;
/// Asks for ECANCELED when CLOCK_REALTIME is set. The guest cannot set
/// the clock, so from inside the sandbox it is never set: accepted.
const TFD_TIMER_CANCEL_ON_SET: u64 = 2;
const CLOCK_REALTIME_ALARM: i32 = 8;
const CLOCK_BOOTTIME_ALARM: i32 = 9;
const CAP_WAKE_ALARM: u32 = 35;

/// Implements timerfd_create(2) on CLOCK_REALTIME, MONOTONIC and BOOTTIME
/// (the _ALARM clocks act as their base clock: nothing here suspends).
pub fn sys_timerfd_create(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let (clock, flags) = (a[0] as i32, a[1]);
    if flags & !(O_NONBLOCK | O_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let clock = match clock {
        libc::CLOCK_REALTIME | libc::CLOCK_MONOTONIC | libc::CLOCK_BOOTTIME => clock,
        CLOCK_REALTIME_ALARM | CLOCK_BOOTTIME_ALARM if !t.creds.has_cap(CAP_WAKE_ALARM) => {
            return Err(Errno::EPERM)
        }
        CLOCK_REALTIME_ALARM => libc::CLOCK_REALTIME,
        CLOCK_BOOTTIME_ALARM => libc::CLOCK_BOOTTIME,
        _ => return Err(Errno::EINVAL),
    };
    install(t, TimerFd::new(clock), libc::O_RDWR as u32, flags)
}

fn timerfd(t: &Task, fd: u64) -> SysResult<Arc<OpenFile>> {
    let file = t.fds.get(fd as i32)?;
    match file.ops.as_any().and_then(|a| a.downcast_ref::<TimerFd>()) {
        Some(_) => Ok(file),
        None => Err(Errno::EINVAL),
    }
}

fn as_timerfd(file: &OpenFile) -> &TimerFd {
    file.ops
        .as_any()
        .and_then(|a| a.downcast_ref::<TimerFd>())
        .expect("checked by timerfd()")
}

/// Implements timerfd_settime(2).
pub fn sys_timerfd_settime(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let [fd, flags, new, old, ..] = a;
    if flags & !(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET) != 0 {
        return Err(Errno::EINVAL);
    }
    let file = timerfd(t, fd)?;
    let tfd = as_timerfd(&file);
    let (interval, value) = super::time::read_itimerspec(t, new)?;
    let at = if value.is_zero() {
        None
    } else if flags & TFD_TIMER_ABSTIME != 0 {
        let left = value.saturating_sub(super::time::clock_now(tfd.clock)?);
        Some(Instant::now() + left)
    } else {
        Instant::now().checked_add(value)
    };
    let previous = tfd.set(at, interval);
    if old != 0 {
        t.mm.copy_out(old, &super::time::itimerspec(previous))?;
    }
    Ok(0)
}

/// Implements timerfd_gettime(2).
pub fn sys_timerfd_gettime(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let file = timerfd(t, a[0])?;
    let now = as_timerfd(&file).get();
    t.mm.copy_out(a[1], &super::time::itimerspec(now))
        .map(|_| 0)
}

/// SIGKILL and SIGSTOP cannot be read from a signalfd.
const UNBLOCKABLE: u64 = (1 << (libc::SIGKILL - 1)) | (1 << (libc::SIGSTOP - 1));

/// Implements signalfd4(2): a new signalfd (fd -1) or a new mask for an
/// existing one.
pub fn sys_signalfd4(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let [fd, mask_addr, size, flags, ..] = a;
    if size != 8 || flags & !(O_NONBLOCK | O_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let mask = t.mm.read_u64(mask_addr)? & !UNBLOCKABLE;
    if fd as i32 == -1 {
        return install(t, SignalFd::new(mask), libc::O_RDWR as u32, flags);
    }
    let file = t.fds.get(fd as i32)?;
    let sfd = file.ops.as_any().and_then(|a| a.downcast_ref::<SignalFd>());
    sfd.ok_or(Errno::EINVAL)?.set_mask(mask);
    Ok(fd as i32 as u64)
}

/// Implements signalfd(2).
pub fn sys_signalfd(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    sys_signalfd4(t, [a[0], a[1], a[2], 0, 0, 0])
}

const MFD_CLOEXEC: u64 = 0x1;
const MFD_ALLOW_SEALING: u64 = 0x2;
const MFD_HUGETLB: u64 = 0x4;
const MFD_NOEXEC_SEAL: u64 = 0x8;
const MFD_EXEC: u64 = 0x10;
/// Longest memfd name (NAME_MAX less "memfd:").
const MFD_NAME_MAX: usize = 249;

/// Implements memfd_create(2) (no huge pages).
pub fn sys_memfd_create(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let flags = a[1];
    if flags & MFD_HUGETLB != 0 {
        return Err(t.unimplemented_option("memfd_create", MFD_HUGETLB));
    }
    let known = MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL | MFD_EXEC;
    if flags & !known != 0 || flags & (MFD_NOEXEC_SEAL | MFD_EXEC) == MFD_NOEXEC_SEAL | MFD_EXEC {
        return Err(Errno::EINVAL);
    }
    let name = t.mm.read_cstr(a[0], MFD_NAME_MAX + 1)?;
    if name.len() > MFD_NAME_MAX {
        return Err(Errno::EINVAL);
    }
    let (seals, perm) = if flags & MFD_NOEXEC_SEAL != 0 {
        (F_SEAL_EXEC, 0o666)
    } else if flags & MFD_ALLOW_SEALING != 0 {
        (0, 0o777)
    } else {
        (F_SEAL_SEAL, 0o777)
    };
    let file = MemFd::new(t.k.memory.clone(), name, seals, perm);
    let cloexec = if flags & MFD_CLOEXEC != 0 {
        O_CLOEXEC
    } else {
        0
    };
    install(
        t,
        file,
        libc::O_RDWR as u32 | libc::O_LARGEFILE as u32,
        cloexec,
    )
}

/// fcntl(2) F_ADD_SEALS and F_GET_SEALS (memfds only, else EINVAL).
pub(super) fn fcntl_seals(file: &OpenFile, cmd: i32, arg: u64) -> SysResult<u64> {
    let memfd = MemFd::of(file.ops.as_ref()).ok_or(Errno::EINVAL)?;
    if cmd == libc::F_GET_SEALS {
        return Ok(memfd.seals() as u64);
    }
    if !file.writable() {
        return Err(Errno::EPERM);
    }
    memfd.add_seals(arg as u32).map(|_| 0)
}
