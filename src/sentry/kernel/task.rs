//! A guest task (one thread of a process), its run loop, and how tasks are
//! born: the container's first process, fork children and threads, each
//! run by a host thread of its own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use super::process::{Control, Entry, Group, PidNs, SigActions};
use super::siginfo::SigInfo;
use super::Kernel;
use crate::abi::{Errno, SysResult};
use crate::sentry::mm::{MemoryManager, Mm, Snapshot, PAST_END};
use crate::sentry::platform::{Event, PlatformError, Regs};
use crate::sentry::syscalls;
use crate::sentry::vfs::{resolve, FdTable, FileOps, Follow, GoferFs, HostFile, Node};

/// Credentials of a task.
#[derive(Clone, Copy, Debug, Default)]
pub struct Creds {
    pub uid: u32,
    pub euid: u32,
    pub suid: u32,
    pub gid: u32,
    pub egid: u32,
    pub sgid: u32,
    /// Capability sets (bit n for capability n): effective, permitted,
    /// inheritable.
    pub cap_eff: u64,
    pub cap_perm: u64,
    pub cap_inh: u64,
    /// PR_SET_KEEPCAPS: leaving uid 0 keeps the permitted set.
    pub keep_caps: bool,
    /// PR_SET_NO_NEW_PRIVS (inherited, never cleared).
    pub no_new_privs: bool,
}

/// Every capability Linux knows (CAP_LAST_CAP is 40).
pub const ALL_CAPS: u64 = (1 << 41) - 1;

impl Creds {
    /// A process started as `uid`/`gid`: root holds every capability.
    pub fn new(uid: u32, gid: u32) -> Creds {
        let caps = if uid == 0 { ALL_CAPS } else { 0 };
        Creds {
            uid,
            euid: uid,
            suid: uid,
            gid,
            egid: gid,
            sgid: gid,
            cap_eff: caps,
            cap_perm: caps,
            cap_inh: 0,
            keep_caps: false,
            no_new_privs: false,
        }
    }

    /// What a change of uids does to the capability sets
    /// (capabilities(7), "Effect of user ID changes on capabilities").
    pub fn uids_changed(&mut self, old: Creds) {
        let had_root = old.uid == 0 || old.euid == 0 || old.suid == 0;
        if had_root && self.uid != 0 && self.euid != 0 && self.suid != 0 {
            if !self.keep_caps {
                self.cap_perm = 0;
            }
            self.cap_eff = 0;
        }
        if old.euid == 0 && self.euid != 0 {
            self.cap_eff = 0;
        }
        if old.euid != 0 && self.euid == 0 {
            self.cap_eff = self.cap_perm;
        }
    }

    /// execve of a file without file capabilities: root (real or
    /// effective) gets the full permitted set, effective when euid is 0;
    /// anyone else keeps none.
    pub fn exec(&mut self) {
        self.keep_caps = false;
        if self.uid == 0 || self.euid == 0 {
            self.cap_perm = ALL_CAPS;
            self.cap_eff = if self.euid == 0 { ALL_CAPS } else { 0 };
        } else {
            self.cap_perm = 0;
            self.cap_eff = 0;
        }
    }

    /// Whether capability `cap` is effective.
    pub fn has_cap(&self, cap: u32) -> bool {
        self.cap_eff & (1 << cap) != 0
    }
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

    /// The wait(2) status word.
    pub fn wait_status(self) -> u32 {
        const CORE: [i32; 10] = [
            libc::SIGQUIT,
            libc::SIGILL,
            libc::SIGTRAP,
            libc::SIGABRT,
            libc::SIGBUS,
            libc::SIGFPE,
            libc::SIGSEGV,
            libc::SIGSYS,
            libc::SIGXCPU,
            libc::SIGXFSZ,
        ];
        match self {
            Exit::Code(c) => (c as u32) << 8,
            Exit::Signal(s) if CORE.contains(&s) => s as u32 | 0x80,
            Exit::Signal(s) => s as u32,
        }
    }
}

/// Everything a new task inherits from its creator.
pub struct Inherit {
    pub fs: Arc<GoferFs>,
    pub root: Arc<Node>,
    pub cwd: Arc<Node>,
    pub fds: FdTable,
    pub creds: Creds,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    pub umask: u32,
    /// Shared with the creator (CLONE_FS): root, working directory, umask.
    pub fs_share: Option<Arc<FsShare>>,
    /// Shared with the creator for a thread (CLONE_SIGHAND), else a copy.
    pub sigactions: Arc<Mutex<SigActions>>,
    pub sigmask: u64,
    pub rlimits: [(u64, u64); 16],
    pub comm: [u8; 16],
    /// The executable's path and the argv (NUL-terminated strings) of the
    /// process image (/proc/self/exe, /proc/self/cmdline).
    pub exe: (Vec<u8>, Vec<u8>),
    /// Where the process image's parts lie.
    pub layout: crate::sentry::loader::Layout,
    pub regs: Regs,
    pub ns: Arc<PidNs>,
    /// Parent pid (0 for a container's first process or an exec'd one).
    pub parent: i32,
    /// With no parent: the container it enters (a child is in its
    /// parent's).
    pub entry: Entry,
}

/// One guest thread of execution with its process state.
pub struct Task {
    pub k: Arc<Kernel>,
    pub fs: Arc<GoferFs>,
    pub root: Arc<Node>,
    pub cwd: Arc<Node>,
    pub mm: Mm,
    pub fds: FdTable,
    pub regs: Regs,
    /// The process id (the thread group's id).
    pub pid: i32,
    /// This thread's id (the pid for the first thread).
    pub tid: i32,
    pub ns: Arc<PidNs>,
    pub control: Arc<Control>,
    pub creds: Creds,
    /// Supplementary groups (sorted).
    pub groups: Vec<u32>,
    pub umask: u32,
    /// Set when threads or processes share root, cwd and umask with this
    /// one (CLONE_FS): the syscall dispatcher syncs the fields with it.
    pub fs_share: Option<Arc<FsShare>>,
    /// The shared values as this task last took or set them, and their
    /// `FsShare::version` then.
    fs_pulled: Option<(Arc<Node>, Arc<Node>, u32, u64)>,
    pub clear_child_tid: u64,
    /// Head of the robust futex list (set_robust_list).
    pub robust_list: u64,
    /// (soft, hard) per RLIMIT_* resource.
    pub rlimits: [(u64, u64); 16],
    /// The alternate signal stack: (sp, flags, size).
    pub altstack: (u64, u64, u64),
    /// The mask to restore after a handler run by rt_sigsuspend.
    pub saved_mask: Option<u64>,
    /// A syscall that returned EINTR: its number, and whether a SA_RESTART
    /// handler restarts it. When no handler runs (a stop and continue) it is
    /// always restarted, as Linux does.
    pub interrupted_syscall: Option<(u64, bool)>,
    pub exit: Option<Exit>,
    /// The thread name (PR_SET_NAME), NUL-padded.
    pub comm: [u8; 16],
    /// ITIMER_REAL / alarm(2).
    pub real_timer: super::itimer::RealTimer,
    /// The executable's path and NUL-terminated argv of the image.
    pub exe: (Vec<u8>, Vec<u8>),
    /// Where the process image's parts lie (/proc/[pid]/stat).
    pub layout: crate::sentry::loader::Layout,
    /// Set in a vfork child: told when it execs or exits.
    pub vfork_done: Option<mpsc::Sender<()>>,
    ctx: Box<dyn crate::sentry::platform::Context>,
    /// Set when this task was killed for want of memory; dropped (after
    /// `mm`, declared earlier) once its memory is released.
    oom_guard: Option<OomGuard>,
}

/// Counts a process killed for want of memory until its task is gone.
struct OomGuard(Arc<Kernel>);

impl Drop for OomGuard {
    fn drop(&mut self) {
        self.0.oom_victims.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What a new process shares with its parent (clone's CLONE_VM,
/// CLONE_FILES, CLONE_SIGHAND and CLONE_FS); fork shares nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct Share {
    pub vm: bool,
    pub files: bool,
    pub sighand: bool,
    pub fs: bool,
}

/// Root, working directory and umask shared by tasks made with CLONE_FS.
pub struct FsShare {
    state: Mutex<(Arc<Node>, Arc<Node>, u32)>,
    /// Bumped (under `state`'s lock) on every change of `state`: a task
    /// whose copy is as new skips the lock before and after its syscalls.
    version: AtomicU64,
}

impl FsShare {
    /// The shared root, working directory and umask now.
    pub fn get(&self) -> (Arc<Node>, Arc<Node>, u32) {
        self.state.lock().unwrap().clone()
    }
}

impl Task {
    /// The shared root/cwd/umask, made on first use from this task's.
    fn fs_share(&mut self) -> Arc<FsShare> {
        let state = (self.root.clone(), self.cwd.clone(), self.umask);
        self.fs_share
            .get_or_insert_with(|| {
                Arc::new(FsShare {
                    state: Mutex::new(state),
                    version: AtomicU64::new(0),
                })
            })
            .clone()
    }

    /// Before a syscall: take what another task sharing them set. Every
    /// syscall of a CLONE_FS task comes here: when the shared values did
    /// not change since this task took them, one atomic load.
    pub fn fs_pull(&mut self) {
        let Some(share) = &self.fs_share else {
            return;
        };
        let version = share.version.load(Ordering::Acquire);
        if self.fs_pulled.as_ref().is_some_and(|p| p.3 == version) {
            return;
        }
        let st = share.state.lock().unwrap();
        let version = share.version.load(Ordering::Relaxed);
        (self.root, self.cwd, self.umask) = st.clone();
        self.fs_pulled = Some((st.0.clone(), st.1.clone(), st.2, version));
    }

    /// After a syscall: publish what it changed (only that: another task
    /// may have changed the shared values while this one was blocked).
    pub fn fs_push(&mut self) {
        let (Some(share), Some(pulled)) = (&self.fs_share, &mut self.fs_pulled) else {
            return;
        };
        let (root, cwd, umask) = (
            !Arc::ptr_eq(&pulled.0, &self.root),
            !Arc::ptr_eq(&pulled.1, &self.cwd),
            pulled.2 != self.umask,
        );
        if !(root || cwd || umask) {
            return;
        }
        let mut st = share.state.lock().unwrap();
        if root {
            st.0 = self.root.clone();
        }
        if cwd {
            st.1 = self.cwd.clone();
        }
        if umask {
            st.2 = self.umask;
        }
        let version = share.version.fetch_add(1, Ordering::Release) + 1;
        // What another task changed meanwhile holds here too (as the next
        // pull would have taken it).
        (self.root, self.cwd, self.umask) = st.clone();
        *pulled = (st.0.clone(), st.1.clone(), st.2, version);
    }
}

/// The memory a new task starts with.
pub enum Memory {
    /// An empty address space (the container's first process).
    Fresh,
    /// A fork child's copy-on-write copy.
    Fork(Snapshot),
    /// A thread's share of its process's memory, and its process.
    Thread(Mm, Arc<Group>),
    /// A new process sharing its parent's memory (clone with CLONE_VM
    /// but not CLONE_THREAD: vfork, posix_spawn).
    SharedVm(Mm),
}

/// Why a task could not be created.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("platform")]
    Platform(#[from] PlatformError),
    #[error("{0}")]
    Errno(Errno),
}

impl SpawnError {
    /// The errno fork reports for it.
    pub fn errno(&self) -> Errno {
        match self {
            SpawnError::Platform(e) => {
                log::error!("creating a task: {e}");
                Errno::EAGAIN
            }
            SpawnError::Errno(e) => *e,
        }
    }
}

impl Task {
    /// Creates a task on the calling host thread (which must be the one
    /// that runs it: the ptrace platform traces from it). With `snapshot`
    /// the address space is a fork child's, else empty.
    pub fn new(k: Arc<Kernel>, inh: Inherit, memory: Memory) -> Result<Task, SpawnError> {
        let ctx = k.platform.new_context()?;
        let (mm, group) = match memory {
            Memory::Thread(mm, group) => (mm, Some(group)),
            Memory::SharedVm(mm) => (mm, None),
            Memory::Fresh => {
                let space = k.platform.new_address_space()?;
                (Mm::new(MemoryManager::new(k.memory.clone(), space)), None)
            }
            Memory::Fork(snap) => {
                let space = k.platform.new_address_space()?;
                let mm = MemoryManager::from_snapshot(space, snap).map_err(SpawnError::Errno)?;
                (Mm::new(mm), None)
            }
        };
        let (pid, tid, control) = match group {
            Some(group) => {
                let control = Control::new(
                    ctx.interrupter(),
                    inh.sigactions,
                    inh.sigmask,
                    group.clone(),
                );
                let tgid = inh.parent;
                let tid = inh
                    .ns
                    .add_thread(tgid, control.clone())
                    .map_err(SpawnError::Errno)?;
                group.add(control.clone());
                (tgid, tid, control)
            }
            None => {
                let group = Group::new();
                let control = Control::new(
                    ctx.interrupter(),
                    inh.sigactions,
                    inh.sigmask,
                    group.clone(),
                );
                let pid = inh
                    .ns
                    .add(inh.parent, inh.entry, control.clone())
                    .map_err(SpawnError::Errno)?;
                group.add(control.clone());
                *group.cmdline.lock().unwrap() = inh.exe.1.clone();
                k.stats.forks.fetch_add(1, Ordering::Relaxed);
                (pid, pid, control)
            }
        };
        let real_timer = super::itimer::RealTimer::new(&control);
        // Task::new runs on the host thread that will run the task.
        let _ = control.cpu_clock.set((
            crate::sys::process::thread_cpu_clock(),
            ctx.guest_runs_here(),
        ));
        Ok(Task {
            k,
            fs: inh.fs,
            root: inh.root,
            cwd: inh.cwd,
            mm,
            fds: inh.fds,
            regs: inh.regs,
            pid,
            tid,
            ns: inh.ns,
            control,
            creds: inh.creds,
            groups: inh.groups,
            umask: inh.umask,
            fs_share: inh.fs_share,
            fs_pulled: None,
            clear_child_tid: 0,
            robust_list: 0,
            rlimits: inh.rlimits,
            altstack: (0, 2, 0),
            saved_mask: None,
            interrupted_syscall: None,
            exit: None,
            comm: inh.comm,
            exe: inh.exe,
            layout: inh.layout,
            vfork_done: None,
            real_timer,
            ctx,
            oom_guard: None,
        })
    }

    /// What a child of this task inherits (fork).
    pub fn inherit(&self, regs: Regs) -> Inherit {
        Inherit {
            fs: self.fs.clone(),
            root: self.root.clone(),
            cwd: self.cwd.clone(),
            fds: self.fds.copy(),
            creds: self.creds,
            groups: self.groups.clone(),
            umask: self.umask,
            fs_share: None,
            sigactions: Arc::new(Mutex::new(*self.control.sigactions.lock().unwrap())),
            sigmask: self.control.mask.load(Ordering::SeqCst),
            rlimits: self.rlimits,
            comm: self.comm,
            exe: self.exe.clone(),
            layout: self.layout,
            regs,
            ns: self.ns.clone(),
            parent: self.pid,
            entry: Entry::default(),
        }
    }

    /// Starts a fork child on a new host thread; returns its pid once it
    /// exists. `setup` runs first in the child (e.g. CLONE_CHILD_SETTID).
    pub fn spawn_child(
        &mut self,
        regs: Regs,
        share: Share,
        setup: impl FnOnce(&mut Task) + Send + 'static,
    ) -> SysResult<i32> {
        let memory = if share.vm {
            self.prepare_thread()?;
            Memory::SharedVm(self.mm.clone())
        } else {
            Memory::Fork(self.mm.lock().fork()?)
        };
        let mut inh = self.inherit(regs);
        if share.files {
            inh.fds = self.fds.clone();
        }
        if share.sighand {
            inh.sigactions = self.control.sigactions.clone();
        }
        if share.fs {
            inh.fs_share = Some(self.fs_share());
        }
        self.spawn(inh, memory, setup)
    }

    /// Makes room in this address space for another task to run in it.
    fn prepare_thread(&self) -> SysResult<()> {
        self.mm.space_arc().prepare_thread().map_err(|e| {
            log::error!("pid {}: preparing a thread: {e}", self.pid);
            Errno::EAGAIN
        })
    }

    /// Starts another thread of this process (clone with CLONE_THREAD) on
    /// a new host thread; returns its tid. It shares the memory, the
    /// descriptor table and the signal dispositions.
    pub fn spawn_thread(
        &mut self,
        regs: Regs,
        share_fs: bool,
        setup: impl FnOnce(&mut Task) + Send + 'static,
    ) -> SysResult<i32> {
        self.prepare_thread()?;
        let mut inh = self.inherit(regs);
        if share_fs {
            inh.fs_share = Some(self.fs_share());
        }
        inh.fds = self.fds.clone();
        inh.sigactions = self.control.sigactions.clone();
        inh.parent = self.pid;
        let memory = Memory::Thread(self.mm.clone(), self.control.group.clone());
        self.spawn(inh, memory, setup)
    }

    fn spawn(
        &mut self,
        inh: Inherit,
        memory: Memory,
        setup: impl FnOnce(&mut Task) + Send + 'static,
    ) -> SysResult<i32> {
        let k = self.k.clone();
        let (tx, rx) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name(format!("task-{}", self.pid))
            .spawn(move || {
                let mut task = match Task::new(k, inh, memory) {
                    Ok(t) => t,
                    Err(e) => {
                        let _ = tx.send(Err(e.errno()));
                        return;
                    }
                };
                setup(&mut task);
                let _ = tx.send(Ok(task.tid));
                task.run_to_exit();
            });
        if spawned.is_err() {
            return Err(Errno::EAGAIN);
        }
        rx.recv().unwrap_or(Err(Errno::EAGAIN))
    }

    /// Runs the task until it exits; the last thread of a process makes
    /// it a zombie.
    pub fn run_to_exit(&mut self) -> Exit {
        super::signal::set_current(self.control.clone());
        let counted = super::loadavg::Counted::new(&self.k.load);
        self.publish();
        let exit = match self.run() {
            Ok(e) => e,
            Err(e) => {
                let cause = std::error::Error::source(&e)
                    .map(|c| format!(": {c}"))
                    .unwrap_or_default();
                log::error!(
                    "pid {}: platform failure, killing the task: {e}{cause}",
                    self.pid
                );
                Exit::Signal(libc::SIGKILL)
            }
        };
        let group = self.control.group.clone();
        // A fatal signal ends the whole process (unless this thread was
        // only being cleared away by another thread's exit or exec).
        if matches!(exit, Exit::Signal(_)) && !self.control.silenced.load(Ordering::SeqCst) {
            group.exit_all(exit);
        }
        // /proc lets go of the memory and descriptors first (the futex
        // code counts who shares the memory), and a thread leaves its
        // process's task list before pthread_join can return.
        self.control.view.end();
        drop(counted);
        let left = group.remove(&self.control);
        if left > 0 {
            let next = group.threads().into_iter().next();
            self.ns.thread_exit(self.tid, self.pid, next);
        }
        super::futex::thread_exit(self);
        // Closing our descriptors now (not when the zombie is reaped) is
        // what lets pipe readers see end of file.
        self.fds = FdTable::default();
        self.vfork_done.take();
        if left == 0 {
            // The process's record locks go with its last thread, and
            // its SEM_UNDO adjustments are applied.
            syscalls::release_process_locks(self);
            super::ipc::ipc().process_exit(syscalls::ipc_process_key(self), self.pid);
            // Its memory goes before the parent hears of the exit (unless
            // another process shares it: vfork, CLONE_VM).
            if self.mm.users() == 1 {
                self.mm.lock().release_all();
            }
        }
        group.dead_times.add_ns(self.control.cpu_times());
        if left > 0 {
            if self.tid == self.pid {
                group.leader_exited(exit);
            }
            return exit;
        }
        let status = group.status(exit);
        let exit_signal = self.control.exit_signal.load(Ordering::SeqCst);
        let (own, children) = (group.times(), group.child_times.get());
        let times = (own.0 + children.0, own.1 + children.1);
        let (code, value) = match status {
            Exit::Code(c) => (1, c as i32), // CLD_EXITED
            Exit::Signal(s) if status.wait_status() & 0x80 != 0 => (3, s), // CLD_DUMPED
            Exit::Signal(s) => (2, s),      // CLD_KILLED
        };
        let ticks = |ns: u64| ns / 10_000_000;
        let mut notify = SigInfo::child(
            self.pid,
            self.creds.uid,
            code,
            value,
            (ticks(own.0), ticks(own.1)),
        );
        notify.0[0..4].copy_from_slice(&exit_signal.to_le_bytes());
        self.ns.exit(self.pid, status, Some(notify), times);
        status
    }

    /// Ends every other thread of the process and waits until they are
    /// gone (execve).
    fn end_other_threads(&mut self) -> SysResult<()> {
        let group = self.control.group.clone();
        loop {
            let others: Vec<_> = group
                .threads()
                .into_iter()
                .filter(|c| !Arc::ptr_eq(c, &self.control))
                .collect();
            if others.is_empty() {
                break;
            }
            if self.control.killed().is_some() {
                return Err(Errno::EINTR);
            }
            for c in &others {
                c.silenced.store(true, Ordering::SeqCst);
                c.kill_one(libc::SIGKILL);
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        if self.tid != self.pid {
            // The thread that execs takes over the process id.
            self.ns
                .become_leader(self.tid, self.pid, self.control.clone());
            self.tid = self.pid;
            self.publish();
        }
        Ok(())
    }

    /// Runs the task until it exits.
    pub fn run(&mut self) -> Result<Exit, PlatformError> {
        loop {
            if let Some(sig) = self.control.killed() {
                self.exit.get_or_insert(Exit::Signal(sig));
            }
            if self.control.deliverable() != 0 {
                super::sigframe::deliver_pending(self);
            }
            if let Some(sig) = self.control.take_stop() {
                self.ns.stop_event(self.pid, Some(sig));
                self.control.wait_while_stopped();
                if self.control.killed().is_none() {
                    self.ns.stop_event(self.pid, None);
                }
                // The syscall the stop cut short runs again, unless a
                // signal handler is about to run first (it decides).
                if self.control.deliverable() == 0 {
                    if let Some((nr, _)) = self.interrupted_syscall.take() {
                        self.regs.rip -= 2;
                        self.regs.rax = nr;
                    }
                }
                continue;
            }
            if let Some(exit) = self.exit {
                return Ok(exit);
            }
            // Back to guest code: an EINTR from here on was seen by it.
            self.interrupted_syscall = None;
            // Pages of shared objects that shrank must not be reachable.
            self.mm.settle();
            // A CPU of the guest's (`resources.cpus`), then past the pause.
            let control = &self.control;
            let Some(cpu) = self
                .k
                .cpu_gate
                .enter(&control.interrupter, || control.killed().is_some())
            else {
                continue;
            };
            if !self.k.pause.enter_guest(&self.control) {
                self.k.cpu_gate.leave(cpu);
                continue;
            }
            let entered = std::time::Instant::now();
            let widened = self.mm.widened();
            self.control.view.set_in_guest(true);
            self.k.stats.switches.fetch_add(1, Ordering::Relaxed);
            let switched = self.ctx.switch(self.mm.space(), &mut self.regs);
            self.control.view.set_in_guest(false);
            self.k.pause.leave_guest();
            self.k.cpu_gate.leave(cpu);
            let event = switched?;
            self.control.guest_time.add_user(entered.elapsed());
            match event {
                Event::Syscall => syscalls::dispatch(self),
                Event::PageFault {
                    addr,
                    write,
                    exec,
                    present,
                } => {
                    let faulted = self.mm.lock().fault(addr, write, exec, present);
                    if faulted == Err(Errno::ENOMEM) {
                        self.out_of_memory();
                    } else if faulted.is_err() && present && self.mm.widened() != widened {
                        // Another thread widened a page while this one
                        // ran into its old protection (e.g. broke the COW
                        // this thread's write also hit): try again.
                    } else if let Err(e) = faulted {
                        // BUS_ADRERR past the end of an object, else
                        // SEGV_ACCERR for a page that is there, SEGV_MAPERR.
                        let (sig, code) = if e == PAST_END {
                            (libc::SIGBUS, 2)
                        } else if present {
                            (libc::SIGSEGV, 2)
                        } else {
                            (libc::SIGSEGV, 1)
                        };
                        log::debug!(
                            "pid {}: signal {sig} at {addr:#x} (rip {:#x})",
                            self.pid,
                            self.regs.rip
                        );
                        self.fatal_signal(sig, code, addr);
                    }
                }
                Event::Exception { vector, error_code } => {
                    log::debug!(
                        "pid {}: exception {vector} ({error_code:#x}) at rip {:#x}",
                        self.pid,
                        self.regs.rip
                    );
                    self.fatal_signal(signal_for_vector(vector), 1, self.regs.rip);
                }
                Event::Interrupted => {}
            }
        }
    }

    /// Guest memory is exhausted at a fault. While a process killed for it
    /// has not released its memory yet, wait (the fault is retried);
    /// otherwise this process dies as Linux's OOM killer kills (SIGKILL),
    /// never the sandbox.
    fn out_of_memory(&mut self) {
        if self.k.oom_victims.load(Ordering::SeqCst) > 0 && self.oom_guard.is_none() {
            std::thread::sleep(std::time::Duration::from_millis(5));
            return;
        }
        if self.oom_guard.is_none() {
            log::warn!(
                "pid {}: out of guest memory ({} MiB in use), killing it",
                self.pid,
                self.k.memory.used_bytes() >> 20
            );
            self.k.oom_victims.fetch_add(1, Ordering::SeqCst);
            self.oom_guard = Some(OomGuard(self.k.clone()));
        }
        self.control.kill(libc::SIGKILL);
    }

    /// A synchronous fault signal (SIGSEGV, SIGILL, ...) with its si_code:
    /// the guest's handler runs if it has one, else the task dies of it.
    pub fn fatal_signal(&mut self, sig: i32, code: i32, addr: u64) {
        super::sigframe::deliver_fault(self, sig, code, addr);
    }

    /// The FPU state for a signal frame, when the platform can read it.
    pub fn ctx_fpu(&mut self) -> Option<Vec<u8>> {
        self.ctx
            .fpu()
            .map_err(|e| log::debug!("pid {}: reading FPU state: {e}", self.pid))
            .ok()
    }

    /// Restores FPU state from a signal frame.
    pub fn ctx_set_fpu(&mut self, area: &[u8]) {
        if let Err(e) = self.ctx.set_fpu(area) {
            log::debug!("pid {}: restoring FPU state: {e}", self.pid);
        }
    }

    /// Whether a kill asked this task to stop what it is blocked in.
    pub fn interrupted(&self) -> bool {
        self.control.killed.load(Ordering::SeqCst) != 0
    }

    /// execve: replaces the address space with a fresh one holding the
    /// program at `path`. On error the old image is untouched.
    pub fn exec(&mut self, path: &[u8], argv: Vec<Vec<u8>>, envp: &[Vec<u8>]) -> SysResult<()> {
        self.exec_image(path, None, argv, envp)
    }

    /// exec of `path`, or of `image` (a file of the sentry's own, shown to
    /// the guest under `path`) when given.
    pub fn exec_image(
        &mut self,
        path: &[u8],
        image: Option<Arc<dyn FileOps>>,
        argv: Vec<Vec<u8>>,
        envp: &[Vec<u8>],
    ) -> SysResult<()> {
        let space = self.k.platform.new_address_space().map_err(|e| {
            log::error!("exec: new address space: {e}");
            Errno::ENOMEM
        })?;
        let mut mm = MemoryManager::new(self.k.memory.clone(), space);
        let ids = [
            self.creds.uid,
            self.creds.euid,
            self.creds.gid,
            self.creds.egid,
        ];
        let cmdline: Vec<u8> = argv
            .iter()
            .flat_map(|a| a.iter().copied().chain([0]))
            .collect();
        let open = |p: &[u8]| match &image {
            Some(file) if p == path => Ok(file.clone()),
            _ => self.open_executable(p),
        };
        let setup = crate::sentry::loader::Setup {
            ids,
            vdso: self.k.vdso.as_ref(),
            stack_limit: self.rlimits[libc::RLIMIT_STACK as usize].0,
        };
        let loaded = crate::sentry::loader::load(&mut mm, &open, path, argv, envp, setup)?;
        // The point of no return: the other threads go now, and with the
        // old image its POSIX timers.
        self.end_other_threads()?;
        self.control.group.timers.lock().unwrap().clear();
        self.mm = Mm::new(mm);
        self.layout = loaded.layout;
        let exe_path = resolve(&self.fs, &self.root, &self.cwd, path, Follow::Yes)
            .map(|n| self.fs.path_of(&n))
            .unwrap_or_else(|_| path.to_vec());
        *self.control.group.cmdline.lock().unwrap() = cmdline.clone();
        self.exe = (exe_path, cmdline);
        if let Some(done) = self.vfork_done.take() {
            let _ = done.send(());
        }
        for file in self.fds.close_on_exec() {
            syscalls::release_closed_file_locks(self, &file);
        }
        self.creds.exec();
        // Handlers point into the old image: back to the default, but
        // ignored signals stay ignored.
        for act in self.control.sigactions.lock().unwrap().iter_mut() {
            if act[0] != 1 {
                *act = [0; 4];
            }
        }
        self.regs = Regs {
            rip: loaded.entry,
            rsp: loaded.sp,
            rflags: 0x202,
            ..Regs::default()
        };
        let name = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
        self.comm = [0; 16];
        let n = name.len().min(15);
        self.comm[..n].copy_from_slice(&name[..n]);
        Ok(())
    }

    /// The permission bits (rwx, low three) of `st` that apply to this
    /// task: the owner's, the group's (primary or supplementary), or the
    /// others'. Root's overrides are the caller's business.
    pub fn access_bits(&self, st: &crate::abi::types::Stat) -> u32 {
        let bits = if st.uid == self.creds.euid {
            st.mode >> 6
        } else if st.gid == self.creds.egid || self.groups.binary_search(&st.gid).is_ok() {
            st.mode >> 3
        } else {
            st.mode
        };
        bits & 7
    }

    /// Opens `path` for execution: a regular file the task may execute.
    pub fn open_executable(&self, path: &[u8]) -> SysResult<Arc<dyn FileOps>> {
        let node = resolve(&self.fs, &self.root, &self.cwd, path, Follow::Yes)?;
        let st = &node.current_stat();
        // Root may execute a file if anyone may.
        let can_exec = if self.creds.euid == 0 {
            st.mode & 0o111 != 0
        } else {
            self.access_bits(st) & 1 != 0
        };
        let noexec = node.mount.has(crate::sentry::vfs::mount::MS_NOEXEC);
        if !st.is_reg() || !can_exec || noexec {
            return Err(Errno::EACCES);
        }
        if node.upper().is_some() {
            return Ok(crate::sentry::vfs::tmpfs::TmpFile::new(node));
        }
        let fd = self.fs.open(&node, libc::O_RDONLY)?;
        Ok(Arc::new(HostFile::new(fd, node)))
    }

    /// Logs an unsupported option of a syscall once per sandbox (e.g. a
    /// prctl or fcntl command) and returns EINVAL, as Linux does for
    /// options it does not know.
    pub fn unimplemented_option(&self, syscall: &'static str, option: u64) -> Errno {
        if self
            .k
            .first_unimplemented(super::Missing::Option(syscall, option))
        {
            log::warn!(
                "unsupported {syscall} option {option:#x} called by pid {}: refused",
                self.pid
            );
        }
        Errno::EINVAL
    }

    /// Logs an unimplemented syscall once per sandbox and returns ENOSYS.
    pub fn unimplemented(&self, nr: u64) -> Errno {
        if self.k.first_unimplemented(super::Missing::Syscall(nr)) {
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

impl Task {
    /// The descriptors this process may have (RLIMIT_NOFILE's soft limit).
    pub fn nofile(&self) -> usize {
        let soft = self.rlimits[libc::RLIMIT_NOFILE as usize].0;
        soft.min(crate::sentry::vfs::MAX_FDS as u64) as usize
    }
}

/// Linux's defaults for a process started by init.
pub fn default_rlimits() -> [(u64, u64); 16] {
    let inf = u64::MAX;
    let mut r = [(inf, inf); 16];
    r[libc::RLIMIT_STACK as usize] = (8 << 20, inf);
    r[libc::RLIMIT_CORE as usize] = (0, inf);
    r[libc::RLIMIT_NOFILE as usize] = (1024, crate::sentry::vfs::MAX_FDS as u64);
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
