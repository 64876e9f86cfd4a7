//! Pod memory volumes: one sentry tmpfs shared by the containers that
//! mount it (`"volumes": {"work": {"type": "tmpfs"}}`).
//!
//! The volume is one dentry tree (one [`Mount`], one set of `Node`s and
//! memory inodes), so every change one container makes is the others'
//! at once: there is nothing to keep coherent. Its file data is guest
//! memory charged to the volume's own budget (`size`), so it counts
//! against `resources.memory` too.
//!
//! Each container attaches the same root dentry in its own tree, at its
//! own mount point. The root has no parent of its own: what lies above
//! it depends on the container, so each `GoferFs` records where it
//! attached the volume and answers for the root's parent and name
//! ([`GoferFs::parent_of`], [`GoferFs::path_of`]); `..` at the root goes
//! back to that container's mount point, never into another container's
//! tree. A container that mounts the volume `readonly` (or mounts it a
//! second time) attaches a view of the root instead (`node.rs`), in a
//! mount of its own that is read-only, locked so; the others may still
//! change it.

use std::sync::Arc;

use super::gofer::GoferFs;
use super::mount::{FsKind, Mount, MS_RDONLY};
use super::node::Node;
use super::tmpfs::TmpInode;
use crate::abi::SysResult;

/// A memory volume attached in one container's tree.
pub struct VolumeAt {
    root: Arc<Node>,
    /// The mount point's parent directory and name in this container.
    dir: Arc<Node>,
    name: Vec<u8>,
}

/// The root of a new memory volume whose files may hold `size` bytes.
pub fn new_volume(size: u64) -> Arc<Node> {
    let mount = Arc::new(Mount::new(FsKind::Tmpfs, size, None));
    Node::new_upper(b"", None, TmpInode::new_dir(0o1777, 0, 0), mount)
}

impl GoferFs {
    /// Mounts the memory volume `root` (see [`new_volume`]) on `target`.
    /// A read-only mount, or a second mount of it in this container, is a
    /// view of the root in a mount of its own (see `node.rs`): read-only
    /// there and nowhere else, and locked so (the pod's word).
    pub fn mount_volume(&self, target: &[u8], root: &Arc<Node>, readonly: bool) -> SysResult<()> {
        let (dir, name) = self.mount_point(target)?;
        let mut volumes = self.volumes.lock().unwrap();
        let again = volumes.iter().any(|v| Arc::ptr_eq(&v.root, root));
        if readonly || again {
            drop(volumes);
            let locked = if readonly { MS_RDONLY } else { 0 };
            let mount = Mount::bind_of(&root.mount, dir.mount.id, b"/".to_vec(), locked);
            let view = Node::view_of(root, &dir, &name, Arc::new(mount));
            self.attach_mount(&dir, &name, view);
            return Ok(());
        }
        volumes.push(VolumeAt {
            root: root.clone(),
            dir: dir.clone(),
            name: name.clone(),
        });
        drop(volumes);
        self.attach_mount(&dir, &name, root.clone());
        Ok(())
    }

    /// Where this container attached the volume whose root is `node`.
    fn volume_at<T>(&self, node: &Node, f: impl FnOnce(&VolumeAt) -> T) -> Option<T> {
        let volumes = self.volumes.lock().unwrap();
        volumes
            .iter()
            .find(|v| std::ptr::eq(Arc::as_ptr(&v.root), node))
            .map(f)
    }

    /// The parent dentry of `node` in this container's tree (None for the
    /// root of the tree).
    pub fn parent_of(&self, node: &Node) -> Option<Arc<Node>> {
        node.parent()
            .or_else(|| self.volume_at(node, |v| v.dir.clone()))
    }

    /// The absolute path of `node` in this container's tree.
    pub fn path_of(&self, node: &Arc<Node>) -> Vec<u8> {
        let mut parts = vec![];
        let mut cur = node.clone();
        while let Some(parent) = self.parent_of(&cur) {
            parts.push(self.name_of(&cur));
            cur = parent;
        }
        super::node::join_reversed(&parts)
    }

    /// The name of `node` in its parent directory in this container's
    /// tree (a volume root's is its mount point's).
    pub(super) fn name_of(&self, node: &Node) -> Vec<u8> {
        match node.parent() {
            Some(_) => node.name(),
            None => self.volume_at(node, |v| v.name.clone()).unwrap_or_default(),
        }
    }
}
