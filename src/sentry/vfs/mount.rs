//! The mount table of a container: which file system each dentry belongs
//! to, with its device number, its space budget and how /proc/mounts
//! names it.
//!
//! A mount is attached by making its root dentry the child of the mount
//! point's parent under the mount point's name (the dentry it covers is
//! no longer reachable). So `..` at a mount root is the parent mount's
//! directory, and a dentry's path is the chain of names up to the root,
//! without any crossing logic in path resolution. Every dentry points at
//! its mount; a dentry whose mount differs from its parent's is a mount
//! root (EBUSY to remove or rename).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use super::node::Node;
use crate::sentry::mm::Quota;

/// statfs f_type of the memory file system.
pub const TMPFS_MAGIC: u64 = 0x0102_1994;
/// statfs f_type of the root overlay.
pub const OVERLAYFS_SUPER_MAGIC: u64 = 0x794c_7630;
/// statfs f_type of /proc.
pub const PROC_SUPER_MAGIC: u64 = 0x9fa0;
/// statfs f_type of /dev/pts.
pub const DEVPTS_SUPER_MAGIC: u64 = 0x1cd1;
/// statfs f_flags bit of a read-only mount.
pub const ST_RDONLY: u64 = 1;
/// Per-mount flags of mount(2) kept in [`Mount::flags`].
pub const MS_RDONLY: u64 = 1;
pub const MS_NOSUID: u64 = 2;
pub const MS_NODEV: u64 = 4;
pub const MS_NOEXEC: u64 = 8;

/// What a mount the guest made shows in /proc/mounts.
#[derive(Clone)]
pub struct GuestShown {
    /// The source it named ("tmpfs", "none", ...).
    pub source: String,
    /// Options past the flags (",size=1024k,mode=755").
    pub extra: String,
}

/// What a mount holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsKind {
    /// The image (read-only, through the gofer) under a memory upper layer.
    Overlay,
    /// A memory file system.
    Tmpfs,
    /// The sentry's /dev.
    Dev,
    /// The sentry's /proc.
    Proc,
    /// The container's devpts instance on /dev/pts.
    Devpts,
    /// The sentry's /sys (read-only).
    Sysfs,
    /// A host directory served by the gofer: every change goes to the
    /// host (`vfs/bind.rs`).
    Bind { readonly: bool },
}

/// One mounted file system.
pub struct Mount {
    /// The mount id of /proc/self/mountinfo.
    pub id: u32,
    /// The id of the mount this one is attached in (itself for the root;
    /// MS_MOVE changes it).
    pub parent_id: AtomicU32,
    /// The directory of its file system this mount shows: `/`, or where
    /// a bind mount made in the guest was taken from (mountinfo's root).
    pub fs_root: Vec<u8>,
    /// Per-mount flags a remount may not clear (MS_RDONLY of a bind of a
    /// read-only volume: the pod's word, not the guest's).
    pub locked: u64,
    pub kind: FsKind,
    /// st_dev of every file of this mount.
    pub dev: u64,
    /// The bytes its files' data may take (memory file systems and the
    /// overlay's upper layer). Mounts live as long as the sandbox, so the
    /// budget is leaked on purpose to give file data a `'static` handle.
    pub quota: &'static Quota,
    /// MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC as set by the guest's
    /// mount(2) or a remount (for the sandbox's own mounts, what their
    /// kind's /proc/mounts options say).
    pub flags: AtomicU64,
    /// The dentry the mount covers, put back by umount (None for the
    /// root mount).
    pub covered: Mutex<Option<Arc<Node>>>,
    /// Set for mounts the guest made.
    pub shown: OnceLock<GuestShown>,
}

static NEXT_ID: AtomicU32 = AtomicU32::new(20);

impl Mount {
    /// A new mount of `kind` whose files may hold `limit` bytes, attached
    /// in the mount `parent_id` (None: it is the root mount).
    pub fn new(kind: FsKind, limit: u64, parent_id: Option<u32>) -> Mount {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        // The per-mount flags /proc/mounts shows for the sandbox's own
        // mounts of each kind are the ones in force.
        let flags = match kind {
            FsKind::Tmpfs => MS_NOSUID | MS_NODEV,
            FsKind::Dev => MS_NOSUID,
            FsKind::Proc => MS_NOSUID | MS_NODEV | MS_NOEXEC,
            FsKind::Devpts => MS_NOSUID | MS_NOEXEC,
            FsKind::Sysfs => MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
            FsKind::Overlay | FsKind::Bind { .. } => 0,
        };
        Mount {
            id,
            parent_id: AtomicU32::new(parent_id.unwrap_or(id)),
            fs_root: b"/".to_vec(),
            locked: 0,
            kind,
            // Anonymous devices: major 0, one minor per mount.
            dev: 0x20 + id as u64,
            quota: Box::leak(Box::new(Quota::new(limit))),
            flags: AtomicU64::new(flags),
            covered: Mutex::new(None),
            shown: OnceLock::new(),
        }
    }

    /// A bind mount of `src`'s directory `fs_root`, attached in the mount
    /// `parent_id`: the same file system (device, budget, options) with
    /// its own id and per-mount flags, starting as `src`'s plus `locked`.
    pub fn bind_of(src: &Mount, parent_id: u32, fs_root: Vec<u8>, locked: u64) -> Mount {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let shown = OnceLock::new();
        if let Some(g) = src.shown.get() {
            let _ = shown.set(g.clone());
        }
        let locked = locked | src.locked;
        Mount {
            id,
            parent_id: AtomicU32::new(parent_id),
            fs_root,
            locked,
            kind: src.kind,
            dev: src.dev,
            quota: src.quota,
            flags: AtomicU64::new(src.flags.load(Ordering::Relaxed) | locked),
            covered: Mutex::new(None),
            shown,
        }
    }

    /// Whether a flag (MS_RDONLY...) is set on this mount.
    pub fn has(&self, flag: u64) -> bool {
        self.flags.load(Ordering::Relaxed) & flag != 0
    }

    /// Whether the guest may change files of this mount.
    pub fn writable(&self) -> bool {
        let kind = matches!(
            self.kind,
            FsKind::Overlay | FsKind::Tmpfs | FsKind::Bind { readonly: false }
        );
        kind && !self.has(MS_RDONLY)
    }

    /// Whether this is a bind mount of a host directory.
    pub fn is_bind(&self) -> bool {
        matches!(self.kind, FsKind::Bind { .. })
    }

    /// Whether files of this mount live in memory (tmpfs inodes).
    pub fn in_memory(&self) -> bool {
        matches!(self.kind, FsKind::Overlay | FsKind::Tmpfs)
    }

    /// The file system type and the source of /proc/mounts.
    pub fn fstype(&self) -> (&'static str, &'static str) {
        match self.kind {
            FsKind::Overlay => ("overlay", "overlay"),
            FsKind::Tmpfs => ("tmpfs", "tmpfs"),
            FsKind::Dev => ("tmpfs", "dev"),
            FsKind::Proc => ("proc", "proc"),
            FsKind::Devpts => ("devpts", "devpts"),
            FsKind::Sysfs => ("sysfs", "sysfs"),
            FsKind::Bind { .. } => ("9p", "bind"),
        }
    }

    /// The source of /proc/mounts.
    pub fn source(&self) -> &str {
        match self.shown.get() {
            Some(g) => &g.source,
            None => self.fstype().1,
        }
    }

    /// The mount options of /proc/mounts.
    pub fn options(&self) -> String {
        let rw = if self.has(MS_RDONLY) { "ro" } else { "rw" };
        if let Some(g) = self.shown.get() {
            let mut out = rw.to_string();
            for (flag, name) in [
                (MS_NOSUID, "nosuid"),
                (MS_NODEV, "nodev"),
                (MS_NOEXEC, "noexec"),
            ] {
                if self.has(flag) {
                    out += ",";
                    out += name;
                }
            }
            return format!("{out},relatime{}", g.extra);
        }
        let base = self.kind_options();
        match base.strip_prefix("rw") {
            Some(rest) if rw == "ro" => format!("ro{rest}"),
            _ => base,
        }
    }

    /// The options of the sandbox's own mounts of each kind.
    fn kind_options(&self) -> String {
        match self.kind {
            FsKind::Overlay => "rw,relatime".into(),
            FsKind::Tmpfs => format!(
                "rw,nosuid,nodev,relatime,size={}k",
                self.quota.limit() / 1024
            ),
            FsKind::Dev => "rw,nosuid,relatime,mode=755".into(),
            FsKind::Proc => "rw,nosuid,nodev,noexec,relatime".into(),
            FsKind::Devpts => "rw,nosuid,noexec,relatime,gid=5,mode=620,ptmxmode=666".into(),
            FsKind::Sysfs => "ro,nosuid,nodev,noexec,relatime".into(),
            FsKind::Bind { readonly } => {
                if readonly {
                    "ro,relatime".into()
                } else {
                    "rw,relatime".into()
                }
            }
        }
    }

    /// statfs of this mount: (f_type, f_flags).
    pub fn magic(&self) -> u64 {
        match self.kind {
            FsKind::Overlay => OVERLAYFS_SUPER_MAGIC,
            FsKind::Tmpfs | FsKind::Dev => TMPFS_MAGIC,
            FsKind::Proc => PROC_SUPER_MAGIC,
            FsKind::Devpts => DEVPTS_SUPER_MAGIC,
            FsKind::Sysfs => super::sysfs::SYSFS_MAGIC,
            FsKind::Bind { .. } => 0x0102_1997, // V9FS_MAGIC
        }
    }

    /// statfs(2) of this mount: blocks are its data budget.
    pub fn statfs(&self) -> crate::gofer::Statfs {
        let limit = if matches!(
            self.kind,
            FsKind::Dev | FsKind::Proc | FsKind::Devpts | FsKind::Sysfs
        ) {
            0
        } else {
            self.quota.limit()
        };
        let blocks = limit / 4096;
        let free = blocks.saturating_sub(self.quota.used().div_ceil(4096));
        crate::gofer::Statfs {
            kind: self.magic(),
            bsize: 4096,
            blocks,
            bfree: free,
            bavail: free,
            files: 1 << 20,
            ffree: 1 << 20,
            namelen: 255,
        }
    }

    /// f_flags of statfs.
    pub fn flags(&self) -> u64 {
        let mut f = if self.writable()
            || matches!(self.kind, FsKind::Dev | FsKind::Proc | FsKind::Devpts)
        {
            0
        } else {
            ST_RDONLY
        };
        // statfs's ST_NOSUID, ST_NODEV, ST_NOEXEC are the MS_ bits.
        f |= self.flags.load(Ordering::Relaxed) & (MS_NOSUID | MS_NODEV | MS_NOEXEC);
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_tmpfs_statfs_counts_its_budget() {
        let m = Mount::new(FsKind::Tmpfs, 1 << 20, Some(1));
        let s = m.statfs();
        assert_eq!(s.kind, TMPFS_MAGIC);
        assert_eq!(s.blocks, 256);
        assert_eq!(s.bfree, 256);
        // statfs's ST_NOSUID | ST_NODEV, as its options say.
        assert_eq!(m.flags(), MS_NOSUID | MS_NODEV);
        assert!(m.options().contains("nosuid,nodev"));
        assert!(m.options().contains("size=1024k"));
    }

    #[test]
    fn mount_readonly_bind_is_not_writable() {
        let m = Mount::new(FsKind::Bind { readonly: true }, 0, Some(1));
        assert!(!m.writable());
        assert_eq!(m.flags(), ST_RDONLY);
    }
}
