//! The files of /proc/[pid] in Linux's formats (proc(5), and
//! fs/proc/array.c for stat and status field by field).

use std::sync::atomic::Ordering;

use super::{comm, Target};
use crate::abi::{Errno, SysResult};
use crate::sentry::kernel::Task;
use crate::sentry::mm::memory::PAGE_SIZE;
use crate::sentry::mm::{Backing, MemoryManager, USER_TOP};

/// O_LARGEFILE as the kernel has it on x86-64.
const O_LARGEFILE: u32 = 0o100000;
/// Clock ticks per second (USER_HZ).
const HZ: u64 = 100;
/// Linux's `flags` of a user process (PF_RANDOMIZE).
const PF_RANDOMIZE: u64 = 0x0040_0000;
/// The bounding set: every capability (CAP_LAST_CAP 40).
const CAP_BOUNDING: u64 = (1 << 41) - 1;

fn ticks(ns: u64) -> u64 {
    ns / (1_000_000_000 / HZ)
}

/// The state letter and its name.
fn state(target: &Target, caller_tid: i32) -> (char, &'static str) {
    let c = &target.thread;
    if target.entry.exit.is_some() {
        ('Z', "zombie")
    } else if c.stopped.load(Ordering::SeqCst) {
        ('T', "stopped")
    } else if target.view.tid == caller_tid || c.view.in_guest() {
        ('R', "running")
    } else {
        ('S', "sleeping")
    }
}

/// Address space figures, in bytes and pages.
#[derive(Default)]
struct MemFigures {
    vsize: u64,
    rss: u64,
    rss_anon: u64,
    rss_file: u64,
    rss_shmem: u64,
    data: u64,
    stack: u64,
    exec: u64,
}

fn figures(mm: &MemoryManager) -> MemFigures {
    let mut f = MemFigures::default();
    for (&start, vma) in mm.vmas() {
        let len = vma.end - start;
        let resident = mm.resident_between(start, vma.end);
        f.vsize += len;
        match vma.backing {
            Backing::Anon if vma.end == USER_TOP => f.stack += len,
            Backing::Anon if vma.prot.write => f.data += len,
            Backing::Shared { .. } => f.rss_shmem += resident,
            Backing::File { .. } | Backing::Fixed { .. } => f.rss_file += resident,
            _ => {}
        }
        if matches!(vma.backing, Backing::Anon) {
            f.rss_anon += resident;
        }
        if matches!(vma.backing, Backing::File { .. }) && vma.prot.write {
            f.data += len;
        }
        if vma.prot.exec {
            f.exec += len;
        }
    }
    f.rss = mm.resident_pages();
    f
}

/// The memory figures of a live process (None for a zombie).
fn memory(target: &Target) -> Option<MemFigures> {
    let live = target.view.live.as_ref()?;
    Some(figures(&live.mm.inspect()))
}

/// Signals ignored and caught (bit n-1 for signal n).
fn dispositions(target: &Target) -> (u64, u64) {
    let acts = target.thread.sigactions.lock().unwrap();
    let (mut ign, mut cgt) = (0u64, 0u64);
    for (i, act) in acts.iter().enumerate() {
        match act[0] {
            0 => {}
            1 => ign |= 1 << i,
            _ => cgt |= 1 << i,
        }
    }
    (ign, cgt)
}

/// CPU time of the process (or the thread), ns: (user, system), and its
/// waited-for children's.
fn cpu_times(target: &Target) -> ((u64, u64), (u64, u64)) {
    let group = &target.entry.control.group;
    let own = if target.is_thread {
        target.thread.cpu_times()
    } else {
        group.times()
    };
    (own, group.child_times.get())
}

/// /proc/[pid]/stat: 52 fields (proc(5)).
pub fn stat(t: &Task, target: &Target) -> String {
    let e = &target.entry;
    let v = &target.view;
    let (st, _) = state(target, t.tid);
    let id = if target.is_thread { v.tid } else { e.pid };
    let ((ut, stime), (cut, cst)) = cpu_times(target);
    let threads = target.tids().len().max(1);
    let mem = memory(target).unwrap_or_default();
    let (ign, cgt) = dispositions(target);
    let pending = target.thread.all_pending();
    let blocked = target.thread.mask.load(Ordering::SeqCst);
    // Addresses are for those who may look into the process (Linux
    // shows 0 otherwise), and gone with a zombie's memory.
    let l = if target.may_access() && v.live.is_some() {
        v.layout
    } else {
        Default::default()
    };
    let exit_code = e.exit.map_or(0, |x| x.wait_status());
    let exit_signal = target.thread.exit_signal.load(Ordering::SeqCst);
    let cpu = (id as usize) % t.k.cpus();
    let rsslim = v.rlimits[libc::RLIMIT_RSS as usize].0;
    format!(
        "{id} ({}) {st} {} {} {} 0 -1 {PF_RANDOMIZE} 0 0 0 0 {} {} {} {} 20 0 {threads} 0 {} {} {} {rsslim} {} {} {} 0 0 {pending} {blocked} {ign} {cgt} 0 0 0 {exit_signal} {cpu} 0 0 0 0 0 {} {} {} {} {} {} {} {exit_code}\n",
        String::from_utf8_lossy(comm(&v.comm)),
        e.parent,
        e.pgid,
        e.sid,
        ticks(ut),
        ticks(stime),
        ticks(cut),
        ticks(cst),
        ticks(v.start_ns),
        mem.vsize,
        mem.rss,
        l.start_code,
        l.end_code,
        l.start_stack,
        l.start_data,
        l.end_data,
        l.start_brk,
        l.arg_start,
        l.arg_end,
        l.env_start,
        l.env_end,
    )
}

/// /proc/[pid]/statm: sizes in pages.
pub fn statm(target: &Target) -> String {
    let m = memory(target).unwrap_or_default();
    let l = &target.view.layout;
    let page = PAGE_SIZE;
    let text = (l.end_code.saturating_sub(l.start_code)).div_ceil(page);
    format!(
        "{} {} {} {text} 0 {} 0\n",
        m.vsize / page,
        m.rss,
        m.rss_file + m.rss_shmem,
        (m.data + m.stack) / page
    )
}

/// The "Vm..." and "Rss..." lines of status (a live process only).
fn status_memory(target: &Target) -> String {
    let Some(m) = memory(target) else {
        return String::new();
    };
    let kb = |pages: u64| pages * PAGE_SIZE / 1024;
    let l = &target.view.layout;
    let exe = (l.end_code.saturating_sub(l.start_code)) / 1024;
    let lines = [
        ("VmPeak", m.vsize / 1024),
        ("VmSize", m.vsize / 1024),
        ("VmLck", 0),
        ("VmPin", 0),
        ("VmHWM", kb(m.rss)),
        ("VmRSS", kb(m.rss)),
        ("RssAnon", kb(m.rss_anon)),
        ("RssFile", kb(m.rss_file)),
        ("RssShmem", kb(m.rss_shmem)),
        ("VmData", m.data / 1024),
        ("VmStk", m.stack / 1024),
        ("VmExe", exe),
        ("VmLib", (m.exec / 1024).saturating_sub(exe)),
        // One 4 KiB table per 2 MiB mapped.
        ("VmPTE", m.vsize.div_ceil(2 << 20) * 4),
        ("VmSwap", 0),
        ("HugetlbPages", 0),
    ];
    lines
        .iter()
        .map(|(name, v)| format!("{name}:\t{v:>8} kB\n"))
        .collect()
}

/// /proc/[pid]/status.
pub fn status(t: &Task, target: &Target) -> String {
    let e = &target.entry;
    let v = &target.view;
    let c = &v.creds;
    let (st, st_name) = state(target, t.tid);
    let tid = if target.is_thread { v.tid } else { e.pid };
    // Linux ends the list with a space, even an empty one.
    let groups: Vec<String> = v.groups.iter().map(|g| g.to_string()).collect();
    let groups = groups.join(" ") + " ";
    let fd_size = target
        .fds()
        .ok()
        .and_then(|f| f.last().copied())
        .map_or(64, |max| ((max as usize + 1).next_power_of_two()).max(64));
    let (ign, cgt) = dispositions(target);
    let cpus = t.k.cpus();
    let cpu_mask = if cpus >= 64 {
        u64::MAX
    } else {
        (1u64 << cpus) - 1
    };
    let sigq = v.rlimits[libc::RLIMIT_SIGPENDING as usize].0;
    let queued = (target.thread.pending.load(Ordering::SeqCst)
        | target.entry.control.group.pending.load(Ordering::SeqCst))
    .count_ones();
    let mut out = format!(
        "Name:\t{}\nUmask:\t{:04o}\nState:\t{st} ({st_name})\nTgid:\t{pid}\nNgid:\t0\nPid:\t{tid}\nPPid:\t{}\nTracerPid:\t0\nUid:\t{}\t{}\t{}\t{}\nGid:\t{}\t{}\t{}\t{}\nFDSize:\t{fd_size}\nGroups:\t{groups}\nNStgid:\t{pid}\nNSpid:\t{tid}\nNSpgid:\t{}\nNSsid:\t{}\nKthread:\t0\n",
        String::from_utf8_lossy(comm(&v.comm)),
        v.umask,
        e.parent,
        c.uid,
        c.euid,
        c.suid,
        c.euid,
        c.gid,
        c.egid,
        c.sgid,
        c.egid,
        e.pgid,
        e.sid,
        pid = e.pid,
    );
    out += &status_memory(target);
    out += &format!(
        "CoreDumping:\t0\nTHP_enabled:\t1\nuntag_mask:\t0xffffffffffffffff\nThreads:\t{}\nSigQ:\t{queued}/{sigq}\nSigPnd:\t{:016x}\nShdPnd:\t{:016x}\nSigBlk:\t{:016x}\nSigIgn:\t{ign:016x}\nSigCgt:\t{cgt:016x}\nCapInh:\t{:016x}\nCapPrm:\t{:016x}\nCapEff:\t{:016x}\nCapBnd:\t{CAP_BOUNDING:016x}\nCapAmb:\t0000000000000000\nNoNewPrivs:\t{}\nSeccomp:\t0\nSeccomp_filters:\t0\nSpeculation_Store_Bypass:\tvulnerable\nSpeculationIndirectBranch:\talways enabled\nCpus_allowed:\t{cpu_mask:x}\nCpus_allowed_list:\t{}\nMems_allowed:\t00000001\nMems_allowed_list:\t0\nvoluntary_ctxt_switches:\t0\nnonvoluntary_ctxt_switches:\t0\n",
        target.tids().len().max(1),
        target.thread.pending.load(Ordering::SeqCst),
        target.entry.control.group.pending.load(Ordering::SeqCst),
        target.thread.mask.load(Ordering::SeqCst),
        c.cap_inh,
        c.cap_perm,
        c.cap_eff,
        c.no_new_privs as u8,
        super::system::cpu_list(cpus),
    );
    out
}

/// /proc/[pid]/environ: the environment strings as they are in the
/// process's memory.
pub fn environ(target: &Target) -> Vec<u8> {
    let Some(live) = &target.view.live else {
        return vec![];
    };
    let l = &target.view.layout;
    let mut buf = vec![0u8; l.env_end.saturating_sub(l.env_start) as usize];
    let n = live.mm.inspect().peek(l.env_start, &mut buf);
    buf.truncate(n);
    buf
}

/// /proc/[pid]/maps from the VMAs: no device or inode numbers, no file
/// names (the sentry does not keep them), but [vvar], [vdso] and [stack].
pub fn maps(target: &Target) -> Vec<u8> {
    let Some(live) = &target.view.live else {
        return vec![];
    };
    let mm = live.mm.inspect();
    let mut out = String::new();
    for (&start, vma) in mm.vmas() {
        let (offset, name) = match &vma.backing {
            Backing::File { offset, .. } => (*offset, ""),
            Backing::Fixed { frames, index } => (index * PAGE_SIZE, frames.name),
            Backing::Shared { offset, .. } => (*offset, ""),
            Backing::Anon if vma.end == USER_TOP => (0, "[stack]"),
            Backing::Anon if start == mm.brk_start && mm.brk > start => (0, "[heap]"),
            Backing::Anon => (0, ""),
        };
        let (path, dev, ino) = match &vma.name {
            Some(n) => (String::from_utf8_lossy(&n.path).into_owned(), n.dev, n.ino),
            None => (name.to_string(), 0, 0),
        };
        let name = path.as_str();
        let flag = |on: bool, c: char| if on { c } else { '-' };
        let shared = matches!(vma.backing, Backing::Shared { .. });
        // The device as major:minor, from the kernel's encoding.
        let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
        let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
        let line = format!(
            "{start:08x}-{:08x} {}{}{}{} {offset:08x} {major:02x}:{minor:02x} {ino}",
            vma.end,
            flag(vma.prot.read, 'r'),
            flag(vma.prot.write, 'w'),
            flag(vma.prot.exec, 'x'),
            if shared { 's' } else { 'p' },
        );
        if name.is_empty() {
            out += &format!("{line} \n");
        } else {
            // Linux pads the name to column 74.
            out += &format!("{line:<72} {name}\n");
        }
    }
    out.into_bytes()
}

/// /proc/[pid]/limits: (name, units) per RLIMIT_* resource, in order.
const LIMITS: [(&str, &str); 16] = [
    ("Max cpu time", "seconds"),
    ("Max file size", "bytes"),
    ("Max data size", "bytes"),
    ("Max stack size", "bytes"),
    ("Max core file size", "bytes"),
    ("Max resident set", "bytes"),
    ("Max processes", "processes"),
    ("Max open files", "files"),
    ("Max locked memory", "bytes"),
    ("Max address space", "bytes"),
    ("Max file locks", "locks"),
    ("Max pending signals", "signals"),
    ("Max msgqueue size", "bytes"),
    ("Max nice priority", ""),
    ("Max realtime priority", ""),
    ("Max realtime timeout", "us"),
];

/// /proc/[pid]/limits.
pub fn limits(rlimits: &[(u64, u64); 16]) -> String {
    let show = |v: u64| {
        if v == u64::MAX {
            "unlimited".to_string()
        } else {
            v.to_string()
        }
    };
    let mut out = format!(
        "{:<25} {:<20} {:<20} {:<10}\n",
        "Limit", "Soft Limit", "Hard Limit", "Units"
    );
    for ((name, units), (soft, hard)) in LIMITS.iter().zip(rlimits) {
        out += &format!("{name:<25} {:<20} {:<20} ", show(*soft), show(*hard));
        if units.is_empty() {
            out += "\n";
        } else {
            out += &format!("{units:<10}\n");
        }
    }
    out
}

/// /proc/[pid]/fdinfo/N: offset, flags (with O_CLOEXEC from the
/// descriptor), the mount id and inode number.
pub fn fdinfo(target: &Target, fd: i32) -> SysResult<Vec<u8>> {
    let live = target.live()?;
    let file = live.fds.get(fd).map_err(|_| Errno::ENOENT)?;
    let cloexec = live.fds.flags(fd).map_err(|_| Errno::ENOENT)? & 1 != 0;
    let mut flags = *file.flags.lock().unwrap();
    if cloexec {
        flags |= libc::O_CLOEXEC as u32;
    }
    let mnt_id = file.ops.node().map_or(0, |n| {
        // open(2) on a 64-bit kernel adds O_LARGEFILE (which the libc
        // crate gives as 0 on x86-64).
        flags |= O_LARGEFILE;
        n.mount.id
    });
    let ino = file.ops.stat().map_or(0, |s| s.ino);
    let pos = *file.offset.lock().unwrap();
    Ok(format!("pos:\t{pos}\nflags:\t0{flags:06o}\nmnt_id:\t{mnt_id}\nino:\t{ino}\n").into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_match_linux_layout() {
        let text = limits(&crate::sentry::kernel::task::default_rlimits());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "Limit                     Soft Limit           Hard Limit           Units     "
        );
        assert_eq!(
            lines[4],
            "Max stack size            8388608              unlimited            bytes     "
        );
        assert_eq!(
            lines[15],
            "Max realtime priority     0                    0                    "
        );
        assert_eq!(lines.len(), 17);
    }
}
