//! The sentry's memory file system, mounted on /tmp: files, directories
//! and symlinks whose data lives in sentry memory and vanishes with the
//! pod. Directories are the dentries' own child maps (see `Node`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::file::FileOps;
use super::gofer::Node;
use crate::abi::types::{Stat, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};
use crate::abi::{Errno, SysResult};
use crate::sentry::mm::memory::{GuestMemory, PAGE_SIZE};
use crate::sentry::mm::PageSource;

/// Most bytes all tmpfs files of a sandbox may hold together.
pub const LIMIT: u64 = 256 << 20;
const TMPFS_MAGIC: u64 = 0x0102_1994;
static USED: AtomicU64 = AtomicU64::new(0);
static NEXT_INO: AtomicU64 = AtomicU64::new(0x10_0000);

/// Metadata that changes.
#[derive(Clone, Copy, Debug)]
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

/// A tmpfs inode: file data or symlink target, and its metadata.
pub struct TmpInode {
    ino: u64,
    pub data: Mutex<Vec<u8>>,
    meta: Mutex<Meta>,
}

fn now() -> (i64, i64) {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, d.subsec_nanos() as i64)
}

impl TmpInode {
    fn new(mode: u32, uid: u32, gid: u32, data: Vec<u8>) -> Arc<TmpInode> {
        let t = now();
        Arc::new(TmpInode {
            ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
            data: Mutex::new(data),
            meta: Mutex::new(Meta {
                mode,
                uid,
                gid,
                mtime: t,
                ctime: t,
            }),
        })
    }

    pub fn new_dir(perm: u32, uid: u32, gid: u32) -> Arc<TmpInode> {
        TmpInode::new(S_IFDIR | (perm & 0o7777), uid, gid, vec![])
    }

    pub fn new_file(perm: u32, uid: u32, gid: u32) -> Arc<TmpInode> {
        TmpInode::new(S_IFREG | (perm & 0o7777), uid, gid, vec![])
    }

    pub fn new_symlink(target: &[u8], uid: u32, gid: u32) -> Arc<TmpInode> {
        TmpInode::new(S_IFLNK | 0o777, uid, gid, target.to_vec())
    }

    pub fn stat(&self) -> Stat {
        let m = *self.meta.lock().unwrap();
        let size = self.data.lock().unwrap().len() as i64;
        let nlink = if m.mode & S_IFMT == S_IFDIR { 2 } else { 1 };
        Stat {
            dev: 0x1e,
            ino: self.ino,
            mode: m.mode,
            nlink,
            uid: m.uid,
            gid: m.gid,
            size,
            blksize: 4096,
            blocks: (size + 511) / 512,
            atime: m.mtime,
            mtime: m.mtime,
            ctime: m.ctime,
            ..Default::default()
        }
    }

    fn touch(&self) {
        let t = now();
        let mut m = self.meta.lock().unwrap();
        m.mtime = t;
        m.ctime = t;
    }

    /// Sets the length, zero-filling growth (ENOSPC past the limit).
    pub fn truncate(&self, len: u64) -> SysResult<()> {
        let mut d = self.data.lock().unwrap();
        resize(&mut d, len as usize)?;
        drop(d);
        self.touch();
        Ok(())
    }

    /// Changes the permission bits (chmod).
    pub fn chmod(&self, perm: u32) {
        let mut m = self.meta.lock().unwrap();
        m.mode = (m.mode & S_IFMT) | (perm & 0o7777);
        m.ctime = now();
    }
}

/// Resizes file data, accounting it against the sandbox-wide limit.
fn resize(d: &mut Vec<u8>, len: usize) -> SysResult<()> {
    let old = d.len() as u64;
    let new = len as u64;
    if new > old {
        let grow = new - old;
        if USED.fetch_add(grow, Ordering::SeqCst) + grow > LIMIT {
            USED.fetch_sub(grow, Ordering::SeqCst);
            return Err(Errno::ENOSPC);
        }
    } else {
        USED.fetch_sub(old - new, Ordering::SeqCst);
    }
    d.resize(len, 0);
    Ok(())
}

impl Drop for TmpInode {
    fn drop(&mut self) {
        let len = self.data.get_mut().map(|d| d.len() as u64).unwrap_or(0);
        USED.fetch_sub(len, Ordering::SeqCst);
    }
}

/// statfs of the memory file system.
pub fn statfs() -> crate::gofer::Statfs {
    let blocks = LIMIT / 4096;
    let used = USED.load(Ordering::SeqCst) / 4096;
    crate::gofer::Statfs {
        kind: TMPFS_MAGIC,
        bsize: 4096,
        blocks,
        bfree: blocks - used,
        bavail: blocks - used,
        files: 1 << 20,
        ffree: 1 << 20,
        namelen: 255,
    }
}

/// An open tmpfs regular file.
pub struct TmpFile {
    node: Arc<Node>,
}

impl TmpFile {
    pub fn new(node: Arc<Node>) -> Arc<TmpFile> {
        Arc::new(TmpFile { node })
    }

    fn inode(&self) -> &TmpInode {
        self.node.tmp.as_ref().expect("tmpfs node")
    }
}

impl FileOps for TmpFile {
    fn read(&self, buf: &mut [u8], off: u64) -> SysResult<usize> {
        let d = self.inode().data.lock().unwrap();
        let start = (off as usize).min(d.len());
        let n = buf.len().min(d.len() - start);
        buf[..n].copy_from_slice(&d[start..start + n]);
        Ok(n)
    }

    fn write(&self, buf: &[u8], off: u64) -> SysResult<usize> {
        let inode = self.inode();
        let mut d = inode.data.lock().unwrap();
        let end = (off as usize).checked_add(buf.len()).ok_or(Errno::EFBIG)?;
        if end > d.len() {
            resize(&mut d, end)?;
        }
        d[off as usize..end].copy_from_slice(buf);
        drop(d);
        inode.touch();
        Ok(buf.len())
    }

    fn stat(&self) -> SysResult<Stat> {
        Ok(self.inode().stat())
    }

    fn truncate(&self, len: u64) -> SysResult<()> {
        self.inode().truncate(len)
    }

    fn page_source(self: Arc<Self>) -> Option<Arc<dyn PageSource>> {
        Some(self)
    }

    fn node(&self) -> Option<&Arc<Node>> {
        Some(&self.node)
    }
}

impl PageSource for TmpFile {
    /// Private mappings get a copy of the data as it is now.
    fn fill(&self, mem: &GuestMemory, frame: u64, offset: u64) -> SysResult<()> {
        let d = self.inode().data.lock().unwrap();
        let start = (offset as usize).min(d.len());
        let end = (start + PAGE_SIZE as usize).min(d.len());
        mem.write(frame, &d[start..end]);
        Ok(())
    }
}
