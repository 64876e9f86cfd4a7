//! File attribute syscalls: truncate, fallocate, chmod, chown, utimes
//! and the sync family. On the root overlay a change to an image file
//! copies it up first (data and metadata, as overlayfs without metacopy);
//! memory files need no syncing, so the sync calls only check their fd.
//! On a bind mount the gofer changes the host file (SetAttr, Fsync).

use std::sync::Arc;

use super::file::{lookup_at, path_arg, permitted, AT_FDCWD};
use super::fs::{check_writable, owner_or_fowner};
use crate::abi::{Errno, SysResult};
use crate::gofer::SetAttr;
use crate::sentry::kernel::Task;
use crate::sentry::vfs::inotify;
use crate::sentry::vfs::tmpfs::{now, TmpInode};
use crate::sentry::vfs::{Follow, Node};

const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
const AT_EMPTY_PATH: u64 = 0x1000;
const UTIME_NOW: i64 = (1 << 30) - 1;
const UTIME_OMIT: i64 = (1 << 30) - 2;
const FALLOC_FL_KEEP_SIZE: u64 = 1;
const FALLOC_FL_PUNCH_HOLE: u64 = 2;
const PUNCH_KEEP: u64 = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
const CAP_CHOWN: u32 = 0;
const CAP_FSETID: u32 = 4;

/// The node a *at call with `flags` names: `path` relative to `dirfd`,
/// or `dirfd` itself for an empty path with AT_EMPTY_PATH.
fn target_at(t: &mut Task, dirfd: i32, path: &[u8], flags: u64) -> SysResult<Arc<Node>> {
    if path.is_empty() {
        if flags & AT_EMPTY_PATH == 0 {
            return Err(Errno::ENOENT);
        }
        return fd_node(t, dirfd);
    }
    let follow = if flags & AT_SYMLINK_NOFOLLOW != 0 {
        Follow::No
    } else {
        Follow::Yes
    };
    lookup_at(t, dirfd, path, follow)
}

/// The dentry of descriptor `fd` (or the working directory).
fn fd_node(t: &Task, fd: i32) -> SysResult<Arc<Node>> {
    if fd == AT_FDCWD {
        return Ok(t.cwd.clone());
    }
    let file = t.fds.get(fd)?;
    // Pipes and the like have no dentry: nothing to change there.
    file.ops.node().cloned().ok_or(Errno::EPERM)
}

/// The memory inode of `node` for a change of its attributes.
fn changeable(t: &Task, node: &Arc<Node>) -> SysResult<Arc<TmpInode>> {
    check_writable(node)?;
    t.fs.copy_up(node, true)
}

/// Changes `node`'s attributes: on a bind mount `attr` on the host, else
/// `mem` on its memory inode (copied up first).
fn change(t: &Task, node: &Arc<Node>, attr: SetAttr, mem: impl FnOnce(&TmpInode)) -> SysResult<()> {
    if node.mount.is_bind() {
        check_writable(node)?;
        t.fs.bind_setattr(node, &attr)?;
    } else {
        mem(&*changeable(t, node)?);
    }
    inotify::on_file(node, inotify::setattr_mask(&attr));
    Ok(())
}

/// Implements ftruncate(2).
pub fn sys_ftruncate(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let file = t.fds.get(a[0] as i32)?;
    if (a[1] as i64) < 0 || !file.writable() {
        return Err(Errno::EINVAL);
    }
    file.ops.truncate(a[1])?;
    file.modified();
    Ok(0)
}

/// Implements truncate(2).
pub fn sys_truncate(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let path = path_arg(t, a[0])?;
    if (a[1] as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    let node = lookup_at(t, AT_FDCWD, &path, Follow::Yes)?;
    if node.stat.is_dir() {
        return Err(Errno::EISDIR);
    }
    if !node.stat.is_reg() {
        return Err(Errno::EINVAL);
    }
    if !permitted(t, &node.current_stat(), 2) {
        return Err(Errno::EACCES);
    }
    check_writable(&node)?;
    if node.mount.is_bind() {
        let attr = SetAttr {
            size: Some(a[1]),
            ..Default::default()
        };
        t.fs.bind_setattr(&node, &attr)?;
    } else {
        t.fs.copy_up(&node, a[1] != 0)?.truncate(a[1])?;
    }
    inotify::on_file(&node, inotify::IN_MODIFY);
    Ok(0)
}

/// Implements fallocate(2): mode 0 grows the file, and a memory file's
/// pages in the range are made now (charged to its mount: ENOSPC here, as
/// tmpfs; a bind mount's file is extended on the host, without reserving
/// blocks); KEEP_SIZE makes them within the size; PUNCH_HOLE|KEEP_SIZE zeroes a range of a memory
/// file (freeing its whole pages, as tmpfs); other modes are not
/// implemented (EOPNOTSUPP, as for a file system without them, and so
/// is a punch on a bind mount's file).
pub fn sys_fallocate(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let (mode, off, len) = (a[1], a[2] as i64, a[3] as i64);
    let file = t.fds.get(a[0] as i32)?;
    if !file.writable() {
        return Err(Errno::EBADF);
    }
    if off < 0 || len <= 0 {
        return Err(Errno::EINVAL);
    }
    if file.ops.pipe().is_some() {
        return Err(Errno::ESPIPE);
    }
    if file.ops.stat()?.is_dir() {
        return Err(Errno::EISDIR);
    }
    let bind = file.ops.node().is_some_and(|n| n.mount.is_bind());
    if file.ops.shared_object().is_none() && !bind {
        return Err(Errno::ENODEV);
    }
    let end = off.checked_add(len).ok_or(Errno::EFBIG)? as u64;
    match mode {
        0 | FALLOC_FL_KEEP_SIZE => {
            let size = file.ops.stat()?.size as u64;
            if mode == 0 && end > size {
                file.ops.truncate(end)?;
            }
            // A memory file gets its pages now, so that ENOSPC comes
            // here (pages past the end with KEEP_SIZE are not kept).
            if let Some(data) = file.ops.shared_object() {
                if let Err(e) = data.allocate(off as u64, len as u64) {
                    if mode == 0 && end > size {
                        file.ops.truncate(size)?;
                    }
                    return Err(e);
                }
            }
        }
        // Linux asks PUNCH_HOLE to keep the size.
        FALLOC_FL_PUNCH_HOLE => return Err(Errno::EOPNOTSUPP),
        PUNCH_KEEP => match file.ops.shared_object() {
            Some(data) => data.punch_hole(off as u64, len as u64),
            None => {
                t.unimplemented_option("fallocate", mode);
                return Err(Errno::EOPNOTSUPP);
            }
        },
        _ => {
            t.unimplemented_option("fallocate", mode);
            return Err(Errno::EOPNOTSUPP);
        }
    }
    file.modified();
    Ok(0)
}

/// Changes the mode of `node` (chmod family).
fn chmod_node(t: &Task, node: &Arc<Node>, mode: u32) -> SysResult<u64> {
    if node.stat.is_symlink() {
        return Err(Errno::EOPNOTSUPP);
    }
    check_writable(node)?;
    if !owner_or_fowner(t, node) {
        return Err(Errno::EPERM);
    }
    let st = node.current_stat();
    let mut mode = mode & 0o7777;
    let in_group = st.gid == t.creds.egid || t.groups.contains(&st.gid);
    if !st.is_dir() && !in_group && !t.creds.has_cap(CAP_FSETID) {
        mode &= !0o2000;
    }
    let attr = SetAttr {
        mode: Some(mode),
        ..Default::default()
    };
    change(t, node, attr, |i| i.chmod(mode))?;
    Ok(0)
}

/// Implements fchmodat(2).
pub fn sys_fchmodat(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let path = path_arg(t, a[1])?;
    let node = lookup_at(t, a[0] as i32, &path, Follow::Yes)?;
    chmod_node(t, &node, a[2] as u32)
}

/// Implements chmod(2).
pub fn sys_chmod(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    sys_fchmodat(t, [AT_FDCWD as u64, a[0], a[1], 0, 0, 0])
}

/// Implements fchmod(2).
pub fn sys_fchmod(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let node = fd_node(t, a[0] as i32)?;
    chmod_node(t, &node, a[1] as u32)
}

/// Changes the owner of `node`; -1 keeps an id. Changing the user needs
/// CAP_CHOWN; the owner may change the group to one of their own.
fn chown_node(t: &Task, node: &Arc<Node>, uid: u32, gid: u32) -> SysResult<u64> {
    check_writable(node)?;
    let st = node.current_stat();
    let uid = (uid != u32::MAX).then_some(uid);
    let gid = (gid != u32::MAX).then_some(gid);
    let owner = st.uid == t.creds.euid;
    let uid_ok = uid.is_none_or(|u| u == st.uid && owner);
    let gid_ok =
        gid.is_none_or(|g| owner && (g == st.gid || g == t.creds.egid || t.groups.contains(&g)));
    let allowed = (uid_ok && gid_ok) || t.creds.has_cap(CAP_CHOWN);
    if !allowed {
        return Err(Errno::EPERM);
    }
    let attr = SetAttr {
        uid,
        gid,
        ..Default::default()
    };
    change(t, node, attr, |i| i.chown(uid, gid))?;
    Ok(0)
}

/// Implements fchownat(2).
pub fn sys_fchownat(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let flags = a[4];
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = path_arg(t, a[1])?;
    let node = target_at(t, a[0] as i32, &path, flags)?;
    chown_node(t, &node, a[2] as u32, a[3] as u32)
}

/// Implements chown(2).
pub fn sys_chown(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    sys_fchownat(t, [AT_FDCWD as u64, a[0], a[1], a[2], 0, 0])
}

/// Implements lchown(2).
pub fn sys_lchown(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    sys_fchownat(
        t,
        [AT_FDCWD as u64, a[0], a[1], a[2], AT_SYMLINK_NOFOLLOW, 0],
    )
}

/// Implements fchown(2).
pub fn sys_fchown(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let node = fd_node(t, a[0] as i32)?;
    chown_node(t, &node, a[1] as u32, a[2] as u32)
}

/// A new time for utimensat: None leaves it (UTIME_OMIT).
type NewTime = Option<(i64, i64)>;

/// Sets the times of `node`: any time needs ownership or CAP_FOWNER;
/// both "now" also write permission.
fn utimes_node(t: &Task, node: &Arc<Node>, times: Option<[NewTime; 2]>) -> SysResult<u64> {
    check_writable(node)?;
    let to_now = times.is_none();
    if !owner_or_fowner(t, node) {
        if !to_now {
            return Err(Errno::EPERM);
        }
        if !permitted(t, &node.current_stat(), 2) {
            return Err(Errno::EACCES);
        }
    }
    let [at, mt] = times.unwrap_or([Some(now()), Some(now())]);
    if at.is_none() && mt.is_none() {
        return Ok(0);
    }
    let attr = SetAttr {
        atime: at,
        mtime: mt,
        ..Default::default()
    };
    change(t, node, attr, |i| i.set_times(at, mt))?;
    Ok(0)
}

/// Reads a timespec pair; None when both are UTIME_NOW (the "now" case).
fn read_timespecs(t: &mut Task, addr: u64) -> SysResult<Option<[NewTime; 2]>> {
    if addr == 0 {
        return Ok(None);
    }
    let mut raw = [0u8; 32];
    t.mm.copy_in(addr, &mut raw)?;
    let word = |i: usize| i64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap());
    let mut out = [None, None];
    let mut all_now = true;
    for (i, slot) in out.iter_mut().enumerate() {
        let (sec, nsec) = (word(2 * i), word(2 * i + 1));
        *slot = match nsec {
            UTIME_NOW => Some(now()),
            UTIME_OMIT => None,
            0..=999_999_999 => Some((sec, nsec)),
            _ => return Err(Errno::EINVAL),
        };
        all_now &= nsec == UTIME_NOW;
    }
    Ok(if all_now { None } else { Some(out) })
}

/// Implements utimensat(2) (a NULL path is futimens on `dirfd`).
pub fn sys_utimensat(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let flags = a[3];
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let times = read_timespecs(t, a[2])?;
    let node = if a[1] == 0 {
        if flags & AT_SYMLINK_NOFOLLOW != 0 {
            return Err(Errno::EINVAL);
        }
        fd_node(t, a[0] as i32).map_err(|e| if e == Errno::EPERM { Errno::EBADF } else { e })?
    } else {
        let path = path_arg(t, a[1])?;
        target_at(t, a[0] as i32, &path, flags)?
    };
    utimes_node(t, &node, times)
}

/// Implements futimesat(2): timevals, microseconds.
pub fn sys_futimesat(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let times = if a[2] == 0 {
        None
    } else {
        let mut raw = [0u8; 32];
        t.mm.copy_in(a[2], &mut raw)?;
        let word = |i: usize| i64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap());
        let tv = |i: usize| -> SysResult<NewTime> {
            let (sec, usec) = (word(2 * i), word(2 * i + 1));
            if !(0..1_000_000).contains(&usec) {
                return Err(Errno::EINVAL);
            }
            Ok(Some((sec, usec * 1000)))
        };
        Some([tv(0)?, tv(1)?])
    };
    let path = path_arg(t, a[1])?;
    let node = target_at(t, a[0] as i32, &path, 0)?;
    utimes_node(t, &node, times)
}

/// Implements utimes(2).
pub fn sys_utimes(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    sys_futimesat(t, [AT_FDCWD as u64, a[0], a[1], 0, 0, 0])
}

/// Implements utime(2): a `struct utimbuf` of whole seconds.
pub fn sys_utime(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let times = if a[1] == 0 {
        None
    } else {
        let mut raw = [0u8; 16];
        t.mm.copy_in(a[1], &mut raw)?;
        let word = |i: usize| i64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap());
        Some([Some((word(0), 0)), Some((word(1), 0))])
    };
    let path = path_arg(t, a[0])?;
    let node = lookup_at(t, AT_FDCWD, &path, Follow::Yes)?;
    utimes_node(t, &node, times)
}

/// Implements fsync(2) and fdatasync(2): memory files have nothing to
/// write back, a bind mount's file is synced on the host; pipes and the
/// like cannot be synced.
pub fn sys_fsync(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let file = t.fds.get(a[0] as i32)?;
    if file.ops.pipe().is_some() {
        return Err(Errno::EINVAL);
    }
    file.ops.sync()?;
    Ok(0)
}

/// Implements syncfs(2).
pub fn sys_syncfs(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    t.fds.get(a[0] as i32)?;
    Ok(0)
}

/// Implements sync(2).
pub fn sys_sync(_t: &mut Task, _a: [u64; 6]) -> SysResult<u64> {
    Ok(0)
}

/// Implements sync_file_range(2).
pub fn sys_sync_file_range(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let file = t.fds.get(a[0] as i32)?;
    if a[3] & !7 != 0 || (a[1] as i64) < 0 || (a[2] as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    if file.ops.pipe().is_some() {
        return Err(Errno::ESPIPE);
    }
    Ok(0)
}
