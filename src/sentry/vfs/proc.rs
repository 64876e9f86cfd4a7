//! The guest's /proc: which files and directories it has and what kind
//! each is. Their contents are generated from the kernel's state when a
//! file is opened (`kernel/procfs.rs`).

use std::sync::Arc;

use super::dev::Synth;
use super::file::FileOps;
use crate::abi::types::{Stat, S_IFDIR, S_IFLNK, S_IFREG};
use crate::abi::SysResult;

/// A file or directory of /proc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcNode {
    /// /proc itself.
    Dir,
    /// /proc/self (the calling process).
    SelfDir,
    /// A generated read-only file.
    File(ProcKind),
    /// /proc/self/exe and /proc/self/cwd: magic links to the caller's
    /// executable and working directory.
    Exe,
    Cwd,
}

/// The generated files of /proc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcKind {
    Cpuinfo,
    Meminfo,
    Uptime,
    Loadavg,
    Version,
    Filesystems,
    Mounts,
    Mountinfo,
    Cmdline,
    Comm,
    Maps,
    Status,
}

/// Entries of /proc.
pub const PROC_ENTRIES: &[(&str, Synth)] = &[
    ("cpuinfo", Synth::Proc(ProcNode::File(ProcKind::Cpuinfo))),
    (
        "filesystems",
        Synth::Proc(ProcNode::File(ProcKind::Filesystems)),
    ),
    ("loadavg", Synth::Proc(ProcNode::File(ProcKind::Loadavg))),
    ("meminfo", Synth::Proc(ProcNode::File(ProcKind::Meminfo))),
    ("mounts", Synth::Proc(ProcNode::File(ProcKind::Mounts))),
    ("self", Synth::Proc(ProcNode::SelfDir)),
    ("uptime", Synth::Proc(ProcNode::File(ProcKind::Uptime))),
    ("version", Synth::Proc(ProcNode::File(ProcKind::Version))),
];

/// Entries of /proc/self.
pub const PROC_SELF_ENTRIES: &[(&str, Synth)] = &[
    ("cmdline", Synth::Proc(ProcNode::File(ProcKind::Cmdline))),
    ("comm", Synth::Proc(ProcNode::File(ProcKind::Comm))),
    ("cwd", Synth::Proc(ProcNode::Cwd)),
    ("exe", Synth::Proc(ProcNode::Exe)),
    ("fd", Synth::FdDir),
    ("maps", Synth::Proc(ProcNode::File(ProcKind::Maps))),
    (
        "mountinfo",
        Synth::Proc(ProcNode::File(ProcKind::Mountinfo)),
    ),
    ("mounts", Synth::Proc(ProcNode::File(ProcKind::Mounts))),
    ("status", Synth::Proc(ProcNode::File(ProcKind::Status))),
];

/// The file type and permissions of a /proc node.
pub fn mode_of(p: ProcNode) -> u32 {
    match p {
        ProcNode::Dir | ProcNode::SelfDir => S_IFDIR | 0o555,
        ProcNode::File(_) => S_IFREG | 0o444,
        ProcNode::Exe | ProcNode::Cwd => S_IFLNK | 0o777,
    }
}

/// The entry `name` of /proc directory `dir`.
pub fn child(dir: ProcNode, name: &[u8]) -> Option<Synth> {
    let list = entries(dir)?;
    list.iter()
        .find(|(n, _)| n.as_bytes() == name)
        .map(|(_, p)| *p)
}

/// The fixed entries of /proc directory `dir`.
pub fn entries(dir: ProcNode) -> Option<&'static [(&'static str, Synth)]> {
    match dir {
        ProcNode::Dir => Some(PROC_ENTRIES),
        ProcNode::SelfDir => Some(PROC_SELF_ENTRIES),
        _ => None,
    }
}

/// A file whose bytes were generated when it was opened (/proc).
pub struct Generated {
    bytes: Vec<u8>,
}

impl Generated {
    pub fn new(bytes: Vec<u8>) -> Arc<Generated> {
        Arc::new(Generated { bytes })
    }
}

impl FileOps for Generated {
    fn read(&self, buf: &mut [u8], off: u64) -> SysResult<usize> {
        let start = (off as usize).min(self.bytes.len());
        let n = buf.len().min(self.bytes.len() - start);
        buf[..n].copy_from_slice(&self.bytes[start..start + n]);
        Ok(n)
    }

    fn stat(&self) -> SysResult<Stat> {
        Ok(Stat {
            dev: 4,
            mode: S_IFREG | 0o444,
            nlink: 1,
            blksize: 4096,
            ..Default::default()
        })
    }
}
