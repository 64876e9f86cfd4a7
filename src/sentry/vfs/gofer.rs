//! The gofer file system: dentries of a container's image, fetched from its
//! gofer and cached forever (the image is immutable).

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, OnceLock};

use crate::abi::types::Stat;
use crate::abi::{Errno, SysResult};
use crate::gofer::{Fid, GoferClient};

/// A cached dentry with its inode's metadata.
pub struct Node {
    pub name: Vec<u8>,
    /// None for the root.
    pub parent: Option<Arc<Node>>,
    pub fid: Fid,
    pub stat: Stat,
    /// Looked-up children, including negative entries (None).
    children: Mutex<HashMap<Vec<u8>, Option<Arc<Node>>>>,
    link: OnceLock<Vec<u8>>,
}

impl Node {
    /// The absolute path of this node within its file system.
    pub fn path(&self) -> Vec<u8> {
        let mut parts = vec![];
        let mut n = Some(self);
        while let Some(node) = n {
            if node.parent.is_some() {
                parts.push(node.name.clone());
            }
            n = node.parent.as_deref();
        }
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
}

/// One container's image as served by its gofer.
pub struct GoferFs {
    client: GoferClient,
    root: Arc<Node>,
}

impl GoferFs {
    /// Attaches to the gofer's export root.
    pub fn attach(client: GoferClient) -> SysResult<GoferFs> {
        let (fid, stat) = client.attach()?;
        let root = Arc::new(Node {
            name: vec![],
            parent: None,
            fid,
            stat,
            children: Mutex::new(HashMap::new()),
            link: OnceLock::new(),
        });
        Ok(GoferFs { client, root })
    }

    pub fn root(&self) -> &Arc<Node> {
        &self.root
    }

    /// The child `name` of directory `dir` (ENOENT if there is none).
    pub fn lookup(&self, dir: &Arc<Node>, name: &[u8]) -> SysResult<Arc<Node>> {
        if !dir.stat.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        if let Some(cached) = dir.children.lock().unwrap().get(name) {
            return cached.clone().ok_or(Errno::ENOENT);
        }
        let found = match self.client.walk(dir.fid, name) {
            Ok((fid, stat)) => Some(Arc::new(Node {
                name: name.to_vec(),
                parent: Some(dir.clone()),
                fid,
                stat,
                children: Mutex::new(HashMap::new()),
                link: OnceLock::new(),
            })),
            Err(Errno::ENOENT) => None,
            Err(e) => return Err(e),
        };
        let mut children = dir.children.lock().unwrap();
        let entry = children.entry(name.to_vec()).or_insert(found);
        entry.clone().ok_or(Errno::ENOENT)
    }

    /// The target of symlink `node`.
    pub fn readlink(&self, node: &Node) -> SysResult<Vec<u8>> {
        if !node.stat.is_symlink() {
            return Err(Errno::EINVAL);
        }
        if let Some(t) = node.link.get() {
            return Ok(t.clone());
        }
        let target = self.client.readlink(node.fid)?;
        Ok(node.link.get_or_init(|| target).clone())
    }

    /// Opens `node` on the host through the gofer, for reading.
    pub fn open(&self, node: &Node, flags: i32) -> SysResult<OwnedFd> {
        self.client.open(node.fid, flags)
    }

    /// The entries of directory `node` as (ino, d_type, name).
    pub fn readdir(&self, node: &Node) -> SysResult<Vec<(u64, u8, Vec<u8>)>> {
        let entries = self.client.readdir(node.fid)?;
        Ok(entries
            .into_iter()
            .map(|d| (d.ino, d.kind, d.name))
            .collect())
    }
}
