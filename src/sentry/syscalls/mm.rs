//! Memory syscalls: mmap, munmap, mprotect, brk, madvise, mincore,
//! mremap, msync.

use std::sync::Arc;

use crate::abi::{Errno, SysResult};
use crate::sentry::kernel::Task;
use crate::sentry::mm::memory::{page_up, PAGE_SIZE};
use crate::sentry::mm::{Backing, MapName, MapRequest, Placement, SharedObject, USER_TOP};
use crate::sentry::platform::Prot;

const MAP_SHARED: u64 = 0x01;
const MAP_PRIVATE: u64 = 0x02;
const MAP_SHARED_VALIDATE: u64 = 0x03;
const MAP_TYPE: u64 = 0x0f;
const MAP_FIXED: u64 = 0x10;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_GROWSDOWN: u64 = 0x100;
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;

/// Implements mmap(2). MAP_SHARED|MAP_ANONYMOUS makes a new shared
/// object; a file mapping maps the file's own pages (tmpfs, memfd) or its
/// page cache (image and bind files): as they are for MAP_SHARED,
/// copy-on-write for MAP_PRIVATE.
pub fn sys_mmap(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let [addr, len, prot, flags, fd, off] = a;
    let kind = flags & MAP_TYPE;
    if len == 0
        || off % PAGE_SIZE != 0
        || !matches!(kind, MAP_SHARED | MAP_PRIVATE | MAP_SHARED_VALIDATE)
    {
        return Err(Errno::EINVAL);
    }
    let len = page_up(len)
        .filter(|&l| l <= USER_TOP)
        .ok_or(Errno::ENOMEM)?;
    let prot = Prot::from_bits(prot);
    let shared = kind != MAP_PRIVATE;
    let anon = flags & MAP_ANONYMOUS != 0;
    // Linux refuses a grows-down shared memory segment; a grows-down file
    // mapping is mapped but never grows here.
    let grows_down = flags & MAP_GROWSDOWN != 0 && anon;
    if grows_down && shared {
        return Err(Errno::EINVAL);
    }
    let (backing, may_write) = if !anon {
        file_backing(t, fd as i32, off, prot, shared)?
    } else if shared {
        let object = SharedObject::new(t.k.memory.clone(), len);
        (Backing::Shared { object, offset: 0 }, true)
    } else {
        (Backing::Anon, true)
    };
    let name = if !anon {
        map_name(t, fd as i32)
    } else if shared {
        // Linux backs a shared anonymous mapping with a deleted /dev/zero.
        Some(Arc::new(MapName {
            path: b"/dev/zero (deleted)".to_vec(),
            ..Default::default()
        }))
    } else {
        None
    };
    let placement = if flags & MAP_FIXED != 0 {
        Placement::Fixed(addr)
    } else if flags & MAP_FIXED_NOREPLACE != 0 {
        Placement::FixedNoReplace(addr)
    } else {
        Placement::Hint(addr)
    };
    if !matches!(placement, Placement::Hint(_)) && addr % PAGE_SIZE != 0 {
        return Err(Errno::EINVAL);
    }
    t.mm.lock().mmap(MapRequest {
        placement,
        len,
        prot,
        backing,
        may_write,
        grows_down,
        name,
    })
}

/// What /proc/[pid]/maps names a mapping of file `fd` by: its path as
/// the caller's container sees it (or its /proc fd text: "/memfd:x
/// (deleted)"), device and inode.
fn map_name(t: &Task, fd: i32) -> Option<Arc<MapName>> {
    let file = t.fds.get(fd).ok()?;
    let st = file.ops.stat().ok()?;
    let path = match file.ops.node() {
        Some(node) => t.fs.path_of(node),
        None => file.ops.fd_target()?,
    };
    Some(Arc::new(MapName {
        path,
        dev: st.dev,
        ino: st.ino,
    }))
}

/// The backing of a mapping of file `fd` at `off`, and whether it may be
/// made writable.
fn file_backing(
    t: &Task,
    fd: i32,
    off: u64,
    prot: Prot,
    shared: bool,
) -> SysResult<(Backing, bool)> {
    let file = t.fds.get(fd)?;
    // Offsets stay within off_t, however far the mapping grows.
    if off
        .checked_add(USER_TOP)
        .is_none_or(|e| e > i64::MAX as u64)
    {
        return Err(Errno::EOVERFLOW);
    }
    let sealed =
        crate::sentry::vfs::memfd::MemFd::of(file.ops.as_ref()).is_some_and(|m| m.write_sealed());
    let may_write = !shared || (file.writable() && !sealed);
    if shared && sealed && prot.write {
        return Err(Errno::EPERM);
    }
    if !file.readable() || (prot.write && !may_write) {
        return Err(Errno::EACCES);
    }
    let object = file
        .ops
        .page_cache(&t.k.memory, file.writable())
        .ok_or(Errno::ENODEV)?;
    let backing = if shared {
        Backing::Shared {
            object,
            offset: off,
        }
    } else {
        Backing::File {
            object,
            offset: off,
            zero_from: None,
        }
    };
    Ok((backing, may_write))
}

fn range(addr: u64, len: u64) -> SysResult<(u64, u64)> {
    if addr % PAGE_SIZE != 0 {
        return Err(Errno::EINVAL);
    }
    let len = page_up(len).ok_or(Errno::EINVAL)?;
    if addr.checked_add(len).is_none_or(|e| e > USER_TOP) {
        return Err(Errno::EINVAL);
    }
    Ok((addr, len))
}

/// Implements munmap(2).
pub fn sys_munmap(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let (addr, len) = range(a[0], a[1])?;
    if len == 0 {
        return Err(Errno::EINVAL);
    }
    t.mm.lock().unmap(addr, len).map(|_| 0)
}

/// Implements mprotect(2).
pub fn sys_mprotect(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let (addr, len) = range(a[0], a[1])?;
    if a[2] & !(libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC) as u64 != 0 {
        return Err(Errno::EINVAL);
    }
    t.mm.lock()
        .protect(addr, len, Prot::from_bits(a[2]))
        .map(|_| 0)
}

/// Implements brk(2).
pub fn sys_brk(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    Ok(t.mm.lock().set_brk(a[0]))
}

/// Implements madvise(2). DONTNEED and FREE really drop the pages (they
/// read back as zeros, as the file's data for private file mappings, or
/// as they were for shared ones, whose data stays); the other advice only
/// tunes caching that this sentry does not do.
pub fn sys_madvise(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let (addr, len) = range(a[0], a[1])?;
    match a[2] as i32 {
        libc::MADV_DONTNEED => {
            t.mm.lock().discard(addr, len);
            Ok(0)
        }
        libc::MADV_FREE => t.mm.lock().free(addr, len).map(|_| 0),
        libc::MADV_NORMAL
        | libc::MADV_RANDOM
        | libc::MADV_SEQUENTIAL
        | libc::MADV_WILLNEED
        | libc::MADV_HUGEPAGE
        | libc::MADV_NOHUGEPAGE
        | libc::MADV_DONTDUMP
        | libc::MADV_DODUMP
        | libc::MADV_DONTFORK
        | libc::MADV_DOFORK => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

/// Implements mincore(2): one byte per page, 1 when the page has a frame
/// (for a shared mapping: when its object has the page).
pub fn sys_mincore(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    if a[0] % PAGE_SIZE != 0 {
        return Err(Errno::EINVAL);
    }
    let len = page_up(a[1]).ok_or(Errno::ENOMEM)?;
    let pages = (len / PAGE_SIZE) as usize;
    if pages > 1 << 24 {
        return Err(Errno::ENOMEM);
    }
    let mut vec = vec![0u8; pages];
    let mm = t.mm.lock();
    for (i, b) in vec.iter_mut().enumerate() {
        let addr = a[0] + i as u64 * PAGE_SIZE;
        mm.vma_at(addr).ok_or(Errno::ENOMEM)?;
        *b = mm.resident(addr) as u8;
    }
    drop(mm);
    t.mm.copy_out(a[2], &vec).map(|_| 0)
}

const MREMAP_MAYMOVE: u64 = 1;
const MREMAP_FIXED: u64 = 2;

/// Implements mremap(2) (MREMAP_MAYMOVE, MREMAP_FIXED; an old length of 0
/// maps a shared mapping's pages once more).
pub fn sys_mremap(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let [old, old_len, new_len, flags, new_addr, _] = a;
    if old % PAGE_SIZE != 0 || flags & !(MREMAP_MAYMOVE | MREMAP_FIXED) != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & MREMAP_FIXED != 0 && (flags & MREMAP_MAYMOVE == 0 || new_addr % PAGE_SIZE != 0) {
        return Err(Errno::EINVAL);
    }
    let old_len = page_up(old_len).ok_or(Errno::EINVAL)?;
    let new_len = page_up(new_len).filter(|&l| l > 0).ok_or(Errno::EINVAL)?;
    let fixed = (flags & MREMAP_FIXED != 0).then_some(new_addr);
    if let Some(at) = fixed {
        let overlap = at < old + old_len && old < at + new_len;
        if overlap || at.checked_add(new_len).is_none_or(|e| e > USER_TOP) {
            return Err(Errno::EINVAL);
        }
    }
    t.mm.lock()
        .remap(old, old_len, new_len, flags & MREMAP_MAYMOVE != 0, fixed)
}

const MS_ASYNC: u64 = 1;
const MS_INVALIDATE: u64 = 2;
const MS_SYNC: u64 = 4;

/// Implements msync(2): all guest memory is memory (tmpfs, anonymous), so
/// there is nothing to write back; the arguments are checked as Linux
/// does.
pub fn sys_msync(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let [addr, len, flags, ..] = a;
    let both = MS_ASYNC | MS_SYNC;
    if flags & !(both | MS_INVALIDATE) != 0 || flags & both == both || addr % PAGE_SIZE != 0 {
        return Err(Errno::EINVAL);
    }
    let len = page_up(len).ok_or(Errno::ENOMEM)?;
    t.mm.lock().sync(addr, len).map(|_| 0)
}
