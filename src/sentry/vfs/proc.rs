//! The guest's /proc as a tree: which files and directories it has, what
//! kind each is, and what its directories list. /proc/[pid] exists for
//! every process of the caller's PID namespace (zombies included) and
//! /proc/self, /proc/thread-self point at the caller; the kernel side
//! (`kernel/procfs.rs`) finds the processes and generates the contents
//! when a file is opened.
//!
//! Nodes of /proc/[pid] are never cached: each lookup checks that the
//! process (thread, descriptor) still exists, so a pid that ends
//! disappears and a reused pid is the new process.

use std::sync::Arc;

use super::dev::Synth;
use super::file::FileOps;
use super::gofer::Dirent;
use super::node::Node;
use super::path::{resolve, Follow};
use crate::abi::types::{dtype_of_mode, Stat, S_IFDIR, S_IFLNK, S_IFREG};
use crate::abi::{Errno, SysResult};
use crate::sentry::kernel::procfs;

/// A file or directory of /proc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcNode {
    /// /proc itself.
    Dir,
    /// /proc/self: a symlink to the caller's pid.
    SelfLink,
    /// /proc/thread-self: a symlink to `<pid>/task/<tid>`.
    ThreadSelf,
    /// A generated read-only file of /proc or /proc/sys.
    File(ProcKind),
    /// /proc/sys and its directories.
    SysDir(SysDir),
    /// Something of /proc/[pid] or /proc/[pid]/task/[tid].
    Pid(PidRef, PidEntry),
}

/// The process (and thread) a /proc/[pid] node is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PidRef {
    pub pid: i32,
    /// The thread of /proc/[pid]/task/[tid], 0 for the process.
    pub tid: i32,
}

/// The directories of /proc/sys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SysDir {
    Sys,
    Kernel,
    Vm,
    Fs,
}

/// The entries of /proc/[pid] (and /proc/[pid]/task/[tid]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PidEntry {
    Dir,
    TaskDir,
    File(PidFile),
    /// Magic links: the executable, working directory and root.
    Exe,
    Cwd,
    Root,
    FdDir,
    /// A magic link to what descriptor N is.
    Fd(i32),
    FdinfoDir,
    Fdinfo(i32),
}

/// The generated files of /proc/[pid].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PidFile {
    Stat,
    Status,
    Statm,
    Cmdline,
    Environ,
    Comm,
    Maps,
    Mounts,
    Mountinfo,
    Limits,
}

/// The generated files of /proc and /proc/sys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcKind {
    Cpuinfo,
    Meminfo,
    Stat,
    Uptime,
    Loadavg,
    Version,
    Filesystems,
    Mounts,
    Hostname,
    Domainname,
    Osrelease,
    Ostype,
    PidMax,
    NgroupsMax,
    OvercommitMemory,
    FileMax,
    NrOpen,
}

use ProcKind as K;

/// Entries of /proc besides the pids.
const ROOT_ENTRIES: &[(&str, ProcNode)] = &[
    ("cpuinfo", ProcNode::File(K::Cpuinfo)),
    ("filesystems", ProcNode::File(K::Filesystems)),
    ("loadavg", ProcNode::File(K::Loadavg)),
    ("meminfo", ProcNode::File(K::Meminfo)),
    ("mounts", ProcNode::File(K::Mounts)),
    ("self", ProcNode::SelfLink),
    ("stat", ProcNode::File(K::Stat)),
    ("sys", ProcNode::SysDir(SysDir::Sys)),
    ("thread-self", ProcNode::ThreadSelf),
    ("uptime", ProcNode::File(K::Uptime)),
    ("version", ProcNode::File(K::Version)),
];

const SYS_ENTRIES: &[(&str, ProcNode)] = &[
    ("fs", ProcNode::SysDir(SysDir::Fs)),
    ("kernel", ProcNode::SysDir(SysDir::Kernel)),
    ("vm", ProcNode::SysDir(SysDir::Vm)),
];

const SYS_KERNEL_ENTRIES: &[(&str, ProcNode)] = &[
    ("domainname", ProcNode::File(K::Domainname)),
    ("hostname", ProcNode::File(K::Hostname)),
    ("ngroups_max", ProcNode::File(K::NgroupsMax)),
    ("osrelease", ProcNode::File(K::Osrelease)),
    ("ostype", ProcNode::File(K::Ostype)),
    ("pid_max", ProcNode::File(K::PidMax)),
];

const SYS_VM_ENTRIES: &[(&str, ProcNode)] =
    &[("overcommit_memory", ProcNode::File(K::OvercommitMemory))];

const SYS_FS_ENTRIES: &[(&str, ProcNode)] = &[
    ("file-max", ProcNode::File(K::FileMax)),
    ("nr_open", ProcNode::File(K::NrOpen)),
];

/// Entries of /proc/[pid]; /proc/[pid]/task/[tid] has them all but `task`.
const PID_ENTRIES: &[(&str, PidEntry)] = &[
    ("cmdline", PidEntry::File(PidFile::Cmdline)),
    ("comm", PidEntry::File(PidFile::Comm)),
    ("cwd", PidEntry::Cwd),
    ("environ", PidEntry::File(PidFile::Environ)),
    ("exe", PidEntry::Exe),
    ("fd", PidEntry::FdDir),
    ("fdinfo", PidEntry::FdinfoDir),
    ("limits", PidEntry::File(PidFile::Limits)),
    ("maps", PidEntry::File(PidFile::Maps)),
    ("mountinfo", PidEntry::File(PidFile::Mountinfo)),
    ("mounts", PidEntry::File(PidFile::Mounts)),
    ("root", PidEntry::Root),
    ("stat", PidEntry::File(PidFile::Stat)),
    ("statm", PidEntry::File(PidFile::Statm)),
    ("status", PidEntry::File(PidFile::Status)),
    ("task", PidEntry::TaskDir),
];

/// The file type and permissions of a /proc node.
pub fn mode_of(p: ProcNode) -> u32 {
    match p {
        ProcNode::Dir | ProcNode::SysDir(_) => S_IFDIR | 0o555,
        ProcNode::SelfLink | ProcNode::ThreadSelf => S_IFLNK | 0o777,
        ProcNode::File(_) => S_IFREG | 0o444,
        ProcNode::Pid(_, e) => match e {
            PidEntry::Dir | PidEntry::TaskDir => S_IFDIR | 0o555,
            PidEntry::FdDir | PidEntry::FdinfoDir => S_IFDIR | 0o500,
            PidEntry::File(PidFile::Environ) => S_IFREG | 0o400,
            PidEntry::File(_) | PidEntry::Fdinfo(_) => S_IFREG | 0o444,
            PidEntry::Exe | PidEntry::Cwd | PidEntry::Root => S_IFLNK | 0o777,
            PidEntry::Fd(_) => S_IFLNK | 0o700,
        },
    }
}

/// Whether `p` is a magic link (followed to what it stands for, not by
/// its text).
pub fn is_magic(p: ProcNode) -> bool {
    matches!(
        p,
        ProcNode::Pid(
            _,
            PidEntry::Exe | PidEntry::Cwd | PidEntry::Root | PidEntry::Fd(_)
        )
    )
}

/// The fixed entries of directory `dir`.
fn fixed_entries(dir: ProcNode) -> &'static [(&'static str, ProcNode)] {
    match dir {
        ProcNode::Dir => ROOT_ENTRIES,
        ProcNode::SysDir(SysDir::Sys) => SYS_ENTRIES,
        ProcNode::SysDir(SysDir::Kernel) => SYS_KERNEL_ENTRIES,
        ProcNode::SysDir(SysDir::Vm) => SYS_VM_ENTRIES,
        ProcNode::SysDir(SysDir::Fs) => SYS_FS_ENTRIES,
        _ => &[],
    }
}

fn number(name: &[u8]) -> Option<i32> {
    let s = std::str::from_utf8(name).ok()?;
    if s.is_empty() || s.starts_with('0') && s.len() > 1 || s.starts_with('+') {
        return None;
    }
    s.parse().ok().filter(|&n: &i32| n >= 0)
}

/// The entry `name` of /proc directory `dir`, if it exists now for the
/// calling task.
fn child(dir: ProcNode, name: &[u8]) -> SysResult<ProcNode> {
    if let Some((_, p)) = fixed_entries(dir)
        .iter()
        .find(|(n, _)| n.as_bytes() == name)
    {
        return Ok(*p);
    }
    let ProcNode::Pid(r, entry) = dir else {
        let pid = number(name).filter(|_| dir == ProcNode::Dir);
        let r = PidRef {
            pid: pid.ok_or(Errno::ENOENT)?,
            tid: 0,
        };
        procfs::target(r)?;
        return Ok(ProcNode::Pid(r, PidEntry::Dir));
    };
    let found = match entry {
        PidEntry::Dir => PID_ENTRIES
            .iter()
            .filter(|(n, _)| r.tid == 0 || *n != "task")
            .find(|(n, _)| n.as_bytes() == name)
            .map(|(_, e)| ProcNode::Pid(r, *e)),
        PidEntry::TaskDir => {
            number(name).map(|tid| ProcNode::Pid(PidRef { tid, ..r }, PidEntry::Dir))
        }
        PidEntry::FdDir => number(name).map(|n| ProcNode::Pid(r, PidEntry::Fd(n))),
        PidEntry::FdinfoDir => number(name).map(|n| ProcNode::Pid(r, PidEntry::Fdinfo(n))),
        _ => None,
    };
    let found = found.ok_or(Errno::ENOENT)?;
    if let ProcNode::Pid(r, e) = found {
        let target = procfs::target(r)?;
        if let PidEntry::Fd(n) | PidEntry::Fdinfo(n) = e {
            target.file(n)?;
        }
    }
    Ok(found)
}

/// The inode number of a /proc node: fixed ones by their place in their
/// table, those of /proc/[pid] from the pid, thread and entry.
fn ino_of(dir: &Node, p: ProcNode, name: &[u8]) -> u64 {
    match p {
        ProcNode::Pid(r, e) => {
            let (kind, n) = match e {
                PidEntry::Fd(n) => (1, n as u64),
                PidEntry::Fdinfo(n) => (2, n as u64),
                _ => (3, name.iter().map(|&b| b as u64).sum()),
            };
            (1 << 40) | ((r.pid as u64) << 24) ^ ((r.tid as u64) << 8) ^ (kind << 20) ^ n
        }
        _ => dir.stat.ino * 64 + name.iter().map(|&b| b as u64).sum::<u64>(),
    }
}

/// A node for the child `name` of /proc directory `dir`: cached unless
/// it is about a process.
pub fn lookup(dir: &Arc<Node>, p: ProcNode, name: &[u8]) -> SysResult<Arc<Node>> {
    if let Some(cached) = dir.cached(name) {
        return cached.ok_or(Errno::ENOENT);
    }
    let found = child(p, name)?;
    let mut st = stat_of(found, ino_of(dir, found, name));
    if let ProcNode::Pid(r, e) = found {
        let target = procfs::target(r)?;
        (st.uid, st.gid) = target.owner();
        if st.is_symlink() {
            st.size = 64;
        }
        if let PidEntry::Fd(n) = e {
            // The link's mode says how the descriptor was opened.
            let file = target.file(n)?;
            let (r, w) = (file.readable(), file.writable());
            st.mode = S_IFLNK | if r { 0o500 } else { 0 } | if w { 0o300 } else { 0 };
        }
        let node = Node::new_synth(name, dir, Synth::Proc(found), st, dir.mount.clone());
        return Ok(node);
    }
    let node = Node::new_synth(name, dir, Synth::Proc(found), st, dir.mount.clone());
    dir.cache(name, Some(node)).ok_or(Errno::ENOENT)
}

/// The metadata of a /proc node.
pub fn stat_of(p: ProcNode, ino: u64) -> Stat {
    Stat {
        dev: 4,
        ino,
        mode: mode_of(p),
        nlink: 1,
        blksize: 1024,
        ..Default::default()
    }
}

/// The entries of /proc directory `p` as the caller sees it now.
pub fn readdir(dir: &Node, p: ProcNode) -> SysResult<Vec<Dirent>> {
    let entry =
        |name: Vec<u8>, q: ProcNode| (ino_of(dir, q, &name), dtype_of_mode(mode_of(q)), name);
    let mut out: Vec<Dirent> = fixed_entries(p)
        .iter()
        .map(|(n, q)| entry(n.as_bytes().to_vec(), *q))
        .collect();
    match p {
        ProcNode::Dir => {
            for pid in procfs::pids()? {
                let q = ProcNode::Pid(PidRef { pid, tid: 0 }, PidEntry::Dir);
                out.push(entry(pid.to_string().into_bytes(), q));
            }
        }
        ProcNode::Pid(r, PidEntry::Dir) => {
            for (n, e) in PID_ENTRIES
                .iter()
                .filter(|(n, _)| r.tid == 0 || *n != "task")
            {
                out.push(entry(n.as_bytes().to_vec(), ProcNode::Pid(r, *e)));
            }
        }
        ProcNode::Pid(r, PidEntry::TaskDir) => {
            for tid in procfs::target(r)?.tids() {
                let q = ProcNode::Pid(PidRef { tid, ..r }, PidEntry::Dir);
                out.push(entry(tid.to_string().into_bytes(), q));
            }
        }
        ProcNode::Pid(r, e @ (PidEntry::FdDir | PidEntry::FdinfoDir)) => {
            let target = procfs::target(r)?;
            target.check_access()?;
            for fd in target.fds()? {
                let q = if e == PidEntry::FdDir {
                    PidEntry::Fd(fd)
                } else {
                    PidEntry::Fdinfo(fd)
                };
                out.push(entry(fd.to_string().into_bytes(), ProcNode::Pid(r, q)));
            }
        }
        _ => {}
    }
    Ok(out)
}

/// The text of /proc symlink `p`: /proc/self, /proc/thread-self, and
/// what the magic links stand for ('/path', 'pipe:[N]', ...).
pub fn readlink(p: ProcNode) -> SysResult<Vec<u8>> {
    let me = procfs::caller().ok_or(Errno::ENOENT)?;
    Ok(match p {
        ProcNode::SelfLink => me.pid.to_string().into_bytes(),
        ProcNode::ThreadSelf => format!("{}/task/{}", me.pid, me.tid).into_bytes(),
        ProcNode::Pid(r, e) => {
            let target = procfs::target(r)?;
            target.check_access()?;
            match e {
                PidEntry::Exe => target.live()?.exe,
                PidEntry::Cwd => {
                    let live = target.live()?;
                    live.fs.path_of(&live.dirs().1)
                }
                PidEntry::Root => {
                    let live = target.live()?;
                    live.fs.path_of(&live.dirs().0)
                }
                PidEntry::Fd(n) => procfs::describe(&target.live()?.fs, &target.file(n)?)?,
                _ => return Err(Errno::EINVAL),
            }
        }
        _ => return Err(Errno::EINVAL),
    })
}

/// What magic link `p` leads to when followed: the directory or file's
/// node, or None when the target has none (a pipe: the link itself opens
/// the descriptor's file).
pub fn follow(p: ProcNode) -> SysResult<Option<Arc<Node>>> {
    let ProcNode::Pid(r, e) = p else {
        return Ok(None);
    };
    let target = procfs::target(r)?;
    target.check_access()?;
    let live = target.live()?;
    Ok(match e {
        PidEntry::Cwd => Some(live.dirs().1),
        PidEntry::Root => Some(live.dirs().0),
        PidEntry::Exe => {
            let root = live.dirs().0;
            Some(resolve(&live.fs, &root, &root, &live.exe, Follow::Yes)?)
        }
        PidEntry::Fd(n) => target.file(n)?.ops.node().cloned(),
        _ => None,
    })
}

/// A file whose bytes were generated when it was opened (/proc, /sys).
pub struct Generated {
    bytes: Vec<u8>,
    node: Arc<Node>,
}

impl Generated {
    pub fn new(bytes: Vec<u8>, node: Arc<Node>) -> Arc<Generated> {
        Arc::new(Generated { bytes, node })
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
        Ok(self.node.current_stat())
    }

    fn node(&self) -> Option<&Arc<Node>> {
        Some(&self.node)
    }
}
