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
    /// another dentry).
    pub fn remount(&self, root: &Arc<Node>, flags: u64) -> SysResult<()> {
        if !self.is_mount_point(root) {
            return Err(Errno::EINVAL);
        }
        root.mount
            .flags
            .store(flags & MOUNT_FLAGS, Ordering::Relaxed);
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
        if !in_use {
            // Nobody is left on it: its file system ends now (a detached
            // one in use lives on, and inotify watches on it stay).
            super::inotify::unmounted(root.mount.dev);
        }
        Ok(())
    }
}

/// Whether anything outside the tree holds `node` or a dentry under it
/// (`known` references to `node` are the tree's and the caller's), or a
/// mount sits under it.
fn busy(node: &Arc<Node>, known: usize) -> bool {
    let kids = node.existing_children();
    let back = kids
        .iter()
        .filter(|(_, k)| k.parent().is_some_and(|p| Arc::ptr_eq(&p, node)))
        .count();
    if Arc::strong_count(node) > known + back {
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
