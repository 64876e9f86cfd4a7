//! Dentries: one `Node` per name the guest has looked up, cached for the
//! life of the sandbox (the image is immutable, and the memory layers
//! exist nowhere else).
//!
//! A node may have a lower file (a gofer fid of the image) and an upper
//! inode (a memory inode: created in a tmpfs or in the overlay, or copied
//! up from the lower file). The upper inode, once set, is what the node
//! is; the lower fid then only still lists a directory's image entries.
//!
//! A directory's child map is both the cache of its lower entries and its
//! upper layer: `Some(node)` is what the name is now (lower, copied up,
//! created, renamed here or a mount root), `None` that the name does not
//! exist (a negative lookup, or a whiteout over a lower entry: the map is
//! never evicted, so both mean the same). A directory without a lower fid
//! is opaque: its map is all it has.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use super::dev::Synth;
use super::mount::Mount;
use super::tmpfs::TmpInode;
use crate::abi::types::Stat;
use crate::abi::{Errno, SysResult};
use crate::gofer::Fid;
use crate::sentry::mm::CacheSlot;

/// The fid of a node without a lower file.
pub const NOFID: Fid = u32::MAX;

/// A cached dentry with its inode's metadata.
pub struct Node {
    /// Name and parent change only by rename; None for the root.
    name: Mutex<Vec<u8>>,
    parent: Mutex<Option<Arc<Node>>>,
    /// The lower (image) file, or NOFID.
    pub fid: Fid,
    /// The metadata when the node was made; only the file type is fixed:
    /// see [`Node::current_stat`].
    pub stat: Stat,
    /// See the module doc.
    children: Mutex<HashMap<Vec<u8>, Option<Arc<Node>>>>,
    /// The lower symlink's target, once read.
    pub(super) link: OnceLock<Vec<u8>>,
    /// Set for the sentry's own files (/dev, /proc).
    pub synth: Option<Synth>,
    upper: OnceLock<Arc<TmpInode>>,
    /// The metadata last seen on the host, for a node of a bind mount
    /// (refreshed on every lookup, stat and change: see `bind.rs`).
    fresh: Mutex<Stat>,
    /// The file system this node belongs to.
    pub mount: Arc<Mount>,
    /// The page cache of a mapped image or bind file (see `mm::pagecache`).
    pub page_cache: CacheSlot,
}

impl Node {
    fn build(
        name: &[u8],
        parent: Option<Arc<Node>>,
        fid: Fid,
        stat: Stat,
        mount: Arc<Mount>,
    ) -> Node {
        Node {
            name: Mutex::new(name.to_vec()),
            parent: Mutex::new(parent),
            fid,
            stat,
            children: Mutex::new(HashMap::new()),
            link: OnceLock::new(),
            synth: None,
            upper: OnceLock::new(),
            fresh: Mutex::new(stat),
            mount,
            page_cache: CacheSlot::default(),
        }
    }

    /// A node of the image (lower only).
    pub fn new_lower(
        name: &[u8],
        parent: Option<Arc<Node>>,
        fid: Fid,
        stat: Stat,
        mount: Arc<Mount>,
    ) -> Arc<Node> {
        Arc::new(Node::build(name, parent, fid, stat, mount))
    }

    /// A synthetic file of the sentry's own.
    pub fn new_synth(
        name: &[u8],
        parent: &Arc<Node>,
        synth: Synth,
        stat: Stat,
        mount: Arc<Mount>,
    ) -> Arc<Node> {
        let mut node = Node::build(name, Some(parent.clone()), NOFID, stat, mount);
        node.synth = Some(synth);
        Arc::new(node)
    }

    /// A node of a memory inode (created in a tmpfs or the overlay, or
    /// the root of a tmpfs mount).
    pub fn new_upper(
        name: &[u8],
        parent: Option<&Arc<Node>>,
        inode: Arc<TmpInode>,
        mount: Arc<Mount>,
    ) -> Arc<Node> {
        let node = Node::build(name, parent.cloned(), NOFID, inode.stat(), mount);
        let _ = node.upper.set(inode);
        Arc::new(node)
    }

    /// The memory inode, if the node has one.
    pub fn upper(&self) -> Option<&Arc<TmpInode>> {
        self.upper.get()
    }

    /// Sets the memory inode of a node copied up; returns the one that
    /// is set (an earlier one wins).
    pub fn set_upper(&self, inode: Arc<TmpInode>) -> Arc<TmpInode> {
        self.upper.get_or_init(|| inode).clone()
    }

    /// Whether the node has a lower (image) file.
    pub fn has_lower(&self) -> bool {
        self.fid != NOFID
    }

    pub fn parent(&self) -> Option<Arc<Node>> {
        self.parent.lock().unwrap().clone()
    }

    pub fn name(&self) -> Vec<u8> {
        self.name.lock().unwrap().clone()
    }

    /// Whether this node is the root of its mount (EBUSY to remove).
    pub fn is_mount_root(&self) -> bool {
        self.parent()
            .is_none_or(|p| !Arc::ptr_eq(&p.mount, &self.mount))
    }

    /// The metadata now, with the mount's device number. A directory with
    /// a lower part counts 1 link, as overlayfs does (its subdirectories
    /// are not cheap to count); a memory directory 2 plus its subdirs.
    pub fn current_stat(&self) -> Stat {
        let bind = self.mount.is_bind();
        let mut st = match self.upper() {
            Some(t) => t.stat(),
            None if bind => *self.fresh.lock().unwrap(),
            None => self.stat,
        };
        st.dev = self.mount.dev;
        if st.is_dir() && self.synth.is_none() && !bind {
            st.nlink = if self.has_lower() {
                1
            } else {
                let c = self.children.lock().unwrap();
                2 + c.values().flatten().filter(|n| n.stat.is_dir()).count() as u64
            };
        }
        st
    }

    /// Records the metadata the host reported now (bind mounts).
    pub fn refresh(&self, st: Stat) {
        *self.fresh.lock().unwrap() = st;
    }

    /// Whether `st` (from the host) is still this node's file: the same
    /// inode of the same type.
    pub fn same_file(&self, st: &Stat) -> bool {
        let s = &self.stat;
        (s.dev, s.ino, s.mode & crate::abi::types::S_IFMT)
            == (st.dev, st.ino, st.mode & crate::abi::types::S_IFMT)
    }

    /// Drops `name` from the map altogether (bind mounts cache no
    /// negative entries); returns what was there.
    pub fn forget_child(&self, name: &[u8]) -> Option<Arc<Node>> {
        self.children.lock().unwrap().remove(name).flatten()
    }

    /// The cached entry for `name`: Some(Some) found, Some(None) known
    /// absent, None not looked up yet.
    pub fn cached(&self, name: &[u8]) -> Option<Option<Arc<Node>>> {
        self.children.lock().unwrap().get(name).cloned()
    }

    /// Caches a lookup result unless another got there first; returns
    /// what is cached.
    pub fn cache(&self, name: &[u8], found: Option<Arc<Node>>) -> Option<Arc<Node>> {
        let mut c = self.children.lock().unwrap();
        c.entry(name.to_vec()).or_insert(found).clone()
    }

    /// A copy of the child map (for a merged directory listing).
    pub fn children(&self) -> HashMap<Vec<u8>, Option<Arc<Node>>> {
        self.children.lock().unwrap().clone()
    }

    /// The existing children, as (name, node).
    pub fn existing_children(&self) -> Vec<(Vec<u8>, Arc<Node>)> {
        let c = self.children.lock().unwrap();
        c.iter()
            .filter_map(|(k, v)| v.clone().map(|n| (k.clone(), n)))
            .collect()
    }

    /// Links `child` under `name` (EEXIST if taken). For a directory with
    /// a lower part the name must have been looked up first.
    pub fn link_child(&self, name: &[u8], child: Arc<Node>) -> SysResult<()> {
        let mut c = self.children.lock().unwrap();
        if c.get(name).is_some_and(|n| n.is_some()) {
            return Err(Errno::EEXIST);
        }
        c.insert(name.to_vec(), Some(child));
        Ok(())
    }

    /// Puts `child` under `name`, whatever was there (mounts, renames
    /// over an entry); returns what was.
    pub fn set_child(&self, name: &[u8], child: Arc<Node>) -> Option<Arc<Node>> {
        self.children
            .lock()
            .unwrap()
            .insert(name.to_vec(), Some(child))
            .flatten()
    }

    /// Removes `name`: a whiteout when a lower entry may lie under it.
    pub fn remove_child(&self, name: &[u8]) -> Option<Arc<Node>> {
        let mut c = self.children.lock().unwrap();
        if self.has_lower() && !self.mount.is_bind() {
            c.insert(name.to_vec(), None).flatten()
        } else {
            c.remove(name).flatten()
        }
    }

    /// Gives this node a new name and parent (rename).
    pub fn move_to(&self, parent: &Arc<Node>, name: &[u8]) {
        *self.parent.lock().unwrap() = Some(parent.clone());
        *self.name.lock().unwrap() = name.to_vec();
    }

    /// The absolute path of this node, up to the root of its tree: for
    /// the path in a container (below a memory volume too) use
    /// `GoferFs::path_of`.
    pub fn path(&self) -> Vec<u8> {
        let mut parts = vec![];
        let mut cur = self.parent().map(|p| (self.name(), p));
        while let Some((name, parent)) = cur {
            parts.push(name);
            cur = parent.parent().map(|pp| (parent.name(), pp));
        }
        join_reversed(&parts)
    }
}

/// The absolute path whose components, last first, are `parts`.
pub(super) fn join_reversed(parts: &[Vec<u8>]) -> Vec<u8> {
    if parts.is_empty() {
        return b"/".to_vec();
    }
    let mut out = vec![];
    for p in parts.iter().rev() {
        out.push(b'/');
        out.extend_from_slice(p);
    }
    out
}
