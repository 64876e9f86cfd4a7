//! The ring-0 stub: the bytes of the code page, the IDT and each vCPU's
//! GDT and TSS.
//!
//! The stub never handles anything itself. Every entry point is
//! `out PORT, al; ud2`: the `out` makes a VM exit whose port names the
//! event (an exception vector or `syscall`), and since it clobbers no
//! register the sentry reads the guest's user registers as they were. The
//! way back to ring 3 is an `iretq` over a frame the sentry writes on the
//! vCPU's stack, optionally after loading CR3 from that frame.

use super::layout::*;

/// Builds the stub code page.
pub fn code_page() -> [u8; 4096] {
    // ud2 everywhere: a stray jump into the page faults instead of running
    // whatever follows.
    let mut page = [0u8; 4096];
    for pair in page.chunks_exact_mut(2) {
        pair.copy_from_slice(&[0x0f, 0x0b]);
    }
    for entry in 0..=NUM_VECTORS {
        let at = entry * ENTRY_SIZE as usize;
        // out imm8, al ; ud2
        page[at..at + 4].copy_from_slice(&[0xe6, PORT_BASE as u8 + entry as u8, 0x0f, 0x0b]);
    }
    let iret = IRET_ENTRY as usize;
    page[iret..iret + 2].copy_from_slice(&IRETQ);
    let at = IRET_CR3_ENTRY as usize;
    let cr3_path: [&[u8]; 4] = [
        &[0x48, 0x8b, 0x44, 0x24, 0x28], // mov rax, [rsp+40]  (new CR3)
        &[0x0f, 0x22, 0xd8],             // mov cr3, rax
        &[0x48, 0x8b, 0x44, 0x24, 0x30], // mov rax, [rsp+48]  (user rax)
        &IRETQ,
    ];
    let mut off = at;
    for ins in cr3_path {
        page[off..off + ins.len()].copy_from_slice(ins);
        off += ins.len();
    }
    // The rewrite is 16 bits wide on purpose: KVM treats a write narrower
    // than an entry as a sign the page is no longer a page table and drops
    // its whole shadow, instead of patching one entry.
    let touch: [&[u8]; 8] = [
        &[0x48, 0x8b, 0x06],         // 0: mov rax, [rsi]
        &[0x66, 0x8b, 0x10],         // 3: mov dx, [rax]
        &[0x66, 0x89, 0x10],         // 6: mov [rax], dx
        &[0x48, 0x83, 0xc6, 0x08],   // 9: add rsi, 8
        &[0x48, 0xff, 0xc9],         // 13: dec rcx
        &[0x75, 0xee],               // 16: jnz 0
        &[0xe6, PORT_TOUCHED as u8], // 18: out PORT_TOUCHED, al
        &[0x0f, 0x0b],               // ud2
    ];
    let mut off = TOUCH_ENTRY as usize;
    for ins in touch {
        page[off..off + ins.len()].copy_from_slice(ins);
        off += ins.len();
    }
    page
}

const IRETQ: [u8; 2] = [0x48, 0xcf];

/// Which stub entry a ring-0 `rip` is at or just after (its `out` done).
/// Returns the port the entry uses.
pub fn entry_port(rip: u64) -> Option<u16> {
    let off = rip.checked_sub(kva(CODE_OFFSET))?;
    if off >= SYSCALL_ENTRY + ENTRY_SIZE {
        return None;
    }
    let within = off % ENTRY_SIZE;
    (within == 0 || within == 2).then_some(PORT_BASE + (off / ENTRY_SIZE) as u16)
}

/// Builds the IDT: interrupt gates for vectors 0-31 into the code page,
/// all on IST 1 (the vCPU's stack), `int3`/`into` callable from ring 3.
pub fn idt_page() -> [u8; 4096] {
    let mut page = [0u8; 4096];
    for v in 0..NUM_VECTORS {
        let target = kva(CODE_OFFSET) + v as u64 * ENTRY_SIZE;
        let dpl: u64 = if v == 3 || v == 4 { 3 } else { 0 };
        // Present, DPL, type 0xE (64-bit interrupt gate), IST 1.
        let attrs: u64 = (1 << 15) | (dpl << 13) | (0xe << 8) | 1;
        let low = (target & 0xffff)
            | ((KERNEL_CS as u64) << 16)
            | (attrs << 32)
            | ((target >> 16) & 0xffff) << 48;
        let high = target >> 32;
        page[v * 16..v * 16 + 8].copy_from_slice(&low.to_le_bytes());
        page[v * 16 + 8..v * 16 + 16].copy_from_slice(&high.to_le_bytes());
    }
    page
}

/// Flat segment descriptors (accessed bit preset so the CPU never writes
/// the GDT).
const GDT_KERNEL_CS: u64 = 0x00af_9b00_0000_ffff;
const GDT_KERNEL_DS: u64 = 0x00cf_9300_0000_ffff;
const GDT_USER32_CS: u64 = 0x00cf_fb00_0000_ffff;
const GDT_USER_DS: u64 = 0x00cf_f300_0000_ffff;
const GDT_USER_CS: u64 = 0x00af_fb00_0000_ffff;

/// Builds the GDT/TSS page of vCPU slot `slot`: the GDT at offset 0, the
/// 64-bit TSS at `TSS_OFFSET` whose RSP0 and IST1 are the slot's stack top.
pub fn gdt_tss_page(slot: usize) -> [u8; 4096] {
    let mut page = [0u8; 4096];
    let tss = kva(vcpu_area(slot) + TSS_OFFSET);
    let put = |page: &mut [u8; 4096], sel: u16, v: u64| {
        let at = sel as usize & !7;
        page[at..at + 8].copy_from_slice(&v.to_le_bytes());
    };
    put(&mut page, KERNEL_CS, GDT_KERNEL_CS);
    put(&mut page, KERNEL_DS, GDT_KERNEL_DS);
    put(&mut page, USER32_CS, GDT_USER32_CS);
    put(&mut page, USER_DS, GDT_USER_DS);
    put(&mut page, USER_CS, GDT_USER_CS);
    // 64-bit available TSS (type 0xB: busy, as after ltr), limit 103.
    let tss_low = 103 | (tss & 0xff_ffff) << 16 | (0x8b << 40) | ((tss >> 24) & 0xff) << 56;
    put(&mut page, TSS_SEL, tss_low);
    put(&mut page, TSS_SEL + 8, tss >> 32);
    let stack_top = vcpu_stack_top(slot);
    let t = TSS_OFFSET as usize;
    page[t + 4..t + 12].copy_from_slice(&stack_top.to_le_bytes()); // RSP0
    page[t + 36..t + 44].copy_from_slice(&stack_top.to_le_bytes()); // IST1
    page[t + 102..t + 104].copy_from_slice(&104u16.to_le_bytes()); // no I/O bitmap
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_port_syscall_entry_after_out_is_syscall_port() {
        assert_eq!(entry_port(kva(SYSCALL_ENTRY) + 2), Some(PORT_SYSCALL));
        assert_eq!(entry_port(kva(14 * ENTRY_SIZE)), Some(PORT_BASE + 14));
        assert_eq!(entry_port(kva(IRET_ENTRY)), None);
        assert_eq!(entry_port(kva(1)), None);
    }

    #[test]
    fn code_page_entry_is_out_then_ud2() {
        let code = code_page();
        let at = SYSCALL_ENTRY as usize;
        assert_eq!(&code[at..at + 4], &[0xe6, PORT_SYSCALL as u8, 0x0f, 0x0b]);
    }
}
