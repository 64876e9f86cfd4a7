//! The sandbox-wide files of /proc and /proc/sys, from the kernel's
//! state as the calling task's PID namespace sees it.

use std::sync::atomic::Ordering;

use crate::sentry::kernel::loadavg;
use crate::sentry::kernel::process::MAX_PROCS;
use crate::sentry::kernel::Task;
use crate::sentry::syscalls::RELEASE;
use crate::sentry::vfs::proc::ProcKind;

/// The highest pid (/proc/sys/kernel/pid_max).
pub const PID_MAX: i32 = crate::sentry::kernel::process::PID_MAX;
/// NGROUPS_MAX.
const NGROUPS_MAX: u32 = 65536;
/// The most descriptors a process may have (/proc/sys/fs/nr_open, the
/// RLIMIT_NOFILE hard limit's ceiling).
const NR_OPEN: u64 = crate::sentry::vfs::MAX_FDS as u64;

/// The bytes of /proc file `kind` as `t` sees it.
pub fn contents(t: &Task, kind: ProcKind) -> Vec<u8> {
    let line = |v: String| format!("{v}\n").into_bytes();
    match kind {
        ProcKind::Cpuinfo => cpuinfo(t.k.cpus()),
        ProcKind::Meminfo => meminfo(t),
        ProcKind::Stat => stat(t),
        ProcKind::Uptime => {
            let up = t.k.boot.elapsed().as_secs_f64();
            let busy = busy_ns(t) as f64 / 1e9;
            let idle = (up * t.k.cpus() as f64 - busy).max(0.0);
            line(format!("{up:.2} {idle:.2}"))
        }
        ProcKind::Loadavg => loadavg(t),
        ProcKind::Version => line(format!(
            "Linux version {RELEASE} (sandboxd) #1 SMP PREEMPT_DYNAMIC sandboxd"
        )),
        ProcKind::Filesystems => {
            b"nodev\tsysfs\nnodev\tproc\nnodev\ttmpfs\nnodev\tdevtmpfs\nnodev\toverlay\n\t9p\n"
                .to_vec()
        }
        ProcKind::Mounts => t.fs.mounts_text(),
        ProcKind::Hostname => line(t.k.hostname()),
        ProcKind::Domainname => line(t.k.domainname()),
        ProcKind::Osrelease => line(RELEASE.into()),
        ProcKind::Ostype => line("Linux".into()),
        ProcKind::PidMax => line(PID_MAX.to_string()),
        ProcKind::NgroupsMax => line(NGROUPS_MAX.to_string()),
        // Guest memory is committed on touch, as heuristic overcommit.
        ProcKind::OvercommitMemory => line("0".into()),
        ProcKind::FileMax => line((MAX_PROCS as u64 * NR_OPEN).to_string()),
        ProcKind::NrOpen => line(NR_OPEN.to_string()),
    }
}

/// CPUs `0..n` as Linux writes a CPU list ("0", "0-3").
pub fn cpu_list(n: usize) -> String {
    match n {
        0 | 1 => "0".into(),
        n => format!("0-{}", n - 1),
    }
}

/// One entry per CPU the sandbox shows (`resources.cpus`).
fn cpuinfo(n: usize) -> Vec<u8> {
    let mut out = String::new();
    for i in 0..n {
        out += &format!(
            "processor\t: {i}\nvendor_id\t: sandboxd\nmodel name\t: sandboxd virtual CPU\nsiblings\t: {n}\ncore id\t\t: {i}\ncpu cores\t: {n}\n\n"
        );
    }
    out.into_bytes()
}

fn meminfo(t: &Task) -> Vec<u8> {
    let total = t.k.memory.size() / 1024;
    let free = total.saturating_sub(t.k.memory.used_bytes() / 1024);
    // Clean cached file pages give way under pressure: they count as
    // available, as Linux estimates it.
    let cached = t.k.memory.cached_bytes() / 1024;
    let available = (free + cached).min(total);
    let mut out = String::new();
    for (k, v) in [
        ("MemTotal", total),
        ("MemFree", free),
        ("MemAvailable", available),
        ("Buffers", 0),
        ("Cached", cached),
        ("SwapCached", 0),
        ("SwapTotal", 0),
        ("SwapFree", 0),
    ] {
        out += &format!("{:<16}{v:>8} kB\n", format!("{k}:"));
    }
    out.into_bytes()
}

/// CPU time used so far by the processes of the caller's namespace, ns:
/// (user, system). Each process counts its live and ended threads and
/// the children it reaped (which count theirs).
fn cpu_ns(t: &Task) -> (u64, u64) {
    let (mut user, mut system) = (0, 0);
    for pid in t.ns.pids() {
        if let Some(e) = t.ns.entry(pid) {
            let g = &e.control.group;
            let ((u, s), (cu, cs)) = (g.times(), g.child_times.get());
            user += u + cu;
            system += s + cs;
        }
    }
    (user, system)
}

fn busy_ns(t: &Task) -> u64 {
    let (u, s) = cpu_ns(t);
    u + s
}

/// /proc/loadavg: the pod's 1, 5 and 15 minute load averages, its
/// tasks running or runnable now (the caller included) and all its
/// tasks, and the pid the caller's namespace handed out last.
fn loadavg(t: &Task) -> Vec<u8> {
    let load = &t.k.load;
    let [one, five, fifteen] = load.averages().map(loadavg::format);
    let (_, last) = t.ns.all_threads();
    format!(
        "{one} {five} {fifteen} {}/{} {last}\n",
        load.active(),
        load.tasks()
    )
    .into_bytes()
}

/// /proc/stat: the namespace's CPU time spread evenly over the guest's
/// CPUs (the sentry does not know which CPU a thread ran on), the rest
/// of each CPU's uptime idle.
fn stat(t: &Task) -> Vec<u8> {
    let cpus = t.k.cpus() as u64;
    let up = t.k.boot.elapsed();
    let ticks = |ns: u64| ns / 10_000_000;
    let (user, system) = cpu_ns(t);
    let idle = (up.as_nanos() as u64 * cpus).saturating_sub(user + system);
    let row = |name: String, div: u64| {
        format!(
            "{name} {} 0 {} {} 0 0 0 0 0 0\n",
            ticks(user / div),
            ticks(system / div),
            ticks(idle / div)
        )
    };
    let mut out = row("cpu ".into(), 1);
    for i in 0..cpus {
        out += &row(format!("cpu{i}"), cpus);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let btime = now.saturating_sub(up).as_secs();
    let running = t.k.load.active();
    let st = &t.k.stats;
    out += &format!(
        "intr 0\nctxt {}\nbtime {btime}\nprocesses {}\nprocs_running {running}\nprocs_blocked 0\nsoftirq 0 0 0 0 0 0 0 0 0 0 0\n",
        st.switches.load(Ordering::Relaxed),
        st.forks.load(Ordering::Relaxed),
    );
    out.into_bytes()
}
