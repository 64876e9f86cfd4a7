//! Time syscalls. The guest's clocks are the sentry's own clocks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::abi::{Errno, SysResult};
use crate::sentry::kernel::itimer::Timer;
use crate::sentry::kernel::siginfo::SigInfo;
use crate::sentry::kernel::signal as kernel_signal;
use crate::sentry::kernel::signal::current_interrupted;
use crate::sentry::kernel::Task;
use crate::sentry::vdso::COARSE_NS;

const TIMER_ABSTIME: u64 = 1;

/// Reads host clock `id` after checking it is a clock Linux has.
fn now(id: u64) -> SysResult<libc::timespec> {
    let id = match id as i32 {
        // The CPU clocks of the guest are those of the thread running it.
        libc::CLOCK_PROCESS_CPUTIME_ID | libc::CLOCK_THREAD_CPUTIME_ID => {
            libc::CLOCK_THREAD_CPUTIME_ID
        }
        c @ (libc::CLOCK_REALTIME
        | libc::CLOCK_MONOTONIC
        | libc::CLOCK_MONOTONIC_RAW
        | libc::CLOCK_REALTIME_COARSE
        | libc::CLOCK_MONOTONIC_COARSE
        | libc::CLOCK_BOOTTIME
        | libc::CLOCK_TAI) => c,
        _ => return Err(Errno::EINVAL),
    };
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `ts`.
    if unsafe { libc::clock_gettime(id, &mut ts) } != 0 {
        return Err(Errno::last());
    }
    Ok(ts)
}

/// Clock `id` now, as a duration since its epoch.
pub fn clock_now(id: i32) -> SysResult<Duration> {
    let ts = now(id as u64)?;
    Ok(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

fn ts_bytes(sec: i64, nsec: i64) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&sec.to_le_bytes());
    b[8..].copy_from_slice(&nsec.to_le_bytes());
    b
}

/// Reads a guest timespec: EINVAL for a negative time or nanoseconds
/// outside [0, 1e9).
pub(super) fn read_ts(t: &Task, addr: u64) -> SysResult<Duration> {
    let mut b = [0u8; 16];
    t.mm.copy_in(addr, &mut b)?;
    let sec = i64::from_le_bytes(b[..8].try_into().unwrap());
    let nsec = i64::from_le_bytes(b[8..].try_into().unwrap());
    if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
        return Err(Errno::EINVAL);
    }
    Ok(Duration::new(sec as u64, nsec as u32))
}

/// Reads a relative timeout timespec as a deadline. None (wait for ever)
/// for a null pointer, and for a time too far off to represent.
pub(super) fn read_timeout(t: &Task, addr: u64) -> SysResult<Option<Instant>> {
    if addr == 0 {
        return Ok(None);
    }
    Ok(Instant::now().checked_add(read_ts(t, addr)?))
}

/// Implements clock_gettime(2).
pub fn sys_clock_gettime(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let ts = now(a[0])?;
    t.mm.copy_out(a[1], &ts_bytes(ts.tv_sec, ts.tv_nsec))
        .map(|_| 0)
}

/// Implements clock_getres(2).
pub fn sys_clock_getres(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    now(a[0])?;
    let coarse = matches!(
        a[0] as i32,
        libc::CLOCK_REALTIME_COARSE | libc::CLOCK_MONOTONIC_COARSE
    );
    if a[1] != 0 {
        let res = if coarse { COARSE_NS as i64 } else { 1 };
        t.mm.copy_out(a[1], &ts_bytes(0, res))?;
    }
    Ok(0)
}

/// Implements gettimeofday(2).
pub fn sys_gettimeofday(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let ts = now(libc::CLOCK_REALTIME as u64)?;
    if a[0] != 0 {
        t.mm.copy_out(a[0], &ts_bytes(ts.tv_sec, ts.tv_nsec / 1000))?;
    }
    if a[1] != 0 {
        t.mm.copy_out(a[1], &[0u8; 8])?;
    }
    Ok(0)
}

/// Implements time(2).
pub fn sys_time(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let sec = now(libc::CLOCK_REALTIME as u64)?.tv_sec as u64;
    if a[0] != 0 {
        t.mm.write_u64(a[0], sec)?;
    }
    Ok(sec)
}

/// Sleeps for `d` unless a signal (or a kill) arrives first; returns the
/// time left when interrupted.
fn sleep(t: &Task, d: Duration) -> Option<Duration> {
    let end = std::time::Instant::now() + d;
    let (lock, cond) = &t.control.wake;
    // Asleep for the load average until this returns.
    let _blocked = crate::sentry::kernel::loadavg::blocked();
    let mut guard = lock.lock().unwrap();
    loop {
        let now = std::time::Instant::now();
        if now >= end {
            return None;
        }
        if current_interrupted() {
            return Some(end - now);
        }
        guard = cond
            .wait_timeout(guard, (end - now).min(Duration::from_millis(100)))
            .unwrap()
            .0;
    }
}

/// Writes the remaining time of an interrupted sleep to `rem` (if given)
/// and returns EINTR.
fn interrupted(t: &mut Task, rem: u64, left: Duration) -> SysResult<u64> {
    if rem != 0 {
        t.mm.copy_out(
            rem,
            &ts_bytes(left.as_secs() as i64, left.subsec_nanos() as i64),
        )?;
    }
    Err(Errno::EINTR)
}

/// Implements nanosleep(2).
pub fn sys_nanosleep(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let d = read_ts(t, a[0])?;
    match sleep(t, d) {
        None => Ok(0),
        Some(left) => interrupted(t, a[1], left),
    }
}

/// Implements clock_nanosleep(2).
pub fn sys_clock_nanosleep(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let clock = a[0];
    if matches!(clock as i32, libc::CLOCK_THREAD_CPUTIME_ID) {
        return Err(Errno::EINVAL);
    }
    let start = now(clock)?;
    let d = read_ts(t, a[2])?;
    let absolute = a[1] & TIMER_ABSTIME != 0;
    let d = if absolute {
        let cur = Duration::new(start.tv_sec as u64, start.tv_nsec as u32);
        d.saturating_sub(cur)
    } else {
        d
    };
    match sleep(t, d) {
        None => Ok(0),
        // An absolute sleep has no time left to report.
        Some(left) => interrupted(t, if absolute { 0 } else { a[3] }, left),
    }
}

const ITIMER_REAL: u64 = 0;

fn timeval(d: Duration) -> [u8; 16] {
    ts_bytes(d.as_secs() as i64, d.subsec_micros() as i64)
}

fn read_timeval(t: &mut Task, addr: u64) -> SysResult<Duration> {
    let sec = t.mm.read_u64(addr)? as i64;
    let usec = t.mm.read_u64(addr + 8)? as i64;
    if sec < 0 || !(0..1_000_000).contains(&usec) {
        return Err(Errno::EINVAL);
    }
    Ok(Duration::new(sec as u64, usec as u32 * 1000))
}

/// Implements alarm(2).
pub fn sys_alarm(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let (left, _) = t
        .real_timer
        .set(Duration::from_secs(a[0] as u32 as u64), Duration::ZERO);
    // Linux rounds a pending alarm's remaining time to the nearest second,
    // and reports at least one second while one is pending.
    let secs = (left.as_millis() as u64)
        .div_ceil(1000)
        .max(if left.is_zero() { 0 } else { 1 });
    Ok(secs)
}

/// Implements setitimer(2) for ITIMER_REAL; the CPU-time timers are not
/// supported yet.
pub fn sys_setitimer(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    if a[0] != ITIMER_REAL {
        return Err(t.unimplemented_option("setitimer", a[0]));
    }
    let (interval, value) = if a[1] == 0 {
        (Duration::ZERO, Duration::ZERO)
    } else {
        (read_timeval(t, a[1])?, read_timeval(t, a[1] + 16)?)
    };
    let (left, old_interval) = t.real_timer.set(value, interval);
    if a[2] != 0 {
        t.mm.copy_out(a[2], &[timeval(old_interval), timeval(left)].concat())?;
    }
    Ok(0)
}

/// Implements getitimer(2) for ITIMER_REAL.
pub fn sys_getitimer(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    if a[0] != ITIMER_REAL {
        return Err(t.unimplemented_option("getitimer", a[0]));
    }
    let (left, interval) = t.real_timer.get();
    t.mm.copy_out(a[1], &[timeval(interval), timeval(left)].concat())?;
    Ok(0)
}

const SIGEV_SIGNAL: i32 = 0;
const SIGEV_NONE: i32 = 1;
const SIGEV_THREAD_ID: i32 = 4;
/// Most POSIX timers per process (Linux bounds them by RLIMIT_SIGPENDING).
const MAX_TIMERS: usize = 4096;

/// Reads a `struct itimerspec` (interval, value).
pub(super) fn read_itimerspec(t: &mut Task, addr: u64) -> SysResult<(Duration, Duration)> {
    Ok((read_ts(t, addr)?, read_ts(t, addr + 16)?))
}

pub(super) fn itimerspec((left, interval): (Duration, Duration)) -> [u8; 32] {
    let ts = |d: Duration| ts_bytes(d.as_secs() as i64, d.subsec_nanos() as i64);
    let mut b = [0u8; 32];
    b[..16].copy_from_slice(&ts(interval));
    b[16..].copy_from_slice(&ts(left));
    b
}

/// Implements timer_create(2) on CLOCK_REALTIME, MONOTONIC, BOOTTIME and
/// TAI, notifying by a signal to the process (SIGEV_SIGNAL) or to one of
/// its threads (SIGEV_THREAD_ID), or not at all (SIGEV_NONE).
pub fn sys_timer_create(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let [clock, sevp, id_addr, ..] = a;
    let clock = clock as i32;
    match clock {
        libc::CLOCK_REALTIME | libc::CLOCK_MONOTONIC | libc::CLOCK_BOOTTIME | libc::CLOCK_TAI => {}
        libc::CLOCK_PROCESS_CPUTIME_ID | libc::CLOCK_THREAD_CPUTIME_ID => {
            return Err(t.unimplemented_option("timer_create clock", clock as u64));
        }
        _ => return Err(Errno::EINVAL),
    }
    let group = t.control.group.clone();
    let mut timers = group.timers.lock().unwrap();
    if timers.len() >= MAX_TIMERS {
        return Err(Errno::EAGAIN);
    }
    let id = (0..).find(|i| !timers.contains_key(i)).unwrap_or(0);
    // No sigevent: SIGALRM to the process, with the timer id as value.
    let (value, signo, notify, tid) = if sevp == 0 {
        (id as u64, libc::SIGALRM, SIGEV_SIGNAL, 0)
    } else {
        let mut raw = [0u8; 20];
        t.mm.copy_in(sevp, &mut raw)?;
        let word = |i: usize| i32::from_le_bytes(raw[i..i + 4].try_into().unwrap());
        let value = u64::from_le_bytes(raw[..8].try_into().unwrap());
        (value, word(8), word(12), word(16))
    };
    let fire: crate::sentry::kernel::itimer::Fire = match notify {
        SIGEV_NONE => Box::new(|_| true),
        SIGEV_SIGNAL | SIGEV_THREAD_ID => {
            if !(1..=64).contains(&signo) {
                return Err(Errno::EINVAL);
            }
            let target = if notify == SIGEV_THREAD_ID {
                match t.ns.thread(tid) {
                    Some((owner, c)) if owner == t.pid => Some(Arc::downgrade(&c)),
                    _ => return Err(Errno::EINVAL),
                }
            } else {
                None
            };
            let process = Arc::downgrade(&group);
            Box::new(move |overrun| {
                let info = SigInfo::timer(signo, id, overrun, value);
                match &target {
                    Some(thread) => thread
                        .upgrade()
                        .is_none_or(|c| kernel_signal::send_thread(&c, info)),
                    None => match process.upgrade().and_then(|g| g.threads().first().cloned()) {
                        Some(c) => kernel_signal::send_info(&c, info),
                        None => true,
                    },
                }
            })
        }
        _ => return Err(Errno::EINVAL),
    };
    t.mm.write_u32(id_addr, id as u32)?;
    timers.insert(id, (Timer::new(fire), clock));
    Ok(0)
}

/// Implements timer_settime(2) (TIMER_ABSTIME on the timer's clock).
pub fn sys_timer_settime(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let [id, flags, new, old, ..] = a;
    if flags & !TIMER_ABSTIME != 0 {
        return Err(Errno::EINVAL);
    }
    let (interval, value) = read_itimerspec(t, new)?;
    let group = t.control.group.clone();
    let timers = group.timers.lock().unwrap();
    let (timer, clock) = timers.get(&(id as i32)).ok_or(Errno::EINVAL)?;
    let at = if value.is_zero() {
        None
    } else if flags & TIMER_ABSTIME != 0 {
        let left = value.saturating_sub(clock_now(*clock)?);
        Some(Instant::now() + left)
    } else {
        Some(Instant::now() + value)
    };
    let previous = timer.set(at, interval);
    drop(timers);
    if old != 0 {
        t.mm.copy_out(old, &itimerspec(previous))?;
    }
    Ok(0)
}

/// Implements timer_gettime(2).
pub fn sys_timer_gettime(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let now = {
        let timers = t.control.group.timers.lock().unwrap();
        timers.get(&(a[0] as i32)).ok_or(Errno::EINVAL)?.0.get()
    };
    t.mm.copy_out(a[1], &itimerspec(now)).map(|_| 0)
}

/// Implements timer_getoverrun(2).
pub fn sys_timer_getoverrun(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let timers = t.control.group.timers.lock().unwrap();
    let (timer, _) = timers.get(&(a[0] as i32)).ok_or(Errno::EINVAL)?;
    Ok(timer.last_overrun() as u64)
}

/// Implements timer_delete(2).
pub fn sys_timer_delete(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let removed = t
        .control
        .group
        .timers
        .lock()
        .unwrap()
        .remove(&(a[0] as i32));
    removed.map(|_| 0).ok_or(Errno::EINVAL)
}
