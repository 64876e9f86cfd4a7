//! A guest task (for now: a single-threaded process) and its run loop.

use std::sync::Arc;

use super::Kernel;
use crate::abi::Errno;
use crate::sentry::mm::MemoryManager;
use crate::sentry::platform::{Context, Event, PlatformError, Regs};
use crate::sentry::syscalls;
use crate::sentry::vfs::{FdTable, GoferFs, Node};

/// Credentials of a task.
#[derive(Clone, Copy, Debug, Default)]
pub struct Creds {
    pub uid: u32,
    pub euid: u32,
    pub suid: u32,
    pub gid: u32,
    pub egid: u32,
    pub sgid: u32,
}

/// How a task ended, as a wait(2) status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// exit(2) with this code (low 8 bits kept).
    Code(u8),
    /// Killed by this signal.
    Signal(i32),
}

impl Exit {
    /// The status a shell would report: the code, or 128 + signal.
    pub fn shell_status(self) -> i32 {
        match self {
            Exit::Code(c) => c as i32,
            Exit::Signal(s) => 128 + s,
        }
    }
}

/// One guest thread of execution with its process state.
pub struct Task {
    pub k: Arc<Kernel>,
    pub fs: Arc<GoferFs>,
    pub root: Arc<Node>,
    pub cwd: Arc<Node>,
    pub mm: MemoryManager,
    pub fds: FdTable,
    pub regs: Regs,
    pub pid: i32,
    pub ppid: i32,
    pub creds: Creds,
    pub umask: u32,
    pub clear_child_tid: u64,
    /// Head of the robust futex list (set_robust_list).
    pub robust_list: u64,
    /// Raw `struct sigaction` (handler, flags, restorer, mask) per signal.
    pub sigactions: [[u64; 4]; 64],
    pub sigmask: u64,
    /// (soft, hard) per RLIMIT_* resource.
    pub rlimits: [(u64, u64); 16],
    pub exit: Option<Exit>,
    /// The thread name (PR_SET_NAME), NUL-padded.
    pub comm: [u8; 16],
    ctx: Box<dyn Context>,
}

impl Task {
    /// A task with an empty address space from the kernel's platform.
    pub fn new(k: Arc<Kernel>, fs: Arc<GoferFs>, creds: Creds) -> Result<Task, PlatformError> {
        let space = k.platform.new_address_space()?;
        let ctx = k.platform.new_context()?;
        let root = fs.root().clone();
        Ok(Task {
            mm: MemoryManager::new(k.memory.clone(), space),
            k,
            cwd: root.clone(),
            root,
            fs,
            fds: FdTable::default(),
            regs: Regs::default(),
            pid: 1,
            ppid: 0,
            creds,
            umask: 0o022,
            clear_child_tid: 0,
            robust_list: 0,
            sigactions: [[0; 4]; 64],
            sigmask: 0,
            rlimits: default_rlimits(),
            exit: None,
            comm: [0; 16],
            ctx,
        })
    }

    /// Runs the task until it exits.
    pub fn run(&mut self) -> Result<Exit, PlatformError> {
        loop {
            let event = self.ctx.switch(self.mm.space(), &mut self.regs)?;
            match event {
                Event::Syscall => syscalls::dispatch(self),
                Event::PageFault {
                    addr,
                    write,
                    exec,
                    present,
                } => {
                    if self.mm.fault(addr, write, exec, present).is_err() {
                        log::debug!(
                            "pid {}: SIGSEGV at {addr:#x} (rip {:#x})",
                            self.pid,
                            self.regs.rip
                        );
                        self.fatal_signal(libc::SIGSEGV);
                    }
                }
                Event::Exception { vector, error_code } => {
                    log::debug!(
                        "pid {}: exception {vector} ({error_code:#x}) at rip {:#x}",
                        self.pid,
                        self.regs.rip
                    );
                    self.fatal_signal(signal_for_vector(vector));
                }
                Event::Interrupted => {}
            }
            if let Some(exit) = self.exit {
                return Ok(exit);
            }
        }
    }

    /// Kills the task with `sig` (no handlers run yet at this milestone:
    /// synchronous faults take the default action, as with SIG_DFL).
    pub fn fatal_signal(&mut self, sig: i32) {
        self.exit = Some(Exit::Signal(sig));
    }

    /// Logs an unsupported option of a syscall once per sandbox (e.g. a
    /// prctl or fcntl command) and returns EINVAL, as Linux does for
    /// options it does not know.
    pub fn unimplemented_option(&self, syscall: &str, option: u64) -> Errno {
        // Options are keyed beside syscall numbers, above the syscall range.
        let key = 0x1_0000_0000u64 ^ ((syscall.len() as u64) << 40) ^ option;
        if self.k.first_unimplemented(key) {
            log::warn!(
                "unsupported {syscall} option {option} called by pid {}: returning EINVAL",
                self.pid
            );
        }
        Errno::EINVAL
    }

    /// Logs an unimplemented syscall once per sandbox and returns ENOSYS.
    pub fn unimplemented(&self, nr: u64) -> Errno {
        if self.k.first_unimplemented(nr) {
            let name = crate::abi::sysno::name(nr).unwrap_or("unknown");
            // glibc probes rseq at every start and copes with ENOSYS: not
            // worth a warning on the user's terminal.
            let level = if nr == crate::abi::sysno::RSEQ {
                log::Level::Info
            } else {
                log::Level::Warn
            };
            log::log!(
                level,
                "unimplemented syscall {name} ({nr}) called by pid {}: returning ENOSYS",
                self.pid
            );
        }
        Errno::ENOSYS
    }
}

/// Linux's defaults for a process started by init.
fn default_rlimits() -> [(u64, u64); 16] {
    let inf = u64::MAX;
    let mut r = [(inf, inf); 16];
    r[libc::RLIMIT_STACK as usize] = (8 << 20, inf);
    r[libc::RLIMIT_CORE as usize] = (0, inf);
    r[libc::RLIMIT_NOFILE as usize] = (1024, 1 << 20);
    r[libc::RLIMIT_NPROC as usize] = (63_000, 63_000);
    r[libc::RLIMIT_MEMLOCK as usize] = (8 << 20, 8 << 20);
    r[libc::RLIMIT_SIGPENDING as usize] = (63_000, 63_000);
    r[libc::RLIMIT_MSGQUEUE as usize] = (819_200, 819_200);
    r[libc::RLIMIT_NICE as usize] = (0, 0);
    r[libc::RLIMIT_RTPRIO as usize] = (0, 0);
    r
}

/// The signal Linux sends for a CPU exception vector.
fn signal_for_vector(vector: u8) -> i32 {
    match vector {
        0 | 16 | 19 => libc::SIGFPE,
        1 | 3 => libc::SIGTRAP,
        6 => libc::SIGILL,
        17 => libc::SIGBUS,
        _ => libc::SIGSEGV,
    }
}
