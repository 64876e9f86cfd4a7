//! The KVM platform: guest code runs in ring 3 of a vCPU; everything that
//! needs the kernel leaves the VM through a tiny ring-0 stub.
//!
//! Design (see also `layout.rs` and `stub.rs`):
//! - One VM per sandbox. The whole guest memory memfd is memory slot 0 at
//!   guest-physical 0, so frame offsets are guest-physical addresses.
//! - Each address space is a 4-level page-table tree in guest memory
//!   (`pagetable.rs`). Its PML4 shares one slot with the kernel window, a
//!   supervisor-only tree holding the stub code, the IDT and, per vCPU, a
//!   GDT, a TSS and a small stack.
//! - Each context owns a vCPU (`vcpu.rs`). `syscall` enters the stub via
//!   LSTAR, exceptions via the IDT; every entry is one `out` to a port that
//!   names the event. The sentry resumes the guest by writing an `iretq`
//!   frame on the vCPU's stack and pointing the vCPU at the stub's `iretq`
//!   (with a `mov cr3` first when the address space changed), with the
//!   registers passed through `KVM_CAP_SYNC_REGS`: one `KVM_RUN` per event.
//! - PVM (the nested hypervisor of the development hosts) runs a ring-3
//!   `syscall` as a jump to LSTAR that stays in ring 3; fetching the
//!   supervisor-only stub page then faults, and that #PF (at LSTAR, from
//!   LSTAR) is reported as the syscall. On VT-x/SVM the stub's `out` runs.
//! - Shadow-paging hypervisors (PVM) only notice page-table writes made by
//!   the guest. Entries the sentry removes, narrows or points elsewhere are
//!   recorded per table; before the next run the stub rewrites one entry of
//!   each such table with a 16-bit store, which makes KVM drop its whole
//!   shadow of the table, and CR3 is reloaded. New entries and widened
//!   rights need nothing: the fault the old entry causes re-walks the
//!   tables. Table frames of dropped address spaces get the same rewrite
//!   before they are freed, so a reused frame never meets a stale shadow.
//! - vCPUs cannot be destroyed without the VM, so those of dropped contexts
//!   go back to a pool and are reset before reuse.
//!
//! Lock order: an address space's tables, then `Shared::kernel`, then
//! `Shared::pool`; an address space's `running` list is a leaf. A context
//! is used by one thread at a time; an address space by the contexts of
//! all threads of a process (see the shootdown note on it).

mod interrupt;
mod layout;
mod pagetable;
mod stub;
mod vcpu;

#[cfg(test)]
mod tests;

use std::any::Any;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use kvm_bindings::{kvm_userspace_memory_region, CpuId, KVM_MAX_CPUID_ENTRIES};
use kvm_ioctls::{Cap, Kvm, VcpuFd, VmFd};

use super::{AddressSpace, Context, Platform, PlatformError, Prot};
use crate::sentry::mm::memory::{GuestMemory, PAGE_SIZE};
pub use interrupt::kick_signal;
pub use layout::USER_TOP;
use layout::*;
use pagetable::{PageTables, PTE_NX, PTE_PRESENT, PTE_WRITE};

/// A vCPU no context uses, kept for reuse.
struct PooledVcpu {
    fd: VcpuFd,
    slot: usize,
}

/// What contexts and address spaces share with the platform.
pub(crate) struct Shared {
    memory: Arc<GuestMemory>,
    kvm: Kvm,
    vm: VmFd,
    /// The kernel window's tree; only its `KERNEL_PML4_SLOT` subtree is used.
    kernel: Mutex<PageTables>,
    /// The PML4 entry every address space copies.
    kernel_entry: u64,
    /// Frames of the code and IDT pages.
    fixed_frames: [u64; 2],
    pool: Mutex<Pool>,
    cpuid: CpuId,
    next_space_id: AtomicU64,
    /// Table frames of dropped address spaces: the next switch has the
    /// guest rewrite each (so a shadow-paging hypervisor forgets it was a
    /// page table) and only then frees them.
    retired: Mutex<Vec<u64>>,
}

struct Pool {
    idle: Vec<PooledVcpu>,
    /// vCPUs created so far (also the next vCPU id and area slot).
    created: usize,
    /// Frames of the vCPU areas (GDT/TSS page, stack page) per slot; None
    /// for a slot whose vCPU is still being made or failed to be.
    frames: Vec<Option<[u64; 2]>>,
}

/// One VM per sandbox over the guest memory memfd.
pub struct KvmPlatform {
    shared: Arc<Shared>,
}

fn host(op: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> PlatformError {
    move |e| PlatformError::host(op, std::io::Error::from_raw_os_error(e.errno()))
}

impl KvmPlatform {
    /// Creates the VM over `memory`; `kvm` is an open `/dev/kvm`.
    pub fn new(memory: Arc<GuestMemory>, kvm: OwnedFd) -> Result<KvmPlatform, PlatformError> {
        // SAFETY: `kvm` is an owned, open /dev/kvm descriptor whose
        // ownership moves into the Kvm object.
        let kvm = unsafe { Kvm::from_raw_fd(kvm.into_raw_fd()) };
        let version = kvm.get_api_version();
        if version != 12 {
            let why = std::io::Error::last_os_error();
            return Err(PlatformError::Unsupported(format!(
                "/dev/kvm is not a usable KVM device (KVM_GET_API_VERSION: {})",
                if version < 0 {
                    why.to_string()
                } else {
                    format!("version {version}, want 12")
                }
            )));
        }
        for (cap, name) in [
            (Cap::SyncRegs, "KVM_CAP_SYNC_REGS"),
            (Cap::ImmediateExit, "KVM_CAP_IMMEDIATE_EXIT"),
        ] {
            if !kvm.check_extension(cap) {
                return Err(PlatformError::Unsupported(format!("KVM lacks {name}")));
            }
        }
        let vm = kvm.create_vm().map_err(host("KVM_CREATE_VM"))?;
        let region = kvm_userspace_memory_region {
            slot: 0,
            flags: 0,
            guest_phys_addr: 0,
            memory_size: memory.size(),
            userspace_addr: memory.host_base(),
        };
        // SAFETY: the region is the sentry's mapping of the whole memfd,
        // which lives as long as `memory`, held by `Shared` and so by
        // everything that can run the VM.
        unsafe { vm.set_user_memory_region(region) }.map_err(host("KVM_SET_USER_MEMORY_REGION"))?;
        let cpuid = kvm
            .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
            .map_err(host("KVM_GET_SUPPORTED_CPUID"))?;
        let mut kernel = PageTables::new(memory.clone(), false)?;
        let code = Self::fixed_page(&memory, &mut kernel, CODE_OFFSET, &stub::code_page(), false)?;
        let idt = Self::fixed_page(&memory, &mut kernel, IDT_OFFSET, &stub::idt_page(), false)?;
        const LARGE: u64 = 512 * PAGE_SIZE;
        let view = memory.size().div_ceil(LARGE) * LARGE;
        if view > PHYSMAP_MAX {
            return Err(PlatformError::Unsupported(format!(
                "guest memory over {PHYSMAP_MAX} bytes"
            )));
        }
        kernel.map_large(
            kva(PHYSMAP_OFFSET),
            view,
            0,
            PTE_PRESENT | PTE_WRITE | PTE_NX,
        )?;
        let kernel_entry = kernel.root_entry(KERNEL_PML4_SLOT);
        interrupt::install_kick_handler();
        Ok(KvmPlatform {
            shared: Arc::new(Shared {
                memory,
                kvm,
                vm,
                kernel: Mutex::new(kernel),
                kernel_entry,
                fixed_frames: [code, idt],
                pool: Mutex::new(Pool {
                    idle: Vec::new(),
                    created: 0,
                    frames: Vec::new(),
                }),
                cpuid,
                next_space_id: AtomicU64::new(1),
                retired: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Allocates a frame holding `bytes` and maps it supervisor-only at
    /// kernel window offset `offset`.
    fn fixed_page(
        memory: &GuestMemory,
        kernel: &mut PageTables,
        offset: u64,
        bytes: &[u8; 4096],
        writable: bool,
    ) -> Result<u64, PlatformError> {
        let frame = memory
            .alloc_frame()
            .map_err(|_| PlatformError::OutOfMemory)?;
        memory.write(frame, bytes);
        let flags = PTE_PRESENT | if writable { PTE_WRITE } else { 0 };
        if let Err(e) = kernel.set_range(kva(offset), PAGE_SIZE, frame, flags) {
            memory.decref(frame);
            return Err(e);
        }
        Ok(frame)
    }
}

impl Shared {
    /// Takes an idle vCPU or creates one with its kernel area.
    fn vcpu(&self) -> Result<(VcpuFd, usize, bool), PlatformError> {
        let mut pool = self.pool.lock().unwrap();
        if let Some(v) = pool.idle.pop() {
            return Ok((v.fd, v.slot, true));
        }
        let slot = pool.created;
        if slot >= MAX_VCPUS.min(self.kvm.get_max_vcpus()) {
            return Err(PlatformError::Unsupported(format!(
                "more than {slot} guest threads at once"
            )));
        }
        // Taken under the lock: two threads creating vCPUs at once (the
        // first processes of two containers) must not ask for one id.
        pool.created += 1;
        let fd = self
            .vm
            .create_vcpu(slot as u64)
            .map_err(host("KVM_CREATE_VCPU"))?;
        drop(pool);
        let frames = {
            let mut kernel = self.kernel.lock().unwrap();
            let area = vcpu_area(slot);
            let gdt = KvmPlatform::fixed_page(
                &self.memory,
                &mut kernel,
                area,
                &stub::gdt_tss_page(slot),
                true,
            )?;
            let stack = KvmPlatform::fixed_page(
                &self.memory,
                &mut kernel,
                area + VCPU_STACK_PAGE,
                &[0; 4096],
                true,
            )?;
            [gdt, stack]
        };
        let mut pool = self.pool.lock().unwrap();
        if pool.frames.len() <= slot {
            pool.frames.resize(slot + 1, None);
        }
        pool.frames[slot] = Some(frames);
        Ok((fd, slot, false))
    }

    /// Guest-physical address of the top of slot `slot`'s stack.
    fn stack_top_pa(&self, slot: usize) -> u64 {
        let frames = self.pool.lock().unwrap().frames[slot];
        frames.expect("a vCPU's area is made before it runs")[1] + PAGE_SIZE
    }

    fn release(&self, fd: VcpuFd, slot: usize) {
        self.pool.lock().unwrap().idle.push(PooledVcpu { fd, slot });
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        for f in self.retired.get_mut().unwrap().drain(..) {
            self.memory.decref(f);
        }
        let pool = self.pool.get_mut().unwrap();
        let areas = pool.frames.iter().flatten().flatten();
        for f in areas.chain(self.fixed_frames.iter()) {
            self.memory.decref(*f);
        }
    }
}

impl Platform for KvmPlatform {
    fn name(&self) -> &'static str {
        "kvm"
    }

    fn new_address_space(&self) -> Result<Arc<dyn AddressSpace>, PlatformError> {
        let mut tables = PageTables::new(self.shared.memory.clone(), true)?;
        tables.set_root_entry(KERNEL_PML4_SLOT, self.shared.kernel_entry);
        Ok(Arc::new(KvmAddressSpace {
            root: tables.root(),
            tables: Mutex::new(Some(tables)),
            id: self.shared.next_space_id.fetch_add(1, Ordering::Relaxed),
            generation: AtomicU64::new(0),
            running: Mutex::new(Vec::new()),
            left: Condvar::new(),
            _shared: self.shared.clone(),
        }))
    }

    fn new_context(&self) -> Result<Box<dyn Context>, PlatformError> {
        Ok(Box::new(vcpu::KvmContext::new(self.shared.clone())?))
    }
}

/// A guest address space: a page-table tree plus what contexts need to
/// know whether their TLB view of it is current.
///
/// Shootdown: a context registers in `running` for the whole of a switch
/// into this space. A change that removes or narrows a translation bumps
/// `generation` (so every context reloads CR3, and the first one in has the
/// guest rewrite the stale entries under the tables lock) and then
/// interrupts every registered context and waits until each has left:
/// afterwards no vCPU can still hold the old translation.
pub struct KvmAddressSpace {
    /// Always Some until drop.
    tables: Mutex<Option<PageTables>>,
    /// The PML4's guest-physical address (fixed for the tree's life).
    root: u64,
    /// Unique per address space, never reused.
    id: u64,
    /// Bumped whenever an entry changes in a way a vCPU may have cached.
    generation: AtomicU64,
    /// Contexts inside a switch into this space: (vCPU slot, interrupter).
    running: Mutex<Vec<(usize, Arc<interrupt::KvmInterrupter>)>>,
    /// Signalled when a context leaves `running`.
    left: Condvar,
    /// Keeps the kernel window (shared by the PML4) alive.
    _shared: Arc<Shared>,
}

impl Drop for KvmAddressSpace {
    fn drop(&mut self) {
        if let Some(t) = self.tables.get_mut().unwrap().take() {
            self._shared.retired.lock().unwrap().extend(t.into_frames());
        }
    }
}

impl KvmAddressSpace {
    /// Runs `f` on the page tables (under their lock).
    fn with_tables<R>(&self, f: impl FnOnce(&mut PageTables) -> R) -> R {
        let mut guard = self.tables.lock().unwrap();
        f(guard.as_mut().expect("tables present until drop"))
    }

    fn root(&self) -> u64 {
        self.root
    }

    /// Records that the context on `slot` is entering the guest in this
    /// space (see the shootdown note on the type).
    fn enter(&self, slot: usize, intr: Arc<interrupt::KvmInterrupter>) {
        self.running.lock().unwrap().push((slot, intr));
    }

    /// The context on `slot` left the guest.
    fn leave(&self, slot: usize) {
        let mut running = self.running.lock().unwrap();
        running.retain(|(s, _)| *s != slot);
        drop(running);
        self.left.notify_all();
    }

    fn note(&self, change: pagetable::Change) {
        // Shadow-paging hypervisors may cache not-present entries too, so
        // additions count as well as removals.
        if change.stale || change.added {
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
        // A new entry only costs another vCPU a spurious fault (it then
        // reloads CR3 for the new generation); a removed or narrowed one
        // must be gone from every vCPU before its frame is reused.
        if change.stale {
            self.shootdown();
        }
    }

    /// Interrupts every context running in this space and waits until
    /// each has left the guest.
    fn shootdown(&self) {
        let mut running = self.running.lock().unwrap();
        let slots: Vec<usize> = running.iter().map(|(s, _)| *s).collect();
        if slots.is_empty() {
            return;
        }
        for (_, intr) in running.iter() {
            super::Interrupter::interrupt(intr.as_ref());
        }
        while running.iter().any(|(s, _)| slots.contains(s)) {
            running = self.left.wait(running).unwrap();
        }
    }
}

fn check_user_range(addr: u64, len: u64) -> Result<(), PlatformError> {
    match addr.checked_add(len) {
        Some(end) if end <= USER_TOP && addr % PAGE_SIZE == 0 && len % PAGE_SIZE == 0 => Ok(()),
        _ => Err(PlatformError::Unsupported(format!(
            "bad user range {addr:#x}+{len:#x}"
        ))),
    }
}

impl AddressSpace for KvmAddressSpace {
    fn map(&self, addr: u64, len: u64, offset: u64, prot: Prot) -> Result<(), PlatformError> {
        check_user_range(addr, len)?;
        if offset
            .checked_add(len)
            .is_none_or(|end| end > self._shared.memory.size())
        {
            return Err(PlatformError::Unsupported(format!(
                "frame range {offset:#x}+{len:#x} outside guest memory"
            )));
        }
        let change = self.with_tables(|t| t.map(addr, len, offset, prot))?;
        self.note(change);
        Ok(())
    }

    fn unmap(&self, addr: u64, len: u64) -> Result<(), PlatformError> {
        check_user_range(addr, len)?;
        let change = self.with_tables(|t| t.unmap(addr, len))?;
        self.note(change);
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
