//! Tests of the KVM platform on the real `/dev/kvm` (root needed). A host
//! without a usable `/dev/kvm` fails them with a clear message.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use super::*;
use crate::sentry::platform::{Event, Regs};

const CODE: u64 = 0x40_0000;
const DATA: u64 = 0x60_0000;
const STACK_TOP: u64 = 0x80_0000;

struct Vm {
    mem: Arc<GuestMemory>,
    platform: KvmPlatform,
    space: Arc<dyn AddressSpace>,
    ctx: Box<dyn Context>,
}

fn open_kvm() -> OwnedFd {
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        Ok(f) => f.into(),
        Err(e) => panic!("these tests need /dev/kvm (and root): opening it failed: {e}"),
    }
}

fn rx() -> Prot {
    Prot {
        read: true,
        write: false,
        exec: true,
    }
}

fn rw() -> Prot {
    Prot {
        read: true,
        write: true,
        exec: false,
    }
}

impl Vm {
    /// A VM with `code` mapped at CODE and one data page at DATA.
    fn new(code: &[u8]) -> Vm {
        let mem = Arc::new(GuestMemory::new(64 << 20, 64 << 20).unwrap());
        let platform = KvmPlatform::new(mem.clone(), open_kvm()).unwrap();
        let space = platform.new_address_space().unwrap();
        let ctx = platform.new_context().unwrap();
        let frame = mem.alloc_frame().unwrap();
        mem.write(frame, code);
        space.map(CODE, PAGE_SIZE, frame, rx()).unwrap();
        let data = mem.alloc_frame().unwrap();
        space.map(DATA, PAGE_SIZE, data, rw()).unwrap();
        let stack = mem.alloc_frame().unwrap();
        space
            .map(STACK_TOP - PAGE_SIZE, PAGE_SIZE, stack, rw())
            .unwrap();
        Vm {
            mem,
            platform,
            space,
            ctx,
        }
    }

    fn regs(&self) -> Regs {
        Regs {
            rip: CODE,
            rsp: STACK_TOP,
            rflags: 0x202,
            ..Default::default()
        }
    }

    fn switch(&mut self, regs: &mut Regs) -> Event {
        self.ctx.switch(self.space.as_ref(), regs).unwrap()
    }

    /// Guest-physical frame `va` maps to.
    fn frame_of(&mut self, va: u64) -> u64 {
        let space = self
            .space
            .as_any()
            .downcast_ref::<KvmAddressSpace>()
            .unwrap();
        space.with_tables(|t| t.translate(va).unwrap().0)
    }
}

/// mov eax, 39; syscall; mov [DATA], rax; mov eax, 60; syscall
const SYSCALL_BLOB: &[u8] = &[
    0xb8, 39, 0, 0, 0, // mov eax, 39
    0x0f, 0x05, // syscall
    0x48, 0x89, 0x04, 0x25, 0x00, 0x00, 0x60, 0x00, // mov [0x600000], rax
    0xb8, 60, 0, 0, 0, // mov eax, 60
    0x0f, 0x05, // syscall
];

#[test]
fn switch_syscall_reports_number_and_resumes_with_result() {
    let mut vm = Vm::new(SYSCALL_BLOB);
    let mut regs = vm.regs();
    regs.rbx = 0x1234;
    assert_eq!(vm.switch(&mut regs), Event::Syscall);
    assert_eq!(regs.rax, 39);
    assert_eq!(regs.rip, CODE + 7);
    assert_eq!(regs.rcx, CODE + 7);
    assert_eq!(regs.rbx, 0x1234);
    assert_eq!(regs.rsp, STACK_TOP);
    regs.rax = 0xfeed_beef;
    assert_eq!(vm.switch(&mut regs), Event::Syscall);
    assert_eq!(regs.rax, 60);
    let data = vm.frame_of(DATA);
    assert_eq!(vm.mem.read_u64(data), 0xfeed_beef);
}

#[test]
fn switch_ud2_is_exception_6() {
    let mut vm = Vm::new(&[0x90, 0x0f, 0x0b]);
    let mut regs = vm.regs();
    assert_eq!(
        vm.switch(&mut regs),
        Event::Exception {
            vector: 6,
            error_code: 0
        }
    );
    assert_eq!(regs.rip, CODE + 1);
    assert_eq!(regs.rsp, STACK_TOP);
}

const FAULT_VA: u64 = 0x70_0000;

#[test]
fn switch_faults_report_access_and_resume_after_map() {
    // mov rax, [FAULT_VA]; mov [FAULT_VA], rbx; syscall
    let mut vm = Vm::new(&[
        0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x70, 0x00, 0x48, 0x89, 0x1c, 0x25, 0x00, 0x00, 0x70,
        0x00, 0x0f, 0x05,
    ]);
    let mut regs = vm.regs();
    regs.rbx = 0x2222;
    let ev = vm.switch(&mut regs);
    assert_eq!(
        ev,
        Event::PageFault {
            addr: FAULT_VA,
            write: false,
            exec: false,
            present: false
        }
    );
    assert_eq!(regs.rip, CODE);
    let frame = vm.mem.alloc_frame().unwrap();
    vm.mem.write_u64(frame, 0x1111);
    let ro = Prot {
        read: true,
        write: false,
        exec: false,
    };
    vm.space.map(FAULT_VA, PAGE_SIZE, frame, ro).unwrap();
    let ev = vm.switch(&mut regs);
    assert_eq!(
        ev,
        Event::PageFault {
            addr: FAULT_VA,
            write: true,
            exec: false,
            present: true
        }
    );
    assert_eq!((regs.rip, regs.rax), (CODE + 8, 0x1111));
    vm.space.map(FAULT_VA, PAGE_SIZE, frame, rw()).unwrap();
    assert_eq!(vm.switch(&mut regs), Event::Syscall);
    assert_eq!(vm.mem.read_u64(frame), 0x2222);
}

#[test]
fn switch_after_unmap_faults_again() {
    // mov rax, [FAULT_VA]; syscall; jmp back to start
    let mut vm = Vm::new(&[
        0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x70, 0x00, 0x0f, 0x05, 0xeb, 0xf4,
    ]);
    let frame = vm.mem.alloc_frame().unwrap();
    vm.space.map(FAULT_VA, PAGE_SIZE, frame, rw()).unwrap();
    let mut regs = vm.regs();
    assert_eq!(vm.switch(&mut regs), Event::Syscall);
    vm.space.unmap(FAULT_VA, PAGE_SIZE).unwrap();
    let ev = vm.switch(&mut regs);
    assert_eq!(
        ev,
        Event::PageFault {
            addr: FAULT_VA,
            write: false,
            exec: false,
            present: false
        }
    );
}

#[test]
fn switch_remap_to_other_frame_reads_new_frame() {
    // mov rax, [FAULT_VA]; syscall; jmp back to start
    let mut vm = Vm::new(&[
        0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x70, 0x00, 0x0f, 0x05, 0xeb, 0xf4,
    ]);
    let (a, b) = (vm.mem.alloc_frame().unwrap(), vm.mem.alloc_frame().unwrap());
    vm.mem.write_u64(a, 0xaaaa);
    vm.mem.write_u64(b, 0xbbbb);
    vm.space.map(FAULT_VA, PAGE_SIZE, a, rw()).unwrap();
    let mut regs = vm.regs();
    assert_eq!(vm.switch(&mut regs), Event::Syscall);
    assert_eq!(regs.rax, 0xaaaa);
    vm.space.map(FAULT_VA, PAGE_SIZE, b, rw()).unwrap();
    assert_eq!(vm.switch(&mut regs), Event::Syscall);
    assert_eq!(regs.rax, 0xbbbb);
}

#[test]
fn switch_fs_base_is_what_fs_relative_load_reads() {
    // mov rax, fs:[8]; syscall
    let mut vm = Vm::new(&[
        0x64, 0x48, 0x8b, 0x04, 0x25, 0x08, 0x00, 0x00, 0x00, 0x0f, 0x05,
    ]);
    let data = vm.frame_of(DATA);
    vm.mem.write_u64(data + 8, 0xf5f5);
    let mut regs = vm.regs();
    regs.fs_base = DATA;
    assert_eq!(vm.switch(&mut regs), Event::Syscall);
    assert_eq!((regs.rax, regs.fs_base), (0xf5f5, DATA));
}

#[test]
fn switch_avx_ymm_copy_works() {
    // vmovdqu ymm0, [DATA]; vmovdqu [DATA+32], ymm0; syscall
    let mut vm = Vm::new(&[
        0xc5, 0xfe, 0x6f, 0x04, 0x25, 0x00, 0x00, 0x60, 0x00, 0xc5, 0xfe, 0x7f, 0x04, 0x25, 0x20,
        0x00, 0x60, 0x00, 0x0f, 0x05,
    ]);
    let data = vm.frame_of(DATA);
    let pattern: Vec<u8> = (1..=32).collect();
    vm.mem.write(data, &pattern);
    let mut regs = vm.regs();
    assert_eq!(vm.switch(&mut regs), Event::Syscall);
    let mut copy = [0u8; 32];
    vm.mem.read(data + 32, &mut copy);
    assert_eq!(&copy[..], &pattern[..]);
}

#[test]
fn switch_xcr0_enables_avx() {
    // mov eax, 1; cpuid; mov r8, rcx; xor ecx, ecx; xgetbv; syscall
    let mut vm = Vm::new(&[
        0xb8, 1, 0, 0, 0, 0x0f, 0xa2, 0x49, 0x89, 0xc8, 0x31, 0xc9, 0x0f, 0x01, 0xd0, 0x0f, 0x05,
    ]);
    let mut regs = vm.regs();
    assert_eq!(vm.switch(&mut regs), Event::Syscall);
    // Where CPUID and XGETBV run natively (PVM without CPUID faulting)
    // they show the host's view; only XCR0's AVX bits are ours to check.
    if regs.r8 & (1 << 27) == 0 {
        eprintln!(
            "CPUID.1:ECX.OSXSAVE clear (ecx {:#x}): host's CPUID",
            regs.r8
        );
    }
    assert_eq!(
        regs.rax & 0b111,
        0b111,
        "XCR0 lacks x87/SSE/AVX: {:#x}",
        regs.rax
    );
}

#[test]
fn interrupt_stops_spinning_guest_and_resume_works() {
    // jmp . ; syscall
    let mut vm = Vm::new(&[0xeb, 0xfe, 0x0f, 0x05]);
    let intr = vm.ctx.interrupter();
    let kicker = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        intr.interrupt();
    });
    let mut regs = vm.regs();
    assert_eq!(vm.switch(&mut regs), Event::Interrupted);
    kicker.join().unwrap();
    assert_eq!(regs.rip, CODE);
    regs.rip = CODE + 2;
    regs.rax = 7;
    assert_eq!(vm.switch(&mut regs), Event::Syscall);
    assert_eq!((regs.rax, regs.rip), (7, CODE + 4));
}

#[test]
fn interrupt_before_switch_returns_at_once() {
    let mut vm = Vm::new(&[0x0f, 0x05]);
    vm.ctx.interrupter().interrupt();
    let mut regs = vm.regs();
    assert_eq!(vm.switch(&mut regs), Event::Interrupted);
    assert_eq!(regs.rip, CODE);
    assert_eq!(vm.switch(&mut regs), Event::Syscall);
}

#[test]
fn context_pooled_vcpu_is_reused_after_drop() {
    let mut vm = Vm::new(SYSCALL_BLOB);
    drop(std::mem::replace(
        &mut vm.ctx,
        vm.platform.new_context().unwrap(),
    ));
    let mut regs = vm.regs();
    assert_eq!(vm.switch(&mut regs), Event::Syscall);
    assert_eq!(vm.platform.shared.pool.lock().unwrap().created, 2);
    let again = vm.platform.new_context().unwrap();
    drop(again);
    assert_eq!(vm.platform.shared.pool.lock().unwrap().created, 2);
}

fn bench(name: &str, n: u32, mut step: impl FnMut()) {
    let start = std::time::Instant::now();
    for _ in 0..n {
        step();
    }
    let per = start.elapsed() / n;
    eprintln!("kvm_bench {name}: {per:?} per round trip ({n} rounds)");
}

#[test]
#[ignore = "benchmark: cargo test --lib kvm_bench -- --ignored --nocapture"]
fn kvm_bench_round_trips() {
    // syscall; jmp back
    let mut vm = Vm::new(&[0x0f, 0x05, 0xeb, 0xfc]);
    let mut regs = vm.regs();
    bench("syscall", 2000, || {
        assert_eq!(vm.switch(&mut regs), Event::Syscall)
    });
    // mov rax, [FAULT_VA] on a page never mapped
    let mut vm = Vm::new(&[0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x70, 0x00]);
    let mut regs = vm.regs();
    bench("page fault, unchanged tables", 2000, || {
        assert!(matches!(vm.switch(&mut regs), Event::PageFault { .. }))
    });
    // mov rax, [FAULT_VA]; syscall; jmp back: fault, map, syscall, unmap
    let mut vm = Vm::new(&[
        0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x70, 0x00, 0x0f, 0x05, 0xeb, 0xf4,
    ]);
    let frame = vm.mem.alloc_frame().unwrap();
    let mut regs = vm.regs();
    bench("fault + map + syscall + unmap", 1000, || {
        assert!(matches!(vm.switch(&mut regs), Event::PageFault { .. }));
        vm.space.map(FAULT_VA, PAGE_SIZE, frame, rw()).unwrap();
        assert_eq!(vm.switch(&mut regs), Event::Syscall);
        vm.space.unmap(FAULT_VA, PAGE_SIZE).unwrap();
    });
}

#[test]
fn switch_unmap_of_many_pages_faults_on_each() {
    // mov rax, [rbx]; syscall; jmp back
    let mut vm = Vm::new(&[0x48, 0x8b, 0x03, 0x0f, 0x05, 0xeb, 0xf9]);
    let frame = vm.mem.alloc_frame().unwrap();
    vm.space.map(FAULT_VA, 16 * PAGE_SIZE, frame, rw()).unwrap();
    let mut regs = vm.regs();
    for i in 0..16 {
        regs.rbx = FAULT_VA + i * PAGE_SIZE;
        regs.rip = CODE;
        assert_eq!(vm.switch(&mut regs), Event::Syscall);
    }
    vm.space.unmap(FAULT_VA, 16 * PAGE_SIZE).unwrap();
    for i in 0..16 {
        regs.rbx = FAULT_VA + i * PAGE_SIZE;
        regs.rip = CODE;
        let ev = vm.switch(&mut regs);
        assert_eq!(
            ev,
            Event::PageFault {
                addr: regs.rbx,
                write: false,
                exec: false,
                present: false
            },
            "page {i}"
        );
    }
}

#[test]
fn address_space_drop_frees_tables_after_next_switch() {
    let mut vm = Vm::new(SYSCALL_BLOB);
    let other = vm.platform.new_address_space().unwrap();
    other.map(0x1000_0000, PAGE_SIZE, 0, rw()).unwrap();
    let used = vm.mem.used_bytes();
    drop(other);
    assert_eq!(vm.mem.used_bytes(), used);
    let mut regs = vm.regs();
    assert_eq!(vm.switch(&mut regs), Event::Syscall);
    assert_eq!(vm.mem.used_bytes(), used - 4 * PAGE_SIZE);
}

/// The vDSO computes time from the guest's TSC with the sentry's
/// calibration of the host's: the two must be the same counter.
#[test]
fn switch_guest_rdtsc_reads_the_host_tsc() {
    // lfence; rdtsc; mov [DATA], eax; mov [DATA+4], edx; syscall
    let mut vm = Vm::new(&[
        0x0f, 0xae, 0xe8, // lfence
        0x0f, 0x31, // rdtsc
        0x89, 0x04, 0x25, 0x00, 0x00, 0x60, 0x00, // mov [0x600000], eax
        0x89, 0x14, 0x25, 0x04, 0x00, 0x60, 0x00, // mov [0x600004], edx
        0x0f, 0x05, // syscall
    ]);
    let data = vm.frame_of(DATA);
    for _ in 0..3 {
        let mut regs = vm.regs();
        let before = crate::sys::clock::tsc();
        assert_eq!(vm.switch(&mut regs), Event::Syscall);
        let after = crate::sys::clock::tsc();
        let guest = vm.mem.read_u64(data);
        assert!(
            (before..=after).contains(&guest),
            "guest TSC {guest} outside the host's [{before}, {after}]"
        );
    }
}
