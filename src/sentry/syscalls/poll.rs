//! poll, ppoll, select, pselect6: wait until descriptors are ready, a
//! timeout passes, or a signal arrives, sleeping on the task's waiter
//! (registered on each watched file's wait queue; signals wake it too)
//! rather than spinning.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crate::abi::{Errno, SysResult};
use crate::sentry::kernel::signal::current_interrupted;
use crate::sentry::kernel::Task;
use crate::sentry::vfs::poll::*;
use crate::sentry::vfs::waitq::{Listener, Watch};

/// Longest sleep between readiness checks while a file without a wait
/// queue (stdio) is watched.
pub(super) const RECHECK: Duration = Duration::from_millis(20);
/// Longest sleep otherwise, to notice a kill.
pub(super) const RECHECK_KILL: Duration = Duration::from_millis(100);
const SELECT_IN: u16 = POLLIN | POLLRDNORM | POLLHUP | POLLERR;
const SELECT_OUT: u16 = POLLOUT | POLLWRNORM | POLLERR;
const SELECT_EX: u16 = POLLPRI;

/// Ready events of fd `fd` among `want`; POLLNVAL for a closed fd.
fn ready(t: &Task, fd: i32, want: u16) -> u16 {
    match t.fds.get(fd) {
        Ok(f) => f.ops.poll(want | POLLERR | POLLHUP),
        Err(_) => POLLNVAL,
    }
}

/// Registers the task's waiter on the queue of each watched file, for
/// `want` events; also says whether some file has no queue (it must then
/// be re-checked every RECHECK).
pub(super) fn watch_files(t: &Task, fds: impl Iterator<Item = (i32, u16)>) -> (Vec<Watch>, bool) {
    let waiter: Weak<dyn Listener> = Arc::downgrade(&t.control.waiter) as Weak<dyn Listener>;
    let mut watches = Vec::new();
    let mut unqueued = false;
    for (fd, want) in fds {
        let Ok(file) = t.fds.get(fd) else { continue };
        match file.ops.waitq() {
            Some(q) => watches.push(q.watch(waiter.clone(), want)),
            None => unqueued = true,
        }
    }
    (watches, unqueued)
}

/// Checks `check` until it reports something, the deadline passes or a
/// signal arrives (EINTR), sleeping on the task's waiter between checks.
fn wait_until(
    t: &Task,
    deadline: Option<Instant>,
    watched: impl Iterator<Item = (i32, u16)>,
    mut check: impl FnMut(&Task) -> usize,
) -> SysResult<usize> {
    let (_watches, unqueued) = watch_files(t, watched);
    let max = if unqueued { RECHECK } else { RECHECK_KILL };
    let waiter = t.control.waiter.clone();
    loop {
        let seen = waiter.generation();
        let n = check(t);
        if n > 0 {
            return Ok(n);
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return Ok(0);
        }
        if current_interrupted() {
            return Err(Errno::EINTR);
        }
        let left = deadline.map_or(max, |d| (d - now).min(max));
        waiter.wait(seen, left);
    }
}

fn poll_fds(t: &mut Task, addr: u64, nfds: u64, deadline: Option<Instant>) -> SysResult<u64> {
    // More than RLIMIT_NOFILE allows the caller: EINVAL, as Linux.
    if nfds > t.nofile() as u64 {
        return Err(Errno::EINVAL);
    }
    let mut raw = vec![0u8; nfds as usize * 8];
    t.mm.copy_in(addr, &mut raw)?;
    let entries: Vec<(i32, u16)> = raw
        .chunks_exact(8)
        .map(|c| {
            (
                i32::from_le_bytes(c[..4].try_into().unwrap()),
                u16::from_le_bytes([c[4], c[5]]),
            )
        })
        .collect();
    let mut revents = vec![0u16; entries.len()];
    let watched = entries.iter().copied().filter(|&(fd, _)| fd >= 0);
    let n = wait_until(t, deadline, watched, |t| {
        let mut n = 0;
        for (i, &(fd, want)) in entries.iter().enumerate() {
            revents[i] = if fd < 0 {
                0
            } else {
                ready(t, fd, want) & (want | POLLERR | POLLHUP | POLLNVAL)
            };
            n += (revents[i] != 0) as usize;
        }
        n
    })?;
    for (i, r) in revents.iter().enumerate() {
        raw[i * 8 + 6..i * 8 + 8].copy_from_slice(&r.to_le_bytes());
    }
    t.mm.copy_out(addr, &raw)?;
    Ok(n as u64)
}

fn deadline_after(d: Duration) -> Option<Instant> {
    Instant::now().checked_add(d)
}

/// Runs `f` with the signal mask at `mask_addr` (if any) in place, as
/// ppoll and pselect6 do atomically.
pub(super) fn with_mask<T>(
    t: &mut Task,
    mask_addr: u64,
    f: impl FnOnce(&mut Task) -> SysResult<T>,
) -> SysResult<T> {
    if mask_addr == 0 {
        return f(t);
    }
    let unblockable = (1u64 << (libc::SIGKILL - 1)) | (1u64 << (libc::SIGSTOP - 1));
    let mask = t.mm.read_u64(mask_addr)? & !unblockable;
    let old = t.control.mask.swap(mask, Ordering::SeqCst);
    let r = f(t);
    if matches!(r, Err(Errno::EINTR)) {
        // The handler runs with the temporary mask; restore it after.
        t.saved_mask = Some(old);
    } else {
        t.control.mask.store(old, Ordering::SeqCst);
    }
    r
}

/// Implements poll(2).
pub fn sys_poll(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let timeout = a[2] as i32;
    let deadline = if timeout < 0 {
        None
    } else {
        deadline_after(Duration::from_millis(timeout as u64))
    };
    poll_fds(t, a[0], a[1], deadline)
}

/// Implements ppoll(2).
pub fn sys_ppoll(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    if a[3] != 0 && a[4] != 8 {
        return Err(Errno::EINVAL);
    }
    let deadline = super::time::read_timeout(t, a[2])?;
    with_mask(t, a[3], |t| poll_fds(t, a[0], a[1], deadline))
}

/// The three fd sets of select, as bitmaps of `nfds` bits.
fn read_set(t: &mut Task, addr: u64, nfds: usize) -> SysResult<Option<Vec<u8>>> {
    if addr == 0 {
        return Ok(None);
    }
    let mut b = vec![0u8; nfds.div_ceil(64) * 8];
    t.mm.copy_in(addr, &mut b)?;
    Ok(Some(b))
}

fn do_select(t: &mut Task, nfds: u64, sets: [u64; 3], deadline: Option<Instant>) -> SysResult<u64> {
    if nfds > 1024 * 1024 {
        return Err(Errno::EINVAL);
    }
    let n = nfds as usize;
    let inputs = [
        read_set(t, sets[0], n)?,
        read_set(t, sets[1], n)?,
        read_set(t, sets[2], n)?,
    ];
    let masks = [SELECT_IN, SELECT_OUT, SELECT_EX];
    for fd in 0..n {
        let wanted = inputs
            .iter()
            .any(|s| s.as_ref().is_some_and(|b| b[fd / 8] & (1 << (fd % 8)) != 0));
        if wanted && t.fds.get(fd as i32).is_err() {
            return Err(Errno::EBADF);
        }
    }
    let mut outputs: [Option<Vec<u8>>; 3] = [None, None, None];
    let watched = (0..n).filter_map(|fd| {
        let want = (0..3)
            .filter(|&k| {
                inputs[k]
                    .as_ref()
                    .is_some_and(|b| b[fd / 8] & (1 << (fd % 8)) != 0)
            })
            .fold(0, |w, k| w | masks[k]);
        (want != 0).then_some((fd as i32, want))
    });
    let watched: Vec<(i32, u16)> = watched.collect();
    let count = wait_until(t, deadline, watched.into_iter(), |t| {
        let mut count = 0;
        for (k, set) in inputs.iter().enumerate() {
            let Some(set) = set else { continue };
            let mut out = vec![0u8; set.len()];
            for fd in (0..n).filter(|fd| set[fd / 8] & (1 << (fd % 8)) != 0) {
                if ready(t, fd as i32, masks[k]) & masks[k] != 0 {
                    out[fd / 8] |= 1 << (fd % 8);
                    count += 1;
                }
            }
            outputs[k] = Some(out);
        }
        count
    })?;
    for (k, out) in outputs.iter().enumerate() {
        if let Some(out) = out {
            t.mm.copy_out(sets[k], out)?;
        } else if let Some(set) = &inputs[k] {
            t.mm.copy_out(sets[k], &vec![0u8; set.len()])?;
        }
    }
    Ok(count as u64)
}

/// Implements select(2).
pub fn sys_select(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let deadline = if a[4] == 0 {
        None
    } else {
        let sec = t.mm.read_u64(a[4])? as i64;
        let usec = t.mm.read_u64(a[4] + 8)? as i64;
        if sec < 0 || !(0..1_000_000).contains(&usec) {
            return Err(Errno::EINVAL);
        }
        deadline_after(Duration::new(sec as u64, usec as u32 * 1000))
    };
    do_select(t, a[0], [a[1], a[2], a[3]], deadline)
}

/// Implements pselect6(2).
pub fn sys_pselect6(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let deadline = super::time::read_timeout(t, a[4])?;
    let mask_addr = if a[5] == 0 {
        0
    } else {
        let ptr = t.mm.read_u64(a[5])?;
        let size = t.mm.read_u64(a[5] + 8)?;
        if ptr != 0 && size != 8 {
            return Err(Errno::EINVAL);
        }
        ptr
    };
    with_mask(t, mask_addr, |t| {
        do_select(t, a[0], [a[1], a[2], a[3]], deadline)
    })
}
