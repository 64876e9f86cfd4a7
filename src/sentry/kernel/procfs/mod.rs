//! The contents of /proc: finding the process a /proc/[pid] node is
//! about in the caller's PID namespace, the access check for its private
//! parts, and the generated files (`pid.rs` for a process's, `system.rs`
//! for the sandbox-wide ones).
//!
//! The caller is the task of the host thread asking (every syscall runs
//! on its task's thread); what other tasks show is their published view
//! (`view.rs`).

mod pid;
mod system;

use std::sync::Arc;

use super::process::{Control, ProcEntry};
use super::view::{Live, Published};
use super::Task;
use crate::abi::types::S_IFMT;
use crate::abi::{Errno, SysResult};
use crate::sentry::vfs::proc::{PidFile, PidRef, ProcKind};
use crate::sentry::vfs::OpenFile;

pub use system::cpu_list;

/// CAP_SYS_PTRACE: may look into any process.
const CAP_SYS_PTRACE: u32 = 19;

/// The calling task's published view, if this thread runs a task.
pub fn caller() -> Option<Published> {
    let view = super::signal::current_control()?.view.get();
    view.ns.is_some().then_some(view)
}

/// The pids of the caller's namespace, zombies included.
pub fn pids() -> SysResult<Vec<i32>> {
    let me = caller().ok_or(Errno::ENOENT)?;
    Ok(me.ns.as_ref().map(|ns| ns.pids()).unwrap_or_default())
}

/// A process (or one thread of it) as /proc/[pid] shows it to the caller.
pub struct Target {
    pub entry: ProcEntry,
    /// The thread shown: the one of /proc/[pid]/task/[tid], else the one
    /// that stands for the process.
    pub thread: Arc<Control>,
    pub view: Published,
    /// /proc/[pid]/task/[tid] rather than /proc/[pid].
    pub is_thread: bool,
    caller: Published,
}

/// Finds process `r.pid` (and thread `r.tid`) in the caller's namespace.
pub fn target(r: PidRef) -> SysResult<Target> {
    let caller = caller().ok_or(Errno::ENOENT)?;
    let ns = caller.ns.clone().ok_or(Errno::ENOENT)?;
    let entry = ns.entry(r.pid).ok_or(Errno::ENOENT)?;
    let thread = if r.tid == 0 {
        entry.control.clone()
    } else {
        ns.tasks(r.pid)
            .into_iter()
            .find(|(tid, _)| *tid == r.tid)
            .map(|(_, c)| c)
            .ok_or(Errno::ENOENT)?
    };
    Ok(Target {
        view: thread.view.get(),
        entry,
        thread,
        is_thread: r.tid != 0,
        caller,
    })
}

impl Target {
    /// The owner of the process's /proc files: its effective ids.
    pub fn owner(&self) -> (u32, u32) {
        (self.view.creds.euid, self.view.creds.egid)
    }

    /// Whether the caller may look into the process (its descriptors,
    /// environment, memory map, links): a simplified ptrace access check,
    /// the same process, the same user through and through, or
    /// CAP_SYS_PTRACE.
    pub fn may_access(&self) -> bool {
        let (me, it) = (&self.caller.creds, &self.view.creds);
        self.caller.pid == self.entry.pid
            || me.has_cap(CAP_SYS_PTRACE)
            || ([it.uid, it.euid, it.suid].iter().all(|&u| u == me.euid)
                && [it.gid, it.egid, it.sgid].iter().all(|&g| g == me.egid))
    }

    /// EACCES unless [`Target::may_access`].
    pub fn check_access(&self) -> SysResult<()> {
        if self.may_access() {
            Ok(())
        } else {
            Err(Errno::EACCES)
        }
    }

    /// The process's handles (ENOENT for a zombie).
    pub fn live(&self) -> SysResult<Live> {
        self.view.live.clone().ok_or(Errno::ENOENT)
    }

    /// Descriptor `fd` of the process.
    pub fn file(&self, fd: i32) -> SysResult<Arc<OpenFile>> {
        self.live()?.fds.get(fd).map_err(|_| Errno::ENOENT)
    }

    /// The open descriptors of the process.
    pub fn fds(&self) -> SysResult<Vec<i32>> {
        Ok(self.live()?.fds.open_fds())
    }

    /// The live threads' ids.
    pub fn tids(&self) -> Vec<i32> {
        let ns = self.caller.ns.as_ref();
        ns.map(|ns| {
            ns.tasks(self.entry.pid)
                .into_iter()
                .map(|(t, _)| t)
                .collect()
        })
        .unwrap_or_default()
    }
}

/// What /proc/[pid]/fd/N reads as for `file`: the path it was opened by,
/// 'pipe:[ino]', 'anon_inode:[eventfd]' and so on.
pub fn describe(fs: &crate::sentry::vfs::GoferFs, file: &Arc<OpenFile>) -> SysResult<Vec<u8>> {
    if let Some(target) = file.ops.fd_target() {
        return Ok(target);
    }
    if let Some(node) = file.ops.node() {
        // As the process's container sees it (a shared volume's path
        // differs between containers).
        let mut path = fs.path_of(node);
        if node.unlinked() {
            path.extend_from_slice(b" (deleted)");
        }
        return Ok(path);
    }
    let st = file.ops.stat()?;
    Ok(match st.mode & S_IFMT {
        crate::abi::types::S_IFIFO => format!("pipe:[{}]", st.ino).into_bytes(),
        crate::abi::types::S_IFCHR => b"/dev/console".to_vec(),
        _ => format!("anon_inode:[{}]", st.ino).into_bytes(),
    })
}

/// The bytes of /proc file `kind` as `t` sees it.
pub fn contents(t: &Task, kind: ProcKind) -> Vec<u8> {
    system::contents(t, kind)
}

/// The bytes of /proc/[pid] file `file` of `target`, as `t` sees it.
pub fn pid_contents(t: &Task, target: &Target, file: PidFile) -> SysResult<Vec<u8>> {
    if matches!(file, PidFile::Environ | PidFile::Maps) {
        target.check_access()?;
    }
    Ok(match file {
        PidFile::Stat => pid::stat(t, target).into_bytes(),
        PidFile::Status => pid::status(t, target).into_bytes(),
        PidFile::Statm => pid::statm(target).into_bytes(),
        PidFile::Cmdline => match target.view.live {
            Some(_) => target.entry.control.group.cmdline.lock().unwrap().clone(),
            None => vec![],
        },
        PidFile::Environ => pid::environ(target),
        PidFile::Comm => [comm(&target.view.comm), b"\n"].concat(),
        PidFile::Maps => pid::maps(target),
        PidFile::Mounts => target.live()?.fs.mounts_text(),
        PidFile::Mountinfo => target.live()?.fs.mountinfo_text(),
        PidFile::Limits => pid::limits(&target.view.rlimits).into_bytes(),
    })
}

/// /proc/[pid]/fdinfo/N.
pub fn fdinfo(target: &Target, fd: i32) -> SysResult<Vec<u8>> {
    target.check_access()?;
    pid::fdinfo(target, fd)
}

/// The name in a NUL-padded comm field.
fn comm(c: &[u8; 16]) -> &[u8] {
    let end = c.iter().position(|&b| b == 0).unwrap_or(16);
    &c[..end]
}
