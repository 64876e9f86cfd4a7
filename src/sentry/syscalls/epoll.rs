//! epoll_create(1), epoll_ctl, epoll_wait, epoll_pwait, epoll_pwait2.
//! The interest and ready lists live in `vfs/epoll.rs`; a wait sleeps on
//! the task's waiter, registered on the epoll's queue (and woken by
//! signals).

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::event::install;
use super::poll::{with_mask, RECHECK, RECHECK_KILL};
use crate::abi::{Errno, SysResult};
use crate::sentry::kernel::signal::current_interrupted;
use crate::sentry::kernel::Task;
use crate::sentry::vfs::epoll::{Epoll, Op};
use crate::sentry::vfs::poll::POLLIN;
use crate::sentry::vfs::waitq::Listener;

/// Most events one wait may return (Linux: INT_MAX / sizeof(epoll_event)).
const MAX_EVENTS: u64 = (i32::MAX / 12) as u64;
/// Size of `struct epoll_event` (packed on x86-64).
const EVENT_SIZE: usize = 12;

/// Implements epoll_create1(2).
pub fn sys_epoll_create1(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    if a[0] & !(libc::EPOLL_CLOEXEC as u64) != 0 {
        return Err(Errno::EINVAL);
    }
    install(t, Epoll::new(), libc::O_RDWR as u32, a[0])
}

/// Implements epoll_create(2): the size hint only has to be positive.
pub fn sys_epoll_create(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    if a[0] as i32 <= 0 {
        return Err(Errno::EINVAL);
    }
    sys_epoll_create1(t, [0; 6])
}

/// Implements epoll_ctl(2).
pub fn sys_epoll_ctl(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let [epfd, op, fd, event, ..] = a;
    let (epfd, fd) = (epfd as i32, fd as i32);
    let epfile = t.fds.get(epfd)?;
    let file = t.fds.get(fd)?;
    let op = match op as i32 {
        libc::EPOLL_CTL_ADD => Op::Add,
        libc::EPOLL_CTL_MOD => Op::Mod,
        libc::EPOLL_CTL_DEL => Op::Del,
        _ => return Err(Errno::EINVAL),
    };
    let (events, data) = if op == Op::Del {
        (0, 0)
    } else {
        let mut raw = [0u8; EVENT_SIZE];
        t.mm.copy_in(event, &mut raw)?;
        let events = u32::from_le_bytes(raw[..4].try_into().unwrap());
        (events, u64::from_le_bytes(raw[4..].try_into().unwrap()))
    };
    if !file.ops.epollable() {
        return Err(Errno::EPERM);
    }
    let ep = Epoll::of(&epfile).ok_or(Errno::EINVAL)?;
    if epfd == fd {
        return Err(Errno::EINVAL);
    }
    ep.ctl(op, fd, &file, events, data).map(|_| 0)
}

/// Waits for events on `epfd` until `deadline` (None: forever) and copies
/// them to `addr`.
fn wait(t: &mut Task, epfd: i32, addr: u64, max: u64, deadline: Option<Instant>) -> SysResult<u64> {
    if max == 0 || max > MAX_EVENTS {
        return Err(Errno::EINVAL);
    }
    let file = t.fds.get(epfd)?;
    let ep = Epoll::of(&file).ok_or(Errno::EINVAL)?;
    let waiter = t.control.waiter.clone();
    let _watch = ep
        .queue()
        .watch(Arc::downgrade(&waiter) as Weak<dyn Listener>, POLLIN);
    let events = loop {
        let seen = waiter.generation();
        let events = ep.collect(max as usize);
        if !events.is_empty() {
            break events;
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return Ok(0);
        }
        if current_interrupted() {
            return Err(Errno::EINTR);
        }
        let recheck = if ep.has_unqueued() {
            RECHECK
        } else {
            RECHECK_KILL
        };
        waiter.wait(seen, deadline.map_or(recheck, |d| (d - now).min(recheck)));
    };
    let mut raw = Vec::with_capacity(events.len() * EVENT_SIZE);
    for (ev, data) in &events {
        raw.extend_from_slice(&ev.to_le_bytes());
        raw.extend_from_slice(&data.to_le_bytes());
    }
    t.mm.copy_out(addr, &raw)?;
    Ok(events.len() as u64)
}

/// A millisecond timeout: negative waits forever.
fn deadline_ms(ms: i32) -> Option<Instant> {
    (ms >= 0)
        .then(|| Instant::now().checked_add(Duration::from_millis(ms as u64)))
        .flatten()
}

/// Implements epoll_wait(2).
pub fn sys_epoll_wait(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    wait(
        t,
        a[0] as i32,
        a[1],
        a[2] as i32 as i64 as u64,
        deadline_ms(a[3] as i32),
    )
}

/// Reads the signal mask argument of epoll_pwait(2)/epoll_pwait2(2).
fn check_sigset(mask: u64, size: u64) -> SysResult<()> {
    if mask != 0 && size != 8 {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// Implements epoll_pwait(2).
pub fn sys_epoll_pwait(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    check_sigset(a[4], a[5])?;
    let deadline = deadline_ms(a[3] as i32);
    let max = a[2] as i32 as i64 as u64;
    with_mask(t, a[4], |t| wait(t, a[0] as i32, a[1], max, deadline))
}

/// Implements epoll_pwait2(2): the timeout is a timespec (NULL: forever).
pub fn sys_epoll_pwait2(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    check_sigset(a[4], a[5])?;
    let deadline = super::time::read_timeout(t, a[3])?;
    let max = a[2] as i32 as i64 as u64;
    with_mask(t, a[4], |t| wait(t, a[0] as i32, a[1], max, deadline))
}
