//! Delivering signals to guest handlers: the x86-64 `rt_sigframe` the
//! handler runs on (return address, ucontext with the interrupted
//! registers and signal mask, siginfo, FXSAVE state), and rt_sigreturn.
//!
//! Layout, as Linux builds it: `[pretcode][ucontext 304][siginfo 128]`,
//! the FPU area (512 bytes, 64-aligned) above it; the handler is entered
//! as if called, with `rsp % 16 == 8`.

use std::sync::atomic::Ordering;

use super::siginfo::SigInfo;
use super::signal::{action, Action};
use super::task::{Exit, Task};
use crate::abi::{Errno, SysResult};
use crate::sentry::platform::Regs;

const SA_SIGINFO: u64 = 0x4;
const SA_ONSTACK: u64 = 0x0800_0000;
const SA_RESTART: u64 = 0x1000_0000;
const SA_NODEFER: u64 = 0x4000_0000;
const SA_RESETHAND: u64 = 0x8000_0000;
/// uc_flags: the frame's segment registers are valid (UC_SIGCONTEXT_SS)
/// and strict restore of SS (UC_STRICT_RESTORE_SS).
const UC_FLAGS: u64 = 0x2 | 0x4;
const UCONTEXT: u64 = 304;
const SIGINFO: u64 = 128;
const FPSTATE: u64 = 512;
/// uc_flags: the frame's FPU area is an XSAVE area (UC_FP_XSTATE).
const UC_FP_XSTATE: u64 = 0x1;
/// Markers of an XSAVE area in a signal frame (struct _fpx_sw_bytes).
const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;
const REDZONE: u64 = 128;
/// Offset of the sigcontext in the ucontext.
const MCONTEXT: u64 = 40;
/// Signals that cannot be blocked.
const UNBLOCKABLE: u64 = (1 << (libc::SIGKILL - 1)) | (1 << (libc::SIGSTOP - 1));
/// RFLAGS bits the guest may change through a signal frame.
const FLAGS_USER: u64 = 0x0003_f7d5;

/// Takes pending, unblocked signals: ignores or terminates per their
/// default, or sets up one handler frame.
pub fn deliver_pending(t: &mut Task) {
    loop {
        let ready = t.control.deliverable();
        if ready == 0 {
            return;
        }
        let Some(info) = t.control.take_pending(ready) else {
            continue;
        };
        let sig = info.signo();
        match action(&t.control, sig) {
            Action::Ignore => continue,
            Action::Stop => {
                t.control.request_stop(sig);
                return;
            }
            Action::Terminate => {
                t.exit = Some(Exit::Signal(sig));
                return;
            }
            Action::Handle(act) => {
                if setup_frame(t, info, act, None).is_err() {
                    // No room for the frame: Linux forces SIGSEGV.
                    t.exit = Some(Exit::Signal(libc::SIGSEGV));
                }
                return;
            }
        }
    }
}

/// A synchronous fault signal with its si_code: runs the guest's handler
/// when it has one and does not block the signal, else kills the task.
pub fn deliver_fault(t: &mut Task, sig: i32, code: i32, addr: u64) {
    let blocked = t.control.mask.load(Ordering::SeqCst) & (1u64 << (sig - 1)) != 0;
    match action(&t.control, sig) {
        Action::Handle(act) if !blocked => {
            let info = SigInfo::fault(sig, code, addr);
            if setup_frame(t, info, act, Some(addr)).is_err() {
                t.exit = Some(Exit::Signal(libc::SIGSEGV));
            }
        }
        _ => t.exit = Some(Exit::Signal(sig)),
    }
}

fn put(buf: &mut [u8], off: u64, v: u64) {
    buf[off as usize..off as usize + 8].copy_from_slice(&v.to_le_bytes());
}

fn get(buf: &[u8], off: u64) -> u64 {
    u64::from_le_bytes(buf[off as usize..off as usize + 8].try_into().unwrap())
}

/// The sigcontext GPR order: r8..r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip.
fn gprs(r: &Regs) -> [u64; 17] {
    [
        r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rdi, r.rsi, r.rbp, r.rbx, r.rdx,
        r.rax, r.rcx, r.rsp, r.rip,
    ]
}

fn set_gprs(r: &mut Regs, v: &[u64; 17]) {
    [
        r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rdi, r.rsi, r.rbp, r.rbx, r.rdx,
        r.rax, r.rcx, r.rsp, r.rip,
    ] = *v;
}

fn setup_frame(t: &mut Task, info: SigInfo, act: [u64; 4], fault: Option<u64>) -> SysResult<()> {
    let sig = info.signo();
    let [handler, flags, restorer, mask] = act;
    let mut regs = t.regs;
    // A syscall cut short by this signal is restarted after the handler
    // when the handler asks for it (SA_RESTART).
    if let Some((nr, restartable)) = t.interrupted_syscall.take() {
        if restartable && flags & SA_RESTART != 0 {
            regs.rip -= 2;
            regs.rax = nr;
        }
    }
    let on_alt = flags & SA_ONSTACK != 0 && t.altstack.2 != 0 && !in_altstack(t, regs.rsp);
    let top = if on_alt {
        t.altstack.0 + t.altstack.2
    } else {
        regs.rsp - REDZONE
    };
    // The FPU area: XSAVE layout with the software bytes Linux puts in
    // the legacy area's unused tail, and FP_XSTATE_MAGIC2 right after it.
    let fpu = t.ctx_fpu().map(|mut area| {
        if area.len() > 512 {
            let len = area.len() as u32;
            let features = crate::sentry::platform::xstate::layout().features;
            area[464..468].copy_from_slice(&FP_XSTATE_MAGIC1.to_le_bytes());
            area[468..472].copy_from_slice(&(len + 4).to_le_bytes());
            area[472..480].copy_from_slice(&features.to_le_bytes());
            area[480..484].copy_from_slice(&len.to_le_bytes());
            area[484..512].fill(0);
            area.extend_from_slice(&FP_XSTATE_MAGIC2.to_le_bytes());
        }
        area
    });
    let fp_len = fpu.as_ref().map_or(FPSTATE, |a| a.len() as u64);
    let fp_addr = (top - fp_len) & !63;
    let frame = ((fp_addr - (8 + UCONTEXT + SIGINFO)) & !15) - 8;
    let old_mask = t
        .saved_mask
        .take()
        .unwrap_or(t.control.mask.load(Ordering::SeqCst));

    let mut buf = vec![0u8; (8 + UCONTEXT + SIGINFO) as usize];
    put(&mut buf, 0, restorer);
    let uc = 8;
    let xstate = fpu.as_ref().is_some_and(|a| a.len() > 512);
    put(
        &mut buf,
        uc,
        UC_FLAGS | if xstate { UC_FP_XSTATE } else { 0 },
    );
    put(&mut buf, uc + 16, t.altstack.0);
    put(&mut buf, uc + 24, if on_alt { 1 } else { t.altstack.1 });
    put(&mut buf, uc + 32, t.altstack.2);
    let mc = uc + MCONTEXT;
    for (i, v) in gprs(&regs).iter().enumerate() {
        put(&mut buf, mc + 8 * i as u64, *v);
    }
    put(&mut buf, mc + 136, regs.rflags);
    put(&mut buf, mc + 144, 0x33 | (0x2b << 48)); // cs, gs, fs, ss
    put(&mut buf, mc + 160, if fault.is_some() { 14 } else { 0 }); // trapno
    put(&mut buf, mc + 168, old_mask); // oldmask
    put(&mut buf, mc + 176, fault.unwrap_or(0)); // cr2
    put(&mut buf, mc + 184, if fpu.is_some() { fp_addr } else { 0 }); // fpregs
    put(&mut buf, uc + 296, old_mask);
    let info_at = 8 + UCONTEXT;
    buf[info_at as usize..(info_at + SIGINFO) as usize].copy_from_slice(&info.0);
    if let Some(fpu) = &fpu {
        t.mm.copy_out(fp_addr, fpu)?;
    }
    t.mm.copy_out(frame, &buf)?;

    let mut block = mask
        | if flags & SA_NODEFER == 0 {
            1 << (sig - 1)
        } else {
            0
        };
    block |= old_mask;
    t.control.mask.store(block & !UNBLOCKABLE, Ordering::SeqCst);
    if flags & SA_RESETHAND != 0 {
        t.control.sigactions.lock().unwrap()[sig as usize - 1] = [0; 4];
    }
    t.regs = Regs {
        rip: handler,
        rsp: frame,
        rdi: sig as u64,
        rsi: frame + info_at,
        rdx: frame + uc,
        rax: 0,
        rflags: regs.rflags & !0x100 & !0x400, // clear TF and DF
        ..regs
    };
    let _ = SA_SIGINFO;
    Ok(())
}

fn in_altstack(t: &Task, sp: u64) -> bool {
    let (base, _, size) = t.altstack;
    size != 0 && sp > base && sp <= base + size
}

/// rt_sigreturn(2): restores what `setup_frame` saved. Returns the
/// restored rax (the dispatcher stores it back).
pub fn sigreturn(t: &mut Task) -> SysResult<u64> {
    let uc = t.regs.rsp; // the handler's `ret` popped the return address
    let mut buf = vec![0u8; UCONTEXT as usize];
    t.mm.copy_in(uc, &mut buf)?;
    let mc = MCONTEXT;
    let mut v = [0u64; 17];
    for (i, x) in v.iter_mut().enumerate() {
        *x = get(&buf, mc + 8 * i as u64);
    }
    let mut regs = t.regs;
    set_gprs(&mut regs, &v);
    regs.rflags = (t.regs.rflags & !FLAGS_USER) | (get(&buf, mc + 136) & FLAGS_USER);
    let fp = get(&buf, mc + 184);
    if fp != 0 {
        let area = read_fpstate(t, fp)?;
        t.ctx_set_fpu(&area);
    }
    let mask = get(&buf, 296) & !UNBLOCKABLE;
    t.control.mask.store(mask, Ordering::SeqCst);
    t.regs = regs;
    Ok(regs.rax)
}

/// Reads the FPU area of a frame being returned from: the whole XSAVE
/// area when its software bytes and end marker say it is one of ours,
/// else the legacy 512 bytes with the extended state reset to its initial
/// values. Either way sanitized for loading.
fn read_fpstate(t: &mut Task, fp: u64) -> SysResult<Vec<u8>> {
    use crate::sentry::platform::xstate;
    let layout = xstate::layout();
    let mut legacy = [0u8; 512];
    t.mm.copy_in(fp, &mut legacy)?;
    let word = |o: usize| u32::from_le_bytes(legacy[o..o + 4].try_into().unwrap());
    let mut area = if layout.size > 512
        && word(464) == FP_XSTATE_MAGIC1
        && word(480) as usize == layout.size
        && word(468) as usize == layout.size + 4
    {
        let mut area = vec![0u8; layout.size + 4];
        t.mm.copy_in(fp, &mut area)?;
        let magic2 = u32::from_le_bytes(area[layout.size..].try_into().unwrap());
        area.truncate(layout.size);
        if magic2 == FP_XSTATE_MAGIC2 {
            area
        } else {
            xstate::from_legacy(&legacy, layout)
        }
    } else {
        xstate::from_legacy(&legacy, layout)
    };
    xstate::sanitize(&mut area, layout);
    Ok(area)
}

/// Validates a new alternate signal stack (sigaltstack(2)).
pub fn check_altstack(sp: u64, flags: u64, size: u64) -> SysResult<(u64, u64, u64)> {
    const SS_DISABLE: u64 = 2;
    const MINSIGSTKSZ: u64 = 2048;
    if flags & !(SS_DISABLE | 0x8000_0000) != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & SS_DISABLE != 0 {
        return Ok((0, SS_DISABLE, 0));
    }
    if size < MINSIGSTKSZ {
        return Err(Errno::ENOMEM);
    }
    Ok((sp, 0, size))
}
