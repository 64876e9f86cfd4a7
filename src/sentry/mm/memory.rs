//! Guest memory: one memfd, mapped once into the sentry and shared with the
//! platform (a KVM memory slot, or the stub processes' mappings), carved into
//! 4 KiB frames by a reference-counted allocator with a limit.
//!
//! Offsets into the memfd are "frame addresses"; under KVM they are also the
//! guest physical addresses. The sentry never holds a Rust reference into
//! this memory (the guest may change it at any time): everything goes
//! through the bounds-checked copy functions here.
//!
//! Freed frames are punched out of the memfd (`MADV_REMOVE`), so freeing
//! really returns memory to the host and a reused frame reads as zeros.
//!
//! Page caches hold frames nobody maps (clean file pages kept for the next
//! mapping). They register as [`Reclaim`]ers: when the limit is reached,
//! an allocation first asks them to let such frames go, and fails with
//! ENOMEM only when that freed nothing.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex, Weak};

use crate::abi::Errno;

/// Size of a guest page and frame.
pub const PAGE_SIZE: u64 = 4096;

/// Rounds `v` down to a page boundary.
pub fn page_down(v: u64) -> u64 {
    v & !(PAGE_SIZE - 1)
}

/// Rounds `v` up to a page boundary (None on overflow).
pub fn page_up(v: u64) -> Option<u64> {
    v.checked_add(PAGE_SIZE - 1).map(page_down)
}

struct Frames {
    /// Reference count per frame; 0 = free.
    refs: Vec<u32>,
    /// Free frames below `next`, ready for reuse.
    free: Vec<u32>,
    /// Frames at or above this index were never handed out.
    next: u32,
    /// Frames in use.
    used: u64,
    /// Most frames that may be in use at once.
    limit: u64,
}

/// Something holding frames it can give back under memory pressure (a
/// page cache).
pub trait Reclaim: Send + Sync {
    /// Frees what it can without losing data; returns the frames freed.
    /// Must not block on a lock its owner may hold while allocating.
    fn reclaim(&self) -> u64;
    /// Frames it holds now (what /proc/meminfo calls Cached).
    fn held(&self) -> u64;
}

/// The memfd that backs all guest memory of a sandbox.
pub struct GuestMemory {
    memfd: OwnedFd,
    base: *mut u8,
    size: u64,
    frames: Mutex<Frames>,
    /// Asked for frames when the limit is reached (lock taken alone).
    reclaimers: Mutex<Vec<Weak<dyn Reclaim>>>,
}

// SAFETY: `base` points to a MAP_SHARED mapping owned by this struct for its
// whole life; all access goes through copies bounded by `size`, and the frame
// table is behind a mutex.
unsafe impl Send for GuestMemory {}
// SAFETY: as above; concurrent copies into guest memory are no more racy than
// the guest's own accesses, which the kernel tolerates by design.
unsafe impl Sync for GuestMemory {}

/// Failure to set guest memory up.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error("memfd_create failed")]
    Create(#[source] std::io::Error),
    #[error("sizing guest memory to {size} bytes failed")]
    Truncate { size: u64, source: std::io::Error },
    #[error("mapping guest memory failed")]
    Map(#[source] std::io::Error),
}

impl GuestMemory {
    /// Creates `size` bytes (rounded to pages) of guest memory, of which at
    /// most `limit` bytes may be allocated at once.
    pub fn new(size: u64, limit: u64) -> Result<GuestMemory, MemoryError> {
        let size = page_down(size);
        let opts = memfd::MemfdOptions::default().close_on_exec(true);
        let mfd = opts
            .create("sandboxd-guest")
            .map_err(|e| MemoryError::Create(std::io::Error::other(e)))?;
        let file = mfd.into_file();
        file.set_len(size)
            .map_err(|source| MemoryError::Truncate { size, source })?;
        // SAFETY: a fresh shared mapping of a file we own; nothing else
        // refers to the returned range.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_NORESERVE,
                file.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(MemoryError::Map(std::io::Error::last_os_error()));
        }
        let nframes = (size / PAGE_SIZE) as usize;
        Ok(GuestMemory {
            memfd: file.into(),
            base: base as *mut u8,
            size,
            frames: Mutex::new(Frames {
                refs: vec![0; nframes],
                free: Vec::new(),
                next: 0,
                used: 0,
                limit: (limit / PAGE_SIZE).min(nframes as u64),
            }),
            reclaimers: Mutex::new(Vec::new()),
        })
    }

    /// The memfd, for platforms that map it elsewhere.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.memfd.as_fd()
    }

    /// Where the memfd is mapped in this process.
    pub fn host_base(&self) -> u64 {
        self.base as u64
    }

    /// Total size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes of frames in use.
    pub fn used_bytes(&self) -> u64 {
        self.frames.lock().unwrap().used * PAGE_SIZE
    }

    /// Registers `r` to be asked for frames when memory runs out (for as
    /// long as it lives).
    pub fn add_reclaimer(&self, r: Weak<dyn Reclaim>) {
        let mut list = self.reclaimers.lock().unwrap();
        list.retain(|w| w.strong_count() > 0);
        list.push(r);
    }

    fn reclaimers(&self) -> Vec<Arc<dyn Reclaim>> {
        let mut list = self.reclaimers.lock().unwrap();
        list.retain(|w| w.strong_count() > 0);
        list.iter().filter_map(Weak::upgrade).collect()
    }

    /// Asks every reclaimer to give frames back; returns how many it did.
    pub fn reclaim(&self) -> u64 {
        self.reclaimers().iter().map(|r| r.reclaim()).sum()
    }

    /// Bytes the page caches hold (/proc/meminfo's Cached).
    pub fn cached_bytes(&self) -> u64 {
        self.reclaimers().iter().map(|r| r.held()).sum::<u64>() * PAGE_SIZE
    }

    /// Allocates one zeroed frame with a reference count of 1 and returns its
    /// offset. At the limit, page caches are asked to let unmapped frames
    /// go first; ENOMEM when that frees nothing.
    pub fn alloc_frame(&self) -> Result<u64, Errno> {
        match self.try_alloc() {
            Err(Errno::ENOMEM) if self.reclaim() > 0 => self.try_alloc(),
            r => r,
        }
    }

    fn try_alloc(&self) -> Result<u64, Errno> {
        let mut f = self.frames.lock().unwrap();
        if f.used >= f.limit {
            return Err(Errno::ENOMEM);
        }
        let idx = match f.free.pop() {
            Some(i) => i,
            None if (f.next as usize) < f.refs.len() => {
                f.next += 1;
                f.next - 1
            }
            None => return Err(Errno::ENOMEM),
        };
        f.refs[idx as usize] = 1;
        f.used += 1;
        Ok(idx as u64 * PAGE_SIZE)
    }

    /// Takes another reference to an allocated frame (sharing, COW).
    pub fn incref(&self, off: u64) {
        let mut f = self.frames.lock().unwrap();
        let r = &mut f.refs[(off / PAGE_SIZE) as usize];
        debug_assert!(*r > 0, "incref of a free frame");
        *r += 1;
    }

    /// The reference count of a frame.
    pub fn refcount(&self, off: u64) -> u32 {
        self.frames.lock().unwrap().refs[(off / PAGE_SIZE) as usize]
    }

    /// Drops a reference; the last one frees the frame and returns its
    /// memory to the host.
    pub fn decref(&self, off: u64) {
        self.release(off, false);
    }

    /// Frees the frame if the caller holds its only reference (a page
    /// cache letting an unmapped page go); returns whether it did.
    pub fn free_if_sole(&self, off: u64) -> bool {
        self.release(off, true)
    }

    fn release(&self, off: u64, only_if_sole: bool) -> bool {
        let idx = (off / PAGE_SIZE) as usize;
        {
            let mut f = self.frames.lock().unwrap();
            debug_assert!(f.refs[idx] > 0, "decref of a free frame");
            if only_if_sole && f.refs[idx] != 1 {
                return false;
            }
            f.refs[idx] -= 1;
            if f.refs[idx] > 0 {
                return false;
            }
        }
        // SAFETY: the range is one frame inside our mapping, now owned by
        // nobody; MADV_REMOVE punches it out of the memfd, so it reads back
        // as zeros before it is handed out again.
        unsafe {
            libc::madvise(
                self.base.add(off as usize) as *mut libc::c_void,
                PAGE_SIZE as usize,
                libc::MADV_REMOVE,
            );
        }
        let mut f = self.frames.lock().unwrap();
        f.used -= 1;
        f.free.push(idx as u32);
        true
    }

    fn check(&self, off: u64, len: usize) {
        let end = off.checked_add(len as u64);
        assert!(
            end.is_some_and(|e| e <= self.size),
            "guest memory access out of range: {off:#x}+{len}"
        );
    }

    /// Copies guest memory at `off` into `buf`.
    pub fn read(&self, off: u64, buf: &mut [u8]) {
        self.check(off, buf.len());
        // SAFETY: the range was checked to lie inside our mapping; `buf` is a
        // distinct host buffer.
        unsafe {
            std::ptr::copy_nonoverlapping(self.base.add(off as usize), buf.as_mut_ptr(), buf.len())
        }
    }

    /// Copies `buf` into guest memory at `off`.
    pub fn write(&self, off: u64, buf: &[u8]) {
        self.check(off, buf.len());
        // SAFETY: the range was checked to lie inside our mapping; `buf` is a
        // distinct host buffer.
        unsafe {
            std::ptr::copy_nonoverlapping(buf.as_ptr(), self.base.add(off as usize), buf.len())
        }
    }

    /// Fills `len` bytes at `off` with zeros.
    pub fn zero(&self, off: u64, len: usize) {
        self.check(off, len);
        // SAFETY: the range was checked to lie inside our mapping.
        unsafe { std::ptr::write_bytes(self.base.add(off as usize), 0, len) }
    }

    /// Atomically replaces the aligned 32-bit word at `off` with `f(old)`
    /// and returns the old value: guest threads may be changing it with
    /// their own atomic instructions at the same time (futex words).
    pub fn update_u32(&self, off: u64, f: impl Fn(u32) -> u32) -> u32 {
        self.check(off, 4);
        assert!(off % 4 == 0, "unaligned atomic guest word at {off:#x}");
        // SAFETY: the range lies inside our mapping and is 4-byte aligned;
        // the mapping lives as long as `self`, and other accesses to guest
        // words are atomic or plain copies the guest cannot rely on.
        let word = unsafe {
            std::sync::atomic::AtomicU32::from_ptr(self.base.add(off as usize) as *mut u32)
        };
        let mut old = word.load(std::sync::atomic::Ordering::SeqCst);
        loop {
            match word.compare_exchange(
                old,
                f(old),
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::SeqCst,
            ) {
                Ok(v) => return v,
                Err(v) => old = v,
            }
        }
    }

    /// Rewrites, under the seqlock whose 32-bit sequence word is at `off`,
    /// the bytes that follow the word: the word goes odd, `make` builds the
    /// new bytes, they are written, and the word goes even again. `make`
    /// runs only once the odd word is visible to every CPU, so a TSC it
    /// reads is later than that of any reader that still validates the old
    /// bytes. One writer at a time (the caller's business).
    pub fn write_seqlocked(&self, off: u64, make: impl FnOnce() -> Vec<u8>) {
        use std::sync::atomic::{fence, AtomicU32, Ordering};
        self.check(off, 4);
        assert!(off % 4 == 0, "unaligned seqlock word at {off:#x}");
        // SAFETY: the word lies inside our mapping and is 4-byte aligned;
        // the mapping lives as long as `self`. Guests only read it.
        let seq = unsafe { AtomicU32::from_ptr(self.base.add(off as usize) as *mut u32) };
        let even = seq.load(Ordering::Relaxed) & !1;
        seq.store(even.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::SeqCst);
        let body = make();
        self.write(off + 4, &body);
        fence(Ordering::Release);
        seq.store(even.wrapping_add(2), Ordering::Release);
    }

    pub fn read_u64(&self, off: u64) -> u64 {
        let mut b = [0u8; 8];
        self.read(off, &mut b);
        u64::from_le_bytes(b)
    }

    pub fn write_u64(&self, off: u64, v: u64) {
        self.write(off, &v.to_le_bytes())
    }

    /// Copies one whole frame to another (COW break).
    pub fn copy_frame(&self, from: u64, to: u64) {
        let mut page = [0u8; PAGE_SIZE as usize];
        self.read(from, &mut page);
        self.write(to, &page);
    }

    /// Reads file data from host `fd` at `file_off` straight into guest
    /// memory at `off`; returns the bytes read (short at end of file).
    pub fn pread_into(
        &self,
        fd: BorrowedFd<'_>,
        off: u64,
        len: usize,
        file_off: u64,
    ) -> std::io::Result<usize> {
        self.host_io(off, len, file_off, |at, n, pos| {
            // SAFETY: `at` points into our mapping with `n` bytes to spare
            // (see `host_io`); pread writes at most `n` bytes there.
            unsafe { libc::pread(fd.as_raw_fd(), at as *mut libc::c_void, n, pos) }
        })
    }

    /// Writes `len` bytes of guest memory at `off` to host `fd` at
    /// `file_off` (a dirty page going back to its file).
    pub fn pwrite_from(
        &self,
        fd: BorrowedFd<'_>,
        off: u64,
        len: usize,
        file_off: u64,
    ) -> std::io::Result<()> {
        let done = self.host_io(off, len, file_off, |at, n, pos| {
            // SAFETY: `at` points into our mapping with `n` bytes to spare
            // (see `host_io`); pwrite reads at most `n` bytes of it.
            unsafe { libc::pwrite(fd.as_raw_fd(), at as *const libc::c_void, n, pos) }
        })?;
        if done < len {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        Ok(())
    }

    /// Runs `op(address, bytes, file offset)` (a pread or pwrite) over the
    /// guest range `[off, off+len)` until it is done, fails or does
    /// nothing; returns the bytes done.
    fn host_io(
        &self,
        off: u64,
        len: usize,
        file_off: u64,
        op: impl Fn(*mut u8, usize, libc::off_t) -> isize,
    ) -> std::io::Result<usize> {
        self.check(off, len);
        let mut done = 0;
        while done < len {
            // SAFETY: the range was checked to lie inside our mapping.
            let at = unsafe { self.base.add((off as usize) + done) };
            let n = op(at, len - done, (file_off + done as u64) as libc::off_t);
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if n == 0 {
                break;
            }
            done += n as usize;
        }
        Ok(done)
    }
}

impl Drop for GuestMemory {
    fn drop(&mut self) {
        // SAFETY: unmapping the mapping made in `new`; no references into it
        // exist (all access is by copy).
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.size as usize) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_frame_beyond_limit_is_enomem() {
        let m = GuestMemory::new(16 * PAGE_SIZE, 2 * PAGE_SIZE).unwrap();
        let a = m.alloc_frame().unwrap();
        let _b = m.alloc_frame().unwrap();
        assert_eq!(m.alloc_frame(), Err(Errno::ENOMEM));
        m.decref(a);
        assert!(m.alloc_frame().is_ok());
    }

    #[test]
    fn freed_frame_reads_back_zero() {
        let m = GuestMemory::new(4 * PAGE_SIZE, 4 * PAGE_SIZE).unwrap();
        let a = m.alloc_frame().unwrap();
        m.write_u64(a + 8, 0xdead_beef);
        m.decref(a);
        let b = m.alloc_frame().unwrap();
        assert_eq!(b, a);
        assert_eq!(m.read_u64(b + 8), 0);
    }

    #[test]
    fn shared_frame_survives_until_last_reference() {
        let m = GuestMemory::new(4 * PAGE_SIZE, 4 * PAGE_SIZE).unwrap();
        let a = m.alloc_frame().unwrap();
        m.incref(a);
        m.write_u64(a, 7);
        m.decref(a);
        assert_eq!(m.read_u64(a), 7);
        assert_eq!(m.used_bytes(), PAGE_SIZE);
    }
}
