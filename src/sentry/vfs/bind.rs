//! Bind mounts: host directories the gofer serves under `bind0`,
//! `bind1`, ... A bind mount is a gofer-backed tree without a memory
//! layer: every change goes straight to the gofer, and file data goes
//! through the host fd it donates (pread/pwrite in the sentry).
//!
//! Unlike the image, a bind tree may change under the sentry (other
//! processes on the host), so nothing in it is trusted for long: every
//! lookup walks the name again (a cached dentry is kept only while the
//! host still has the same inode there, and its metadata is refreshed),
//! no negative entry is cached, a stat asks the host again, and a
//! directory lists what the host has now. A dentry replaced on the host
//! gets a new `Node`; its old fid stays with whoever still holds it.
//!
//! Read-only binds never reach the gofer with a change: the syscalls
//! refuse them with EROFS first (`check_writable`), and the gofer would
//! refuse them again.
//!
//! A mapped bind file has a page cache object (see `mm::pagecache`) while
//! mappings hold it. Then the sentry keeps it coherent: write(2) goes to
//! the host and into the cached pages, truncate resizes it, and read(2)
//! takes what shared mappings wrote and did not write back yet from it.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use super::file::FileOps;
use super::gofer::{Dirent, GoferFs};
use super::mount::{FsKind, Mount};
use super::node::Node;
use crate::abi::types::{Stat, S_IFIFO, S_IFREG};
use crate::abi::{Errno, SysResult};
use crate::gofer::{Owner, SetAttr};
use crate::sentry::mm::memory::GuestMemory;
use crate::sentry::mm::{FileSource, SharedObject};

const AT_REMOVEDIR: i32 = 0x200;
const RENAME_EXCHANGE: u32 = 2;

/// What a new entry of a bind directory is (mkdir, mknod, symlink).
pub enum NewEntry<'a> {
    Dir(u32),
    /// An empty regular file (mknod).
    File(u32),
    Fifo(u32),
    Symlink(&'a [u8]),
}

impl GoferFs {
    /// Mounts the host directory the gofer serves as `aname` on `target`
    /// (an absolute path; missing directories on the way are made).
    pub fn mount_bind(&self, target: &[u8], aname: &str, readonly: bool) -> SysResult<()> {
        let (fid, stat) = self.client.attach_root(aname)?;
        if !stat.is_dir() {
            let _ = self.client.clunk(fid);
            return Err(Errno::ENOTDIR);
        }
        let (dir, name) = self.mount_point(target)?;
        let mount = Arc::new(Mount::new(FsKind::Bind { readonly }, 0, Some(dir.mount.id)));
        let root = Node::new_lower(&name, Some(dir.clone()), fid, stat, mount);
        self.attach_mount(&dir, &name, root);
        Ok(())
    }

    /// The child `name` of bind directory `dir`, as the host has it now.
    pub(super) fn lookup_bind(&self, dir: &Arc<Node>, name: &[u8]) -> SysResult<Arc<Node>> {
        let cached = dir.cached(name).flatten();
        if let Some(c) = &cached {
            if !Arc::ptr_eq(&c.mount, &dir.mount) {
                // A mount root attached here covers the host's entry.
                return Ok(c.clone());
            }
        }
        match self.client.walk(dir.fid, name) {
            Ok((fid, stat)) => {
                if let Some(c) = cached.filter(|c| c.same_file(&stat)) {
                    let _ = self.client.clunk(fid);
                    c.refresh(stat);
                    return Ok(c);
                }
                let node = Node::new_lower(name, Some(dir.clone()), fid, stat, dir.mount.clone());
                dir.set_child(name, node.clone());
                Ok(node)
            }
            Err(Errno::ENOENT) => {
                dir.forget_child(name);
                Err(Errno::ENOENT)
            }
            Err(e) => Err(e),
        }
    }

    /// The metadata of `node` now: asked of the host for a bind mount's
    /// file, the cached one otherwise.
    pub fn fresh_stat(&self, node: &Node) -> SysResult<Stat> {
        if node.mount.is_bind() && node.synth.is_none() && node.has_lower() {
            node.refresh(self.client.stat(node.fid)?);
        }
        Ok(node.current_stat())
    }

    /// The entries of bind directory `node`, as the host lists them (a
    /// mount root attached in it shows as itself).
    pub(super) fn readdir_bind(&self, node: &Node) -> SysResult<Vec<Dirent>> {
        let children = node.children();
        Ok(self
            .client
            .readdir(node.fid)?
            .into_iter()
            .map(|d| match children.get(&d.name) {
                Some(Some(n)) if !Arc::ptr_eq(&n.mount, &node.mount) => {
                    (n.current_stat().ino, d.kind, d.name)
                }
                _ => (d.ino, d.kind, d.name),
            })
            .collect())
    }

    /// Creates and opens the regular file `name` in bind directory `dir`
    /// (exclusively) with exactly `mode` and `owner`; returns its dentry
    /// and a read-write host fd.
    pub fn bind_create_file(
        &self,
        dir: &Arc<Node>,
        name: &[u8],
        mode: u32,
        owner: Owner,
    ) -> SysResult<(Arc<Node>, OwnedFd)> {
        let (fid, stat, fd) = self
            .client
            .create(dir.fid, name, libc::O_RDWR, mode, owner)?;
        let node = self.bind_entry(dir, name, fid, stat);
        super::inotify::created(dir, name, &node);
        Ok((node, fd))
    }

    /// Makes a directory, FIFO, empty file or symlink `name` in bind
    /// directory `dir`.
    pub fn bind_make(
        &self,
        dir: &Arc<Node>,
        name: &[u8],
        what: NewEntry,
        owner: Owner,
    ) -> SysResult<Arc<Node>> {
        let c = &self.client;
        let (fid, stat) = match what {
            NewEntry::Dir(mode) => c.mkdir(dir.fid, name, mode, owner)?,
            NewEntry::File(mode) => c.mknod(dir.fid, name, S_IFREG | mode, owner)?,
            NewEntry::Fifo(mode) => c.mknod(dir.fid, name, S_IFIFO | mode, owner)?,
            NewEntry::Symlink(target) => c.symlink(dir.fid, name, target, owner)?,
        };
        let node = self.bind_entry(dir, name, fid, stat);
        super::inotify::created(dir, name, &node);
        Ok(node)
    }

    /// Caches a new entry of a bind directory.
    fn bind_entry(&self, dir: &Arc<Node>, name: &[u8], fid: u32, stat: Stat) -> Arc<Node> {
        let node = Node::new_lower(name, Some(dir.clone()), fid, stat, dir.mount.clone());
        dir.set_child(name, node.clone());
        self.refresh_quietly(dir);
        node
    }

    /// Refreshes a directory's metadata after a change of its entries
    /// (mtime, nlink); a failure only leaves the old metadata.
    fn refresh_quietly(&self, node: &Node) {
        let _ = self.fresh_stat(node);
    }

    /// unlink or rmdir of `name` (which is `victim`) in bind dir `dir`.
    pub(super) fn bind_remove(&self, dir: &Arc<Node>, name: &[u8], victim: &Node) -> SysResult<()> {
        let flags = if victim.stat.is_dir() {
            AT_REMOVEDIR
        } else {
            0
        };
        self.client.unlink(dir.fid, name, flags)?;
        dir.forget_child(name);
        self.refresh_quietly(dir);
        Ok(())
    }

    /// Rename (or exchange, with `exchange`) within one bind mount; the
    /// dentries move as the host's entries did (fids follow their files).
    pub(super) fn bind_rename(
        &self,
        (odir, oname): (&Arc<Node>, &[u8]),
        (ndir, nname): (&Arc<Node>, &[u8]),
        node: &Arc<Node>,
        other: Option<&Arc<Node>>,
        exchange: bool,
    ) -> SysResult<()> {
        let flags = if exchange { RENAME_EXCHANGE } else { 0 };
        self.client
            .rename(odir.fid, oname, ndir.fid, nname, flags)?;
        match (exchange, other) {
            (true, Some(b)) => {
                odir.set_child(oname, b.clone());
                b.move_to(odir, oname);
            }
            _ => {
                odir.forget_child(oname);
            }
        }
        ndir.set_child(nname, node.clone());
        node.move_to(ndir, nname);
        self.refresh_quietly(odir);
        self.refresh_quietly(ndir);
        Ok(())
    }

    /// A new hard link `nname` in bind directory `ndir` to `node`.
    pub(super) fn bind_link(
        &self,
        node: &Arc<Node>,
        ndir: &Arc<Node>,
        nname: &[u8],
    ) -> SysResult<Arc<Node>> {
        let (fid, stat) = self.client.link(ndir.fid, nname, node.fid)?;
        node.refresh(stat);
        Ok(self.bind_entry(ndir, nname, fid, stat))
    }

    /// Changes the attributes `attr` gives of a bind mount's file.
    pub fn bind_setattr(&self, node: &Node, attr: &SetAttr) -> SysResult<()> {
        if !node.has_lower() {
            return Err(Errno::EROFS);
        }
        node.refresh(self.client.setattr(node.fid, attr)?);
        Ok(())
    }

    /// statfs of the host file system behind a bind mount.
    pub(super) fn statfs_bind(&self, node: &Node) -> SysResult<crate::gofer::Statfs> {
        let mut s = self.client.statfs(node.fid)?;
        s.kind = node.mount.magic();
        Ok(s)
    }
}

/// A regular file of a bind mount, read and written through the host fd
/// the gofer donated.
pub struct BindFile {
    fd: Arc<OwnedFd>,
    node: Arc<Node>,
    fs: Arc<GoferFs>,
}

impl BindFile {
    pub fn new(fd: OwnedFd, node: Arc<Node>, fs: Arc<GoferFs>) -> Arc<BindFile> {
        Arc::new(BindFile {
            fd: Arc::new(fd),
            node,
            fs,
        })
    }
}

/// The host's metadata of `fd`, as the gofer would report it.
fn host_stat(fd: &OwnedFd) -> SysResult<Stat> {
    Ok(Stat::from_host(&nix::sys::stat::fstat(fd.as_fd())?))
}

impl FileOps for BindFile {
    fn seek_data(&self, off: u64, hole: bool) -> SysResult<u64> {
        super::file::host_seek_data(self.fd.as_fd(), off, hole)
    }

    fn read(&self, buf: &mut [u8], off: u64) -> SysResult<usize> {
        let n = nix::sys::uio::pread(self.fd.as_fd(), buf, off as i64)?;
        if let Some(cache) = self.node.page_cache.get() {
            cache.overlay_dirty(off, &mut buf[..n]);
        }
        Ok(n)
    }

    fn write(&self, buf: &[u8], off: u64) -> SysResult<usize> {
        if off
            .checked_add(buf.len() as u64)
            .is_none_or(|e| e > i64::MAX as u64)
        {
            return Err(Errno::EFBIG);
        }
        let host = |b: &[u8]| Ok(nix::sys::uio::pwrite(self.fd.as_fd(), b, off as i64)?);
        self.node.page_cache.with(|cache| match cache {
            Some(cache) => cache.write_through(off, buf, host),
            None => host(buf),
        })
    }

    fn stat(&self) -> SysResult<Stat> {
        self.node.refresh(host_stat(&self.fd)?);
        Ok(self.node.current_stat())
    }

    fn truncate(&self, len: u64) -> SysResult<()> {
        let attr = SetAttr {
            size: Some(len),
            ..Default::default()
        };
        let host = || self.fs.bind_setattr(&self.node, &attr);
        self.node.page_cache.with(|cache| match cache {
            Some(cache) => cache.truncate_with(len, host),
            None => host(),
        })
    }

    fn sync(&self) -> SysResult<()> {
        self.fs.client.fsync(self.node.fid)
    }

    /// The page cache, shared by every mapping of this dentry while any
    /// holds it; a writable descriptor lets it write back.
    fn page_cache(&self, mem: &Arc<GuestMemory>, writer: bool) -> Option<Arc<SharedObject>> {
        let object = self.node.page_cache.get_or_make(false, || {
            let size = self.node.current_stat().size.max(0) as u64;
            SharedObject::of_file(mem, size, FileSource::host(self.fd.clone(), writer))
        });
        if let Some(file) = object.file() {
            file.offer(&self.fd, writer);
        }
        Some(object)
    }

    fn node(&self) -> Option<&Arc<Node>> {
        Some(&self.node)
    }
}
