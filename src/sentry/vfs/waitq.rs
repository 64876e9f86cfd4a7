//! Wait queues: how a file tells the tasks and epoll instances interested
//! in it that its readiness changed.
//!
//! A file with state that changes (a pipe, an eventfd, an epoll instance)
//! owns a [`WaitQueue`]. Whoever wants to hear about it registers a
//! [`Listener`] for a set of events and keeps the returned [`Watch`]; the
//! registration ends when the watch is dropped. A sleeping task listens
//! with its [`Waiter`] (a generation counter and a condition variable,
//! which signals to the task also wake); an epoll instance listens with one
//! hook per watched file, which puts the file on its ready list.
//!
//! Lock order: a queue's list is a leaf. `notify` copies the listeners out
//! and calls them with no lock held, so a listener may lock what it likes
//! (an epoll instance's state, then its own queue). Files therefore call
//! `notify` after releasing their own state lock.

use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use crate::abi::{Errno, SysResult};

/// Something told of readiness changes: `events` are the poll bits that
/// may have become true (POLLIN, POLLOUT, POLLHUP...).
pub trait Listener: Send + Sync {
    fn notify(&self, events: u16);
}

struct Entry {
    id: u64,
    mask: u16,
    listener: Weak<dyn Listener>,
}

/// The listeners of one file.
#[derive(Default)]
pub struct WaitQueue {
    entries: Mutex<Vec<Entry>>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl WaitQueue {
    pub fn new() -> Arc<WaitQueue> {
        Arc::new(WaitQueue::default())
    }

    /// Registers `listener` for `mask` (POLLERR and POLLHUP always
    /// included) until the returned watch is dropped.
    pub fn watch(self: &Arc<Self>, listener: Weak<dyn Listener>, mask: u16) -> Watch {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let mask = mask | super::poll::POLLERR | super::poll::POLLHUP;
        self.entries
            .lock()
            .unwrap()
            .push(Entry { id, mask, listener });
        Watch {
            queue: Arc::downgrade(self),
            id,
        }
    }

    /// Tells every listener whose mask meets `events`. Call it with no
    /// lock of the file held.
    pub fn notify(&self, events: u16) {
        let hit: Vec<Arc<dyn Listener>> = {
            let mut entries = self.entries.lock().unwrap();
            entries.retain(|e| e.listener.strong_count() > 0);
            entries
                .iter()
                .filter(|e| e.mask & events != 0)
                .filter_map(|e| e.listener.upgrade())
                .collect()
        };
        for l in hit {
            l.notify(events);
        }
    }

    fn remove(&self, id: u64) {
        self.entries.lock().unwrap().retain(|e| e.id != id);
    }

    /// How many listeners are registered (for tests).
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A registration on a queue; dropping it unregisters.
pub struct Watch {
    queue: Weak<WaitQueue>,
    id: u64,
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(q) = self.queue.upgrade() {
            q.remove(self.id);
        }
    }
}

/// What a task sleeps on: every notification bumps the generation, so a
/// waiter that read the generation before checking its condition never
/// misses a change made after the check.
#[derive(Default)]
pub struct Waiter {
    generation: Mutex<u64>,
    cond: Condvar,
    /// An eventfd that `wake` writes while the task sleeps in a host
    /// poll (`vfs/hostfd.rs`), made the first time it does.
    host: OnceLock<OwnedFd>,
    /// Set while the task sleeps in that poll.
    in_host_poll: AtomicBool,
}

impl Waiter {
    pub fn new() -> Arc<Waiter> {
        Arc::new(Waiter::default())
    }

    /// Something changed: wake the sleeper.
    pub fn wake(&self) {
        *self.generation.lock().unwrap() += 1;
        self.cond.notify_all();
        if self.in_host_poll.load(Ordering::SeqCst) {
            if let Some(fd) = self.host.get() {
                let _ = nix::unistd::write(fd, &1u64.to_ne_bytes());
            }
        }
    }

    /// The eventfd `wake` writes while [`Waiter::enter_host_poll`] holds,
    /// made now if it was not yet.
    pub fn host_fd(&self) -> SysResult<BorrowedFd<'_>> {
        if let Some(fd) = self.host.get() {
            return Ok(fd.as_fd());
        }
        // SAFETY: eventfd has no memory effects; the new fd is ours.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if raw < 0 {
            return Err(Errno::last());
        }
        // SAFETY: a new fd nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(self.host.get_or_init(|| fd).as_fd())
    }

    /// Marks the task asleep in a host poll (or awake again): from now
    /// on `wake` also writes the eventfd.
    pub fn set_in_host_poll(&self, on: bool) {
        self.in_host_poll.store(on, Ordering::SeqCst);
    }

    /// The current generation, to wait for a change after it.
    pub fn generation(&self) -> u64 {
        *self.generation.lock().unwrap()
    }

    /// Sleeps until the generation moves past `seen` or `max` elapses.
    pub fn wait(&self, seen: u64, max: Duration) {
        let g = self.generation.lock().unwrap();
        if *g != seen {
            return;
        }
        let _blocked = crate::sentry::kernel::loadavg::blocked();
        let _ = self.cond.wait_timeout(g, max).unwrap();
    }
}

impl Listener for Waiter {
    fn notify(&self, _events: u16) {
        self.wake();
    }
}

/// Longest sleep of a blocked operation between checks for a kill.
const RECHECK_KILL: Duration = Duration::from_millis(100);

/// Blocks the calling task until `attempt` gives an answer (Some), waking
/// whenever `queue` reports one of `mask`; EINTR when a signal or kill
/// arrives first. `interrupted` tells whether the task must stop waiting;
/// `waiter` is the task's own (signals wake it).
pub fn block_on<R>(
    queue: &Arc<WaitQueue>,
    mask: u16,
    waiter: &Arc<Waiter>,
    interrupted: impl Fn() -> bool,
    attempt: impl FnMut() -> Option<SysResult<R>>,
) -> SysResult<R> {
    block_on_until(queue, mask, waiter, interrupted, None, attempt)
}

/// [`block_on`] that also gives up with ETIMEDOUT at `deadline`.
pub fn block_on_until<R>(
    queue: &Arc<WaitQueue>,
    mask: u16,
    waiter: &Arc<Waiter>,
    interrupted: impl Fn() -> bool,
    deadline: Option<Instant>,
    mut attempt: impl FnMut() -> Option<SysResult<R>>,
) -> SysResult<R> {
    let weak: Weak<dyn Listener> = Arc::downgrade(waiter) as Weak<dyn Listener>;
    let _watch = queue.watch(weak, mask);
    loop {
        let seen = waiter.generation();
        if let Some(r) = attempt() {
            return r;
        }
        if interrupted() {
            return Err(Errno::EINTR);
        }
        let max = match deadline {
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => left.min(RECHECK_KILL),
                _ => return Err(Errno::ETIMEDOUT),
            },
            None => RECHECK_KILL,
        };
        waiter.wait(seen, max);
    }
}

/// [`block_on`] for the task running on this thread: it sleeps on its own
/// waiter and gives up with EINTR on a signal or kill.
pub fn block_current<R>(
    queue: &Arc<WaitQueue>,
    mask: u16,
    attempt: impl FnMut() -> Option<SysResult<R>>,
) -> SysResult<R> {
    block_current_until(queue, mask, None, attempt)
}

/// [`block_current`] that also gives up with ETIMEDOUT at `deadline`.
pub fn block_current_until<R>(
    queue: &Arc<WaitQueue>,
    mask: u16,
    deadline: Option<Instant>,
    attempt: impl FnMut() -> Option<SysResult<R>>,
) -> SysResult<R> {
    use crate::sentry::kernel::signal::current_interrupted;
    let waiter = current_or_own_waiter();
    block_on_until(queue, mask, &waiter, current_interrupted, deadline, attempt)
}

/// [`block_on`] for the calling thread: its task's waiter (a thread that
/// runs no task gets one of its own), asking `interrupted` when to give
/// up (the pipe and lock tables take theirs from their creator).
pub fn block_as_current<R>(
    queue: &Arc<WaitQueue>,
    mask: u16,
    interrupted: impl Fn() -> bool,
    attempt: impl FnMut() -> Option<SysResult<R>>,
) -> SysResult<R> {
    block_on(queue, mask, &current_or_own_waiter(), interrupted, attempt)
}

fn current_or_own_waiter() -> Arc<Waiter> {
    crate::sentry::kernel::signal::current_waiter().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sentry::vfs::poll::{POLLIN, POLLOUT};

    struct Count(Mutex<Vec<u16>>);

    impl Listener for Count {
        fn notify(&self, events: u16) {
            self.0.lock().unwrap().push(events);
        }
    }

    #[test]
    fn waitqueue_notify_reaches_matching_listeners_only() {
        let q = WaitQueue::new();
        let reads = Arc::new(Count(Mutex::new(vec![])));
        let writes = Arc::new(Count(Mutex::new(vec![])));
        let _a = q.watch(Arc::downgrade(&reads) as Weak<dyn Listener>, POLLIN);
        let _b = q.watch(Arc::downgrade(&writes) as Weak<dyn Listener>, POLLOUT);
        q.notify(POLLIN);
        assert_eq!(*reads.0.lock().unwrap(), vec![POLLIN]);
        assert!(writes.0.lock().unwrap().is_empty());
    }

    #[test]
    fn waitqueue_dropped_watch_unregisters() {
        let q = WaitQueue::new();
        let l = Arc::new(Count(Mutex::new(vec![])));
        let w = q.watch(Arc::downgrade(&l) as Weak<dyn Listener>, POLLIN);
        assert_eq!(q.len(), 1);
        drop(w);
        assert!(q.is_empty());
        q.notify(POLLIN);
        assert!(l.0.lock().unwrap().is_empty());
    }

    #[test]
    fn waiter_wakes_blocked_thread_on_notify() {
        let q = WaitQueue::new();
        let w = Waiter::new();
        let ready = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (q2, r2) = (q.clone(), ready.clone());
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            r2.store(true, Ordering::SeqCst);
            q2.notify(POLLIN);
        });
        let start = std::time::Instant::now();
        let r = block_on(
            &q,
            POLLIN,
            &w,
            || false,
            || ready.load(Ordering::SeqCst).then_some(Ok(7)),
        );
        assert_eq!(r, Ok(7));
        assert!(start.elapsed() < RECHECK_KILL);
        t.join().unwrap();
    }
}
