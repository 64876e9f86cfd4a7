//! Memory syscalls: mmap, munmap, mprotect, brk, madvise.

use crate::abi::{Errno, SysResult};
use crate::sentry::kernel::Task;
use crate::sentry::mm::memory::{page_up, PAGE_SIZE};
use crate::sentry::mm::{Backing, MemoryManager, USER_TOP};
use crate::sentry::platform::Prot;

const MAP_SHARED: u64 = 0x01;
const MAP_PRIVATE: u64 = 0x02;
const MAP_SHARED_VALIDATE: u64 = 0x03;
const MAP_TYPE: u64 = 0x0f;
const MAP_FIXED: u64 = 0x10;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;

/// Implements mmap(2). Shared mappings behave as private ones: with one
/// process per address space and a read-only image there is nobody to
/// share with yet (shared memory across fork comes with fork).
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
    let backing = if flags & MAP_ANONYMOUS != 0 {
        Backing::Anon
    } else {
        let file = t.fds.get(fd as i32)?;
        if !file.readable() || (kind != MAP_PRIVATE && prot.write && !file.writable()) {
            return Err(Errno::EACCES);
        }
        let source = file.ops.clone().page_source().ok_or(Errno::ENODEV)?;
        Backing::File {
            source,
            offset: off,
            zero_from: None,
        }
    };
    let fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0;
    if fixed && addr % PAGE_SIZE != 0 {
        return Err(Errno::EINVAL);
    }
    // One lock from the choice of address to the mapping: another thread
    // must not take the range in between.
    let mut mm = t.mm.lock();
    let hint_ok = addr != 0
        && addr % PAGE_SIZE == 0
        && addr.checked_add(len).is_some_and(|e| e <= USER_TOP)
        && free(&mm, addr, len);
    let start = if fixed || hint_ok {
        addr
    } else {
        mm.find_free(len)?
    };
    if flags & MAP_FIXED_NOREPLACE != 0 && flags & MAP_FIXED == 0 {
        mm.map_noreplace(start, len, prot, backing)?;
    } else {
        mm.map(start, len, prot, backing)?;
    }
    Ok(start)
}

fn free(mm: &MemoryManager, addr: u64, len: u64) -> bool {
    let first = mm.vmas().find(|(&s, v)| v.end > addr && s < addr + len);
    first.is_none()
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
/// read back as zeros, or as the file's data for file mappings); the
/// other advice only tunes caching that this sentry does not do.
pub fn sys_madvise(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let (addr, len) = range(a[0], a[1])?;
    match a[2] as i32 {
        libc::MADV_DONTNEED | libc::MADV_FREE => {
            t.mm.lock().discard(addr, len);
            Ok(0)
        }
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

/// Implements mincore(2): one byte per page, 1 when the page has a frame.
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

/// Implements mremap(2) (MREMAP_MAYMOVE, MREMAP_FIXED).
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
    if old_len == 0 {
        // Duplicating a shared mapping is not supported.
        return Err(Errno::EINVAL);
    }
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
