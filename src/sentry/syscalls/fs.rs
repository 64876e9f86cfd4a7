//! File system syscalls that change the tree: mkdir, mknod, unlink, rmdir,
//! rename, link, symlink. They work on every memory mount (/tmp, tmpfs
//! mounts), on the root overlay, where a change to an image entry
//! copies it up or leaves a whiteout (vfs/overlay.rs), and on writable
//! bind mounts, where the gofer makes it on the host (vfs/bind.rs); the
//! sentry's /dev and /proc refuse them (EACCES), a read-only mount with
//! EROFS.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use super::file::{dir_of, lookup_at, path_arg, permitted, AT_FDCWD};
use crate::abi::types::{S_IFCHR, S_IFIFO, S_IFMT, S_IFREG, S_IFSOCK};
use crate::abi::{Errno, SysResult};
use crate::gofer::Owner;
use crate::sentry::kernel::Task;
use crate::sentry::vfs::tmpfs::TmpInode;
use crate::sentry::vfs::{resolve_parent, Follow, NewEntry, Node};

const AT_REMOVEDIR: u64 = 0x200;
const AT_SYMLINK_FOLLOW: u64 = 0x400;
const AT_EMPTY_PATH: u64 = 0x1000;
const RENAME_NOREPLACE: u64 = 1;
const RENAME_EXCHANGE: u64 = 2;
const RENAME_WHITEOUT: u64 = 4;
/// CAP_FOWNER: bypasses the owner checks (chmod, utimes, sticky dirs).
pub(super) const CAP_FOWNER: u32 = 3;

/// The directory and name `path` names relative to `dirfd`, for a change.
fn parent_at(t: &mut Task, dirfd: i32, path: &[u8]) -> SysResult<(Arc<Node>, Vec<u8>)> {
    let base = if path.starts_with(b"/") {
        t.root.clone()
    } else {
        dir_of(t, dirfd)?
    };
    resolve_parent(&t.fs, &t.root, &base, path)
}

/// Checks that the file system `node` is on may be changed: EACCES for
/// the sentry's /dev and /proc, EROFS for a read-only mount.
pub(super) fn check_writable(node: &Node) -> SysResult<()> {
    if node.synth.is_some() {
        return Err(Errno::EACCES);
    }
    if !node.mount.writable() {
        return Err(Errno::EROFS);
    }
    Ok(())
}

/// Checks that the task may change the entries of `dir`.
fn writable_dir(t: &Task, dir: &Node) -> SysResult<()> {
    check_writable(dir)?;
    if !permitted(t, &dir.current_stat(), 3) {
        return Err(Errno::EACCES);
    }
    Ok(())
}

/// Whether the task owns `node` or may act as its owner (CAP_FOWNER).
pub(super) fn owner_or_fowner(t: &Task, node: &Node) -> bool {
    t.creds.has_cap(CAP_FOWNER) || node.current_stat().uid == t.creds.euid
}

/// Whether the sticky bit of `dir` forbids the task removing `victim`.
fn sticky_denied(t: &Task, dir: &Node, victim: &Node) -> bool {
    let ds = dir.current_stat();
    ds.mode & 0o1000 != 0 && ds.uid != t.creds.euid && !owner_or_fowner(t, victim)
}

/// Creates a regular file `name` in `dir` (openat with O_CREAT).
pub fn create_file(t: &mut Task, dir: &Arc<Node>, name: &[u8], mode: u32) -> SysResult<Arc<Node>> {
    let inode = new_file_in(t, dir, mode)?;
    t.fs.create(dir, name, inode)
}

/// A new memory file for directory `dir` (which the task may change),
/// owned as a file made there is, with `mode` less the umask.
fn new_file_in(t: &Task, dir: &Node, mode: u32) -> SysResult<Arc<TmpInode>> {
    writable_dir(t, dir)?;
    let (uid, gid) = owner_ids(t, dir);
    Ok(TmpInode::new_file(
        mode & !t.umask,
        uid,
        gid,
        &t.k.memory,
        dir.mount.quota,
    ))
}

/// Makes a regular file in directory `dir`'s file system that has no name
/// and no link yet (O_TMPFILE).
pub fn create_unnamed_file(t: &mut Task, dir: &Arc<Node>, mode: u32) -> SysResult<Arc<Node>> {
    let inode = new_file_in(t, dir, mode)?;
    inode.unlink();
    let name = format!("#{}", inode.stat().ino);
    Ok(Node::new_upper(
        name.as_bytes(),
        Some(dir),
        inode,
        dir.mount.clone(),
    ))
}

/// Creates and opens a regular file `name` in bind directory `dir` on
/// the host (openat with O_CREAT); returns it with a read-write host fd.
pub fn create_bind_file(
    t: &mut Task,
    dir: &Arc<Node>,
    name: &[u8],
    mode: u32,
) -> SysResult<(Arc<Node>, OwnedFd)> {
    writable_dir(t, dir)?;
    let (uid, gid) = owner_ids(t, dir);
    t.fs.bind_create_file(dir, name, mode & !t.umask, Owner { uid, gid })
}

/// The owner of a new file in `dir`: the task's fsuid, and the
/// directory's group when it is set-group-ID.
fn owner_ids(t: &Task, dir: &Node) -> (u32, u32) {
    let ds = dir.current_stat();
    let gid = if ds.mode & 0o2000 != 0 {
        ds.gid
    } else {
        t.creds.egid
    };
    (t.creds.euid, gid)
}

/// Makes a new entry at `path` (relative to `dirfd`) holding `make`'s
/// inode, or on a bind mount `bind` on the host (EOPNOTSUPP if None):
/// EEXIST when the name is taken, as mkdir and symlink report.
fn new_entry(
    t: &mut Task,
    dirfd: u64,
    path: &[u8],
    bind: Option<NewEntry>,
    make: impl FnOnce(&Task, u32, u32) -> Arc<TmpInode>,
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
    let (uid, gid) = owner_ids(t, &dir);
    if dir.mount.is_bind() {
        let what = bind.ok_or(Errno::EOPNOTSUPP)?;
        t.fs.bind_make(&dir, &name, what, Owner { uid, gid })?;
        return Ok(0);
    }
    t.fs.create(&dir, &name, make(t, uid, gid))?;
    Ok(0)
}

/// Implements mkdirat(2).
pub fn sys_mkdirat(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let path = path_arg(t, a[1])?;
    let mode = a[2] as u32 & 0o7777 & !t.umask;
    new_entry(t, a[0], &path, Some(NewEntry::Dir(mode)), |_, uid, gid| {
        TmpInode::new_dir(mode, uid, gid)
    })
}

/// Implements mkdir(2).
pub fn sys_mkdir(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    sys_mkdirat(t, [AT_FDCWD as u64, a[0], a[1], 0, 0, 0])
}

/// Implements mknodat(2): FIFOs, regular files and socket names; device
/// nodes are refused (EPERM) even with CAP_MKNOD, as the sandbox has no
/// host devices to give.
pub fn sys_mknodat(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let path = path_arg(t, a[1])?;
    let mode = a[2] as u32;
    let perm = mode & 0o7777 & !t.umask;
    let mem = t.k.memory.clone();
    match mode & S_IFMT {
        0 | S_IFREG => {
            let (dir, _) = parent_at(t, a[0] as i32, &path)?;
            let quota = dir.mount.quota;
            new_entry(t, a[0], &path, Some(NewEntry::File(perm)), |_, uid, gid| {
                TmpInode::new_file(perm, uid, gid, &mem, quota)
            })
        }
        S_IFIFO => new_entry(t, a[0], &path, Some(NewEntry::Fifo(perm)), |_, uid, gid| {
            TmpInode::new_fifo(perm, uid, gid)
        }),
        // A socket name on the host would be a socket no one listens on.
        S_IFSOCK => new_entry(t, a[0], &path, None, |_, uid, gid| {
            TmpInode::new_socket(perm, uid, gid)
        }),
        kind @ (S_IFCHR | crate::abi::types::S_IFBLK) => {
            const CAP_MKNOD: u32 = 27;
            if !t.creds.has_cap(CAP_MKNOD) {
                return Err(Errno::EPERM);
            }
            let (dir, _) = parent_at(t, a[0] as i32, &path)?;
            if dir.mount.is_bind() {
                // The gofer makes no device nodes on the host.
                return Err(Errno::EPERM);
            }
            let rdev = a[3];
            new_entry(t, a[0], &path, None, |_, uid, gid| {
                TmpInode::new_device(kind, perm, rdev, uid, gid)
            })
        }
        _ => Err(Errno::EINVAL),
    }
}

/// Makes the socket inode a bind(2) to `path` names (mode 0777 less the
/// umask): EADDRINUSE when the name is taken. A bind mount has no room for
/// sentry sockets (EOPNOTSUPP).
pub fn make_socket_node(t: &mut Task, path: &[u8]) -> SysResult<Arc<TmpInode>> {
    let perm = 0o777 & !t.umask;
    let mut made = None;
    new_entry(t, AT_FDCWD as u64, path, None, |_, uid, gid| {
        let inode = TmpInode::new_socket(perm, uid, gid);
        made = Some(inode.clone());
        inode
    })
    .map_err(|e| {
        if e == Errno::EEXIST {
            Errno::EADDRINUSE
        } else {
            e
        }
    })?;
    made.ok_or(Errno::EOPNOTSUPP)
}

/// Implements mknod(2).
pub fn sys_mknod(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    sys_mknodat(t, [AT_FDCWD as u64, a[0], a[1], a[2], 0, 0])
}

/// Checks that `victim` (named in `dir`) may be removed or renamed away.
fn check_removable(t: &Task, dir: &Node, victim: &Node) -> SysResult<()> {
    writable_dir(t, dir)?;
    if sticky_denied(t, dir, victim) {
        return Err(Errno::EPERM);
    }
    if victim.is_mount_root() {
        return Err(Errno::EBUSY);
    }
    Ok(())
}

/// The last component of `path`, trailing slashes aside (empty for the
/// root).
fn last_component(path: &[u8]) -> &[u8] {
    let end = path.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
    let path = &path[..end];
    let start = path.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
    &path[start..]
}

/// Implements unlinkat(2).
pub fn sys_unlinkat(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let flags = a[2];
    if flags & !AT_REMOVEDIR != 0 {
        return Err(Errno::EINVAL);
    }
    let path = path_arg(t, a[1])?;
    let (dir, name) = parent_at(t, a[0] as i32, &path).map_err(|e| match e {
        // rmdir of "..", ".", "/" (as Linux tells them apart).
        Errno::EINVAL if flags & AT_REMOVEDIR != 0 => match last_component(&path) {
            b".." => Errno::ENOTEMPTY,
            b"" => Errno::EBUSY,
            _ => Errno::EINVAL,
        },
        Errno::EINVAL => Errno::EISDIR,
        e => e,
    })?;
    let victim = t.fs.lookup(&dir, &name)?;
    let is_dir = victim.stat.is_dir();
    if flags & AT_REMOVEDIR != 0 {
        if !is_dir {
            return Err(Errno::ENOTDIR);
        }
    } else if is_dir {
        return Err(Errno::EISDIR);
    }
    check_removable(t, &dir, &victim)?;
    if is_dir && !t.fs.is_empty(&victim)? {
        return Err(Errno::ENOTEMPTY);
    }
    t.fs.remove(&dir, &name, &victim)?;
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

/// The directory and last name of a rename operand ("." and ".." are
/// EBUSY there), and whether the path ended in a slash (then it must
/// name a directory).
fn rename_operand(t: &mut Task, dirfd: u64, addr: u64) -> SysResult<(Arc<Node>, Vec<u8>, bool)> {
    let path = path_arg(t, addr)?;
    let (dir, name) = parent_at(t, dirfd as i32, &path).map_err(|e| {
        if e == Errno::EINVAL {
            Errno::EBUSY
        } else {
            e
        }
    })?;
    Ok((dir, name, path.ends_with(b"/")))
}

/// Implements renameat2(2), with RENAME_NOREPLACE and RENAME_EXCHANGE.
pub fn sys_renameat2(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let flags = a[4];
    let known = RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT;
    if flags & !known != 0
        || flags & RENAME_EXCHANGE != 0 && flags & (RENAME_NOREPLACE | RENAME_WHITEOUT) != 0
    {
        return Err(Errno::EINVAL);
    }
    const CAP_MKNOD: u32 = 27;
    if flags & RENAME_WHITEOUT != 0 && !t.creds.has_cap(CAP_MKNOD) {
        return Err(Errno::EPERM);
    }
    let (odir, oname, oslash) = rename_operand(t, a[0], a[1])?;
    let (ndir, nname, nslash) = rename_operand(t, a[2], a[3])?;
    let node = t.fs.lookup(&odir, &oname)?;
    if (oslash || nslash) && !node.stat.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    let target = match t.fs.lookup(&ndir, &nname) {
        Ok(n) => Some(n),
        Err(Errno::ENOENT) => None,
        Err(e) => return Err(e),
    };
    check_removable(t, &odir, &node)?;
    writable_dir(t, &ndir)?;
    if !Arc::ptr_eq(&odir.mount, &ndir.mount) {
        return Err(Errno::EXDEV);
    }
    if target.as_ref().is_some_and(|x| Arc::ptr_eq(x, &node)) {
        return Ok(0);
    }
    if node.stat.is_dir() && is_ancestor(&node, &ndir) {
        return Err(Errno::EINVAL);
    }
    if flags & RENAME_EXCHANGE != 0 {
        let other = target.ok_or(Errno::ENOENT)?;
        check_removable(t, &ndir, &other)?;
        if other.stat.is_dir() && is_ancestor(&other, &odir) {
            return Err(Errno::EINVAL);
        }
        t.fs.exchange((&odir, &oname), (&ndir, &nname), &node, &other)?;
        return Ok(0);
    }
    if let Some(old) = &target {
        if flags & RENAME_NOREPLACE != 0 {
            return Err(Errno::EEXIST);
        }
        check_removable(t, &ndir, old)?;
        match (node.stat.is_dir(), old.stat.is_dir()) {
            (true, false) => return Err(Errno::ENOTDIR),
            (false, true) => return Err(Errno::EISDIR),
            (true, true) if !t.fs.is_empty(old)? => return Err(Errno::ENOTEMPTY),
            _ => {}
        }
    }
    if flags & RENAME_WHITEOUT != 0 && odir.mount.is_bind() {
        // The host's file system is not asked for whiteouts.
        return Err(Errno::EINVAL);
    }
    t.fs.rename((&odir, &oname), (&ndir, &nname), &node, target.as_ref())?;
    if flags & RENAME_WHITEOUT != 0 {
        // What overlayfs leaves over a name: a character device 0:0.
        let (uid, gid) = owner_ids(t, &odir);
        let whiteout = TmpInode::new_device(crate::abi::types::S_IFCHR, 0, 0, uid, gid);
        t.fs.create(&odir, &oname, whiteout)?;
    }
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

/// Implements linkat(2): AT_SYMLINK_FOLLOW, and AT_EMPTY_PATH (which
/// Linux allows with CAP_DAC_READ_SEARCH).
pub fn sys_linkat(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let flags = a[4];
    if flags & !(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let old_path = path_arg(t, a[1])?;
    let node = if old_path.is_empty() && flags & AT_EMPTY_PATH != 0 {
        if !t.creds.has_cap(2 /* CAP_DAC_READ_SEARCH */) {
            return Err(Errno::ENOENT);
        }
        let file = t.fds.get(a[0] as i32)?;
        file.ops.node().cloned().ok_or(Errno::ENOENT)?
    } else {
        let follow = if flags & AT_SYMLINK_FOLLOW != 0 {
            Follow::Yes
        } else {
            Follow::No
        };
        lookup_at(t, a[0] as i32, &old_path, follow)?
    };
    let new_path = path_arg(t, a[3])?;
    let (ndir, nname) = parent_at(t, a[2] as i32, &new_path).map_err(|e| {
        if e == Errno::EINVAL {
            Errno::EEXIST
        } else {
            e
        }
    })?;
    if node.stat.is_dir() {
        return Err(Errno::EPERM);
    }
    // A file whose last link went (through /proc/self/fd or AT_EMPTY_PATH)
    // stays gone, but for an O_TMPFILE file opened without O_EXCL.
    if node.current_stat().nlink == 0 && !node.linkable() {
        return Err(Errno::ENOENT);
    }
    writable_dir(t, &ndir)?;
    if !Arc::ptr_eq(&node.mount, &ndir.mount) {
        return Err(Errno::EXDEV);
    }
    // Linux's protected_hardlinks: only the owner (or CAP_FOWNER) links
    // a file they could not read and write.
    if !owner_or_fowner(t, &node) && !permitted(t, &node.current_stat(), 6) {
        return Err(Errno::EPERM);
    }
    t.fs.link(&node, &ndir, &nname)?;
    node.set_linkable(false);
    Ok(0)
}

/// Implements link(2).
pub fn sys_link(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    sys_linkat(t, [AT_FDCWD as u64, a[0], AT_FDCWD as u64, a[1], 0, 0])
}

/// Implements symlinkat(2).
pub fn sys_symlinkat(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let target = path_arg(t, a[0])?;
    if target.is_empty() {
        return Err(Errno::ENOENT);
    }
    let path = path_arg(t, a[2])?;
    new_entry(
        t,
        a[1],
        &path,
        Some(NewEntry::Symlink(&target)),
        |_, uid, gid| TmpInode::new_symlink(&target, uid, gid),
    )
}

/// Implements symlink(2).
pub fn sys_symlink(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    sys_symlinkat(t, [a[0], AT_FDCWD as u64, a[1], 0, 0, 0])
}

/// Implements chroot(2) (CAP_SYS_CHROOT).
pub fn sys_chroot(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let path = path_arg(t, a[0])?;
    let node = lookup_at(t, AT_FDCWD, &path, Follow::Yes)?;
    if !node.stat.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    if !permitted(t, &node.current_stat(), 1) {
        return Err(Errno::EACCES);
    }
    if !t.creds.has_cap(18 /* CAP_SYS_CHROOT */) {
        return Err(Errno::EPERM);
    }
    t.root = node;
    Ok(0)
}
