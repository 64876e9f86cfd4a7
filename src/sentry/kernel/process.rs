//! Processes of one PID namespace (one per container, or one for the
//! whole pod when it asks for a shared one): parent links, process groups
//! and sessions, zombies, waiting for children, and which container each
//! process belongs to.
//!
//! Lock order: the namespace's mutex is a leaf; nothing else is locked
//! while it is held, and nothing blocks under it except `Condvar::wait`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::siginfo::SigInfo;
use super::task::Exit;
use crate::abi::{Errno, SysResult};
use crate::sentry::platform::Interrupter;
use crate::sentry::vfs::tty::Terminal;

/// Most processes one namespace may have at once (a fork bomb hits EAGAIN).
pub const MAX_PROCS: usize = 1024;
/// Highest pid handed out before pids wrap.
pub const PID_MAX: i32 = 32768;

/// Signal dispositions: raw `struct sigaction` (handler, flags, restorer,
/// mask) per signal.
pub type SigActions = [[u64; 4]; 64];

/// CPU time used, in nanoseconds: (user, system).
#[derive(Default)]
pub struct CpuTimes {
    user: std::sync::atomic::AtomicU64,
    system: std::sync::atomic::AtomicU64,
}

impl CpuTimes {
    /// Adds user time alone: one atomic add, for the guest time counted
    /// at every switch back from guest code.
    pub fn add_user(&self, user: Duration) {
        self.user
            .fetch_add(user.as_nanos() as u64, Ordering::Relaxed);
    }

    pub fn add_ns(&self, (user, system): (u64, u64)) {
        self.user.fetch_add(user, Ordering::Relaxed);
        self.system.fetch_add(system, Ordering::Relaxed);
    }

    pub fn get(&self) -> (u64, u64) {
        (
            self.user.load(Ordering::Relaxed),
            self.system.load(Ordering::Relaxed),
        )
    }
}

/// The threads of one process and what they share: signals sent to the
/// process and not yet taken, and how the process ends.
#[derive(Default)]
pub struct Group {
    /// CPU time of its threads that ended.
    pub dead_times: CpuTimes,
    /// CPU time of its children (and theirs) that were waited for.
    pub child_times: CpuTimes,
    threads: Mutex<Vec<Arc<Control>>>,
    /// Signals sent to the process, waiting for a thread that does not
    /// block them (bit n-1 for signal n), and their siginfo.
    pub pending: std::sync::atomic::AtomicU64,
    infos: Mutex<Vec<SigInfo>>,
    /// exit_group(2) or a fatal signal: the process's status (first wins).
    exit: Mutex<Option<Exit>>,
    /// How the first thread ended, if it ended on its own (exit(2)).
    leader_exit: Mutex<Option<Exit>>,
    /// POSIX timers (timer_create) by id, with their clock.
    pub timers: Mutex<BTreeMap<i32, (super::itimer::Timer, i32)>>,
    /// Told whenever a signal is sent to the process or one of its
    /// threads (signalfd readiness).
    pub signal_queue: Arc<crate::sentry::vfs::waitq::WaitQueue>,
    /// The argv of the process image, NUL-terminated strings (for `ps`
    /// from the control socket, which has no handle on the task).
    pub cmdline: Mutex<Vec<u8>>,
}

impl Group {
    pub fn new() -> Arc<Group> {
        Arc::new(Group::default())
    }

    /// The live threads.
    pub fn threads(&self) -> Vec<Arc<Control>> {
        self.threads.lock().unwrap().clone()
    }

    pub fn add(&self, c: Arc<Control>) {
        self.threads.lock().unwrap().push(c);
    }

    /// Removes a thread that ended; returns how many are left.
    pub fn remove(&self, c: &Arc<Control>) -> usize {
        let mut threads = self.threads.lock().unwrap();
        threads.retain(|t| !Arc::ptr_eq(t, c));
        threads.len()
    }

    /// Ends the whole process with `exit` (exit_group or a fatal signal):
    /// every thread is killed; the first such exit is the status.
    pub fn exit_all(&self, exit: Exit) {
        self.exit.lock().unwrap().get_or_insert(exit);
        for t in self.threads() {
            t.silenced.store(true, Ordering::SeqCst);
            t.kill_one(libc::SIGKILL);
        }
    }

    /// Records the first thread's own exit(2).
    pub fn leader_exited(&self, exit: Exit) {
        *self.leader_exit.lock().unwrap() = Some(exit);
    }

    /// The process's status, now its last thread ended with `last`.
    pub fn status(&self, last: Exit) -> Exit {
        let group = *self.exit.lock().unwrap();
        group.or(*self.leader_exit.lock().unwrap()).unwrap_or(last)
    }

    /// Makes `info` pending for the process; false when it was not queued
    /// (a standard signal already pending, or the queue is full).
    pub fn post(&self, info: SigInfo) -> bool {
        enqueue(&self.pending, &self.infos, info)
    }

    /// CPU time of the whole process: live threads and ended ones.
    pub fn times(&self) -> (u64, u64) {
        let (mut u, mut s) = self.dead_times.get();
        for t in self.threads() {
            let (tu, ts) = t.cpu_times();
            (u, s) = (u + tu, s + ts);
        }
        (u, s)
    }

    /// A thread to take signal `sig`: one that does not block it, if any.
    pub fn taker(&self, sig: i32) -> Option<Arc<Control>> {
        let bit = 1u64 << (sig - 1);
        self.threads
            .lock()
            .unwrap()
            .iter()
            .find(|c| c.mask.load(Ordering::SeqCst) & bit == 0)
            .cloned()
    }
}

/// Most siginfo records queued per thread or process (RLIMIT_SIGPENDING
/// is larger on Linux; this bounds the sentry's memory).
const MAX_QUEUED: usize = 1024;

/// Adds `info` to a pending set: its bit, and its record in the queue. A
/// standard signal (below 32) that is already pending is not queued again;
/// real-time signals queue every instance.
fn enqueue(
    bits: &std::sync::atomic::AtomicU64,
    infos: &Mutex<Vec<SigInfo>>,
    info: SigInfo,
) -> bool {
    let sig = info.signo();
    let bit = 1u64 << (sig - 1);
    let mut q = infos.lock().unwrap();
    if (sig < 32 && bits.load(Ordering::SeqCst) & bit != 0) || q.len() >= MAX_QUEUED {
        return false;
    }
    q.push(info);
    bits.fetch_or(bit, Ordering::SeqCst);
    true
}

/// Takes the lowest pending signal of `set` from a pending set, with its
/// siginfo; the bit stays while more instances are queued.
fn dequeue(
    bits: &std::sync::atomic::AtomicU64,
    infos: &Mutex<Vec<SigInfo>>,
    set: u64,
) -> Option<SigInfo> {
    let mut q = infos.lock().unwrap();
    let hit = bits.load(Ordering::SeqCst) & set;
    if hit == 0 {
        return None;
    }
    let sig = hit.trailing_zeros() as i32 + 1;
    let info = match q.iter().position(|i| i.signo() == sig) {
        Some(at) => q.remove(at),
        None => SigInfo::kernel(sig),
    };
    if !q.iter().any(|i| i.signo() == sig) {
        bits.fetch_and(!(1u64 << (sig - 1)), Ordering::SeqCst);
    }
    Some(info)
}

/// What other tasks may see of and do to a running task: kill it, wake
/// it, read its signal dispositions.
pub struct Control {
    /// The signal that is killing the task, 0 when none.
    pub killed: AtomicI32,
    pub interrupter: Arc<dyn Interrupter>,
    /// Shared by the threads of a process (CLONE_SIGHAND).
    pub sigactions: Arc<Mutex<SigActions>>,
    /// The process this thread belongs to.
    pub group: Arc<Group>,
    /// Wall time this thread spent in guest code (its user time).
    pub guest_time: CpuTimes,
    /// The host thread's CPU clock, and whether guest code runs on that
    /// thread (KVM) or elsewhere (ptrace stubs): see `cpu_times`.
    pub cpu_clock: std::sync::OnceLock<(libc::clockid_t, bool)>,
    /// Killed as part of its process's end (exit_group, another thread's
    /// fatal signal or exec): its own death does not set the status.
    pub silenced: std::sync::atomic::AtomicBool,
    /// SCHED_RESET_ON_FORK, as sched_setscheduler set it (its only
    /// policy being SCHED_OTHER, a child has nothing to reset).
    pub sched_reset_on_fork: std::sync::atomic::AtomicBool,
    /// Signals sent to a handler or blocked, not yet delivered (bit n-1
    /// for signal n), and their siginfo.
    pub pending: std::sync::atomic::AtomicU64,
    infos: Mutex<Vec<SigInfo>>,
    /// The signal mask (blocked signals).
    pub mask: std::sync::atomic::AtomicU64,
    /// Wakes waits in the sentry (sigsuspend) when a signal arrives.
    pub wake: (Mutex<()>, Condvar),
    /// What the task sleeps on in poll, epoll_wait and blocking reads of
    /// files with wait queues; signals and kills wake it too.
    pub waiter: Arc<crate::sentry::vfs::waitq::Waiter>,
    /// What /proc shows of the task (`view.rs`).
    pub view: super::view::View,
    /// The signal sent to the parent when this process exits.
    pub exit_signal: AtomicI32,
    /// A stop asked for by a stop signal (its number), not yet taken.
    pub stop_request: AtomicI32,
    /// The task is stopped (job control) until SIGCONT or SIGKILL.
    pub stopped: std::sync::atomic::AtomicBool,
}

impl Control {
    pub fn new(
        interrupter: Arc<dyn Interrupter>,
        sigactions: Arc<Mutex<SigActions>>,
        mask: u64,
        group: Arc<Group>,
    ) -> Arc<Control> {
        Arc::new(Control {
            killed: AtomicI32::new(0),
            interrupter,
            sigactions,
            group,
            silenced: std::sync::atomic::AtomicBool::new(false),
            sched_reset_on_fork: std::sync::atomic::AtomicBool::new(false),
            guest_time: CpuTimes::default(),
            cpu_clock: std::sync::OnceLock::new(),
            pending: std::sync::atomic::AtomicU64::new(0),
            infos: Mutex::new(Vec::new()),
            mask: std::sync::atomic::AtomicU64::new(mask),
            wake: (Mutex::new(()), Condvar::new()),
            waiter: crate::sentry::vfs::waitq::Waiter::new(),
            view: Default::default(),
            exit_signal: AtomicI32::new(libc::SIGCHLD),
            stop_request: AtomicI32::new(0),
            stopped: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Asks the task to stop with `sig` (job control).
    pub fn request_stop(&self, sig: i32) {
        self.stop_request.store(sig, Ordering::SeqCst);
        self.notify();
    }

    /// SIGCONT: drops a stop not yet taken and resumes a stopped task.
    pub fn resume(&self) {
        {
            let _guard = self.wake.0.lock().unwrap();
            self.stop_request.store(0, Ordering::SeqCst);
            self.stopped.store(false, Ordering::SeqCst);
        }
        self.notify();
    }

    /// Takes a pending stop request, marking the task stopped (under the
    /// same lock `resume` takes, so a SIGCONT is never lost in between).
    pub fn take_stop(&self) -> Option<i32> {
        // Runs before every return to guest code: no lock unless a stop
        // was asked for.
        if self.stop_request.load(Ordering::SeqCst) == 0 {
            return None;
        }
        let _guard = self.wake.0.lock().unwrap();
        let sig = self.stop_request.swap(0, Ordering::SeqCst);
        if sig == 0 {
            return None;
        }
        self.stopped.store(true, Ordering::SeqCst);
        Some(sig)
    }

    /// Sleeps while the task is stopped (until SIGCONT or a kill).
    pub fn wait_while_stopped(&self) {
        let (lock, cond) = &self.wake;
        let _blocked = crate::sentry::kernel::loadavg::blocked();
        let mut guard = lock.lock().unwrap();
        while self.stopped.load(Ordering::SeqCst) && self.killed().is_none() {
            guard = cond
                .wait_timeout(guard, std::time::Duration::from_millis(100))
                .unwrap()
                .0;
        }
    }

    /// Whether a wait in the sentry must end now: the task was killed, has
    /// a signal to take, or must stop (it resumes waiting after SIGCONT:
    /// the syscall is restarted).
    pub fn interrupted(&self) -> bool {
        self.killed().is_some()
            || self.deliverable() != 0
            || self.stop_request.load(Ordering::SeqCst) != 0
    }

    /// Signals pending and not blocked.
    pub fn deliverable(&self) -> u64 {
        self.all_pending() & !self.mask.load(Ordering::SeqCst)
    }

    /// Signals pending for this thread or for its process.
    pub fn all_pending(&self) -> u64 {
        self.pending.load(Ordering::SeqCst) | self.group.pending.load(Ordering::SeqCst)
    }

    /// Takes the lowest pending signal of `set` with its siginfo (this
    /// thread's own first, then the process's).
    pub fn take_pending(&self, set: u64) -> Option<SigInfo> {
        dequeue(&self.pending, &self.infos, set)
            .or_else(|| dequeue(&self.group.pending, &self.group.infos, set))
    }

    /// Makes `info` pending for this thread; false when it was not queued.
    pub fn post(&self, info: SigInfo) -> bool {
        enqueue(&self.pending, &self.infos, info)
    }

    /// Wakes the task's sentry-side waits and its guest code.
    pub fn notify(&self) {
        self.waiter.wake();
        self.group
            .signal_queue
            .notify(crate::sentry::vfs::poll::POLLIN);
        let _guard = self.wake.0.lock().unwrap();
        self.wake.1.notify_all();
        drop(_guard);
        self.interrupter.interrupt();
    }

    /// Kills the process with `sig`: every thread, wherever it runs or
    /// waits.
    pub fn kill(&self, sig: i32) {
        self.group.exit_all(Exit::Signal(sig));
        // A thread not (or no longer) in the group's list still dies.
        self.kill_one(sig);
    }

    /// CPU time of this thread in ns: (user, system). User is the time in
    /// guest code; system the rest of the host thread's CPU time (read
    /// here, not measured around every syscall, which would cost two host
    /// syscalls each).
    pub fn cpu_times(&self) -> (u64, u64) {
        let (user, _) = self.guest_time.get();
        let system = match self.cpu_clock.get() {
            Some(&(clock, guest_here)) => {
                let cpu = crate::sys::process::cpu_clock_ns(clock);
                if guest_here {
                    cpu.saturating_sub(user)
                } else {
                    cpu
                }
            }
            None => 0,
        };
        (user, system)
    }

    /// Kills this thread alone (the others of an exiting process).
    pub fn kill_one(&self, sig: i32) {
        let _ = self
            .killed
            .compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
        self.interrupter.interrupt();
        self.waiter.wake();
        let _guard = self.wake.0.lock().unwrap();
        self.wake.1.notify_all();
    }

    pub fn killed(&self) -> Option<i32> {
        Some(self.killed.load(Ordering::SeqCst)).filter(|&s| s != 0)
    }
}

/// What wait(2) can report about a child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reported {
    Exited(Exit),
    /// Stopped by this signal.
    Stopped(i32),
    Continued,
}

impl Reported {
    /// The wait(2) status word.
    pub fn wait_status(self) -> u32 {
        match self {
            Reported::Exited(e) => e.wait_status(),
            Reported::Stopped(sig) => ((sig as u32) << 8) | 0x7f,
            Reported::Continued => 0xffff,
        }
    }
}

/// A child a wait found: its pid, what is reported, and (for an exit) the
/// CPU time in ns (user, system) of it and its waited-for children.
pub type Found = (i32, Reported, (u64, u64));

/// Which kinds of child state changes a wait reports.
#[derive(Clone, Copy, Debug)]
pub struct WaitKinds {
    pub exited: bool,
    pub stopped: bool,
    pub continued: bool,
}

/// One process's entry.
struct Proc {
    parent: i32,
    pgid: i32,
    sid: i32,
    children: BTreeSet<i32>,
    /// None while running; the wait status once a zombie.
    exit: Option<Exit>,
    /// A stop or continue not yet reported to a waiter.
    event: Option<Reported>,
    /// A zombie's CPU time with its waited-for children's, ns (user, sys).
    times: (u64, u64),
    /// PR_SET_PDEATHSIG: the signal to get when the parent exits.
    pdeathsig: i32,
    /// PR_SET_CHILD_SUBREAPER: orphaned descendants come here, not to 1.
    subreaper: bool,
    control: Option<Arc<Control>>,
    /// The controlling terminal (inherited by fork, dropped by setsid).
    ctty: Option<Arc<Terminal>>,
    /// A zombie's last thread, for what /proc still shows of it.
    last: Option<Arc<Control>>,
    /// The container it belongs to (inherited by fork).
    container: usize,
    /// It is its container's first process: its end ends the container.
    first: bool,
}

/// Where a process without a parent in the namespace enters: its
/// container (an index in the pod), and whether it is the container's
/// first process (else an exec'd one).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    pub container: usize,
    pub first: bool,
}

/// What /proc shows of a process: its ids, a thread that stands for it
/// (the last one of a zombie), and its status once a zombie.
pub struct ProcEntry {
    pub pid: i32,
    pub parent: i32,
    pub pgid: i32,
    pub sid: i32,
    pub control: Arc<Control>,
    pub exit: Option<Exit>,
}

#[derive(Default)]
struct Procs {
    next: i32,
    procs: BTreeMap<i32, Proc>,
    /// Every live thread, leaders included: tid -> (tgid, control).
    threads: BTreeMap<i32, (i32, Arc<Control>)>,
}

impl Procs {
    /// A free id (pids and tids share one space), or EAGAIN at the limit.
    fn alloc(&mut self) -> SysResult<i32> {
        if self.procs.len() >= MAX_PROCS || self.threads.len() >= MAX_PROCS {
            return Err(Errno::EAGAIN);
        }
        let mut id = self.next.max(1);
        while self.procs.contains_key(&id) || self.threads.contains_key(&id) {
            id = if id >= PID_MAX { 2 } else { id + 1 };
        }
        self.next = if id >= PID_MAX { 2 } else { id + 1 };
        Ok(id)
    }
}

/// A PID namespace.
#[derive(Default)]
pub struct PidNs {
    inner: Mutex<Procs>,
    /// Signalled when a process becomes a zombie.
    changed: Condvar,
}

/// Which children a wait matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitFor {
    Any,
    Pid(i32),
    Group(i32),
}

impl PidNs {
    pub fn new() -> Arc<PidNs> {
        Arc::new(PidNs::default())
    }

    /// Registers a new process with parent `parent` and returns its pid.
    /// A process without a parent (`parent` 0: a container's first
    /// process, or an exec'd one) enters as `entry` says; a child is in
    /// its parent's container.
    pub fn add(&self, parent: i32, entry: Entry, control: Arc<Control>) -> SysResult<i32> {
        let mut p = self.inner.lock().unwrap();
        let pid = p.alloc()?;
        p.threads.insert(pid, (pid, control.clone()));
        let (pgid, sid, ctty, entry) = p.procs.get(&parent).map_or((pid, pid, None, entry), |pp| {
            let inherited = Entry {
                container: pp.container,
                first: false,
            };
            (pp.pgid, pp.sid, pp.ctty.clone(), inherited)
        });
        p.procs.insert(
            pid,
            Proc {
                parent,
                pgid,
                sid,
                children: BTreeSet::new(),
                exit: None,
                event: None,
                times: (0, 0),
                pdeathsig: 0,
                subreaper: false,
                control: Some(control),
                ctty,
                last: None,
                container: entry.container,
                first: entry.first,
            },
        );
        if let Some(pp) = p.procs.get_mut(&parent) {
            pp.children.insert(pid);
        }
        Ok(pid)
    }

    /// Registers another thread of process `tgid`; returns its tid.
    pub fn add_thread(&self, tgid: i32, control: Arc<Control>) -> SysResult<i32> {
        let mut p = self.inner.lock().unwrap();
        if !p.procs.contains_key(&tgid) {
            return Err(Errno::ESRCH);
        }
        let tid = p.alloc()?;
        p.threads.insert(tid, (tgid, control));
        Ok(tid)
    }

    /// Thread `tid` ended (its process goes on while it has others).
    /// `next` is a live thread of the process, which then stands for it.
    pub fn thread_exit(&self, tid: i32, tgid: i32, next: Option<Arc<Control>>) {
        let mut p = self.inner.lock().unwrap();
        p.threads.remove(&tid);
        if let (Some(next), Some(proc)) = (next, p.procs.get_mut(&tgid)) {
            if proc.control.is_some() {
                proc.control = Some(next);
            }
        }
    }

    /// Thread `tid` of process `tgid` takes over the process id (it
    /// execs while the first thread is gone).
    pub fn become_leader(&self, tid: i32, tgid: i32, control: Arc<Control>) {
        let mut p = self.inner.lock().unwrap();
        p.threads.remove(&tid);
        p.threads.insert(tgid, (tgid, control.clone()));
        if let Some(proc) = p.procs.get_mut(&tgid) {
            if proc.control.is_some() {
                proc.control = Some(control);
            }
        }
    }

    /// PR_SET_PDEATHSIG / PR_SET_CHILD_SUBREAPER on process `pid`; each
    /// returns the old value.
    pub fn set_pdeathsig(&self, pid: i32, sig: Option<i32>) -> i32 {
        let mut p = self.inner.lock().unwrap();
        let Some(me) = p.procs.get_mut(&pid) else {
            return 0;
        };
        let old = me.pdeathsig;
        if let Some(sig) = sig {
            me.pdeathsig = sig;
        }
        old
    }

    pub fn set_subreaper(&self, pid: i32, on: Option<bool>) -> bool {
        let mut p = self.inner.lock().unwrap();
        let Some(me) = p.procs.get_mut(&pid) else {
            return false;
        };
        let old = me.subreaper;
        if let Some(on) = on {
            me.subreaper = on;
        }
        old
    }

    /// Live thread `tid`: its process and control.
    pub fn thread(&self, tid: i32) -> Option<(i32, Arc<Control>)> {
        self.inner.lock().unwrap().threads.get(&tid).cloned()
    }

    /// The parent of `pid` (0 for the container's first process).
    pub fn parent(&self, pid: i32) -> i32 {
        self.inner
            .lock()
            .unwrap()
            .procs
            .get(&pid)
            .map_or(0, |p| p.parent)
    }

    /// Marks `pid` a zombie with `exit`, hands its children to pid 1 (or
    /// a subreaper), and wakes waiters. A container's first process's exit
    /// kills every other process of that container: the whole namespace,
    /// as on Linux, when it has its own; in a shared one the other
    /// containers' processes live on (with pid 1 gone, orphans have no
    /// parent and are reaped as soon as they exit).
    /// `notify` is what the parent is sent (SIGCHLD, or clone's exit signal).
    pub fn exit(&self, pid: i32, exit: Exit, notify: Option<SigInfo>, times: (u64, u64)) {
        let mut p = self.inner.lock().unwrap();
        p.threads.remove(&pid);
        let mut leader_tty = None;
        let children: Vec<i32> = match p.procs.get_mut(&pid) {
            Some(me) => {
                if me.sid == pid {
                    leader_tty = me.ctty.clone();
                }
                me.ctty = None;
                me.exit = Some(exit);
                me.times = times;
                me.last = me.control.take();
                std::mem::take(&mut me.children).into_iter().collect()
            }
            None => return,
        };
        // Orphans go to the nearest live subreaper ancestor, else to 1.
        let mut reaper = p.procs.get(&pid).map_or(0, |me| me.parent);
        while let Some(r) = p.procs.get(&reaper) {
            if r.subreaper && r.exit.is_none() {
                break;
            }
            reaper = r.parent;
        }
        if !p.procs.contains_key(&reaper) {
            reaper = 1;
        }
        if p.procs.get(&reaper).is_none_or(|r| r.exit.is_some()) {
            reaper = 0;
        }
        let mut deathsigs = Vec::new();
        for c in &children {
            if let Some(child) = p.procs.get_mut(c) {
                child.parent = reaper;
                if child.pdeathsig != 0 {
                    if let Some(ctl) = &child.control {
                        deathsigs.push((ctl.clone(), child.pdeathsig));
                    }
                }
            }
        }
        if let Some(r) = p.procs.get_mut(&reaper) {
            r.children.extend(children.iter().filter(|&&c| c != reaper));
        }
        if reaper == 0 {
            // Zombies nobody can wait for any more.
            for c in &children {
                if p.procs.get(c).is_some_and(|cp| cp.exit.is_some()) {
                    p.procs.remove(c);
                }
            }
        }
        let (container, first) = p
            .procs
            .get(&pid)
            .map_or((0, false), |me| (me.container, me.first));
        if first {
            for proc in p.procs.values().filter(|pr| pr.container == container) {
                if let Some(c) = &proc.control {
                    c.kill(libc::SIGKILL);
                }
            }
        }
        // A process without a parent is reaped at once; a container's
        // first stays a zombie (its container has ended).
        if p.procs
            .get(&pid)
            .is_some_and(|me| me.parent == 0 && !me.first)
        {
            p.procs.remove(&pid);
        }
        let parent = p
            .procs
            .get(&pid)
            .and_then(|me| p.procs.get(&me.parent))
            .and_then(|pp| pp.control.clone());
        // Whether the parent ignores the signal is decided now, while no
        // wait can have seen the zombie yet (as Linux decides it under the
        // same lock that makes the zombie): a parent that reaps the child
        // and then blocks SIGCHLD must not find this one pending.
        let notify = notify.filter(|i| {
            (1..=64).contains(&i.signo())
                && !parent
                    .as_ref()
                    .is_some_and(|pc| super::signal::ignored_now(pc, i.signo()))
        });
        drop(p);
        self.changed.notify_all();
        // A session leader's end hangs up its terminal's foreground group.
        if let Some(tty) = leader_tty {
            tty.leader_disassociates(true);
        }
        for (child, sig) in deathsigs {
            super::signal::send(&child, sig);
        }
        if let (Some(parent), Some(info)) = (parent, notify) {
            super::signal::send_info(&parent, info);
        }
    }

    /// wait4(2): reaps a zombie child of `parent` matching `which`.
    /// Ok(None) when `nohang` and no child is ready. `control` lets a kill
    /// of the waiter interrupt the wait (EINTR).
    pub fn wait(
        &self,
        parent: i32,
        which: WaitFor,
        nohang: bool,
        control: &Control,
    ) -> SysResult<Option<(i32, Exit)>> {
        let kinds = WaitKinds {
            exited: true,
            stopped: false,
            continued: false,
        };
        let r = self.wait_opts(parent, which, nohang, true, kinds, control)?;
        Ok(r.map(|(pid, rep, _)| match rep {
            Reported::Exited(e) => (pid, e),
            _ => unreachable!("only exits were asked for"),
        }))
    }

    /// wait4/waitid: like [`PidNs::wait`]; with `reap` false the zombie
    /// stays (WNOWAIT). Also returns the CPU time (ns, user and system) of
    /// an exited child and its waited-for children.
    pub fn wait_opts(
        &self,
        parent: i32,
        which: WaitFor,
        nohang: bool,
        reap: bool,
        kinds: WaitKinds,
        control: &Control,
    ) -> SysResult<Option<Found>> {
        // Asleep for the load average until this returns.
        let _blocked = crate::sentry::kernel::loadavg::blocked();
        let mut p = self.inner.lock().unwrap();
        loop {
            let my_pgid = p.procs.get(&parent).map_or(0, |me| me.pgid);
            let kids: Vec<i32> = p
                .procs
                .get(&parent)
                .map(|me| me.children.iter().copied().collect())
                .unwrap_or_default();
            let matching: Vec<i32> = kids
                .into_iter()
                .filter(|c| match which {
                    WaitFor::Any => true,
                    WaitFor::Pid(x) => *c == x,
                    WaitFor::Group(0) => p.procs.get(c).is_some_and(|cp| cp.pgid == my_pgid),
                    WaitFor::Group(g) => p.procs.get(c).is_some_and(|cp| cp.pgid == g),
                })
                .collect();
            if matching.is_empty() {
                return Err(Errno::ECHILD);
            }
            let zombie = matching
                .iter()
                .find(|c| p.procs.get(c).is_some_and(|cp| cp.exit.is_some()));
            if let (true, Some(&z)) = (kinds.exited, zombie) {
                if !reap {
                    return Ok(p
                        .procs
                        .get(&z)
                        .and_then(|cp| cp.exit.map(|e| (z, Reported::Exited(e), cp.times))));
                }
                let zombie = p.procs.remove(&z).unwrap();
                let exit = zombie.exit.unwrap();
                if let Some(me) = p.procs.get_mut(&parent) {
                    me.children.remove(&z);
                    if let Some(c) = &me.control {
                        c.group.child_times.add_ns(zombie.times);
                    }
                }
                return Ok(Some((z, Reported::Exited(exit), zombie.times)));
            }
            let wanted = |e: &Option<Reported>| match e {
                Some(Reported::Stopped(_)) => kinds.stopped,
                Some(Reported::Continued) => kinds.continued,
                _ => false,
            };
            if let Some(&c) = matching
                .iter()
                .find(|c| p.procs.get(c).is_some_and(|cp| wanted(&cp.event)))
            {
                let cp = p.procs.get_mut(&c).unwrap();
                let ev = if reap { cp.event.take() } else { cp.event };
                return Ok(ev.map(|e| (c, e, (0, 0))));
            }
            if nohang {
                return Ok(None);
            }
            if control.interrupted() {
                return Err(Errno::EINTR);
            }
            p = self
                .changed
                .wait_timeout(p, Duration::from_millis(100))
                .unwrap()
                .0;
        }
    }

    /// Records that `pid` stopped (`Some(sig)`) or continued (`None`) and
    /// tells its parent: a waiter wakes, and SIGCHLD is sent unless the
    /// parent's handler asked for SA_NOCLDSTOP.
    pub fn stop_event(&self, pid: i32, stopped: Option<i32>) {
        let mut p = self.inner.lock().unwrap();
        let Some(me) = p.procs.get_mut(&pid) else {
            return;
        };
        me.event = Some(stopped.map_or(Reported::Continued, Reported::Stopped));
        let parent = me.parent;
        let parent = p.procs.get(&parent).and_then(|pp| pp.control.clone());
        drop(p);
        self.changed.notify_all();
        if let Some(parent) = parent {
            const SA_NOCLDSTOP: u64 = 1;
            let flags = parent.sigactions.lock().unwrap()[libc::SIGCHLD as usize - 1][1];
            if flags & SA_NOCLDSTOP == 0 {
                let (code, status) = match stopped {
                    Some(sig) => (5, sig),      // CLD_STOPPED
                    None => (6, libc::SIGCONT), // CLD_CONTINUED
                };
                let info = SigInfo::child(pid, 0, code, status, (0, 0));
                super::signal::send_info(&parent, info);
            }
        }
    }

    /// Every process of `container`, zombies included: (pid, parent,
    /// control while it runs), by pid.
    pub fn snapshot(&self, container: usize) -> Vec<(i32, i32, Option<Arc<Control>>)> {
        let p = self.inner.lock().unwrap();
        p.procs
            .iter()
            .filter(|(_, pr)| pr.container == container)
            .map(|(&pid, pr)| (pid, pr.parent, pr.control.clone()))
            .collect()
    }

    /// Process `pid` (running or a zombie) as /proc shows it.
    pub fn entry(&self, pid: i32) -> Option<ProcEntry> {
        let p = self.inner.lock().unwrap();
        let pr = p.procs.get(&pid)?;
        Some(ProcEntry {
            pid,
            parent: pr.parent,
            pgid: pr.pgid,
            sid: pr.sid,
            control: pr.control.clone().or_else(|| pr.last.clone())?,
            exit: pr.exit,
        })
    }

    /// Every process id, zombies included, in order.
    pub fn pids(&self) -> Vec<i32> {
        self.inner.lock().unwrap().procs.keys().copied().collect()
    }

    /// The live threads of process `pid`: (tid, control), by tid.
    pub fn tasks(&self, pid: i32) -> Vec<(i32, Arc<Control>)> {
        let p = self.inner.lock().unwrap();
        p.threads
            .iter()
            .filter(|(_, (tgid, _))| *tgid == pid)
            .map(|(&tid, (_, c))| (tid, c.clone()))
            .collect()
    }

    /// Every live thread's control, and the id handed out last.
    pub fn all_threads(&self) -> (Vec<Arc<Control>>, i32) {
        let p = self.inner.lock().unwrap();
        let last = if p.next <= 2 { 1 } else { p.next - 1 };
        (p.threads.values().map(|(_, c)| c.clone()).collect(), last)
    }

    /// The running processes of `container`.
    pub fn members_of(&self, container: usize) -> Vec<(i32, Arc<Control>)> {
        let p = self.inner.lock().unwrap();
        p.procs
            .iter()
            .filter(|(_, pr)| pr.container == container)
            .filter_map(|(&pid, pr)| pr.control.clone().map(|c| (pid, c)))
            .collect()
    }

    /// The first process of `container` while it runs.
    pub fn first_of(&self, container: usize) -> Option<(i32, Arc<Control>)> {
        let p = self.inner.lock().unwrap();
        p.procs
            .iter()
            .find(|(_, pr)| pr.container == container && pr.first)
            .and_then(|(&pid, pr)| pr.control.clone().map(|c| (pid, c)))
    }

    /// The control of running process `pid`.
    pub fn control(&self, pid: i32) -> Option<Arc<Control>> {
        self.inner
            .lock()
            .unwrap()
            .procs
            .get(&pid)
            .and_then(|p| p.control.clone())
    }

    /// Running processes whose group is `pgid` (all running ones for None).
    pub fn members(&self, pgid: Option<i32>) -> Vec<(i32, Arc<Control>)> {
        let p = self.inner.lock().unwrap();
        p.procs
            .iter()
            .filter(|(_, pr)| pgid.is_none_or(|g| pr.pgid == g))
            .filter_map(|(&pid, pr)| pr.control.clone().map(|c| (pid, c)))
            .collect()
    }

    pub fn pgid(&self, pid: i32) -> SysResult<i32> {
        self.inner
            .lock()
            .unwrap()
            .procs
            .get(&pid)
            .map(|p| p.pgid)
            .ok_or(Errno::ESRCH)
    }

    pub fn sid(&self, pid: i32) -> SysResult<i32> {
        self.inner
            .lock()
            .unwrap()
            .procs
            .get(&pid)
            .map(|p| p.sid)
            .ok_or(Errno::ESRCH)
    }

    /// setpgid(2) by `caller` on `pid` (0 = caller) to `pgid` (0 = pid).
    pub fn setpgid(&self, caller: i32, pid: i32, pgid: i32) -> SysResult<()> {
        let pid = if pid == 0 { caller } else { pid };
        let pgid = if pgid == 0 { pid } else { pgid };
        if pgid < 0 {
            return Err(Errno::EINVAL);
        }
        let mut p = self.inner.lock().unwrap();
        let caller_sid = p.procs.get(&caller).map(|c| c.sid).ok_or(Errno::ESRCH)?;
        let target = p.procs.get(&pid).ok_or(Errno::ESRCH)?;
        if pid != caller && target.parent != caller {
            return Err(Errno::ESRCH);
        }
        if target.sid != caller_sid || target.sid == pid {
            return Err(Errno::EPERM);
        }
        let group_ok = pgid == pid
            || p.procs
                .values()
                .any(|o| o.pgid == pgid && o.sid == caller_sid);
        if !group_ok {
            return Err(Errno::EPERM);
        }
        p.procs.get_mut(&pid).unwrap().pgid = pgid;
        Ok(())
    }

    /// setsid(2).
    pub fn setsid(&self, pid: i32) -> SysResult<i32> {
        let mut p = self.inner.lock().unwrap();
        // A process group leader (or a pid still naming a group) cannot
        // start a session.
        if p.procs.values().any(|o| o.pgid == pid) {
            return Err(Errno::EPERM);
        }
        let me = p.procs.get_mut(&pid).ok_or(Errno::ESRCH)?;
        me.sid = pid;
        me.pgid = pid;
        me.ctty = None;
        Ok(pid)
    }

    /// The controlling terminal of `pid`.
    pub fn ctty(&self, pid: i32) -> Option<Arc<Terminal>> {
        self.inner.lock().unwrap().procs.get(&pid)?.ctty.clone()
    }

    pub fn set_ctty(&self, pid: i32, tty: Option<Arc<Terminal>>) {
        if let Some(me) = self.inner.lock().unwrap().procs.get_mut(&pid) {
            me.ctty = tty;
        }
    }

    /// No process of session `sid` keeps `tty` as its terminal.
    pub fn clear_session_ctty(&self, sid: i32, tty: &Arc<Terminal>) {
        let mut p = self.inner.lock().unwrap();
        for pr in p.procs.values_mut().filter(|pr| pr.sid == sid) {
            if pr.ctty.as_ref().is_some_and(|c| Arc::ptr_eq(c, tty)) {
                pr.ctty = None;
            }
        }
    }

    /// The pid of the running process `control` is a thread of.
    pub fn pid_of(&self, control: &Control) -> Option<i32> {
        let p = self.inner.lock().unwrap();
        p.procs.iter().find_map(|(&pid, pr)| {
            let c = pr.control.as_ref()?;
            Arc::ptr_eq(&c.group, &control.group).then_some(pid)
        })
    }

    /// Whether a process of group `pgid` belongs to session `sid`.
    pub fn group_in_session(&self, pgid: i32, sid: i32) -> bool {
        let p = self.inner.lock().unwrap();
        p.procs
            .values()
            .any(|pr| pr.pgid == pgid && pr.sid == sid && pr.exit.is_none())
    }

    /// Whether any live process is in group `pgid`.
    pub fn group_exists(&self, pgid: i32) -> bool {
        let p = self.inner.lock().unwrap();
        p.procs
            .values()
            .any(|pr| pr.pgid == pgid && pr.exit.is_none())
    }

    /// Whether group `pgid` is orphaned: no member has a parent in
    /// another group of the same session (POSIX; its members may not be
    /// stopped by the terminal).
    pub fn orphaned(&self, pgid: i32) -> bool {
        let p = self.inner.lock().unwrap();
        !p.procs
            .values()
            .filter(|pr| pr.pgid == pgid && pr.exit.is_none())
            .any(|pr| {
                p.procs
                    .get(&pr.parent)
                    .is_some_and(|pp| pp.exit.is_none() && pp.pgid != pgid && pp.sid == pr.sid)
            })
    }
}
