//! A KVM context: one vCPU running one guest thread.
//!
//! Between switches the vCPU normally rests in the stub, in ring 0, on the
//! `out` of the entry that reported the last event. To resume, the sentry
//! writes an `iretq` frame (user rip, CS, rflags, rsp, SS, and for an
//! address-space change the new CR3 and the user rax) at the top of the
//! vCPU's stack and points rip at the matching stub return path; the user
//! registers travel in the `kvm_run` sync area, so each event costs exactly
//! one `KVM_RUN`. After an interrupt the vCPU may rest in ring 3 instead;
//! the next switch then moves it back to the stub by rewriting CS/SS.

use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use kvm_bindings::{
    kvm_device_attr, kvm_msr_entry, kvm_regs, kvm_run, kvm_segment, kvm_xcrs, kvm_xsave, Msrs,
};
use kvm_ioctls::{SyncReg, VcpuExit, VcpuFd};

use super::interrupt::KvmInterrupter;
use super::layout::*;
use super::stub::entry_port;
use super::{host, KvmAddressSpace, Shared};
use crate::sentry::platform::{AddressSpace, Context, Event, Interrupter, PlatformError, Regs};

const PAGE_SIZE_U64: u64 = crate::sentry::mm::memory::PAGE_SIZE;

const CR0_PE: u64 = 1;
const CR0_MP: u64 = 1 << 1;
const CR0_ET: u64 = 1 << 4;
const CR0_NE: u64 = 1 << 5;
const CR0_WP: u64 = 1 << 16;
const CR0_AM: u64 = 1 << 18;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const CR4_OSFXSR: u64 = 1 << 9;
const CR4_OSXMMEXCPT: u64 = 1 << 10;
const CR4_FSGSBASE: u64 = 1 << 16;
const CR4_OSXSAVE: u64 = 1 << 18;
const EFER_SCE: u64 = 1;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
const EFER_NXE: u64 = 1 << 11;

const MSR_STAR: u32 = 0xc000_0081;
const MSR_LSTAR: u32 = 0xc000_0082;
const MSR_CSTAR: u32 = 0xc000_0083;
const MSR_SFMASK: u32 = 0xc000_0084;
const MSR_KERNEL_GS_BASE: u32 = 0xc000_0102;
const MSR_TSC_AUX: u32 = 0xc000_0103;
const MSR_IA32_TSC: u32 = 0x10;
/// KVM_SET_DEVICE_ATTR on a vCPU (for its TSC offset).
const KVM_SET_DEVICE_ATTR: u64 = nix::request_code_write!(
    kvm_bindings::KVMIO,
    0xe1,
    std::mem::size_of::<kvm_device_attr>()
) as u64;

/// RFLAGS bits cleared on `syscall`: TF, IF, DF, IOPL, AC, NT (as Linux).
const SYSCALL_MASK: u64 = 0x4_7700;
/// RFLAGS bits a user may set: CF PF AF ZF SF TF DF OF RF AC ID.
const USER_FLAGS: u64 = 0x25_0dd5;
/// Always set in user RFLAGS: IF and the reserved bit 1.
const USER_FLAGS_FIXED: u64 = 0x202;
/// XCR0 components the guest may use: x87, SSE, AVX, AVX-512 (3 parts).
const XCR0_X87_SSE: u64 = 0b11;
const XCR0_AVX: u64 = 1 << 2;
const XCR0_AVX512: u64 = 0b111 << 5;

/// Page-fault error code bits.
const PF_PRESENT: u64 = 1;
const PF_WRITE: u64 = 1 << 1;
const PF_FETCH: u64 = 1 << 4;

/// One guest thread's vCPU.
pub struct KvmContext {
    shared: Arc<Shared>,
    vcpu: Option<VcpuFd>,
    slot: usize,
    stack_top_pa: u64,
    intr: Arc<KvmInterrupter>,
    /// The vCPU rests in ring 3 (after an interrupt), not in the stub.
    in_user: bool,
    /// (address space id, generation) the vCPU's CR3 and TLB reflect.
    loaded: Option<(u64, u64)>,
    kernel_cs: kvm_segment,
    kernel_ss: kvm_segment,
}

fn segment(selector: u16, code: bool, dpl: u8) -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        type_: if code { 0xb } else { 0x3 },
        present: 1,
        dpl,
        db: u8::from(!code),
        s: 1,
        l: u8::from(code),
        g: 1,
        ..Default::default()
    }
}

fn is_canonical(addr: u64) -> bool {
    !(0x8000_0000_0000..0xffff_8000_0000_0000).contains(&addr)
}

/// Makes the guest's TSC read the host's, as the vDSO needs (it computes
/// time from the TSC with the sentry's calibration): the vCPU's TSC offset
/// is set to zero (KVM_VCPU_TSC_OFFSET, Linux 5.16 on); where KVM has no
/// such attribute the guest TSC is written with the host's instead, which
/// leaves it behind by the few µs the ioctl takes.
fn sync_tsc(vcpu: &VcpuFd) -> Result<(), PlatformError> {
    let offset: u64 = 0;
    let attr = kvm_device_attr {
        flags: 0,
        group: kvm_bindings::KVM_VCPU_TSC_CTRL,
        attr: kvm_bindings::KVM_VCPU_TSC_OFFSET as u64,
        addr: &offset as *const u64 as u64,
    };
    // SAFETY: `vcpu` is an open vCPU fd; KVM reads the attribute struct and
    // the u64 it points to, both alive for the call, and writes nothing.
    let r = unsafe { libc::ioctl(vcpu.as_raw_fd(), KVM_SET_DEVICE_ATTR as _, &attr) };
    if r == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    log::debug!("KVM_VCPU_TSC_OFFSET: {err}; writing the guest TSC instead");
    let entry = kvm_msr_entry {
        index: MSR_IA32_TSC,
        data: crate::sys::clock::tsc(),
        ..Default::default()
    };
    let msrs = Msrs::from_entries(&[entry])
        .map_err(|e| PlatformError::Unsupported(format!("msr list: {e:?}")))?;
    match vcpu.set_msrs(&msrs).map_err(host("KVM_SET_MSRS"))? {
        1 => Ok(()),
        _ => Err(PlatformError::Unsupported(
            "KVM refused to set the guest TSC".into(),
        )),
    }
}

impl KvmContext {
    pub fn new(shared: Arc<Shared>) -> Result<KvmContext, PlatformError> {
        let (fd, slot, reused) = shared.vcpu()?;
        let stack_top_pa = shared.stack_top_pa(slot);
        let mut ctx = KvmContext {
            shared,
            vcpu: Some(fd),
            slot,
            stack_top_pa,
            intr: Arc::new(KvmInterrupter::new()),
            in_user: false,
            loaded: None,
            kernel_cs: segment(KERNEL_CS, true, 0),
            kernel_ss: segment(KERNEL_DS, false, 0),
        };
        // A pooled vCPU gets the same full reset as a fresh one, so no state
        // of its previous thread leaks into this one. Its CPUID is already
        // set (and KVM refuses to set it again once a vCPU has run).
        ctx.setup(!reused)?;
        Ok(ctx)
    }

    fn vcpu(&mut self) -> &mut VcpuFd {
        self.vcpu.as_mut().expect("vcpu present until drop")
    }

    /// The CPUID leaf `(function, index)` KVM supports.
    fn cpuid(&self, function: u32, index: u32) -> Option<kvm_bindings::kvm_cpuid_entry2> {
        self.shared
            .cpuid
            .as_slice()
            .iter()
            .find(|e| e.function == function && e.index == index)
            .copied()
    }

    fn xcr0(&self) -> u64 {
        let Some(leaf) = self.cpuid(0xd, 0) else {
            return XCR0_X87_SSE;
        };
        let supported = leaf.eax as u64 | (leaf.edx as u64) << 32;
        let mut xcr0 = XCR0_X87_SSE | (supported & XCR0_AVX);
        if xcr0 & XCR0_AVX != 0 && supported & XCR0_AVX512 == XCR0_AVX512 {
            xcr0 |= XCR0_AVX512;
        }
        xcr0
    }

    fn setup(&mut self, set_cpuid: bool) -> Result<(), PlatformError> {
        let mut cpuid = self.shared.cpuid.clone();
        let has_xsave = self.cpuid(1, 0).is_some_and(|l| l.ecx & (1 << 26) != 0);
        // CR4.OSXSAVE is set below whenever XSAVE exists; say so in CPUID
        // ourselves: not every hypervisor (PVM) mirrors CR4 into it.
        if has_xsave {
            for leaf in cpuid.as_mut_slice().iter_mut().filter(|l| l.function == 1) {
                leaf.ecx |= 1 << 27;
            }
        }
        let has_fsgsbase = self.cpuid(7, 0).is_some_and(|l| l.ebx & 1 != 0);
        let xcr0 = self.xcr0();
        let kernel_root = self.shared.kernel.lock().unwrap().root();
        let slot = self.slot;
        let (cs, ss) = (self.kernel_cs, self.kernel_ss);
        let vcpu = self.vcpu();
        if set_cpuid {
            vcpu.set_cpuid2(&cpuid).map_err(host("KVM_SET_CPUID2"))?;
        }
        let mut s = vcpu.get_sregs().map_err(host("KVM_GET_SREGS"))?;
        s.cs = cs;
        s.ss = ss;
        s.ds = segment(0, false, 0);
        s.es = s.ds;
        s.fs = s.ds;
        s.gs = s.ds;
        s.tr = kvm_segment {
            base: kva(vcpu_area(slot) + TSS_OFFSET),
            limit: 103,
            selector: TSS_SEL,
            type_: 0xb,
            present: 1,
            ..Default::default()
        };
        s.ldt = kvm_segment {
            type_: 2,
            unusable: 1,
            ..Default::default()
        };
        s.gdt.base = kva(vcpu_area(slot));
        s.gdt.limit = GDT_LIMIT;
        s.idt.base = kva(IDT_OFFSET);
        s.idt.limit = (NUM_VECTORS * 16 - 1) as u16;
        s.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_AM | CR0_PG;
        s.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
        if has_xsave {
            s.cr4 |= CR4_OSXSAVE;
        }
        if has_fsgsbase {
            s.cr4 |= CR4_FSGSBASE;
        }
        s.efer = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;
        s.cr3 = kernel_root;
        vcpu.set_sregs(&s).map_err(host("KVM_SET_SREGS"))?;
        let star = (USER32_CS as u64) << 48 | (KERNEL_CS as u64) << 32;
        let msrs = [
            (MSR_STAR, star),
            (MSR_LSTAR, kva(SYSCALL_ENTRY)),
            (MSR_CSTAR, kva(SYSCALL_ENTRY)),
            (MSR_SFMASK, SYSCALL_MASK),
            (MSR_KERNEL_GS_BASE, 0),
            (MSR_TSC_AUX, 0),
        ];
        let entries: Vec<kvm_msr_entry> = msrs
            .iter()
            .map(|&(index, data)| kvm_msr_entry {
                index,
                data,
                ..Default::default()
            })
            .collect();
        let msrs = Msrs::from_entries(&entries)
            .map_err(|e| PlatformError::Unsupported(format!("msr list: {e:?}")))?;
        let n = vcpu.set_msrs(&msrs).map_err(host("KVM_SET_MSRS"))?;
        if n != entries.len() {
            return Err(PlatformError::Unsupported(format!(
                "KVM_SET_MSRS set only {n} of {}",
                entries.len()
            )));
        }
        sync_tsc(vcpu)?;
        if has_xsave {
            let mut xcrs = kvm_xcrs {
                nr_xcrs: 1,
                ..Default::default()
            };
            xcrs.xcrs[0].xcr = 0;
            xcrs.xcrs[0].value = xcr0;
            vcpu.set_xcrs(&xcrs).map_err(host("KVM_SET_XCRS"))?;
            let mut xsave = kvm_xsave::default();
            xsave.region[0] = 0x037f; // FCW: all x87 exceptions masked
            xsave.region[6] = 0x1f80; // MXCSR: all SSE exceptions masked
            xsave.region[128] = 0b11; // XSTATE_BV: x87 and SSE from above, the rest init
                                      // SAFETY: XCR0 enables no dynamically sized (AMX) component, so
                                      // the legacy 4 KiB buffer covers the whole state.
            unsafe { vcpu.set_xsave(&xsave) }.map_err(host("KVM_SET_XSAVE"))?;
        }
        vcpu.set_regs(&kvm_regs {
            rflags: 2,
            rip: kva(IRET_ENTRY),
            ..Default::default()
        })
        .map_err(host("KVM_SET_REGS"))?;
        vcpu.set_sync_valid_reg(SyncReg::Register);
        vcpu.set_sync_valid_reg(SyncReg::SystemRegister);
        // The sync area is only filled by an exit; seed it so edits before
        // the first run start from the real state.
        let regs = vcpu.get_regs().map_err(host("KVM_GET_REGS"))?;
        let sregs = vcpu.get_sregs().map_err(host("KVM_GET_SREGS"))?;
        let sync = vcpu.sync_regs_mut();
        sync.regs = regs;
        sync.sregs = sregs;
        self.in_user = false;
        self.loaded = None;
        Ok(())
    }

    /// Loads `regs` and the way back to ring 3 into the vCPU.
    fn prepare(&mut self, space: &KvmAddressSpace, generation: u64, regs: &Regs) {
        let want = (space.id, generation);
        let need_cr3 = self.loaded != Some(want);
        let frame_va = vcpu_stack_top(self.slot) - 56;
        let frame_pa = self.stack_top_pa - 56;
        let rflags = (regs.rflags & USER_FLAGS) | USER_FLAGS_FIXED;
        let frame = [
            regs.rip,
            USER_CS as u64,
            rflags,
            regs.rsp,
            USER_DS as u64,
            space.root(),
            regs.rax,
        ];
        let mut bytes = [0u8; 56];
        for (chunk, v) in bytes.chunks_exact_mut(8).zip(frame) {
            chunk.copy_from_slice(&v.to_le_bytes());
        }
        self.shared.memory.write(frame_pa, &bytes);
        let (in_user, cs, ss) = (self.in_user, self.kernel_cs, self.kernel_ss);
        let root = space.root();
        let vcpu = self.vcpu();
        let sync = vcpu.sync_regs_mut();
        let mut sregs_dirty = false;
        // A new address space is loaded through the sregs, never by stub
        // code running on the old CR3: that tree may be a dropped address
        // space whose frames another vCPU has already freed (exec).
        if need_cr3 {
            sync.sregs.cr3 = root;
            sregs_dirty = true;
        }
        if in_user {
            sync.sregs.cs = cs;
            sync.sregs.ss = ss;
            sregs_dirty = true;
        }
        if sync.sregs.fs.base != regs.fs_base || sync.sregs.gs.base != regs.gs_base {
            sync.sregs.fs.base = regs.fs_base;
            sync.sregs.gs.base = regs.gs_base;
            sregs_dirty = true;
        }
        sync.regs = kvm_regs {
            rax: regs.rax,
            rbx: regs.rbx,
            rcx: regs.rcx,
            rdx: regs.rdx,
            rsi: regs.rsi,
            rdi: regs.rdi,
            rbp: regs.rbp,
            rsp: frame_va,
            r8: regs.r8,
            r9: regs.r9,
            r10: regs.r10,
            r11: regs.r11,
            r12: regs.r12,
            r13: regs.r13,
            r14: regs.r14,
            r15: regs.r15,
            rip: kva(IRET_ENTRY),
            rflags: 2,
        };
        vcpu.set_sync_dirty_reg(SyncReg::Register);
        if sregs_dirty {
            vcpu.set_sync_dirty_reg(SyncReg::SystemRegister);
        }
        self.in_user = false;
        self.loaded = Some(want);
    }

    /// Has the guest rewrite (with the same values) the page-table entries
    /// at guest-physical `entries`. Under shadow paging the hypervisor only
    /// notices page-table changes made by the guest: the write makes it drop
    /// or resync its shadow of the table, and the CR3 load that follows
    /// (forced here) flushes the rest.
    fn touch(&mut self, entries: &[u64]) -> Result<(), PlatformError> {
        // The rewrite is idempotent, so a run that ends anywhere but at its
        // end (seen once under heavy load on PVM: the vCPU ran guest user
        // code instead) is logged and run again from the start.
        const TRIES: usize = 3;
        let mut last = None;
        for attempt in 0..TRIES {
            match self.touch_once(entries) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    // Recovered by the next run: not the user's concern.
                    log::info!(
                        "page-table rewrite run {} of {TRIES} failed: {e}",
                        attempt + 1
                    );
                    last = Some(e);
                }
            }
        }
        Err(last.expect("at least one try"))
    }

    fn touch_once(&mut self, entries: &[u64]) -> Result<(), PlatformError> {
        let list_pa = self.stack_top_pa - PAGE_SIZE_U64;
        let list: Vec<u8> = entries
            .iter()
            .flat_map(|pa| kva(PHYSMAP_OFFSET + pa).to_le_bytes())
            .collect();
        self.shared.memory.write(list_pa, &list);
        let (cs, ss) = (self.kernel_cs, self.kernel_ss);
        let top = vcpu_stack_top(self.slot);
        let kernel_root = self.shared.kernel.lock().unwrap().root();
        let vcpu = self.vcpu();
        let sync = vcpu.sync_regs_mut();
        // Run the rewrite on the kernel tree, which is never freed: the
        // vCPU's current CR3 may be one of the tables being retired.
        // The sregs go back in anyway (for CR3): always in ring 0, whatever
        // state an earlier run left.
        sync.sregs.cr3 = kernel_root;
        sync.sregs.cs = cs;
        sync.sregs.ss = ss;
        vcpu.set_sync_dirty_reg(SyncReg::SystemRegister);
        let sync = vcpu.sync_regs_mut();
        sync.regs = kvm_regs {
            rsi: top - PAGE_SIZE_U64,
            rcx: entries.len() as u64,
            rsp: top - 64,
            rip: kva(TOUCH_ENTRY),
            rflags: 2,
            ..Default::default()
        };
        vcpu.set_sync_dirty_reg(SyncReg::Register);
        self.in_user = false;
        self.loaded = None;
        loop {
            match self.vcpu().run() {
                Ok(VcpuExit::IoOut(PORT_TOUCHED, _)) => return Ok(()),
                Ok(VcpuExit::Intr) => continue,
                Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => continue,
                Ok(other) => {
                    let what = format!("KVM exit {other:?} while rewriting page tables");
                    return Err(self.unexpected(&what));
                }
                Err(e) => return Err(host("KVM_RUN")(e)),
            }
        }
    }

    /// Frees the table frames of dropped address spaces, after making the
    /// hypervisor drop its shadows of them (a reused frame must not find a
    /// stale shadow).
    fn retire_tables(&mut self) -> Result<(), PlatformError> {
        let retired = std::mem::take(&mut *self.shared.retired.lock().unwrap());
        if retired.is_empty() {
            return Ok(());
        }
        for chunk in retired.chunks(TOUCH_MAX) {
            if let Err(e) = self.touch(chunk) {
                self.shared.retired.lock().unwrap().extend(&retired);
                return Err(e);
            }
        }
        for f in retired {
            self.shared.memory.decref(f);
        }
        Ok(())
    }

    /// The part of `switch` that runs while registered in `space`.
    fn switch_registered(
        &mut self,
        space: &KvmAddressSpace,
        regs: &mut Regs,
    ) -> Result<Event, PlatformError> {
        // The tables stay locked while the stale entries are rewritten, so
        // no other thread of the process enters before that is done.
        let generation = space.with_tables(|t| -> Result<u64, PlatformError> {
            let stale = t.take_stale();
            for (i, chunk) in stale.chunks(TOUCH_MAX).enumerate() {
                if let Err(e) = self.touch(chunk) {
                    // Not shown to the hypervisor yet: the next entry does.
                    for rest in stale.chunks(TOUCH_MAX).skip(i) {
                        t.restore_stale(rest);
                    }
                    return Err(e);
                }
            }
            Ok(space.generation.load(Ordering::SeqCst))
        })?;
        let run = self.vcpu().get_kvm_run() as *mut kvm_run;
        if !self.intr.enter(run) {
            return Ok(Event::Interrupted);
        }
        self.prepare(space, generation, regs);
        self.run(regs)
    }

    /// Copies the guest's registers at the last exit into `regs`.
    fn read_regs(&self, regs: &mut Regs) {
        let sync = self
            .vcpu
            .as_ref()
            .expect("vcpu present until drop")
            .sync_regs();
        let r = &sync.regs;
        *regs = Regs {
            rax: r.rax,
            rbx: r.rbx,
            rcx: r.rcx,
            rdx: r.rdx,
            rsi: r.rsi,
            rdi: r.rdi,
            rbp: r.rbp,
            rsp: r.rsp,
            r8: r.r8,
            r9: r.r9,
            r10: r.r10,
            r11: r.r11,
            r12: r.r12,
            r13: r.r13,
            r14: r.r14,
            r15: r.r15,
            rip: r.rip,
            rflags: r.rflags,
            fs_base: sync.sregs.fs.base,
            gs_base: sync.sregs.gs.base,
        };
    }

    /// Describes the vCPU state for an unexpected exit.
    fn unexpected(&self, what: &str) -> PlatformError {
        let sync = self
            .vcpu
            .as_ref()
            .expect("vcpu present until drop")
            .sync_regs();
        PlatformError::UnexpectedExit(format!(
            "{what} (rip {:#x}, rsp {:#x}, cs {:#x}, cr2 {:#x}, cr3 {:#x})",
            sync.regs.rip, sync.regs.rsp, sync.sregs.cs.selector, sync.sregs.cr2, sync.sregs.cr3
        ))
    }

    /// The event a stub entry reported through `port`.
    fn stub_event(&mut self, port: u16, regs: &mut Regs) -> Result<Event, PlatformError> {
        let sync = self
            .vcpu
            .as_ref()
            .expect("vcpu present until drop")
            .sync_regs();
        if entry_port(sync.regs.rip) != Some(port) || sync.sregs.cs.selector != KERNEL_CS {
            return Err(self.unexpected(&format!("I/O exit on port {port:#x} outside the stub")));
        }
        self.in_user = false;
        self.read_regs(regs);
        if port == PORT_SYSCALL {
            regs.rip = sync.regs.rcx;
            regs.rflags = sync.regs.r11;
            return Ok(Event::Syscall);
        }
        let vector = (port - PORT_BASE) as u8;
        let mut raw = [0u8; 48];
        self.shared.memory.read(self.stack_top_pa - 48, &mut raw);
        let q = |i: usize| u64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap());
        let (error, rip, cs, rflags, rsp) = (q(0), q(1), q(2), q(3), q(4));
        if cs & 3 != 3 {
            return Err(self.unexpected(&format!(
                "exception {vector} in the ring-0 stub at {rip:#x}"
            )));
        }
        let error = if has_error_code(vector) { error } else { 0 };
        if vector == 14 && rip == kva(SYSCALL_ENTRY) && sync.sregs.cr2 == rip {
            // PVM runs `syscall` as a jump to LSTAR that stays in ring 3;
            // the fetch of the supervisor-only stub page then faults. The
            // CPU's view (rcx = return address, r11 = rflags) is intact.
            regs.rip = sync.regs.rcx;
            regs.rflags = sync.regs.r11;
            regs.rsp = rsp;
            return Ok(Event::Syscall);
        }
        regs.rip = rip;
        regs.rflags = rflags;
        regs.rsp = rsp;
        if vector == 14 {
            return Ok(Event::PageFault {
                addr: sync.sregs.cr2,
                write: error & PF_WRITE != 0,
                exec: error & PF_FETCH != 0,
                present: error & PF_PRESENT != 0,
            });
        }
        Ok(Event::Exception {
            vector,
            error_code: error,
        })
    }

    /// The vCPU left `KVM_RUN` because of a signal or `immediate_exit`.
    /// Returns the event to report (None: spurious, run again).
    fn after_signal(&mut self, regs: &mut Regs) -> Result<Option<Event>, PlatformError> {
        if !self.intr.leave() {
            return Ok(None);
        }
        let sync = self
            .vcpu
            .as_ref()
            .expect("vcpu present until drop")
            .sync_regs();
        let rip = sync.regs.rip;
        if sync.sregs.cs.selector & 3 == 0 {
            if let Some(port) = entry_port(rip) {
                // The event happened; the interrupt stays pending.
                return self.stub_event(port, regs).map(Some);
            }
            if !(kva(IRET_ENTRY)..kva(IRET_CR3_ENTRY + 32)).contains(&rip) {
                return Err(self.unexpected("interrupted in the ring-0 stub"));
            }
            // Stopped before reaching ring 3: `regs` still holds the state.
            self.loaded = None;
        } else {
            self.in_user = true;
            self.read_regs(regs);
        }
        self.intr.take();
        Ok(Some(Event::Interrupted))
    }

    fn run(&mut self, regs: &mut Regs) -> Result<Event, PlatformError> {
        loop {
            let exit = match self.vcpu().run() {
                Ok(VcpuExit::IoOut(port, _)) => Ok(port),
                Ok(VcpuExit::Intr) => Err(libc::EINTR),
                Ok(other) => {
                    let what = format!("{other:?}");
                    self.intr.leave();
                    return Err(self.unexpected(&format!("KVM exit {what}")));
                }
                Err(e) => Err(e.errno()),
            };
            match exit {
                Ok(port) => {
                    self.intr.leave();
                    return self.stub_event(port, regs);
                }
                Err(libc::EINTR) | Err(libc::EAGAIN) => {
                    if let Some(ev) = self.after_signal(regs)? {
                        return Ok(ev);
                    }
                    let run = self.vcpu().get_kvm_run() as *mut kvm_run;
                    if !self.intr.enter(run) {
                        return self.after_signal_consumed(regs);
                    }
                }
                Err(errno) => {
                    self.intr.leave();
                    return Err(PlatformError::host(
                        "KVM_RUN",
                        std::io::Error::from_raw_os_error(errno),
                    ));
                }
            }
        }
    }

    /// An interrupt arrived between a spurious wake-up and the next run.
    fn after_signal_consumed(&mut self, regs: &mut Regs) -> Result<Event, PlatformError> {
        let sync = self
            .vcpu
            .as_ref()
            .expect("vcpu present until drop")
            .sync_regs();
        if sync.sregs.cs.selector & 3 == 0 {
            self.loaded = None;
        } else {
            self.in_user = true;
            self.read_regs(regs);
        }
        Ok(Event::Interrupted)
    }
}

impl Context for KvmContext {
    fn switch(
        &mut self,
        space: &dyn AddressSpace,
        regs: &mut Regs,
    ) -> Result<Event, PlatformError> {
        let space = crate::sentry::platform::downcast_space::<KvmAddressSpace>(space)?;
        if !is_canonical(regs.rip) {
            return Ok(Event::Exception {
                vector: 13,
                error_code: 0,
            });
        }
        self.retire_tables()?;
        // Registered before the generation is read: a change made after
        // this point interrupts the run below (see KvmAddressSpace).
        space.enter(self.slot, self.intr.clone());
        let event = self.switch_registered(space, regs);
        space.leave(self.slot);
        event
    }

    fn guest_runs_here(&self) -> bool {
        true
    }

    fn interrupter(&self) -> Arc<dyn Interrupter> {
        self.intr.clone()
    }

    /// The x87/SSE state as an FXSAVE area, from KVM_GET_FPU.
    fn fpu(&mut self) -> Result<Vec<u8>, PlatformError> {
        let layout = crate::sentry::platform::xstate::layout();
        if layout.size > 512 {
            let xsave = self.vcpu().get_xsave().map_err(host("KVM_GET_XSAVE"))?;
            let bytes: Vec<u8> = xsave.region.iter().flat_map(|w| w.to_le_bytes()).collect();
            return Ok(bytes[..layout.size].to_vec());
        }
        Ok(self.fxsave()?.to_vec())
    }

    fn set_fpu(&mut self, a: &[u8]) -> Result<(), PlatformError> {
        let layout = crate::sentry::platform::xstate::layout();
        if layout.size > 512 && a.len() >= crate::sentry::platform::xstate::HEADER_END {
            let mut bytes = vec![0u8; 4096];
            let n = a.len().min(layout.size);
            bytes[..n].copy_from_slice(&a[..n]);
            // Only what this vCPU's XCR0 enables may be loaded.
            let guest = crate::sentry::platform::xstate::Layout {
                features: layout.features & self.xcr0(),
                size: layout.size,
            };
            crate::sentry::platform::xstate::sanitize(&mut bytes, guest);
            let mut xsave = kvm_xsave::default();
            for (w, chunk) in xsave.region.iter_mut().zip(bytes.chunks_exact(4)) {
                *w = u32::from_le_bytes(chunk.try_into().unwrap());
            }
            // SAFETY: the area is the 4096-byte legacy kvm_xsave; its header
            // enables only features of this vCPU's XCR0 (x87 through
            // AVX-512), whose standard layout ends well below 4096 bytes.
            return unsafe { self.vcpu().set_xsave(&xsave) }.map_err(host("KVM_SET_XSAVE"));
        }
        self.set_fxsave(&crate::sentry::platform::xstate::legacy_area(a))
    }
}

impl KvmContext {
    /// The x87/SSE state in FXSAVE layout, through KVM_GET_FPU.
    fn fxsave(&mut self) -> Result<[u8; 512], PlatformError> {
        let f = self.vcpu().get_fpu().map_err(host("KVM_GET_FPU"))?;
        let mut a = [0u8; 512];
        a[0..2].copy_from_slice(&f.fcw.to_le_bytes());
        a[2..4].copy_from_slice(&f.fsw.to_le_bytes());
        a[4] = f.ftwx;
        a[6..8].copy_from_slice(&f.last_opcode.to_le_bytes());
        a[8..16].copy_from_slice(&f.last_ip.to_le_bytes());
        a[16..24].copy_from_slice(&f.last_dp.to_le_bytes());
        a[24..28].copy_from_slice(&f.mxcsr.to_le_bytes());
        a[28..32].copy_from_slice(&0xffffu32.to_le_bytes());
        for (i, r) in f.fpr.iter().enumerate() {
            a[32 + 16 * i..48 + 16 * i].copy_from_slice(r);
        }
        for (i, r) in f.xmm.iter().enumerate() {
            a[160 + 16 * i..176 + 16 * i].copy_from_slice(r);
        }
        Ok(a)
    }

    /// Loads an FXSAVE area with KVM_SET_FPU.
    /// Loads x87/SSE state in FXSAVE layout through KVM_SET_FPU.
    fn set_fxsave(&mut self, a: &[u8; 512]) -> Result<(), PlatformError> {
        let u16_at = |o: usize| u16::from_le_bytes([a[o], a[o + 1]]);
        let u64_at = |o: usize| u64::from_le_bytes(a[o..o + 8].try_into().unwrap());
        let mut f = kvm_bindings::kvm_fpu {
            fcw: u16_at(0),
            fsw: u16_at(2),
            ftwx: a[4],
            last_opcode: u16_at(6),
            last_ip: u64_at(8),
            last_dp: u64_at(16),
            // Reserved MXCSR bits would make the load fault: keep them clear.
            mxcsr: u32::from_le_bytes(a[24..28].try_into().unwrap()) & 0xffff,
            ..Default::default()
        };
        for (i, r) in f.fpr.iter_mut().enumerate() {
            r.copy_from_slice(&a[32 + 16 * i..48 + 16 * i]);
        }
        for (i, r) in f.xmm.iter_mut().enumerate() {
            r.copy_from_slice(&a[160 + 16 * i..176 + 16 * i]);
        }
        self.vcpu().set_fpu(&f).map_err(host("KVM_SET_FPU"))
    }
}

impl Drop for KvmContext {
    fn drop(&mut self) {
        if let Some(fd) = self.vcpu.take() {
            self.shared.release(fd, self.slot);
        }
    }
}
