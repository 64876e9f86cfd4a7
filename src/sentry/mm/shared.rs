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
//! An object may cache a host file (see `pagecache`): its pages are then
//! filled from the file instead of zeroed, may be dirty, and, when clean
//! and mapped by nobody, are given back under memory pressure.
//!
//! Lock order: a memory manager, then an object's state, then its list of
//! mappers, then a `Stale`, then the frame table of `GuestMemory`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::memory::{page_up, GuestMemory, Reclaim, PAGE_SIZE};
use super::pagecache::FileSource;
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
    pub fn charge(&self, n: u64) -> SysResult<()> {
        let fits = |u: u64| u.checked_add(n).filter(|&t| t <= self.limit);
        self.used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, fits)
            .map(|_| ())
            .map_err(|_| Errno::ENOSPC)
    }

    /// Gives back `n` bytes taken by [`Quota::charge`].
    pub fn release(&self, n: u64) {
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
    /// Pages of a cached file that a shared mapping may have written and
    /// that were not written back since (or are still mapped writable).
    dirty: BTreeSet<u64>,
}

/// Memory that several mappings and a file can share.
pub struct SharedObject {
    id: u64,
    mem: Arc<GuestMemory>,
    quota: Option<&'static Quota>,
    /// The host file this object caches, if it is a page cache.
    file: Option<FileSource>,
    state: Mutex<State>,
    /// The memory managers that mapped this object (to tell of shrinks).
    mappers: Mutex<Vec<Weak<Stale>>>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl SharedObject {
    /// An object of `size` bytes of zeros (MAP_SHARED|MAP_ANONYMOUS).
    pub fn new(mem: Arc<GuestMemory>, size: u64) -> Arc<SharedObject> {
        SharedObject::build(mem, size, None, None)
    }

    /// An empty object whose size is charged to `quota` (a tmpfs file).
    pub fn with_quota(mem: Arc<GuestMemory>, quota: &'static Quota) -> Arc<SharedObject> {
        SharedObject::build(mem, 0, Some(quota), None)
    }

    /// The page cache of a host file of `size` bytes: pages are read from
    /// `file` on first touch; clean ones nobody maps go under memory
    /// pressure.
    pub fn of_file(mem: &Arc<GuestMemory>, size: u64, file: FileSource) -> Arc<SharedObject> {
        let object = SharedObject::build(mem.clone(), size, None, Some(file));
        let weak: Weak<dyn Reclaim> = Arc::downgrade(&object) as Weak<dyn Reclaim>;
        mem.add_reclaimer(weak);
        object
    }

    fn build(
        mem: Arc<GuestMemory>,
        size: u64,
        quota: Option<&'static Quota>,
        file: Option<FileSource>,
    ) -> Arc<SharedObject> {
        Arc::new(SharedObject {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            mem,
            quota,
            file,
            state: Mutex::new(State {
                size,
                frames: BTreeMap::new(),
                dirty: BTreeSet::new(),
            }),
            mappers: Mutex::new(Vec::new()),
        })
    }

    /// The host file this object caches, if any.
    pub fn file(&self) -> Option<&FileSource> {
        self.file.as_ref()
    }

    /// Pages with a frame now.
    pub fn cached_pages(&self) -> u64 {
        self.state().frames.len() as u64
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

    /// The frame of page `index`, allocated on first use: zeroed, or read
    /// from the cached file.
    fn frame(&self, st: &mut State, index: u64) -> SysResult<u64> {
        if let Some(&f) = st.frames.get(&index) {
            return Ok(f);
        }
        // A memory file's budget counts the pages it holds, as tmpfs's
        // blocks do: a sparse file costs only what was written.
        self.charge(PAGE_SIZE)?;
        let f = match self.mem.alloc_frame() {
            Ok(f) => f,
            Err(e) => {
                self.release(PAGE_SIZE);
                return Err(e);
            }
        };
        if let Some(file) = &self.file {
            if let Err(e) = file.fill(&self.mem, f, index * PAGE_SIZE) {
                self.mem.decref(f);
                self.release(PAGE_SIZE);
                return Err(e);
            }
            // Bytes past the end (the file grew on the host) read as zeros.
            let within = st.size.saturating_sub(index * PAGE_SIZE);
            if within < PAGE_SIZE {
                self.mem.zero(f + within, (PAGE_SIZE - within) as usize);
            }
        }
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
    /// returns how many. Pages never touched read as zeros, or, in a
    /// file's cache, are read from the file (and stay cached).
    pub fn read(&self, off: u64, buf: &mut [u8]) -> usize {
        let mut st = self.state();
        let n = (st.size.saturating_sub(off)).min(buf.len() as u64) as usize;
        let mut done = 0;
        while done < n {
            let at = off + done as u64;
            let len = ((PAGE_SIZE - at % PAGE_SIZE) as usize).min(n - done);
            let part = &mut buf[done..done + len];
            let index = at / PAGE_SIZE;
            let frame = match st.frames.get(&index) {
                Some(&f) => Some(f),
                None if self.file.is_some() => match self.frame(&mut st, index) {
                    Ok(f) => Some(f),
                    // Short: the file could not be read (or no frame).
                    Err(_) => return done,
                },
                None => None,
            };
            match frame {
                Some(f) => self.mem.read(f + at % PAGE_SIZE, part),
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
        st.size = new;
        if done == 0 && !buf.is_empty() {
            return Err(Errno::ENOSPC);
        }
        Ok(done)
    }

    /// Sets the size (ftruncate): growth reads as zeros; shrinking drops
    /// the pages past the new end, here and, soon, in every mapping.
    pub fn set_size(&self, len: u64) -> SysResult<()> {
        self.resize(&mut self.state(), len)
    }

    /// Truncates the cached file with `host` (the host's truncate) and
    /// this object with it, under the object's lock: no write-back of a
    /// page past the new end can land after the host's truncate.
    pub fn truncate_with(&self, len: u64, host: impl FnOnce() -> SysResult<()>) -> SysResult<()> {
        let mut st = self.state();
        host()?;
        self.resize(&mut st, len)
    }

    fn resize(&self, st: &mut State, len: u64) -> SysResult<()> {
        let old = st.size;
        self.zero_tail(st, old.min(len));
        st.size = len;
        if len >= old {
            return Ok(());
        }
        let keep = page_up(len).unwrap_or(u64::MAX) / PAGE_SIZE;
        st.dirty.split_off(&keep);
        let dropped = st.frames.split_off(&keep);
        if !dropped.is_empty() {
            self.tell_mappers(keep * PAGE_SIZE);
        }
        self.release(dropped.len() as u64 * PAGE_SIZE);
        for f in dropped.into_values() {
            self.mem.decref(f);
        }
        Ok(())
    }

    /// fallocate of a memory file: gives every page of `[off, off+len)`
    /// below the size a frame now (charged, so ENOSPC comes now and not
    /// at a later write); on ENOSPC or ENOMEM takes back what it gave.
    pub fn allocate(&self, off: u64, len: u64) -> SysResult<()> {
        let mut st = self.state();
        let end = off.saturating_add(len).min(st.size);
        let mut made = vec![];
        for index in off / PAGE_SIZE..end.div_ceil(PAGE_SIZE) {
            if st.frames.contains_key(&index) {
                continue;
            }
            match self.frame(&mut st, index) {
                Ok(_) => made.push(index),
                Err(e) => {
                    for i in made {
                        if let Some(f) = st.frames.remove(&i) {
                            self.mem.decref(f);
                            self.release(PAGE_SIZE);
                        }
                    }
                    return Err(if e == Errno::ENOMEM { Errno::ENOSPC } else { e });
                }
            }
        }
        Ok(())
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
        let index = off / PAGE_SIZE;
        if !allocate && !st.frames.contains_key(&index) {
            return Err(Errno::ENOENT);
        }
        let f = self.frame(&mut st, index)?;
        self.mem.incref(f);
        Ok(f)
    }

    /// The offsets in `[lo, hi)` of the pages this object holds now that
    /// `wanted` asks for, each with its frame referenced once more for
    /// the caller.
    pub(super) fn take_cached(
        &self,
        lo: u64,
        hi: u64,
        wanted: impl Fn(u64) -> bool,
    ) -> Vec<(u64, u64)> {
        let st = self.state();
        let end = page_up(st.size).unwrap_or(u64::MAX).min(hi);
        if lo >= end {
            return vec![];
        }
        let found: Vec<(u64, u64)> = st
            .frames
            .range(lo / PAGE_SIZE..end.div_ceil(PAGE_SIZE))
            .map(|(&i, &f)| (i * PAGE_SIZE, f))
            .filter(|&(off, _)| wanted(off))
            .collect();
        for &(_, f) in &found {
            self.mem.incref(f);
        }
        found
    }

    /// fallocate's PUNCH_HOLE: the bytes of `[off, off+len)` (within the
    /// object) read as zeros from now on, mappings included; whole pages
    /// nobody maps give their frames back and become holes.
    pub fn punch_hole(&self, off: u64, len: u64) {
        let mut st = self.state();
        let end = off.saturating_add(len).min(st.size);
        if off >= end {
            return;
        }
        let pages: Vec<(u64, u64)> = st
            .frames
            .range(off / PAGE_SIZE..end.div_ceil(PAGE_SIZE))
            .map(|(&i, &f)| (i, f))
            .collect();
        for (i, f) in pages {
            let (lo, hi) = ((i * PAGE_SIZE).max(off), ((i + 1) * PAGE_SIZE).min(end));
            if hi - lo == PAGE_SIZE && !st.dirty.contains(&i) && self.mem.free_if_sole(f) {
                st.frames.remove(&i);
                self.release(PAGE_SIZE);
            } else {
                self.mem.zero(f + (lo - i * PAGE_SIZE), (hi - lo) as usize);
            }
        }
    }

    /// lseek's SEEK_DATA (`hole` false) or SEEK_HOLE from `off`, where a
    /// hole is a page never given a frame (tmpfs's answer): ENXIO at or
    /// past the end.
    pub fn seek_data(&self, off: u64, hole: bool) -> SysResult<u64> {
        let st = self.state();
        if off >= st.size {
            return Err(Errno::ENXIO);
        }
        let first = off / PAGE_SIZE;
        let found = if hole {
            let mut i = first;
            while st.frames.contains_key(&i) {
                i += 1;
            }
            Some(i)
        } else {
            st.frames.range(first..).next().map(|(&i, _)| i)
        };
        match found.map(|i| (i * PAGE_SIZE).max(off)) {
            Some(at) if at < st.size => Ok(at),
            _ if hole => Ok(st.size),
            _ => Err(Errno::ENXIO),
        }
    }

    /// Whether writes through shared mappings must be tracked: this
    /// object caches a host file that may change (the pages go back).
    pub(super) fn tracks_dirty(&self) -> bool {
        self.file.as_ref().is_some_and(FileSource::mutable)
    }

    /// Marks the page at `off` dirty (a shared mapping wrote to it), if
    /// this object caches a file that may change.
    pub(super) fn mark_dirty(&self, off: u64) {
        if self.tracks_dirty() {
            let mut st = self.state();
            let index = off / PAGE_SIZE;
            if st.frames.contains_key(&index) {
                st.dirty.insert(index);
            }
        }
    }

    /// Writes `data` at `off` to the cached file with `host` (the host's
    /// pwrite, returning the bytes written), then the pages this object
    /// has take the new bytes and the size grows to cover them; under the
    /// object's lock, so that no write-back of an older page lands after
    /// it. Pages it lacks are read from the file when touched.
    pub fn write_through(
        &self,
        off: u64,
        data: &[u8],
        host: impl FnOnce(&[u8]) -> SysResult<usize>,
    ) -> SysResult<usize> {
        let mut st = self.state();
        let n = host(data)?;
        self.wrote(&mut st, off, &data[..n]);
        Ok(n)
    }

    fn wrote(&self, st: &mut State, off: u64, data: &[u8]) {
        let end = off.saturating_add(data.len() as u64);
        if end > st.size {
            let old = st.size;
            self.zero_tail(st, old);
            st.size = end;
        }
        let mut done = 0;
        while done < data.len() {
            let at = off + done as u64;
            let len = ((PAGE_SIZE - at % PAGE_SIZE) as usize).min(data.len() - done);
            if let Some(&f) = st.frames.get(&(at / PAGE_SIZE)) {
                self.mem.write(f + at % PAGE_SIZE, &data[done..done + len]);
            }
            done += len;
        }
    }

    /// Copies into `buf` (the file's bytes at `off`, as read from the
    /// host) what dirty pages hold there: mapping writes not yet written
    /// back.
    pub fn overlay_dirty(&self, off: u64, buf: &mut [u8]) {
        let st = self.state();
        let end = off.saturating_add(buf.len() as u64);
        let (first, last) = (off / PAGE_SIZE, end.div_ceil(PAGE_SIZE));
        for &index in st.dirty.range(first..last) {
            let Some(&f) = st.frames.get(&index) else {
                continue;
            };
            let lo = (index * PAGE_SIZE).max(off);
            let hi = ((index + 1) * PAGE_SIZE).min(end);
            let dst = &mut buf[(lo - off) as usize..(hi - off) as usize];
            self.mem.read(f + lo % PAGE_SIZE, dst);
        }
    }

    /// Writes the dirty pages back to the cached file; a page no mapping
    /// holds any more is clean afterwards. Returns the first error (the
    /// other pages are still tried).
    pub fn write_back(&self) -> SysResult<()> {
        let Some(file) = self.file.as_ref().filter(|f| f.mutable()) else {
            return Ok(());
        };
        let mut st = self.state();
        let mut result = Ok(());
        let dirty: Vec<u64> = st.dirty.iter().copied().collect();
        for index in dirty {
            let Some(&f) = st.frames.get(&index) else {
                st.dirty.remove(&index);
                continue;
            };
            let at = index * PAGE_SIZE;
            let len = st.size.saturating_sub(at).min(PAGE_SIZE) as usize;
            if len > 0 {
                if let Err(e) = file.write_back(&self.mem, f, at, len) {
                    log::warn!("page cache write-back at {at:#x}: {e:?}");
                    result = result.and(Err(e));
                    continue;
                }
            }
            if self.mem.refcount(f) == 1 {
                st.dirty.remove(&index);
            }
        }
        result
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

impl Reclaim for SharedObject {
    /// Lets go of the clean pages no mapping holds (they are read from the
    /// file again when next touched). An object busy now is skipped.
    fn reclaim(&self) -> u64 {
        if self.file.is_none() {
            return 0;
        }
        let Ok(mut st) = self.state.try_lock() else {
            return 0;
        };
        let st = &mut *st;
        let before = st.frames.len();
        st.frames
            .retain(|index, &mut f| st.dirty.contains(index) || !self.mem.free_if_sole(f));
        (before - st.frames.len()) as u64
    }

    fn held(&self) -> u64 {
        match (&self.file, self.state.try_lock()) {
            (Some(_), Ok(st)) => st.frames.len() as u64,
            _ => 0,
        }
    }
}

impl Drop for SharedObject {
    fn drop(&mut self) {
        if let Err(e) = self.write_back() {
            log::warn!("page cache dropped with pages not written back: {e:?}");
        }
        let st = self.state.get_mut().unwrap();
        let frames = std::mem::take(&mut st.frames);
        let held = frames.len() as u64 * PAGE_SIZE;
        for (_, f) in frames {
            self.mem.decref(f);
        }
        self.release(held);
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
    fn shared_object_quota_counts_pages_not_size() {
        static Q: Quota = Quota::new(2 * PAGE_SIZE);
        let o = SharedObject::with_quota(mem(), &Q);
        // A sparse size costs nothing; written pages do.
        assert_eq!(o.set_size(1 << 40), Ok(()));
        assert_eq!(Q.used(), 0);
        assert_eq!(o.write(PAGE_SIZE, &[1; 10]), Ok(10));
        assert_eq!(Q.used(), PAGE_SIZE);
        assert_eq!(o.write(5 * PAGE_SIZE, &[1; 10]), Ok(10));
        assert_eq!(o.write(9 * PAGE_SIZE, &[1; 10]), Err(Errno::ENOSPC));
        // fallocate reserves all or nothing.
        assert_eq!(
            o.allocate(20 * PAGE_SIZE, 3 * PAGE_SIZE),
            Err(Errno::ENOSPC)
        );
        assert_eq!(Q.used(), 2 * PAGE_SIZE);
        o.punch_hole(PAGE_SIZE, PAGE_SIZE);
        assert_eq!(Q.used(), PAGE_SIZE);
        assert_eq!(o.allocate(20 * PAGE_SIZE, PAGE_SIZE), Ok(()));
        assert_eq!(o.set_size(6 * PAGE_SIZE), Ok(()));
        assert_eq!(Q.used(), PAGE_SIZE);
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
