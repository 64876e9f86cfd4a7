//! Signal syscalls. This milestone records dispositions and the mask;
//! delivery to handlers comes with the signals milestone (faults take the
//! default action meanwhile).

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::abi::{Errno, SysResult};
use crate::sentry::kernel::siginfo::{SigInfo, SI_TKILL, SI_USER};
use crate::sentry::kernel::signal as kernel_signal;
use crate::sentry::kernel::Task;

const SIG_BLOCK: u64 = 0;
const SIG_UNBLOCK: u64 = 1;
const SIG_SETMASK: u64 = 2;
/// SIGKILL and SIGSTOP can be neither caught nor blocked.
const UNBLOCKABLE: u64 = (1 << (libc::SIGKILL - 1)) | (1 << (libc::SIGSTOP - 1));

/// Implements rt_sigaction(2).
pub fn sys_rt_sigaction(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let [sig, act, oact, size, ..] = a;
    if size != 8 || !(1..=64).contains(&sig) {
        return Err(Errno::EINVAL);
    }
    let idx = sig as usize - 1;
    if act != 0 && (sig as i32 == libc::SIGKILL || sig as i32 == libc::SIGSTOP) {
        return Err(Errno::EINVAL);
    }
    let old = t.control.sigactions.lock().unwrap()[idx];
    if act != 0 {
        let mut raw = [0u8; 32];
        t.mm.copy_in(act, &mut raw)?;
        let mut new = [0u64; 4];
        for (i, w) in raw.chunks_exact(8).enumerate() {
            new[i] = u64::from_le_bytes(w.try_into().unwrap());
        }
        new[3] &= !UNBLOCKABLE;
        t.control.sigactions.lock().unwrap()[idx] = new;
    }
    if oact != 0 {
        let bytes: Vec<u8> = old.iter().flat_map(|w| w.to_le_bytes()).collect();
        t.mm.copy_out(oact, &bytes)?;
    }
    Ok(0)
}

/// Implements rt_sigprocmask(2).
pub fn sys_rt_sigprocmask(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let [how, set, oset, size, ..] = a;
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    let old = t.control.mask.load(Ordering::SeqCst);
    if set != 0 {
        let s = t.mm.read_u64(set)?;
        let new = match how {
            SIG_BLOCK => old | s,
            SIG_UNBLOCK => old & !s,
            SIG_SETMASK => s,
            _ => return Err(Errno::EINVAL),
        } & !UNBLOCKABLE;
        t.control.mask.store(new, Ordering::SeqCst);
    }
    if oset != 0 {
        t.mm.write_u64(oset, old)?;
    }
    Ok(0)
}

fn check_sig(sig: u64) -> SysResult<i32> {
    if sig > 64 {
        return Err(Errno::EINVAL);
    }
    Ok(sig as i32)
}

/// Implements kill(2).
pub fn sys_kill(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let pid = a[0] as i32;
    let sig = check_sig(a[1])?;
    let targets = match pid {
        p if p > 0 => t.ns.control(p).map(|c| vec![(p, c)]).ok_or(Errno::ESRCH)?,
        0 => t.ns.members(Some(t.ns.pgid(t.pid)?)),
        -1 => {
            t.ns.members(None)
                .into_iter()
                .filter(|(p, _)| *p != 1 && *p != t.pid)
                .collect()
        }
        p => t.ns.members(Some(-p)),
    };
    if targets.is_empty() {
        return Err(Errno::ESRCH);
    }
    // Only the processes the caller may signal; none of them: EPERM,
    // except for -1, which Linux reports as done all the same.
    let allowed: Vec<_> = targets
        .into_iter()
        .filter(|(p, c)| may_signal(t, *p, c, sig))
        .collect();
    if allowed.is_empty() && pid != -1 {
        return Err(Errno::EPERM);
    }
    if sig != 0 {
        let info = SigInfo::from_process(sig, SI_USER, t.pid, t.creds.uid);
        for (_, c) in allowed {
            kernel_signal::send_info(&c, info);
        }
    }
    Ok(0)
}

/// Whether the caller may send `sig` to process `pid` (kill(2)'s rule):
/// CAP_KILL, or its real or effective uid is the target's real or saved
/// uid; SIGCONT also within the caller's session.
fn may_signal(
    t: &Task,
    pid: i32,
    target: &crate::sentry::kernel::process::Control,
    sig: i32,
) -> bool {
    const CAP_KILL: u32 = 5;
    if t.creds.has_cap(CAP_KILL) {
        return true;
    }
    let theirs = target.view.get().creds;
    let ours = [t.creds.uid, t.creds.euid];
    if ours.contains(&theirs.uid) || ours.contains(&theirs.suid) {
        return true;
    }
    sig == libc::SIGCONT && t.ns.sid(pid).ok() == t.ns.sid(t.pid).ok()
}

/// Sends `sig` to thread `tid`, which must belong to process `tgid` when
/// one is given.
fn kill_thread(t: &mut Task, tgid: Option<i32>, tid: i32, sig: u64) -> SysResult<u64> {
    let sig = check_sig(sig)?;
    if tid <= 0 || tgid.is_some_and(|g| g <= 0) {
        return Err(Errno::EINVAL);
    }
    let (owner, control) = t.ns.thread(tid).ok_or(Errno::ESRCH)?;
    if tgid.is_some_and(|g| g != owner) {
        return Err(Errno::ESRCH);
    }
    if !may_signal(t, owner, &control, sig) {
        return Err(Errno::EPERM);
    }
    if sig != 0 {
        let info = SigInfo::from_process(sig, SI_TKILL, t.pid, t.creds.uid);
        kernel_signal::send_thread(&control, info);
    }
    Ok(0)
}

/// Reads the siginfo of rt_(tg)sigqueueinfo. A process may not pose as
/// the kernel or kill(2) when signalling another process (Linux's rule:
/// si_code must be negative, and not SI_TKILL).
fn queued_info(t: &mut Task, sig: i32, addr: u64, to_self: bool) -> SysResult<SigInfo> {
    let mut raw = [0u8; 128];
    t.mm.copy_in(addr, &mut raw)?;
    let info = SigInfo::from_guest(sig, raw);
    if !to_self && (info.code() >= 0 || info.code() == SI_TKILL) {
        return Err(Errno::EPERM);
    }
    Ok(info)
}

/// Implements rt_sigqueueinfo(2).
pub fn sys_rt_sigqueueinfo(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let sig = check_sig(a[1])?;
    let target = t.ns.control(a[0] as i32).ok_or(Errno::ESRCH)?;
    if !may_signal(t, a[0] as i32, &target, sig) {
        return Err(Errno::EPERM);
    }
    let info = queued_info(t, sig, a[2], a[0] as i32 == t.pid)?;
    if sig != 0 && !kernel_signal::send_info(&target, info) {
        return Err(Errno::EAGAIN);
    }
    Ok(0)
}

/// Implements rt_tgsigqueueinfo(2).
pub fn sys_rt_tgsigqueueinfo(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let sig = check_sig(a[2])?;
    let (tgid, tid) = (a[0] as i32, a[1] as i32);
    if tgid <= 0 || tid <= 0 {
        return Err(Errno::EINVAL);
    }
    let (owner, target) = t.ns.thread(tid).ok_or(Errno::ESRCH)?;
    if owner != tgid {
        return Err(Errno::ESRCH);
    }
    if !may_signal(t, owner, &target, sig) {
        return Err(Errno::EPERM);
    }
    let info = queued_info(t, sig, a[3], tgid == t.pid)?;
    if sig != 0 && !kernel_signal::send_thread(&target, info) {
        return Err(Errno::EAGAIN);
    }
    Ok(0)
}

/// Implements tgkill(2).
pub fn sys_tgkill(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    kill_thread(t, Some(a[0] as i32), a[1] as i32, a[2])
}

/// Implements tkill(2).
pub fn sys_tkill(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    kill_thread(t, None, a[0] as i32, a[1])
}

/// Implements rt_sigreturn(2).
pub fn sys_rt_sigreturn(t: &mut Task, _: [u64; 6]) -> SysResult<u64> {
    crate::sentry::kernel::sigframe::sigreturn(t)
}

/// Waits in the sentry until a signal can be taken (or the task is
/// killed); always EINTR, as sigsuspend and pause return.
fn wait_for_signal(t: &Task) -> SysResult<u64> {
    let (lock, cond) = &t.control.wake;
    let _blocked = crate::sentry::kernel::loadavg::blocked();
    let mut guard = lock.lock().unwrap();
    while !t.control.interrupted() {
        guard = cond
            .wait_timeout(guard, Duration::from_millis(100))
            .unwrap()
            .0;
    }
    Err(Errno::EINTR)
}

/// Implements rt_sigsuspend(2).
pub fn sys_rt_sigsuspend(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    if a[1] != 8 {
        return Err(Errno::EINVAL);
    }
    let mask = t.mm.read_u64(a[0])? & !UNBLOCKABLE;
    let old = t.control.mask.swap(mask, Ordering::SeqCst);
    t.saved_mask = Some(old);
    let r = wait_for_signal(t);
    // A handler frame takes the saved mask over; else restore it here.
    if t.control.deliverable() == 0 {
        if let Some(m) = t.saved_mask.take() {
            t.control.mask.store(m, Ordering::SeqCst);
        }
    }
    r
}

/// Implements pause(2).
pub fn sys_pause(t: &mut Task, _: [u64; 6]) -> SysResult<u64> {
    wait_for_signal(t)
}

/// Implements rt_sigpending(2).
pub fn sys_rt_sigpending(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    if a[1] > 8 {
        return Err(Errno::EINVAL);
    }
    let pending = t.control.all_pending() & t.control.mask.load(Ordering::SeqCst);
    t.mm.write_u64(a[0], pending).map(|_| 0)
}

/// Implements sigaltstack(2).
pub fn sys_sigaltstack(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let [ss, old, ..] = a;
    let on_stack = {
        let (base, _, size) = t.altstack;
        size != 0 && t.regs.rsp > base && t.regs.rsp <= base + size
    };
    if old != 0 {
        let mut b = [0u8; 24];
        b[..8].copy_from_slice(&t.altstack.0.to_le_bytes());
        let flags = if on_stack { 1 } else { t.altstack.1 };
        b[8..12].copy_from_slice(&(flags as u32).to_le_bytes());
        b[16..].copy_from_slice(&t.altstack.2.to_le_bytes());
        t.mm.copy_out(old, &b)?;
    }
    if ss != 0 {
        if on_stack {
            return Err(Errno::EPERM);
        }
        let sp = t.mm.read_u64(ss)?;
        let flags = t.mm.read_u64(ss + 8)? & 0xffff_ffff;
        let size = t.mm.read_u64(ss + 16)?;
        t.altstack = crate::sentry::kernel::sigframe::check_altstack(sp, flags, size)?;
    }
    Ok(0)
}

/// Implements rt_sigtimedwait(2): takes a pending signal of `set` without
/// running its handler; EAGAIN at the timeout, EINTR when another signal
/// is delivered first.
pub fn sys_rt_sigtimedwait(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let [set_addr, info, timeout, size, ..] = a;
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    let set = t.mm.read_u64(set_addr)? & !UNBLOCKABLE;
    let deadline = super::time::read_timeout(t, timeout)?;
    let (lock, cond) = &t.control.wake;
    // Asleep for the load average until this returns.
    let _blocked = crate::sentry::kernel::loadavg::blocked();
    let mut guard = lock.lock().unwrap();
    let sig = loop {
        if let Some(info) = t.control.take_pending(set) {
            break info;
        }
        if t.control.interrupted() {
            return Err(Errno::EINTR);
        }
        let now = std::time::Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return Err(Errno::EAGAIN);
        }
        let wait = deadline.map_or(Duration::from_millis(100), |d| {
            (d - now).min(Duration::from_millis(100))
        });
        guard = cond.wait_timeout(guard, wait).unwrap().0;
    };
    drop(guard);
    if info != 0 {
        t.mm.copy_out(info, &sig.0)?;
    }
    Ok(sig.signo() as u64)
}
