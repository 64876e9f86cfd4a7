//! splice(2), tee(2), vmsplice(2), copy_file_range(2), and the copy loop
//! they share with sendfile(2).
//!
//! Linux moves pipe buffers by reference; here the bytes go through a
//! sentry buffer of at most one chunk, which the guest cannot tell apart:
//! a splice into a pipe takes only what fits (after waiting for room, as
//! Linux does), and a splice out of a pipe looks at the data first and
//! takes out of the pipe only what the other end accepted.

use super::file::{fd_arg, iovecs, sigpipe, write_or_sigpipe, CHUNK};
use crate::abi::types::S_IFMT;
use crate::abi::{Errno, SysResult};
use crate::sentry::kernel::Task;
use crate::sentry::vfs::pipe::PipeEnd;
use crate::sentry::vfs::OpenFile;

/// The most one read or write moves (Linux's MAX_RW_COUNT).
pub const MAX_RW_COUNT: u64 = 0x7fff_f000;

const SPLICE_F_NONBLOCK: u64 = 2;
/// SPLICE_F_MOVE | SPLICE_F_NONBLOCK | SPLICE_F_MORE | SPLICE_F_GIFT.
const SPLICE_F_ALL: u64 = 0xf;

/// Where a copy reads or writes a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum At {
    /// At the file offset, which advances (read(2), write(2)).
    Offset,
    /// At this position, which advances; the file offset stays.
    Pos(u64),
}

/// Copies up to `len` bytes from `input` to `out`, a chunk at a time,
/// until either end comes up short (end of file, a full pipe). Returns
/// the bytes copied; an error only when nothing was.
pub(super) fn transfer(
    t: &mut Task,
    input: &OpenFile,
    from: &mut At,
    out: &OpenFile,
    to: &mut At,
    len: u64,
) -> SysResult<u64> {
    let mut buf = vec![0u8; (len as usize).min(CHUNK)];
    let mut done = 0u64;
    while done < len {
        let want = ((len - done) as usize).min(CHUNK);
        let step = copy_once(input, from, &mut buf[..want], |b| put(t, out, to, b));
        match step {
            Ok(n) => {
                done += n as u64;
                if n < want {
                    break;
                }
            }
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(done)
}

/// Reads up to `buf.len()` bytes of `input` at `from`, hands them to
/// `sink`, and advances `from` by what the sink took: a seekable input
/// is read without moving its offset first, so bytes the sink refused
/// are read again next time.
fn copy_once(
    input: &OpenFile,
    from: &mut At,
    buf: &mut [u8],
    sink: impl FnOnce(&[u8]) -> SysResult<usize>,
) -> SysResult<usize> {
    let seekable = input.ops.seekable();
    let n = match *from {
        At::Pos(p) => input.pread(buf, p)?,
        At::Offset if seekable => {
            let off = *input.offset.lock().unwrap();
            input.pread(buf, off)?
        }
        At::Offset => input.read(buf)?,
    };
    if n == 0 {
        return Ok(0);
    }
    let w = sink(&buf[..n])?;
    match from {
        At::Pos(p) => *p += w as u64,
        At::Offset if seekable => *input.offset.lock().unwrap() += w as u64,
        At::Offset => {}
    }
    Ok(w)
}

/// Writes `buf` to `out` at `to`, advancing it.
fn put(t: &mut Task, out: &OpenFile, to: &mut At, buf: &[u8]) -> SysResult<usize> {
    match to {
        At::Offset => Ok(write_or_sigpipe(t, out, buf)? as usize),
        At::Pos(p) => {
            let n = out.pwrite(buf, *p)?;
            *p += n as u64;
            Ok(n)
        }
    }
}

/// The position a user `loff_t *` names: None for NULL (the file offset).
pub(super) fn read_pos(t: &mut Task, addr: u64) -> SysResult<Option<u64>> {
    if addr == 0 {
        return Ok(None);
    }
    let v = t.mm.read_u64(addr)?;
    if (v as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    Ok(Some(v))
}

pub(super) fn at(pos: Option<u64>) -> At {
    pos.map_or(At::Offset, At::Pos)
}

/// Stores the advanced position back where the guest gave it.
pub(super) fn write_pos(t: &mut Task, addr: u64, at: At) -> SysResult<()> {
    match at {
        At::Pos(p) if addr != 0 => t.mm.write_u64(addr, p),
        _ => Ok(()),
    }
}

/// EPIPE from a pipe without readers also raises SIGPIPE.
fn pipe_err(t: &mut Task, e: Errno) -> Errno {
    if e == Errno::EPIPE {
        sigpipe(t)
    } else {
        e
    }
}

/// Implements splice(2).
pub fn sys_splice(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let (len, flags) = (a[4].min(MAX_RW_COUNT), a[5]);
    if len == 0 {
        return Ok(0);
    }
    if flags & !SPLICE_F_ALL != 0 {
        return Err(Errno::EINVAL);
    }
    let input = t.fds.get(fd_arg(a[0]))?;
    let out = t.fds.get(fd_arg(a[2]))?;
    let (ip, op) = (input.ops.pipe(), out.ops.pipe());
    if (ip.is_some() && a[1] != 0) || (op.is_some() && a[3] != 0) {
        return Err(Errno::ESPIPE);
    }
    if !input.readable() || !out.writable() {
        return Err(Errno::EBADF);
    }
    let nb = flags & SPLICE_F_NONBLOCK != 0;
    match (ip, op) {
        (Some(ip), Some(op)) => {
            if ip.same_pipe(op) {
                return Err(Errno::EINVAL);
            }
            let nb = nb || input.nonblocking() || out.nonblocking();
            pipe_to_pipe(t, ip, op, len, nb, true)
        }
        (None, Some(op)) => {
            let mut from = at(read_pos(t, a[1])?);
            if from != At::Offset && !input.ops.seekable() {
                return Err(Errno::EINVAL);
            }
            let nb = nb || out.nonblocking();
            let n = file_to_pipe(t, &input, &mut from, op, len, nb)?;
            write_pos(t, a[1], from)?;
            Ok(n)
        }
        (Some(ip), None) => {
            if *out.flags.lock().unwrap() & libc::O_APPEND as u32 != 0 {
                return Err(Errno::EINVAL);
            }
            let mut to = at(read_pos(t, a[3])?);
            if to != At::Offset && !out.ops.seekable() {
                return Err(Errno::EINVAL);
            }
            let nb = nb || input.nonblocking();
            let n = pipe_to_file(t, ip, &out, &mut to, len, nb)?;
            write_pos(t, a[3], to)?;
            Ok(n)
        }
        (None, None) => Err(Errno::EINVAL),
    }
}

/// A file's bytes into a pipe: as many as fit once it has room.
fn file_to_pipe(
    t: &mut Task,
    input: &OpenFile,
    from: &mut At,
    op: &PipeEnd,
    len: u64,
    nb: bool,
) -> SysResult<u64> {
    let room = op.wait_room(nb).map_err(|e| pipe_err(t, e))?;
    let mut buf = vec![0u8; (len as usize).min(room).min(CHUNK)];
    let n =
        copy_once(input, from, &mut buf, |b| op.write_mode(b, true)).map_err(|e| pipe_err(t, e))?;
    Ok(n as u64)
}

/// A pipe's bytes into a file: what the pipe holds, up to `len`, once it
/// holds any.
fn pipe_to_file(
    t: &mut Task,
    ip: &PipeEnd,
    out: &OpenFile,
    to: &mut At,
    len: u64,
    nb: bool,
) -> SysResult<u64> {
    let mut buf = vec![0u8; (len as usize).min(CHUNK)];
    let n = ip.peek_mode(&mut buf, nb)?;
    if n == 0 {
        return Ok(0);
    }
    let w = put(t, out, to, &buf[..n])?;
    ip.consume(w);
    Ok(w as u64)
}

/// From one pipe into another: what the first holds and the second has
/// room for. `take` false leaves the bytes in the first (tee).
fn pipe_to_pipe(
    t: &mut Task,
    ip: &PipeEnd,
    op: &PipeEnd,
    len: u64,
    nb: bool,
    take: bool,
) -> SysResult<u64> {
    let mut buf = vec![0u8; (len as usize).min(CHUNK)];
    let n = ip.peek_mode(&mut buf, nb)?;
    if n == 0 {
        return Ok(0);
    }
    let room = op.wait_room(nb).map_err(|e| pipe_err(t, e))?;
    let w = op
        .write_mode(&buf[..n.min(room)], true)
        .map_err(|e| pipe_err(t, e))?;
    if take {
        ip.consume(w);
    }
    Ok(w as u64)
}

/// Implements tee(2): copies between two pipes without consuming.
pub fn sys_tee(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let (len, flags) = (a[2].min(MAX_RW_COUNT), a[3]);
    if flags & !SPLICE_F_ALL != 0 {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Ok(0);
    }
    let input = t.fds.get(fd_arg(a[0]))?;
    let out = t.fds.get(fd_arg(a[1]))?;
    if !input.readable() || !out.writable() {
        return Err(Errno::EBADF);
    }
    match (input.ops.pipe(), out.ops.pipe()) {
        (Some(ip), Some(op)) if !ip.same_pipe(op) => {
            let nb = flags & SPLICE_F_NONBLOCK != 0 || input.nonblocking() || out.nonblocking();
            pipe_to_pipe(t, ip, op, len, nb, false)
        }
        _ => Err(Errno::EINVAL),
    }
}

/// Implements vmsplice(2): guest memory into a pipe's write end (what
/// fits once it has room), or a pipe's read end into guest memory.
pub fn sys_vmsplice(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    if a[3] & !SPLICE_F_ALL != 0 {
        return Err(Errno::EINVAL);
    }
    let file = t.fds.get(fd_arg(a[0]))?;
    let pipe = file.ops.pipe().ok_or(Errno::EBADF)?;
    let iov = iovecs(t, a[1], a[2])?;
    let total = iov.iter().map(|&(_, l)| l).sum::<usize>().min(CHUNK);
    let nb = a[3] & SPLICE_F_NONBLOCK != 0 || file.nonblocking();
    if file.writable() {
        if total == 0 {
            return Ok(0);
        }
        let room = pipe.wait_room(nb).map_err(|e| pipe_err(t, e))?;
        let mut buf = vec![];
        for (base, len) in iov {
            let take = len.min(total.min(room) - buf.len());
            let at = buf.len();
            buf.resize(at + take, 0);
            t.mm.copy_in(base, &mut buf[at..])?;
        }
        let n = pipe.write_mode(&buf, true).map_err(|e| pipe_err(t, e))?;
        return Ok(n as u64);
    }
    if !file.readable() {
        return Err(Errno::EBADF);
    }
    let mut buf = vec![0u8; total];
    let n = pipe.read_mode(&mut buf, nb)?;
    let mut done = 0;
    for (base, len) in iov {
        let take = len.min(n - done);
        t.mm.copy_out(base, &buf[done..done + take])?;
        done += take;
    }
    Ok(n as u64)
}

/// Implements copy_file_range(2) between regular files, with the checks
/// of current kernels in their order: no flags; no directories (EISDIR)
/// or other non-regular files (EINVAL); no O_APPEND output (EBADF); one
/// file system (EXDEV); positions that do not wrap (EOVERFLOW); no
/// overlap within one file (EINVAL). The copy stops at the input's end.
pub fn sys_copy_file_range(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    if a[5] != 0 {
        return Err(Errno::EINVAL);
    }
    let input = t.fds.get(fd_arg(a[0]))?;
    let out = t.fds.get(fd_arg(a[2]))?;
    let raw_pos = |t: &mut Task, addr: u64, file: &OpenFile| match addr {
        0 => Ok(*file.offset.lock().unwrap()),
        _ => t.mm.read_u64(addr),
    };
    let pin = raw_pos(t, a[1], &input)?;
    let pout = raw_pos(t, a[3], &out)?;
    let (si, so) = (input.ops.stat()?, out.ops.stat()?);
    if si.is_dir() || so.is_dir() {
        return Err(Errno::EISDIR);
    }
    let regular = |m: u32| m & S_IFMT == crate::abi::types::S_IFREG;
    if !regular(si.mode) || !regular(so.mode) {
        return Err(Errno::EINVAL);
    }
    let append = *out.flags.lock().unwrap() & libc::O_APPEND as u32 != 0;
    if !input.readable() || !out.writable() || append {
        return Err(Errno::EBADF);
    }
    if si.dev != so.dev {
        return Err(Errno::EXDEV);
    }
    let len = a[4];
    if pin.checked_add(len).is_none() || pout.checked_add(len).is_none() {
        return Err(Errno::EOVERFLOW);
    }
    let size_in = si.size.max(0);
    let count = if pin as i64 >= size_in {
        0
    } else {
        len.min(size_in.wrapping_sub(pin as i64) as u64)
    };
    if pout == i64::MAX as u64 {
        return Err(Errno::EFBIG);
    }
    let count = count.min(i64::MAX as u64 - pout).min(MAX_RW_COUNT);
    let same = (si.dev, si.ino) == (so.dev, so.ino);
    if same && pout.wrapping_add(count) > pin && pout < pin.wrapping_add(count) {
        return Err(Errno::EINVAL);
    }
    if (pin as i64) < 0 || (pout as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    if count == 0 {
        return Ok(0);
    }
    let (mut from, mut to) = (At::Pos(pin), At::Pos(pout));
    let n = transfer(t, &input, &mut from, &out, &mut to, count)?;
    for (addr, file, at) in [(a[1], &input, from), (a[3], &out, to)] {
        match at {
            At::Pos(p) if addr != 0 => t.mm.write_u64(addr, p)?,
            At::Pos(p) => *file.offset.lock().unwrap() = p,
            At::Offset => {}
        }
    }
    Ok(n)
}
