//! devpts: one instance per container, mounted on /dev/pts. Opening
//! /dev/ptmx (or /dev/pts/ptmx) makes a new [`Terminal`] with the lowest
//! free index N, whose slave is /dev/pts/N for as long as the master is
//! open. Entries are made at each lookup, never cached, so a closed
//! pty's name disappears and a new one's metadata is current.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use super::dev::{self, Synth};
use super::gofer::Dirent;
use super::node::Node;
use super::tty::{PtyMaster, Terminal};
use crate::abi::types::{Stat, DT_CHR, S_IFCHR};
use crate::abi::{Errno, SysResult};

/// Most ptys one container may have at once (Linux's default pty/max).
const MAX_PTYS: u32 = 4096;
/// Major device number of the first 256 pty slaves (UNIX98_PTY_SLAVE_MAJOR).
const SLAVE_MAJOR: u64 = 136;
/// The group that owns the slaves ("tty"), as Docker mounts devpts.
pub const TTY_GID: u32 = 5;

/// A device number as glibc's makedev builds it.
pub fn makedev(major: u64, minor: u64) -> u64 {
    ((major & 0xfff) << 8) | (minor & 0xff) | ((minor & !0xff) << 12) | ((major & !0xfff) << 32)
}

/// One devpts instance.
#[derive(Default)]
pub struct Devpts {
    ptys: Mutex<BTreeMap<u32, Weak<Terminal>>>,
    /// The /dev/pts mount root, once mounted.
    root: OnceLock<Arc<Node>>,
}

impl Devpts {
    pub fn new() -> Arc<Devpts> {
        Arc::new(Devpts::default())
    }

    pub(super) fn set_root(&self, root: Arc<Node>) {
        let _ = self.root.set(root);
    }

    /// Opens a new master as `uid`:`gid`; `node` is the ptmx it was
    /// opened through. The slave stays locked until TIOCSPTLCK.
    pub fn open_master(self: &Arc<Self>, uid: u32, node: Arc<Node>) -> SysResult<Arc<PtyMaster>> {
        let mut ptys = self.ptys.lock().unwrap();
        let index = (0..MAX_PTYS)
            .find(|i| !ptys.contains_key(i))
            .ok_or(Errno::ENOSPC)?;
        let term = Terminal::new(index, uid, TTY_GID);
        ptys.insert(index, Arc::downgrade(&term));
        drop(ptys);
        Ok(Arc::new(PtyMaster::new(term, node, self.clone())))
    }

    /// The master of `index` closed.
    pub(super) fn forget(&self, index: u32) {
        self.ptys.lock().unwrap().remove(&index);
    }

    /// Live terminal `index`.
    pub fn terminal(&self, index: u32) -> Option<Arc<Terminal>> {
        self.ptys.lock().unwrap().get(&index)?.upgrade()
    }

    /// The dentry of /dev/pts/`index` (ENOENT when no such pty lives).
    pub fn slave_node(&self, index: u32) -> SysResult<Arc<Node>> {
        let root = self.root.get().ok_or(Errno::ENOENT)?;
        self.lookup(root, index.to_string().as_bytes())
    }

    /// The dentry of /dev/pts/ptmx.
    pub fn ptmx_node(&self) -> SysResult<Arc<Node>> {
        let root = self.root.get().ok_or(Errno::ENOENT)?;
        self.lookup(root, b"ptmx")
    }

    /// The entry `name` of /dev/pts: "ptmx", or a live slave.
    pub fn lookup(&self, dir: &Arc<Node>, name: &[u8]) -> SysResult<Arc<Node>> {
        let (synth, stat) = if name == b"ptmx" {
            (Synth::Ptmx, dev::stat_of(Synth::Ptmx, 2))
        } else {
            let index: u32 = std::str::from_utf8(name)
                .ok()
                .filter(|s| !s.starts_with('0') || *s == "0")
                .and_then(|s| s.parse().ok())
                .ok_or(Errno::ENOENT)?;
            let term = self.terminal(index).ok_or(Errno::ENOENT)?;
            (Synth::Pts(index), slave_stat(&term))
        };
        Ok(Node::new_synth(name, dir, synth, stat, dir.mount.clone()))
    }

    /// The entries of /dev/pts besides "." and "..".
    pub fn entries(&self) -> Vec<Dirent> {
        let mut out = vec![(2, DT_CHR, b"ptmx".to_vec())];
        let ptys = self.ptys.lock().unwrap();
        for (&i, t) in ptys.iter() {
            if t.strong_count() > 0 {
                out.push((i as u64 + 3, DT_CHR, i.to_string().into_bytes()));
            }
        }
        out
    }
}

/// The metadata of a slave: owned by its master's opener, group tty,
/// mode 0620 (devpts mounted gid=5,mode=620), inode N + 3 as on Linux.
fn slave_stat(term: &Terminal) -> Stat {
    let n = term.index as u64;
    Stat {
        ino: n + 3,
        mode: S_IFCHR | 0o620,
        nlink: 1,
        uid: term.uid,
        gid: term.gid,
        rdev: makedev(SLAVE_MAJOR + n / 256, n % 256),
        blksize: 1024,
        ..Default::default()
    }
}

/// The stat of /dev/pts itself (inode 1 of its mount).
pub fn root_stat() -> Stat {
    Stat {
        ino: 1,
        mode: crate::abi::types::S_IFDIR | 0o755,
        nlink: 2,
        blksize: 1024,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makedev_matches_glibc() {
        assert_eq!(makedev(136, 0), 0x8800);
        assert_eq!(makedev(136, 300), (136 << 8) | 44 | (256 << 12));
        assert_eq!(makedev(5, 2), 0x502);
    }
}
