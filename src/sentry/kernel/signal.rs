//! Sending signals between tasks. Default actions (terminate, ignore) are
//! carried out here; delivery to guest handlers is not implemented yet, so
//! a signal sent to a handler stays pending and the send is logged once.

use std::cell::RefCell;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::process::Control;
use super::siginfo::SigInfo;

const SIG_DFL: u64 = 0;
const SIG_IGN: u64 = 1;

thread_local! {
    /// The task this host thread runs.
    static CURRENT: RefCell<Option<Arc<Control>>> = const { RefCell::new(None) };
}

/// Records the task this host thread runs (for blocking waits to notice
/// kills without a handle on the task).
pub fn set_current(c: Arc<Control>) {
    CURRENT.with(|cur| *cur.borrow_mut() = Some(c));
}

/// Whether the task running on this thread was killed (blocked waits then
/// return EINTR so the task can die).
pub fn current_interrupted() -> bool {
    CURRENT.with(|cur| cur.borrow().as_ref().is_some_and(|c| c.interrupted()))
}

/// What a signal does to a task by default.
fn default_ignored(sig: i32) -> bool {
    matches!(
        sig,
        libc::SIGCHLD | libc::SIGURG | libc::SIGWINCH | libc::SIGCONT
    )
}

fn stops(sig: i32) -> bool {
    matches!(
        sig,
        libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
    )
}

/// Sends `sig` (1..=64), from the kernel itself, to the process `target`
/// belongs to: see [`send_info`].
pub fn send(target: &Control, sig: i32) {
    send_to(target, SigInfo::kernel(sig), false);
}

/// Sends a signal to the process `target` belongs to (kill(2)):
/// terminating default actions kill the process at once; stops stop every
/// thread; a signal for a handler, or blocked by every thread, waits in the
/// process's pending set for the first thread that can take it. False when
/// it could not be queued (a full queue of real-time signals).
pub fn send_info(target: &Control, info: SigInfo) -> bool {
    send_to(target, info, false)
}

/// Sends a signal to thread `target` alone (tgkill(2), SIGPIPE): it waits
/// in that thread's pending set; default actions still act on the process.
pub fn send_thread(target: &Control, info: SigInfo) -> bool {
    send_to(target, info, true)
}

/// Whether `sig` sent to `target`'s process now would be dropped at
/// once: ignored (SIG_IGN, or a default that ignores) and not blocked by
/// every thread. Takes only leaf locks, so a caller may hold its own.
pub fn ignored_now(target: &Control, sig: i32) -> bool {
    if matches!(sig, libc::SIGKILL | libc::SIGSTOP | libc::SIGCONT) {
        return false;
    }
    let handler = target.sigactions.lock().unwrap()[sig as usize - 1][0];
    ignores(handler, sig) && has_taker(target, sig, false)
}

/// Whether disposition `handler` drops `sig` (SIG_IGN, or a default that
/// ignores it).
fn ignores(handler: u64, sig: i32) -> bool {
    handler == SIG_IGN || (handler == SIG_DFL && default_ignored(sig))
}

/// Whether a thread would take `sig` now: `target` itself for a
/// thread-directed signal, else any thread of its process not blocking
/// it. Blocked signals are never dropped or acted on at sending: the
/// disposition may change before they are unblocked, and sigwait may
/// take them.
fn has_taker(target: &Control, sig: i32, thread: bool) -> bool {
    let bit = 1u64 << (sig - 1);
    target.mask.load(Ordering::SeqCst) & bit == 0 || (!thread && target.group.taker(sig).is_some())
}

fn send_to(target: &Control, info: SigInfo, thread: bool) -> bool {
    let sig = info.signo();
    let group = &target.group;
    if sig == libc::SIGKILL {
        target.kill(sig);
        return true;
    }
    if sig == libc::SIGCONT {
        // Continuing happens whatever the disposition; a handler then runs.
        group.threads().iter().for_each(|t| t.resume());
        target.resume();
    }
    let stop_all = || {
        group.threads().iter().for_each(|t| t.request_stop(sig));
        target.request_stop(sig);
    };
    if sig == libc::SIGSTOP {
        stop_all();
        return true;
    }
    let handler = target.sigactions.lock().unwrap()[sig as usize - 1][0];
    let taken = has_taker(target, sig, thread);
    match handler {
        _ if taken && ignores(handler, sig) => {}
        SIG_DFL if stops(sig) && taken => stop_all(),
        SIG_DFL if taken => target.kill(sig),
        _ if thread => {
            if !target.post(info) {
                return sig < 32;
            }
            target.notify();
        }
        _ => {
            if !group.post(info) {
                return sig < 32;
            }
            // With no thread to take it, wake them all: one may be in
            // sigtimedwait for it.
            match group.taker(sig) {
                Some(t) => t.notify(),
                None => group.threads().iter().for_each(|t| t.notify()),
            }
        }
    }
    true
}

/// What happens to a signal taken off the pending set.
pub enum Action {
    Ignore,
    Terminate,
    /// Stop (job control) with this signal.
    Stop,
    /// Run the handler: the raw sigaction.
    Handle([u64; 4]),
}

/// The action for `sig` under its current disposition.
pub fn action(target: &Control, sig: i32) -> Action {
    let act = target.sigactions.lock().unwrap()[sig as usize - 1];
    match act[0] {
        SIG_IGN => Action::Ignore,
        SIG_DFL if default_ignored(sig) => Action::Ignore,
        SIG_DFL if stops(sig) => Action::Stop,
        SIG_DFL => Action::Terminate,
        _ => Action::Handle(act),
    }
}

/// The waiter of the task running on this thread, if any (blocking file
/// operations sleep on it, so that signals wake them).
pub fn current_waiter() -> Option<Arc<crate::sentry::vfs::waitq::Waiter>> {
    CURRENT.with(|cur| cur.borrow().as_ref().map(|c| c.waiter.clone()))
}

/// The control of the task running on this thread, if any (signalfd
/// reads the reader's own pending signals).
pub fn current_control() -> Option<Arc<Control>> {
    CURRENT.with(|cur| cur.borrow().clone())
}
