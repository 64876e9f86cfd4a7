//! Open file descriptions and per-process descriptor tables.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex};

use super::tmpfs::TmpInode;
use super::{GoferFs, Node};
use crate::abi::types::{dtype_of_mode, Stat, S_IFCHR, S_IFIFO};
use crate::abi::{Errno, SysResult};
use crate::sentry::mm::memory::GuestMemory;
use crate::sentry::mm::{FileSource, SharedObject};

/// Directory entries as (ino, d_type, name).
pub type Entries = Arc<Vec<(u64, u8, Vec<u8>)>>;

/// Close-on-exec descriptor flag.
pub const FD_CLOEXEC: u32 = 1;

/// What an open file can do. Offsets are handled by [`OpenFile`].
pub trait FileOps: Send + Sync {
    /// Reads at `off` (ignored by streams).
    fn read(&self, _buf: &mut [u8], _off: u64) -> SysResult<usize> {
        Err(Errno::EINVAL)
    }
    /// Writes at `off` (ignored by streams).
    fn write(&self, _buf: &[u8], _off: u64) -> SysResult<usize> {
        Err(Errno::EINVAL)
    }
    fn stat(&self) -> SysResult<Stat>;
    /// Whether lseek works (false: ESPIPE).
    fn seekable(&self) -> bool {
        true
    }
    /// Directory entries as (ino, d_type, name), "." and ".." included.
    fn entries(&self) -> SysResult<Entries> {
        Err(Errno::ENOTDIR)
    }
    /// The terminal attributes (TCGETS), for stdio on a terminal.
    fn termios(&self) -> SysResult<[u8; 36]> {
        Err(Errno::ENOTTY)
    }
    /// The window size (TIOCGWINSZ).
    fn winsize(&self) -> SysResult<[u8; 8]> {
        Err(Errno::ENOTTY)
    }
    /// The object whose frames mappings of this file map (shared ones as
    /// they are, private ones copy-on-write): the file's data, or its page
    /// cache. None: not mappable. `writer`: this open file may write, so
    /// the cache may write a shared mapping's pages back through it.
    fn page_cache(&self, _mem: &Arc<GuestMemory>, _writer: bool) -> Option<Arc<SharedObject>> {
        self.shared_object()
    }
    /// The object that holds the file's data, for a shared mapping that
    /// sees (and makes) the file's changes. None: a shared mapping of it
    /// is a private copy (image files, which are read-only).
    fn shared_object(&self) -> Option<Arc<SharedObject>> {
        None
    }
    /// lseek's SEEK_DATA (`hole` false) or SEEK_HOLE from `off`; ENXIO
    /// at or past the end. A memory file knows its holes (the pages it
    /// never wrote, as tmpfs); otherwise the whole file is data, as
    /// Linux's generic lseek has it.
    fn seek_data(&self, off: u64, hole: bool) -> SysResult<u64> {
        match self.shared_object() {
            Some(data) => data.seek_data(off, hole),
            None => whole_file_data(off, hole, self.stat()?.size.max(0) as u64),
        }
    }
    /// Sets the file's length (ftruncate). EINVAL for what has no length.
    fn truncate(&self, _len: u64) -> SysResult<()> {
        Err(Errno::EINVAL)
    }
    /// Writes the file's data back to its storage (fsync). Memory files
    /// have nothing to write back.
    fn sync(&self) -> SysResult<()> {
        Ok(())
    }
    /// Ready events among `want` (POLLIN, POLLOUT, ...), without blocking.
    /// Files on storage are always ready.
    fn poll(&self, want: u16) -> u16 {
        want & (super::poll::POLLIN
            | super::poll::POLLOUT
            | super::poll::POLLRDNORM
            | super::poll::POLLWRNORM)
    }
    /// The pipe end behind this file, if it is one (for non-blocking I/O
    /// and SIGPIPE).
    fn pipe(&self) -> Option<&super::pipe::PipeEnd> {
        None
    }
    /// The dentry this file was opened from, if any.
    fn node(&self) -> Option<&Arc<Node>> {
        None
    }
    /// The queue told when this file's readiness changes. None: the file
    /// is always ready, or cannot tell (stdio), and waiters re-check it.
    fn waitq(&self) -> Option<Arc<super::waitq::WaitQueue>> {
        None
    }
    /// Whether epoll may watch this file (Linux refuses regular files
    /// and directories with EPERM).
    fn epollable(&self) -> bool {
        self.waitq().is_some()
    }
    /// read(2) of a file that is not seekable and may block (eventfd,
    /// timerfd, ...), honouring O_NONBLOCK.
    fn read_stream(&self, buf: &mut [u8], _nonblock: bool) -> SysResult<usize> {
        self.read(buf, 0)
    }
    /// write(2) of a file that is not seekable and may block.
    fn write_stream(&self, buf: &[u8], _nonblock: bool) -> SysResult<usize> {
        self.write(buf, 0)
    }
    /// What /proc/self/fd/N shows for an anonymous file ("anon_inode:[eventfd]",
    /// "/memfd:x (deleted)"); None for the default.
    fn fd_target(&self) -> Option<Vec<u8>> {
        None
    }
    /// The file as `Any`, for syscalls that work on one kind of file only
    /// (epoll_ctl, signalfd4, F_ADD_SEALS).
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }
}

/// An open file description: shared by dup'ed descriptors.
pub struct OpenFile {
    pub ops: Arc<dyn FileOps>,
    pub offset: Mutex<u64>,
    /// O_ACCMODE and status flags (O_APPEND, O_NONBLOCK, ...).
    pub flags: Mutex<u32>,
    /// The description ever held a flock or OFD lock (released at its end).
    pub locked: std::sync::atomic::AtomicBool,
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        if super::inotify::active() && !self.is_path() {
            let close = if self.writable() {
                super::inotify::IN_CLOSE_WRITE
            } else {
                super::inotify::IN_CLOSE_NOWRITE
            };
            self.notify(close);
        }
        if *self.locked.get_mut() {
            super::locks::release_description(self as *const OpenFile as usize);
        }
    }
}

impl OpenFile {
    pub fn new(ops: Arc<dyn FileOps>, flags: u32) -> Arc<OpenFile> {
        Arc::new(OpenFile {
            ops,
            offset: Mutex::new(0),
            flags: Mutex::new(flags),
            locked: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Tells inotify watches of the file's inode of `mask`.
    fn notify(&self, mask: u32) {
        if let Some(node) = self.ops.node() {
            super::inotify::on_file(node, mask);
        }
    }

    /// Whether this is an O_PATH descriptor.
    pub fn is_path(&self) -> bool {
        *self.flags.lock().unwrap() & libc::O_PATH as u32 != 0
    }

    /// The file was opened (IN_OPEN; not for O_PATH, as Linux).
    pub fn opened(&self) {
        if super::inotify::active() && !self.is_path() {
            self.notify(super::inotify::IN_OPEN);
        }
    }

    /// The file's data or size changed other than by a write (ftruncate,
    /// fallocate): IN_MODIFY.
    pub fn modified(&self) {
        self.did(1, super::inotify::IN_MODIFY);
    }

    /// Data was read (`n` bytes) or written: IN_ACCESS or IN_MODIFY.
    fn did(&self, n: usize, mask: u32) -> usize {
        if n > 0 && super::inotify::active() {
            self.notify(mask);
        }
        n
    }

    fn access(&self) -> u32 {
        *self.flags.lock().unwrap() & libc::O_ACCMODE as u32
    }

    pub fn readable(&self) -> bool {
        self.access() != libc::O_WRONLY as u32
    }

    pub fn writable(&self) -> bool {
        self.access() != libc::O_RDONLY as u32
    }

    pub fn nonblocking(&self) -> bool {
        *self.flags.lock().unwrap() & libc::O_NONBLOCK as u32 != 0
    }

    /// read(2): at the file offset, advancing it.
    pub fn read(&self, buf: &mut [u8]) -> SysResult<usize> {
        if !self.readable() {
            return Err(Errno::EBADF);
        }
        let n = if let Some(p) = self.ops.pipe() {
            p.read_mode(buf, self.nonblocking())?
        } else if !self.ops.seekable() {
            // No offset to keep, and a blocked read must not hold it.
            self.ops.read_stream(buf, self.nonblocking())?
        } else {
            let mut off = self.offset.lock().unwrap();
            let n = self.ops.read(buf, *off)?;
            *off += n as u64;
            n
        };
        Ok(self.did(n, super::inotify::IN_ACCESS))
    }

    /// write(2): at the file offset, advancing it.
    pub fn write(&self, buf: &[u8]) -> SysResult<usize> {
        if !self.writable() {
            return Err(Errno::EBADF);
        }
        let n = if let Some(p) = self.ops.pipe() {
            p.write_mode(buf, self.nonblocking())?
        } else if !self.ops.seekable() {
            self.ops.write_stream(buf, self.nonblocking())?
        } else {
            let mut off = self.offset.lock().unwrap();
            if *self.flags.lock().unwrap() & libc::O_APPEND as u32 != 0 {
                // Each write goes to the end, atomically with finding it.
                *off = self.ops.stat()?.size.max(0) as u64;
            }
            let n = self.ops.write(buf, *off)?;
            *off += n as u64;
            n
        };
        Ok(self.did(n, super::inotify::IN_MODIFY))
    }

    /// pread64(2).
    pub fn pread(&self, buf: &mut [u8], off: u64) -> SysResult<usize> {
        if !self.readable() {
            return Err(Errno::EBADF);
        }
        if !self.ops.seekable() {
            return Err(Errno::ESPIPE);
        }
        let n = self.ops.read(buf, off)?;
        Ok(self.did(n, super::inotify::IN_ACCESS))
    }

    /// pwrite64(2): at `off`, or at the end with O_APPEND (as Linux); the
    /// file offset stays.
    pub fn pwrite(&self, buf: &[u8], off: u64) -> SysResult<usize> {
        if !self.writable() {
            return Err(Errno::EBADF);
        }
        if !self.ops.seekable() {
            return Err(Errno::ESPIPE);
        }
        let off = if *self.flags.lock().unwrap() & libc::O_APPEND as u32 != 0 {
            self.ops.stat()?.size.max(0) as u64
        } else {
            off
        };
        let n = self.ops.write(buf, off)?;
        Ok(self.did(n, super::inotify::IN_MODIFY))
    }
}

#[derive(Clone)]
struct Slot {
    file: Arc<OpenFile>,
    flags: u32,
}

/// A descriptor table, shared by the threads (and CLONE_FILES children)
/// that hold a clone of it; [`FdTable::copy`] makes a separate one (fork).
#[derive(Clone, Default)]
pub struct FdTable {
    inner: Arc<std::sync::Mutex<Slots>>,
}

impl FdTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.inner.lock().unwrap()
    }

    /// A table of its own holding the same open files (fork).
    pub fn copy(&self) -> FdTable {
        FdTable {
            inner: Arc::new(std::sync::Mutex::new(self.lock().clone())),
        }
    }

    /// Installs `file` at the lowest free descriptor >= `min`; EMFILE
    /// when that is `limit` (the caller's RLIMIT_NOFILE) or above.
    pub fn insert(
        &self,
        file: Arc<OpenFile>,
        flags: u32,
        min: usize,
        limit: usize,
    ) -> SysResult<i32> {
        self.lock().insert(file, flags, min, limit)
    }

    /// Installs `file` at `fd`; returns what was there (closed when the
    /// caller drops it).
    pub fn set(&self, fd: usize, file: Arc<OpenFile>, flags: u32) -> Option<Arc<OpenFile>> {
        self.lock().set(fd, file, flags).map(|s| s.file)
    }

    pub fn get(&self, fd: i32) -> SysResult<Arc<OpenFile>> {
        self.lock().slot(fd).map(|s| s.file.clone())
    }

    pub fn flags(&self, fd: i32) -> SysResult<u32> {
        self.lock().slot(fd).map(|s| s.flags)
    }

    pub fn set_flags(&self, fd: i32, flags: u32) -> SysResult<()> {
        self.lock().set_flags(fd, flags)
    }

    /// close_range(2): closes (or marks close-on-exec) `[first, last]`;
    /// returns the files closed (dropped by the caller, outside the lock).
    pub fn close_range(&self, first: usize, last: usize, cloexec: bool) -> Vec<Arc<OpenFile>> {
        self.lock().close_range(first, last, cloexec)
    }

    /// The open descriptor numbers, ascending.
    pub fn open_fds(&self) -> Vec<i32> {
        self.lock().open_fds()
    }

    /// Closes every close-on-exec descriptor (execve); returns the files
    /// closed.
    pub fn close_on_exec(&self) -> Vec<Arc<OpenFile>> {
        self.lock().close_on_exec()
    }

    pub fn remove(&self, fd: i32) -> SysResult<Arc<OpenFile>> {
        self.lock().remove(fd)
    }
}

#[derive(Clone, Default)]
struct Slots {
    slots: Vec<Option<Slot>>,
}

/// Most descriptors a process may have (RLIMIT_NOFILE's ceiling,
/// /proc/sys/fs/nr_open).
pub const MAX_FDS: usize = 1 << 20;

impl Slots {
    /// Installs `file` at the lowest free descriptor >= `min`.
    fn insert(
        &mut self,
        file: Arc<OpenFile>,
        flags: u32,
        min: usize,
        limit: usize,
    ) -> SysResult<i32> {
        let fd = (min..)
            .find(|&i| self.slots.get(i).is_none_or(|s| s.is_none()))
            .unwrap();
        if fd >= limit.min(MAX_FDS) {
            return Err(Errno::EMFILE);
        }
        self.set(fd, file, flags);
        Ok(fd as i32)
    }

    /// Installs `file` at `fd`; returns what was there (closed when the
    /// caller drops it, outside the table's lock).
    fn set(&mut self, fd: usize, file: Arc<OpenFile>, flags: u32) -> Option<Slot> {
        if self.slots.len() <= fd {
            self.slots.resize_with(fd + 1, || None);
        }
        self.slots[fd].replace(Slot { file, flags })
    }

    fn slot(&self, fd: i32) -> SysResult<&Slot> {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.slots.get(i))
            .and_then(|s| s.as_ref())
            .ok_or(Errno::EBADF)
    }

    fn set_flags(&mut self, fd: i32, flags: u32) -> SysResult<()> {
        let slot = usize::try_from(fd)
            .ok()
            .and_then(|i| self.slots.get_mut(i))
            .and_then(|s| s.as_mut());
        slot.ok_or(Errno::EBADF)?.flags = flags;
        Ok(())
    }

    /// close_range(2): closes (or marks close-on-exec) `[first, last]`.
    fn close_range(&mut self, first: usize, last: usize, cloexec: bool) -> Vec<Arc<OpenFile>> {
        let end = last.saturating_add(1).min(self.slots.len());
        let mut closed = vec![];
        for slot in self.slots.iter_mut().take(end).skip(first) {
            if cloexec {
                if let Some(s) = slot.as_mut() {
                    s.flags |= FD_CLOEXEC;
                }
            } else if let Some(s) = slot.take() {
                closed.push(s.file);
            }
        }
        closed
    }

    /// The open descriptor numbers, ascending.
    fn open_fds(&self) -> Vec<i32> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_some())
            .map(|(i, _)| i as i32)
            .collect()
    }

    /// Closes every close-on-exec descriptor (execve).
    fn close_on_exec(&mut self) -> Vec<Arc<OpenFile>> {
        let mut closed = vec![];
        for slot in self.slots.iter_mut() {
            if slot.as_ref().is_some_and(|s| s.flags & FD_CLOEXEC != 0) {
                closed.extend(slot.take().map(|s| s.file));
            }
        }
        closed
    }

    fn remove(&mut self, fd: i32) -> SysResult<Arc<OpenFile>> {
        let slot = usize::try_from(fd)
            .ok()
            .and_then(|i| self.slots.get_mut(i))
            .and_then(|s| s.take());
        slot.map(|s| s.file).ok_or(Errno::EBADF)
    }
}

/// A regular file of the image, read through the host fd the gofer donated.
pub struct HostFile {
    fd: Arc<OwnedFd>,
    node: Arc<Node>,
}

impl HostFile {
    pub fn new(fd: OwnedFd, node: Arc<Node>) -> HostFile {
        HostFile {
            fd: Arc::new(fd),
            node,
        }
    }
}

impl HostFile {
    /// The file's memory inode once it was copied up (written through
    /// another descriptor): reads then see its data.
    fn copied(&self) -> Option<&Arc<TmpInode>> {
        self.node.upper().filter(|u| u.data().is_some())
    }
}

/// SEEK_DATA / SEEK_HOLE of a file of `size` bytes that is data all
/// through.
pub fn whole_file_data(off: u64, hole: bool, size: u64) -> SysResult<u64> {
    match (off >= size, hole) {
        (true, _) => Err(Errno::ENXIO),
        (false, false) => Ok(off),
        (false, true) => Ok(size),
    }
}

/// SEEK_DATA / SEEK_HOLE asked of the host file behind `fd`.
pub fn host_seek_data(fd: BorrowedFd<'_>, off: u64, hole: bool) -> SysResult<u64> {
    let whence = if hole {
        libc::SEEK_HOLE
    } else {
        libc::SEEK_DATA
    };
    let off = i64::try_from(off).map_err(|_| Errno::ENXIO)?;
    // SAFETY: lseek on a descriptor we own; no memory is touched. The
    // offset is the descriptor's own (pread/pwrite never use it).
    let r = unsafe { libc::lseek(fd.as_raw_fd(), off, whence) };
    if r < 0 {
        return Err(Errno::last());
    }
    Ok(r as u64)
}

impl FileOps for HostFile {
    fn seek_data(&self, off: u64, hole: bool) -> SysResult<u64> {
        match self.copied() {
            Some(up) => up.data().expect("a regular file").seek_data(off, hole),
            None => host_seek_data(self.fd.as_fd(), off, hole),
        }
    }

    fn read(&self, buf: &mut [u8], off: u64) -> SysResult<usize> {
        if let Some(up) = self.copied() {
            return Ok(up.data().expect("a regular file").read(off, buf));
        }
        Ok(nix::sys::uio::pread(self.fd.as_fd(), buf, off as i64)?)
    }

    fn stat(&self) -> SysResult<Stat> {
        Ok(self.node.current_stat())
    }

    /// The memory inode's data once copied up; before, the image file's
    /// page cache, kept with its dentry (the image never changes).
    fn page_cache(&self, mem: &Arc<GuestMemory>, _writer: bool) -> Option<Arc<SharedObject>> {
        if let Some(up) = self.copied() {
            return up.data().cloned();
        }
        let size = self.node.stat.size.max(0) as u64;
        Some(self.node.page_cache.get_or_make(true, || {
            SharedObject::of_file(mem, size, FileSource::image(self.fd.clone()))
        }))
    }

    fn node(&self) -> Option<&Arc<Node>> {
        Some(&self.node)
    }
}

/// A directory of the image; its entries are read once, on first use.
pub struct DirFile {
    node: Arc<Node>,
    fs: Arc<GoferFs>,
    entries: Mutex<Option<Entries>>,
}

impl DirFile {
    pub fn new(node: Arc<Node>, fs: Arc<GoferFs>) -> DirFile {
        DirFile {
            node,
            fs,
            entries: Mutex::new(None),
        }
    }

    /// A directory whose entries (besides "." and "..") are known at open:
    /// /proc/self/fd and /dev/fd list the opener's descriptors.
    pub fn with_entries(
        node: Arc<Node>,
        fs: Arc<GoferFs>,
        names: Vec<(u64, u8, Vec<u8>)>,
    ) -> DirFile {
        let parent = fs.parent_of(&node).unwrap_or_else(|| node.clone());
        let mut all = vec![
            (
                node.current_stat().ino,
                dtype_of_mode(node.stat.mode),
                b".".to_vec(),
            ),
            (
                parent.current_stat().ino,
                dtype_of_mode(parent.stat.mode),
                b"..".to_vec(),
            ),
        ];
        all.extend(names);
        DirFile {
            node,
            fs,
            entries: Mutex::new(Some(Arc::new(all))),
        }
    }
}

impl FileOps for DirFile {
    fn read(&self, _buf: &mut [u8], _off: u64) -> SysResult<usize> {
        Err(Errno::EISDIR)
    }

    fn stat(&self) -> SysResult<Stat> {
        self.fs.fresh_stat(&self.node)
    }

    fn entries(&self) -> SysResult<Entries> {
        let mut cached = self.entries.lock().unwrap();
        if let Some(e) = cached.as_ref() {
            return Ok(e.clone());
        }
        let parent = self
            .fs
            .parent_of(&self.node)
            .unwrap_or_else(|| self.node.clone());
        let mut all = vec![
            (
                self.node.current_stat().ino,
                dtype_of_mode(self.node.stat.mode),
                b".".to_vec(),
            ),
            (
                parent.current_stat().ino,
                dtype_of_mode(parent.stat.mode),
                b"..".to_vec(),
            ),
        ];
        all.extend(self.fs.readdir(&self.node)?);
        let all = Arc::new(all);
        *cached = Some(all.clone());
        Ok(all)
    }

    fn node(&self) -> Option<&Arc<Node>> {
        Some(&self.node)
    }
}

/// One of the launcher's standard streams, given to the guest as fd 0-2.
/// The sentry does the I/O on its own descriptor 0, 1 or 2 (the only ones
/// its seccomp filter lets it ask terminal questions about); the guest
/// never gets the host fd.
pub struct StdioFile {
    stream: super::hostfd::Stream<BorrowedFd<'static>>,
}

impl StdioFile {
    /// The sentry's standard stream `n` (0, 1 or 2).
    pub fn new(n: u8) -> StdioFile {
        assert!(n <= 2, "not a standard stream: {n}");
        // SAFETY: fds 0-2 are the sentry's standard streams, open for the
        // life of the process (the launcher passes them and nothing in the
        // sentry closes them).
        let fd = unsafe { BorrowedFd::borrow_raw(n as i32) };
        StdioFile {
            stream: super::hostfd::Stream::new(fd),
        }
    }

    fn is_tty(&self) -> bool {
        nix::unistd::isatty(self.stream.fd()).unwrap_or(false)
    }
}

impl FileOps for StdioFile {
    fn read(&self, buf: &mut [u8], _off: u64) -> SysResult<usize> {
        self.stream.read(buf, false)
    }

    fn write(&self, buf: &[u8], _off: u64) -> SysResult<usize> {
        self.stream.write(buf, false)
    }

    fn read_stream(&self, buf: &mut [u8], nonblock: bool) -> SysResult<usize> {
        self.stream.read(buf, nonblock)
    }

    fn write_stream(&self, buf: &[u8], nonblock: bool) -> SysResult<usize> {
        self.stream.write(buf, nonblock)
    }

    fn stat(&self) -> SysResult<Stat> {
        let mode = if self.is_tty() {
            S_IFCHR | 0o620
        } else {
            S_IFIFO | 0o600
        };
        Ok(Stat {
            mode,
            nlink: 1,
            blksize: 4096,
            ino: self.stream.fd().as_raw_fd() as u64 + 1,
            ..Default::default()
        })
    }

    fn seekable(&self) -> bool {
        false
    }

    fn termios(&self) -> SysResult<[u8; 36]> {
        let t = nix::sys::termios::tcgetattr(self.stream.fd()).map_err(|_| Errno::ENOTTY)?;
        let raw: libc::termios = t.into();
        let mut b = [0u8; 36];
        b[0..4].copy_from_slice(&raw.c_iflag.to_le_bytes());
        b[4..8].copy_from_slice(&raw.c_oflag.to_le_bytes());
        b[8..12].copy_from_slice(&raw.c_cflag.to_le_bytes());
        b[12..16].copy_from_slice(&raw.c_lflag.to_le_bytes());
        b[16] = raw.c_line;
        b[17..36].copy_from_slice(&raw.c_cc[..19]);
        Ok(b)
    }

    fn poll(&self, want: u16) -> u16 {
        super::poll::host_ready(self.stream.fd(), want)
    }

    fn epollable(&self) -> bool {
        true
    }

    fn winsize(&self) -> SysResult<[u8; 8]> {
        if !self.is_tty() {
            return Err(Errno::ENOTTY);
        }
        let mut ws = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes one winsize into the struct we pass.
        let r = unsafe { libc::ioctl(self.stream.fd().as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
        if r < 0 {
            return Err(Errno::ENOTTY);
        }
        let mut b = [0u8; 8];
        b[0..2].copy_from_slice(&ws.ws_row.to_le_bytes());
        b[2..4].copy_from_slice(&ws.ws_col.to_le_bytes());
        b[4..6].copy_from_slice(&ws.ws_xpixel.to_le_bytes());
        b[6..8].copy_from_slice(&ws.ws_ypixel.to_le_bytes());
        Ok(b)
    }
}
