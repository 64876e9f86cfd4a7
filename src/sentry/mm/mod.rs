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
//! fork shares every frame copy-on-write: both processes map it read-only
//! (`Page::cow`) and the first write to it copies the frame, or just maps
//! it writable again once the other side let go of it.
//!
//! Invariants: VMAs never overlap and are page aligned; every page lies
//! inside a VMA and is mapped in the platform with that VMA's protection,
//! less write while it is copy-on-write; each page holds one reference on
//! its frame.

pub mod fixed;
pub mod memory;
mod vma;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

pub use vma::{Backing, PageSource, Vma};

use crate::abi::{Errno, SysResult};
use crate::sentry::platform::{AddressSpace, Prot};
use memory::{page_down, page_up, GuestMemory, PAGE_SIZE};

/// Pages populated around a faulting address in one go (fewer exits).
const FAULT_AROUND: u64 = 16;

/// Highest user address + 1 handed out to guests: the x86-64 user half
/// less its top 4 GiB, which the platforms keep for their stub code.
pub const USER_TOP: u64 = 0x7fff_0000_0000;

/// A populated guest page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Page {
    frame: u64,
    /// Shared copy-on-write: mapped read-only even in a writable VMA.
    cow: bool,
}

/// What fork hands the child: the VMAs and pages of the parent, every
/// frame already referenced once more for the child.
pub struct Snapshot {
    mem: Arc<GuestMemory>,
    vmas: BTreeMap<u64, Vma>,
    pages: BTreeMap<u64, Page>,
    brk_start: u64,
    brk: u64,
    mmap_top: u64,
}

/// The memory of one guest process.
pub struct MemoryManager {
    mem: Arc<GuestMemory>,
    space: Arc<dyn AddressSpace>,
    vmas: BTreeMap<u64, Vma>,
    pages: BTreeMap<u64, Page>,
    /// Start of the heap (end of the loaded image) and current break.
    pub brk_start: u64,
    pub brk: u64,
    /// Top of the region where mmap picks addresses, growing down.
    pub mmap_top: u64,
}

fn effective(prot: Prot, page: Page) -> Prot {
    Prot {
        write: prot.write && !page.cow,
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
            brk_start: 0,
            brk: 0,
            mmap_top: USER_TOP - (1 << 30),
        }
    }

    /// The platform address space, for `Context::switch`.
    pub fn space(&self) -> &Arc<dyn AddressSpace> {
        &self.space
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
            top = top.min(start);
        }
        if top >= len + PAGE_SIZE * 16 {
            return Ok(top - len);
        }
        Err(Errno::ENOMEM)
    }

    /// Maps `[start, start+len)`, replacing what was there. All page aligned.
    pub fn map(&mut self, start: u64, len: u64, prot: Prot, backing: Backing) -> SysResult<()> {
        let end = start
            .checked_add(len)
            .filter(|&e| e <= USER_TOP)
            .ok_or(Errno::ENOMEM)?;
        self.unmap(start, len)?;
        self.vmas.insert(start, Vma { end, prot, backing });
        Ok(())
    }

    /// Maps at `start` only if nothing is mapped there.
    pub fn map_noreplace(
        &mut self,
        start: u64,
        len: u64,
        prot: Prot,
        backing: Backing,
    ) -> SysResult<()> {
        let end = start.checked_add(len).ok_or(Errno::ENOMEM)?;
        if self.overlaps(start, end) {
            return Err(Errno::EEXIST);
        }
        self.map(start, len, prot, backing)
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
        for s in doomed {
            self.vmas.remove(&s);
        }
        self.drop_pages(start, end);
        Ok(())
    }

    /// mremap: resizes the mapping at `[old, old+old_len)` (which must lie
    /// in one VMA) to `new_len`, in place when it can, else at a new
    /// address when `may_move` (or at `fixed`); pages move with their
    /// frames. Returns the mapping's address.
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
        let (prot, backing) = (vma.prot, vma.backing.advanced(old - start));
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
        self.vmas.insert(
            new,
            Vma {
                end: new + new_len,
                prot,
                backing,
            },
        );
        for (a, page) in moved {
            let to = new + (a - old);
            self.pages.insert(to, page);
            self.space
                .map(to, PAGE_SIZE, page.frame, effective(prot, page))
                .map_err(|_| Errno::ENOMEM)?;
        }
        Ok(new)
    }

    /// Whether the page at `addr` has a frame (mincore).
    pub fn resident(&self, addr: u64) -> bool {
        self.pages.contains_key(&page_down(addr))
    }

    /// Drops the pages of `[start, start+len)` but keeps the mappings: the
    /// next touch faults in zeros (or the file's data).
    pub fn discard(&mut self, start: u64, len: u64) {
        self.drop_pages(start, start.saturating_add(len));
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
    /// be mapped (ENOMEM otherwise, as Linux).
    pub fn protect(&mut self, start: u64, len: u64, prot: Prot) -> SysResult<()> {
        let end = start.checked_add(len).ok_or(Errno::EINVAL)?;
        let mut at = start;
        while at < end {
            let (_, vma) = self.vma_at(at).ok_or(Errno::ENOMEM)?;
            if prot.write && vma.backing.fixed().is_some_and(|s| !s.may_write) {
                return Err(Errno::EACCES);
            }
            at = vma.end;
        }
        self.split_at(start);
        self.split_at(end);
        for (_, vma) in self.vmas.range_mut(start..end) {
            vma.prot = prot;
        }
        let present: Vec<(u64, Page)> = self
            .pages
            .range(start..end)
            .map(|(&a, &p)| (a, p))
            .collect();
        for (addr, page) in present {
            self.space
                .map(addr, PAGE_SIZE, page.frame, effective(prot, page))
                .map_err(|_| Errno::ENOMEM)?;
        }
        Ok(())
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
    /// means the access is not allowed (the guest gets SIGSEGV).
    pub fn fault(&mut self, addr: u64, write: bool, exec: bool, present: bool) -> SysResult<()> {
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
            if present {
                // Mapped with the VMA's full protection: a real violation.
                return Err(Errno::EFAULT);
            }
            return self
                .space
                .map(page, PAGE_SIZE, p.frame, effective(prot, p))
                .map_err(|_| Errno::EFAULT);
        }
        self.populate_frame(page, start)?;
        let p = self.pages[&page];
        if write && p.cow {
            // A shared frame (the vDSO) starts copy-on-write.
            self.unshare(page, p)?;
        }
        let mut fresh = vec![page];
        let lo = page.saturating_sub(FAULT_AROUND / 4 * PAGE_SIZE).max(start);
        let hi = (page + FAULT_AROUND * PAGE_SIZE).min(end);
        for p in (lo..hi).step_by(PAGE_SIZE as usize) {
            if !self.pages.contains_key(&p) && self.populate_frame(p, start).is_ok() {
                fresh.push(p);
            }
        }
        fresh.sort_unstable();
        self.map_runs(&fresh, prot)
    }

    /// Gives `page` its own writable frame: a copy while another process
    /// still shares the frame, else the frame itself.
    fn break_cow(&mut self, page: u64, p: Page, prot: Prot) -> SysResult<()> {
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
        self.pages.insert(page, Page { frame, cow: false });
        Ok(frame)
    }

    /// Maps the given sorted fresh pages, each run of pages with contiguous
    /// frames (and the same copy-on-write state) in one platform call.
    fn map_runs(&mut self, pages: &[u64], prot: Prot) -> SysResult<()> {
        let mut i = 0;
        while i < pages.len() {
            let first = pages[i];
            let page = self.pages[&first];
            let mut n = 1;
            while i + n < pages.len()
                && pages[i + n] == first + n as u64 * PAGE_SIZE
                && self.pages[&pages[i + n]].frame == page.frame + n as u64 * PAGE_SIZE
                && self.pages[&pages[i + n]].cow == page.cow
            {
                n += 1;
            }
            self.space
                .map(
                    first,
                    n as u64 * PAGE_SIZE,
                    page.frame,
                    effective(prot, page),
                )
                .map_err(|_| Errno::ENOMEM)?;
            i += n;
        }
        Ok(())
    }

    /// Gives `page` a frame filled from the VMA's backing (not yet mapped in
    /// the platform).
    fn populate_frame(&mut self, page: u64, vma_start: u64) -> SysResult<()> {
        let vma = &self.vmas[&vma_start];
        if let Backing::Fixed { frames, index } = &vma.backing {
            // The shared frame itself, copy-on-write: never written here.
            let frame = frames
                .frame(index + (page - vma_start) / PAGE_SIZE)
                .ok_or(Errno::EFAULT)?;
            self.mem.incref(frame);
            self.pages.insert(page, Page { frame, cow: true });
            return Ok(());
        }
        let frame = self.mem.alloc_frame()?;
        if let Backing::File {
            source,
            offset,
            zero_from,
        } = &vma.backing
        {
            let file_off = offset + (page - vma_start);
            if let Err(e) = source.fill(&self.mem, frame, file_off) {
                self.mem.decref(frame);
                return Err(e);
            }
            if let Some(z) = zero_from {
                // Bytes of this page at or past `z` (a guest address) are
                // bss, not file data.
                if *z < page + PAGE_SIZE {
                    let from = z.saturating_sub(page);
                    self.mem.zero(frame + from, (PAGE_SIZE - from) as usize);
                }
            }
        }
        self.pages.insert(page, Page { frame, cow: false });
        Ok(())
    }

    /// Resolves guest `addr` to its frame offset for an access of the given
    /// kind, faulting the page in as the guest would.
    fn translate(&mut self, addr: u64, write: bool) -> SysResult<u64> {
        let page = page_down(addr);
        match self.pages.get(&page) {
            Some(p) if !(write && p.cow) => {
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

    /// fork: shares every page copy-on-write with the child-to-be. Writable
    /// pages become read-only here; the child maps them read-only too.
    pub fn fork(&mut self) -> SysResult<Snapshot> {
        let mut shared = BTreeMap::new();
        let writable: Vec<(u64, Page, Prot)> = self
            .pages
            .iter()
            .filter_map(|(&a, &p)| {
                self.vma_at(a)
                    .filter(|(_, v)| v.prot.write && !p.cow)
                    .map(|(_, v)| (a, p, v.prot))
            })
            .collect();
        for (addr, page, prot) in writable {
            let cow = Page { cow: true, ..page };
            self.pages.insert(addr, cow);
            self.space
                .map(addr, PAGE_SIZE, page.frame, effective(prot, cow))
                .map_err(|_| Errno::ENOMEM)?;
        }
        for (&addr, &page) in &self.pages {
            self.mem.incref(page.frame);
            shared.insert(addr, page);
        }
        Ok(Snapshot {
            mem: self.mem.clone(),
            vmas: self.vmas.clone(),
            pages: shared,
            brk_start: self.brk_start,
            brk: self.brk,
            mmap_top: self.mmap_top,
        })
    }

    /// The child's side of fork: a memory manager over a new address space
    /// (made by the thread that will run the child) from `snap`.
    pub fn from_snapshot(
        space: Arc<dyn AddressSpace>,
        mut snap: Snapshot,
    ) -> SysResult<MemoryManager> {
        let mut mm = MemoryManager::new(snap.mem.clone(), space);
        (mm.brk_start, mm.brk, mm.mmap_top) = (snap.brk_start, snap.brk, snap.mmap_top);
        mm.vmas = std::mem::take(&mut snap.vmas);
        mm.pages = std::mem::take(&mut snap.pages);
        let pages: Vec<(u64, Page)> = mm.pages.iter().map(|(&a, &p)| (a, p)).collect();
        for (addr, page) in pages {
            let prot = mm.vma_at(addr).map(|(_, v)| v.prot).unwrap_or(Prot::NONE);
            mm.space
                .map(addr, PAGE_SIZE, page.frame, effective(prot, page))
                .map_err(|_| Errno::ENOMEM)?;
        }
        Ok(mm)
    }
}

impl Drop for Snapshot {
    /// Releases the child's references when the child never took the
    /// snapshot over (a failed fork).
    fn drop(&mut self) {
        for (_, page) in std::mem::take(&mut self.pages) {
            self.mem.decref(page.frame);
        }
    }
}

impl Drop for MemoryManager {
    fn drop(&mut self) {
        for (_, page) in std::mem::take(&mut self.pages) {
            self.mem.decref(page.frame);
        }
    }
}

/// The memory of a process as its threads hold it: one memory manager
/// behind a lock, shared by every thread made with CLONE_VM, and the
/// address space the threads' contexts run in without taking that lock.
#[derive(Clone)]
pub struct Mm {
    inner: Arc<Mutex<MemoryManager>>,
    space: Arc<dyn AddressSpace>,
}

impl Mm {
    pub fn new(mm: MemoryManager) -> Mm {
        Mm {
            space: mm.space.clone(),
            inner: Arc::new(Mutex::new(mm)),
        }
    }

    /// The memory manager, locked (held only briefly: never across a
    /// blocking wait).
    pub fn lock(&self) -> MutexGuard<'_, MemoryManager> {
        self.inner.lock().unwrap()
    }

    /// The address space for `Context::switch`.
    pub fn space(&self) -> &dyn AddressSpace {
        self.space.as_ref()
    }

    /// The address space, for another thread about to run in it.
    pub fn space_arc(&self) -> &Arc<dyn AddressSpace> {
        &self.space
    }

    /// Identifies this memory (a process's private futexes are keyed by
    /// it); unique while the memory exists.
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
