//! A container's file system tree: the image served by its gofer (the
//! lower layer of the root overlay), the memory file systems mounted in
//! it, and the sentry's /dev and /proc. Dentries are `Node`s, cached for
//! the life of the sandbox (the image is immutable).

use std::collections::HashSet;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};

use super::dev::{self, Synth};
use super::mount::Mount;
use super::node::Node;
use crate::abi::types::dtype_of_mode;
use crate::abi::{Errno, SysResult};
use crate::gofer::GoferClient;
use crate::sentry::mm::memory::GuestMemory;

/// One directory entry: (ino, d_type, name).
pub type Dirent = (u64, u8, Vec<u8>);

/// The synthetic file `name` in the sentry's directory `dir`.
fn synthetic_child(dir: &Node, name: &[u8]) -> Option<Synth> {
    let find = |list: &[(&str, Synth)]| {
        list.iter()
            .find(|(n, _)| n.as_bytes() == name)
            .map(|(_, s)| *s)
    };
    match dir.synth? {
        Synth::DevDir => find(dev::DEV_ENTRIES),
        Synth::FdDir => std::str::from_utf8(name)
            .ok()
            .and_then(|n| n.parse().ok())
            .filter(|&n: &i32| n >= 0)
            .map(Synth::Fd),
        _ => None,
    }
}

/// One container's file system tree.
pub struct GoferFs {
    pub(super) client: GoferClient,
    root: Arc<Node>,
    /// Guest memory, where memory files keep their data.
    pub(super) mem: Arc<GuestMemory>,
    /// The roots of the mounts, in mount order (the root first).
    mounts: Mutex<Vec<Arc<Node>>>,
    /// Held while copying a file up.
    pub(super) copy_lock: Mutex<()>,
    /// The pod's memory volumes this container mounted (`volume.rs`).
    pub(super) volumes: Mutex<Vec<super::volume::VolumeAt>>,
    /// The devpts instance mounted on /dev/pts.
    pub pts: Arc<super::tty_pts::Devpts>,
}

impl GoferFs {
    /// Attaches to the gofer's export root and makes it the lower layer
    /// of a root overlay whose upper layer may hold `upper_limit` bytes.
    pub fn attach(
        client: GoferClient,
        mem: Arc<GuestMemory>,
        upper_limit: u64,
    ) -> SysResult<GoferFs> {
        let (fid, stat) = client.attach()?;
        let mount = Arc::new(Mount::new(super::mount::FsKind::Overlay, upper_limit, None));
        let root = Node::new_lower(b"", None, fid, stat, mount);
        Ok(GoferFs {
            client,
            root: root.clone(),
            mem,
            mounts: Mutex::new(vec![root]),
            copy_lock: Mutex::new(()),
            volumes: Mutex::new(Vec::new()),
            pts: super::tty_pts::Devpts::new(),
        })
    }

    pub fn root(&self) -> &Arc<Node> {
        &self.root
    }

    /// The roots of the mounts, in mount order.
    pub fn mounts(&self) -> Vec<Arc<Node>> {
        self.mounts.lock().unwrap().clone()
    }

    /// Attaches `root` (a new mount's root dentry) as `name` in `dir`,
    /// covering what was there.
    pub(super) fn attach_mount(&self, dir: &Arc<Node>, name: &[u8], root: Arc<Node>) {
        let covered = dir.set_child(name, root.clone());
        *root.mount.covered.lock().unwrap() = covered;
        self.mounts.lock().unwrap().push(root);
    }

    /// Takes the mount rooted at `root` and the mounts under it out of
    /// the tree, putting back what it covered.
    pub(super) fn detach_mount(&self, root: &Arc<Node>) {
        let Some(dir) = root.parent() else {
            return;
        };
        self.uncover(&dir, root);
        let inside = |n: &Arc<Node>| {
            let mut cur = Some(n.clone());
            while let Some(c) = cur {
                if Arc::ptr_eq(&c, root) {
                    return true;
                }
                cur = c.parent();
            }
            false
        };
        self.mounts.lock().unwrap().retain(|m| !inside(m));
    }

    /// Takes the mount rooted at `root` off its mount point in `dir`,
    /// putting back what it covered.
    pub(super) fn uncover(&self, dir: &Arc<Node>, root: &Arc<Node>) {
        let name = root.name();
        let covered = root.mount.covered.lock().unwrap().take();
        if dir.is_view() {
            // Looked up afresh through the view, from the canonical map.
            dir.drop_view_kid(&name);
            return;
        }
        match covered {
            Some(old) => {
                dir.set_child(&name, old);
            }
            // A name not looked up when mounted: looked up afresh.
            None => {
                dir.forget_child(&name);
            }
        }
    }

    /// The child `name` of directory `dir` (ENOENT if there is none).
    pub fn lookup(&self, dir: &Arc<Node>, name: &[u8]) -> SysResult<Arc<Node>> {
        if !dir.stat.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        if dir.is_view() {
            return self.lookup_view(dir, name);
        }
        if dir.mount.is_bind() && dir.has_lower() {
            return self.lookup_bind(dir, name);
        }
        if dir.synth == Some(Synth::PtsDir) {
            // Ptys come and go: never cached.
            return self.pts.lookup(dir, name);
        }
        if let Some(Synth::Proc(p)) = dir.synth {
            return super::proc::lookup(dir, p, name);
        }
        if let Some(Synth::Sys(s)) = dir.synth {
            return super::sysfs::lookup(dir, s, name);
        }
        if let Some(cached) = dir.cached(name) {
            return cached.ok_or(Errno::ENOENT);
        }
        let found = self.lookup_uncached(dir, name)?;
        dir.cache(name, found).ok_or(Errno::ENOENT)
    }

    /// What `name` in canonical directory `dir` is, asked of the gofer or
    /// the sentry's own files (None: it does not exist).
    fn lookup_uncached(&self, dir: &Arc<Node>, name: &[u8]) -> SysResult<Option<Arc<Node>>> {
        if let Some(synth) = synthetic_child(dir, name) {
            let ino = 0x1000 + name.iter().map(|&b| b as u64).sum::<u64>();
            let node = Node::new_synth(
                name,
                dir,
                synth,
                dev::stat_of(synth, ino),
                dir.mount.clone(),
            );
            return Ok(Some(node));
        }
        if dir.synth.is_some() || !dir.has_lower() {
            // The sentry's directories and memory ones hold what their
            // map holds.
            return Ok(None);
        }
        Ok(match self.client.walk(dir.fid, name) {
            Ok((fid, stat)) => Some(Node::new_lower(
                name,
                Some(dir.clone()),
                fid,
                stat,
                dir.mount.clone(),
            )),
            Err(Errno::ENOENT) => None,
            Err(e) => return Err(e),
        })
    }

    /// The child `name` of view `dir`: a mount attached on the view, or
    /// the view of the canonical child, kept while the canonical map
    /// still has it. A mount in the canonical tree is not part of the
    /// view (a bind without MS_REC): the view shows what it covers.
    fn lookup_view(&self, dir: &Arc<Node>, name: &[u8]) -> SysResult<Arc<Node>> {
        let kid = dir.view_kid(name);
        if let Some(k) = kid.as_ref().filter(|k| !Arc::ptr_eq(&k.mount, &dir.mount)) {
            return Ok(k.clone());
        }
        let real = dir.real();
        let found = match self.lookup(&real, name) {
            Ok(n) if !Arc::ptr_eq(&n.mount, &real.mount) => self.covered_by(&real, name, &n)?,
            Ok(n) => n,
            Err(e) => {
                if e == Errno::ENOENT {
                    dir.drop_view_kid(name);
                }
                return Err(e);
            }
        };
        if let Some(k) = kid.filter(|k| k.shows(&found)) {
            return Ok(k);
        }
        let view = Node::view_of(&found, dir, name, dir.mount.clone());
        dir.set_view_kid(name, view.clone());
        Ok(view)
    }

    /// What the mount rooted at `root`, attached as `name` in canonical
    /// directory `dir`, covers (looked up now if nobody had, and kept
    /// for its umount).
    fn covered_by(&self, dir: &Arc<Node>, name: &[u8], root: &Arc<Node>) -> SysResult<Arc<Node>> {
        let mut covered = root.mount.covered.lock().unwrap();
        if let Some(c) = covered.as_ref() {
            return Ok(c.clone());
        }
        let found = self.lookup_uncached(dir, name)?.ok_or(Errno::ENOENT)?;
        *covered = Some(found.clone());
        Ok(found)
    }

    /// The target of symlink `node`.
    pub fn readlink(&self, node: &Node) -> SysResult<Vec<u8>> {
        if !node.stat.is_symlink() {
            return Err(Errno::EINVAL);
        }
        if let Some(Synth::Proc(p)) = node.synth {
            return super::proc::readlink(p);
        }
        if let Some(s) = node.synth {
            return dev::link_of(s).ok_or(Errno::EINVAL);
        }
        if let Some(t) = node.upper() {
            return t.target().map(<[u8]>::to_vec).ok_or(Errno::EINVAL);
        }
        if let Some(t) = node.link.get() {
            return Ok(t.clone());
        }
        let target = self.client.readlink(node.fid)?;
        Ok(node.link.get_or_init(|| target).clone())
    }

    /// statfs(2) of the mount `node` is in: (statistics, f_flags).
    pub fn statfs(&self, node: &Node) -> SysResult<(crate::gofer::Statfs, u64)> {
        if node.mount.is_bind() && node.has_lower() {
            return Ok((self.statfs_bind(node)?, node.mount.flags()));
        }
        Ok((node.mount.statfs(), node.mount.flags()))
    }

    /// Opens `node`'s lower file on the host through the gofer.
    pub fn open(&self, node: &Node, flags: i32) -> SysResult<OwnedFd> {
        if !node.has_lower() {
            return Err(Errno::ENXIO);
        }
        self.client.open(node.fid, flags)
    }

    /// The entries of directory `node`: the image's (minus whiteouts, as
    /// they are now where changed) and then the memory layer's, by name.
    pub fn readdir(&self, node: &Node) -> SysResult<Vec<Dirent>> {
        let mut out = match node.synth {
            Some(Synth::DevDir) => synth_entries(dev::DEV_ENTRIES, 0x1000),
            Some(Synth::PtsDir) => self.pts.entries(),
            Some(Synth::Proc(p)) => return super::proc::readdir(node, p),
            Some(Synth::Sys(s)) => return Ok(super::sysfs::readdir(node, s)),
            _ if node.mount.is_bind() && node.has_lower() => return self.readdir_bind(node),
            _ => vec![],
        };
        let children = node.children();
        let mut seen: HashSet<Vec<u8>> = out.iter().map(|e| e.2.clone()).collect();
        if node.has_lower() {
            for d in self.client.readdir(node.fid)? {
                seen.insert(d.name.clone());
                match children.get(&d.name) {
                    Some(None) => {}
                    Some(Some(n)) => out.push(entry_of(n, d.name)),
                    None => out.push((d.ino, d.kind, d.name)),
                }
            }
        }
        let mut rest: Vec<_> = children
            .into_iter()
            .filter_map(|(name, n)| n.map(|n| (name, n)))
            .filter(|(name, _)| !seen.contains(name))
            .collect();
        rest.sort_by(|a, b| a.0.cmp(&b.0));
        out.extend(rest.into_iter().map(|(name, n)| entry_of(&n, name)));
        Ok(out)
    }
}

fn entry_of(n: &Node, name: Vec<u8>) -> Dirent {
    (n.current_stat().ino, dtype_of_mode(n.stat.mode), name)
}

fn synth_entries(list: &[(&str, Synth)], base: u64) -> Vec<Dirent> {
    list.iter()
        .enumerate()
        .map(|(i, (n, s))| {
            (
                base + i as u64,
                dtype_of_mode(dev::stat_of(*s, 0).mode),
                n.as_bytes().to_vec(),
            )
        })
        .collect()
}
