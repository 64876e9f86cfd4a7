//! Guest address spaces: the memory manager of one guest process.
//!
//! A [`MemoryManager`] owns the VMAs of a process (what the guest asked to
//! have mapped, with protections and backing) and the page map (which guest
//! pages currently have a frame of [`memory::GuestMemory`]). The platform's
//! [`AddressSpace`] only mirrors the page map: every change goes through
//! here first. Pages are populated on fault, a few at a time, and the
//! kernel's copies to and from guest virtual memory fault pages in exactly
//! as a guest access would, so a bad pointer yields EFAULT.
//!
//! fork shares every private frame copy-on-write: both processes map it
//! read-only (`Page::cow`) and the first write to it copies the frame, or
//! just maps it writable again once the other side let go of it.
//!
//! Shared mappings (MAP_SHARED, anonymous or of a file) are backed by a
//! [`SharedObject`]: their pages map the object's own frames, fork hands
//! the child the same object, and a write by anyone is seen by all. Such
//! pages are never copy-on-write. When an object shrinks, the memory
//! managers mapping it drop the pages past its end on their next entry
//! (see `shared`). A file's object is its data (tmpfs, memfd) or its page
//! cache (image and bind files, see `pagecache`); private file mappings
//! map the same frames copy-on-write, so every process mapping a library
//! shares its pages until it writes one. Dirty pages of a bind file's
//! cache go back to the host on msync, munmap and exit.
//!
//! Invariants: VMAs never overlap and are page aligned; every page lies
//! inside a VMA and is mapped in the platform with that VMA's protection,
//! less write while it is copy-on-write; each page holds one reference on
//! its frame; a page of a shared VMA is never copy-on-write and its frame
//! is the object's frame at that offset (or, until the note of a shrink is
//! applied, a frame the object has since dropped).
//!
//! Lock order: the futex table, then a memory manager (`Mm::lock`), then
//! a shared object (see `shared`), then the frame table.

pub mod fixed;
mod fork;
mod handle;
pub mod memory;
mod pagecache;
mod shared;
mod vma;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use fork::Snapshot;
pub use handle::{FutexKey, Mm};
pub use pagecache::{CacheSlot, FileSource};
pub use shared::{Quota, SharedObject, PAST_END};
pub use vma::{Backing, MapName, Vma};

use shared::Stale;

use crate::abi::{Errno, SysResult};
use crate::sentry::platform::{AddressSpace, MapRange, Prot};
use memory::{page_down, page_up, GuestMemory, PAGE_SIZE};

/// Pages populated around a faulting address in one go (fewer exits).
const FAULT_AROUND: u64 = 16;
/// Pages ahead of a fault in a file mapping taken from the page cache
/// when it has them (a quarter as many behind): see
/// `MemoryManager::take_cached_around`.
const CACHED_AROUND: u64 = 256;

/// Highest user address + 1 handed out to guests: the x86-64 user half
/// less its top 4 GiB, which the platforms keep for their stub code.
pub const USER_TOP: u64 = 0x7fff_0000_0000;

/// Room kept free below a grows-down VMA: it never grows closer than this
/// to an accessible mapping below, and mmap places nothing there unasked
/// (Linux's stack_guard_gap, 256 pages).
pub const STACK_GUARD_GAP: u64 = 256 * PAGE_SIZE;

/// Lowest address a grows-down VMA grows to (Linux's mmap_min_addr).
const MIN_ADDR: u64 = 0x1_0000;

/// The default RLIMIT_STACK (8 MiB).
pub const DEFAULT_STACK_LIMIT: u64 = 8 << 20;

/// A populated guest page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Page {
    frame: u64,
    /// Shared copy-on-write: mapped read-only even in a writable VMA.
    cow: bool,
    /// A clean page of a host file's cache in a shared mapping: mapped
    /// read-only until the first write marks it dirty in the cache.
    clean: bool,
}

impl Page {
    fn new(frame: u64, cow: bool) -> Page {
        Page {
            frame,
            cow,
            clean: false,
        }
    }
}

/// Where mmap puts a new mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Anywhere free, at the hint if it is (0: no hint).
    Hint(u64),
    /// Exactly there, replacing what was mapped (MAP_FIXED).
    Fixed(u64),
    /// Exactly there, EEXIST if anything is mapped (MAP_FIXED_NOREPLACE).
    FixedNoReplace(u64),
}

/// A mapping to make (mmap): `len` is page aligned and not zero.
pub struct MapRequest {
    pub placement: Placement,
    pub len: u64,
    pub prot: Prot,
    pub backing: Backing,
    /// See [`Vma::may_write`].
    pub may_write: bool,
    /// MAP_GROWSDOWN: see [`Vma::grows_down`].
    pub grows_down: bool,
    /// What /proc/[pid]/maps calls it (None: anonymous).
    pub name: Option<Arc<MapName>>,
}

/// The memory of one guest process.
pub struct MemoryManager {
    mem: Arc<GuestMemory>,
    space: Arc<dyn AddressSpace>,
    vmas: BTreeMap<u64, Vma>,
    pages: BTreeMap<u64, Page>,
    /// Notes of shrunk shared objects, applied by `settle`.
    stale: Arc<Stale>,
    /// Counts changes that widen what a page allows (COW breaks,
    /// mprotect): a thread whose protection fault raced one of them
    /// retries instead of taking SIGSEGV (see `Mm::widened`).
    widened: Arc<std::sync::atomic::AtomicU64>,
    /// Start of the heap (end of the loaded image) and current break.
    pub brk_start: u64,
    pub brk: u64,
    /// Top of the region where mmap picks addresses, growing down.
    pub mmap_top: u64,
    /// The largest a grows-down VMA may grow to (RLIMIT_STACK).
    pub stack_limit: u64,
}

fn effective(prot: Prot, page: Page) -> Prot {
    Prot {
        write: prot.write && !page.cow && !page.clean,
        ..prot
    }
}

impl MemoryManager {
    pub fn new(mem: Arc<GuestMemory>, space: Arc<dyn AddressSpace>) -> MemoryManager {
        MemoryManager {
            mem,
            space,
            vmas: BTreeMap::new(),
            pages: BTreeMap::new(),
            stale: Arc::default(),
            widened: Arc::default(),
            brk_start: 0,
            brk: 0,
            mmap_top: USER_TOP - (1 << 30),
            stack_limit: DEFAULT_STACK_LIMIT,
        }
    }

    /// The platform address space, for `Context::switch`.
    pub fn space(&self) -> &Arc<dyn AddressSpace> {
        &self.space
    }

    /// Pages that have a frame now.
    pub fn resident_pages(&self) -> u64 {
        self.pages.len() as u64
    }

    /// Pages with a frame in [start, end).
    pub fn resident_between(&self, start: u64, end: u64) -> u64 {
        self.pages.range(start..end).count() as u64
    }

    /// Copies what is populated of guest memory at `addr` into `buf`,
    /// stopping at the first page without a frame; returns the bytes
    /// copied. For other tasks reading this memory (/proc/[pid]/environ),
    /// which must not fault pages in.
    pub fn peek(&self, addr: u64, buf: &mut [u8]) -> usize {
        let mut done = 0usize;
        while done < buf.len() {
            let a = addr + done as u64;
            let Some(p) = self.pages.get(&page_down(a)) else {
                break;
            };
            let n = ((PAGE_SIZE - a % PAGE_SIZE) as usize).min(buf.len() - done);
            self.mem
                .read(p.frame + a % PAGE_SIZE, &mut buf[done..done + n]);
            done += n;
        }
        done
    }

    pub fn memory(&self) -> &Arc<GuestMemory> {
        &self.mem
    }

    /// Iterates the VMAs in address order as (start, vma).
    pub fn vmas(&self) -> impl Iterator<Item = (&u64, &Vma)> {
        self.vmas.iter()
    }

    /// The VMA containing `addr`, as (start, vma).
    pub fn vma_at(&self, addr: u64) -> Option<(u64, &Vma)> {
        let (&start, vma) = self.vmas.range(..=addr).next_back()?;
        (addr < vma.end).then_some((start, vma))
    }

    fn overlaps(&self, start: u64, end: u64) -> bool {
        self.vmas
            .range(..end)
            .next_back()
            .is_some_and(|(_, v)| v.end > start)
    }

    /// Finds a free range of `len` bytes at or below `mmap_top`, top down.
    pub fn find_free(&self, len: u64) -> SysResult<u64> {
        let mut top = self.mmap_top;
        for (&start, vma) in self.vmas.range(..self.mmap_top).rev() {
            if vma.end <= top && top - vma.end >= len {
                return Ok(top - len);
            }
            top = top.min(start_gap(start, vma));
        }
        if top >= len + PAGE_SIZE * 16 {
            return Ok(top - len);
        }
        Err(Errno::ENOMEM)
    }

    /// Maps `[start, start+len)`, replacing what was there. All page aligned.
    pub fn map(&mut self, start: u64, len: u64, prot: Prot, backing: Backing) -> SysResult<()> {
        let vma = Vma {
            end: 0,
            prot,
            backing,
            may_write: true,
            grows_down: false,
            name: None,
        };
        self.insert(start, len, vma)
    }

    /// Puts `vma` at `[start, start+len)` (its `end` is set here),
    /// replacing what was there.
    fn insert(&mut self, start: u64, len: u64, mut vma: Vma) -> SysResult<()> {
        vma.end = start
            .checked_add(len)
            .filter(|&e| e <= USER_TOP)
            .ok_or(Errno::ENOMEM)?;
        self.unmap(start, len)?;
        if let Some((object, _)) = vma.backing.shared() {
            object.attach(&self.stale);
        }
        self.vmas.insert(start, vma);
        Ok(())
    }

    /// Names the VMAs that lie within `[start, end)` (the loader's file
    /// segments, mapped by `map`).
    pub fn name_range(&mut self, start: u64, end: u64, name: &Arc<MapName>) {
        for (_, v) in self.vmas.range_mut(start..end) {
            if v.end <= end {
                v.name = Some(name.clone());
            }
        }
    }

    /// mmap: maps `req` where its placement allows; returns the address.
    pub fn mmap(&mut self, req: MapRequest) -> SysResult<u64> {
        let len = req.len;
        let fits = |a: u64| a.checked_add(len).is_some_and(|e| e <= USER_TOP);
        let start = match req.placement {
            Placement::Hint(a) if a != 0 && a % PAGE_SIZE == 0 && fits(a) => {
                if self.overlaps(a, a + len) || self.in_guard_gap(a + len) {
                    self.find_free(len)?
                } else {
                    a
                }
            }
            Placement::Hint(_) => self.find_free(len)?,
            Placement::Fixed(a) => a,
            Placement::FixedNoReplace(a) => {
                if fits(a) && self.overlaps(a, a + len) {
                    return Err(Errno::EEXIST);
                }
                a
            }
        };
        let vma = Vma {
            end: 0,
            prot: req.prot,
            backing: req.backing,
            may_write: req.may_write,
            grows_down: req.grows_down,
            name: req.name,
        };
        self.insert(start, len, vma)?;
        Ok(start)
    }

    /// Whether a mapping ending at `end` would lie in the guard gap of the
    /// grows-down VMA above it.
    fn in_guard_gap(&self, end: u64) -> bool {
        let above = self.vmas.range(end..).next();
        above.is_some_and(|(&s, v)| v.grows_down && end > s.saturating_sub(STACK_GUARD_GAP))
    }

    /// Grows the grows-down VMA just above `addr` (which no VMA holds) down
    /// to its page, as a fault there does on Linux; returns the VMA's new
    /// start. EFAULT (the guest's SIGSEGV) when there is none, when it
    /// would outgrow `stack_limit`, or come within the guard gap of an
    /// accessible mapping below (a PROT_NONE one, or another stack, may be
    /// reached).
    fn grow_down(&mut self, addr: u64) -> SysResult<u64> {
        let (&start, vma) = self.vmas.range(addr..).next().ok_or(Errno::EFAULT)?;
        let new = page_down(addr);
        let anon = matches!(vma.backing, Backing::Anon);
        if !vma.grows_down || !anon || new < MIN_ADDR || vma.end - new > self.stack_limit {
            return Err(Errno::EFAULT);
        }
        if let Some((_, below)) = self.vmas.range(..new).next_back() {
            let p = below.prot;
            let accessible = p.read || p.write || p.exec;
            if !below.grows_down && accessible && new - below.end < STACK_GUARD_GAP {
                return Err(Errno::EFAULT);
            }
        }
        let vma = self.vmas.remove(&start).ok_or(Errno::EFAULT)?;
        self.vmas.insert(new, vma);
        Ok(new)
    }

    /// Splits the VMA that contains `addr` (strictly inside) in two.
    fn split_at(&mut self, addr: u64) {
        let Some((start, vma)) = self.vma_at(addr) else {
            return;
        };
        if start == addr {
            return;
        }
        let mut tail = vma.clone();
        tail.backing = tail.backing.advanced(addr - start);
        self.vmas.get_mut(&start).unwrap().end = addr;
        self.vmas.insert(addr, tail);
    }

    /// Removes every mapping in `[start, start+len)`.
    pub fn unmap(&mut self, start: u64, len: u64) -> SysResult<()> {
        let end = start.checked_add(len).ok_or(Errno::EINVAL)?;
        self.split_at(start);
        self.split_at(end);
        let doomed: Vec<u64> = self.vmas.range(start..end).map(|(&s, _)| s).collect();
        let removed: Vec<Vma> = doomed.iter().filter_map(|s| self.vmas.remove(s)).collect();
        self.drop_pages(start, end);
        for object in written_files(removed.iter()) {
            // munmap succeeds whatever the host says (as Linux's does).
            let _ = object.write_back();
        }
        Ok(())
    }

    /// mremap: resizes the mapping at `[old, old+old_len)` (which must lie
    /// in one VMA) to `new_len`, in place when it can, else at a new
    /// address when `may_move` (or at `fixed`); pages move with their
    /// frames. An `old_len` of 0 maps the same pages of a shared mapping
    /// a second time. Returns the mapping's address.
    pub fn remap(
        &mut self,
        old: u64,
        old_len: u64,
        new_len: u64,
        may_move: bool,
        fixed: Option<u64>,
    ) -> SysResult<u64> {
        let (start, vma) = self.vma_at(old).ok_or(Errno::EFAULT)?;
        let old_end = old.checked_add(old_len).ok_or(Errno::EINVAL)?;
        if old_end > vma.end {
            return Err(Errno::EFAULT);
        }
        let moved_vma = Vma {
            end: 0,
            prot: vma.prot,
            backing: vma.backing.advanced(old - start),
            may_write: vma.may_write,
            grows_down: vma.grows_down,
            name: vma.name.clone(),
        };
        if old_len == 0 {
            return self.duplicate(moved_vma, new_len, may_move, fixed);
        }
        if fixed.is_none() {
            if new_len <= old_len {
                self.unmap(old + new_len, old_len - new_len)?;
                return Ok(old);
            }
            let grow_end = old
                .checked_add(new_len)
                .filter(|&e| e <= USER_TOP)
                .ok_or(Errno::ENOMEM)?;
            if old_end == vma.end && !self.overlaps(old_end, grow_end) {
                self.split_at(old);
                self.vmas.get_mut(&old).ok_or(Errno::EFAULT)?.end = grow_end;
                return Ok(old);
            }
            if !may_move {
                return Err(Errno::ENOMEM);
            }
        }
        let new = match fixed {
            Some(at) => {
                self.unmap(at, new_len)?;
                at
            }
            None => self.find_free(new_len)?,
        };
        // Take the pages out, drop the old mapping, map the new one and put
        // the pages (with their frames) back at their new addresses.
        let keep = old_len.min(new_len);
        let moved: Vec<(u64, Page)> = self
            .pages
            .range(old..old + keep)
            .map(|(&a, &p)| (a, p))
            .collect();
        for (a, _) in &moved {
            self.pages.remove(a);
        }
        if let Err(e) = self.space.unmap(old, old_len) {
            log::error!("platform unmap for mremap: {e}");
        }
        self.unmap(old, old_len)?;
        let prot = moved_vma.prot;
        self.insert(new, new_len, moved_vma)?;
        for (a, page) in moved {
            let to = new + (a - old);
            self.pages.insert(to, page);
            self.space
                .map(to, PAGE_SIZE, page.frame, effective(prot, page))
                .map_err(|_| Errno::ENOMEM)?;
        }
        Ok(new)
    }

    /// mremap with an old length of 0: `vma` (a shared one) mapped again,
    /// `len` bytes long, elsewhere.
    fn duplicate(
        &mut self,
        vma: Vma,
        len: u64,
        may_move: bool,
        fixed: Option<u64>,
    ) -> SysResult<u64> {
        if vma.backing.shared().is_none() {
            return Err(Errno::EINVAL);
        }
        let new = match fixed {
            Some(at) => at,
            // Growing a zero-length range in place never fits.
            None if !may_move => return Err(Errno::ENOMEM),
            None => self.find_free(len)?,
        };
        self.insert(new, len, vma)?;
        Ok(new)
    }

    /// Whether the page at `addr` has a frame (mincore): mapped here, or,
    /// for a shared mapping, held by its object.
    pub fn resident(&self, addr: u64) -> bool {
        let page = page_down(addr);
        if self.pages.contains_key(&page) {
            return true;
        }
        let shared = self.vma_at(page).and_then(|(s, v)| {
            v.shared_at(s, page)
                .map(|(object, off)| object.has_page(off))
        });
        shared.unwrap_or(false)
    }

    /// Whether every page of `[start, end)` lies in a VMA.
    fn covered(&self, start: u64, end: u64) -> bool {
        let mut at = start;
        while at < end {
            match self.vma_at(at) {
                Some((_, vma)) => at = vma.end,
                None => return false,
            }
        }
        true
    }

    /// msync: writes the dirty pages of the host files mapped shared in
    /// `[start, start+len)` back (EIO when the host refuses); ENOMEM when
    /// part of the range is not mapped. Memory files have nothing to
    /// write back.
    pub fn sync(&self, start: u64, len: u64) -> SysResult<()> {
        let end = start.checked_add(len).ok_or(Errno::ENOMEM)?;
        if !self.covered(start, end) {
            return Err(Errno::ENOMEM);
        }
        let first = self.vma_at(start).map_or(start, |(s, _)| s);
        for object in written_files(self.vmas.range(first..end).map(|(_, v)| v)) {
            object.write_back().map_err(|_| Errno::EIO)?;
        }
        Ok(())
    }

    /// Writes the dirty pages of every host file mapped shared back (a
    /// process's exit, before its parent hears of it); errors are logged.
    pub fn write_back_files(&self) {
        for object in written_files(self.vmas.values()) {
            let _ = object.write_back();
        }
    }

    /// Drops the pages of `[start, start+len)` but keeps the mappings: the
    /// next touch faults in zeros, the file's data or, for a shared
    /// mapping, the object's page again (its data stays).
    pub fn discard(&mut self, start: u64, len: u64) {
        self.drop_pages(start, start.saturating_add(len));
    }

    /// MADV_FREE: as `discard`, for private anonymous memory only (EINVAL
    /// for any other mapping in the range).
    pub fn free(&mut self, start: u64, len: u64) -> SysResult<()> {
        let end = start.saturating_add(len);
        let first = self.vma_at(start).map_or(start, |(s, _)| s);
        let other = self
            .vmas
            .range(first..end)
            .any(|(_, v)| v.end > start && !matches!(v.backing, Backing::Anon));
        if other {
            return Err(Errno::EINVAL);
        }
        self.discard(start, len);
        Ok(())
    }

    /// Applies the notes of shared objects that shrank: their pages past
    /// the new end go (the next touch there is a SIGBUS). Run by the
    /// memory manager's own threads (`Mm::lock`, `Mm::settle`).
    pub fn settle(&mut self) {
        for (id, from) in self.stale.take() {
            let doomed: Vec<(u64, u64)> = self
                .vmas
                .iter()
                .filter_map(|(&s, v)| {
                    let (object, offset) = v.backing.shared()?;
                    if object.id() != id {
                        return None;
                    }
                    let first = s.checked_add(from.saturating_sub(offset))?;
                    (first < v.end).then_some((first, v.end))
                })
                .collect();
            for (start, end) in doomed {
                self.drop_pages(start, end);
            }
        }
    }

    /// Whether the page at `addr` lies past the end of its shared object.
    fn past_end(&self, addr: u64) -> bool {
        let shared = self.vma_at(addr).and_then(|(s, v)| v.shared_at(s, addr));
        shared.is_some_and(|(object, off)| page_up(object.size()).is_some_and(|end| off >= end))
    }

    /// The futex key of the word at `addr` if it lies in a shared mapping:
    /// (object id, offset).
    pub fn shared_word(&self, addr: u64) -> Option<(u64, u64)> {
        let (start, vma) = self.vma_at(addr)?;
        let (object, off) = vma.shared_at(start, addr)?;
        Some((object.id(), off))
    }

    fn drop_pages(&mut self, start: u64, end: u64) {
        let doomed: Vec<(u64, Page)> = self
            .pages
            .range(start..end)
            .map(|(&a, &p)| (a, p))
            .collect();
        if doomed.is_empty() {
            return;
        }
        if let Err(e) = self.space.unmap(start, end - start) {
            log::error!("platform unmap {start:#x}-{end:#x}: {e}");
        }
        for (addr, page) in doomed {
            self.pages.remove(&addr);
            self.mem.decref(page.frame);
        }
    }

    /// Changes the protection of `[start, start+len)`; every page of it must
    /// be mapped (ENOMEM otherwise, as Linux), and write allowed where it
    /// is asked for (EACCES).
    pub fn protect(&mut self, start: u64, len: u64, prot: Prot) -> SysResult<()> {
        self.widened
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let end = start.checked_add(len).ok_or(Errno::EINVAL)?;
        if !self.covered(start, end) {
            return Err(Errno::ENOMEM);
        }
        let first = self.vma_at(start).map_or(start, |(s, _)| s);
        let refused = |v: &Vma| !v.may_write || v.backing.fixed().is_some_and(|f| !f.may_write);
        if prot.write && self.vmas.range(first..end).any(|(_, v)| refused(v)) {
            return Err(Errno::EACCES);
        }
        self.split_at(start);
        self.split_at(end);
        for (_, vma) in self.vmas.range_mut(start..end) {
            vma.prot = prot;
        }
        let present: Vec<(u64, Page, Prot)> = self
            .pages
            .range(start..end)
            .map(|(&a, &p)| (a, p, prot))
            .collect();
        self.map_pages(&present)
    }

    /// Maps each (address, page, VMA protection) in the platform, as
    /// the page allows ([`effective`]), runs of pages on contiguous
    /// frames as one range, all in one platform call.
    fn map_pages(&self, pages: &[(u64, Page, Prot)]) -> SysResult<()> {
        let mut ranges: Vec<MapRange> = Vec::new();
        for &(addr, page, prot) in pages {
            let prot = effective(prot, page);
            if let Some(last) = ranges.last_mut() {
                if last.addr + last.len == addr
                    && last.offset + last.len == page.frame
                    && last.prot == prot
                {
                    last.len += PAGE_SIZE;
                    continue;
                }
            }
            ranges.push(MapRange {
                addr,
                len: PAGE_SIZE,
                offset: page.frame,
                prot,
            });
        }
        self.space.map_many(&ranges).map_err(|_| Errno::ENOMEM)
    }

    /// Marks the page at `addr` dirty in its object, if it is a page of a
    /// shared mapping of a host file (written to).
    fn mark_dirty(&self, addr: u64) {
        let shared = self.vma_at(addr).and_then(|(s, v)| v.shared_at(s, addr));
        if let Some((object, off)) = shared {
            object.mark_dirty(off);
        }
    }

    /// Sets the program break; returns the new (or unchanged) break.
    pub fn set_brk(&mut self, want: u64) -> u64 {
        if want < self.brk_start {
            return self.brk;
        }
        let old_end = page_up(self.brk).unwrap_or(self.brk);
        let Some(new_end) = page_up(want) else {
            return self.brk;
        };
        if new_end > old_end {
            if self.overlaps(old_end, new_end) {
                return self.brk;
            }
            let rw = Prot {
                read: true,
                write: true,
                exec: false,
            };
            if self
                .map(old_end, new_end - old_end, rw, Backing::Anon)
                .is_err()
            {
                return self.brk;
            }
        } else if new_end < old_end {
            let _ = self.unmap(new_end, old_end - new_end);
        }
        self.brk = want;
        self.brk
    }

    /// Handles a guest page fault at `addr`; `present` says the page was
    /// mapped (a protection fault). Platforms that cannot tell a write
    /// from a read (ptrace) report `write: false`: a protection fault on a
    /// copy-on-write page of a writable VMA is then taken as a write. Err
    /// means the access is not allowed: PAST_END for a page past the end
    /// of a shared object (the guest gets SIGBUS), else SIGSEGV.
    pub fn fault(&mut self, addr: u64, write: bool, exec: bool, present: bool) -> SysResult<()> {
        if self.vma_at(addr).is_none() {
            self.grow_down(addr)?;
        }
        let (start, vma) = self.vma_at(addr).ok_or(Errno::EFAULT)?;
        let allowed = if write {
            vma.prot.write
        } else if exec {
            vma.prot.exec
        } else {
            vma.prot.read || vma.prot.write || vma.prot.exec
        };
        if !allowed {
            return Err(Errno::EFAULT);
        }
        let (end, prot) = (vma.end, vma.prot);
        let page = page_down(addr);
        if let Some(&p) = self.pages.get(&page) {
            if p.cow && prot.write && (write || present) && !exec {
                return self.break_cow(page, p, prot);
            }
            if p.clean && prot.write && (write || present) && !exec {
                self.dirty(page, p);
                return self
                    .space
                    .map(page, PAGE_SIZE, p.frame, prot)
                    .map_err(|_| Errno::ENOMEM);
            }
            if present {
                // Mapped with the VMA's full protection: a real violation.
                return Err(Errno::EFAULT);
            }
            return self
                .space
                .map(page, PAGE_SIZE, p.frame, effective(prot, p))
                .map_err(|_| Errno::EFAULT);
        }
        self.populate_frame(page, start, false)?;
        let p = self.pages[&page];
        if write && p.cow {
            // A fixed frame (the vDSO) starts copy-on-write.
            self.unshare(page, p)?;
        }
        if write && p.clean {
            self.dirty(page, p);
        }
        let mut fresh = vec![page];
        let lo = page.saturating_sub(FAULT_AROUND / 4 * PAGE_SIZE).max(start);
        let hi = (page + FAULT_AROUND * PAGE_SIZE).min(end);
        for p in (lo..hi).step_by(PAGE_SIZE as usize) {
            if !self.pages.contains_key(&p) && self.populate_frame(p, start, true).is_ok() {
                fresh.push(p);
            }
        }
        fresh.extend(self.take_cached_around(page, start, end));
        fresh.sort_unstable();
        self.map_runs(&fresh, prot)
    }

    /// Pages of a file-backed VMA `[start, end)` near `page` that the page
    /// cache holds already and this process does not map yet: they cost
    /// no I/O and no memory, and every fault saved is a round trip into
    /// the sentry (a VM exit, or two ptrace stops and an injection).
    /// Returns the pages taken.
    fn take_cached_around(&mut self, page: u64, start: u64, end: u64) -> Vec<u64> {
        let vma = &self.vmas[&start];
        let (object, base, cow, clean, below) = match &vma.backing {
            Backing::File {
                object,
                offset,
                zero_from,
            } => {
                // The page holding the start of bss is a private copy.
                let below = zero_from.map_or(end, page_down);
                (object.clone(), *offset, true, false, below)
            }
            Backing::Shared { object, offset } => {
                (object.clone(), *offset, false, object.tracks_dirty(), end)
            }
            _ => return vec![],
        };
        let lo = page
            .saturating_sub(CACHED_AROUND / 4 * PAGE_SIZE)
            .max(start);
        let hi = page
            .saturating_add(CACHED_AROUND * PAGE_SIZE)
            .min(end)
            .min(below);
        if lo >= hi {
            return vec![];
        }
        let pages = &self.pages;
        let unmapped = |off: u64| !pages.contains_key(&(start + (off - base)));
        let cached = object.take_cached(base + (lo - start), base + (hi - start), unmapped);
        let mut taken = vec![];
        for (off, frame) in cached {
            let addr = start + (off - base);
            self.pages.insert(
                addr,
                Page {
                    clean,
                    ..Page::new(frame, cow)
                },
            );
            taken.push(addr);
        }
        taken
    }

    /// The first write to a clean page of a host file's cache: the cache
    /// learns it is dirty, and the page may be written from now on.
    fn dirty(&mut self, page: u64, p: Page) {
        self.widened
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.mark_dirty(page);
        self.pages.insert(page, Page { clean: false, ..p });
    }

    /// Gives `page` its own writable frame: a copy while another process
    /// still shares the frame, else the frame itself.
    fn break_cow(&mut self, page: u64, p: Page, prot: Prot) -> SysResult<()> {
        self.widened
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let frame = self.unshare(page, p)?;
        self.space
            .map(page, PAGE_SIZE, frame, prot)
            .map_err(|_| Errno::ENOMEM)
    }

    /// The frame part of a COW break (not mapped yet): returns the page's
    /// own frame.
    fn unshare(&mut self, page: u64, p: Page) -> SysResult<u64> {
        let frame = if self.mem.refcount(p.frame) > 1 {
            let copy = self.mem.alloc_frame()?;
            self.mem.copy_frame(p.frame, copy);
            self.mem.decref(p.frame);
            copy
        } else {
            p.frame
        };
        self.pages.insert(page, Page::new(frame, false));
        Ok(frame)
    }

    /// Maps the given sorted fresh pages of a VMA with protection `prot`.
    fn map_runs(&mut self, pages: &[u64], prot: Prot) -> SysResult<()> {
        let list: Vec<(u64, Page, Prot)> =
            pages.iter().map(|a| (*a, self.pages[a], prot)).collect();
        self.map_pages(&list)
    }

    /// Gives `page` a frame from the VMA's backing (not yet mapped in the
    /// platform): the shared object's own, or a new one filled from it.
    /// Pages populated `around` a fault only map what a shared object
    /// already has (an untouched page stays untouched, as mincore shows).
    fn populate_frame(&mut self, page: u64, vma_start: u64, around: bool) -> SysResult<()> {
        let vma = &self.vmas[&vma_start];
        if let Some((object, off)) = vma.shared_at(vma_start, page) {
            let frame = object.page(off, !around)?;
            let clean = object.tracks_dirty();
            self.pages.insert(
                page,
                Page {
                    clean,
                    ..Page::new(frame, false)
                },
            );
            return Ok(());
        }
        if let Backing::Fixed { frames, index } = &vma.backing {
            // The fixed frame itself, copy-on-write: never written here.
            let frame = frames
                .frame(index + (page - vma_start) / PAGE_SIZE)
                .ok_or(Errno::EFAULT)?;
            self.mem.incref(frame);
            self.pages.insert(page, Page::new(frame, true));
            return Ok(());
        }
        if let Backing::File {
            object,
            offset,
            zero_from,
        } = &vma.backing
        {
            let cached = object.page(offset + (page - vma_start), true)?;
            // Bytes of this page at or past `z` (a guest address) are
            // bss, not file data: the page is a private copy at once.
            let Some(z) = zero_from.filter(|&z| z < page + PAGE_SIZE) else {
                self.pages.insert(page, Page::new(cached, true));
                return Ok(());
            };
            let copy = self.mem.alloc_frame();
            if let Ok(copy) = copy {
                self.mem.copy_frame(cached, copy);
                let from = z.saturating_sub(page);
                self.mem.zero(copy + from, (PAGE_SIZE - from) as usize);
                self.pages.insert(page, Page::new(copy, false));
            }
            self.mem.decref(cached);
            return copy.map(|_| ());
        }
        let frame = self.mem.alloc_frame()?;
        self.pages.insert(page, Page::new(frame, false));
        Ok(())
    }

    /// Resolves guest `addr` to its frame offset for an access of the given
    /// kind, faulting the page in as the guest would (EFAULT where the
    /// guest would get SIGSEGV or SIGBUS).
    fn translate(&mut self, addr: u64, write: bool) -> SysResult<u64> {
        self.translate_faulting(addr, write).map_err(|e| match e {
            PAST_END => Errno::EFAULT,
            e => e,
        })
    }

    fn translate_faulting(&mut self, addr: u64, write: bool) -> SysResult<u64> {
        let page = page_down(addr);
        match self.pages.get(&page) {
            Some(p) if !(write && (p.cow || p.clean)) => {
                let (_, vma) = self.vma_at(addr).ok_or(Errno::EFAULT)?;
                if write && !vma.prot.write {
                    return Err(Errno::EFAULT);
                }
                Ok(p.frame + (addr - page))
            }
            Some(_) => {
                self.fault(addr, true, false, true)?;
                Ok(self.pages[&page].frame + (addr - page))
            }
            None => {
                self.fault(addr, write, false, false)?;
                Ok(self.pages[&page].frame + (addr - page))
            }
        }
    }

    /// Copies guest memory at `addr` into `buf` (EFAULT on a bad address).
    pub fn copy_in(&mut self, addr: u64, buf: &mut [u8]) -> SysResult<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let a = addr.checked_add(done as u64).ok_or(Errno::EFAULT)?;
            let n = ((PAGE_SIZE - a % PAGE_SIZE) as usize).min(buf.len() - done);
            let off = self.translate(a, false)?;
            self.mem.read(off, &mut buf[done..done + n]);
            done += n;
        }
        Ok(())
    }

    /// Copies `buf` into guest memory at `addr` (EFAULT on a bad address).
    pub fn copy_out(&mut self, addr: u64, buf: &[u8]) -> SysResult<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let a = addr.checked_add(done as u64).ok_or(Errno::EFAULT)?;
            let n = ((PAGE_SIZE - a % PAGE_SIZE) as usize).min(buf.len() - done);
            let off = self.translate(a, true)?;
            self.mem.write(off, &buf[done..done + n]);
            done += n;
        }
        Ok(())
    }

    pub fn read_u64(&mut self, addr: u64) -> SysResult<u64> {
        let mut b = [0u8; 8];
        self.copy_in(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    pub fn write_u64(&mut self, addr: u64, v: u64) -> SysResult<()> {
        self.copy_out(addr, &v.to_le_bytes())
    }

    pub fn write_u32(&mut self, addr: u64, v: u32) -> SysResult<()> {
        self.copy_out(addr, &v.to_le_bytes())
    }

    /// Reads a NUL-terminated string of at most `max` bytes (without the
    /// NUL). ENAMETOOLONG when no NUL is found within `max`.
    pub fn read_cstr(&mut self, addr: u64, max: usize) -> SysResult<Vec<u8>> {
        let mut out = Vec::new();
        let mut a = addr;
        loop {
            let n = (PAGE_SIZE - a % PAGE_SIZE) as usize;
            let mut chunk = vec![0u8; n];
            self.copy_in(a, &mut chunk)?;
            if let Some(z) = chunk.iter().position(|&b| b == 0) {
                out.extend_from_slice(&chunk[..z]);
                return Ok(out);
            }
            out.extend_from_slice(&chunk);
            if out.len() > max {
                return Err(Errno::ENAMETOOLONG);
            }
            a += n as u64;
        }
    }
}

impl MemoryManager {
    /// The process is gone: every mapping and its frames go now, as
    /// Linux's exit_mm does before the parent can see the exit, not when
    /// the last reference to the memory manager drops. The platform's
    /// address space keeps its stale entries, which nothing runs in again.
    /// Host files mapped shared then get their dirty pages back: after
    /// the pages let go of their frames, so that a page no other process
    /// maps is clean afterwards (see `SharedObject::write_back`).
    pub fn release_all(&mut self) {
        for (_, page) in std::mem::take(&mut self.pages) {
            self.mem.decref(page.frame);
        }
        self.write_back_files();
        self.vmas.clear();
    }
}

/// Where the room kept below a VMA starts: its guard gap for a grows-down
/// one.
fn start_gap(start: u64, vma: &Vma) -> u64 {
    if vma.grows_down {
        start.saturating_sub(STACK_GUARD_GAP)
    } else {
        start
    }
}

/// The page cache objects shared VMAs of `vmas` write to, whose dirty
/// pages go back to a host file: each once, though a mapping split by
/// mprotect or a partial munmap is several VMAs of one object (each would
/// write the same dirty pages back again).
fn written_files<'a>(vmas: impl Iterator<Item = &'a Vma>) -> Vec<Arc<SharedObject>> {
    let mut files: Vec<Arc<SharedObject>> = Vec::new();
    for (object, _) in vmas.filter_map(|v| v.backing.shared()) {
        let mutable = object.file().is_some_and(FileSource::mutable);
        if mutable && !files.iter().any(|f| Arc::ptr_eq(f, object)) {
            files.push(object.clone());
        }
    }
    files
}

impl Drop for MemoryManager {
    /// Process exit (or exec), when `release_all` did not run: as it.
    fn drop(&mut self) {
        self.release_all();
    }
}

#[cfg(test)]
mod tests;
