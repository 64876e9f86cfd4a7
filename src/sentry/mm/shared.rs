//! Shared memory objects: pages that every shared mapping of them (in one
//! process or many) and a file's read and write all see, because they all
//! use the same frames.
//!
//! A [`SharedObject`] has a size and a map from page index to frame; it
//! holds one reference on each of its frames, and a memory manager that
//! maps one of them holds another for its page. Pages are allocated zeroed
//! on first touch; the object and its frames go when the last holder (a
//! VMA, a tmpfs inode, an open file) drops its `Arc`.
//!
//! Shrinking an object drops its pages past the new end, but a memory
//! manager's page map can only be changed by its own threads (a ptrace
//! address space only obeys the thread that runs in it). So the object
//! leaves a note in the [`Stale`] of every memory manager that mapped it,
//! and each applies the note the next time one of its threads enters the
//! memory manager or returns to guest code. Until then its threads may
//! still reach the old frames, which stay allocated while mapped: no use
//! after free, only a late SIGBUS.
//!
//! Lock order: a memory manager, then an object's state, then its list of
//! mappers, then a `Stale`, then the frame table of `GuestMemory`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::memory::{page_up, GuestMemory, PAGE_SIZE};
use crate::abi::{Errno, SysResult};

/// The error a fault past the end of an object gets (the guest sees
/// SIGBUS; a copy by the kernel sees EFAULT).
pub const PAST_END: Errno = Errno::EIO;

/// A byte budget shared by a family of objects (a tmpfs): their sizes
/// together stay within `limit`.
pub struct Quota {
    used: AtomicU64,
    limit: u64,
}

impl Quota {
    pub const fn new(limit: u64) -> Quota {
        Quota {
            used: AtomicU64::new(0),
            limit,
        }
    }

    pub fn used(&self) -> u64 {
        self.used.load(Ordering::SeqCst)
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Takes `n` bytes of the budget; ENOSPC when they are not left.
    fn charge(&self, n: u64) -> SysResult<()> {
        let fits = |u: u64| u.checked_add(n).filter(|&t| t <= self.limit);
        self.used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, fits)
            .map(|_| ())
            .map_err(|_| Errno::ENOSPC)
    }

    fn release(&self, n: u64) {
        self.used.fetch_sub(n, Ordering::SeqCst);
    }
}

/// Object ranges whose pages a memory manager must drop: notes left by
/// objects that shrank, as (object id, first dropped offset).
#[derive(Default)]
pub struct Stale {
    pending: AtomicBool,
    ranges: Mutex<Vec<(u64, u64)>>,
}

impl Stale {
    /// Whether notes are waiting (cheap: no lock).
    pub fn pending(&self) -> bool {
        self.pending.load(Ordering::SeqCst)
    }

    fn push(&self, object: u64, from: u64) {
        self.ranges.lock().unwrap().push((object, from));
        self.pending.store(true, Ordering::SeqCst);
    }

    /// Takes the notes left so far.
    pub fn take(&self) -> Vec<(u64, u64)> {
        if !self.pending() {
            return Vec::new();
        }
        let mut ranges = self.ranges.lock().unwrap();
        self.pending.store(false, Ordering::SeqCst);
        std::mem::take(&mut *ranges)
    }
}

struct State {
    size: u64,
    /// Page index -> frame, for the pages touched so far.
    frames: BTreeMap<u64, u64>,
}

/// Memory that several mappings and a file can share.
pub struct SharedObject {
    id: u64,
    mem: Arc<GuestMemory>,
    quota: Option<&'static Quota>,
    state: Mutex<State>,
    /// The memory managers that mapped this object (to tell of shrinks).
    mappers: Mutex<Vec<Weak<Stale>>>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl SharedObject {
    /// An object of `size` bytes of zeros (MAP_SHARED|MAP_ANONYMOUS).
    pub fn new(mem: Arc<GuestMemory>, size: u64) -> Arc<SharedObject> {
        SharedObject::build(mem, size, None)
    }

    /// An empty object whose size is charged to `quota` (a tmpfs file).
    pub fn with_quota(mem: Arc<GuestMemory>, quota: &'static Quota) -> Arc<SharedObject> {
        SharedObject::build(mem, 0, Some(quota))
    }

    fn build(mem: Arc<GuestMemory>, size: u64, quota: Option<&'static Quota>) -> Arc<SharedObject> {
        Arc::new(SharedObject {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            mem,
            quota,
            state: Mutex::new(State {
                size,
                frames: BTreeMap::new(),
            }),
            mappers: Mutex::new(Vec::new()),
        })
    }

    /// Names this object for as long as the sandbox runs (never reused).
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn size(&self) -> u64 {
        self.state().size
    }

    /// Whether the page holding byte `off` has a frame (mincore).
    pub fn has_page(&self, off: u64) -> bool {
        self.state().frames.contains_key(&(off / PAGE_SIZE))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    fn charge(&self, n: u64) -> SysResult<()> {
        self.quota.map_or(Ok(()), |q| q.charge(n))
    }

    fn release(&self, n: u64) {
        if let Some(q) = self.quota {
            q.release(n);
        }
    }

    /// The frame of page `index`, allocated (zeroed) on first use.
    fn frame(&self, st: &mut State, index: u64) -> SysResult<u64> {
        if let Some(&f) = st.frames.get(&index) {
            return Ok(f);
        }
        let f = self.mem.alloc_frame()?;
        st.frames.insert(index, f);
        Ok(f)
    }

    /// Zeros the bytes from `at` to the end of its page, when that page
    /// has a frame: bytes past the end of the object read as zeros once
    /// the object grows over them.
    fn zero_tail(&self, st: &State, at: u64) {
        let within = at % PAGE_SIZE;
        if within == 0 {
            return;
        }
        if let Some(&f) = st.frames.get(&(at / PAGE_SIZE)) {
            self.mem.zero(f + within, (PAGE_SIZE - within) as usize);
        }
    }

    /// Copies bytes at `off` into `buf`, stopping at the end of the object;
    /// returns how many. Pages never touched read as zeros.
    pub fn read(&self, off: u64, buf: &mut [u8]) -> usize {
        let st = self.state();
        let n = (st.size.saturating_sub(off)).min(buf.len() as u64) as usize;
        let mut done = 0;
        while done < n {
            let at = off + done as u64;
            let len = ((PAGE_SIZE - at % PAGE_SIZE) as usize).min(n - done);
            let part = &mut buf[done..done + len];
            match st.frames.get(&(at / PAGE_SIZE)) {
                Some(&f) => self.mem.read(f + at % PAGE_SIZE, part),
                None => part.fill(0),
            }
            done += len;
        }
        n
    }

    /// Copies `buf` to `off`, growing the object as needed (ENOSPC past
    /// the quota or when frames run out before anything was written).
    /// Returns the bytes written, fewer when frames ran out midway.
    pub fn write(&self, off: u64, buf: &[u8]) -> SysResult<usize> {
        let end = off
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= i64::MAX as u64)
            .ok_or(Errno::EFBIG)?;
        let mut st = self.state();
        let old = st.size;
        if end > old {
            self.charge(end - old)?;
            self.zero_tail(&st, old);
        }
        let mut done = 0;
        while done < buf.len() {
            let at = off + done as u64;
            let len = ((PAGE_SIZE - at % PAGE_SIZE) as usize).min(buf.len() - done);
            let Ok(f) = self.frame(&mut st, at / PAGE_SIZE) else {
                break;
            };
            self.mem.write(f + at % PAGE_SIZE, &buf[done..done + len]);
            done += len;
        }
        let new = if done == 0 {
            old
        } else {
            old.max(off + done as u64)
        };
        if end > old {
            self.release(end - new);
        }
        st.size = new;
        if done == 0 && !buf.is_empty() {
            return Err(Errno::ENOSPC);
        }
        Ok(done)
    }

    /// Sets the size (ftruncate): growth reads as zeros; shrinking drops
    /// the pages past the new end, here and, soon, in every mapping.
    pub fn set_size(&self, len: u64) -> SysResult<()> {
        let mut st = self.state();
        let old = st.size;
        if len > old {
            self.charge(len - old)?;
        } else {
            self.release(old - len);
        }
        self.zero_tail(&st, old.min(len));
        st.size = len;
        if len >= old {
            return Ok(());
        }
        let keep = page_up(len).unwrap_or(u64::MAX) / PAGE_SIZE;
        let dropped = st.frames.split_off(&keep);
        if !dropped.is_empty() {
            self.tell_mappers(keep * PAGE_SIZE);
        }
        for f in dropped.into_values() {
            self.mem.decref(f);
        }
        Ok(())
    }

    /// Fills `frame` (fresh, zeroed) with a copy of the page at `off`: the
    /// start of a private mapping's page.
    pub fn copy_page(&self, off: u64, frame: u64) {
        let st = self.state();
        if off >= st.size {
            return;
        }
        if let Some(&f) = st.frames.get(&(off / PAGE_SIZE)) {
            self.mem.copy_frame(f, frame);
        }
    }

    /// The frame of the page at `off` with one more reference, for a
    /// mapping's page; PAST_END beyond the object's last page. Without
    /// `allocate`, ENOENT for a page never touched.
    pub(super) fn page(&self, off: u64, allocate: bool) -> SysResult<u64> {
        let mut st = self.state();
        let end = page_up(st.size).unwrap_or(u64::MAX);
        if off >= end {
            return Err(PAST_END);
        }
        if !allocate && !st.frames.contains_key(&(off / PAGE_SIZE)) {
            return Err(Errno::ENOENT);
        }
        let f = self.frame(&mut st, off / PAGE_SIZE)?;
        self.mem.incref(f);
        Ok(f)
    }

    /// Records that the memory manager owning `stale` maps this object.
    pub(super) fn attach(&self, stale: &Arc<Stale>) {
        let mut mappers = self.mappers.lock().unwrap();
        mappers.retain(|w| w.strong_count() > 0);
        if !mappers
            .iter()
            .any(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(stale)))
        {
            mappers.push(Arc::downgrade(stale));
        }
    }

    fn tell_mappers(&self, from: u64) {
        let mappers = self.mappers.lock().unwrap();
        for stale in mappers.iter().filter_map(Weak::upgrade) {
            stale.push(self.id, from);
        }
    }
}

impl Drop for SharedObject {
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap();
        for (_, f) in std::mem::take(&mut st.frames) {
            self.mem.decref(f);
        }
        let size = st.size;
        self.release(size);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem() -> Arc<GuestMemory> {
        Arc::new(GuestMemory::new(64 * PAGE_SIZE, 64 * PAGE_SIZE).unwrap())
    }

    #[test]
    fn shared_object_untouched_pages_read_zero_and_hold_no_frames() {
        let m = mem();
        let o = SharedObject::new(m.clone(), 3 * PAGE_SIZE);
        let mut buf = [1u8; 100];
        assert_eq!(o.read(PAGE_SIZE, &mut buf), 100);
        assert_eq!(buf, [0u8; 100]);
        assert_eq!(m.used_bytes(), 0);
    }

    #[test]
    fn shared_object_write_is_seen_by_read_across_pages() {
        let o = SharedObject::new(mem(), 0);
        let data: Vec<u8> = (0..6000u32).map(|i| i as u8).collect();
        assert_eq!(o.write(100, &data), Ok(6000));
        assert_eq!(o.size(), 6100);
        let mut back = vec![0u8; 6000];
        assert_eq!(o.read(100, &mut back), 6000);
        assert_eq!(back, data);
    }

    #[test]
    fn shared_object_page_is_the_frame_write_uses() {
        let m = mem();
        let o = SharedObject::new(m.clone(), PAGE_SIZE);
        let f = o.page(0, true).unwrap();
        m.write(f + 8, b"mapped");
        let mut buf = [0u8; 6];
        o.read(8, &mut buf);
        assert_eq!(&buf, b"mapped");
        assert_eq!(m.refcount(f), 2);
        m.decref(f);
    }

    #[test]
    fn shared_object_page_past_the_end_is_past_end() {
        let o = SharedObject::new(mem(), PAGE_SIZE + 1);
        assert!(o.page(PAGE_SIZE, true).is_ok_and(|f| {
            o.mem.decref(f);
            true
        }));
        assert_eq!(o.page(2 * PAGE_SIZE, true), Err(PAST_END));
    }

    #[test]
    fn shared_object_shrink_frees_pages_and_zeroes_the_tail() {
        let m = mem();
        let o = SharedObject::new(m.clone(), 0);
        o.write(0, &[7u8; 3 * PAGE_SIZE as usize]).unwrap();
        o.set_size(10).unwrap();
        assert_eq!(m.used_bytes(), PAGE_SIZE);
        o.set_size(20).unwrap();
        let mut buf = [9u8; 20];
        assert_eq!(o.read(0, &mut buf), 20);
        assert_eq!(&buf[..10], &[7u8; 10]);
        assert_eq!(&buf[10..], &[0u8; 10]);
    }

    #[test]
    fn shared_object_shrink_leaves_a_note_for_each_mapper() {
        let o = SharedObject::new(mem(), 0);
        o.write(0, &[1u8; 2 * PAGE_SIZE as usize]).unwrap();
        let stale = Arc::new(Stale::default());
        o.attach(&stale);
        o.attach(&stale);
        o.set_size(PAGE_SIZE).unwrap();
        assert_eq!(stale.take(), vec![(o.id(), PAGE_SIZE)]);
        assert!(!stale.pending());
    }

    #[test]
    fn shared_object_quota_refuses_growth_past_the_limit() {
        static Q: Quota = Quota::new(2 * PAGE_SIZE);
        let o = SharedObject::with_quota(mem(), &Q);
        assert_eq!(o.set_size(3 * PAGE_SIZE), Err(Errno::ENOSPC));
        assert_eq!(o.write(PAGE_SIZE, &[1; 10]), Ok(10));
        assert_eq!(Q.used(), PAGE_SIZE + 10);
        drop(o);
        assert_eq!(Q.used(), 0);
    }

    #[test]
    fn shared_object_drop_frees_its_frames() {
        let m = mem();
        let o = SharedObject::new(m.clone(), 0);
        o.write(0, &[1u8; 5000]).unwrap();
        drop(o);
        assert_eq!(m.used_bytes(), 0);
    }
}
