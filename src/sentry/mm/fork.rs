//! fork: the parent's side makes a snapshot of its memory, the child's
//! thread builds its own memory manager from it (a ptrace stub obeys only
//! the thread that traces it).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::memory::GuestMemory;
use super::{MemoryManager, Page, Vma};
use crate::abi::SysResult;
use crate::sentry::platform::{AddressSpace, Prot};

/// What fork hands the child: the VMAs and pages of the parent, every
/// frame already referenced once more for the child.
pub struct Snapshot {
    mem: Arc<GuestMemory>,
    vmas: BTreeMap<u64, Vma>,
    pages: BTreeMap<u64, Page>,
    brk_start: u64,
    brk: u64,
    mmap_top: u64,
    stack_limit: u64,
}

impl MemoryManager {
    /// fork: shares every private page copy-on-write with the
    /// child-to-be (writable ones become read-only here; the child maps
    /// them read-only too) and every shared page as it is.
    pub fn fork(&mut self) -> SysResult<Snapshot> {
        let mut shared = BTreeMap::new();
        let writable: Vec<(u64, Page, Prot)> = self
            .pages
            .iter()
            .filter_map(|(&a, &p)| {
                self.vma_at(a)
                    .filter(|(_, v)| v.prot.write && !p.cow && v.backing.shared().is_none())
                    .map(|(_, v)| (a, p, v.prot))
            })
            .collect();
        let mut remap = Vec::with_capacity(writable.len());
        for (addr, page, prot) in writable {
            let cow = Page { cow: true, ..page };
            self.pages.insert(addr, cow);
            remap.push((addr, cow, prot));
        }
        self.map_pages(&remap)?;
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
            stack_limit: self.stack_limit,
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
        mm.stack_limit = snap.stack_limit;
        mm.vmas = std::mem::take(&mut snap.vmas);
        mm.pages = std::mem::take(&mut snap.pages);
        for vma in mm.vmas.values() {
            if let Some((object, _)) = vma.backing.shared() {
                object.attach(&mm.stale);
            }
        }
        // An object that shrank since the snapshot could not tell us.
        let gone: Vec<u64> = mm
            .pages
            .keys()
            .copied()
            .filter(|&a| mm.past_end(a))
            .collect();
        for addr in gone {
            if let Some(page) = mm.pages.remove(&addr) {
                mm.mem.decref(page.frame);
            }
        }
        let pages: Vec<(u64, Page, Prot)> = mm
            .pages
            .iter()
            .map(|(&a, &p)| (a, p, mm.vma_at(a).map_or(Prot::NONE, |(_, v)| v.prot)))
            .collect();
        mm.map_pages(&pages)?;
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
