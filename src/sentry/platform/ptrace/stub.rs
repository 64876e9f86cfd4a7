//! A stub process: creation, syscall injection, and running guest code in
//! it under `PTRACE_SYSEMU`. All the unsafe of the ptrace platform is here.

use std::os::fd::AsRawFd;
use std::sync::OnceLock;

use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};

use crate::sentry::mm::memory::GuestMemory;
use crate::sentry::mm::USER_TOP;
use crate::sentry::platform::{Event, PlatformError, Prot, Regs};

/// The guest memory memfd's number inside every stub.
pub const STUB_MEMFD: i32 = 3;
/// The stub code: `syscall; int3`, the park loop, and the batch loop.
const STUB_CODE: [u8; 71] = [
    0x0f, 0x05, 0xcc, // syscall; int3
    0xb8, 0x22, 0, 0, 0, // PARK: mov eax, SYS_pause
    0x0f, 0x05, // syscall
    0xeb, 0xf7, // jmp PARK
    // BATCH: r12 = table of (nr, a0..a5), r13 = entries.
    0x4d, 0x85, 0xed, // test r13, r13
    0x74, 0x35, // jz DONE
    0x49, 0x8b, 0x04, 0x24, // mov rax, [r12]
    0x49, 0x8b, 0x7c, 0x24, 0x08, // mov rdi, [r12+8]
    0x49, 0x8b, 0x74, 0x24, 0x10, // mov rsi, [r12+16]
    0x49, 0x8b, 0x54, 0x24, 0x18, // mov rdx, [r12+24]
    0x4d, 0x8b, 0x54, 0x24, 0x20, // mov r10, [r12+32]
    0x4d, 0x8b, 0x44, 0x24, 0x28, // mov r8, [r12+40]
    0x4d, 0x8b, 0x4c, 0x24, 0x30, // mov r9, [r12+48]
    0x0f, 0x05, // syscall
    0x48, 0x3d, 0x01, 0xf0, 0xff, 0xff, // cmp rax, -4095
    0x73, 0x09, // jae DONE (an error: r13 tells which entry)
    0x49, 0x83, 0xc4, 0x38, // add r12, 56
    0x49, 0xff, 0xcd, // dec r13
    0xeb, 0xc6, // jmp BATCH
    0xcc, // DONE: int3
];
/// Offset in the stub code of the batch loop: runs the syscalls of a
/// table the stub may only read, until the first that fails.
const BATCH: u64 = 12;
/// Bytes of one batch table entry: the number and six arguments.
const BATCH_ENTRY: usize = 56;
/// Entries of a batch table (one page).
pub const BATCH_MAX: usize = PAGE as usize / BATCH_ENTRY;
/// Offset in the stub code of a loop of pause(2): where a new stub thread
/// waits, untraced, for the sentry thread that will trace it.
const PARK: u64 = 3;
/// The flags of the clone(2) that makes a stub thread: a thread of the
/// same process, traced by the cloning thread's tracer.
const THREAD_FLAGS: u64 = (libc::CLONE_VM
    | libc::CLONE_FS
    | libc::CLONE_FILES
    | libc::CLONE_SIGHAND
    | libc::CLONE_THREAD
    | libc::CLONE_PTRACE) as u64;
/// End of the x86-64 user half (Linux's TASK_SIZE).
const TASK_SIZE: u64 = 0x7fff_ffff_f000;
const PAGE: u64 = 4096;
/// User code and stack segment selectors of x86-64 Linux.
const USER_CS: u64 = 0x33;
const USER_SS: u64 = 0x2b;

/// Appends to `table` the batch entry that maps guest memory
/// `[offset, offset+len)` at `addr` with `prot`, as [`Stub::map`] does.
pub fn encode_mmap(table: &mut Vec<u8>, addr: u64, len: u64, offset: u64, prot: Prot) {
    let flags = (libc::MAP_SHARED | libc::MAP_FIXED) as u64;
    let entry = [
        libc::SYS_mmap as u64,
        addr,
        len,
        prot.to_bits(),
        flags,
        STUB_MEMFD as u64,
        offset,
    ];
    for v in entry {
        table.extend_from_slice(&v.to_ne_bytes());
    }
}

/// Maps the stub page and builds the stub filter now.
pub fn prepare() -> Result<(), PlatformError> {
    stub_page()?;
    stub_filter()?;
    Ok(())
}

/// The page of stub code, mapped at the same address in the sentry and in
/// every stub (forks inherit it); it lies above the guest's USER_TOP.
fn stub_page() -> Result<u64, PlatformError> {
    static PAGE_ADDR: OnceLock<Result<u64, String>> = OnceLock::new();
    PAGE_ADDR
        .get_or_init(map_stub_page)
        .clone()
        .map_err(PlatformError::Unsupported)
}

fn map_stub_page() -> Result<u64, String> {
    // The sentry's own stack and vDSO also live up here: probe for a hole.
    let mut addr = USER_TOP;
    while addr + PAGE <= TASK_SIZE - (1 << 20) {
        // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping;
        // the page is ours until the sentry exits.
        let p = unsafe {
            libc::mmap(
                addr as *mut libc::c_void,
                PAGE as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
                -1,
                0,
            )
        };
        if p as u64 == addr {
            // SAFETY: we just mapped this page writable and own it.
            unsafe {
                std::ptr::copy_nonoverlapping(STUB_CODE.as_ptr(), p as *mut u8, STUB_CODE.len());
                libc::mprotect(p, PAGE as usize, libc::PROT_READ | libc::PROT_EXEC);
            }
            return Ok(addr);
        }
        if p != libc::MAP_FAILED {
            // SAFETY: an unwanted mapping the kernel placed elsewhere.
            unsafe { libc::munmap(p, PAGE as usize) };
        }
        addr += 1 << 28;
    }
    Err("no free page for the ptrace stub code above the guest address range".into())
}

/// The seccomp filter every stub runs under: only the calls the tracer
/// injects and the stub's own start-up. Guest syscalls never reach it
/// (PTRACE_SYSEMU skips them before seccomp runs); it is the second wall
/// should that ever fail.
fn stub_filter() -> Result<&'static BpfProgram, PlatformError> {
    static FILTER: OnceLock<Result<BpfProgram, String>> = OnceLock::new();
    let built = FILTER.get_or_init(|| {
        use seccompiler::{
            SeccompCmpArgLen as Len, SeccompCmpOp as Op, SeccompCondition as Cond, SeccompRule,
        };
        let rule = |conds: Vec<Cond>| SeccompRule::new(conds).map_err(|e| e.to_string());
        let cond = |arg, op, v| Cond::new(arg, Len::Dword, op, v).map_err(|e| e.to_string());
        let shared_fixed = (libc::MAP_SHARED | libc::MAP_FIXED) as u64;
        let mut rules: std::collections::BTreeMap<i64, Vec<SeccompRule>> = Default::default();
        // Guest memory only: shared fixed mappings of the memfd.
        rules.insert(
            libc::SYS_mmap,
            vec![rule(vec![
                cond(3, Op::MaskedEq(shared_fixed), shared_fixed)?,
                cond(4, Op::Eq, STUB_MEMFD as u64)?,
            ])?],
        );
        rules.insert(libc::SYS_munmap, vec![]);
        // The stub stops itself once, with SIGSTOP; it may signal nothing else.
        rules.insert(
            libc::SYS_kill,
            vec![rule(vec![cond(1, Op::Eq, libc::SIGSTOP as u64)?])?],
        );
        // New stub threads (one per guest thread), and their wait.
        rules.insert(
            libc::SYS_clone,
            vec![rule(vec![
                Cond::new(0, Len::Qword, Op::Eq, THREAD_FLAGS).map_err(|e| e.to_string())?
            ])?],
        );
        for n in [
            libc::SYS_getpid,
            libc::SYS_exit,
            libc::SYS_exit_group,
            libc::SYS_pause,
        ] {
            rules.insert(n, vec![]);
        }
        let filter = SeccompFilter::new(
            rules,
            SeccompAction::KillProcess,
            SeccompAction::Allow,
            TargetArch::x86_64,
        )
        .map_err(|e| e.to_string())?;
        BpfProgram::try_from(filter).map_err(|e| e.to_string())
    });
    built
        .as_ref()
        .map_err(|e| PlatformError::Unsupported(format!("building the stub seccomp filter: {e}")))
}

fn last_error(op: &'static str) -> PlatformError {
    PlatformError::host(op, std::io::Error::last_os_error())
}

fn gettid() -> i32 {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::gettid() }
}

/// Asks a running stub thread to stop (for an interrupt). The signal is
/// thread-directed and its stop is always suppressed by the tracer, so it
/// never becomes a group stop of the other stub threads.
pub fn stop(tid: i32) {
    // SAFETY: sending a signal has no memory effects; a stale tid at worst
    // fails with ESRCH (stub threads are reaped only by us).
    unsafe { libc::syscall(libc::SYS_tkill, tid, libc::SIGSTOP) };
}

/// Kills stub process `tgid` and reaps it, after reaping `mine` (the
/// calling thread's own traced stub thread in it, if any: a traced thread
/// must be reaped by its tracer before the process can be).
pub fn kill_process(tgid: i32, mine: Option<i32>) {
    // SAFETY: killing and reaping our own children; no memory effects.
    unsafe {
        libc::kill(tgid, libc::SIGKILL);
        let mut status = 0;
        if let Some(tid) = mine.filter(|&t| t != tgid) {
            libc::waitpid(tid, &mut status, libc::__WALL);
        }
        libc::waitpid(tgid, &mut status, libc::__WALL);
    }
}

/// One stub process, traced by the thread that created it.
/// One thread of a stub process, traced by the sentry thread that runs
/// the guest thread it mirrors.
pub struct Stub {
    /// The stub thread (what ptrace acts on).
    pid: i32,
    /// Its process.
    tgid: i32,
    tracer: i32,
    code: u64,
    /// The CPU the stub is bound to (-1: none yet).
    cpu: std::sync::atomic::AtomicI32,
}

impl Stub {
    /// Forks a stub, strips it down to the stub page, and attaches.
    pub fn spawn(memory: &GuestMemory) -> Result<Stub, PlatformError> {
        let code = stub_page()?;
        let filter = stub_filter()?;
        let prog = libc::sock_fprog {
            len: filter.len() as u16,
            filter: filter.as_ptr() as *mut libc::sock_filter,
        };
        let memfd = memory.fd().as_raw_fd();
        // SAFETY: the child runs only async-signal-safe raw syscalls (see
        // `stub_child`) and never returns.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(last_error("fork of a ptrace stub"));
        }
        if pid == 0 {
            // SAFETY: we are the freshly forked child.
            unsafe { stub_child(memfd, &prog) }
        }
        let stub = Stub {
            pid,
            tgid: pid,
            tracer: gettid(),
            code,
            cpu: std::sync::atomic::AtomicI32::new(-1),
        };
        stub.wait_stop(libc::SIGSTOP)?;
        let opts = libc::PTRACE_O_TRACESYSGOOD | libc::PTRACE_O_EXITKILL;
        // SAFETY: PTRACE_SETOPTIONS on our stopped tracee.
        if unsafe { libc::ptrace(libc::PTRACE_SETOPTIONS, pid, 0, opts) } < 0 {
            return Err(last_error("PTRACE_SETOPTIONS"));
        }
        // Remove everything the fork copied from the sentry but the stub page.
        stub.inject(libc::SYS_munmap, [0, code, 0, 0, 0, 0])?;
        stub.inject(
            libc::SYS_munmap,
            [code + PAGE, TASK_SIZE - code - PAGE, 0, 0, 0, 0],
        )?;
        Ok(stub)
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    fn check_tracer(&self) -> Result<(), PlatformError> {
        if gettid() != self.tracer {
            return Err(PlatformError::Unsupported(
                "ptrace stub used from a thread that does not trace it".into(),
            ));
        }
        Ok(())
    }

    /// Waits for the next stop of the stub; returns the stop signal
    /// (with 0x80 set for syscall stops).
    fn wait(&self) -> Result<i32, PlatformError> {
        let mut status = 0;
        loop {
            // SAFETY: waitpid writes the status into `status`.
            let r = unsafe { libc::waitpid(self.pid, &mut status, libc::__WALL) };
            if r == self.pid {
                break;
            }
            if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                return Err(last_error("waitpid on a ptrace stub"));
            }
        }
        if libc::WIFSTOPPED(status) {
            return Ok(libc::WSTOPSIG(status));
        }
        let how = if libc::WIFSIGNALED(status) {
            format!("killed by signal {}", libc::WTERMSIG(status))
        } else {
            format!("exited with status {}", libc::WEXITSTATUS(status))
        };
        Err(PlatformError::UnexpectedExit(format!(
            "ptrace stub {} {how}",
            self.pid
        )))
    }

    fn wait_stop(&self, want: i32) -> Result<(), PlatformError> {
        let got = self.wait()?;
        if got != want {
            return Err(PlatformError::UnexpectedExit(format!(
                "ptrace stub stopped with signal {got}, expected {want}"
            )));
        }
        Ok(())
    }

    fn get_regs(&self) -> Result<libc::user_regs_struct, PlatformError> {
        // SAFETY: an all-zero user_regs_struct is a valid value.
        let mut r: libc::user_regs_struct = unsafe { std::mem::zeroed() };
        // SAFETY: PTRACE_GETREGS writes one user_regs_struct into `r`.
        if unsafe { libc::ptrace(libc::PTRACE_GETREGS, self.pid, 0, &mut r) } < 0 {
            return Err(last_error("PTRACE_GETREGS"));
        }
        Ok(r)
    }

    fn set_regs(&self, r: &libc::user_regs_struct) -> Result<(), PlatformError> {
        // SAFETY: PTRACE_SETREGS reads one user_regs_struct from `r`.
        if unsafe { libc::ptrace(libc::PTRACE_SETREGS, self.pid, 0, r as *const _) } < 0 {
            return Err(last_error("PTRACE_SETREGS"));
        }
        Ok(())
    }

    fn resume(&self, request: libc::c_uint) -> Result<(), PlatformError> {
        // SAFETY: resuming our stopped tracee; signal 0 suppresses the
        // signal that stopped it.
        if unsafe { libc::ptrace(request, self.pid, 0, 0) } < 0 {
            return Err(last_error("ptrace resume"));
        }
        Ok(())
    }

    /// Registers that run the stub code at `offset` in the stub page.
    fn injection_regs(&self, offset: u64) -> libc::user_regs_struct {
        // SAFETY: an all-zero user_regs_struct is a valid value.
        let mut r: libc::user_regs_struct = unsafe { std::mem::zeroed() };
        (r.rip, r.orig_rax, r.cs, r.ss, r.eflags) =
            (self.code + offset, u64::MAX, USER_CS, USER_SS, 0x202);
        r
    }

    /// Runs the stub from registers `r` until its int3; returns the
    /// registers then. `what` names it in errors.
    fn run_injected(
        &self,
        r: &libc::user_regs_struct,
        what: &str,
    ) -> Result<libc::user_regs_struct, PlatformError> {
        self.check_tracer()?;
        self.set_regs(r)?;
        self.resume(libc::PTRACE_CONT)?;
        loop {
            match self.wait()? {
                libc::SIGTRAP => break,
                // An interrupt raced with us: drop it, the caller's next
                // switch reports the interrupt from its own flag.
                libc::SIGSTOP => self.resume(libc::PTRACE_CONT)?,
                sig => {
                    let rip = self.get_regs().map(|r| r.rip).unwrap_or(0);
                    return Err(PlatformError::UnexpectedExit(format!(
                        "ptrace stub got signal {sig} at {rip:#x} in injected {what}"
                    )));
                }
            }
        }
        self.get_regs()
    }

    /// Runs syscall `nr` in the stub at the stub page; returns its result.
    pub(super) fn inject(&self, nr: libc::c_long, a: [u64; 6]) -> Result<i64, PlatformError> {
        let mut r = self.injection_regs(0);
        r.rax = nr as u64;
        (r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9) = (a[0], a[1], a[2], a[3], a[4], a[5]);
        Ok(self.run_injected(&r, &format!("syscall {nr}"))?.rax as i64)
    }

    /// Where a space's batch table is mapped in its stub: the page after
    /// the stub code, which no stub has otherwise.
    pub fn table_addr(&self) -> u64 {
        self.code + PAGE
    }

    /// Runs the first `n` entries of the batch table mapped at
    /// [`Stub::table_addr`] (written as [`encode_mmap`] does); stops at the
    /// first that fails. Returns (entries not run, the failing result).
    pub(super) fn inject_batch(&self, n: usize) -> Result<(usize, i64), PlatformError> {
        let mut r = self.injection_regs(BATCH);
        (r.r12, r.r13) = (self.table_addr(), n as u64);
        let done = self.run_injected(&r, "batch")?;
        Ok((done.r13 as usize, done.rax as i64))
    }

    /// Maps guest memory `[offset, offset+len)` at `addr` in the stub.
    pub fn map(&self, addr: u64, len: u64, offset: u64, prot: Prot) -> Result<(), PlatformError> {
        let flags = (libc::MAP_SHARED | libc::MAP_FIXED) as u64;
        let r = self.inject(
            libc::SYS_mmap,
            [addr, len, prot.to_bits(), flags, STUB_MEMFD as u64, offset],
        )?;
        if r as u64 != addr {
            return Err(PlatformError::host(
                "mmap in a ptrace stub",
                std::io::Error::from_raw_os_error(-r as i32),
            ));
        }
        Ok(())
    }

    /// Removes `[addr, addr+len)` from the stub.
    pub fn unmap(&self, addr: u64, len: u64) -> Result<(), PlatformError> {
        let r = self.inject(libc::SYS_munmap, [addr, len, 0, 0, 0, 0])?;
        if r < 0 {
            return Err(PlatformError::host(
                "munmap in a ptrace stub",
                std::io::Error::from_raw_os_error(-r as i32),
            ));
        }
        Ok(())
    }

    /// Keeps the stub on the CPU its tracer runs on: a ptrace stop and
    /// resume then switch threads on one CPU instead of waking the other
    /// one with an IPI (measured here: a guest syscall ~40 µs across CPUs,
    /// ~10 µs on one).
    fn follow_tracer_cpu(&self) {
        // SAFETY: sched_getcpu has no arguments.
        let cpu = unsafe { libc::sched_getcpu() };
        if cpu < 0 || cpu == self.cpu.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        // SAFETY: a zeroed cpu_set_t is valid; CPU_SET stays in bounds for
        // a cpu number the kernel just gave us.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu as usize, &mut set);
            if libc::sched_setaffinity(self.pid, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
            {
                self.cpu.store(cpu, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    /// Runs guest registers until the next event.
    pub fn run(&self, regs: &mut Regs) -> Result<Event, PlatformError> {
        self.check_tracer()?;
        self.follow_tracer_cpu();
        self.set_regs(&to_user(regs))?;
        self.resume(libc::PTRACE_SYSEMU)?;
        let sig = self.wait()?;
        let r = self.get_regs()?;
        from_user(&r, regs);
        Ok(match sig {
            s if s == libc::SIGTRAP | 0x80 => {
                regs.rax = r.orig_rax;
                Event::Syscall
            }
            libc::SIGSEGV | libc::SIGBUS => self.fault_event()?,
            libc::SIGILL => Event::Exception {
                vector: 6,
                error_code: 0,
            },
            libc::SIGFPE => Event::Exception {
                vector: 0,
                error_code: 0,
            },
            libc::SIGTRAP => Event::Exception {
                vector: 3,
                error_code: 0,
            },
            _ => Event::Interrupted,
        })
    }

    /// Turns the pending SIGSEGV/SIGBUS stop into a fault event.
    fn fault_event(&self) -> Result<Event, PlatformError> {
        // SAFETY: an all-zero siginfo_t is a valid value.
        let mut si: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: PTRACE_GETSIGINFO writes one siginfo_t into `si`.
        if unsafe { libc::ptrace(libc::PTRACE_GETSIGINFO, self.pid, 0, &mut si) } < 0 {
            return Err(last_error("PTRACE_GETSIGINFO"));
        }
        // SAFETY: for SIGSEGV/SIGBUS the kernel fills the fault address.
        let addr = unsafe { si.si_addr() } as u64;
        Ok(match si.si_code {
            // SEGV_MAPERR / SEGV_ACCERR: a page fault. The access kind is
            // not reported through ptrace; the memory manager maps pages
            // with their VMA's full protection, so a protection fault
            // (ACCERR) is a violation and a missing page is filled.
            1 | 2 if si.si_signo == libc::SIGSEGV => Event::PageFault {
                addr,
                write: false,
                exec: false,
                present: si.si_code == 2,
            },
            // SI_KERNEL: a general protection fault (e.g. non-canonical).
            _ if si.si_signo == libc::SIGSEGV => Event::Exception {
                vector: 13,
                error_code: 0,
            },
            _ => Event::Exception {
                vector: 17,
                error_code: 0,
            },
        })
    }
}

impl Stub {
    /// The stub process this thread belongs to.
    pub fn tgid(&self) -> i32 {
        self.tgid
    }

    /// Makes another thread of this stub process and leaves it parked,
    /// untraced, for [`Stub::attach`]; returns its tid.
    pub fn clone_thread(&self) -> Result<i32, PlatformError> {
        let tid = self.inject(libc::SYS_clone, [THREAD_FLAGS, 0, 0, 0, 0, 0])?;
        if tid <= 0 {
            return Err(PlatformError::host(
                "clone in a ptrace stub",
                std::io::Error::from_raw_os_error(-tid as i32),
            ));
        }
        let child = Stub {
            pid: tid as i32,
            tgid: self.tgid,
            tracer: self.tracer,
            code: self.code,
            cpu: std::sync::atomic::AtomicI32::new(-1),
        };
        // CLONE_PTRACE: it starts traced by us, stopped by a SIGSTOP.
        child.wait_stop(libc::SIGSTOP)?;
        let mut r = child.get_regs()?;
        r.rip = self.code + PARK;
        child.set_regs(&r)?;
        // SAFETY: detaching a tracee of ours; no memory effects.
        if unsafe { libc::ptrace(libc::PTRACE_DETACH, child.pid, 0, 0) } < 0 {
            return Err(last_error("PTRACE_DETACH"));
        }
        Ok(child.pid)
    }

    /// Traces parked stub thread `tid` of process `tgid` from this thread.
    pub fn attach(tgid: i32, tid: i32) -> Result<Stub, PlatformError> {
        let stub = Stub {
            pid: tid,
            tgid,
            tracer: gettid(),
            code: stub_page()?,
            cpu: std::sync::atomic::AtomicI32::new(-1),
        };
        // SAFETY: attaching to a thread of our own stub process.
        if unsafe { libc::ptrace(libc::PTRACE_ATTACH, tid, 0, 0) } < 0 {
            return Err(last_error("PTRACE_ATTACH"));
        }
        stub.wait_stop(libc::SIGSTOP)?;
        let opts = libc::PTRACE_O_TRACESYSGOOD | libc::PTRACE_O_EXITKILL;
        // SAFETY: setting options on our stopped tracee.
        if unsafe { libc::ptrace(libc::PTRACE_SETOPTIONS, tid, 0, opts) } < 0 {
            return Err(last_error("PTRACE_SETOPTIONS"));
        }
        Ok(stub)
    }

    /// Ends this stub thread (its guest thread is gone) while the rest of
    /// the process goes on. The process leader cannot be reaped before the
    /// others, so only other threads are waited for.
    pub fn exit_thread(&self) {
        if self.check_tracer().is_err() {
            return;
        }
        // SAFETY: an all-zero user_regs_struct is a valid value.
        let mut r: libc::user_regs_struct = unsafe { std::mem::zeroed() };
        (r.rip, r.rax, r.orig_rax, r.cs, r.ss, r.eflags) = (
            self.code,
            libc::SYS_exit as u64,
            u64::MAX,
            USER_CS,
            USER_SS,
            0x202,
        );
        if self.set_regs(&r).is_err() || self.resume(libc::PTRACE_CONT).is_err() {
            return;
        }
        // A stop still pending (an interrupt) may come first: go on past it
        // until the thread is gone.
        while self.pid != self.tgid && self.wait().is_ok() {
            if self.resume(libc::PTRACE_CONT).is_err() {
                break;
            }
        }
    }
}

fn to_user(regs: &Regs) -> libc::user_regs_struct {
    // SAFETY: an all-zero user_regs_struct is a valid value.
    let mut r: libc::user_regs_struct = unsafe { std::mem::zeroed() };
    (r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp) = (
        regs.rax, regs.rbx, regs.rcx, regs.rdx, regs.rsi, regs.rdi, regs.rbp, regs.rsp,
    );
    (r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15) = (
        regs.r8, regs.r9, regs.r10, regs.r11, regs.r12, regs.r13, regs.r14, regs.r15,
    );
    (r.rip, r.eflags, r.fs_base, r.gs_base) = (regs.rip, regs.rflags, regs.fs_base, regs.gs_base);
    (r.cs, r.ss, r.orig_rax) = (USER_CS, USER_SS, u64::MAX);
    r
}

fn from_user(r: &libc::user_regs_struct, regs: &mut Regs) {
    (
        regs.rax, regs.rbx, regs.rcx, regs.rdx, regs.rsi, regs.rdi, regs.rbp, regs.rsp,
    ) = (r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp);
    (
        regs.r8, regs.r9, regs.r10, regs.r11, regs.r12, regs.r13, regs.r14, regs.r15,
    ) = (r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15);
    (regs.rip, regs.rflags, regs.fs_base, regs.gs_base) = (r.rip, r.eflags, r.fs_base, r.gs_base);
}

/// The forked child: strip down, become traceable, seal with seccomp, stop.
///
/// # Safety
///
/// Must be called only in a child just forked from the sentry; it uses only
/// async-signal-safe raw syscalls and never returns.
unsafe fn stub_child(memfd: i32, prog: &libc::sock_fprog) -> ! {
    // SAFETY: raw syscalls on our own process; none allocate or lock.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        for sig in 1..=64 {
            libc::signal(sig, libc::SIG_DFL);
        }
        let mask: libc::sigset_t = std::mem::zeroed();
        libc::sigprocmask(libc::SIG_SETMASK, &mask, std::ptr::null_mut());
        if libc::dup2(memfd, STUB_MEMFD) < 0 {
            libc::_exit(120);
        }
        libc::close_range(0, STUB_MEMFD as u32 - 1, 0);
        libc::close_range(STUB_MEMFD as u32 + 1, u32::MAX, 0);
        unregister_rseq();
        if libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) < 0 {
            libc::_exit(121);
        }
        // Other sentry threads attach to its later threads (PTRACE_ATTACH),
        // which a non-dumpable process refuses without CAP_SYS_PTRACE.
        libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0);
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        if libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            prog as *const _,
        ) < 0
        {
            libc::_exit(122);
        }
        libc::kill(libc::getpid(), libc::SIGSTOP);
        libc::_exit(123)
    }
}

extern "C" {
    /// glibc (2.35+): offset of this thread's rseq area from the thread
    /// pointer, and its size (0 when glibc did not register one).
    static __rseq_offset: isize;
    static __rseq_size: u32;
}

/// Drops the rseq registration the child inherited from its sentry thread:
/// its area is about to be unmapped, and the kernel kills a task whose rseq
/// area it cannot update.
///
/// # Safety
///
/// Only for the forked stub child (raw syscalls only).
unsafe fn unregister_rseq() {
    const RSEQ_FLAG_UNREGISTER: u64 = 1;
    const RSEQ_SIG: u64 = 0x5305_3053;
    // SAFETY: reading glibc's exported constants and our own thread
    // pointer; the rseq syscall fails harmlessly on a mismatch.
    unsafe {
        if __rseq_size == 0 {
            return;
        }
        let mut tp: u64 = 0;
        libc::syscall(
            libc::SYS_arch_prctl,
            0x1003, /* ARCH_GET_FS */
            &mut tp as *mut u64,
        );
        let area = (tp as i64 + __rseq_offset as i64) as u64;
        for len in [32u64, __rseq_size as u64] {
            if libc::syscall(libc::SYS_rseq, area, len, RSEQ_FLAG_UNREGISTER, RSEQ_SIG) == 0 {
                return;
            }
        }
    }
}

/// The FXSAVE area of stub `pid` (stopped, traced by this thread).
pub fn get_fpu(pid: i32) -> Result<[u8; 512], PlatformError> {
    let mut area = [0u8; 512];
    // SAFETY: PTRACE_GETFPREGS writes one 512-byte user_fpregs_struct.
    if unsafe { libc::ptrace(libc::PTRACE_GETFPREGS, pid, 0, area.as_mut_ptr()) } < 0 {
        return Err(last_error("PTRACE_GETFPREGS"));
    }
    Ok(area)
}

/// NT_X86_XSTATE: the XSAVE area as PTRACE_GETREGSET returns it.
const NT_X86_XSTATE: usize = 0x202;
/// Room for any XSAVE area (AMX included: 11 KiB on current CPUs).
const XSTATE_MAX: usize = 16384;

/// The XSAVE area of stub thread `tid` (standard format), whole.
pub fn get_xstate(tid: i32) -> Result<Vec<u8>, PlatformError> {
    let mut area = vec![0u8; XSTATE_MAX];
    let mut iov = libc::iovec {
        iov_base: area.as_mut_ptr() as *mut libc::c_void,
        iov_len: area.len(),
    };
    // SAFETY: PTRACE_GETREGSET writes at most iov_len bytes at iov_base
    // and shortens iov_len to what it wrote.
    if unsafe { libc::ptrace(libc::PTRACE_GETREGSET, tid, NT_X86_XSTATE, &mut iov) } < 0 {
        return Err(last_error("PTRACE_GETREGSET(NT_X86_XSTATE)"));
    }
    area.truncate(iov.iov_len);
    Ok(area)
}

/// Loads the first bytes of the XSAVE area of stub thread `tid` from
/// `part` (already sanitized); the rest keeps its current value.
pub fn set_xstate(tid: i32, part: &[u8]) -> Result<(), PlatformError> {
    let mut area = get_xstate(tid)?;
    let n = part.len().min(area.len());
    area[..n].copy_from_slice(&part[..n]);
    let mut iov = libc::iovec {
        iov_base: area.as_mut_ptr() as *mut libc::c_void,
        iov_len: area.len(),
    };
    // SAFETY: PTRACE_SETREGSET reads iov_len bytes at iov_base.
    if unsafe { libc::ptrace(libc::PTRACE_SETREGSET, tid, NT_X86_XSTATE, &mut iov) } < 0 {
        return Err(last_error("PTRACE_SETREGSET(NT_X86_XSTATE)"));
    }
    Ok(())
}

/// Loads an FXSAVE area into stub `pid`.
pub fn set_fpu(pid: i32, area: &[u8; 512]) -> Result<(), PlatformError> {
    // SAFETY: PTRACE_SETFPREGS reads one 512-byte user_fpregs_struct.
    if unsafe { libc::ptrace(libc::PTRACE_SETFPREGS, pid, 0, area.as_ptr()) } < 0 {
        return Err(last_error("PTRACE_SETFPREGS"));
    }
    Ok(())
}
