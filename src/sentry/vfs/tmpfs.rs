//! The sentry's memory file system, mounted on /tmp: files, directories
//! and symlinks that vanish with the pod. A file's data is a
//! [`SharedObject`] in guest memory, so that MAP_SHARED maps the file's
//! own pages and read/write and every mapping see the same bytes.
//! Directories are the dentries' own child maps (see `Node`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::file::FileOps;
use super::gofer::Node;
use crate::abi::types::{Stat, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};
use crate::abi::{Errno, SysResult};
use crate::sentry::mm::memory::GuestMemory;
use crate::sentry::mm::{PageSource, Quota, SharedObject};

/// Most bytes all tmpfs files of a sandbox may hold together.
pub const LIMIT: u64 = 256 << 20;
const TMPFS_MAGIC: u64 = 0x0102_1994;
/// The sizes of all tmpfs files, against LIMIT.
static QUOTA: Quota = Quota::new(LIMIT);
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

/// What an inode holds.
enum Content {
    Dir,
    File(Arc<SharedObject>),
    Symlink(Vec<u8>),
}

/// A tmpfs inode: file data or symlink target, and its metadata.
pub struct TmpInode {
    ino: u64,
    content: Content,
    meta: Mutex<Meta>,
}

fn now() -> (i64, i64) {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, d.subsec_nanos() as i64)
}

impl TmpInode {
    fn new(mode: u32, uid: u32, gid: u32, content: Content) -> Arc<TmpInode> {
        let t = now();
        Arc::new(TmpInode {
            ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
            content,
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
        TmpInode::new(S_IFDIR | (perm & 0o7777), uid, gid, Content::Dir)
    }

    /// An empty regular file whose data will live in `mem`.
    pub fn new_file(perm: u32, uid: u32, gid: u32, mem: &Arc<GuestMemory>) -> Arc<TmpInode> {
        let data = SharedObject::with_quota(mem.clone(), &QUOTA);
        TmpInode::new(S_IFREG | (perm & 0o7777), uid, gid, Content::File(data))
    }

    pub fn new_symlink(target: &[u8], uid: u32, gid: u32) -> Arc<TmpInode> {
        let content = Content::Symlink(target.to_vec());
        TmpInode::new(S_IFLNK | 0o777, uid, gid, content)
    }

    /// The data of a regular file.
    pub fn data(&self) -> Option<&Arc<SharedObject>> {
        match &self.content {
            Content::File(data) => Some(data),
            _ => None,
        }
    }

    /// The target of a symlink.
    pub fn target(&self) -> Option<&[u8]> {
        match &self.content {
            Content::Symlink(target) => Some(target),
            _ => None,
        }
    }

    fn size(&self) -> u64 {
        match &self.content {
            Content::Dir => 0,
            Content::File(data) => data.size(),
            Content::Symlink(target) => target.len() as u64,
        }
    }

    pub fn stat(&self) -> Stat {
        let m = *self.meta.lock().unwrap();
        let size = self.size() as i64;
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

    /// Sets the length of a regular file, zero-filling growth (ENOSPC
    /// past the limit); shrinking drops the pages past the end from every
    /// mapping too.
    pub fn truncate(&self, len: u64) -> SysResult<()> {
        match &self.content {
            Content::File(data) => data.set_size(len)?,
            Content::Dir => return Err(Errno::EISDIR),
            Content::Symlink(_) => return Err(Errno::EINVAL),
        }
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

/// statfs of the memory file system.
pub fn statfs() -> crate::gofer::Statfs {
    let blocks = LIMIT / 4096;
    let used = QUOTA.used() / 4096;
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

    fn data(&self) -> &Arc<SharedObject> {
        self.inode().data().expect("tmpfs regular file")
    }
}

impl FileOps for TmpFile {
    fn read(&self, buf: &mut [u8], off: u64) -> SysResult<usize> {
        Ok(self.data().read(off, buf))
    }

    fn write(&self, buf: &[u8], off: u64) -> SysResult<usize> {
        let n = self.data().write(off, buf)?;
        self.inode().touch();
        Ok(n)
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

    fn shared_object(&self) -> Option<Arc<SharedObject>> {
        Some(self.data().clone())
    }

    fn node(&self) -> Option<&Arc<Node>> {
        Some(&self.node)
    }
}

impl PageSource for TmpFile {
    /// Private mappings get a copy of the data as it is now.
    fn fill(&self, _mem: &GuestMemory, frame: u64, offset: u64) -> SysResult<()> {
        self.data().copy_page(offset, frame);
        Ok(())
    }
}
