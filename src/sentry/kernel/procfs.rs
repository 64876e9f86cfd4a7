//! The contents of the generated /proc files, from the calling task and
//! the sandbox (only /proc/self exists per process for now).

use std::sync::atomic::Ordering;

use super::Task;
use crate::sentry::mm::memory::PAGE_SIZE;
use crate::sentry::mm::{Backing, USER_TOP};
use crate::sentry::syscalls::RELEASE;
use crate::sentry::vfs::proc::ProcKind;

/// The bytes of /proc file `kind` as `t` sees it.
pub fn contents(t: &Task, kind: ProcKind) -> Vec<u8> {
    match kind {
        ProcKind::Cpuinfo => cpuinfo(t.k.cpus),
        ProcKind::Meminfo => meminfo(t),
        ProcKind::Uptime => {
            let up = t.k.boot.elapsed().as_secs_f64();
            format!("{up:.2} {:.2}\n", up * t.k.cpus as f64).into_bytes()
        }
        ProcKind::Loadavg => format!("0.00 0.00 0.00 1/1 {}\n", t.pid).into_bytes(),
        ProcKind::Version => {
            format!("Linux version {RELEASE} (sandboxd) #1 SMP PREEMPT_DYNAMIC sandboxd\n")
                .into_bytes()
        }
        ProcKind::Filesystems => {
            b"nodev\tproc\nnodev\ttmpfs\nnodev\tdevtmpfs\nnodev\toverlay\n\t9p\n".to_vec()
        }
        ProcKind::Mounts => t.fs.mounts_text(),
        ProcKind::Mountinfo => t.fs.mountinfo_text(),
        ProcKind::Cmdline => t.exe.1.clone(),
        ProcKind::Comm => {
            let end = t.comm.iter().position(|&b| b == 0).unwrap_or(16);
            [&t.comm[..end], b"\n"].concat()
        }
        ProcKind::Maps => maps(t),
        ProcKind::Status => status(t),
    }
}

/// /proc/self/maps from the VMAs: no device or inode numbers, no file
/// names (the sentry does not keep them), but [vvar], [vdso] and [stack].
fn maps(t: &Task) -> Vec<u8> {
    let mm = t.mm.lock();
    let mut out = String::new();
    for (&start, vma) in mm.vmas() {
        let (offset, name) = match &vma.backing {
            Backing::File { offset, .. } => (*offset, ""),
            Backing::Fixed { frames, index } => (index * PAGE_SIZE, frames.name),
            Backing::Shared { offset, .. } => (*offset, ""),
            Backing::Anon if vma.end == USER_TOP => (0, "[stack]"),
            Backing::Anon => (0, ""),
        };
        let flag = |on: bool, c: char| if on { c } else { '-' };
        let line = format!(
            "{start:08x}-{:08x} {}{}{}{} {offset:08x} 00:00 0",
            vma.end,
            flag(vma.prot.read, 'r'),
            flag(vma.prot.write, 'w'),
            flag(vma.prot.exec, 'x'),
            if matches!(vma.backing, Backing::Shared { .. }) {
                's'
            } else {
                'p'
            },
        );
        if name.is_empty() {
            out += &format!("{line}\n");
        } else {
            // Linux pads the name to column 74.
            out += &format!("{line:<73}{name}\n");
        }
    }
    out.into_bytes()
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
    format!("MemTotal:       {total:>8} kB\nMemFree:        {free:>8} kB\nMemAvailable:   {free:>8} kB\nSwapTotal:             0 kB\nSwapFree:              0 kB\n").into_bytes()
}

fn status(t: &Task) -> Vec<u8> {
    let end = t.comm.iter().position(|&b| b == 0).unwrap_or(16);
    let name = String::from_utf8_lossy(&t.comm[..end]);
    let c = t.creds;
    let groups: Vec<String> = t.groups.iter().map(|g| g.to_string()).collect();
    let mask = t.control.mask.load(Ordering::SeqCst);
    let pending = t.control.pending.load(Ordering::SeqCst);
    format!(
        "Name:\t{name}\nUmask:\t{:04o}\nState:\tR (running)\nTgid:\t{pid}\nPid:\t{pid}\nPPid:\t{}\nUid:\t{}\t{}\t{}\t{}\nGid:\t{}\t{}\t{}\t{}\nGroups:\t{}\nThreads:\t1\nSigPnd:\t{pending:016x}\nSigBlk:\t{mask:016x}\n",
        t.umask,
        t.ns.parent(t.pid),
        c.uid,
        c.euid,
        c.suid,
        c.euid,
        c.gid,
        c.egid,
        c.sgid,
        c.egid,
        groups.join(" "),
        pid = t.pid,
    )
    .into_bytes()
}
