//! flock(2) and fcntl(2) record locks (F_GETLK, F_SETLK, F_SETLKW and the
//! OFD forms). The lock table is `vfs/locks.rs`; here the arguments are
//! decoded and the owner chosen: the process for POSIX locks, the open
//! file description for flock and OFD locks.

use std::sync::Arc;

use crate::abi::{Errno, SysResult};
use crate::sentry::kernel::signal::current_interrupted;
use crate::sentry::kernel::Task;
use crate::sentry::vfs::locks::{self, FileKey, Kind, Owner, Request, TO_EOF};
use crate::sentry::vfs::OpenFile;

const LOCK_SH: u64 = 1;
const LOCK_EX: u64 = 2;
const LOCK_NB: u64 = 4;
const LOCK_UN: u64 = 8;
const F_OFD_GETLK: i32 = 36;
const F_OFD_SETLK: i32 = 37;
const F_OFD_SETLKW: i32 = 38;

/// The lock table's key for a file.
fn key(file: &OpenFile) -> SysResult<FileKey> {
    let st = file.ops.stat()?;
    Ok((st.dev, st.ino))
}

/// The owner of the calling process's POSIX locks.
fn process_owner(t: &Task) -> usize {
    Arc::as_ptr(&t.control.group) as usize
}

fn description(file: &Arc<OpenFile>) -> usize {
    Arc::as_ptr(file) as usize
}

/// Implements flock(2).
pub fn sys_flock(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    const LOCK_MAND: u64 = 32;
    let op = a[1] as u32 as u64;
    if op & LOCK_MAND != 0 {
        // Linux has ignored LOCK_MAND requests since 5.15 (they never
        // locked anything), before it even looks at the descriptor.
        return Ok(0);
    }
    let file = t.fds.get(a[0] as i32)?;
    let mode = match op & !LOCK_NB {
        LOCK_SH => Some(false),
        LOCK_EX => Some(true),
        LOCK_UN => None,
        _ => return Err(Errno::EINVAL),
    };
    let desc = description(&file);
    file.locked.store(true, std::sync::atomic::Ordering::SeqCst);
    let wait = op & LOCK_NB == 0;
    locks::flock(key(&file)?, desc, mode, wait, &current_interrupted).map(|_| 0)
}

/// A decoded `struct flock`: type, whence, start, len, pid.
struct Flock {
    kind: i16,
    whence: i16,
    start: i64,
    len: i64,
    pid: i32,
}

fn read_flock(t: &mut Task, addr: u64) -> SysResult<Flock> {
    let mut b = [0u8; 32];
    t.mm.copy_in(addr, &mut b)?;
    Ok(Flock {
        kind: i16::from_le_bytes([b[0], b[1]]),
        whence: i16::from_le_bytes([b[2], b[3]]),
        start: i64::from_le_bytes(b[8..16].try_into().unwrap()),
        len: i64::from_le_bytes(b[16..24].try_into().unwrap()),
        pid: i32::from_le_bytes(b[24..28].try_into().unwrap()),
    })
}

fn write_flock(t: &mut Task, addr: u64, f: &Flock) -> SysResult<()> {
    let mut b = [0u8; 32];
    b[0..2].copy_from_slice(&f.kind.to_le_bytes());
    b[2..4].copy_from_slice(&f.whence.to_le_bytes());
    b[8..16].copy_from_slice(&f.start.to_le_bytes());
    b[16..24].copy_from_slice(&f.len.to_le_bytes());
    b[24..28].copy_from_slice(&f.pid.to_le_bytes());
    t.mm.copy_out(addr, &b)
}

/// The byte range `start..=end` a `struct flock` names.
fn range(file: &OpenFile, f: &Flock) -> SysResult<(u64, u64)> {
    let base = match f.whence as i32 {
        libc::SEEK_SET => 0,
        libc::SEEK_CUR => *file.offset.lock().unwrap() as i64,
        libc::SEEK_END => file.ops.stat()?.size,
        _ => return Err(Errno::EINVAL),
    };
    let start = base.checked_add(f.start).ok_or(Errno::EOVERFLOW)?;
    if f.len == 0 {
        return if start < 0 {
            Err(Errno::EINVAL)
        } else {
            Ok((start as u64, TO_EOF))
        };
    }
    let (start, end) = if f.len > 0 {
        let end = start.checked_add(f.len - 1).ok_or(Errno::EOVERFLOW)?;
        (start, end)
    } else {
        (start.checked_add(f.len).ok_or(Errno::EINVAL)?, start - 1)
    };
    if start < 0 || end < start {
        return Err(Errno::EINVAL);
    }
    Ok((start as u64, end as u64))
}

/// fcntl(2) F_GETLK, F_SETLK, F_SETLKW and F_OFD_GETLK/SETLK/SETLKW.
pub(super) fn fcntl_lock(t: &mut Task, file: &Arc<OpenFile>, cmd: i32, arg: u64) -> SysResult<u64> {
    let mut f = read_flock(t, arg)?;
    let ofd = matches!(cmd, F_OFD_GETLK | F_OFD_SETLK | F_OFD_SETLKW);
    if ofd && f.pid != 0 {
        return Err(Errno::EINVAL);
    }
    let kind = match f.kind as i32 {
        libc::F_RDLCK => Some(Kind::Read),
        libc::F_WRLCK => Some(Kind::Write),
        libc::F_UNLCK => None,
        _ => return Err(Errno::EINVAL),
    };
    let (start, end) = range(file, &f)?;
    let owner = if ofd {
        file.locked.store(true, std::sync::atomic::Ordering::SeqCst);
        Owner::Description(description(file))
    } else {
        Owner::Process(process_owner(t))
    };
    let req = Request {
        owner,
        pid: t.pid,
        kind,
        start,
        end,
    };
    let key = key(file)?;
    if matches!(cmd, libc::F_GETLK | F_OFD_GETLK) {
        if kind.is_none() {
            return Err(Errno::EINVAL);
        }
        match locks::get_record(key, req) {
            None => f.kind = libc::F_UNLCK as i16,
            Some(l) => {
                f.kind = match l.kind {
                    Kind::Read => libc::F_RDLCK as i16,
                    Kind::Write => libc::F_WRLCK as i16,
                };
                f.whence = libc::SEEK_SET as i16;
                f.start = l.start as i64;
                f.len = if l.end == TO_EOF {
                    0
                } else {
                    (l.end - l.start + 1) as i64
                };
                f.pid = match l.owner {
                    Owner::Process(_) => l.pid,
                    Owner::Description(_) => -1,
                };
            }
        }
        write_flock(t, arg, &f)?;
        return Ok(0);
    }
    match kind {
        Some(Kind::Read) if !file.readable() => return Err(Errno::EBADF),
        Some(Kind::Write) if !file.writable() => return Err(Errno::EBADF),
        _ => {}
    }
    let wait = matches!(cmd, libc::F_SETLKW | F_OFD_SETLKW);
    locks::set_record(key, req, wait, &current_interrupted).map(|_| 0)
}

/// The process closed a descriptor of `file`: its POSIX locks on the file
/// go (however many other descriptors it still has).
pub fn closed(t: &Task, file: &OpenFile) {
    if let Ok(key) = key(file) {
        locks::release_process_file(key, process_owner(t));
    }
}

/// The process is ending: all its POSIX locks go.
pub fn process_exit(t: &Task) {
    locks::release_process(process_owner(t));
}
