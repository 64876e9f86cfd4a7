//! x86-64 4-level page tables whose pages are frames of guest memory.
//!
//! The sentry writes entries through its own mapping of the memfd; the
//! vCPU walks the same frames as guest-physical memory. Table pages are
//! owned by the `PageTables` that allocated them and freed with it. Leaf
//! entries only mirror the memory manager's mappings: the data frames they
//! point at are reference-counted by the memory manager, not here.

use std::sync::Arc;

use super::super::{PlatformError, Prot};
use crate::sentry::mm::memory::{GuestMemory, PAGE_SIZE};

pub const PTE_PRESENT: u64 = 1;
pub const PTE_WRITE: u64 = 1 << 1;
pub const PTE_USER: u64 = 1 << 2;
pub const PTE_LARGE: u64 = 1 << 7;
pub const PTE_NX: u64 = 1 << 63;
const PTE_ADDR: u64 = 0x000f_ffff_ffff_f000;

/// What a `map` or `unmap` did to the entries, for TLB flushing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Change {
    /// Some entry that was present changed or went away: translations the
    /// CPU may have cached are stale.
    pub stale: bool,
    /// Some entry became present.
    pub added: bool,
}

/// Is `old -> new` only a widening (same frame, more rights)? The CPU
/// and the hypervisor pick that up on the fault the old entry causes.
fn is_upgrade(old: u64, new: u64) -> bool {
    let same_frame = old & PTE_ADDR == new & PTE_ADDR && new & PTE_PRESENT != 0;
    let write_ok = old & PTE_WRITE == 0 || new & PTE_WRITE != 0;
    let exec_ok = old & PTE_NX != 0 || new & PTE_NX == 0;
    same_frame && write_ok && exec_ok && new & PTE_USER == old & PTE_USER
}

/// One tree of page tables.
pub struct PageTables {
    memory: Arc<GuestMemory>,
    root: u64,
    /// Every table frame this tree allocated (the root included).
    tables: Vec<u64>,
    /// Whether intermediate entries allow ring 3 (user trees) or not.
    user: bool,
    /// One entry address (guest-physical) per last-level table with a
    /// stale change not yet shown to the hypervisor (see `take_stale`).
    stale: Vec<u64>,
}

fn alloc_table(memory: &GuestMemory) -> Result<u64, PlatformError> {
    memory.alloc_frame().map_err(|_| PlatformError::OutOfMemory)
}

fn index(va: u64, level: u32) -> u64 {
    (va >> (12 + 9 * level)) & 511
}

/// Leaf entry bits for `prot` (None for PROT_NONE: not present).
pub fn leaf_flags(prot: Prot) -> Option<u64> {
    if !(prot.read || prot.write || prot.exec) {
        return None;
    }
    let mut flags = PTE_PRESENT | PTE_USER;
    if prot.write {
        flags |= PTE_WRITE;
    }
    if !prot.exec {
        flags |= PTE_NX;
    }
    Some(flags)
}

impl PageTables {
    /// An empty tree; `user` says whether ring 3 may use its mappings.
    pub fn new(memory: Arc<GuestMemory>, user: bool) -> Result<PageTables, PlatformError> {
        let root = alloc_table(&memory)?;
        Ok(PageTables {
            memory,
            root,
            tables: vec![root],
            user,
            stale: Vec::new(),
        })
    }

    /// Guest-physical address of the PML4 (the CR3 value).
    pub fn root(&self) -> u64 {
        self.root
    }

    /// Raw PML4 entry `slot`.
    pub fn root_entry(&self, slot: usize) -> u64 {
        self.memory.read_u64(self.root + slot as u64 * 8)
    }

    /// Sets PML4 entry `slot` to `entry` (to share another tree's subtree).
    pub fn set_root_entry(&mut self, slot: usize, entry: u64) {
        self.memory.write_u64(self.root + slot as u64 * 8, entry)
    }

    /// The last-level table covering `va`, created if `alloc`.
    fn leaf_table(&mut self, va: u64, alloc: bool) -> Result<Option<u64>, PlatformError> {
        self.table_at(va, 0, alloc)
    }

    /// The table of level `depth` (0: last level, 1: page directory)
    /// covering `va`, created if `alloc`.
    fn table_at(&mut self, va: u64, depth: u32, alloc: bool) -> Result<Option<u64>, PlatformError> {
        let mut table = self.root;
        for level in (depth + 1..4).rev() {
            let slot = table + index(va, level) * 8;
            let entry = self.memory.read_u64(slot);
            table = if entry & PTE_PRESENT != 0 {
                entry & PTE_ADDR
            } else if alloc {
                let t = alloc_table(&self.memory)?;
                self.tables.push(t);
                let user = if self.user { PTE_USER } else { 0 };
                self.memory
                    .write_u64(slot, t | PTE_PRESENT | PTE_WRITE | user);
                t
            } else {
                return Ok(None);
            };
        }
        Ok(Some(table))
    }

    /// Sets the leaf entries of `[va, va+len)` to consecutive frames from
    /// `pa` with `flags` (0: not present).
    pub fn set_range(
        &mut self,
        va: u64,
        len: u64,
        pa: u64,
        flags: u64,
    ) -> Result<Change, PlatformError> {
        let mut change = Change::default();
        let mut done = 0;
        while done < len {
            let addr = va + done;
            let table = self.leaf_table(addr, flags != 0)?;
            // Pages left in this last-level table (2 MiB).
            let span = ((512 - index(addr, 0)) * PAGE_SIZE).min(len - done);
            if let Some(table) = table {
                for i in 0..span / PAGE_SIZE {
                    let slot = table + (index(addr, 0) + i) * 8;
                    let old = self.memory.read_u64(slot);
                    let new = if flags == 0 {
                        0
                    } else {
                        (pa + done + i * PAGE_SIZE) | flags
                    };
                    if old == new {
                        continue;
                    }
                    if old & PTE_PRESENT != 0 && !is_upgrade(old, new) {
                        if self.stale.last().map(|s| s & !(PAGE_SIZE - 1)) != Some(table) {
                            self.stale.push(slot);
                        }
                        change.stale = true;
                    }
                    change.added |= new & PTE_PRESENT != 0;
                    self.memory.write_u64(slot, new);
                }
            }
            done += span;
        }
        Ok(change)
    }

    /// Maps `[va, va+len)` to `[pa, pa+len)` with 2 MiB pages (all values
    /// 2 MiB aligned); for the kernel window's view of guest memory.
    pub fn map_large(
        &mut self,
        va: u64,
        len: u64,
        pa: u64,
        flags: u64,
    ) -> Result<(), PlatformError> {
        const LARGE: u64 = 512 * PAGE_SIZE;
        for off in (0..len).step_by(LARGE as usize) {
            let pd = self.table_at(va + off, 1, true)?.expect("allocated");
            self.memory
                .write_u64(pd + index(va + off, 1) * 8, (pa + off) | flags | PTE_LARGE);
        }
        Ok(())
    }

    /// Takes the list of last-level tables changed in a way a shadow-paging
    /// hypervisor cannot see (it trusts guest writes only): one entry
    /// address in each, for the guest to rewrite.
    pub fn take_stale(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.stale)
    }

    /// Puts back entries `take_stale` returned that were not rewritten.
    pub fn restore_stale(&mut self, entries: &[u64]) {
        self.stale.extend_from_slice(entries);
    }

    /// Maps `[addr, addr+len)` onto guest memory `[offset, offset+len)`.
    pub fn map(
        &mut self,
        addr: u64,
        len: u64,
        offset: u64,
        prot: Prot,
    ) -> Result<Change, PlatformError> {
        match leaf_flags(prot) {
            Some(flags) => self.set_range(addr, len, offset, flags),
            None => self.unmap(addr, len),
        }
    }

    /// Clears the entries of `[addr, addr+len)`.
    pub fn unmap(&mut self, addr: u64, len: u64) -> Result<Change, PlatformError> {
        self.set_range(addr, len, 0, 0)
    }

    #[cfg(test)]
    /// Walks the tree like the CPU: the guest-physical address and leaf
    /// flags `va` maps to, if present.
    pub fn translate(&self, va: u64) -> Option<(u64, u64)> {
        let mut table = self.root;
        for level in (0..4).rev() {
            let entry = self.memory.read_u64(table + index(va, level) * 8);
            if entry & PTE_PRESENT == 0 {
                return None;
            }
            if level == 0 {
                return Some((
                    (entry & PTE_ADDR) | (va & (PAGE_SIZE - 1)),
                    entry & !PTE_ADDR,
                ));
            }
            table = entry & PTE_ADDR;
        }
        None
    }
}

impl PageTables {
    /// Gives up the table frames without freeing them (the caller retires
    /// them once the hypervisor has dropped its shadows of them).
    pub fn into_frames(mut self) -> Vec<u64> {
        std::mem::take(&mut self.tables)
    }
}

impl Drop for PageTables {
    fn drop(&mut self) {
        for &t in &self.tables {
            self.memory.decref(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory() -> Arc<GuestMemory> {
        Arc::new(GuestMemory::new(64 * PAGE_SIZE, 64 * PAGE_SIZE).unwrap())
    }

    #[test]
    fn pagetables_map_then_translate_finds_frame() {
        let mem = memory();
        let mut pt = PageTables::new(mem.clone(), true).unwrap();
        let prot = Prot {
            read: true,
            write: false,
            exec: false,
        };
        let change = pt.map(0x40_0000, 2 * PAGE_SIZE, 0x5000, prot).unwrap();
        assert_eq!(
            change,
            Change {
                stale: false,
                added: true
            }
        );
        let (pa, flags) = pt.translate(0x40_1008).unwrap();
        assert_eq!(pa, 0x6008);
        assert_eq!(flags & (PTE_WRITE | PTE_USER | PTE_NX), PTE_USER | PTE_NX);
    }

    #[test]
    fn pagetables_unmap_present_page_reports_stale() {
        let mem = memory();
        let mut pt = PageTables::new(mem.clone(), true).unwrap();
        let rw = Prot {
            read: true,
            write: true,
            exec: true,
        };
        pt.map(0x1000, PAGE_SIZE, 0x3000, rw).unwrap();
        assert!(pt.unmap(0, 0x10000).unwrap().stale);
        assert_eq!(pt.translate(0x1000), None);
    }

    #[test]
    fn pagetables_drop_frees_table_frames() {
        let mem = memory();
        let before = mem.used_bytes();
        {
            let mut pt = PageTables::new(mem.clone(), true).unwrap();
            pt.map(
                0x7000_0000_0000,
                PAGE_SIZE,
                0,
                Prot {
                    read: true,
                    ..Prot::NONE
                },
            )
            .unwrap();
            assert_eq!(mem.used_bytes(), before + 4 * PAGE_SIZE);
        }
        assert_eq!(mem.used_bytes(), before);
    }

    #[test]
    fn pagetables_prot_none_is_not_present() {
        let mem = memory();
        let mut pt = PageTables::new(mem.clone(), true).unwrap();
        pt.map(0x1000, PAGE_SIZE, 0x3000, Prot::NONE).unwrap();
        assert_eq!(pt.translate(0x1000), None);
    }
}
