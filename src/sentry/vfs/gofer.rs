//! The gofer file system: dentries of a container's image, fetched from its
//! gofer and cached forever (the image is immutable).

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, OnceLock};

use super::dev::{self, Synth};
use crate::abi::types::dtype_of_mode;
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
    /// Set for the sentry's own files (/dev): no gofer fid behind them.
    pub synth: Option<Synth>,
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

/// The synthetic file `name` in `dir`, if the sentry provides one there:
/// /dev over the image's root, and what /dev and /dev/fd hold.
fn synthetic_child(dir: &Node, name: &[u8]) -> Option<Synth> {
    match dir.synth {
        None if dir.parent.is_none() && name == b"dev" => Some(Synth::DevDir),
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
        let root = Arc::new(Node {
            name: vec![],
            parent: None,
            fid,
            stat,
            children: Mutex::new(HashMap::new()),
            link: OnceLock::new(),
            synth: None,
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
        if let Some(synth) = synthetic_child(dir, name) {
            let node = Arc::new(Node {
                name: name.to_vec(),
                parent: Some(dir.clone()),
                fid: u32::MAX,
                stat: dev::stat_of(synth, 0x1000 + name.iter().map(|&b| b as u64).sum::<u64>()),
                children: Mutex::new(HashMap::new()),
                link: OnceLock::new(),
                synth: Some(synth),
            });
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
            Ok((fid, stat)) => Some(Arc::new(Node {
                name: name.to_vec(),
                parent: Some(dir.clone()),
                fid,
                stat,
                children: Mutex::new(HashMap::new()),
                link: OnceLock::new(),
                synth: None,
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
        if let Some(s) = node.synth {
            return dev::link_of(s).ok_or(Errno::EINVAL);
        }
        if let Some(t) = node.link.get() {
            return Ok(t.clone());
        }
        let target = self.client.readlink(node.fid)?;
        Ok(node.link.get_or_init(|| target).clone())
    }

    /// Opens `node` on the host through the gofer, for reading.
    pub fn statfs(&self, node: &Node) -> SysResult<crate::gofer::Statfs> {
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
            Some(_) => return Ok(vec![]),
            None => {}
        }
        let entries = self.client.readdir(node.fid)?;
        Ok(entries
            .into_iter()
            .map(|d| (d.ino, d.kind, d.name))
            .collect())
    }
}
