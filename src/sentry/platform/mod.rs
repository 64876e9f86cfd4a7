//! How guest code runs. The kernel, mm, vfs and syscall code never know which
//! platform is in use: they see only this trait (gVisor's
//! `pkg/sentry/platform` has the same shape).
//!
//! A platform hands out address spaces (guest virtual ranges mapped onto
//! frames of the guest memory memfd, see [`crate::sentry::mm::memory`]) and
//! contexts (one per guest thread, owned by the host thread that runs it).
//! `Context::switch` runs a thread's registers in an address space until
//! something needs the kernel.

pub mod cpu_gate;
pub mod kvm;
pub mod ptrace;
pub mod select;
pub mod xstate;

use std::any::Any;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use crate::sentry::mm::memory::GuestMemory;

/// Guest general-purpose registers and the state the kernel edits directly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Regs {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub rsp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rip: u64,
    pub rflags: u64,
    pub fs_base: u64,
    pub gs_base: u64,
}

/// One range of [`AddressSpace::map_many`]: guest `[addr, addr+len)`
/// onto guest memory bytes `[offset, offset+len)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapRange {
    pub addr: u64,
    pub len: u64,
    pub offset: u64,
    pub prot: Prot,
}

/// Page protection of a guest mapping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Prot {
    pub read: bool,
    pub write: bool,
    pub exec: bool,
}

impl Prot {
    pub const NONE: Prot = Prot {
        read: false,
        write: false,
        exec: false,
    };

    /// From the `PROT_*` bits of mmap(2).
    pub fn from_bits(bits: u64) -> Prot {
        Prot {
            read: bits & libc::PROT_READ as u64 != 0,
            write: bits & libc::PROT_WRITE as u64 != 0,
            exec: bits & libc::PROT_EXEC as u64 != 0,
        }
    }

    /// The `PROT_*` bits of mmap(2).
    pub fn to_bits(self) -> u64 {
        let mut bits = 0;
        if self.read {
            bits |= libc::PROT_READ as u64;
        }
        if self.write {
            bits |= libc::PROT_WRITE as u64;
        }
        if self.exec {
            bits |= libc::PROT_EXEC as u64;
        }
        bits
    }
}

/// Why `Context::switch` returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The guest executed `syscall`. `regs.rax` holds the number, `regs.rip`
    /// points after the instruction, and `rcx`/`r11` hold what the CPU put
    /// there. The kernel writes the result to `regs.rax` and switches again.
    Syscall,
    /// A page fault at `addr`. `regs.rip` is the faulting instruction.
    PageFault {
        addr: u64,
        write: bool,
        exec: bool,
        present: bool,
    },
    /// Another CPU exception (vector per the SDM: 0 #DE, 3 #BP, 6 #UD,
    /// 13 #GP, 16 #MF, 19 #XM, ...). `regs.rip` is the faulting instruction
    /// (for traps like int3, the instruction after).
    Exception { vector: u8, error_code: u64 },
    /// The switch was cut short by [`Interrupter::interrupt`].
    Interrupted,
}

/// A platform failure: the sandbox cannot go on running this guest thread.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("{op} failed")]
    Host {
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Unsupported(String),
    #[error("guest memory exhausted")]
    OutOfMemory,
    #[error("unexpected exit from the guest: {0}")]
    UnexpectedExit(String),
}

impl PlatformError {
    pub fn host(op: &'static str, source: impl Into<std::io::Error>) -> Self {
        PlatformError::Host {
            op,
            source: source.into(),
        }
    }
}

/// A way to run guest code.
pub trait Platform: Send + Sync {
    /// Short name: "kvm", "ptrace".
    fn name(&self) -> &'static str;
    /// A new, empty guest address space.
    fn new_address_space(&self) -> Result<Arc<dyn AddressSpace>, PlatformError>;
    /// A new execution context for one guest thread. It is used only from
    /// the host thread that calls `switch` on it.
    fn new_context(&self) -> Result<Box<dyn Context>, PlatformError>;
}

/// Guest virtual memory of one process, as the hardware (or stub) sees it.
/// The memory manager decides what is mapped; this only mirrors it.
///
/// Threads of one process share an address space: contexts on several host
/// threads run in it at once while the memory manager (one thread at a
/// time, under its lock) changes it. When `map` or `unmap` returns, no
/// context still runs on a translation the change removed or narrowed, so
/// the frames it let go of may be reused (a TLB shootdown where the
/// platform needs one).
pub trait AddressSpace: Send + Sync {
    /// Maps `[addr, addr+len)` onto guest memory bytes `[offset, offset+len)`
    /// with `prot`, replacing whatever was mapped there. All values are page
    /// aligned; `addr+len` stays below the top of the user half.
    fn map(&self, addr: u64, len: u64, offset: u64, prot: Prot) -> Result<(), PlatformError>;
    /// Removes any mapping in `[addr, addr+len)`.
    fn unmap(&self, addr: u64, len: u64) -> Result<(), PlatformError>;
    /// Does `map` for each range, in order: a platform for which each
    /// change is a round trip (ptrace) does them in one.
    fn map_many(&self, maps: &[MapRange]) -> Result<(), PlatformError> {
        for m in maps {
            self.map(m.addr, m.len, m.offset, m.prot)?;
        }
        Ok(())
    }
    /// Called by a thread that runs in this space before it starts another
    /// thread that will (clone with CLONE_VM), for platforms that must make
    /// room for it from a thread already inside.
    fn prepare_thread(&self) -> Result<(), PlatformError> {
        Ok(())
    }
    /// For the platform's own downcast in `Context::switch`.
    fn as_any(&self) -> &dyn Any;
}

/// The platform's own type behind an address space handed to its
/// `Context::switch`.
pub fn downcast_space<T: 'static>(space: &dyn AddressSpace) -> Result<&T, PlatformError> {
    space
        .as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| PlatformError::Unsupported("address space of another platform".into()))
}

/// Stops a running `Context::switch` from another thread (e.g. to deliver a
/// signal or to kill the sandbox). Safe to call at any time, even when the
/// context is not running: the next `switch` then returns `Interrupted` at
/// once.
pub trait Interrupter: Send + Sync {
    fn interrupt(&self);
}

/// One guest thread's CPU.
pub trait Context: Send {
    /// Runs `regs` in `space` until an [`Event`]; `regs` is updated with the
    /// guest's registers at that point. The guest's FPU/SSE/AVX state lives in
    /// the context between switches.
    fn switch(&mut self, space: &dyn AddressSpace, regs: &mut Regs)
        -> Result<Event, PlatformError>;
    /// A handle other threads use to interrupt this context.
    fn interrupter(&self) -> Arc<dyn Interrupter>;
    /// Whether guest code runs on the calling host thread (so its CPU
    /// time includes the guest's), as under KVM; ptrace stubs run it in
    /// processes of their own.
    fn guest_runs_here(&self) -> bool {
        false
    }
    /// The guest's FPU/SSE/AVX state in the XSAVE layout of
    /// [`xstate::layout`] (`size` bytes; 512 of legacy FXSAVE area when the
    /// CPU has no XSAVE), for signal frames. Platforms that cannot read it
    /// return `Unsupported` (the frame then carries no FPU state).
    fn fpu(&mut self) -> Result<Vec<u8>, PlatformError> {
        Err(PlatformError::Unsupported(
            "reading the guest FPU state".into(),
        ))
    }
    /// Restores state in the layout [`Context::fpu`] returns, already
    /// passed through [`xstate::sanitize`] (rt_sigreturn).
    fn set_fpu(&mut self, _state: &[u8]) -> Result<(), PlatformError> {
        Err(PlatformError::Unsupported(
            "writing the guest FPU state".into(),
        ))
    }
}

/// Creates the platform named `name` ("auto", "kvm" or "ptrace") over
/// `memory`. `kvm` is an open `/dev/kvm` (opened by the sandbox before it
/// gave up its file system). `auto` measures and picks (see [`select`]).
pub fn create(
    name: &str,
    memory: Arc<GuestMemory>,
    kvm: Option<OwnedFd>,
) -> Result<Arc<dyn Platform>, PlatformError> {
    let name = if name == "auto" {
        let probes = select::probe(kvm.as_ref());
        let (pick, why) = select::choose(&probes).ok_or_else(|| {
            let reasons: Vec<String> = probes
                .iter()
                .map(|p| {
                    format!(
                        "{}: {}",
                        p.name,
                        p.cost.as_ref().err().cloned().unwrap_or_default()
                    )
                })
                .collect();
            PlatformError::Unsupported(format!("no usable platform ({})", reasons.join("; ")))
        })?;
        log::info!("platform auto: picked {pick}: {why}");
        pick
    } else {
        name
    };
    match name {
        "kvm" => {
            let fd =
                kvm.ok_or_else(|| PlatformError::Unsupported("/dev/kvm is not available".into()))?;
            Ok(Arc::new(kvm::KvmPlatform::new(memory, fd)?))
        }
        "ptrace" => Ok(Arc::new(ptrace::PtracePlatform::new(memory)?)),
        other => Err(PlatformError::Unsupported(format!(
            "unknown platform {other:?} (known: auto, kvm, ptrace)"
        ))),
    }
}
