//! Pausing the whole sandbox (`sandboxd pause`): every task parks before
//! its next switch into guest code, so once [`PauseGate::pause`] returns no
//! guest instruction runs until [`PauseGate::resume`].
//!
//! Each task counts itself in `in_guest` around `Context::switch` and
//! checks `paused` after counting itself in (both SeqCst): either the task
//! sees the flag and backs out, or the pauser sees the count and waits for
//! the interrupt it sent to bring the task out. Syscalls already running
//! in the sentry may finish while paused; their results wait with their
//! task. Guest clocks keep running: after a resume the guest sees time
//! jump by the length of the pause, timers that expired meanwhile fire
//! at once, and sleeps return late.
//!
//! Lock order: `lock` is a leaf.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::process::Control;

/// How long `pause` waits for running guest code to stop.
const PAUSE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Default)]
pub struct PauseGate {
    paused: AtomicBool,
    /// Tasks between `enter_guest` and `leave_guest`.
    in_guest: AtomicUsize,
    lock: Mutex<()>,
    changed: Condvar,
}

impl PauseGate {
    /// Before a switch into guest code: parks while the sandbox is
    /// paused. False when the task was killed meanwhile (it must not run
    /// guest code; the caller goes round its loop to die).
    pub fn enter_guest(&self, control: &Control) -> bool {
        loop {
            self.in_guest.fetch_add(1, Ordering::SeqCst);
            if !self.paused.load(Ordering::SeqCst) {
                return true;
            }
            self.leave_guest();
            let _blocked = crate::sentry::kernel::loadavg::blocked();
            let mut guard = self.lock.lock().unwrap();
            while self.paused.load(Ordering::SeqCst) {
                if control.killed().is_some() {
                    return false;
                }
                guard = self
                    .changed
                    .wait_timeout(guard, Duration::from_millis(100))
                    .unwrap()
                    .0;
            }
        }
    }

    /// After the switch returned.
    pub fn leave_guest(&self) {
        if self.in_guest.fetch_sub(1, Ordering::SeqCst) == 1 && self.paused.load(Ordering::SeqCst) {
            let _guard = self.lock.lock().unwrap();
            self.changed.notify_all();
        }
    }

    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }

    /// Stops all guest code: `tasks` (every live thread) are interrupted
    /// and the call returns once none runs guest code. Err if that takes
    /// longer than PAUSE_TIMEOUT (the sandbox is then resumed).
    pub fn pause(&self, tasks: &[Arc<Control>]) -> Result<(), String> {
        self.paused.store(true, Ordering::SeqCst);
        for t in tasks {
            t.interrupter.interrupt();
        }
        let deadline = Instant::now() + PAUSE_TIMEOUT;
        let mut guard = self.lock.lock().unwrap();
        while self.in_guest.load(Ordering::SeqCst) != 0 {
            if Instant::now() > deadline {
                drop(guard);
                self.resume();
                return Err("guest threads did not stop within 5 s".into());
            }
            guard = self
                .changed
                .wait_timeout(guard, Duration::from_millis(10))
                .unwrap()
                .0;
        }
        Ok(())
    }

    pub fn resume(&self) {
        let _guard = self.lock.lock().unwrap();
        self.paused.store(false, Ordering::SeqCst);
        self.changed.notify_all();
    }
}
