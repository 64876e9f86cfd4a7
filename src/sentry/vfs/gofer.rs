//! The gofer file system: dentries of a container's image, fetched from its
//! gofer and cached forever (the image is immutable).

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, OnceLock};

use super::dev::{self, Synth};
use super::tmpfs::TmpInode;
use crate::abi::types::dtype_of_mode;
use crate::abi::types::Stat;
use crate::abi::{Errno, SysResult};
use crate::gofer::{Fid, GoferClient};

/// A cached dentry with its inode's metadata.
pub struct Node {
    /// Name and parent change only by rename (tmpfs); None for the root.
    name: Mutex<Vec<u8>>,
    parent: Mutex<Option<Arc<Node>>>,
    pub fid: Fid,
    /// The metadata when looked up; for tmpfs nodes only the file type is
    /// fixed: see [`Node::current_stat`].
    pub stat: Stat,
    /// Looked-up children, including negative entries (None). For a tmpfs
    /// directory this is the directory itself.
    children: Mutex<HashMap<Vec<u8>, Option<Arc<Node>>>>,
    link: OnceLock<Vec<u8>>,
    /// Set for the sentry's own files (/dev): no gofer fid behind them.
    pub synth: Option<Synth>,
    /// Set for files of the sentry's memory file system (/tmp).
    pub tmp: Option<Arc<TmpInode>>,
}

impl Node {
    fn new(name: &[u8], parent: Option<Arc<Node>>, fid: Fid, stat: Stat) -> Node {
        Node {
            name: Mutex::new(name.to_vec()),
            parent: Mutex::new(parent),
            fid,
            stat,
            children: Mutex::new(HashMap::new()),
            link: OnceLock::new(),
            synth: None,
            tmp: None,
        }
    }

    /// A node of the memory file system.
    pub fn new_tmp(name: &[u8], parent: &Arc<Node>, inode: Arc<TmpInode>) -> Arc<Node> {
        let mut node = Node::new(name, Some(parent.clone()), u32::MAX, inode.stat());
        node.tmp = Some(inode);
        Arc::new(node)
    }

    pub fn parent(&self) -> Option<Arc<Node>> {
        self.parent.lock().unwrap().clone()
    }

    pub fn name(&self) -> Vec<u8> {
        self.name.lock().unwrap().clone()
    }

    /// The metadata now (tmpfs files change; image files do not).
    pub fn current_stat(&self) -> Stat {
        self.tmp.as_ref().map_or(self.stat, |t| t.stat())
    }

    /// Children of a tmpfs directory as (name, node).
    pub fn tmp_children(&self) -> Vec<(Vec<u8>, Arc<Node>)> {
        let c = self.children.lock().unwrap();
        c.iter()
            .filter_map(|(k, v)| v.clone().map(|n| (k.clone(), n)))
            .collect()
    }

    /// Links `child` under `name` in this tmpfs directory (EEXIST if taken).
    pub fn tmp_link(self: &Arc<Self>, name: &[u8], child: Arc<Node>) -> SysResult<()> {
        let mut c = self.children.lock().unwrap();
        if c.get(name).is_some_and(|n| n.is_some()) {
            return Err(Errno::EEXIST);
        }
        c.insert(name.to_vec(), Some(child));
        Ok(())
    }

    /// Removes `name` from this tmpfs directory.
    pub fn tmp_unlink(&self, name: &[u8]) -> Option<Arc<Node>> {
        self.children.lock().unwrap().remove(name).flatten()
    }

    /// Gives this node a new name and parent (rename).
    pub fn tmp_move(&self, parent: &Arc<Node>, name: &[u8]) {
        *self.parent.lock().unwrap() = Some(parent.clone());
        *self.name.lock().unwrap() = name.to_vec();
    }

    /// The absolute path of this node within its file system.
    pub fn path(&self) -> Vec<u8> {
        let mut parts = vec![];
        let mut cur = self.parent().map(|p| (self.name(), p));
        while let Some((name, parent)) = cur {
            parts.push(name);
            cur = parent.parent().map(|pp| (parent.name(), pp));
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

/// The synthetic file `name` in `dir`, if the sentry provides one there:
/// /dev over the image's root, and what /dev and /dev/fd hold.
fn synthetic_child(dir: &Node, name: &[u8]) -> Option<Synth> {
    match dir.synth {
        None if dir.parent().is_none() && name == b"dev" => Some(Synth::DevDir),
        None if dir.parent().is_none() && name == b"proc" => Some(Synth::ProcDir),
        Some(Synth::ProcDir) => dev::PROC_ENTRIES
            .iter()
            .find(|(n, _)| n.as_bytes() == name)
            .map(|(_, s)| *s),
        Some(Synth::ProcSelf) => dev::PROC_SELF_ENTRIES
            .iter()
            .find(|(n, _)| n.as_bytes() == name)
            .map(|(_, s)| *s),
        Some(Synth::DevDir) => dev::DEV_ENTRIES
            .iter()
            .find(|(n, _)| n.as_bytes() == name)
            .map(|(_, s)| *s),
        Some(Synth::FdDir) => std::str::from_utf8(name)
            .ok()
            .and_then(|n| n.parse().ok())
            .filter(|&n: &i32| n >= 0)
            .map(Synth::Fd),
        _ => None,
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
        let root = Arc::new(Node::new(b"", None, fid, stat));
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
        if dir.tmp.is_some() {
            // A tmpfs directory's children are all it has.
            return Err(Errno::ENOENT);
        }
        if dir.parent().is_none() && name == b"tmp" {
            // /tmp is the sentry's memory file system, over the image's.
            let node = Node::new_tmp(name, dir, TmpInode::new_dir(0o1777, 0, 0));
            dir.children
                .lock()
                .unwrap()
                .insert(name.to_vec(), Some(node.clone()));
            return Ok(node);
        }
        if let Some(synth) = synthetic_child(dir, name) {
            let ino = 0x1000 + name.iter().map(|&b| b as u64).sum::<u64>();
            let mut node = Node::new(name, Some(dir.clone()), u32::MAX, dev::stat_of(synth, ino));
            node.synth = Some(synth);
            let node = Arc::new(node);
            dir.children
                .lock()
                .unwrap()
                .insert(name.to_vec(), Some(node.clone()));
            return Ok(node);
        }
        if dir.synth.is_some() {
            return Err(Errno::ENOENT);
        }
        let found = match self.client.walk(dir.fid, name) {
            Ok((fid, stat)) => Some(Arc::new(Node::new(name, Some(dir.clone()), fid, stat))),
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
        if let Some(s) = node.synth {
            return dev::link_of(s).ok_or(Errno::EINVAL);
        }
        if let Some(t) = &node.tmp {
            return t.target().map(<[u8]>::to_vec).ok_or(Errno::EINVAL);
        }
        if let Some(t) = node.link.get() {
            return Ok(t.clone());
        }
        let target = self.client.readlink(node.fid)?;
        Ok(node.link.get_or_init(|| target).clone())
    }

    /// Opens `node` on the host through the gofer, for reading.
    pub fn statfs(&self, node: &Node) -> SysResult<crate::gofer::Statfs> {
        if node.tmp.is_some() {
            return Ok(super::tmpfs::statfs());
        }
        if node.synth.is_some() {
            // The sentry's /dev: a tmpfs-like file system with no blocks.
            return Ok(crate::gofer::Statfs {
                kind: 0x0102_1994,
                bsize: 4096,
                namelen: 255,
                ..Default::default()
            });
        }
        self.client.statfs(node.fid)
    }

    /// Opens `node` on the host through the gofer.
    pub fn open(&self, node: &Node, flags: i32) -> SysResult<OwnedFd> {
        self.client.open(node.fid, flags)
    }

    /// The entries of directory `node` as (ino, d_type, name).
    pub fn readdir(&self, node: &Node) -> SysResult<Vec<(u64, u8, Vec<u8>)>> {
        match node.synth {
            Some(Synth::DevDir) => {
                let list = dev::DEV_ENTRIES.iter().enumerate();
                return Ok(list
                    .map(|(i, (n, s))| {
                        (
                            0x1000 + i as u64,
                            dtype_of_mode(dev::stat_of(*s, 0).mode),
                            n.as_bytes().to_vec(),
                        )
                    })
                    .collect());
            }
            Some(Synth::ProcDir) | Some(Synth::ProcSelf) => {
                let list = if node.synth == Some(Synth::ProcDir) {
                    dev::PROC_ENTRIES
                } else {
                    dev::PROC_SELF_ENTRIES
                };
                let list = list.iter().enumerate();
                return Ok(list
                    .map(|(i, (n, s))| {
                        (
                            0x2000 + i as u64,
                            dtype_of_mode(dev::stat_of(*s, 0).mode),
                            n.as_bytes().to_vec(),
                        )
                    })
                    .collect());
            }
            Some(_) => return Ok(vec![]),
            None => {}
        }
        if node.tmp.is_some() {
            let kids = node.tmp_children();
            return Ok(kids
                .into_iter()
                .map(|(name, n)| (n.current_stat().ino, dtype_of_mode(n.stat.mode), name))
                .collect());
        }
        let entries = self.client.readdir(node.fid)?;
        Ok(entries
            .into_iter()
            .map(|d| (d.ino, d.kind, d.name))
            .collect())
    }
}
