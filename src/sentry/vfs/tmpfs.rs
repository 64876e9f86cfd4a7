//! The sentry's memory file system: the inodes of tmpfs mounts (/tmp,
//! /dev/shm, the pod's tmpfs mounts) and of the root overlay's upper
//! layer. Files, directories, symlinks, FIFOs and sockets that vanish with
//! the pod. A file's data is a [`SharedObject`] in guest memory, charged
//! to its mount's budget, so that MAP_SHARED maps the file's own pages and
//! read/write and every mapping see the same bytes. Directories are the
//! dentries' own child maps (see `Node`). Extended attributes live in
//! the inode too (see [`Xattrs`]), as tmpfs keeps them since Linux 6.6.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::file::FileOps;
use super::node::Node;
use super::pipe::Fifo;
use crate::abi::types::{Stat, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK};
use crate::abi::{Errno, SysResult};
use crate::sentry::mm::memory::GuestMemory;
use crate::sentry::mm::{Quota, SharedObject};

/// Default size of /tmp.
pub const LIMIT: u64 = 256 << 20;
/// Inode numbers of new memory inodes: far above those of the image's
/// host file system, so that the overlay's numbers stay unique.
static NEXT_INO: AtomicU64 = AtomicU64::new(1 << 48);

/// Metadata that changes.
#[derive(Clone, Copy, Debug)]
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    atime: (i64, i64),
    mtime: (i64, i64),
    ctime: (i64, i64),
}

/// What an inode holds.
enum Content {
    Dir,
    File(Arc<SharedObject>),
    Symlink(Vec<u8>),
    Fifo(Arc<Fifo>),
    Socket,
    /// A character or block device node: its device number.
    Device(u64),
}

/// A memory inode: file data or symlink target, and its metadata.
pub struct TmpInode {
    ino: u64,
    content: Content,
    meta: Mutex<Meta>,
    /// Hard links to a non-directory (directories count their subdirs).
    links: AtomicU64,
    xattrs: Mutex<Xattrs>,
}

/// The time now, as (seconds, nanoseconds).
pub fn now() -> (i64, i64) {
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
                atime: t,
                mtime: t,
                ctime: t,
            }),
            links: AtomicU64::new(1),
            xattrs: Mutex::new(Xattrs::default()),
        })
    }

    pub fn new_dir(perm: u32, uid: u32, gid: u32) -> Arc<TmpInode> {
        TmpInode::new(S_IFDIR | (perm & 0o7777), uid, gid, Content::Dir)
    }

    /// An empty regular file whose data will live in `mem`, charged to
    /// `quota`.
    pub fn new_file(
        perm: u32,
        uid: u32,
        gid: u32,
        mem: &Arc<GuestMemory>,
        quota: &'static Quota,
    ) -> Arc<TmpInode> {
        let data = SharedObject::with_quota(mem.clone(), quota);
        TmpInode::new(S_IFREG | (perm & 0o7777), uid, gid, Content::File(data))
    }

    pub fn new_symlink(target: &[u8], uid: u32, gid: u32) -> Arc<TmpInode> {
        let content = Content::Symlink(target.to_vec());
        TmpInode::new(S_IFLNK | 0o777, uid, gid, content)
    }

    /// A FIFO (mknod S_IFIFO, mkfifo).
    pub fn new_fifo(perm: u32, uid: u32, gid: u32) -> Arc<TmpInode> {
        let content = Content::Fifo(Fifo::new());
        TmpInode::new(S_IFIFO | (perm & 0o7777), uid, gid, content)
    }

    /// A socket file (mknod S_IFSOCK): it only has a name.
    pub fn new_socket(perm: u32, uid: u32, gid: u32) -> Arc<TmpInode> {
        TmpInode::new(S_IFSOCK | (perm & 0o7777), uid, gid, Content::Socket)
    }

    /// A character or block device node (`kind` is S_IFCHR or S_IFBLK)
    /// for device number `rdev`.
    pub fn new_device(kind: u32, perm: u32, rdev: u64, uid: u32, gid: u32) -> Arc<TmpInode> {
        TmpInode::new(kind | (perm & 0o7777), uid, gid, Content::Device(rdev))
    }

    /// 512-byte blocks held: a file's pages with a frame (a sparse file
    /// holds only what was written), a symlink's target.
    fn blocks(&self) -> i64 {
        match &self.content {
            Content::File(data) => data.cached_pages() as i64 * 8,
            _ => (self.size() as i64 + 511) / 512,
        }
    }

    /// The device number of a device node (0 for anything else).
    pub fn rdev(&self) -> u64 {
        match self.content {
            Content::Device(rdev) => rdev,
            _ => 0,
        }
    }

    /// A copy of `lower`'s metadata (copy-up): same inode number, mode,
    /// owner and times; the content is `make`'s.
    pub fn copy_of(lower: &Stat, inode: Arc<TmpInode>) -> Arc<TmpInode> {
        let mut inode = Arc::into_inner(inode).expect("a fresh inode");
        inode.ino = lower.ino;
        *inode.meta.get_mut().unwrap() = Meta {
            mode: lower.mode,
            uid: lower.uid,
            gid: lower.gid,
            atime: lower.atime,
            mtime: lower.mtime,
            ctime: lower.ctime,
        };
        Arc::new(inode)
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

    /// The pipe of a FIFO.
    pub fn fifo(&self) -> Option<&Arc<Fifo>> {
        match &self.content {
            Content::Fifo(f) => Some(f),
            _ => None,
        }
    }

    fn size(&self) -> u64 {
        match &self.content {
            Content::File(data) => data.size(),
            Content::Symlink(target) => target.len() as u64,
            _ => 0,
        }
    }

    /// The metadata (st_dev and a directory's st_nlink are the dentry's
    /// business: see `Node::current_stat`).
    pub fn stat(&self) -> Stat {
        let m = *self.meta.lock().unwrap();
        let size = self.size() as i64;
        Stat {
            dev: 0,
            ino: self.ino,
            mode: m.mode,
            nlink: self.links.load(Ordering::Relaxed),
            uid: m.uid,
            gid: m.gid,
            size,
            blksize: 4096,
            blocks: self.blocks(),
            rdev: self.rdev(),
            atime: m.atime,
            mtime: m.mtime,
            ctime: m.ctime,
        }
    }

    /// Marks a change of content (mtime and ctime now).
    pub fn touch(&self) {
        let t = now();
        let mut m = self.meta.lock().unwrap();
        m.mtime = t;
        m.ctime = t;
    }

    /// One more hard link (link(2)).
    pub fn link(&self) {
        self.links.fetch_add(1, Ordering::Relaxed);
        self.meta.lock().unwrap().ctime = now();
    }

    /// One hard link fewer (unlink(2), or a rename over it).
    pub fn unlink(&self) {
        let _ = self
            .links
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        self.meta.lock().unwrap().ctime = now();
    }

    /// Sets the length of a regular file, zero-filling growth (ENOSPC
    /// past the mount's budget); shrinking drops the pages past the end
    /// from every mapping too.
    pub fn truncate(&self, len: u64) -> SysResult<()> {
        match &self.content {
            Content::File(data) => data.set_size(len)?,
            Content::Dir => return Err(Errno::EISDIR),
            _ => return Err(Errno::EINVAL),
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

    /// Changes the owner (chown); None keeps that id. A change of owner
    /// of a non-directory clears set-user-ID, and set-group-ID when the
    /// group may execute (as Linux without CAP_FSETID).
    pub fn chown(&self, uid: Option<u32>, gid: Option<u32>) {
        let mut m = self.meta.lock().unwrap();
        if let Some(u) = uid {
            m.uid = u;
        }
        if let Some(g) = gid {
            m.gid = g;
        }
        if m.mode & S_IFMT != S_IFDIR {
            m.mode &= !0o4000;
            if m.mode & 0o010 != 0 {
                m.mode &= !0o2000;
            }
        }
        m.ctime = now();
    }

    /// The value of extended attribute `name` (ENODATA when absent).
    pub fn xattr(&self, name: &[u8]) -> SysResult<Vec<u8>> {
        let xattrs = self.xattrs.lock().unwrap();
        xattrs.map.get(name).cloned().ok_or(Errno::ENODATA)
    }

    /// The names of the extended attributes, in Linux's order: its tree
    /// of them sorts names descending (`rbtree_simple_xattr_cmp`).
    pub fn xattr_names(&self) -> Vec<Vec<u8>> {
        self.xattrs
            .lock()
            .unwrap()
            .map
            .keys()
            .rev()
            .cloned()
            .collect()
    }

    /// Sets (`Some`) or removes (`None`) extended attribute `name`, its
    /// bytes charged to `quota` (ENOSPC past it); `create` fails with
    /// EEXIST when it exists, `replace` with ENODATA when it does not
    /// (as does removing an absent one). A change is a change of ctime.
    pub fn set_xattr(
        &self,
        name: &[u8],
        value: Option<&[u8]>,
        (create, replace): (bool, bool),
        quota: &'static Quota,
    ) -> SysResult<()> {
        let mut xattrs = self.xattrs.lock().unwrap();
        let old = xattrs.map.get(name).map(|v| name.len() + v.len());
        match old {
            Some(_) if create => return Err(Errno::EEXIST),
            None if replace || value.is_none() => return Err(Errno::ENODATA),
            _ => {}
        }
        let quota = *xattrs.quota.get_or_insert(quota);
        let (old, new) = (old.unwrap_or(0), value.map_or(0, |v| name.len() + v.len()));
        if new > old {
            quota.charge((new - old) as u64)?;
        }
        quota.release(old.saturating_sub(new) as u64);
        match value {
            Some(v) => xattrs.map.insert(name.to_vec(), v.to_vec()),
            None => xattrs.map.remove(name),
        };
        drop(xattrs);
        self.meta.lock().unwrap().ctime = now();
        Ok(())
    }

    /// Sets the access and modification times (utimensat); None keeps one.
    pub fn set_times(&self, atime: Option<(i64, i64)>, mtime: Option<(i64, i64)>) {
        let mut m = self.meta.lock().unwrap();
        if let Some(a) = atime {
            m.atime = a;
        }
        if let Some(t) = mtime {
            m.mtime = t;
        }
        m.ctime = now();
    }
}

/// An inode's extended attributes: full name (with its namespace
/// prefix) to value, their bytes charged to the budget of the mount they
/// were first set on (a loose count: names and values, not the map's own
/// overhead) and given back when the inode goes.
#[derive(Default)]
struct Xattrs {
    map: BTreeMap<Vec<u8>, Vec<u8>>,
    quota: Option<&'static Quota>,
}

impl Drop for Xattrs {
    fn drop(&mut self) {
        if let Some(quota) = self.quota {
            let bytes = self
                .map
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>();
            quota.release(bytes as u64);
        }
    }
}

/// An open memory regular file.
pub struct TmpFile {
    node: Arc<Node>,
}

impl TmpFile {
    pub fn new(node: Arc<Node>) -> Arc<TmpFile> {
        Arc::new(TmpFile { node })
    }

    fn inode(&self) -> &TmpInode {
        self.node.upper().expect("a memory node")
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
        Ok(self.node.current_stat())
    }

    fn truncate(&self, len: u64) -> SysResult<()> {
        self.inode().truncate(len)
    }

    fn shared_object(&self) -> Option<Arc<SharedObject>> {
        Some(self.data().clone())
    }

    fn node(&self) -> Option<&Arc<Node>> {
        Some(&self.node)
    }
}

/// An open FIFO: a pipe end of the FIFO's pipe, with the FIFO's metadata.
pub struct FifoFile {
    end: Arc<super::pipe::PipeEnd>,
    node: Arc<Node>,
}

impl FifoFile {
    /// Opens FIFO `node` for reading, writing or both (may block, see
    /// [`super::pipe::Fifo::open`]).
    pub fn open(
        node: Arc<Node>,
        read: bool,
        write: bool,
        nonblock: bool,
    ) -> SysResult<Arc<FifoFile>> {
        let fifo = node.upper().and_then(|u| u.fifo()).ok_or(Errno::ENXIO)?;
        let interrupted = crate::sentry::kernel::signal::current_interrupted;
        let end = fifo.open(read, write, nonblock, interrupted)?;
        Ok(Arc::new(FifoFile { end, node }))
    }
}

impl FileOps for FifoFile {
    fn read(&self, buf: &mut [u8], off: u64) -> SysResult<usize> {
        self.end.read(buf, off)
    }

    fn write(&self, buf: &[u8], off: u64) -> SysResult<usize> {
        self.end.write(buf, off)
    }

    fn stat(&self) -> SysResult<Stat> {
        Ok(self.node.current_stat())
    }

    fn seekable(&self) -> bool {
        false
    }

    fn poll(&self, want: u16) -> u16 {
        self.end.poll(want)
    }

    fn pipe(&self) -> Option<&super::pipe::PipeEnd> {
        Some(&self.end)
    }

    fn node(&self) -> Option<&Arc<Node>> {
        Some(&self.node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(limit: u64) -> &'static Quota {
        Box::leak(Box::new(Quota::new(limit)))
    }

    #[test]
    fn set_xattr_create_replace_and_remove_rules() {
        let (dir, q) = (TmpInode::new_dir(0o755, 0, 0), quota(1000));
        assert_eq!(
            dir.set_xattr(b"user.a", Some(b"1"), (false, true), q),
            Err(Errno::ENODATA)
        );
        assert_eq!(
            dir.set_xattr(b"user.a", Some(b"1"), (true, false), q),
            Ok(())
        );
        assert_eq!(
            dir.set_xattr(b"user.a", Some(b"2"), (true, false), q),
            Err(Errno::EEXIST)
        );
        assert_eq!(
            dir.set_xattr(b"user.a", Some(b"22"), (false, true), q),
            Ok(())
        );
        assert_eq!(dir.xattr(b"user.a"), Ok(b"22".to_vec()));
        assert_eq!(dir.set_xattr(b"user.a", None, (false, true), q), Ok(()));
        assert_eq!(dir.xattr(b"user.a"), Err(Errno::ENODATA));
        assert_eq!(
            dir.set_xattr(b"user.a", None, (false, false), q),
            Err(Errno::ENODATA)
        );
    }

    #[test]
    fn xattr_names_are_listed_descending() {
        let (dir, q) = (TmpInode::new_dir(0o755, 0, 0), quota(1000));
        for n in [&b"user.b"[..], b"trusted.x", b"user.zz", b"user.a"] {
            dir.set_xattr(n, Some(b""), (false, false), q).unwrap();
        }
        let want: Vec<&[u8]> = vec![b"user.zz", b"user.b", b"user.a", b"trusted.x"];
        assert_eq!(dir.xattr_names(), want);
    }

    #[test]
    fn xattrs_are_charged_and_given_back_with_the_inode() {
        let q = quota(20);
        let dir = TmpInode::new_dir(0o755, 0, 0);
        dir.set_xattr(b"user.a", Some(b"0123456789"), (false, false), q)
            .unwrap();
        assert_eq!(q.used(), 16);
        let full = dir.set_xattr(b"user.b", Some(b"0123"), (false, false), q);
        assert_eq!(full, Err(Errno::ENOSPC));
        dir.set_xattr(b"user.a", Some(b"01"), (false, false), q)
            .unwrap();
        assert_eq!(q.used(), 8);
        drop(dir);
        assert_eq!(q.used(), 0);
    }
}
