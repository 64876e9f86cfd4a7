//! Process syscalls: identity, exit, limits, and per-process settings.

use crate::abi::{Errno, SysResult};
use crate::sentry::kernel::{loadavg, Task};
use crate::sentry::mm::USER_TOP;

const ARCH_SET_GS: u64 = 0x1001;
const ARCH_SET_FS: u64 = 0x1002;
const ARCH_GET_FS: u64 = 0x1003;
const ARCH_GET_GS: u64 = 0x1004;
/// Largest getrandom(2) request served at once (Linux: 32 MiB - 1).
const RANDOM_CHUNK: usize = 1 << 20;
/// The kernel release the guest sees.
pub const RELEASE: &str = "6.6.0-sandboxd";

/// Implements getpid(2).
pub fn sys_getpid(t: &mut Task, _: [u64; 6]) -> SysResult<u64> {
    Ok(t.pid as u64)
}

/// Implements gettid(2).
pub fn sys_gettid(t: &mut Task, _: [u64; 6]) -> SysResult<u64> {
    Ok(t.tid as u64)
}

/// Implements getppid(2).
pub fn sys_getppid(t: &mut Task, _: [u64; 6]) -> SysResult<u64> {
    Ok(t.ns.parent(t.pid) as u64)
}

/// Implements getpgrp(2).
pub fn sys_getpgrp(t: &mut Task, _: [u64; 6]) -> SysResult<u64> {
    Ok(t.ns.pgid(t.pid)? as u64)
}

/// Implements getuid(2).
pub fn sys_getuid(t: &mut Task, _: [u64; 6]) -> SysResult<u64> {
    Ok(t.creds.uid as u64)
}

/// Implements geteuid(2).
pub fn sys_geteuid(t: &mut Task, _: [u64; 6]) -> SysResult<u64> {
    Ok(t.creds.euid as u64)
}

/// Implements getgid(2).
pub fn sys_getgid(t: &mut Task, _: [u64; 6]) -> SysResult<u64> {
    Ok(t.creds.gid as u64)
}

/// Implements getegid(2).
pub fn sys_getegid(t: &mut Task, _: [u64; 6]) -> SysResult<u64> {
    Ok(t.creds.egid as u64)
}

/// Implements set_tid_address(2).
pub fn sys_set_tid_address(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    t.clear_child_tid = a[0];
    Ok(t.tid as u64)
}

/// Implements arch_prctl(2) for the FS and GS bases.
pub fn sys_arch_prctl(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    match a[0] {
        ARCH_SET_FS | ARCH_SET_GS if a[1] >= USER_TOP => Err(Errno::EPERM),
        ARCH_SET_FS => {
            t.regs.fs_base = a[1];
            Ok(0)
        }
        ARCH_SET_GS => {
            t.regs.gs_base = a[1];
            Ok(0)
        }
        ARCH_GET_FS => t.mm.write_u64(a[1], t.regs.fs_base).map(|_| 0),
        ARCH_GET_GS => t.mm.write_u64(a[1], t.regs.gs_base).map(|_| 0),
        _ => Err(Errno::EINVAL),
    }
}

fn utsname_field(s: &str) -> [u8; 65] {
    let mut f = [0u8; 65];
    let n = s.len().min(64);
    f[..n].copy_from_slice(&s.as_bytes()[..n]);
    f
}

/// Implements uname(2).
pub fn sys_uname(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let (host, domain) = (t.k.hostname(), t.k.domainname());
    let fields = [
        "Linux",
        host.as_str(),
        RELEASE,
        "#1 SMP PREEMPT_DYNAMIC sandboxd",
        "x86_64",
        domain.as_str(),
    ];
    let buf: Vec<u8> = fields.iter().flat_map(|f| utsname_field(f)).collect();
    t.mm.copy_out(a[0], &buf).map(|_| 0)
}

/// Implements sethostname(2) and, with `domain`, setdomainname(2): the
/// pod's UTS names, seen by all its containers. CAP_SYS_ADMIN is needed.
fn set_uts(t: &mut Task, a: [u64; 6], domain: bool) -> SysResult<u64> {
    const CAP_SYS_ADMIN: u32 = 21;
    let len = a[1] as i64;
    if !(0..=64).contains(&len) {
        return Err(Errno::EINVAL);
    }
    if !t.creds.has_cap(CAP_SYS_ADMIN) {
        return Err(Errno::EPERM);
    }
    let mut name = vec![0u8; len as usize];
    t.mm.copy_in(a[0], &mut name)?;
    // Linux keeps the bytes as given, up to a NUL.
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    let name = String::from_utf8_lossy(&name[..end]).into_owned();
    t.k.set_uts(domain, name);
    Ok(0)
}

/// Implements sethostname(2).
pub fn sys_sethostname(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    set_uts(t, a, false)
}

/// Implements setdomainname(2).
pub fn sys_setdomainname(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    set_uts(t, a, true)
}

/// Implements umask(2).
pub fn sys_umask(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let old = t.umask;
    t.umask = a[0] as u32 & 0o777;
    Ok(old as u64)
}

/// Implements sched_yield(2).
pub fn sys_sched_yield(_t: &mut Task, _: [u64; 6]) -> SysResult<u64> {
    std::thread::yield_now();
    Ok(0)
}

/// Implements prlimit64(2) for the calling process.
pub fn sys_prlimit64(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let [pid, res, new, old, ..] = a;
    if pid != 0 && pid as i32 != t.pid {
        return Err(Errno::ESRCH);
    }
    let slot = t.rlimits.get(res as usize).copied().ok_or(Errno::EINVAL)?;
    if old != 0 {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&slot.0.to_le_bytes());
        b[8..].copy_from_slice(&slot.1.to_le_bytes());
        t.mm.copy_out(old, &b)?;
    }
    if new != 0 {
        let cur = t.mm.read_u64(new)?;
        let max = t.mm.read_u64(new + 8)?;
        if cur > max {
            return Err(Errno::EINVAL);
        }
        if max > slot.1 && t.creds.euid != 0 {
            return Err(Errno::EPERM);
        }
        if res == libc::RLIMIT_NOFILE as u64 && max > crate::sentry::vfs::MAX_FDS as u64 {
            // Above /proc/sys/fs/nr_open.
            return Err(Errno::EPERM);
        }
        t.rlimits[res as usize] = (cur, max);
        if res == libc::RLIMIT_STACK as u64 {
            t.mm.lock().stack_limit = cur;
        }
    }
    Ok(0)
}

/// Implements getcpu(2): the guest CPU (of `resources.cpus`) the host CPU
/// running this thread maps to, on NUMA node 0.
pub fn sys_getcpu(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    // SAFETY: sched_getcpu has no preconditions.
    let host = unsafe { libc::sched_getcpu() }.max(0) as usize;
    if a[0] != 0 {
        t.mm.write_u32(a[0], (host % t.k.cpus()) as u32)?;
    }
    if a[1] != 0 {
        t.mm.write_u32(a[1], 0)?;
    }
    Ok(0)
}

/// Implements setrlimit(2).
pub fn sys_setrlimit(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    sys_prlimit64(t, [0, a[0], a[1], 0, 0, 0])
}

/// Implements getrlimit(2).
pub fn sys_getrlimit(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    sys_prlimit64(t, [0, a[0], 0, a[1], 0, 0])
}

/// A `struct rusage` with CPU times `(user, system)` in ns and the peak
/// resident size in KiB.
pub fn rusage((user, system): (u64, u64), maxrss_kib: u64) -> [u8; 144] {
    let mut b = [0u8; 144];
    for (i, ns) in [user, system].into_iter().enumerate() {
        let sec = ns / 1_000_000_000;
        let usec = ns % 1_000_000_000 / 1000;
        b[i * 16..i * 16 + 8].copy_from_slice(&sec.to_le_bytes());
        b[i * 16 + 8..i * 16 + 16].copy_from_slice(&usec.to_le_bytes());
    }
    b[32..40].copy_from_slice(&maxrss_kib.to_le_bytes());
    b
}

const RUSAGE_SELF: i32 = 0;
const RUSAGE_CHILDREN: i32 = -1;
const RUSAGE_THREAD: i32 = 1;

/// Implements getrusage(2): CPU times (guest code as user time, the
/// sentry's work for the syscalls as system time) and the resident size.
pub fn sys_getrusage(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let group = &t.control.group;
    let resident_kib = t.mm.lock().resident_pages() * 4;
    let b = match a[0] as i32 {
        RUSAGE_SELF => rusage(group.times(), resident_kib),
        RUSAGE_CHILDREN => rusage(group.child_times.get(), 0),
        RUSAGE_THREAD => rusage(t.control.cpu_times(), resident_kib),
        _ => return Err(Errno::EINVAL),
    };
    t.mm.copy_out(a[1], &b).map(|_| 0)
}

/// Clock ticks per second of times(2) (USER_HZ).
const USER_HZ: u64 = 100;

/// Implements times(2).
pub fn sys_times(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let ticks = |ns: u64| ns / (1_000_000_000 / USER_HZ);
    if a[0] != 0 {
        let (u, s) = t.control.group.times();
        let (cu, cs) = t.control.group.child_times.get();
        let mut b = [0u8; 32];
        for (i, v) in [u, s, cu, cs].into_iter().enumerate() {
            b[i * 8..i * 8 + 8].copy_from_slice(&ticks(v).to_le_bytes());
        }
        t.mm.copy_out(a[0], &b)?;
    }
    // Ticks since an arbitrary point: the sandbox's start.
    Ok(ticks(t.k.boot.elapsed().as_nanos() as u64))
}

/// Bits of fraction in sysinfo's loads (SI_LOAD_SHIFT).
const SI_LOAD_SHIFT: u32 = 16;

/// Implements sysinfo(2).
pub fn sys_sysinfo(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let mut b = [0u8; 112];
    let total = t.k.memory.size();
    let free = total.saturating_sub(t.k.memory.used_bytes());
    b[0..8].copy_from_slice(&t.k.boot.elapsed().as_secs().to_le_bytes());
    // The load averages of /proc/loadavg, with 16 bits of fraction.
    for (i, load) in t.k.load.averages().into_iter().enumerate() {
        let si = load << (SI_LOAD_SHIFT - loadavg::FSHIFT);
        b[8 + i * 8..16 + i * 8].copy_from_slice(&si.to_le_bytes());
    }
    b[32..40].copy_from_slice(&total.to_le_bytes());
    b[40..48].copy_from_slice(&free.to_le_bytes());
    // procs: the pod's tasks, as /proc/loadavg counts them.
    let procs = t.k.load.tasks().min(u16::MAX as usize) as u16;
    b[80..82].copy_from_slice(&procs.to_le_bytes());
    b[104..108].copy_from_slice(&1u32.to_le_bytes());
    t.mm.copy_out(a[0], &b).map(|_| 0)
}

/// Implements getrandom(2).
pub fn sys_getrandom(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    if a[2] & !7 != 0 {
        return Err(Errno::EINVAL);
    }
    let mut buf = vec![0u8; (a[1] as usize).min(RANDOM_CHUNK)];
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: getrandom writes at most the given length into `buf`.
        let n = unsafe {
            libc::getrandom(
                buf[done..].as_mut_ptr() as *mut libc::c_void,
                buf.len() - done,
                0,
            )
        };
        if n < 0 {
            return Err(Errno::last());
        }
        done += n as usize;
    }
    t.mm.copy_out(a[0], &buf)?;
    Ok(buf.len() as u64)
}

/// Implements prctl(2) for the thread name; other options are not
/// supported yet and fail with EINVAL, as Linux does for unknown ones.
pub fn sys_prctl(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    match a[0] as i32 {
        libc::PR_SET_NAME => {
            let mut name = [0u8; 16];
            t.mm.copy_in(a[1], &mut name)?;
            let end = name.iter().position(|&b| b == 0).unwrap_or(15);
            t.comm = [0; 16];
            t.comm[..end].copy_from_slice(&name[..end]);
            Ok(0)
        }
        libc::PR_GET_NAME => t.mm.copy_out(a[1], &t.comm).map(|_| 0),
        libc::PR_SET_PDEATHSIG => {
            if a[1] > 64 {
                return Err(Errno::EINVAL);
            }
            t.ns.set_pdeathsig(t.pid, Some(a[1] as i32));
            Ok(0)
        }
        libc::PR_GET_PDEATHSIG => {
            let sig = t.ns.set_pdeathsig(t.pid, None);
            t.mm.write_u32(a[1], sig as u32).map(|_| 0)
        }
        libc::PR_SET_CHILD_SUBREAPER => {
            t.ns.set_subreaper(t.pid, Some(a[1] != 0));
            Ok(0)
        }
        libc::PR_GET_CHILD_SUBREAPER => {
            let on = t.ns.set_subreaper(t.pid, None);
            t.mm.write_u32(a[1], on as u32).map(|_| 0)
        }
        libc::PR_SET_NO_NEW_PRIVS => {
            if a[1] != 1 || a[2] != 0 || a[3] != 0 || a[4] != 0 {
                return Err(Errno::EINVAL);
            }
            t.creds.no_new_privs = true;
            Ok(0)
        }
        libc::PR_GET_NO_NEW_PRIVS => Ok(t.creds.no_new_privs as u64),
        libc::PR_SET_KEEPCAPS => {
            if a[1] > 1 {
                return Err(Errno::EINVAL);
            }
            t.creds.keep_caps = a[1] == 1;
            Ok(0)
        }
        libc::PR_GET_KEEPCAPS => Ok(t.creds.keep_caps as u64),
        // Every process may dump core here (there is no core dump).
        libc::PR_GET_DUMPABLE => Ok(1),
        libc::PR_CAPBSET_READ => {
            if a[1] > 40 {
                return Err(Errno::EINVAL);
            }
            Ok(1)
        }
        _ => Err(t.unimplemented_option("prctl", a[0])),
    }
}

/// Size of `struct robust_list_head`.
const ROBUST_LIST_HEAD_SIZE: u64 = 24;

/// Implements set_robust_list(2): records the head; the list is walked
/// when the thread exits.
pub fn sys_set_robust_list(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    if a[1] != ROBUST_LIST_HEAD_SIZE {
        return Err(Errno::EINVAL);
    }
    t.robust_list = a[0];
    Ok(0)
}

/// Implements get_robust_list(2) for the calling thread.
pub fn sys_get_robust_list(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    if a[0] != 0 && a[0] as i32 != t.tid {
        // Another thread's list: only its address is known here.
        return Err(Errno::EPERM);
    }
    t.mm.write_u64(a[1], t.robust_list)?;
    t.mm.write_u64(a[2], ROBUST_LIST_HEAD_SIZE)?;
    Ok(0)
}

/// Implements setpgid(2).
pub fn sys_setpgid(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    t.ns.setpgid(t.pid, a[0] as i32, a[1] as i32).map(|_| 0)
}

fn pid_or_self(t: &Task, pid: u64) -> i32 {
    if pid as i32 == 0 {
        t.pid
    } else {
        pid as i32
    }
}

/// Implements getpgid(2).
pub fn sys_getpgid(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    Ok(t.ns.pgid(pid_or_self(t, a[0]))? as u64)
}

/// Implements setsid(2).
pub fn sys_setsid(t: &mut Task, _: [u64; 6]) -> SysResult<u64> {
    Ok(t.ns.setsid(t.pid)? as u64)
}

/// Implements getsid(2).
pub fn sys_getsid(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    Ok(t.ns.sid(pid_or_self(t, a[0]))? as u64)
}

/// Implements sched_getaffinity(2): the guest may run on the CPUs the
/// sandbox may run on.
pub fn sys_sched_getaffinity(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    if a[0] != 0 && a[0] as i32 != t.pid && t.ns.control(a[0] as i32).is_none() {
        return Err(Errno::ESRCH);
    }
    let len = a[1] as usize;
    if len < 8 || len % 8 != 0 {
        return Err(Errno::EINVAL);
    }
    // The guest's CPUs are numbered 0..cpus (`resources.cpus`).
    let mut mask = vec![0u8; len.min(128)];
    for cpu in 0..(mask.len() * 8).min(t.k.cpus()) {
        mask[cpu / 8] |= 1 << (cpu % 8);
    }
    t.mm.copy_out(a[2], &mask)?;
    Ok(mask.len() as u64)
}
