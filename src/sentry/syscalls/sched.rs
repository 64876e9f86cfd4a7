//! The scheduling-policy syscalls, for what the sentry schedules by:
//! every guest thread is SCHED_OTHER at static priority 0, sharing the
//! guest's CPUs in time slices (`CpuGate`). The queries tell
//! exactly that; asking for SCHED_OTHER at priority 0 changes nothing
//! and succeeds, as on Linux. Other policies (batch, idle, real time) are
//! not implemented: logged once and refused (EINVAL), never accepted
//! without effect.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::abi::{Errno, SysResult};
use crate::sentry::kernel::process::Control;
use crate::sentry::kernel::Task;

const SCHED_OTHER: u64 = 0;
const SCHED_FIFO: u64 = 1;
const SCHED_RR: u64 = 2;
const SCHED_BATCH: u64 = 3;
const SCHED_IDLE: u64 = 5;
const SCHED_DEADLINE: u64 = 6;
/// May be or'ed into a policy.
const SCHED_RESET_ON_FORK: u64 = 0x4000_0000;

/// The thread `pid` (0: the caller) of the caller's pid namespace: ESRCH
/// if there is none, EINVAL for a negative pid.
fn target(t: &Task, pid: u64) -> SysResult<Arc<Control>> {
    let pid = pid as i32;
    if pid < 0 {
        return Err(Errno::EINVAL);
    }
    if pid == 0 || pid == t.pid {
        return Ok(t.control.clone());
    }
    t.ns.control(pid).ok_or(Errno::ESRCH)
}

fn check_target(t: &Task, pid: u64) -> SysResult<()> {
    target(t, pid).map(|_| ())
}

/// Implements sched_getscheduler(2).
pub fn sys_sched_getscheduler(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let reset = target(t, a[0])?.sched_reset_on_fork.load(Ordering::Relaxed);
    Ok(SCHED_OTHER | if reset { SCHED_RESET_ON_FORK } else { 0 })
}

/// Implements sched_getparam(2): priority 0.
pub fn sys_sched_getparam(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    if a[1] == 0 {
        return Err(Errno::EINVAL);
    }
    check_target(t, a[0])?;
    t.mm.write_u32(a[1], 0)?;
    Ok(0)
}

/// The (min, max) static priority of `policy`; EINVAL for an unknown one.
fn priority_range(policy: u64) -> SysResult<(u32, u32)> {
    match policy {
        SCHED_FIFO | SCHED_RR => Ok((1, 99)),
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE | SCHED_DEADLINE => Ok((0, 0)),
        _ => Err(Errno::EINVAL),
    }
}

/// Implements sched_get_priority_max(2).
pub fn sys_sched_get_priority_max(_t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    Ok(priority_range(a[0])?.1 as u64)
}

/// Implements sched_get_priority_min(2).
pub fn sys_sched_get_priority_min(_t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    Ok(priority_range(a[0])?.0 as u64)
}

/// Sets `policy` at `priority` for `pid`: only what is already so, and
/// SCHED_RESET_ON_FORK as `policy` says unless `keep_reset`
/// (sched_setparam keeps it).
fn set(t: &Task, pid: u64, policy: u64, priority: u32, keep_reset: bool) -> SysResult<u64> {
    let base = policy & !SCHED_RESET_ON_FORK;
    let (min, max) = match base {
        SCHED_DEADLINE => return Err(Errno::EINVAL),
        _ => priority_range(base)?,
    };
    if !(min..=max).contains(&priority) {
        return Err(Errno::EINVAL);
    }
    let who = target(t, pid)?;
    if base != SCHED_OTHER {
        return Err(t.unimplemented_option("sched_setscheduler", base));
    }
    if !keep_reset {
        let reset = policy & SCHED_RESET_ON_FORK != 0;
        who.sched_reset_on_fork.store(reset, Ordering::Relaxed);
    }
    Ok(0)
}

/// Implements sched_setscheduler(2).
pub fn sys_sched_setscheduler(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    if a[2] == 0 || (a[0] as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    let priority = t.mm.read_u32(a[2])?;
    set(t, a[0], a[1], priority, false)
}

/// Implements sched_setparam(2) (the policy stays SCHED_OTHER).
pub fn sys_sched_setparam(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    if a[1] == 0 || (a[0] as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    let priority = t.mm.read_u32(a[1])?;
    set(t, a[0], SCHED_OTHER, priority, true)
}

/// Implements sched_rr_get_interval(2): 0, as Linux (6.x) answers for a
/// SCHED_OTHER thread, which has no round-robin quantum.
pub fn sys_sched_rr_get_interval(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    check_target(t, a[0])?;
    t.mm.copy_out(a[1], &[0u8; 16])?;
    Ok(0)
}
