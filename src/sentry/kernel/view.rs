//! What other tasks may see of a task: the state its /proc/[pid]
//! directory shows (credentials, name, working directory, descriptors,
//! memory, limits). A task's fields are its own, on its host thread; it
//! publishes a copy here when it starts, after every syscall that may
//! change one of them, and drops the handles (memory, descriptors,
//! directories) when it ends, so that a zombie holds none of them.
//!
//! Lock order: a view's mutex is a leaf.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::process::PidNs;
use super::task::{Creds, FsShare, Task};
use crate::abi::sysno as nr;
use crate::sentry::loader::Layout;
use crate::sentry::mm::Mm;
use crate::sentry::vfs::{FdTable, GoferFs, Node};

/// The published state of one task.
#[derive(Default)]
pub struct View {
    state: Mutex<Published>,
    /// The task runs guest code now (state R rather than S).
    pub in_guest: AtomicBool,
}

/// A copy of a task's state as of its last publication.
#[derive(Clone, Default)]
pub struct Published {
    pub ns: Option<Arc<PidNs>>,
    pub pid: i32,
    pub tid: i32,
    pub comm: [u8; 16],
    pub creds: Creds,
    pub groups: Vec<u32>,
    pub umask: u32,
    pub rlimits: [(u64, u64); 16],
    /// When the task started, in ns since the sandbox booted.
    pub start_ns: u64,
    pub layout: Layout,
    /// Gone once the task ended.
    pub live: Option<Live>,
}

/// The handles a running task publishes.
#[derive(Clone)]
pub struct Live {
    pub fs: Arc<GoferFs>,
    pub root: Arc<Node>,
    pub cwd: Arc<Node>,
    /// Root and cwd shared with other tasks (CLONE_FS): newer than the
    /// copies above when another task changed them.
    pub fs_share: Option<Arc<FsShare>>,
    pub fds: FdTable,
    pub mm: Mm,
    /// The executable's path.
    pub exe: Vec<u8>,
}

impl Live {
    /// The root and working directory now.
    pub fn dirs(&self) -> (Arc<Node>, Arc<Node>) {
        match &self.fs_share {
            Some(share) => {
                let (root, cwd, _) = share.get();
                (root, cwd)
            }
            None => (self.root.clone(), self.cwd.clone()),
        }
    }
}

impl View {
    /// The state as last published.
    pub fn get(&self) -> Published {
        self.state.lock().unwrap().clone()
    }

    /// The task ended: its handles go, what a zombie shows stays.
    pub fn end(&self) {
        let live = self.state.lock().unwrap().live.take();
        drop(live);
    }

    pub fn in_guest(&self) -> bool {
        self.in_guest.load(Ordering::Relaxed)
    }

    pub fn set_in_guest(&self, on: bool) {
        self.in_guest.store(on, Ordering::Relaxed);
    }
}

/// Whether syscall `n` may change what a task publishes. Asked after
/// every syscall: a `match`, which compiles to a range test, not a scan.
pub fn changes_view(n: u64) -> bool {
    matches!(
        n,
        nr::EXECVE
            | nr::EXECVEAT
            | nr::CHDIR
            | nr::FCHDIR
            | nr::CHROOT
            | nr::UMASK
            | nr::SETRLIMIT
            | nr::PRLIMIT64
            | nr::PRCTL
            | nr::SETUID
            | nr::SETGID
            | nr::SETREUID
            | nr::SETREGID
            | nr::SETRESUID
            | nr::SETRESGID
            | nr::SETFSUID
            | nr::SETFSGID
            | nr::SETGROUPS
            | nr::CAPSET
            | nr::UNSHARE
    )
}

impl Task {
    /// Publishes this task's state for /proc.
    pub fn publish(&self) {
        let mut st = self.control.view.state.lock().unwrap();
        if st.ns.is_none() {
            st.start_ns = self.k.boot.elapsed().as_nanos() as u64;
        }
        st.ns = Some(self.ns.clone());
        st.pid = self.pid;
        st.tid = self.tid;
        st.comm = self.comm;
        st.creds = self.creds;
        st.groups.clone_from(&self.groups);
        st.umask = self.umask;
        st.rlimits = self.rlimits;
        st.layout = self.layout;
        st.live = Some(Live {
            fs: self.fs.clone(),
            root: self.root.clone(),
            cwd: self.cwd.clone(),
            fs_share: self.fs_share.clone(),
            fds: self.fds.clone(),
            mm: self.mm.clone(),
            exe: self.exe.0.clone(),
        });
    }
}
