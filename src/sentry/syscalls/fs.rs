//! File system syscalls that change the tree: mkdir, unlink, rmdir,
//! rename, symlink, truncate, chmod. The image is read-only (EROFS) and
//! /dev is the sentry's own (EACCES); /tmp is the sentry's memory file
//! system, where they all work.

use std::sync::Arc;

use super::file::{dir_of, lookup_at, path_arg, AT_FDCWD};
use crate::abi::{Errno, SysResult};
use crate::sentry::kernel::Task;
use crate::sentry::vfs::tmpfs::TmpInode;
use crate::sentry::vfs::{resolve_parent, Follow, Node};

const AT_REMOVEDIR: u64 = 0x200;
const RENAME_NOREPLACE: u64 = 1;
const RENAME_EXCHANGE: u64 = 2;

/// The directory and name `path` names relative to `dirfd`, for a change.
fn parent_at(t: &mut Task, dirfd: i32, path: &[u8]) -> SysResult<(Arc<Node>, Vec<u8>)> {
    let base = if path.starts_with(b"/") {
        t.root.clone()
    } else {
        dir_of(t, dirfd)?
    };
    resolve_parent(&t.fs, &t.root, &base, path)
}

/// Checks that `dir` may be changed by the task; EROFS for the image.
fn writable_dir(t: &Task, dir: &Node) -> SysResult<()> {
    let Some(inode) = &dir.tmp else {
        return Err(if dir.synth.is_some() {
            Errno::EACCES
        } else {
            Errno::EROFS
        });
    };
    if t.creds.euid != 0 && t.access_bits(&inode.stat()) & 3 != 3 {
        return Err(Errno::EACCES);
    }
    Ok(())
}

/// Whether the sticky bit of `dir` forbids the task removing `victim`.
fn sticky_denied(t: &Task, dir: &Node, victim: &Node) -> bool {
    let ds = dir.current_stat();
    let vs = victim.current_stat();
    ds.mode & 0o1000 != 0 && t.creds.euid != 0 && vs.uid != t.creds.euid && ds.uid != t.creds.euid
}

/// Creates a regular file `name` in `dir` (openat with O_CREAT).
pub fn create_file(t: &mut Task, dir: &Arc<Node>, name: &[u8], mode: u32) -> SysResult<Arc<Node>> {
    writable_dir(t, dir)?;
    let (uid, gid) = (t.creds.euid, t.creds.egid);
    let inode = TmpInode::new_file(mode & !t.umask, uid, gid, &t.k.memory);
    let node = Node::new_tmp(name, dir, inode);
    dir.tmp_link(name, node.clone())?;
    Ok(node)
}

/// Links a new tmpfs inode at `path` (relative to `dirfd`): EEXIST when
/// the name is taken, as mkdir and symlink report.
fn new_entry(
    t: &mut Task,
    dirfd: u64,
    path: &[u8],
    make: impl FnOnce(&Task) -> Arc<TmpInode>,
) -> SysResult<u64> {
    let (dir, name) = parent_at(t, dirfd as i32, path).map_err(|e| {
        if e == Errno::EINVAL {
            Errno::EEXIST
        } else {
            e
        }
    })?;
    if t.fs.lookup(&dir, &name).is_ok() {
        return Err(Errno::EEXIST);
    }
    writable_dir(t, &dir)?;
    dir.tmp_link(&name, Node::new_tmp(&name, &dir, make(t)))?;
    Ok(0)
}

/// Implements mkdirat(2).
pub fn sys_mkdirat(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let path = path_arg(t, a[1])?;
    new_entry(t, a[0], &path, |t| {
        TmpInode::new_dir(a[2] as u32 & !t.umask, t.creds.euid, t.creds.egid)
    })
}

/// Implements mkdir(2).
pub fn sys_mkdir(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    sys_mkdirat(t, [AT_FDCWD as u64, a[0], a[1], 0, 0, 0])
}

/// Implements unlinkat(2).
pub fn sys_unlinkat(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let flags = a[2];
    if flags & !AT_REMOVEDIR != 0 {
        return Err(Errno::EINVAL);
    }
    let path = path_arg(t, a[1])?;
    let (dir, name) = parent_at(t, a[0] as i32, &path).map_err(|e| match e {
        Errno::EINVAL if flags & AT_REMOVEDIR != 0 => Errno::EINVAL,
        Errno::EINVAL => Errno::EISDIR,
        e => e,
    })?;
    let victim = t.fs.lookup(&dir, &name)?;
    writable_dir(t, &dir)?;
    if sticky_denied(t, &dir, &victim) {
        return Err(Errno::EPERM);
    }
    let is_dir = victim.stat.is_dir();
    if flags & AT_REMOVEDIR != 0 {
        if !is_dir {
            return Err(Errno::ENOTDIR);
        }
        if !victim.tmp_children().is_empty() {
            return Err(Errno::ENOTEMPTY);
        }
    } else if is_dir {
        return Err(Errno::EISDIR);
    }
    dir.tmp_unlink(&name);
    Ok(0)
}

/// Implements unlink(2).
pub fn sys_unlink(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    sys_unlinkat(t, [AT_FDCWD as u64, a[0], 0, 0, 0, 0])
}

/// Implements rmdir(2).
pub fn sys_rmdir(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    sys_unlinkat(t, [AT_FDCWD as u64, a[0], AT_REMOVEDIR, 0, 0, 0])
}

/// Whether `node` is `dir` or one of its ancestors: moving `node` into
/// `dir` would put a directory inside itself.
fn is_ancestor(node: &Arc<Node>, dir: &Arc<Node>) -> bool {
    let mut cur = Some(dir.clone());
    while let Some(c) = cur {
        if Arc::ptr_eq(&c, node) {
            return true;
        }
        cur = c.parent();
    }
    false
}

/// Implements renameat2(2), with RENAME_NOREPLACE and RENAME_EXCHANGE.
pub fn sys_renameat2(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let flags = a[4];
    if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE) != 0
        || flags == RENAME_NOREPLACE | RENAME_EXCHANGE
    {
        return Err(Errno::EINVAL);
    }
    let (old_path, new_path) = (path_arg(t, a[1])?, path_arg(t, a[3])?);
    let (odir, oname) = parent_at(t, a[0] as i32, &old_path).map_err(|e| {
        if e == Errno::EINVAL {
            Errno::EBUSY
        } else {
            e
        }
    })?;
    let (ndir, nname) = parent_at(t, a[2] as i32, &new_path).map_err(|e| {
        if e == Errno::EINVAL {
            Errno::EBUSY
        } else {
            e
        }
    })?;
    let node = t.fs.lookup(&odir, &oname)?;
    let target = t.fs.lookup(&ndir, &nname).ok();
    writable_dir(t, &odir)?;
    writable_dir(t, &ndir)?;
    if odir.tmp.is_none() || ndir.tmp.is_none() {
        return Err(Errno::EXDEV);
    }
    if target.as_ref().is_some_and(|x| Arc::ptr_eq(x, &node)) {
        return Ok(0);
    }
    if node.stat.is_dir() && is_ancestor(&node, &ndir) {
        return Err(Errno::EINVAL);
    }
    if sticky_denied(t, &odir, &node) {
        return Err(Errno::EPERM);
    }
    if flags & RENAME_EXCHANGE != 0 {
        let other = target.ok_or(Errno::ENOENT)?;
        odir.tmp_unlink(&oname);
        ndir.tmp_unlink(&nname);
        node.tmp_move(&ndir, &nname);
        other.tmp_move(&odir, &oname);
        ndir.tmp_link(&nname, node)?;
        odir.tmp_link(&oname, other)?;
        return Ok(0);
    }
    if let Some(old) = &target {
        if flags & RENAME_NOREPLACE != 0 {
            return Err(Errno::EEXIST);
        }
        match (node.stat.is_dir(), old.stat.is_dir()) {
            (true, false) => return Err(Errno::ENOTDIR),
            (false, true) => return Err(Errno::EISDIR),
            (true, true) if !old.tmp_children().is_empty() => return Err(Errno::ENOTEMPTY),
            _ => {}
        }
        ndir.tmp_unlink(&nname);
    }
    odir.tmp_unlink(&oname);
    node.tmp_move(&ndir, &nname);
    ndir.tmp_link(&nname, node)?;
    Ok(0)
}

/// Implements renameat(2).
pub fn sys_renameat(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    sys_renameat2(t, [a[0], a[1], a[2], a[3], 0, 0])
}

/// Implements rename(2).
pub fn sys_rename(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    sys_renameat2(t, [AT_FDCWD as u64, a[0], AT_FDCWD as u64, a[1], 0, 0])
}

/// Implements symlinkat(2).
pub fn sys_symlinkat(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let target = path_arg(t, a[0])?;
    if target.is_empty() {
        return Err(Errno::ENOENT);
    }
    let path = path_arg(t, a[2])?;
    new_entry(t, a[1], &path, |t| {
        TmpInode::new_symlink(&target, t.creds.euid, t.creds.egid)
    })
}

/// Implements symlink(2).
pub fn sys_symlink(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    sys_symlinkat(t, [a[0], AT_FDCWD as u64, a[1], 0, 0, 0])
}

/// Implements ftruncate(2).
pub fn sys_ftruncate(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let file = t.fds.get(a[0] as i32)?;
    if (a[1] as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    if !file.writable() {
        return Err(Errno::EINVAL);
    }
    file.ops.truncate(a[1]).map(|_| 0)
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
    match &node.tmp {
        Some(inode) => inode.truncate(a[1]).map(|_| 0),
        None => Err(Errno::EROFS),
    }
}

/// Implements fchmodat(2).
pub fn sys_fchmodat(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let path = path_arg(t, a[1])?;
    let node = lookup_at(t, a[0] as i32, &path, Follow::Yes)?;
    chmod_node(t, &node, a[2] as u32)
}

fn chmod_node(t: &Task, node: &Node, mode: u32) -> SysResult<u64> {
    let Some(inode) = &node.tmp else {
        return Err(Errno::EROFS);
    };
    if t.creds.euid != 0 && inode.stat().uid != t.creds.euid {
        return Err(Errno::EPERM);
    }
    inode.chmod(mode);
    Ok(0)
}

/// Implements chmod(2).
pub fn sys_chmod(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    sys_fchmodat(t, [AT_FDCWD as u64, a[0], a[1], 0, 0, 0])
}

/// Implements fchmod(2).
pub fn sys_fchmod(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let file = t.fds.get(a[0] as i32)?;
    let node = file.ops.node().ok_or(Errno::EINVAL)?.clone();
    chmod_node(t, &node, a[1] as u32)
}
