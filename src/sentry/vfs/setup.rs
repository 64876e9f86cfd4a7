//! Building a container's tree at boot: the sentry's /dev, /proc and /sys,
//! the tmpfs mounts (/tmp, /dev/shm and the pod's; bind mounts are in
//! `bind.rs`), and the /etc files a
//! container expects when the image has none (hosts, hostname,
//! resolv.conf), as files of the overlay's upper layer.

use std::sync::Arc;

use super::dev::{self, Synth};
use super::gofer::GoferFs;
use super::mount::{FsKind, Mount};
use super::node::Node;
use super::path::{resolve, resolve_parent, Follow};
use super::proc::ProcNode;
use super::tmpfs::TmpInode;
use crate::abi::{Errno, SysResult};

/// Size of /dev/shm (as Docker's default).
pub const SHM_LIMIT: u64 = 64 << 20;

impl GoferFs {
    /// Mounts /dev, /proc, /tmp (`tmp_limit` bytes) and /dev/shm.
    pub fn mount_standard(&self, tmp_limit: u64) -> SysResult<()> {
        self.mount_synth(b"dev", Synth::DevDir, FsKind::Dev);
        self.mount_synth(b"proc", Synth::Proc(ProcNode::Dir), FsKind::Proc);
        self.mount_devpts()?;
        self.mount_tmpfs(b"/tmp", tmp_limit)?;
        self.mount_tmpfs(b"/dev/shm", SHM_LIMIT)
    }

    /// Mounts the sentry's sysfs on /sys (read-only), showing `cpus` CPUs.
    pub fn mount_sysfs(&self, cpus: usize) {
        let root = super::sysfs::SysNode::root(cpus);
        self.mount_synth(b"sys", Synth::Sys(root), FsKind::Sysfs);
    }

    /// Mounts one of the sentry's own directories on `/name`.
    fn mount_synth(&self, name: &[u8], synth: Synth, kind: FsKind) {
        let root = self.root();
        let mount = Arc::new(Mount::new(kind, 0, Some(root.mount.id)));
        let node = Node::new_synth(name, root, synth, dev::stat_of(synth, 2), mount);
        self.attach_mount(root, name, node);
    }

    /// Mounts the container's devpts instance on /dev/pts.
    fn mount_devpts(&self) -> SysResult<()> {
        let root = self.root().clone();
        let dev = self.lookup(&root, b"dev")?;
        let mount = Arc::new(Mount::new(FsKind::Devpts, 0, Some(dev.mount.id)));
        let pts = Node::new_synth(
            b"pts",
            &dev,
            Synth::PtsDir,
            dev::stat_of(Synth::PtsDir, 1),
            mount,
        );
        self.pts.set_root(pts.clone());
        self.attach_mount(&dev, b"pts", pts);
        Ok(())
    }

    /// Mounts a memory file system of at most `size` bytes on `target`
    /// (an absolute path; missing directories on the way are made).
    pub fn mount_tmpfs(&self, target: &[u8], size: u64) -> SysResult<()> {
        let (dir, name) = self.mount_point(target)?;
        let mount = Arc::new(Mount::new(FsKind::Tmpfs, size, Some(dir.mount.id)));
        let root = Node::new_upper(&name, Some(&dir), TmpInode::new_dir(0o1777, 0, 0), mount);
        self.attach_mount(&dir, &name, root);
        Ok(())
    }

    /// The directory and name of mount point `target`, making the
    /// directories that lead there.
    pub(super) fn mount_point(&self, target: &[u8]) -> SysResult<(Arc<Node>, Vec<u8>)> {
        if !target.starts_with(b"/") {
            return Err(Errno::EINVAL);
        }
        let root = self.root().clone();
        let (dir, name) = resolve_parent(self, &root, &root, target).or_else(|e| {
            if e != Errno::ENOENT {
                return Err(e);
            }
            let end = target.iter().rposition(|&b| b == b'/').unwrap_or(0);
            self.make_dirs(&target[..end])?;
            resolve_parent(self, &root, &root, target)
        })?;
        Ok((dir, name))
    }

    /// mkdir -p `path` (absolute): in the memory layers, or on the host
    /// inside a bind mount (a mount point a later mount needs).
    fn make_dirs(&self, path: &[u8]) -> SysResult<()> {
        let root = self.root().clone();
        let mut cur = root.clone();
        for comp in path.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
            cur = match resolve(self, &root, &cur, comp, Follow::Yes) {
                Ok(n) => n,
                Err(Errno::ENOENT) if cur.mount.is_bind() => {
                    let dir = super::bind::NewEntry::Dir(0o755);
                    self.bind_make(&cur, comp, dir, crate::gofer::Owner::default())?
                }
                Err(Errno::ENOENT) => self.create(&cur, comp, TmpInode::new_dir(0o755, 0, 0))?,
                Err(e) => return Err(e),
            };
        }
        Ok(())
    }

    /// Writes /etc/hosts, /etc/hostname and /etc/resolv.conf into the
    /// upper layer where the image has none.
    pub fn default_etc(&self, hostname: &str) -> SysResult<()> {
        self.make_dirs(b"/etc")?;
        let root = self.root().clone();
        let etc = resolve(self, &root, &root, b"/etc", Follow::Yes)?;
        let hosts = format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
        );
        let files = [
            (&b"hosts"[..], hosts),
            (b"hostname", format!("{hostname}\n")),
            (
                b"resolv.conf",
                "# sandboxd: the sandbox has no network\n".to_string(),
            ),
        ];
        for (name, text) in files {
            match self.lookup(&etc, name) {
                Err(Errno::ENOENT) => {}
                Err(e) => return Err(e),
                Ok(_) => continue,
            }
            let inode = TmpInode::new_file(0o644, 0, 0, &self.mem, etc.mount.quota);
            inode
                .data()
                .expect("a regular file")
                .write(0, text.as_bytes())?;
            self.create(&etc, name, inode)?;
        }
        Ok(())
    }

    /// /proc/mounts.
    pub fn mounts_text(&self) -> Vec<u8> {
        let mut out = String::new();
        for root in self.mounts() {
            let m = &root.mount;
            let (fstype, source) = (m.fstype().0, m.source());
            let path = String::from_utf8_lossy(&self.path_of(&root)).replace(' ', "\\040");
            out += &format!("{source} {path} {fstype} {} 0 0\n", root.mount.options());
        }
        out.into_bytes()
    }

    /// /proc/self/mountinfo.
    pub fn mountinfo_text(&self) -> Vec<u8> {
        let mut out = String::new();
        for root in self.mounts() {
            let m = &root.mount;
            let (fstype, source) = (m.fstype().0, m.source());
            let path = String::from_utf8_lossy(&self.path_of(&root)).replace(' ', "\\040");
            let opts = root.mount.options();
            let mount_opts = opts.split(',').take(1).collect::<Vec<_>>().join(",");
            out += &format!(
                "{} {} 0:{} {} {path} {mount_opts},relatime - {fstype} {source} {opts}\n",
                m.id,
                m.parent_id.load(std::sync::atomic::Ordering::Relaxed),
                m.dev,
                String::from_utf8_lossy(&m.fs_root).replace(' ', "\\040"),
            );
        }
        out.into_bytes()
    }
}
