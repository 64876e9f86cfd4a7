//! The memory of a process as its threads share it, and what futexes
//! need to know of it.

use std::sync::{Arc, Mutex, MutexGuard};

use super::shared::Stale;
use super::MemoryManager;
use crate::abi::{Errno, SysResult};
use crate::sentry::platform::AddressSpace;

/// The memory of a process as its threads hold it: one memory manager
/// behind a lock, shared by every thread made with CLONE_VM, and the
/// address space the threads' contexts run in without taking that lock.
#[derive(Clone)]
pub struct Mm {
    inner: Arc<Mutex<MemoryManager>>,
    space: Arc<dyn AddressSpace>,
    stale: Arc<Stale>,
    widened: Arc<std::sync::atomic::AtomicU64>,
}

impl Mm {
    /// How many times a page's allowed access was widened so far: a
    /// protection fault taken before another thread widened the page
    /// (broke its COW, mprotect) is stale, not a violation.
    pub fn widened(&self) -> u64 {
        self.widened.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Names a futex word for the futex table: by its shared object and the
/// offset in it when it lies in a shared mapping (so that every process
/// mapping the object finds it), else by memory manager and address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FutexKey {
    Private { mm: usize, addr: u64 },
    Shared { object: u64, offset: u64 },
}

impl Mm {
    pub fn new(mm: MemoryManager) -> Mm {
        Mm {
            space: mm.space.clone(),
            stale: mm.stale.clone(),
            widened: mm.widened.clone(),
            inner: Arc::new(Mutex::new(mm)),
        }
    }

    /// The memory manager, locked (held only briefly: never across a
    /// blocking wait), with the shrinks of shared objects it maps applied.
    /// Only threads that run in this memory may call it.
    pub fn lock(&self) -> MutexGuard<'_, MemoryManager> {
        let mut mm = self.inner.lock().unwrap();
        if self.stale.pending() {
            mm.settle();
        }
        mm
    }

    /// The memory manager, locked as it is (no shrinks applied): for
    /// other tasks that only read it (/proc/[pid]).
    pub fn inspect(&self) -> MutexGuard<'_, MemoryManager> {
        self.inner.lock().unwrap()
    }

    /// Applies the shrinks of shared objects this memory maps, if any:
    /// called before returning to guest code.
    pub fn settle(&self) {
        if self.stale.pending() {
            drop(self.lock());
        }
    }

    /// The key of the futex word at `addr`. A `private` futex
    /// (FUTEX_PRIVATE_FLAG) is keyed by this memory even in a shared
    /// mapping, as Linux does.
    pub fn futex_key(&self, addr: u64, private: bool) -> FutexKey {
        let shared = (!private).then(|| self.lock().shared_word(addr)).flatten();
        match shared {
            Some((object, offset)) => FutexKey::Shared { object, offset },
            None => FutexKey::Private {
                mm: self.id(),
                addr,
            },
        }
    }

    /// The address space for `Context::switch`.
    pub fn space(&self) -> &dyn AddressSpace {
        self.space.as_ref()
    }

    /// The address space, for another thread about to run in it.
    pub fn space_arc(&self) -> &Arc<dyn AddressSpace> {
        &self.space
    }

    /// Identifies this memory (futexes in its private mappings are keyed
    /// by it); unique while the memory exists.
    pub fn id(&self) -> usize {
        Arc::as_ptr(&self.inner) as *const u8 as usize
    }

    /// How many threads share this memory.
    pub fn users(&self) -> usize {
        Arc::strong_count(&self.inner)
    }

    pub fn copy_in(&self, addr: u64, buf: &mut [u8]) -> SysResult<()> {
        self.lock().copy_in(addr, buf)
    }

    pub fn copy_out(&self, addr: u64, buf: &[u8]) -> SysResult<()> {
        self.lock().copy_out(addr, buf)
    }

    pub fn read_u64(&self, addr: u64) -> SysResult<u64> {
        self.lock().read_u64(addr)
    }

    pub fn read_u32(&self, addr: u64) -> SysResult<u32> {
        let mut b = [0u8; 4];
        self.lock().copy_in(addr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    pub fn write_u64(&self, addr: u64, v: u64) -> SysResult<()> {
        self.lock().write_u64(addr, v)
    }

    pub fn write_u32(&self, addr: u64, v: u32) -> SysResult<()> {
        self.lock().write_u32(addr, v)
    }

    pub fn read_cstr(&self, addr: u64, max: usize) -> SysResult<Vec<u8>> {
        self.lock().read_cstr(addr, max)
    }

    /// Atomically replaces the 32-bit word at guest `addr` (4-byte aligned,
    /// writable) with `f(old)`; returns the old value.
    pub fn update_u32(&self, addr: u64, f: impl Fn(u32) -> u32) -> SysResult<u32> {
        if addr % 4 != 0 {
            return Err(Errno::EINVAL);
        }
        let mut mm = self.lock();
        let off = mm.translate(addr, true)?;
        Ok(mm.mem.update_u32(off, f))
    }
}
