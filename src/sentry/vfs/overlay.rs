//! The root overlay's operations: copy-up of image files into memory,
//! and the changes of directory entries (create, remove, rename, link)
//! that leave whiteouts over the image's entries. They also serve tmpfs
//! mounts, whose directories are all upper layer; on a bind mount they
//! hand over to `bind.rs` (straight to the host).
//!
//! The upper layer is the dentry tree itself (see `node.rs`): a parent
//! needs no copy-up for its child to exist in memory, and a renamed
//! directory takes its lower fid along, so renaming image directories
//! works like overlayfs with redirect_dir. Permission checks are the
//! syscalls' business; these only keep the tree consistent.
//!
//! Copy-up keeps the lower file's inode number (as overlayfs with xino),
//! so a file's (st_dev, st_ino) stays the same when it is first written.
//! Two image paths that are hard links of each other stay separate files
//! once one is copied up (as overlayfs without index=on).

use std::os::fd::AsFd;
use std::sync::Arc;

use super::gofer::GoferFs;
use super::inotify;
use super::node::Node;
use super::tmpfs::TmpInode;
use crate::abi::types::{S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK};
use crate::abi::{Errno, SysResult};
use crate::sentry::mm::SharedObject;

/// Bytes copied per step of a copy-up (the sentry never holds a whole
/// large file).
const COPY_CHUNK: usize = 1 << 20;

impl GoferFs {
    /// Gives `node` its memory inode, copying the image file's metadata
    /// and, when `data`, its bytes (O_TRUNC needs none). Returns the
    /// inode; a node already up is returned as it is.
    pub fn copy_up(&self, node: &Arc<Node>, data: bool) -> SysResult<Arc<TmpInode>> {
        if let Some(up) = node.upper() {
            return Ok(up.clone());
        }
        if !node.mount.in_memory() || node.synth.is_some() || !node.has_lower() {
            return Err(Errno::EROFS);
        }
        let _guard = self.copy_lock.lock().unwrap();
        if let Some(up) = node.upper() {
            return Ok(up.clone());
        }
        let st = node.stat;
        let fresh = match st.mode & S_IFMT {
            S_IFDIR => TmpInode::new_dir(0, 0, 0),
            S_IFLNK => TmpInode::new_symlink(&self.readlink(node)?, 0, 0),
            S_IFREG => {
                let inode = TmpInode::new_file(0, 0, 0, &self.mem, node.mount.quota);
                if data {
                    self.copy_data(node, inode.data().expect("a regular file"))?;
                }
                inode
            }
            S_IFIFO => TmpInode::new_fifo(0, 0, 0),
            S_IFSOCK => TmpInode::new_socket(0, 0, 0),
            // The store never holds device nodes.
            _ => return Err(Errno::EPERM),
        };
        Ok(node.set_upper(TmpInode::copy_of(&st, fresh)))
    }

    /// Copies the image file's bytes into `data`, a chunk at a time.
    fn copy_data(&self, node: &Node, data: &SharedObject) -> SysResult<()> {
        let fd = self.open(node, libc::O_RDONLY)?;
        let mut buf = vec![0u8; COPY_CHUNK];
        let mut off = 0u64;
        loop {
            let n = nix::sys::uio::pread(fd.as_fd(), &mut buf, off as i64)?;
            if n == 0 {
                return Ok(());
            }
            data.write(off, &buf[..n])?;
            off += n as u64;
        }
    }

    /// Marks a change of `dir`'s entries (its mtime), copying it up.
    fn touch_dir(&self, dir: &Arc<Node>) -> SysResult<()> {
        self.copy_up(dir, false)?.touch();
        Ok(())
    }

    /// Makes `name` in `dir` a new entry holding `inode` (EEXIST if the
    /// name exists, upper or lower).
    pub fn create(
        &self,
        dir: &Arc<Node>,
        name: &[u8],
        inode: Arc<TmpInode>,
    ) -> SysResult<Arc<Node>> {
        match self.lookup(dir, name) {
            Ok(_) => return Err(Errno::EEXIST),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        let node = Node::new_upper(name, Some(dir), inode, dir.mount.clone());
        dir.link_child(name, node.clone())?;
        self.touch_dir(dir)?;
        inotify::created(dir, name, &node);
        Ok(node)
    }

    /// Removes entry `name` (which is `victim`) from `dir`, leaving a
    /// whiteout over the image's entry. Directories must be empty: the
    /// caller checks with [`GoferFs::is_empty`].
    pub fn remove(&self, dir: &Arc<Node>, name: &[u8], victim: &Arc<Node>) -> SysResult<()> {
        let last = last_link(victim);
        if dir.mount.is_bind() {
            self.bind_remove(dir, name, victim)?;
        } else {
            self.touch_dir(dir)?;
            dir.remove_child(name);
            if let Some(up) = victim.upper() {
                if !victim.stat.is_dir() {
                    up.unlink();
                }
            }
        }
        inotify::removed(dir, name, victim, last);
        Ok(())
    }

    /// Whether directory `dir` has no entries (the merged view).
    pub fn is_empty(&self, dir: &Node) -> SysResult<bool> {
        Ok(self.readdir(dir)?.is_empty())
    }

    /// Moves `node` from `odir`/`oname` to `ndir`/`nname`, over `target`
    /// (what `nname` is, if anything; checked by the caller).
    pub fn rename(
        &self,
        (odir, oname): (&Arc<Node>, &[u8]),
        (ndir, nname): (&Arc<Node>, &[u8]),
        node: &Arc<Node>,
        target: Option<&Arc<Node>>,
    ) -> SysResult<()> {
        let over = target.map(|t| (&**t, last_link(t)));
        if odir.mount.is_bind() {
            self.bind_rename((odir, oname), (ndir, nname), node, target, false)?;
        } else {
            self.rename_upper((odir, oname), (ndir, nname), node, target)?;
        }
        inotify::renamed((odir, oname), (ndir, nname), node, over);
        Ok(())
    }

    /// [`GoferFs::rename`] in the memory layers.
    fn rename_upper(
        &self,
        (odir, oname): (&Arc<Node>, &[u8]),
        (ndir, nname): (&Arc<Node>, &[u8]),
        node: &Arc<Node>,
        target: Option<&Arc<Node>>,
    ) -> SysResult<()> {
        self.touch_dir(odir)?;
        self.touch_dir(ndir)?;
        if let Some(up) = target.and_then(|t| t.upper()) {
            if !up.stat().is_dir() {
                up.unlink();
            }
        }
        odir.remove_child(oname);
        ndir.set_child(nname, node.clone());
        node.move_to(ndir, nname);
        if let Some(up) = node.upper() {
            up.set_times(None, None);
        }
        Ok(())
    }

    /// Swaps two entries (RENAME_EXCHANGE).
    pub fn exchange(
        &self,
        (odir, oname): (&Arc<Node>, &[u8]),
        (ndir, nname): (&Arc<Node>, &[u8]),
        a: &Arc<Node>,
        b: &Arc<Node>,
    ) -> SysResult<()> {
        if odir.mount.is_bind() {
            self.bind_rename((odir, oname), (ndir, nname), a, Some(b), true)?;
        } else {
            self.touch_dir(odir)?;
            self.touch_dir(ndir)?;
            odir.set_child(oname, b.clone());
            ndir.set_child(nname, a.clone());
            a.move_to(ndir, nname);
            b.move_to(odir, oname);
        }
        inotify::renamed((odir, oname), (ndir, nname), a, None);
        inotify::renamed((ndir, nname), (odir, oname), b, None);
        Ok(())
    }

    /// Makes `nname` in `ndir` another hard link of `node` (copied up
    /// first: links live in the upper layer).
    pub fn link(&self, node: &Arc<Node>, ndir: &Arc<Node>, nname: &[u8]) -> SysResult<Arc<Node>> {
        let new = if ndir.mount.is_bind() {
            self.bind_link(node, ndir, nname)?
        } else {
            self.link_upper(node, ndir, nname)?
        };
        inotify::linked(ndir, nname, node);
        Ok(new)
    }

    /// [`GoferFs::link`] in the memory layers.
    fn link_upper(&self, node: &Arc<Node>, ndir: &Arc<Node>, nname: &[u8]) -> SysResult<Arc<Node>> {
        let inode = self.copy_up(node, true)?;
        match self.lookup(ndir, nname) {
            Ok(_) => return Err(Errno::EEXIST),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        let new = Node::new_upper(nname, Some(ndir), inode.clone(), ndir.mount.clone());
        ndir.link_child(nname, new.clone())?;
        inode.link();
        self.touch_dir(ndir)?;
        Ok(new)
    }
}

/// Whether removing (or renaming over) `node` ends its inode: a
/// directory, or a file's last link (an image file has one here).
fn last_link(node: &Node) -> bool {
    if node.stat.is_dir() {
        return true;
    }
    match node.upper() {
        Some(up) => up.stat().nlink <= 1,
        None => !node.mount.is_bind() || node.current_stat().nlink <= 1,
    }
}
