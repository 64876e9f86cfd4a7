//! File syscalls: open, read, write, stat, directory listing, descriptors.

use std::sync::Arc;

use super::splice::At;
use crate::abi::types::{Stat, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG};
use crate::abi::{Errno, SysResult};
use crate::sentry::kernel::procfs;
use crate::sentry::kernel::signal::current_interrupted;
use crate::sentry::kernel::Task;
use crate::sentry::vfs::dev::{self, Synth};
use crate::sentry::vfs::inotify;
use crate::sentry::vfs::opath::PathFile;
use crate::sentry::vfs::pipe::new_pipe;
use crate::sentry::vfs::proc::{self, PidEntry, ProcNode};
use crate::sentry::vfs::tmpfs::{FifoFile, TmpFile};
use crate::sentry::vfs::{
    resolve, resolve_parent, resolve_with, BindFile, DirFile, Follow, HostFile, Node, OpenFile,
    Rules, FD_CLOEXEC, MAX_PATH,
};

pub(super) const AT_FDCWD: i32 = -100;
const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
const AT_EMPTY_PATH: u64 = 0x1000;
/// Largest chunk copied through the sentry per step of read/write.
pub(super) const CHUNK: usize = 1 << 20;
/// Most iovecs per readv/writev (IOV_MAX).
const IOV_MAX: u64 = 1024;

pub(super) fn fd_arg(v: u64) -> i32 {
    v as i32
}

/// Reads the path argument at `addr`.
pub(super) fn path_arg(t: &mut Task, addr: u64) -> SysResult<Vec<u8>> {
    let p = t.mm.read_cstr(addr, MAX_PATH)?;
    if p.len() >= MAX_PATH {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(p)
}

/// The directory a *at syscall resolves relative paths against.
pub(super) fn dir_of(t: &Task, dirfd: i32) -> SysResult<Arc<Node>> {
    if dirfd == AT_FDCWD {
        return Ok(t.cwd.clone());
    }
    let file = t.fds.get(dirfd)?;
    let node = file.ops.node().ok_or(Errno::ENOTDIR)?;
    if !node.stat.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    Ok(node.clone())
}

/// Resolves `path` relative to `dirfd`.
pub(super) fn lookup_at(
    t: &mut Task,
    dirfd: i32,
    path: &[u8],
    follow: Follow,
) -> SysResult<Arc<Node>> {
    let base = if path.starts_with(b"/") {
        t.root.clone()
    } else {
        dir_of(t, dirfd)?
    };
    let node = resolve(&t.fs, &t.root, &base, path, follow)?;
    if follow == Follow::No {
        return Ok(node);
    }
    // /dev/fd/N ends at the descriptor's dentry (chmod through it);
    // /proc's magic links were followed by the walk.
    Ok(match node.synth {
        Some(Synth::Fd(n)) => match t.fds.get(n) {
            Ok(file) => file.ops.node().cloned().unwrap_or(node),
            Err(_) => return Err(Errno::ENOENT),
        },
        _ => node,
    })
}

/// CAP_DAC_OVERRIDE: bypasses read, write and search permission checks.
pub(super) const CAP_DAC_OVERRIDE: u32 = 1;

/// Whether the credentials allow `want` (bits 4 read, 2 write, 1 exec).
pub(super) fn permitted(t: &Task, st: &Stat, want: u32) -> bool {
    if t.creds.has_cap(CAP_DAC_OVERRIDE) {
        return want & 1 == 0 || st.mode & 0o111 != 0 || st.is_dir();
    }
    t.access_bits(st) & want == want
}

/// Opens a synthetic file (/dev, /proc) as a new file description, or
/// returns None for nodes that open the ordinary way.
fn open_synth(
    t: &Task,
    node: &Arc<Node>,
    flags: u64,
    writes: bool,
) -> SysResult<Option<Arc<OpenFile>>> {
    Ok(Some(match node.synth {
        // /dev/fd/N: the process's own descriptor (shared, like dup).
        Some(Synth::Fd(n)) => return t.fds.get(n).map(Some).map_err(|_| Errno::ENOENT),
        Some(Synth::Proc(p)) => return open_proc(t, node, p, flags),
        // sysfs is mounted read-only.
        Some(Synth::Sys(_)) if writes => return Err(Errno::EROFS),
        Some(Synth::Sys(s)) => match s.contents() {
            Some(bytes) => OpenFile::new(
                proc::Generated::new(bytes, node.clone()),
                libc::O_RDONLY as u32,
            ),
            None => return Ok(None),
        },
        Some(Synth::FdDir) => {
            let fds = t.fds.open_fds().into_iter().map(|fd| {
                (
                    0x3000 + fd as u64,
                    crate::abi::types::DT_LNK,
                    fd.to_string().into_bytes(),
                )
            });
            let dir = DirFile::with_entries(node.clone(), t.fs.clone(), fds.collect());
            OpenFile::new(Arc::new(dir), libc::O_RDONLY as u32)
        }
        _ => return Ok(None),
    }))
}

/// Opens a file of /proc: generated files (writing them needs write
/// permission and then fails, as Linux's have no write method), the
/// descriptor behind a /proc/[pid]/fd/N without a dentry, and a
/// process's descriptor listings (EACCES without access to it). None for
/// what opens the ordinary way (directories).
fn open_proc(
    t: &Task,
    node: &Arc<Node>,
    p: ProcNode,
    flags: u64,
) -> SysResult<Option<Arc<OpenFile>>> {
    let acc = flags as u32 & libc::O_ACCMODE as u32;
    let bytes = match p {
        ProcNode::File(_) | ProcNode::Pid(_, PidEntry::File(_) | PidEntry::Fdinfo(_))
            if acc != libc::O_RDONLY as u32 && !permitted(t, &node.current_stat(), 2) =>
        {
            return Err(Errno::EACCES)
        }
        ProcNode::File(kind) => procfs::contents(t, kind),
        ProcNode::Pid(r, PidEntry::File(f)) => procfs::pid_contents(t, &procfs::target(r)?, f)?,
        ProcNode::Pid(r, PidEntry::Fdinfo(n)) => procfs::fdinfo(&procfs::target(r)?, n)?,
        ProcNode::Pid(r, PidEntry::Fd(n)) => {
            let target = procfs::target(r)?;
            target.check_access()?;
            return target.file(n).map(Some);
        }
        ProcNode::Pid(r, PidEntry::FdDir | PidEntry::FdinfoDir) => {
            procfs::target(r)?.check_access()?;
            return Ok(None);
        }
        _ => return Ok(None),
    };
    let file = proc::Generated::new(bytes, node.clone());
    Ok(Some(OpenFile::new(file, acc)))
}

/// Opens `node` as a new file description. Writing (or truncating) a
/// file of the image copies it up into the overlay's memory layer first;
/// a file of a bind mount is opened on the host.
pub fn open_node(t: &Task, node: Arc<Node>, flags: u64) -> SysResult<Arc<OpenFile>> {
    let acc = flags & libc::O_ACCMODE as u64;
    let trunc = flags & libc::O_TRUNC as u64 != 0;
    let writes = acc != libc::O_RDONLY as u64 || trunc;
    if flags & libc::O_PATH as u64 != 0 {
        if flags & libc::O_DIRECTORY as u64 != 0 && !node.stat.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        let keep = (libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW) as u32;
        return Ok(OpenFile::new(PathFile::new(node), flags as u32 & keep));
    }
    if let Some(file) = open_synth(t, &node, flags, writes)? {
        return Ok(file);
    }
    if flags & libc::O_PATH as u64 == 0 {
        let want = match acc as i32 {
            libc::O_RDONLY if trunc => 6,
            libc::O_RDONLY => 4,
            libc::O_WRONLY => 2,
            _ => 6,
        };
        if !permitted(t, &node.current_stat(), want) {
            return Err(Errno::EACCES);
        }
    }
    let status = (flags as u32)
        & !(libc::O_CLOEXEC | libc::O_CREAT | libc::O_EXCL | libc::O_NOCTTY | libc::O_TRUNC) as u32;
    if let Some(file) = super::tty::open(t, &node, flags) {
        return file;
    }
    if let Some(Synth::Device(d)) = node.synth {
        return Ok(OpenFile::new(dev::open_device(d), status));
    }
    if node.stat.is_dir() {
        if writes {
            return Err(Errno::EISDIR);
        }
        return Ok(OpenFile::new(
            Arc::new(DirFile::new(node, t.fs.clone())),
            status,
        ));
    }
    if flags & libc::O_DIRECTORY as u64 != 0 {
        return Err(Errno::ENOTDIR);
    }
    match node.stat.mode & S_IFMT {
        S_IFREG => {}
        S_IFLNK => return Err(Errno::ELOOP),
        // A FIFO on the host would need a host reader or writer.
        S_IFIFO if node.mount.is_bind() => return Err(Errno::ENXIO),
        S_IFIFO => {
            if node.upper().is_none() {
                t.fs.copy_up(&node, false)?;
            }
            let (read, write) = (acc != libc::O_WRONLY as u64, acc != libc::O_RDONLY as u64);
            let nonblock = flags & libc::O_NONBLOCK as u64 != 0;
            return Ok(OpenFile::new(
                FifoFile::open(node, read, write, nonblock)?,
                status,
            ));
        }
        crate::abi::types::S_IFCHR | crate::abi::types::S_IFBLK => {
            // A node mknod(2) made: one of the sentry's own devices, or
            // none. nodev mounts refuse them all.
            if node.mount.has(crate::sentry::vfs::mount::MS_NODEV) {
                return Err(Errno::EACCES);
            }
            let rdev = node.upper().map_or(0, |u| u.rdev());
            let char_dev = node.stat.mode & S_IFMT == crate::abi::types::S_IFCHR;
            return match dev::device_of_rdev(rdev).filter(|_| char_dev) {
                Some(d) => Ok(OpenFile::new(dev::open_device(d), status)),
                None => Err(Errno::ENXIO),
            };
        }
        _ => return Err(Errno::ENXIO),
    }
    if node.mount.is_bind() {
        // Straight to the host file: the gofer opens it as asked.
        if writes {
            super::fs::check_writable(&node)?;
        }
        let trunc_flag = if trunc { libc::O_TRUNC } else { 0 };
        let fd = t.fs.open(&node, acc as i32 | trunc_flag)?;

        return Ok(OpenFile::new(BindFile::new(fd, node, t.fs.clone()), status));
    }
    if writes {
        super::fs::check_writable(&node)?;
        let inode = t.fs.copy_up(&node, !trunc)?;
        if trunc {
            inode.truncate(0)?;
        }
    }
    if node.upper().is_some() {
        return Ok(OpenFile::new(TmpFile::new(node), status));
    }
    let fd = t.fs.open(&node, libc::O_RDONLY)?;
    Ok(OpenFile::new(Arc::new(HostFile::new(fd, node)), status))
}

/// The root and start directory of a resolution: with RESOLVE_BENEATH or
/// RESOLVE_IN_ROOT, `dirfd` is both.
fn bases(t: &Task, dirfd: i32, path: &[u8], rules: Rules) -> SysResult<(Arc<Node>, Arc<Node>)> {
    if rules.beneath || rules.in_root {
        let dir = dir_of(t, dirfd)?;
        return Ok((dir.clone(), dir));
    }
    let base = if path.starts_with(b"/") {
        t.root.clone()
    } else {
        dir_of(t, dirfd)?
    };
    Ok((t.root.clone(), base))
}

/// The descriptor flags for open flags `flags`.
fn fd_flags(flags: u64) -> u32 {
    if flags & libc::O_CLOEXEC as u64 != 0 {
        FD_CLOEXEC
    } else {
        0
    }
}

/// Opens (or creates) `path` relative to `dirfd` following `rules`.
fn open_at(
    t: &mut Task,
    dirfd: i32,
    path: &[u8],
    flags: u64,
    mode: u32,
    rules: Rules,
) -> SysResult<u64> {
    let creat = flags & libc::O_CREAT as u64 != 0;
    let excl = flags & libc::O_EXCL as u64 != 0;
    let tmpfile = flags & libc::O_TMPFILE as u64 == libc::O_TMPFILE as u64;
    if creat && !tmpfile && flags & libc::O_DIRECTORY as u64 != 0 {
        // Linux 6.4 on: asking to create a directory with open is EINVAL.
        return Err(Errno::EINVAL);
    }
    let access = flags & libc::O_ACCMODE as u64;
    if tmpfile && access != libc::O_WRONLY as u64 && access != libc::O_RDWR as u64 {
        // An unnamed file must be opened for writing (checked first).
        return Err(Errno::EINVAL);
    }
    let (root, base) = bases(t, dirfd, path, rules)?;
    if tmpfile {
        let dir = resolve_with(&t.fs, &root, &base, path, Follow::Yes, rules)?;
        return open_tmpfile(t, dir, flags, mode);
    }
    let follow = if flags & libc::O_NOFOLLOW as u64 != 0 || (creat && excl) {
        Follow::No
    } else {
        Follow::Yes
    };
    let node = match resolve_with(&t.fs, &root, &base, path, follow, rules) {
        Ok(_) if creat && excl => return Err(Errno::EEXIST),
        Ok(n) => n,
        Err(Errno::ENOENT) if creat => {
            if path.ends_with(b"/") {
                // A name with a trailing slash is a directory's: open
                // never creates one.
                return Err(Errno::EISDIR);
            }
            let (dir, name) = resolve_parent(&t.fs, &root, &base, path)?;
            // A file just created opens whatever its mode says.
            let status = (flags as u32)
                & !(libc::O_CLOEXEC | libc::O_CREAT | libc::O_EXCL | libc::O_NOCTTY | libc::O_TRUNC)
                    as u32;
            let file = if dir.mount.is_bind() {
                let (node, fd) = match super::fs::create_bind_file(t, &dir, &name, mode & 0o7777) {
                    // Made on the host since the lookup: open that one.
                    Err(Errno::EEXIST) if !excl => {
                        let node = resolve_with(&t.fs, &root, &base, path, follow, rules)?;
                        let file = open_node(t, node, flags)?;
                        return install(t, file, flags, true);
                    }
                    r => r?,
                };
                OpenFile::new(BindFile::new(fd, node, t.fs.clone()), status)
            } else {
                let node = super::fs::create_file(t, &dir, &name, mode & 0o7777)?;
                OpenFile::new(TmpFile::new(node), status)
            };
            return install(t, file, flags, false);
        }
        Err(e) => return Err(e),
    };
    let file = open_node(t, node, flags)?;
    install(t, file, flags, true)
}

/// open(2) with O_TMPFILE: a new regular file in the memory file system
/// of directory `dir`, with no name until linkat gives it one (never,
/// with O_EXCL); `open_at` checked that it is opened for writing. A bind mount's, the
/// sentry's own directories and read-only mounts have none (EOPNOTSUPP,
/// EROFS), as Linux says for file systems without them.
fn open_tmpfile(t: &mut Task, dir: Arc<Node>, flags: u64, mode: u32) -> SysResult<u64> {
    if !dir.stat.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    // Only memory file systems (tmpfs, the overlay) make unnamed files.
    if !dir.mount.in_memory() {
        return Err(Errno::EOPNOTSUPP);
    }
    let node = super::fs::create_unnamed_file(t, &dir, mode & 0o7777)?;
    node.set_linkable(flags & libc::O_EXCL as u64 == 0);
    let status = (flags as u32) & !(libc::O_CLOEXEC | libc::O_TMPFILE | libc::O_EXCL) as u32;
    install(t, OpenFile::new(TmpFile::new(node), status), flags, false)
}

/// Gives the guest a descriptor of `file`, just opened with `flags`
/// (`existed`: not created by this open, so O_TRUNC truncated it, which
/// inotify reports after the open, as Linux).
fn install(t: &mut Task, file: Arc<OpenFile>, flags: u64, existed: bool) -> SysResult<u64> {
    file.opened();
    let trunc = flags & libc::O_TRUNC as u64 != 0 && flags & libc::O_PATH as u64 == 0;
    if existed && trunc && file.ops.node().is_some_and(|n| n.stat.is_reg()) {
        file.modified();
    }
    Ok(t.fds.insert(file, fd_flags(flags), 0, t.nofile())? as u64)
}

/// Implements openat(2).
pub fn sys_openat(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let path = path_arg(t, a[1])?;
    open_at(t, fd_arg(a[0]), &path, a[2], a[3] as u32, Rules::default())
}

/// Implements openat2(2): `struct open_how` and its RESOLVE_* rules.
pub fn sys_openat2(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    const OPEN_HOW: usize = 24;
    let size = a[3] as usize;
    if size < OPEN_HOW {
        return Err(Errno::EINVAL);
    }
    if size > 4096 {
        return Err(Errno::E2BIG);
    }
    let mut how = vec![0u8; size];
    t.mm.copy_in(a[2], &mut how)?;
    if how[OPEN_HOW..].iter().any(|&b| b != 0) {
        return Err(Errno::E2BIG);
    }
    let word = |i: usize| u64::from_le_bytes(how[i * 8..i * 8 + 8].try_into().unwrap());
    let (flags, mode, resolve) = (word(0), word(1), word(2));
    if flags >> 32 != 0 || mode & !0o7777 != 0 {
        return Err(Errno::EINVAL);
    }
    if mode != 0 && flags & (libc::O_CREAT | libc::O_TMPFILE) as u64 == 0 {
        return Err(Errno::EINVAL);
    }
    let rules = Rules::from_resolve(resolve)?;
    if rules.cached {
        // Everything may need the gofer: never done from the cache alone.
        return Err(Errno::EAGAIN);
    }
    let path = path_arg(t, a[1])?;
    open_at(t, fd_arg(a[0]), &path, flags, mode as u32, rules)
}

/// Implements open(2).
pub fn sys_open(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    sys_openat(t, [AT_FDCWD as u64, a[0], a[1], a[2], 0, 0])
}

/// Implements close(2).
pub fn sys_close(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let file = t.fds.remove(fd_arg(a[0]))?;
    super::lock::closed(t, &file);
    Ok(0)
}

/// Implements read(2).
pub fn sys_read(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let file = t.fds.get(fd_arg(a[0]))?;
    read_chunks(t, &file, a[1], a[2], |buf, _| file.read(buf))
}

/// Reads up to `len` bytes to guest address `addr` with `read` (given a
/// buffer and the bytes done so far), CHUNK at a time: a file on storage
/// gives all it has, as Linux does, a stream what one read gets. An error
/// after some bytes ends the read with those.
fn read_chunks(
    t: &Task,
    file: &OpenFile,
    addr: u64,
    len: u64,
    mut read: impl FnMut(&mut [u8], u64) -> SysResult<usize>,
) -> SysResult<u64> {
    let mut buf = vec![0u8; (len as usize).min(CHUNK)];
    let mut done = 0u64;
    loop {
        let want = ((len - done) as usize).min(CHUNK);
        let n = match read(&mut buf[..want], done) {
            Ok(n) => n,
            Err(_) if done > 0 => break,
            Err(e) => return Err(e),
        };
        t.mm.copy_out(addr + done, &buf[..n])?;
        done += n as u64;
        if n < want || done == len || !file.ops.seekable() {
            break;
        }
    }
    Ok(done)
}

/// Writes `len` bytes from guest address `addr` with `write` (given the
/// bytes and the count done so far), CHUNK at a time for a file on
/// storage; a stream takes one chunk per call.
fn write_chunks(
    t: &mut Task,
    file: &OpenFile,
    addr: u64,
    len: u64,
    mut write: impl FnMut(&mut Task, &[u8], u64) -> SysResult<u64>,
) -> SysResult<u64> {
    let mut buf = vec![0u8; (len as usize).min(CHUNK)];
    let mut done = 0u64;
    loop {
        let want = ((len - done) as usize).min(CHUNK);
        t.mm.copy_in(addr + done, &mut buf[..want])?;
        let n = match write(t, &buf[..want], done) {
            Ok(n) => n,
            Err(_) if done > 0 => break,
            Err(e) => return Err(e),
        };
        done += n;
        if n < want as u64 || done == len || !file.ops.seekable() {
            break;
        }
    }
    Ok(done)
}

/// Implements pread64(2).
pub fn sys_pread64(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let file = t.fds.get(fd_arg(a[0]))?;
    if (a[3] as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    read_chunks(t, &file, a[1], a[2], |buf, done| {
        file.pread(buf, a[3] + done)
    })
}

/// Implements pwrite64(2).
pub fn sys_pwrite64(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let file = t.fds.get(fd_arg(a[0]))?;
    if (a[3] as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    write_chunks(t, &file, a[1], a[2], |_, buf, done| {
        Ok(file.pwrite(buf, a[3] + done)? as u64)
    })
}

/// Implements write(2).
pub fn sys_write(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let file = t.fds.get(fd_arg(a[0]))?;
    write_chunks(t, &file, a[1], a[2], |t, buf, _| {
        write_or_sigpipe(t, &file, buf)
    })
}

/// Writes, raising SIGPIPE on the writer when a pipe has no reader left.
pub(super) fn write_or_sigpipe(t: &mut Task, file: &OpenFile, buf: &[u8]) -> SysResult<u64> {
    match file.write(buf) {
        Err(Errno::EPIPE) => Err(sigpipe(t)),
        r => Ok(r? as u64),
    }
}

/// Raises SIGPIPE at the calling thread (a write to a pipe or socket
/// found no reader); returns EPIPE for the caller to fail with.
pub(super) fn sigpipe(t: &mut Task) -> Errno {
    let info = crate::sentry::kernel::siginfo::SigInfo::from_process(
        libc::SIGPIPE,
        crate::sentry::kernel::siginfo::SI_USER,
        t.pid,
        t.creds.uid,
    );
    crate::sentry::kernel::signal::send_thread(&t.control, info);
    Errno::EPIPE
}

/// Reads the iovec array of readv/writev as (base, len) pairs.
pub(super) fn iovecs(t: &mut Task, addr: u64, count: u64) -> SysResult<Vec<(u64, usize)>> {
    if count > IOV_MAX {
        return Err(Errno::EINVAL);
    }
    let mut raw = vec![0u8; count as usize * 16];
    t.mm.copy_in(addr, &mut raw)?;
    let iov: Vec<(u64, usize)> = raw
        .chunks_exact(16)
        .map(|c| {
            (
                u64::from_le_bytes(c[..8].try_into().unwrap()),
                u64::from_le_bytes(c[8..].try_into().unwrap()) as usize,
            )
        })
        .collect();
    if iov.iter().any(|&(_, l)| l > isize::MAX as usize) {
        return Err(Errno::EINVAL);
    }
    Ok(iov)
}

/// The guest bytes of `iov`, gathered (at most CHUNK).
fn gather(t: &Task, iov: &[(u64, usize)]) -> SysResult<Vec<u8>> {
    let mut buf = vec![];
    for &(base, len) in iov {
        let take = len.min(CHUNK.saturating_sub(buf.len()));
        let at = buf.len();
        buf.resize(at + take, 0);
        t.mm.copy_in(base, &mut buf[at..])?;
    }
    Ok(buf)
}

/// Reads with `read` into a buffer the size of `iov` (at most CHUNK)
/// and scatters what it got over the pieces.
fn scatter(
    t: &Task,
    iov: &[(u64, usize)],
    read: impl FnOnce(&mut [u8]) -> SysResult<usize>,
) -> SysResult<u64> {
    let total: usize = iov.iter().map(|&(_, l)| l).sum::<usize>().min(CHUNK);
    let mut buf = vec![0u8; total];
    let n = read(&mut buf)?;
    let mut done = 0;
    for &(base, len) in iov {
        if done == n {
            break;
        }
        let take = len.min(n - done);
        t.mm.copy_out(base, &buf[done..done + take])?;
        done += take;
    }
    Ok(n as u64)
}

/// Implements writev(2): the pieces are gathered and written at once.
pub fn sys_writev(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let file = t.fds.get(fd_arg(a[0]))?;
    let iov = iovecs(t, a[1], a[2])?;
    let buf = gather(t, &iov)?;
    write_or_sigpipe(t, &file, &buf)
}

/// Implements readv(2).
pub fn sys_readv(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let file = t.fds.get(fd_arg(a[0]))?;
    let iov = iovecs(t, a[1], a[2])?;
    scatter(t, &iov, |buf| file.read(buf))
}

/// preadv2/pwritev2 flags: RWF_HIPRI, RWF_DSYNC, RWF_SYNC, RWF_NOWAIT,
/// RWF_APPEND.
const RWF_DSYNC: u64 = 0x2;
const RWF_SYNC: u64 = 0x4;
const RWF_NOWAIT: u64 = 0x8;
const RWF_APPEND: u64 = 0x10;
const RWF_ALL: u64 = 0x1f;

/// The offset of preadv/pwritev: on x86-64 the low word holds all of it.
fn vec_offset(low: u64) -> SysResult<u64> {
    if (low as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    Ok(low)
}

/// Implements preadv(2).
pub fn sys_preadv(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    sys_preadv2(t, [a[0], a[1], a[2], vec_offset(a[3])?, a[4], 0])
}

/// Implements pwritev(2).
pub fn sys_pwritev(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    sys_pwritev2(t, [a[0], a[1], a[2], vec_offset(a[3])?, a[4], 0])
}

/// Implements preadv2(2): at the offset, or with offset -1 at (and
/// advancing) the file offset as readv does. RWF_NOWAIT reads a pipe
/// without blocking; the other flags change nothing for a read.
pub fn sys_preadv2(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let flags = a[5];
    if flags & !RWF_ALL != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    let file = t.fds.get(fd_arg(a[0]))?;
    let iov = iovecs(t, a[1], a[2])?;
    let off = a[3] as i64;
    if off == -1 {
        return match file.ops.pipe() {
            Some(p) if flags & RWF_NOWAIT != 0 && file.readable() => {
                scatter(t, &iov, |buf| p.read_mode(buf, true))
            }
            _ => scatter(t, &iov, |buf| file.read(buf)),
        };
    }
    let off = vec_offset(off as u64)?;
    scatter(t, &iov, |buf| file.pread(buf, off))
}

/// Implements pwritev2(2): like preadv2, and RWF_APPEND writes at the end
/// of the file, RWF_SYNC/RWF_DSYNC write the data back before returning.
pub fn sys_pwritev2(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let flags = a[5];
    if flags & !RWF_ALL != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    let file = t.fds.get(fd_arg(a[0]))?;
    let iov = iovecs(t, a[1], a[2])?;
    let buf = gather(t, &iov)?;
    let off = a[3] as i64;
    let n = if off == -1 {
        write_or_sigpipe(t, &file, &buf)?
    } else if flags & RWF_APPEND != 0 {
        let end = file.ops.stat()?.size.max(0) as u64;
        file.pwrite(&buf, end)? as u64
    } else {
        file.pwrite(&buf, vec_offset(off as u64)?)? as u64
    };
    if flags & (RWF_SYNC | RWF_DSYNC) != 0 {
        file.ops.sync()?;
    }
    Ok(n)
}

/// Implements readahead(2): a hint. The sentry reads file pages when they
/// are touched, so there is nothing to start; what Linux checks is
/// checked (a readable descriptor of a regular file).
pub fn sys_readahead(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let file = t.fds.get(fd_arg(a[0]))?;
    if !file.readable() {
        return Err(Errno::EBADF);
    }
    if file.ops.stat()?.mode & S_IFMT != S_IFREG {
        return Err(Errno::EINVAL);
    }
    Ok(0)
}

/// Implements lseek(2).
pub fn sys_lseek(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let file = t.fds.get(fd_arg(a[0]))?;
    if !file.ops.seekable() {
        return Err(Errno::ESPIPE);
    }
    let mut off = file.offset.lock().unwrap();
    let delta = a[1] as i64;
    if let w @ (libc::SEEK_DATA | libc::SEEK_HOLE) = a[2] as i32 {
        if !file.ops.stat()?.is_reg() {
            // Directories and the sentry's own files have no data
            // extents to seek (Linux: EINVAL for them too).
            return Err(Errno::EINVAL);
        }
        let at = u64::try_from(delta).map_err(|_| Errno::ENXIO)?;
        let new = file.ops.seek_data(at, w == libc::SEEK_HOLE)?;
        *off = new;
        return Ok(new);
    }
    let base = match a[2] as i32 {
        libc::SEEK_SET => 0,
        libc::SEEK_CUR => *off as i64,
        libc::SEEK_END => {
            let st = file.ops.stat()?;
            if st.is_dir() {
                // tmpfs and overlayfs directories seek from the start
                // or the current entry only.
                return Err(Errno::EINVAL);
            }
            st.size
        }
        _ => return Err(Errno::EINVAL),
    };
    let new = base
        .checked_add(delta)
        .filter(|&n| n >= 0)
        .ok_or(Errno::EINVAL)?;
    *off = new as u64;
    Ok(new as u64)
}

fn copy_stat(t: &mut Task, addr: u64, st: &Stat) -> SysResult<u64> {
    t.mm.copy_out(addr, &st.to_bytes())?;
    Ok(0)
}

/// Implements fstat(2).
pub fn sys_fstat(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let st = t.fds.get(fd_arg(a[0]))?.ops.stat()?;
    copy_stat(t, a[1], &st)
}

/// Implements newfstatat(2).
pub fn sys_newfstatat(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let path = path_arg(t, a[1])?;
    let flags = a[3];
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | 0x800/* AT_NO_AUTOMOUNT */) != 0 {
        return Err(Errno::EINVAL);
    }
    let st = if path.is_empty() && flags & AT_EMPTY_PATH != 0 {
        let dirfd = fd_arg(a[0]);
        if dirfd == AT_FDCWD {
            t.fs.fresh_stat(&t.cwd)?
        } else {
            t.fds.get(dirfd)?.ops.stat()?
        }
    } else {
        let follow = if flags & AT_SYMLINK_NOFOLLOW != 0 {
            Follow::No
        } else {
            Follow::Yes
        };
        let node = lookup_at(t, fd_arg(a[0]), &path, follow)?;
        match node.synth {
            Some(Synth::Fd(n)) if follow == Follow::Yes => {
                t.fds.get(n).map_err(|_| Errno::ENOENT)?.ops.stat()?
            }
            _ => t.fs.fresh_stat(&node)?,
        }
    };
    copy_stat(t, a[2], &st)
}

/// Implements stat(2).
pub fn sys_stat(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    sys_newfstatat(t, [AT_FDCWD as u64, a[0], a[1], 0, 0, 0])
}

/// Implements lstat(2).
pub fn sys_lstat(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    sys_newfstatat(t, [AT_FDCWD as u64, a[0], a[1], AT_SYMLINK_NOFOLLOW, 0, 0])
}

/// Implements readlinkat(2).
pub fn sys_readlinkat(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    if (a[3] as i64) <= 0 {
        return Err(Errno::EINVAL);
    }
    let path = path_arg(t, a[1])?;
    let node = lookup_at(t, fd_arg(a[0]), &path, Follow::No)?;
    let target = match node.synth {
        Some(Synth::Fd(n)) => procfs::describe(&t.fs, &t.fds.get(n).map_err(|_| Errno::ENOENT)?)?,
        _ => t.fs.readlink(&node)?,
    };
    let n = target.len().min(a[3] as usize);
    t.mm.copy_out(a[2], &target[..n])?;
    Ok(n as u64)
}

/// Implements readlink(2).
pub fn sys_readlink(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    sys_readlinkat(t, [AT_FDCWD as u64, a[0], a[1], a[2], 0, 0])
}

/// Implements faccessat2(2) (AT_EACCESS, AT_SYMLINK_NOFOLLOW,
/// AT_EMPTY_PATH).
pub fn sys_faccessat2(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    const AT_EACCESS: u64 = 0x200;
    let (mode, flags) = (a[2] as u32, a[3]);
    if mode & !7 != 0 || flags & !(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = path_arg(t, a[1])?;
    let node = if path.is_empty() && flags & AT_EMPTY_PATH != 0 {
        match fd_arg(a[0]) {
            AT_FDCWD => t.cwd.clone(),
            fd => t.fds.get(fd)?.ops.node().cloned().ok_or(Errno::EACCES)?,
        }
    } else {
        let follow = if flags & AT_SYMLINK_NOFOLLOW != 0 {
            Follow::No
        } else {
            Follow::Yes
        };
        lookup_at(t, fd_arg(a[0]), &path, follow)?
    };
    if mode & 2 != 0 && node.synth.is_none() && !node.mount.writable() {
        return Err(Errno::EROFS);
    }
    // access(2) checks the real ids, not the effective ones (unless
    // AT_EACCESS); root's capabilities apply only to real root.
    let saved = t.creds;
    if flags & AT_EACCESS == 0 {
        t.creds.euid = t.creds.uid;
        t.creds.egid = t.creds.gid;
        if t.creds.uid != 0 {
            t.creds.cap_eff = 0;
        }
    }
    let ok = permitted(t, &node.current_stat(), mode);
    t.creds = saved;
    if ok {
        Ok(0)
    } else {
        Err(Errno::EACCES)
    }
}

/// Implements faccessat(2) (no flags argument).
pub fn sys_faccessat(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    sys_faccessat2(t, [a[0], a[1], a[2], 0, 0, 0])
}

/// Implements access(2).
pub fn sys_access(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    sys_faccessat2(t, [AT_FDCWD as u64, a[0], a[1], 0, 0, 0])
}

/// Implements getdents64(2): one `linux_dirent64` per entry, the file
/// offset being the index of the next entry.
pub fn sys_getdents64(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    getdents(t, a, true)
}

/// Implements getdents(2): the old `linux_dirent`, with d_type in its
/// last byte.
pub fn sys_getdents(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    getdents(t, a, false)
}

fn getdents(t: &mut Task, a: [u64; 6], wide: bool) -> SysResult<u64> {
    let file = t.fds.get(fd_arg(a[0]))?;
    let entries = file.ops.entries()?;
    let cap = (a[2] as usize).min(CHUNK);
    let mut off = file.offset.lock().unwrap();
    let mut out = Vec::new();
    let mut i = *off as usize;
    while let Some((ino, kind, name)) = entries.get(i) {
        // 64: ino, off, reclen, type, name, NUL; old: ino, off, reclen,
        // name, NUL, padding, type.
        let reclen = (19 + name.len() + 1 + usize::from(!wide)).div_ceil(8) * 8;
        if out.len() + reclen > cap {
            break;
        }
        let at = out.len();
        out.extend_from_slice(&ino.to_le_bytes());
        out.extend_from_slice(&((i + 1) as u64).to_le_bytes());
        out.extend_from_slice(&(reclen as u16).to_le_bytes());
        if wide {
            out.push(*kind);
        }
        out.extend_from_slice(name);
        out.resize(at + reclen, 0);
        if !wide {
            out[at + reclen - 1] = *kind;
        }
        i += 1;
    }
    if out.is_empty() && i < entries.len() {
        return Err(Errno::EINVAL);
    }
    t.mm.copy_out(a[1], &out)?;
    *off = i as u64;
    drop(off);
    if let Some(node) = file.ops.node().filter(|_| inotify::active()) {
        inotify::on_file(node, inotify::IN_ACCESS);
    }
    Ok(out.len() as u64)
}

/// Implements ioctl(2) for the requests stdio needs.
pub fn sys_ioctl(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let fd = fd_arg(a[0]);
    let file = t.fds.get(fd)?;
    if let Some(r) = super::tty::ioctl(t, &file, a[1], a[2]) {
        return r;
    }
    match a[1] {
        0x5401 => {
            // TCGETS
            let termios = file.ops.termios()?;
            t.mm.copy_out(a[2], &termios)?;
            Ok(0)
        }
        0x5413 => {
            // TIOCGWINSZ
            let ws = file.ops.winsize()?;
            t.mm.copy_out(a[2], &ws)?;
            Ok(0)
        }
        0x5451 | 0x5450 => {
            // FIOCLEX / FIONCLEX
            t.fds
                .set_flags(fd, if a[1] == 0x5451 { FD_CLOEXEC } else { 0 })?;
            Ok(0)
        }
        0x541b => {
            // FIONREAD
            let n = readable_bytes(&file)?;
            t.mm.write_u32(a[2], n.min(i32::MAX as u64) as u32)?;
            Ok(0)
        }
        0x5421 => {
            // FIONBIO
            let on = t.mm.read_u32(a[2])? != 0;
            let mut fl = file.flags.lock().unwrap();
            let bit = libc::O_NONBLOCK as u32;
            *fl = if on { *fl | bit } else { *fl & !bit };
            Ok(0)
        }
        _ => Err(Errno::ENOTTY),
    }
}

/// Bytes a read would find now (FIONREAD): a pipe's buffer, or a regular
/// file's size past the offset. Other files have no answer (ENOTTY), as
/// eventfd and friends on Linux.
fn readable_bytes(file: &OpenFile) -> SysResult<u64> {
    if let Some(p) = file.ops.pipe() {
        return Ok(p.available() as u64);
    }
    if let Some(s) = crate::sentry::vfs::socket::Socket::of(file) {
        return Ok(s.available() as u64);
    }
    if let Some(i) = file
        .ops
        .as_any()
        .and_then(|a| a.downcast_ref::<inotify::Inotify>())
    {
        return Ok(i.pending_bytes() as u64);
    }
    let st = file.ops.stat()?;
    if st.mode & S_IFMT != S_IFREG {
        return Err(Errno::ENOTTY);
    }
    let off = *file.offset.lock().unwrap();
    Ok((st.size.max(0) as u64).saturating_sub(off))
}

/// Implements fcntl(2) (descriptor and status flags, duplication).
pub fn sys_fcntl(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let fd = fd_arg(a[0]);
    let file = t.fds.get(fd)?;
    match a[1] as i32 {
        libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => {
            let flags = if a[1] as i32 == libc::F_DUPFD_CLOEXEC {
                FD_CLOEXEC
            } else {
                0
            };
            if a[2] >= t.nofile() as u64 {
                return Err(Errno::EINVAL);
            }
            Ok(t.fds.insert(file, flags, a[2] as usize, t.nofile())? as u64)
        }
        libc::F_GETFD => Ok(t.fds.flags(fd)? as u64),
        libc::F_SETFD => t.fds.set_flags(fd, a[2] as u32 & FD_CLOEXEC).map(|_| 0),
        libc::F_GETFL => Ok(*file.flags.lock().unwrap() as u64),
        libc::F_SETFL => {
            let settable = (libc::O_APPEND
                | libc::O_NONBLOCK
                | libc::O_ASYNC
                | libc::O_DIRECT
                | libc::O_NOATIME) as u32;
            let mut fl = file.flags.lock().unwrap();
            *fl = (*fl & !settable) | (a[2] as u32 & settable);
            Ok(0)
        }
        libc::F_GETLK | libc::F_SETLK | libc::F_SETLKW | 36..=38 => {
            super::lock::fcntl_lock(t, &file, a[1] as i32, a[2])
        }
        libc::F_ADD_SEALS | libc::F_GET_SEALS => {
            super::event::fcntl_seals(&file, a[1] as i32, a[2])
        }
        libc::F_GETPIPE_SZ => Ok(file.ops.pipe().ok_or(Errno::EBADF)?.capacity() as u64),
        libc::F_SETPIPE_SZ => {
            let pipe = file.ops.pipe().ok_or(Errno::EBADF)?;
            const CAP_SYS_RESOURCE: u32 = 24;
            let privileged = t.creds.has_cap(CAP_SYS_RESOURCE);
            Ok(pipe.set_capacity(a[2] as u32 as u64, privileged)? as u64)
        }
        // Linux commands not implemented here: signal-driven I/O owners
        // (F_SETOWN, F_GETOWN, F_SETSIG, F_GETSIG, F_*OWN_EX), leases,
        // dnotify, read/write hints. Logged once; EINVAL as for an unknown
        // command (there is no success to fake for them).
        // F_SETOWN 8, F_GETOWN 9, F_SETSIG 10, F_GETSIG 11, F_SETOWN_EX
        // 15, F_GETOWN_EX 16.
        cmd @ (8..=11
        | 15
        | 16
        | libc::F_SETLEASE
        | libc::F_GETLEASE
        | libc::F_NOTIFY
        | 1035..=1038) => Err(t.unimplemented_option("fcntl", cmd as u64)),
        _ => Err(Errno::EINVAL),
    }
}

/// Implements dup(2).
pub fn sys_dup(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let file = t.fds.get(fd_arg(a[0]))?;
    Ok(t.fds.insert(file, 0, 0, t.nofile())? as u64)
}

/// Implements dup3(2).
pub fn sys_dup3(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let (old, new) = (fd_arg(a[0]), fd_arg(a[1]));
    if old == new || a[2] & !(libc::O_CLOEXEC as u64) != 0 {
        return Err(Errno::EINVAL);
    }
    let file = t.fds.get(old)?;
    let newfd = usize::try_from(new)
        .ok()
        .filter(|&n| n < t.nofile())
        .ok_or(Errno::EBADF)?;
    let flags = if a[2] != 0 { FD_CLOEXEC } else { 0 };
    if let Some(old) = t.fds.set(newfd, file, flags) {
        // Replacing a descriptor closes it.
        super::lock::closed(t, &old);
    }
    Ok(new as u64)
}

/// Implements dup2(2).
pub fn sys_dup2(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    if a[0] == a[1] {
        t.fds.get(fd_arg(a[0]))?;
        return Ok(a[1]);
    }
    sys_dup3(t, [a[0], a[1], 0, 0, 0, 0])
}

/// Implements getcwd(2).
pub fn sys_getcwd(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let mut path = t.fs.path_of(&t.cwd);
    path.push(0);
    if path.len() > a[1] as usize {
        return Err(Errno::ERANGE);
    }
    t.mm.copy_out(a[0], &path)?;
    Ok(path.len() as u64)
}

/// Implements chdir(2).
pub fn sys_chdir(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let path = path_arg(t, a[0])?;
    let node = lookup_at(t, AT_FDCWD, &path, Follow::Yes)?;
    if !node.stat.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    if !permitted(t, &node.current_stat(), 1) {
        return Err(Errno::EACCES);
    }
    t.cwd = node;
    Ok(0)
}

/// Implements fchdir(2).
pub fn sys_fchdir(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    t.cwd = dir_of(t, fd_arg(a[0]))?;
    Ok(0)
}

/// Implements pipe2(2).
pub fn sys_pipe2(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let flags = a[1];
    if flags & !((libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_DIRECT) as u64) != 0 {
        return Err(Errno::EINVAL);
    }
    static NEXT_INO: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let ino = NEXT_INO.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (r, w) = new_pipe(ino, current_interrupted);
    let status = (flags as u32) & libc::O_NONBLOCK as u32;
    let fdflags = if flags & libc::O_CLOEXEC as u64 != 0 {
        FD_CLOEXEC
    } else {
        0
    };
    install_pair(
        t,
        a[0],
        |t| {
            t.fds.insert(
                OpenFile::new(r, status | libc::O_RDONLY as u32),
                fdflags,
                0,
                t.nofile(),
            )
        },
        |t| {
            t.fds.insert(
                OpenFile::new(w, status | libc::O_WRONLY as u32),
                fdflags,
                0,
                t.nofile(),
            )
        },
    )
}

/// Installs two descriptors (pipe2, socketpair) and writes them as an
/// int[2] to `addr`; on failure neither stays installed.
pub(super) fn install_pair(
    t: &Task,
    addr: u64,
    first: impl FnOnce(&Task) -> SysResult<i32>,
    second: impl FnOnce(&Task) -> SysResult<i32>,
) -> SysResult<u64> {
    let x = first(t)?;
    let y = match second(t) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = t.fds.remove(x);
            return Err(e);
        }
    };
    let mut pair = [0u8; 8];
    pair[..4].copy_from_slice(&x.to_le_bytes());
    pair[4..].copy_from_slice(&y.to_le_bytes());
    if let Err(e) = t.mm.copy_out(addr, &pair) {
        let _ = t.fds.remove(x);
        let _ = t.fds.remove(y);
        return Err(e);
    }
    Ok(0)
}

/// Implements pipe(2).
pub fn sys_pipe(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    sys_pipe2(t, [a[0], 0, 0, 0, 0, 0])
}

/// Resolves the target of a stat-like call: `path` relative to `dirfd`,
/// or with AT_EMPTY_PATH and an empty path, `dirfd` itself.
fn stat_target(t: &mut Task, dirfd: i32, path: &[u8], flags: u64) -> SysResult<Stat> {
    if path.is_empty() {
        if flags & AT_EMPTY_PATH == 0 {
            return Err(Errno::ENOENT);
        }
        return if dirfd == AT_FDCWD {
            t.fs.fresh_stat(&t.cwd)
        } else {
            t.fds.get(dirfd)?.ops.stat()
        };
    }
    let follow = if flags & AT_SYMLINK_NOFOLLOW != 0 {
        Follow::No
    } else {
        Follow::Yes
    };
    let node = lookup_at(t, dirfd, path, follow)?;
    match node.synth {
        Some(Synth::Fd(n)) if follow == Follow::Yes => {
            t.fds.get(n).map_err(|_| Errno::ENOENT)?.ops.stat()
        }
        _ => t.fs.fresh_stat(&node),
    }
}

/// Implements statx(2) (all basic fields; no birth time).
pub fn sys_statx(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let flags = a[2];
    const KNOWN: u64 =
        AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | 0x800 /* AT_NO_AUTOMOUNT */ | SYNC_TYPE;
    const SYNC_TYPE: u64 = 0x6000;
    const STATX_RESERVED: u64 = 0x8000_0000;
    // Both sync kinds at once, or the mask bit reserved for growing the
    // struct: EINVAL, as Linux.
    if flags & !KNOWN != 0 || flags & SYNC_TYPE == SYNC_TYPE || a[3] & STATX_RESERVED != 0 {
        return Err(Errno::EINVAL);
    }
    let path = path_arg(t, a[1])?;
    let st = stat_target(t, fd_arg(a[0]), &path, flags)?;
    t.mm.copy_out(a[4], &st.to_statx())?;
    Ok(0)
}

fn statfs_bytes(s: &crate::gofer::Statfs, flags: u64) -> [u8; 120] {
    let mut b = [0u8; 120];
    let vals = [
        s.kind, s.bsize, s.blocks, s.bfree, s.bavail, s.files, s.ffree, 0, s.namelen, s.bsize,
        flags,
    ];
    for (i, v) in vals.iter().enumerate() {
        b[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
    }
    b
}

/// Implements statfs(2): the statistics of the mount the path is on.
pub fn sys_statfs(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let path = path_arg(t, a[0])?;
    let node = lookup_at(t, AT_FDCWD, &path, Follow::Yes)?;
    let (s, flags) = t.fs.statfs(&node)?;
    t.mm.copy_out(a[1], &statfs_bytes(&s, flags)).map(|_| 0)
}

/// Implements fstatfs(2).
pub fn sys_fstatfs(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let file = t.fds.get(fd_arg(a[0]))?;
    let (s, flags) = match file.ops.node() {
        Some(node) => t.fs.statfs(node)?,
        // Pipes and stdio live in pseudo file systems.
        None => (
            crate::gofer::Statfs {
                kind: 0x5049_5045,
                bsize: 4096,
                namelen: 255,
                ..Default::default()
            },
            0,
        ),
    };
    t.mm.copy_out(a[1], &statfs_bytes(&s, flags)).map(|_| 0)
}

/// Implements fadvise64(2): checks the arguments; the advice itself only
/// tunes caching, which the gofer's host kernel does on its own.
pub fn sys_fadvise64(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let file = t.fds.get(fd_arg(a[0]))?;
    if file.ops.pipe().is_some() {
        return Err(Errno::ESPIPE);
    }
    if a[3] > 5 || (a[2] as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    Ok(0)
}

/// Implements creat(2).
pub fn sys_creat(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let flags = (libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as u64;
    sys_openat(t, [AT_FDCWD as u64, a[0], flags, a[1], 0, 0])
}

/// Implements sendfile(2): copies through the sentry, chunk by chunk
/// (the loop copy_file_range shares), until either end comes up short.
pub fn sys_sendfile(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let out = t.fds.get(fd_arg(a[0]))?;
    let input = t.fds.get(fd_arg(a[1]))?;
    if !input.readable() || !out.writable() {
        return Err(Errno::EBADF);
    }
    if *out.flags.lock().unwrap() & libc::O_APPEND as u32 != 0 {
        return Err(Errno::EINVAL);
    }
    let count = a[3].min(super::splice::MAX_RW_COUNT);
    let mut from = super::splice::at(super::splice::read_pos(t, a[2])?);
    let r = super::splice::transfer(t, &input, &mut from, &out, &mut At::Offset, count);
    super::splice::write_pos(t, a[2], from)?;
    r
}

/// Implements close_range(2). The descriptor table is never shared
/// between processes here, so CLOSE_RANGE_UNSHARE has nothing to do.
pub fn sys_close_range(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    const UNSHARE: u64 = 2;
    const CLOEXEC: u64 = 4;
    let (first, last, flags) = (a[0] as u32, a[1] as u32, a[2]);
    if flags & !(UNSHARE | CLOEXEC) != 0 || first > last {
        return Err(Errno::EINVAL);
    }
    let closed = t
        .fds
        .close_range(first as usize, last as usize, flags & CLOEXEC != 0);
    for file in closed {
        super::lock::closed(t, &file);
    }
    Ok(0)
}
