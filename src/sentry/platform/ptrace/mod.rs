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

use super::{
    AddressSpace, Context, Event, Interrupter, MapRange, Platform, PlatformError, Prot, Regs,
};
use crate::sentry::mm::memory::{GuestMemory, PAGE_SIZE as PAGE};
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
                memory: self.memory.clone(),
                table: Mutex::new(None),
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
    memory: Arc<GuestMemory>,
    /// The guest memory frame of the batch table, mapped read-only in the
    /// stub at `Stub::table_addr` once a batch is first run; the lock
    /// makes one batch at a time use it. Guest code never maps the frame
    /// (it belongs to no VMA), so only the sentry writes it.
    table: Mutex<Option<u64>>,
}

impl Drop for SpaceInner {
    fn drop(&mut self) {
        if let Some(frame) = self.table.get_mut().unwrap().take() {
            self.memory.decref(frame);
        }
    }
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

    /// The mmaps go into a table the stub reads, and the stub runs them
    /// all in one injection (`BATCH_MAX` at a time): a fork or a fault
    /// that maps many pages costs one ptrace round trip, not one each.
    fn map_many(&self, maps: &[MapRange]) -> Result<(), PlatformError> {
        let stub = self.inner.mine()?;
        if maps.len() < 3 {
            for m in maps {
                stub.map(m.addr, m.len, m.offset, m.prot)?;
            }
            return Ok(());
        }
        let mut table = self.inner.table.lock().unwrap();
        let frame = match *table {
            Some(f) => f,
            None => {
                let Ok(f) = self.inner.memory.alloc_frame() else {
                    // No frame to spare: one round trip per range.
                    drop(table);
                    return maps
                        .iter()
                        .try_for_each(|m| stub.map(m.addr, m.len, m.offset, m.prot));
                };
                let read = Prot {
                    read: true,
                    ..Prot::NONE
                };
                if let Err(e) = stub.map(stub.table_addr(), PAGE, f, read) {
                    self.inner.memory.decref(f);
                    return Err(e);
                }
                *table = Some(f);
                f
            }
        };
        let mut bytes = Vec::with_capacity(PAGE as usize);
        for chunk in maps.chunks(stub::BATCH_MAX) {
            bytes.clear();
            for m in chunk {
                stub::encode_mmap(&mut bytes, m.addr, m.len, m.offset, m.prot);
            }
            self.inner.memory.write(frame, &bytes);
            let (left, r) = stub.inject_batch(chunk.len())?;
            if left != 0 {
                let m = chunk[chunk.len() - left];
                log::debug!("batched mmap of {:#x}+{:#x} failed", m.addr, m.len);
                return Err(PlatformError::host(
                    "mmap in a ptrace stub",
                    std::io::Error::from_raw_os_error(-r as i32),
                ));
            }
        }
        Ok(())
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
    fn ptrace_map_many_maps_every_range_past_one_table() {
        let pages = stub::BATCH_MAX as u64 + 7;
        let mem = Arc::new(GuestMemory::new(128 * PAGE_SIZE, 128 * PAGE_SIZE).unwrap());
        let platform = PtracePlatform::new(mem.clone()).expect("ptrace platform");
        let space = platform.new_address_space().unwrap();
        let mut ctx = platform.new_context().unwrap();
        let mut maps = vec![];
        for i in 0..pages {
            let f = mem.alloc_frame().unwrap();
            mem.write_u64(f, 1000 + i);
            maps.push(MapRange {
                addr: 0x600000 + i * PAGE_SIZE,
                len: PAGE_SIZE,
                offset: f,
                prot: R,
            });
        }
        // mov rax, [first]; mov rbx, [last]; mov rcx, [0x600000+40 pages]; ud2
        let last = 0x600000 + (pages - 1) as u32 * 4096;
        let mut blob = vec![0x48, 0x8b, 0x04, 0x25];
        blob.extend_from_slice(&0x600000u32.to_le_bytes());
        blob.extend_from_slice(&[0x48, 0x8b, 0x1c, 0x25]);
        blob.extend_from_slice(&last.to_le_bytes());
        blob.extend_from_slice(&[0x48, 0x8b, 0x0c, 0x25]);
        blob.extend_from_slice(&(0x600000u32 + 40 * 4096).to_le_bytes());
        blob.extend_from_slice(&[0x0f, 0x0b]);
        let code = mem.alloc_frame().unwrap();
        mem.write(code, &blob);
        maps.push(MapRange {
            addr: 0x400000,
            len: PAGE_SIZE,
            offset: code,
            prot: RX,
        });
        space.map_many(&maps).unwrap();
        let mut regs = Regs {
            rip: 0x400000,
            rflags: 0x202,
            ..Default::default()
        };
        let ev = ctx.switch(space.as_ref(), &mut regs).unwrap();
        assert_eq!(
            ev,
            Event::Exception {
                vector: 6,
                error_code: 0
            }
        );
        assert_eq!(
            (regs.rax, regs.rbx, regs.rcx),
            (1000, 1000 + pages - 1, 1040)
        );
        // A range the host refuses fails the call; the stub lives on.
        let bad = MapRange {
            addr: 0x700001,
            ..maps[0]
        };
        assert!(space.map_many(&[maps[0], maps[1], bad, maps[2]]).is_err());
        space.map(0x400000, PAGE_SIZE, code, RX).unwrap();
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
