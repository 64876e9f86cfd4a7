//! Sending signals between tasks. Default actions (terminate, ignore) are
//! carried out here; delivery to guest handlers is not implemented yet, so
//! a signal sent to a handler stays pending and the send is logged once.

use std::cell::RefCell;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::process::Control;

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
    CURRENT.with(|cur| cur.borrow().as_ref().is_some_and(|c| c.killed().is_some()))
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

/// Sends `sig` (1..=64) to the task behind `target`.
pub fn send(target: &Control, sig: i32) {
    if sig == libc::SIGKILL {
        target.kill(sig);
        return;
    }
    let handler = target.sigactions.lock().unwrap()[sig as usize - 1][0];
    match handler {
        SIG_IGN => {}
        SIG_DFL if default_ignored(sig) => {}
        SIG_DFL if stops(sig) => {
            log::warn!("signal {sig}: stopping a process is not implemented yet; ignored");
        }
        SIG_DFL => target.kill(sig),
        _ => {
            target.pending.fetch_or(1 << (sig - 1), Ordering::SeqCst);
            log::warn!("signal {sig} sent to a guest handler: delivery to handlers is not implemented yet; left pending");
        }
    }
}
