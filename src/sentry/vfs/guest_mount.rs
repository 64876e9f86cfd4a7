//! mount(2) and umount2(2) from inside the guest: new tmpfs mounts, and
//! remounts and unmounts of any mount of the container's tree (its mount
//! namespace). A mount is attached as every mount is (see `mount.rs`):
//! its root dentry takes the mount point's name in the parent directory,
//! and umount puts the covered dentry back.
//!
//! A mount is busy (EBUSY without MNT_DETACH) while a mount sits under
//! it, or while anything but the tree itself holds one of its dentries:
//! an open file, a working or root directory, a mapping. Dentries are
//! reference counted, and the tree's own references are known (the
//! parent's entry, each child's parent link, the mount list), so the
//! count of each dentry tells.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::gofer::GoferFs;
use super::mount::{FsKind, GuestShown, Mount, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY};
use super::node::Node;
use super::tmpfs::TmpInode;
use crate::abi::{Errno, SysResult};

/// The per-mount flags a mount or remount sets.
pub const MOUNT_FLAGS: u64 = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;

/// A tmpfs's options (`size=`, `mode=`, `uid=`, `gid=`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TmpfsOptions {
    /// Bytes its files may hold.
    pub size: u64,
    /// Whether `size=` was given (shown in /proc/mounts).
    pub size_given: bool,
    /// Mode of its root directory.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl TmpfsOptions {
    /// Parses mount(2)'s data for tmpfs: `ram` is the memory a percent
    /// size is of (and half of which is the default size); `uid`/`gid`
    /// the caller's, the root's default owner. EINVAL for an option
    /// tmpfs does not know or this one does not implement, named in
    /// the error's text.
    pub fn parse(data: &str, ram: u64, uid: u32, gid: u32) -> Result<TmpfsOptions, String> {
        let mut o = TmpfsOptions {
            size: ram / 2,
            size_given: false,
            mode: 0o1777,
            uid,
            gid,
        };
        for opt in data.split(',').filter(|s| !s.is_empty()) {
            let (key, val) = opt.split_once('=').unwrap_or((opt, ""));
            let bad = || format!("tmpfs option {opt:?}");
            match key {
                "size" => {
                    o.size = parse_size(val, ram).ok_or_else(bad)?;
                    o.size_given = true;
                }
                "mode" => o.mode = u32::from_str_radix(val, 8).map_err(|_| bad())? & 0o7777,
                "uid" => o.uid = val.parse().map_err(|_| bad())?,
                "gid" => o.gid = val.parse().map_err(|_| bad())?,
                _ => return Err(bad()),
            }
        }
        Ok(o)
    }

    /// The options /proc/mounts shows past the flags.
    fn shown(&self) -> String {
        let mut out = String::new();
        if self.size_given {
            out += &format!(",size={}k", self.size / 1024);
        }
        if self.mode != 0o1777 {
            out += &format!(",mode={:o}", self.mode);
        }
        if self.uid != 0 {
            out += &format!(",uid={}", self.uid);
        }
        if self.gid != 0 {
            out += &format!(",gid={}", self.gid);
        }
        out
    }
}

/// `N[kmgtpe]` bytes (rounded up to pages) or `N%` of `ram`.
fn parse_size(val: &str, ram: u64) -> Option<u64> {
    if let Some(pct) = val.strip_suffix('%') {
        return ram.checked_mul(pct.parse().ok()?).map(|v| v / 100);
    }
    let split = val.find(|c: char| !c.is_ascii_digit()).unwrap_or(val.len());
    let (num, unit) = val.split_at(split);
    let shift = match unit {
        "" => 0,
        "k" | "K" => 10,
        "m" | "M" => 20,
        "g" | "G" => 30,
        "t" | "T" => 40,
        "p" | "P" => 50,
        "e" | "E" => 60,
        _ => return None,
    };
    let n: u64 = num.parse().ok()?;
    n.checked_mul(1 << shift).map(|v| v.next_multiple_of(4096))
}

impl GoferFs {
    /// Whether `node` is the root of a mount of the tree.
    pub fn is_mount_point(&self, node: &Arc<Node>) -> bool {
        self.mounts().iter().any(|m| Arc::ptr_eq(m, node))
    }

    /// Mounts a new tmpfs on directory `target` with mount `flags`, shown
    /// as coming from `source`.
    pub fn mount_guest_tmpfs(
        &self,
        target: &Arc<Node>,
        opts: &TmpfsOptions,
        flags: u64,
        source: String,
    ) -> SysResult<()> {
        if !target.stat.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        // Mounting over the container's root is not done here.
        let dir = target.parent().ok_or(Errno::EBUSY)?;
        let name = target.name();
        let mount = Mount::new(FsKind::Tmpfs, opts.size, Some(target.mount.id));
        mount.flags.store(flags & MOUNT_FLAGS, Ordering::Relaxed);
        let shown = GuestShown {
            source,
            extra: opts.shown(),
        };
        let _ = mount.shown.set(shown);
        let inode = TmpInode::new_dir(opts.mode, opts.uid, opts.gid);
        let root = Node::new_upper(&name, Some(&dir), inode, Arc::new(mount));
        self.attach_mount(&dir, &name, root);
        Ok(())
    }

    /// Sets the mount flags of the mount rooted at `root` (EINVAL for
    /// another dentry, EPERM to clear a locked one).
    pub fn remount(&self, root: &Arc<Node>, flags: u64) -> SysResult<()> {
        if !self.is_mount_point(root) {
            return Err(Errno::EINVAL);
        }
        let m = &root.mount;
        if m.locked & !flags != 0 {
            return Err(Errno::EPERM);
        }
        m.flags.store(flags & MOUNT_FLAGS, Ordering::Relaxed);
        Ok(())
    }

    /// Bind-mounts `source` on `target` (MS_BIND): the same directory or
    /// file, seen in a second place, in a new mount with the source
    /// mount's flags. With `recursive` (MS_REC) the mounts under `source`
    /// come along as new mounts too; without, the bind shows what they
    /// cover. ENOTDIR when one is a directory and the other is not.
    pub fn bind_guest(
        &self,
        source: &Arc<Node>,
        target: &Arc<Node>,
        recursive: bool,
    ) -> SysResult<()> {
        if source.stat.is_dir() != target.stat.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        // Mounting over the container's root is not done here.
        let dir = target.parent().ok_or(Errno::EBUSY)?;
        let name = target.name();
        let subs = if recursive {
            self.mounts_under(source)
        } else {
            vec![]
        };
        let root = self.bind_copy(source, &dir, &name);
        self.attach_mount(&dir, &name, root.clone());
        for (path, sub) in subs {
            let Some((last, on_way)) = path.split_last() else {
                continue;
            };
            let mut at = root.clone();
            for comp in on_way {
                at = self.lookup(&at, comp)?;
            }
            let copy = self.bind_copy(&sub, &at, last);
            self.attach_mount(&at, last, copy);
        }
        Ok(())
    }

    /// A new mount of `source`'s directory (or file) as `name` in `dir`,
    /// not yet attached.
    fn bind_copy(&self, source: &Arc<Node>, dir: &Arc<Node>, name: &[u8]) -> Arc<Node> {
        // A read-only volume's lock comes along (`Mount::bind_of`).
        let fs_root = self.fs_path(source);
        let mount = Mount::bind_of(&source.mount, dir.mount.id, fs_root, 0);
        Node::view_of(source, dir, name, Arc::new(mount))
    }

    /// The path of `node` inside its file system: from its mount's root,
    /// under what that mount shows.
    fn fs_path(&self, node: &Arc<Node>) -> Vec<u8> {
        let mut parts = vec![];
        let mut cur = node.clone();
        while !cur.is_mount_root() {
            parts.push(cur.name());
            match cur.parent() {
                Some(p) => cur = p,
                None => break,
            }
        }
        let below = super::node::join_reversed(&parts);
        let top = &node.mount.fs_root;
        match (&top[..], &below[..]) {
            (_, b"/") => top.clone(),
            (b"/", _) => below,
            _ => [&top[..], &below[..]].concat(),
        }
    }

    /// The mounts strictly under `node`, in mount order, each with its
    /// path from `node` as components.
    fn mounts_under(&self, node: &Arc<Node>) -> Vec<(Vec<Vec<u8>>, Arc<Node>)> {
        let mut out = vec![];
        for m in self.mounts() {
            let mut parts = vec![];
            let mut cur = m.clone();
            let mut under = false;
            while let Some(up) = self.parent_of(&cur) {
                parts.push(self.name_of(&cur));
                if Arc::ptr_eq(&up, node) {
                    under = true;
                    break;
                }
                cur = up;
            }
            if under {
                parts.reverse();
                out.push((parts, m));
            }
        }
        out
    }

    /// Moves the mount rooted at `root` to `target` (MS_MOVE), with the
    /// mounts under it: EINVAL unless `root` is a mount's root (and not
    /// the container's), ELOOP to move it under itself.
    pub fn move_mount(&self, root: &Arc<Node>, target: &Arc<Node>) -> SysResult<()> {
        if !self.is_mount_point(root) {
            return Err(Errno::EINVAL);
        }
        let old_dir = root.parent().ok_or(Errno::EINVAL)?;
        if root.stat.is_dir() != target.stat.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        let dir = target.parent().ok_or(Errno::EBUSY)?;
        let mut cur = Some(target.clone());
        while let Some(c) = cur {
            if Arc::ptr_eq(&c, root) {
                return Err(Errno::ELOOP);
            }
            cur = self.parent_of(&c);
        }
        let name = target.name();
        self.uncover(&old_dir, root);
        root.move_mount_to(&dir, &name);
        let covered = dir.set_child(&name, root.clone());
        *root.mount.covered.lock().unwrap() = covered;
        root.mount.parent_id.store(dir.mount.id, Ordering::Relaxed);
        Ok(())
    }

    /// Unmounts the mount rooted at `root`: EINVAL for another dentry,
    /// EBUSY for the container's root or, unless `detach`, a mount in use
    /// (see the module doc). A detached mount stays usable by whoever
    /// holds its files. inotify watches on a mount that ends see
    /// IN_UNMOUNT.
    pub fn umount(&self, root: Arc<Node>, detach: bool) -> SysResult<()> {
        if !self.is_mount_point(&root) {
            return Err(Errno::EINVAL);
        }
        if root.parent().is_none() {
            return Err(Errno::EBUSY);
        }
        // Held by: the parent's entry, the mount list, and `root` here.
        let in_use = busy(&root, 3);
        if in_use && !detach {
            return Err(Errno::EBUSY);
        }
        self.detach_mount(&root);
        if !in_use && root.real().viewers() == 0 {
            // Nobody is left on it: its file system ends now (a detached
            // one in use lives on, and inotify watches on it stay).
            super::inotify::unmounted(root.mount.dev);
        }
        if !in_use {
            root.release_tree();
        }
        Ok(())
    }
}

/// Whether anything outside the tree holds `node` or a dentry under it
/// (`known` references to `node` are the tree's and the caller's), or a
/// mount sits under it. Views hold what they show, but a bind mount
/// elsewhere does not make this one busy.
fn busy(node: &Arc<Node>, known: usize) -> bool {
    let kids = node.existing_children();
    let back = kids
        .iter()
        .filter(|(_, k)| k.parent().is_some_and(|p| Arc::ptr_eq(&p, node)))
        .count();
    if Arc::strong_count(node) > known + back + node.viewers() {
        return true;
    }
    kids.iter().any(|(_, k)| {
        // A child that is another mount's root: a mount under this one.
        !Arc::ptr_eq(&k.mount, &node.mount) || busy(k, 2)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmpfs_options_parse_size_mode_and_owner() {
        let o = TmpfsOptions::parse("size=1m,mode=755,uid=5", 1 << 30, 0, 0).unwrap();
        assert_eq!((o.size, o.mode, o.uid, o.gid), (1 << 20, 0o755, 5, 0));
        assert_eq!(o.shown(), ",size=1024k,mode=755,uid=5");
        let d = TmpfsOptions::parse("", 1 << 30, 7, 8).unwrap();
        assert_eq!((d.size, d.mode, d.uid, d.gid), (1 << 29, 0o1777, 7, 8));
        assert_eq!(
            TmpfsOptions::parse("size=50%", 1 << 30, 0, 0).unwrap().size,
            1 << 29
        );
    }

    #[test]
    fn tmpfs_options_unknown_or_bad_values_are_refused() {
        assert!(TmpfsOptions::parse("nr_inodes=5", 1 << 30, 0, 0).is_err());
        assert!(TmpfsOptions::parse("size=12q", 1 << 30, 0, 0).is_err());
        assert!(TmpfsOptions::parse("mode=9", 1 << 30, 0, 0).is_err());
    }
}
