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
//!
//! **Views.** A bind mount made inside the guest shows one directory in a
//! second place. What a node *is* (its files, its child map, its memory
//! inode, its page cache) lives in its [`Core`], which the node shares
//! with its views; where it is (name, parent, mount) is the node's own.
//! The tree the container's own mounts make is the *canonical* one: its
//! child maps hold canonical nodes. A view node wraps a canonical node
//! (never another view) and keeps its own cache of child views, made on
//! lookup (`GoferFs::lookup`) and checked against the canonical map each
//! time, so a change made through either place is seen in both. Changes
//! made through a view go to the canonical node first (the methods below
//! do that), so `..`, paths and mount flags follow the view while the
//! data stays one. A view's cache also holds the mounts attached on it
//! (kids of another mount), which are the view's alone, as Linux keeps
//! mounts private.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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

/// What a dentry is, shared by a canonical node and its views.
pub struct Core {
    /// The lower (image) file, or NOFID.
    pub fid: Fid,
    /// The metadata when the node was made; only the file type is fixed:
    /// see [`Node::current_stat`].
    pub stat: Stat,
    /// See the module doc: canonical nodes only.
    children: Mutex<HashMap<Vec<u8>, Option<Arc<Node>>>>,
    /// The lower symlink's target, once read.
    pub(super) link: OnceLock<Vec<u8>>,
    /// Set for the sentry's own files (/dev, /proc).
    pub synth: Option<Synth>,
    upper: OnceLock<Arc<TmpInode>>,
    /// The metadata last seen on the host, for a node of a bind mount
    /// (refreshed on every lookup, stat and change: see `bind.rs`).
    fresh: Mutex<Stat>,
    /// The page cache of a mapped image or bind file (see `mm::pagecache`).
    pub page_cache: CacheSlot,
    /// An O_TMPFILE file opened without O_EXCL and not linked yet: linkat
    /// may give it a name although it has no link.
    linkable: AtomicBool,
}

impl Core {
    fn new(fid: Fid, stat: Stat, synth: Option<Synth>) -> Arc<Core> {
        Arc::new(Core {
            fid,
            stat,
            children: Mutex::new(HashMap::new()),
            link: OnceLock::new(),
            synth,
            upper: OnceLock::new(),
            fresh: Mutex::new(stat),
            page_cache: CacheSlot::default(),
            linkable: AtomicBool::new(false),
        })
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

    /// Marks an O_TMPFILE file that linkat may name (or no longer).
    pub fn set_linkable(&self, on: bool) {
        self.linkable.store(on, Ordering::SeqCst);
    }

    /// Whether linkat may name this file though it has no link.
    pub fn linkable(&self) -> bool {
        self.linkable.load(Ordering::SeqCst)
    }

    /// Whether the node has a lower (image) file.
    pub fn has_lower(&self) -> bool {
        self.fid != NOFID
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
}

/// What makes a node a view (see the module doc).
pub struct View {
    /// The canonical node this one shows.
    real: Arc<Node>,
    /// Child views by name, and mounts attached on this view.
    kids: Mutex<HashMap<Vec<u8>, Arc<Node>>>,
}

impl Drop for View {
    fn drop(&mut self) {
        self.real.viewers.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A cached dentry: where it is, and (shared) what it is.
pub struct Node {
    /// Name and parent change only by rename; None for the root.
    name: Mutex<Vec<u8>>,
    parent: Mutex<Option<Arc<Node>>>,
    /// The file system this node belongs to.
    pub mount: Arc<Mount>,
    core: Arc<Core>,
    view: Option<View>,
    /// How many views show this node (they hold it, but do not make its
    /// mount busy).
    viewers: AtomicUsize,
}

impl Deref for Node {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.core
    }
}

impl Node {
    fn bare(
        name: &[u8],
        parent: Option<Arc<Node>>,
        core: Arc<Core>,
        mount: Arc<Mount>,
        view: Option<View>,
    ) -> Node {
        Node {
            name: Mutex::new(name.to_vec()),
            parent: Mutex::new(parent),
            mount,
            core,
            view,
            viewers: AtomicUsize::new(0),
        }
    }

    /// A new node `name` under `parent`. Under a view, a child in the
    /// view's own mount is made canonical under the view's real node,
    /// and its view is returned.
    fn place(
        name: &[u8],
        parent: Option<Arc<Node>>,
        core: Arc<Core>,
        mount: Arc<Mount>,
    ) -> Arc<Node> {
        if let Some(p) = &parent {
            if let Some(v) = &p.view {
                if Arc::ptr_eq(&mount, &p.mount) {
                    let real = v.real.clone();
                    let canon =
                        Node::bare(name, Some(real.clone()), core, real.mount.clone(), None);
                    return Node::view_of(&Arc::new(canon), p, name, mount);
                }
            }
        }
        Arc::new(Node::bare(name, parent, core, mount, None))
    }

    /// A node of the image (lower only).
    pub fn new_lower(
        name: &[u8],
        parent: Option<Arc<Node>>,
        fid: Fid,
        stat: Stat,
        mount: Arc<Mount>,
    ) -> Arc<Node> {
        Node::place(name, parent, Core::new(fid, stat, None), mount)
    }

    /// A synthetic file of the sentry's own.
    pub fn new_synth(
        name: &[u8],
        parent: &Arc<Node>,
        synth: Synth,
        stat: Stat,
        mount: Arc<Mount>,
    ) -> Arc<Node> {
        let core = Core::new(NOFID, stat, Some(synth));
        Node::place(name, Some(parent.clone()), core, mount)
    }

    /// A node of a memory inode (created in a tmpfs or the overlay, or
    /// the root of a tmpfs mount).
    pub fn new_upper(
        name: &[u8],
        parent: Option<&Arc<Node>>,
        inode: Arc<TmpInode>,
        mount: Arc<Mount>,
    ) -> Arc<Node> {
        let core = Core::new(NOFID, inode.stat(), None);
        let _ = core.upper.set(inode);
        Node::place(name, parent.cloned(), core, mount)
    }

    /// A view of `node` (of what it shows, for a view) as `name` in
    /// `parent`, in `mount`.
    pub fn view_of(
        node: &Arc<Node>,
        parent: &Arc<Node>,
        name: &[u8],
        mount: Arc<Mount>,
    ) -> Arc<Node> {
        let real = node.real();
        real.viewers.fetch_add(1, Ordering::Relaxed);
        let view = View {
            real: real.clone(),
            kids: Mutex::new(HashMap::new()),
        };
        let core = real.core.clone();
        Arc::new(Node::bare(
            name,
            Some(parent.clone()),
            core,
            mount,
            Some(view),
        ))
    }

    /// Whether this node is a view (see the module doc).
    pub fn is_view(&self) -> bool {
        self.view.is_some()
    }

    /// The canonical node: the one a view shows, or this one.
    pub fn real(self: &Arc<Self>) -> Arc<Node> {
        match &self.view {
            Some(v) => v.real.clone(),
            None => self.clone(),
        }
    }

    /// Whether this is a view of `node`.
    pub fn shows(&self, node: &Arc<Node>) -> bool {
        self.view
            .as_ref()
            .is_some_and(|v| Arc::ptr_eq(&v.real, node))
    }

    /// How many views show this node.
    pub fn viewers(&self) -> usize {
        self.viewers.load(Ordering::Relaxed)
    }

    /// A view's cached kid `name`: a child view, or a mount attached on
    /// the view (whose mount differs from the view's).
    pub fn view_kid(&self, name: &[u8]) -> Option<Arc<Node>> {
        let v = self.view.as_ref()?;
        v.kids.lock().unwrap().get(name).cloned()
    }

    /// Caches `kid` as a view's child `name`; returns what was there.
    pub fn set_view_kid(&self, name: &[u8], kid: Arc<Node>) -> Option<Arc<Node>> {
        let v = self.view.as_ref().expect("a view");
        v.kids.lock().unwrap().insert(name.to_vec(), kid)
    }

    /// Drops a view's cached kid `name` (the canonical map is untouched);
    /// returns it.
    pub fn drop_view_kid(&self, name: &[u8]) -> Option<Arc<Node>> {
        let v = self.view.as_ref()?;
        v.kids.lock().unwrap().remove(name)
    }

    /// Whether `kid`, cached in this view, is a mount attached here.
    fn pinned(&self, kid: &Node) -> bool {
        !Arc::ptr_eq(&kid.mount, &self.mount)
    }

    pub fn parent(&self) -> Option<Arc<Node>> {
        self.parent.lock().unwrap().clone()
    }

    pub fn name(&self) -> Vec<u8> {
        self.name.lock().unwrap().clone()
    }

    /// Whether this dentry's name is gone (unlinked, or never had one: an
    /// O_TMPFILE file), for /proc's "(deleted)". The sentry's own files
    /// are never cached, so they never count as gone.
    pub fn unlinked(self: &Arc<Self>) -> bool {
        if self.synth.is_some() || self.is_mount_root() {
            return false;
        }
        let Some(parent) = self.parent() else {
            return false;
        };
        !parent
            .cached(&self.name())
            .flatten()
            .is_some_and(|n| Arc::ptr_eq(&n, self))
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
                let c = self.core.children.lock().unwrap();
                2 + c.values().flatten().filter(|n| n.stat.is_dir()).count() as u64
            };
        }
        st
    }

    /// Drops `name` from the map altogether (bind mounts cache no
    /// negative entries); returns what was there.
    pub fn forget_child(&self, name: &[u8]) -> Option<Arc<Node>> {
        if let Some(v) = &self.view {
            let kid = v.kids.lock().unwrap().remove(name);
            if !kid.as_ref().is_some_and(|k| self.pinned(k)) {
                v.real.forget_child(name);
            }
            return kid;
        }
        self.core.children.lock().unwrap().remove(name).flatten()
    }

    /// The cached entry for `name`: Some(Some) found, Some(None) known
    /// absent, None not looked up yet (for a view: not looked up through
    /// it since the canonical entry changed).
    pub fn cached(&self, name: &[u8]) -> Option<Option<Arc<Node>>> {
        if let Some(v) = &self.view {
            let kid = self.view_kid(name)?;
            if self.pinned(&kid) {
                return Some(Some(kid));
            }
            return match v.real.cached(name)? {
                Some(rk) if kid.shows(&rk) => Some(Some(kid)),
                _ => None,
            };
        }
        self.core.children.lock().unwrap().get(name).cloned()
    }

    /// Caches a lookup result unless another got there first; returns
    /// what is cached. Canonical nodes only: a view caches its kids in
    /// `GoferFs::lookup`.
    pub fn cache(&self, name: &[u8], found: Option<Arc<Node>>) -> Option<Arc<Node>> {
        debug_assert!(self.view.is_none(), "cache() of a view");
        let mut c = self.core.children.lock().unwrap();
        c.entry(name.to_vec()).or_insert(found).clone()
    }

    /// A copy of the child map (for a merged directory listing): the
    /// canonical one, for a view too.
    pub fn children(&self) -> HashMap<Vec<u8>, Option<Arc<Node>>> {
        self.core.children.lock().unwrap().clone()
    }

    /// The existing children in this tree, as (name, node): for a view,
    /// its cached kids.
    pub fn existing_children(&self) -> Vec<(Vec<u8>, Arc<Node>)> {
        if let Some(v) = &self.view {
            let kids = v.kids.lock().unwrap();
            return kids.iter().map(|(k, n)| (k.clone(), n.clone())).collect();
        }
        let c = self.core.children.lock().unwrap();
        c.iter()
            .filter_map(|(k, v)| v.clone().map(|n| (k.clone(), n)))
            .collect()
    }

    /// Links `child` under `name` (EEXIST if taken). For a directory with
    /// a lower part the name must have been looked up first.
    pub fn link_child(&self, name: &[u8], child: Arc<Node>) -> SysResult<()> {
        if let Some(v) = &self.view {
            v.real.link_child(name, child.real())?;
            v.kids.lock().unwrap().insert(name.to_vec(), child);
            return Ok(());
        }
        let mut c = self.core.children.lock().unwrap();
        if c.get(name).is_some_and(|n| n.is_some()) {
            return Err(Errno::EEXIST);
        }
        c.insert(name.to_vec(), Some(child));
        Ok(())
    }

    /// Puts `child` under `name`, whatever was there (mounts, renames
    /// over an entry); returns what was. A mount attached on a view is
    /// the view's alone.
    pub fn set_child(&self, name: &[u8], child: Arc<Node>) -> Option<Arc<Node>> {
        if let Some(v) = &self.view {
            if !self.pinned(&child) {
                v.real.set_child(name, child.real());
            }
            return v.kids.lock().unwrap().insert(name.to_vec(), child);
        }
        self.core
            .children
            .lock()
            .unwrap()
            .insert(name.to_vec(), Some(child))
            .flatten()
    }

    /// Removes `name`: a whiteout when a lower entry may lie under it.
    pub fn remove_child(&self, name: &[u8]) -> Option<Arc<Node>> {
        if let Some(v) = &self.view {
            v.real.remove_child(name);
            return v.kids.lock().unwrap().remove(name);
        }
        let mut c = self.core.children.lock().unwrap();
        if self.has_lower() && !self.mount.is_bind() {
            c.insert(name.to_vec(), None).flatten()
        } else {
            c.remove(name).flatten()
        }
    }

    /// Lets go of the tree under this node, the root of a mount that
    /// ended with nobody on it: its child maps and view caches, whose
    /// parent links would otherwise keep each other (and the mount
    /// above) alive, and with them the memory of its files. A subtree
    /// that a view elsewhere shows stays.
    pub fn release_tree(&self) {
        if self.viewers() > 0 {
            return;
        }
        let kids: Vec<Arc<Node>> = match &self.view {
            Some(v) => std::mem::take(&mut *v.kids.lock().unwrap())
                .into_values()
                .collect(),
            None => std::mem::take(&mut *self.core.children.lock().unwrap())
                .into_values()
                .flatten()
                .collect(),
        };
        for k in kids {
            if Arc::ptr_eq(&k.mount, &self.mount) {
                k.release_tree();
            }
        }
    }

    /// Gives this node a new name and parent (rename; for a view, the
    /// node it shows moves too).
    pub fn move_to(&self, parent: &Arc<Node>, name: &[u8]) {
        if let Some(v) = &self.view {
            v.real.move_to(&parent.real(), name);
        }
        self.move_mount_to(parent, name);
    }

    /// Gives this node a new name and parent, itself alone (a mount
    /// moved by MS_MOVE).
    pub fn move_mount_to(&self, parent: &Arc<Node>, name: &[u8]) {
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
