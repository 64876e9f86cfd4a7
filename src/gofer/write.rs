//! The mutating operations of the gofer: create, mkdir, mknod, symlink,
//! link, unlink, rename and setattr.
//!
//! Each works on the directory fd a fid holds, one name component at a
//! time, with *at syscalls that never follow a symlink: a path is never
//! resolved again, so a directory swapped for a symlink after the walk
//! changes nothing (the held fd still names the old directory). Every
//! operation on a read-only root fails with EROFS before touching the
//! host. Two fids of different roots never meet in one operation (EXDEV).
//! Nothing gets a set-user-ID bit, nor set-group-ID unless a directory
//! (EPERM): a bind-mounted host directory must never receive a privileged
//! executable from the guest.

use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use nix::fcntl::{openat, AtFlags, OFlag, RenameFlags};
use nix::sys::stat::{mknodat, Mode, SFlag};
use nix::unistd::{Gid, Uid, UnlinkatFlags};

use super::server::{check_name, open_path, reopen, stat_of, Node, Server};
use crate::abi::types::{S_IFDIR, S_IFIFO, S_IFMT, S_IFREG};
use crate::abi::{Errno, SysResult};
use crate::proto::{Fid, Owner, Reply, Request, SetAttr, MAX_TARGET};

impl Server {
    /// The mutating requests.
    pub(super) fn handle_write(
        &mut self,
        req: Request,
        donated: &mut Option<OwnedFd>,
    ) -> SysResult<Reply> {
        match req {
            Request::Create {
                dir,
                name,
                flags,
                mode,
                owner,
            } => {
                let (reply, fd) = self.create(dir, &name, flags, mode, owner)?;
                *donated = Some(fd);
                Ok(reply)
            }
            Request::Mkdir {
                dir,
                name,
                mode,
                owner,
            } => self.mkdir(dir, &name, mode, owner),
            Request::Mknod {
                dir,
                name,
                mode,
                owner,
            } => self.mknod(dir, &name, mode, owner),
            Request::Symlink {
                dir,
                name,
                target,
                owner,
            } => self.symlink(dir, &name, &target, owner),
            Request::Link { dir, name, target } => self.link(dir, &name, target),
            Request::Unlink { dir, name, flags } => self.unlink(dir, &name, flags),
            Request::Rename {
                old_dir,
                old_name,
                new_dir,
                new_name,
                flags,
            } => self.rename((old_dir, &old_name), (new_dir, &new_name), flags),
            Request::SetAttr { fid, attr } => self.setattr(fid, &attr),
            _ => Err(Errno::ENOSYS),
        }
    }

    /// The fd and root of the directory fid `dir`, in which `name` is to
    /// change: the name is valid and the root writable.
    fn target_dir(&self, dir: Fid, name: &[u8]) -> SysResult<(Arc<OwnedFd>, usize)> {
        check_name(name)?;
        let (fd, root) = self.dir_of(dir)?;
        if self.readonly(root) {
            return Err(Errno::EROFS);
        }
        Ok((fd, root))
    }

    fn create(
        &mut self,
        dir: Fid,
        name: &[u8],
        flags: u32,
        mode: u32,
        owner: Owner,
    ) -> SysResult<(Reply, OwnedFd)> {
        let (pfd, root) = self.target_dir(dir, name)?;
        check_mode(mode, S_IFREG)?;
        let keep = OFlag::from_bits_truncate(flags as i32) & (OFlag::O_ACCMODE | OFlag::O_APPEND);
        // O_EXCL: an existing name, even a dangling symlink, is EEXIST and
        // is never followed.
        let oflags = keep
            | OFlag::O_CREAT
            | OFlag::O_EXCL
            | OFlag::O_NOFOLLOW
            | OFlag::O_CLOEXEC
            | OFlag::O_NOCTTY;
        let fd = openat(pfd.as_fd(), OsStr::from_bytes(name), oflags, perm(mode))
            .map_err(Errno::from)?;
        let made = stat_of(&fd)?;
        let node = match open_path(&pfd, name) {
            Ok(n) if same_file(&n, &made) => n,
            Ok(_) => return Err(Errno::ESTALE),
            Err(e) => return Err(e),
        };
        let reply = self.adopt_new(pfd, root, name, node, owner, Some(mode))?;
        Ok((reply, fd))
    }

    fn mkdir(&mut self, dir: Fid, name: &[u8], mode: u32, owner: Owner) -> SysResult<Reply> {
        let (pfd, root) = self.target_dir(dir, name)?;
        check_mode(mode, S_IFDIR)?;
        nix::sys::stat::mkdirat(pfd.as_fd(), OsStr::from_bytes(name), perm(mode))
            .map_err(Errno::from)?;
        let node = open_path(&pfd, name)?;
        self.adopt_new(pfd, root, name, node, owner, Some(mode))
    }

    /// A regular file or a FIFO; devices and sockets are EPERM.
    fn mknod(&mut self, dir: Fid, name: &[u8], mode: u32, owner: Owner) -> SysResult<Reply> {
        let (pfd, root) = self.target_dir(dir, name)?;
        let kind = match mode & S_IFMT {
            0 | S_IFREG => SFlag::S_IFREG,
            S_IFIFO => SFlag::S_IFIFO,
            _ => return Err(Errno::EPERM),
        };
        check_mode(mode & !S_IFMT, S_IFREG)?;
        mknodat(pfd.as_fd(), OsStr::from_bytes(name), kind, perm(mode), 0).map_err(Errno::from)?;
        let node = open_path(&pfd, name)?;
        self.adopt_new(pfd, root, name, node, owner, Some(mode & 0o7777))
    }

    fn symlink(&mut self, dir: Fid, name: &[u8], target: &[u8], owner: Owner) -> SysResult<Reply> {
        let (pfd, root) = self.target_dir(dir, name)?;
        if target.is_empty() {
            return Err(Errno::ENOENT);
        }
        if target.contains(&0) {
            return Err(Errno::EINVAL);
        }
        if target.len() > MAX_TARGET {
            return Err(Errno::ENAMETOOLONG);
        }
        let (t, n) = (OsStr::from_bytes(target), OsStr::from_bytes(name));
        nix::unistd::symlinkat(t, pfd.as_fd(), n).map_err(Errno::from)?;
        let node = open_path(&pfd, name)?;
        self.adopt_new(pfd, root, name, node, owner, None)
    }

    /// Gives the new file `name` (whose O_PATH fd is `node`) its owner and
    /// exactly the permission bits `mode` (whatever the umask), and a fid;
    /// removes it again if that fails.
    fn adopt_new(
        &mut self,
        pfd: Arc<OwnedFd>,
        root: usize,
        name: &[u8],
        node: OwnedFd,
        owner: Owner,
        mode: Option<u32>,
    ) -> SysResult<Reply> {
        let st = stat_of(&node)?;
        let chown = (st.uid, st.gid) != (owner.uid, owner.gid);
        let mut r = Ok(());
        if chown {
            r = chown_fd(&node, Some(owner.uid), Some(owner.gid));
        }
        if let (Ok(()), Some(m)) = (&r, mode) {
            // Also after a chown, which may clear set-group-ID.
            if chown || st.mode & 0o7777 != m {
                r = crate::sys::fs::chmod_fd(node.as_fd(), m).map_err(io_errno);
            }
        }
        if let Err(e) = r {
            let how = if st.mode & S_IFMT == S_IFDIR {
                UnlinkatFlags::RemoveDir
            } else {
                UnlinkatFlags::NoRemoveDir
            };
            let _ = nix::unistd::unlinkat(pfd.as_fd(), OsStr::from_bytes(name), how);
            return Err(e);
        }
        self.add_child(pfd, root, name, node)
    }

    /// A new name for the file of fid `target`: linkat on the held fd
    /// (AT_EMPTY_PATH), so a symlink is linked as itself. Files of another
    /// root are EXDEV, directories EPERM.
    fn link(&mut self, dir: Fid, name: &[u8], target: Fid) -> SysResult<Reply> {
        let (pfd, root) = self.target_dir(dir, name)?;
        let t = self.node(target)?;
        if t.root != root {
            return Err(Errno::EXDEV);
        }
        if t.stat.mode & S_IFMT == S_IFDIR {
            return Err(Errno::EPERM);
        }
        let (tfd, want) = (t.fd.clone(), t.stat);
        let n = OsStr::from_bytes(name);
        let r = nix::unistd::linkat(
            tfd.as_fd(),
            OsStr::new(""),
            pfd.as_fd(),
            n,
            AtFlags::AT_EMPTY_PATH,
        );
        if r == Err(nix::errno::Errno::ENOENT) {
            // Without CAP_DAC_READ_SEARCH in the initial namespace, link
            // the name instead (never following it) and check the inode.
            let p = self.node(target)?.parent.as_ref().ok_or(Errno::ENOENT)?;
            let (ofd, oname) = (p.fd.clone(), OsStr::from_bytes(&p.name).to_owned());
            nix::unistd::linkat(ofd.as_fd(), &*oname, pfd.as_fd(), n, AtFlags::empty())
                .map_err(Errno::from)?;
        } else {
            r.map_err(Errno::from)?;
        }
        let node = open_path(&pfd, name)?;
        if !same_file(&node, &want) {
            let _ = nix::unistd::unlinkat(pfd.as_fd(), n, UnlinkatFlags::NoRemoveDir);
            return Err(Errno::ESTALE);
        }
        self.add_child(pfd, root, name, node)
    }

    /// unlink or rmdir (`flags` AT_REMOVEDIR) of `name` in `dir`.
    fn unlink(&mut self, dir: Fid, name: &[u8], flags: u32) -> SysResult<Reply> {
        let (pfd, _) = self.target_dir(dir, name)?;
        let how = match flags as i32 {
            0 => UnlinkatFlags::NoRemoveDir,
            libc::AT_REMOVEDIR => UnlinkatFlags::RemoveDir,
            _ => return Err(Errno::EINVAL),
        };
        nix::unistd::unlinkat(pfd.as_fd(), OsStr::from_bytes(name), how).map_err(Errno::from)?;
        Ok(Reply::Done)
    }

    /// renameat2 between two directory fids of the same root; fids of the
    /// moved files follow them.
    fn rename(&mut self, old: (Fid, &[u8]), new: (Fid, &[u8]), flags: u32) -> SysResult<Reply> {
        let (ofd, oroot) = self.target_dir(old.0, old.1)?;
        let (nfd, nroot) = self.target_dir(new.0, new.1)?;
        if oroot != nroot {
            return Err(Errno::EXDEV);
        }
        let allowed = libc::RENAME_NOREPLACE | libc::RENAME_EXCHANGE;
        if flags & !allowed != 0 || flags == allowed {
            return Err(Errno::EINVAL);
        }
        let rflags = RenameFlags::from_bits_truncate(flags);
        let (on, nn) = (OsStr::from_bytes(old.1), OsStr::from_bytes(new.1));
        nix::fcntl::renameat2(ofd.as_fd(), on, nfd.as_fd(), nn, rflags).map_err(Errno::from)?;
        let (oid, nid) = (dir_id(&ofd)?, dir_id(&nfd)?);
        let exchange = flags & libc::RENAME_EXCHANGE != 0;
        for node in self.fids.values_mut() {
            let Some(p) = node.parent.as_mut() else {
                continue;
            };
            if p.id == oid && p.name == old.1 {
                (p.fd, p.id, p.name) = (nfd.clone(), nid, new.1.to_vec());
            } else if exchange && p.id == nid && p.name == new.1 {
                (p.fd, p.id, p.name) = (ofd.clone(), oid, old.1.to_vec());
            }
        }
        Ok(Reply::Done)
    }

    /// Changes size, mode, owner and times, in that order, on the held
    /// file; replies with its new stat.
    fn setattr(&mut self, fid: Fid, attr: &SetAttr) -> SysResult<Reply> {
        let node = self.node(fid)?;
        if self.readonly(node.root) {
            return Err(Errno::EROFS);
        }
        let kind = node.stat.mode & S_IFMT;
        if let Some(size) = attr.size {
            truncate(node, size)?;
        }
        if let Some(mode) = attr.mode {
            check_mode(mode, kind)?;
            chmod(node, mode)?;
        }
        if attr.uid.is_some() || attr.gid.is_some() {
            chown_fd(&node.fd, attr.uid, attr.gid)?;
        }
        if attr.atime.is_some() || attr.mtime.is_some() {
            let omit = (0, libc::UTIME_OMIT);
            let (a, m) = (attr.atime.unwrap_or(omit), attr.mtime.unwrap_or(omit));
            crate::sys::fs::utimens_fd(node.fd.as_fd(), a, m).map_err(io_errno)?;
        }
        Ok(Reply::Stat(stat_of(&node.fd)?))
    }
}

/// Permission bits a file of type `kind` may be given: at most 07777,
/// never set-user-ID, set-group-ID only on a directory.
fn check_mode(mode: u32, kind: u32) -> SysResult<()> {
    if mode & !0o7777 != 0 {
        return Err(Errno::EINVAL);
    }
    let sgid_ok = kind == S_IFDIR;
    if mode & libc::S_ISUID != 0 || (mode & libc::S_ISGID != 0 && !sgid_ok) {
        return Err(Errno::EPERM);
    }
    Ok(())
}

fn perm(mode: u32) -> Mode {
    Mode::from_bits_truncate(mode & 0o7777)
}

fn same_file(fd: &OwnedFd, st: &crate::abi::types::Stat) -> bool {
    stat_of(fd).is_ok_and(|now| (now.dev, now.ino) == (st.dev, st.ino))
}

fn dir_id(fd: &OwnedFd) -> SysResult<(u64, u64)> {
    let st = stat_of(fd)?;
    Ok((st.dev, st.ino))
}

fn io_errno(e: std::io::Error) -> Errno {
    Errno(e.raw_os_error().unwrap_or(libc::EIO))
}

/// lchown of the held fd (never follows a symlink).
fn chown_fd(fd: &OwnedFd, uid: Option<u32>, gid: Option<u32>) -> SysResult<()> {
    let flags = AtFlags::AT_EMPTY_PATH | AtFlags::AT_SYMLINK_NOFOLLOW;
    nix::unistd::fchownat(
        fd.as_fd(),
        OsStr::new(""),
        uid.map(Uid::from_raw),
        gid.map(Gid::from_raw),
        flags,
    )
    .map_err(Errno::from)
}

/// chmod of the held file; a symlink's mode cannot change (EOPNOTSUPP).
fn chmod(node: &Node, mode: u32) -> SysResult<()> {
    match crate::sys::fs::chmod_fd(node.fd.as_fd(), mode) {
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {}
        r => return r.map_err(io_errno),
    }
    // Before Linux 6.6: fchmod on a real fd of the same inode.
    match node.stat.mode & S_IFMT {
        S_IFREG | S_IFDIR => {
            let fd = reopen(node, OFlag::O_RDONLY)?;
            nix::sys::stat::fchmod(&fd, perm(mode)).map_err(Errno::from)
        }
        _ => Err(Errno::EOPNOTSUPP),
    }
}

/// Truncates (or extends) a regular file.
fn truncate(node: &Node, size: u64) -> SysResult<()> {
    match node.stat.mode & S_IFMT {
        S_IFREG => {}
        S_IFDIR => return Err(Errno::EISDIR),
        _ => return Err(Errno::EINVAL),
    }
    let size = i64::try_from(size).map_err(|_| Errno::EFBIG)?;
    let fd = reopen(node, OFlag::O_WRONLY)?;
    nix::unistd::ftruncate(&fd, size).map_err(Errno::from)
}
