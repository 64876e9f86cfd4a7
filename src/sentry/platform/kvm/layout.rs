//! Fixed layout of the ring-0 side shared by every address space: where the
//! stub code, the IDT and each vCPU's GDT/TSS/stack live in guest virtual
//! memory, the segment selectors, and the I/O ports the stub uses to tell
//! the sentry which event happened.
//!
//! The kernel window is one PML4 slot. Its page tables are built once by the
//! platform and the slot's PML4 entry is copied into every address space, so
//! pages added later (a new vCPU's area) appear in all of them at once.

/// PML4 slot of the kernel window. PVM only lets a guest's supervisor mode
/// use part of the upper half, so the window sits at the top of the lower
/// half, just above the highest user address.
pub const KERNEL_PML4_SLOT: usize = 511;
/// Guest virtual base of the kernel window.
pub const KERNEL_BASE: u64 = 0xffff_0000_0000_0000 | (KERNEL_PML4_SLOT as u64) << 39;
/// Highest user address + 1 that the memory manager may map: everything
/// below the kernel window.
pub const USER_TOP: u64 = 0x7fff_ffff_f000;

/// Offset of the stub code page in the kernel window.
pub const CODE_OFFSET: u64 = 0;
/// Offset of the IDT page in the kernel window.
pub const IDT_OFFSET: u64 = 0x1000;
/// Offset of the first vCPU area; each area is `VCPU_STRIDE` bytes.
pub const VCPU_AREA_OFFSET: u64 = 0x20_0000;
/// Size of one vCPU area: GDT+TSS page, guard page, stack page, guard page.
pub const VCPU_STRIDE: u64 = 0x4000;
/// Offset of the stack page in a vCPU area.
pub const VCPU_STACK_PAGE: u64 = 0x2000;
/// Offset of the TSS inside the GDT/TSS page.
pub const TSS_OFFSET: u64 = 0x800;
/// Most vCPUs (contexts) alive at once: the vCPU areas fill the rest of
/// the first GiB of the window.
pub const MAX_VCPUS: usize = ((0x4000_0000 - VCPU_AREA_OFFSET) / VCPU_STRIDE) as usize;

/// Offset of the kernel window's view of all guest memory (2 MiB pages),
/// through which the stub rewrites page-table entries.
pub const PHYSMAP_OFFSET: u64 = 0x40_0000_0000;
/// Most guest memory the view covers.
pub const PHYSMAP_MAX: u64 = 0x40_0000_0000;
/// Most table entries one touch run rewrites (the list lives in the low
/// part of the vCPU's stack page).
pub const TOUCH_MAX: usize = 256;

/// Number of exception vectors the IDT covers.
pub const NUM_VECTORS: usize = 32;
/// Bytes per stub entry (`out imm8, al; ud2`).
pub const ENTRY_SIZE: u64 = 4;
/// Code offset of the `syscall` entry (LSTAR).
pub const SYSCALL_ENTRY: u64 = NUM_VECTORS as u64 * ENTRY_SIZE;
/// Code offset of the plain return path (`iretq`).
pub const IRET_ENTRY: u64 = 0x100;
/// Code offset of the return path that loads CR3 first.
pub const IRET_CR3_ENTRY: u64 = 0x110;

/// Code offset of the touch loop: rewrites `rcx` page-table entries whose
/// kernel-window addresses are listed at `rsi`, then reports PORT_TOUCHED.
pub const TOUCH_ENTRY: u64 = 0x140;

/// I/O port of exception vector `v` is `PORT_BASE + v`.
pub const PORT_BASE: u16 = 0x80;
/// I/O port of the `syscall` entry.
pub const PORT_SYSCALL: u16 = PORT_BASE + NUM_VECTORS as u16;
/// I/O port of the end of the touch loop.
pub const PORT_TOUCHED: u16 = PORT_SYSCALL + 1;

/// Segment selectors, laid out as Linux does (programs see CS/SS values in
/// signal frames).
pub const KERNEL_CS: u16 = 0x10;
pub const KERNEL_DS: u16 = 0x18;
pub const USER32_CS: u16 = 0x23;
pub const USER_DS: u16 = 0x2b;
pub const USER_CS: u16 = 0x33;
pub const TSS_SEL: u16 = 0x40;
/// Bytes of the GDT (9 entries; the TSS descriptor takes two).
pub const GDT_LIMIT: u16 = 10 * 8 - 1;

/// Guest virtual address of a kernel window offset.
pub const fn kva(offset: u64) -> u64 {
    KERNEL_BASE + offset
}

/// Offset of vCPU slot `slot`'s area in the kernel window.
pub const fn vcpu_area(slot: usize) -> u64 {
    VCPU_AREA_OFFSET + slot as u64 * VCPU_STRIDE
}

/// Guest virtual address of the top of vCPU slot `slot`'s stack.
pub const fn vcpu_stack_top(slot: usize) -> u64 {
    kva(vcpu_area(slot) + VCPU_STACK_PAGE + 0x1000)
}

/// Does exception `vector` push an error code?
pub const fn has_error_code(vector: u8) -> bool {
    matches!(vector, 8 | 10..=14 | 17 | 21 | 29 | 30)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_vcpu_areas_stay_in_first_gib() {
        let last = vcpu_area(MAX_VCPUS - 1) + VCPU_STRIDE;
        assert!(last <= 0x4000_0000);
        const { assert!(SYSCALL_ENTRY + ENTRY_SIZE <= IRET_ENTRY) };
    }

    #[test]
    fn layout_page_fault_has_error_code_ud_does_not() {
        assert!(has_error_code(14));
        assert!(!has_error_code(6));
    }
}
