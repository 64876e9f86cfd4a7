//! The kernel proper: the sandbox-wide state ([`Kernel`]) and guest tasks.

pub mod futex;
pub mod task;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub use task::{Creds, Task};

use crate::sentry::mm::memory::GuestMemory;
use crate::sentry::platform::cpu_gate::CpuGate;
use crate::sentry::platform::Platform;
use crate::sentry::vdso::Vdso;

/// State shared by every task of a sandbox.
pub struct Kernel {
    pub platform: Arc<dyn Platform>,
    pub memory: Arc<GuestMemory>,
    /// Print every guest syscall (`--strace`).
    pub strace: bool,
    /// The UTS names (hostname, domainname), shared by the pod's
    /// containers: sethostname in one is seen by all.
    uts: Mutex<(String, String)>,
    pub boot: Instant,
    /// The vDSO every exec maps (None if it could not be set up).
    pub vdso: Option<Vdso>,
    /// Parks every task before guest code while the pod is paused.
    pub pause: pause::PauseGate,
    /// Unimplemented syscalls already logged (each is logged once).
    unimplemented: Mutex<HashSet<Missing>>,
    /// Processes killed for want of guest memory whose memory is not yet
    /// released: while there are any, other faults wait instead of
    /// killing more.
    pub oom_victims: std::sync::atomic::AtomicUsize,
    /// The guest's CPUs (`resources.cpus`): their count ([`Kernel::cpus`])
    /// and the gate that lets at most that many threads run guest code.
    pub cpu_gate: CpuGate,
    /// Counters of /proc/stat.
    pub stats: Stats,
    /// The load average and task counts (/proc/loadavg, sysinfo).
    pub load: Arc<loadavg::LoadAvg>,
}

/// Sandbox-wide counters (/proc/stat).
#[derive(Default)]
pub struct Stats {
    /// Entries into guest code ("ctxt").
    pub switches: std::sync::atomic::AtomicU64,
    /// Processes created ("processes").
    pub forks: std::sync::atomic::AtomicU64,
}

impl Kernel {
    pub fn new(
        platform: Arc<dyn Platform>,
        memory: Arc<GuestMemory>,
        strace: bool,
        hostname: String,
        cpus: usize,
    ) -> Arc<Kernel> {
        let vdso = Vdso::new(&memory)
            .inspect_err(|e| log::warn!("setting up the vDSO: {e}; guests run without one"))
            .ok();
        let boot = Instant::now();
        Arc::new(Kernel {
            platform,
            memory,
            strace,
            uts: Mutex::new((hostname, "(none)".to_string())),
            boot,
            vdso,
            pause: pause::PauseGate::default(),
            unimplemented: Mutex::new(HashSet::new()),
            oom_victims: Default::default(),
            cpu_gate: CpuGate::new(cpus),
            stats: Stats::default(),
            load: loadavg::LoadAvg::new(boot),
        })
    }

    /// The number of CPUs the guest sees and may use (`resources.cpus`,
    /// else the host's): sched_getaffinity, /proc/cpuinfo, /proc/stat,
    /// /sys/devices/system/cpu. The one place that number lives.
    pub fn cpus(&self) -> usize {
        self.cpu_gate.cpus()
    }

    /// Records that the guest called unimplemented syscall `nr`; true the
    /// first time (the caller logs it then).
    pub fn hostname(&self) -> String {
        self.uts.lock().unwrap().0.clone()
    }

    pub fn domainname(&self) -> String {
        self.uts.lock().unwrap().1.clone()
    }

    /// sethostname (`domain` false) or setdomainname.
    pub fn set_uts(&self, domain: bool, name: String) {
        let mut uts = self.uts.lock().unwrap();
        if domain {
            uts.1 = name;
        } else {
            uts.0 = name;
        }
    }

    pub fn first_unimplemented(&self, what: Missing) -> bool {
        self.unimplemented.lock().unwrap().insert(what)
    }
}

/// Something the sentry does not implement, logged the first time a
/// guest asks for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Missing {
    /// A syscall, by number.
    Syscall(u64),
    /// An option (flag bits, a command) of the named syscall.
    Option(&'static str, u64),
    /// A socket address family.
    SocketFamily(u64),
    /// A mount(2) or umount2(2) flag.
    MountFlag(u64),
}
pub mod ipc;
pub mod itimer;
pub mod loadavg;
pub mod pause;
pub mod process;
pub mod procfs;
pub mod sigframe;
pub mod siginfo;
pub mod signal;
pub mod view;
