//! Stopping a running vCPU from another thread.
//!
//! `interrupt` marks the context interrupted and, if its `switch` is in
//! progress, sets `immediate_exit` in the vCPU's shared `kvm_run` page and
//! sends the vCPU's host thread [`kick_signal`]. The flag closes the race
//! where the signal lands just before `KVM_RUN` enters the guest: KVM checks
//! `immediate_exit` on entry. The signal's handler does nothing; its only
//! job is to make `KVM_RUN` return `EINTR`.
//!
//! Lock order: only the interrupter's own mutex, never held across
//! `KVM_RUN`.

use std::sync::{Mutex, Once};

use kvm_bindings::kvm_run;

use super::super::Interrupter;

/// The real-time signal used to kick vCPU threads out of `KVM_RUN`. The
/// sentry must leave it unblocked in threads that run contexts.
pub fn kick_signal() -> libc::c_int {
    libc::SIGRTMIN() + 4
}

extern "C" fn on_kick(_: libc::c_int) {}

/// Installs the (empty) handler of [`kick_signal`] once per process.
pub fn install_kick_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: a zeroed sigaction is a valid starting point; we fill in
        // an async-signal-safe handler (it does nothing) and an empty mask.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_kick as *const () as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(kick_signal(), &sa, std::ptr::null_mut());
        }
    });
}

struct Running {
    tid: libc::pid_t,
    run: *mut kvm_run,
}

struct State {
    pending: bool,
    running: Option<Running>,
}

/// The interrupter of one KVM context.
pub struct KvmInterrupter {
    state: Mutex<State>,
}

// SAFETY: the raw `kvm_run` pointer is only dereferenced under the mutex
// while `running` is set, i.e. while the owning context is inside `switch`
// and so keeps its vCPU (and the mapping) alive.
unsafe impl Send for KvmInterrupter {}
// SAFETY: as above; all state is behind the mutex.
unsafe impl Sync for KvmInterrupter {}

impl KvmInterrupter {
    pub fn new() -> KvmInterrupter {
        KvmInterrupter {
            state: Mutex::new(State {
                pending: false,
                running: None,
            }),
        }
    }

    /// Called by `switch` before `KVM_RUN`. Returns false (and consumes the
    /// request) if an interrupt is already pending; otherwise publishes the
    /// running thread and clears `immediate_exit`.
    pub fn enter(&self, run: *mut kvm_run) -> bool {
        let mut st = self.state.lock().unwrap();
        if st.pending {
            st.pending = false;
            return false;
        }
        // SAFETY: `run` is the live kvm_run mapping of the caller's vCPU.
        unsafe { std::ptr::addr_of_mut!((*run).immediate_exit).write_volatile(0) };
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        st.running = Some(Running { tid, run });
        true
    }

    /// Called by `switch` after `KVM_RUN`: unpublishes the thread and says
    /// whether an interrupt is pending (it stays pending).
    pub fn leave(&self) -> bool {
        let mut st = self.state.lock().unwrap();
        if let Some(r) = st.running.take() {
            // SAFETY: the vCPU is still alive (we are inside its switch).
            unsafe { std::ptr::addr_of_mut!((*r.run).immediate_exit).write_volatile(0) };
        }
        st.pending
    }

    /// Consumes a pending interrupt (being reported as `Interrupted`).
    pub fn take(&self) {
        self.state.lock().unwrap().pending = false;
    }
}

impl Interrupter for KvmInterrupter {
    fn interrupt(&self) {
        let mut st = self.state.lock().unwrap();
        st.pending = true;
        if let Some(r) = &st.running {
            // SAFETY: `running` is set only while the vCPU is inside switch,
            // so the kvm_run mapping is alive; the byte is meant to be
            // written concurrently (KVM reads it on entry).
            unsafe { std::ptr::addr_of_mut!((*r.run).immediate_exit).write_volatile(1) };
            // SAFETY: tgkill to a thread of our own process; the signal's
            // handler is installed and does nothing.
            unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), r.tid, kick_signal()) };
        }
        drop(st);
    }
}
