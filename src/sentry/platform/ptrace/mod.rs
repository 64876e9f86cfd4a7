//! The ptrace platform: guest code runs in stub host processes and stops at
//! every syscall with `PTRACE_SYSEMU`, the way gVisor's ptrace platform
//! works. It needs no `/dev/kvm`.
//!
//! * An address space is a stub process, forked from the sentry thread that
//!   creates it, which then becomes its tracer. The stub keeps nothing of
//!   the sentry: its fds are closed but for the guest memory memfd, every
//!   mapping is removed but for one page of stub code (`syscall; int3`), and
//!   it runs under its own seccomp filter. Guest memory is mapped into it
//!   from the same memfd the sentry copies through, by syscalls the tracer
//!   injects at the stub code.
//! * A context runs a guest thread's registers in a stub with
//!   `PTRACE_SYSEMU`: a syscall stops the stub before the host kernel runs
//!   it and is skipped on resume, so it reaches the sentry only. Faults
//!   arrive as signal stops (SIGSEGV, SIGILL, ...) and are suppressed.
//!
//! * Threads: each guest thread of a process has a thread of its own in
//!   the stub process, traced by the sentry thread that runs the guest
//!   thread (only a tracer may ptrace). A thread already inside makes the
//!   next one with an injected clone(CLONE_PTRACE), parks it untraced in a
//!   pause loop, and the new sentry thread attaches to it. Mapping changes
//!   are injected through the calling sentry thread's own stub thread and
//!   so apply to every thread at once (the host kernel does the TLB
//!   shootdown). A guest thread's end exits its stub thread alone.
//!
//! A seccomp-trap variant (gVisor's systrap) can replace the ptrace stop
//! later behind the same two types.

mod stub;

pub use stub::STUB_MEMFD;

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex, Weak};

use super::{AddressSpace, Context, Event, Interrupter, Platform, PlatformError, Prot, Regs};
use crate::sentry::mm::memory::GuestMemory;
use stub::Stub;

/// Does what creating stubs needs but the sentry's seccomp filter forbids
/// (mapping the stub code page executable); call before installing it.
pub fn prepare() -> Result<(), PlatformError> {
    stub::prepare()
}

/// The stub platform over `memory`.
pub struct PtracePlatform {
    memory: Arc<GuestMemory>,
}

impl PtracePlatform {
    /// Checks that this host lets us trace a stub, and returns the platform.
    pub fn new(memory: Arc<GuestMemory>) -> Result<PtracePlatform, PlatformError> {
        let platform = PtracePlatform { memory };
        // Start and discard one stub: fails early with the real reason
        // (e.g. ptrace forbidden by a host seccomp policy or Yama).
        drop(platform.new_address_space()?);
        Ok(platform)
    }
}

impl Platform for PtracePlatform {
    fn name(&self) -> &'static str {
        "ptrace"
    }

    fn new_address_space(&self) -> Result<Arc<dyn AddressSpace>, PlatformError> {
        let stub = Stub::spawn(&self.memory)?;
        let tgid = stub.tgid();
        let threads = HashMap::from([(gettid(), Arc::new(stub))]);
        Ok(Arc::new(PtraceSpace {
            inner: Arc::new(SpaceInner {
                tgid,
                threads: Mutex::new(threads),
                parked: Mutex::new(Vec::new()),
            }),
        }))
    }

    fn new_context(&self) -> Result<Box<dyn Context>, PlatformError> {
        let shared = Arc::new(Shared {
            pending: AtomicBool::new(false),
            running: AtomicI32::new(0),
            last: AtomicI32::new(0),
        });
        Ok(Box::new(PtraceContext { shared, last: None }))
    }
}

fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

/// A stub process mirroring one guest address space. Dropping it (the
/// process's memory is gone) kills the stub process.
pub struct PtraceSpace {
    inner: Arc<SpaceInner>,
}

/// What contexts running in a space keep a weak handle on.
struct SpaceInner {
    tgid: i32,
    /// The stub thread of each sentry thread that runs in this space, by
    /// the sentry thread's tid.
    threads: Mutex<HashMap<i32, Arc<Stub>>>,
    /// Stub threads made for threads about to start, not yet attached.
    parked: Mutex<Vec<i32>>,
}

impl SpaceInner {
    /// The calling sentry thread's stub thread, attaching a parked one on
    /// its first use.
    fn mine(&self) -> Result<Arc<Stub>, PlatformError> {
        let me = gettid();
        if let Some(stub) = self.threads.lock().unwrap().get(&me) {
            return Ok(stub.clone());
        }
        let tid = self.parked.lock().unwrap().pop().ok_or_else(|| {
            PlatformError::Unsupported(
                "ptrace stub used from a thread that does not run in it".into(),
            )
        })?;
        let stub = Arc::new(Stub::attach(self.tgid, tid)?);
        self.threads.lock().unwrap().insert(me, stub.clone());
        Ok(stub)
    }

    /// The calling sentry thread no longer runs in this space: its stub
    /// thread exits.
    fn release(&self) {
        let stub = self.threads.lock().unwrap().remove(&gettid());
        if let Some(stub) = stub {
            stub.exit_thread();
        }
    }
}

impl Drop for PtraceSpace {
    fn drop(&mut self) {
        let mine = self
            .inner
            .threads
            .lock()
            .unwrap()
            .get(&gettid())
            .map(|s| s.pid());
        stub::kill_process(self.inner.tgid, mine);
    }
}

impl AddressSpace for PtraceSpace {
    fn map(&self, addr: u64, len: u64, offset: u64, prot: Prot) -> Result<(), PlatformError> {
        self.inner.mine()?.map(addr, len, offset, prot)
    }

    fn unmap(&self, addr: u64, len: u64) -> Result<(), PlatformError> {
        self.inner.mine()?.unmap(addr, len)
    }

    fn prepare_thread(&self) -> Result<(), PlatformError> {
        let tid = self.inner.mine()?.clone_thread()?;
        self.inner.parked.lock().unwrap().push(tid);
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// What an interrupter shares with its context.
struct Shared {
    /// An interrupt was asked for and not yet reported.
    pending: AtomicBool,
    /// Pid of the stub the context is running, 0 when not running.
    running: AtomicI32,
    /// Pid of the stub the context ran last (its FPU state is the guest's).
    last: AtomicI32,
}

impl Interrupter for Shared {
    fn interrupt(&self) {
        self.pending.store(true, Ordering::SeqCst);
        let pid = self.running.load(Ordering::SeqCst);
        if pid > 0 {
            stub::stop(pid);
        }
    }
}

/// One guest thread, run in whatever stub its address space is.
pub struct PtraceContext {
    shared: Arc<Shared>,
    /// The space this context last ran in (its stub thread there is ours).
    last: Option<Weak<SpaceInner>>,
}

impl PtraceContext {
    /// Gives up the stub thread in the space last run in, if that space
    /// still exists.
    fn release_last(&mut self) {
        if let Some(inner) = self.last.take().and_then(|w| w.upgrade()) {
            inner.release();
        }
    }
}

impl Drop for PtraceContext {
    fn drop(&mut self) {
        self.release_last();
    }
}

impl Context for PtraceContext {
    fn switch(
        &mut self,
        space: &dyn AddressSpace,
        regs: &mut Regs,
    ) -> Result<Event, PlatformError> {
        let space = super::downcast_space::<PtraceSpace>(space)?;
        if self.shared.pending.swap(false, Ordering::SeqCst) {
            return Ok(Event::Interrupted);
        }
        let same = self
            .last
            .as_ref()
            .is_some_and(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(&space.inner)));
        if !same {
            self.release_last();
            self.last = Some(Arc::downgrade(&space.inner));
        }
        let stub = space.inner.mine()?;
        self.shared.running.store(stub.pid(), Ordering::SeqCst);
        self.shared.last.store(stub.pid(), Ordering::SeqCst);
        let event = stub.run(regs);
        self.shared.running.store(0, Ordering::SeqCst);
        if matches!(event, Ok(Event::Interrupted)) {
            self.shared.pending.store(false, Ordering::SeqCst);
        }
        event
    }

    fn interrupter(&self) -> Arc<dyn Interrupter> {
        self.shared.clone()
    }

    fn fpu(&mut self) -> Result<Vec<u8>, PlatformError> {
        let tid = self.shared.last.load(Ordering::SeqCst);
        let layout = super::xstate::layout();
        if layout.size > 512 {
            let mut area = stub::get_xstate(tid)?;
            area.resize(layout.size, 0);
            return Ok(area);
        }
        Ok(stub::get_fpu(tid)?.to_vec())
    }

    fn set_fpu(&mut self, state: &[u8]) -> Result<(), PlatformError> {
        let tid = self.shared.last.load(Ordering::SeqCst);
        let layout = super::xstate::layout();
        if layout.size > 512 && state.len() >= super::xstate::HEADER_END {
            let mut area = state[..state.len().min(layout.size)].to_vec();
            super::xstate::sanitize(&mut area, layout);
            return stub::set_xstate(tid, &area);
        }
        stub::set_fpu(tid, &super::xstate::legacy_area(state))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sentry::mm::memory::PAGE_SIZE;

    const RX: Prot = Prot {
        read: true,
        write: false,
        exec: true,
    };
    const R: Prot = Prot {
        read: true,
        write: false,
        exec: false,
    };

    /// mov eax, 39; syscall; mov rbx, rax; mov rax, [0x500000]; ud2
    const BLOB: &[u8] = &[
        0xb8, 0x27, 0, 0, 0, 0x0f, 0x05, 0x48, 0x89, 0xc3, 0x48, 0x8b, 0x04, 0x25, 0, 0, 0x50, 0,
        0x0f, 0x0b,
    ];

    #[test]
    fn ptrace_switch_syscall_fault_exception_in_order() {
        let mem = Arc::new(GuestMemory::new(64 * PAGE_SIZE, 64 * PAGE_SIZE).unwrap());
        let platform = PtracePlatform::new(mem.clone()).expect("ptrace platform");
        let space = platform.new_address_space().unwrap();
        let mut ctx = platform.new_context().unwrap();
        let code = mem.alloc_frame().unwrap();
        mem.write(code, BLOB);
        space.map(0x400000, PAGE_SIZE, code, RX).unwrap();
        let mut regs = Regs {
            rip: 0x400000,
            rflags: 0x202,
            ..Default::default()
        };

        assert_eq!(
            ctx.switch(space.as_ref(), &mut regs).unwrap(),
            Event::Syscall
        );
        assert_eq!(regs.rax, 39);
        assert_eq!(regs.rip, 0x400007);
        regs.rax = 1234;

        let ev = ctx.switch(space.as_ref(), &mut regs).unwrap();
        assert_eq!(
            ev,
            Event::PageFault {
                addr: 0x500000,
                write: false,
                exec: false,
                present: false
            }
        );
        let data = mem.alloc_frame().unwrap();
        mem.write_u64(data, 77);
        space.map(0x500000, PAGE_SIZE, data, R).unwrap();

        let ev = ctx.switch(space.as_ref(), &mut regs).unwrap();
        assert_eq!(
            ev,
            Event::Exception {
                vector: 6,
                error_code: 0
            }
        );
        assert_eq!((regs.rbx, regs.rax), (1234, 77));
    }

    #[test]
    fn ptrace_stub_filter_kills_anything_but_its_own_calls() {
        let mem = Arc::new(GuestMemory::new(16 * PAGE_SIZE, 16 * PAGE_SIZE).unwrap());
        let stub = stub::Stub::spawn(&mem).unwrap();
        assert!(
            stub.inject(libc::SYS_getpid, [0; 6]).unwrap() > 0,
            "getpid is one of the stub's own calls"
        );
        // A signal other than SIGSTOP, to anyone, is not the stub's to send.
        let err = stub
            .inject(libc::SYS_kill, [1, libc::SIGKILL as u64, 0, 0, 0, 0])
            .unwrap_err();
        assert!(err.to_string().contains("killed by signal 31"), "{err}");
        let stub = stub::Stub::spawn(&mem).unwrap();
        // An anonymous (not guest memory) executable mapping is refused too.
        let flags = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64;
        let err = stub
            .inject(libc::SYS_mmap, [0, 4096, 7, flags, u64::MAX, 0])
            .unwrap_err();
        assert!(err.to_string().contains("killed by signal 31"), "{err}");
    }

    #[test]
    fn ptrace_interrupt_before_switch_returns_interrupted() {
        let mem = Arc::new(GuestMemory::new(16 * PAGE_SIZE, 16 * PAGE_SIZE).unwrap());
        let platform = PtracePlatform::new(mem).expect("ptrace platform");
        let space = platform.new_address_space().unwrap();
        let mut ctx = platform.new_context().unwrap();
        ctx.interrupter().interrupt();
        let mut regs = Regs::default();
        assert_eq!(
            ctx.switch(space.as_ref(), &mut regs).unwrap(),
            Event::Interrupted
        );
    }
}

#[cfg(test)]
mod thread_tests {
    use super::*;
    use crate::sentry::mm::memory::PAGE_SIZE;

    #[test]
    fn ptrace_second_thread_attaches_and_runs() {
        let mem = Arc::new(GuestMemory::new(64 * PAGE_SIZE, 64 * PAGE_SIZE).unwrap());
        let platform = PtracePlatform::new(mem.clone()).expect("ptrace platform");
        let space = platform.new_address_space().unwrap();
        space.prepare_thread().unwrap();
        let space2 = space.clone();
        std::thread::spawn(move || {
            let mut ctx = platform.new_context().unwrap();
            let code = mem.alloc_frame().unwrap();
            // mov eax, 39; syscall
            mem.write(code, &[0xb8, 0x27, 0, 0, 0, 0x0f, 0x05]);
            let rx = Prot {
                read: true,
                write: false,
                exec: true,
            };
            space2.map(0x400000, PAGE_SIZE, code, rx).unwrap();
            let mut regs = Regs {
                rip: 0x400000,
                rflags: 0x202,
                ..Default::default()
            };
            assert_eq!(
                ctx.switch(space2.as_ref(), &mut regs).unwrap(),
                Event::Syscall
            );
            assert_eq!(regs.rax, 39);
        })
        .join()
        .unwrap();
    }
}
