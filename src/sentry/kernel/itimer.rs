//! Timers: ITIMER_REAL / alarm(2) and POSIX timers (timer_create). One
//! sandbox-wide service thread sleeps until the earliest expiry and fires
//! what is due; re-arming or disarming a timer bumps its generation, so a
//! stale entry in the service's queue does nothing.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use super::process::Control;
use super::siginfo::SigInfo;

/// What a timer does when it expires: sends its signal. Returns false when
/// the signal could not be queued (it is still pending): an overrun.
pub type Fire = Box<dyn Fn(i32) -> bool + Send + Sync>;

struct State {
    generation: u64,
    /// Next expiry and the reload interval (zero: one shot).
    next: Option<Instant>,
    interval: Duration,
    /// Expiries not signalled since the last signal that was queued.
    overrun: i32,
    /// The overrun count the last queued signal carried (timer_getoverrun).
    last_overrun: i32,
    fire: Fire,
}

/// One timer.
pub struct Timer {
    state: Arc<Mutex<State>>,
}

impl Timer {
    pub fn new(fire: Fire) -> Timer {
        Timer {
            state: Arc::new(Mutex::new(State {
                generation: 0,
                next: None,
                interval: Duration::ZERO,
                overrun: 0,
                last_overrun: 0,
                fire,
            })),
        }
    }

    /// Time left and interval (zeros when disarmed).
    pub fn get(&self) -> (Duration, Duration) {
        let st = self.state.lock().unwrap();
        let left = st.next.map_or(Duration::ZERO, |n| {
            n.saturating_duration_since(Instant::now())
        });
        (left, st.interval)
    }

    /// Arms the timer to fire at `at` (disarms for None) and every
    /// `interval` after that; returns the previous (left, interval).
    pub fn set(&self, at: Option<Instant>, interval: Duration) -> (Duration, Duration) {
        let old = self.get();
        let mut st = self.state.lock().unwrap();
        st.generation += 1;
        st.interval = interval;
        st.next = at;
        st.overrun = 0;
        if let Some(at) = at {
            service().schedule(at, Arc::downgrade(&self.state), st.generation);
        }
        old
    }

    /// The overrun count of the last expiry signalled.
    pub fn last_overrun(&self) -> i32 {
        self.state.lock().unwrap().last_overrun
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        // Entries in the service's queue hold only a weak reference.
        self.state.lock().unwrap().generation += 1;
    }
}

/// A process's ITIMER_REAL: SIGALRM to the process.
pub struct RealTimer(Timer);

impl RealTimer {
    pub fn new(target: &Arc<Control>) -> RealTimer {
        let target = Arc::downgrade(target);
        RealTimer(Timer::new(Box::new(move |_| match target.upgrade() {
            Some(c) => super::signal::send_info(&c, SigInfo::kernel(libc::SIGALRM)),
            None => true,
        })))
    }

    pub fn get(&self) -> (Duration, Duration) {
        self.0.get()
    }

    /// Arms the timer to fire after `value` (disarms for zero) and every
    /// `interval` after that; returns the previous setting.
    pub fn set(&self, value: Duration, interval: Duration) -> (Duration, Duration) {
        let at = (!value.is_zero()).then(|| Instant::now() + value);
        self.0.set(at, interval)
    }
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Due {
    at: Instant,
    seq: u64,
}

struct Entry {
    state: Weak<Mutex<State>>,
    generation: u64,
}

#[derive(Default)]
struct Queue {
    heap: BinaryHeap<Reverse<Due>>,
    entries: std::collections::HashMap<u64, Entry>,
    seq: u64,
    started: bool,
}

/// The service thread's queue of expiries.
struct Service {
    queue: Mutex<Queue>,
    changed: Condvar,
}

fn service() -> &'static Service {
    static SERVICE: OnceLock<Service> = OnceLock::new();
    SERVICE.get_or_init(|| Service {
        queue: Mutex::new(Queue::default()),
        changed: Condvar::new(),
    })
}

impl Service {
    fn schedule(&'static self, at: Instant, state: Weak<Mutex<State>>, generation: u64) {
        let mut q = self.queue.lock().unwrap();
        q.seq += 1;
        let seq = q.seq;
        q.heap.push(Reverse(Due { at, seq }));
        q.entries.insert(seq, Entry { state, generation });
        if !q.started {
            let spawned = std::thread::Builder::new()
                .name("timers".into())
                .spawn(move || self.run());
            match spawned {
                Ok(_) => q.started = true,
                Err(e) => log::error!("cannot start the timer thread ({e}); timers will not fire"),
            }
        }
        drop(q);
        self.changed.notify_all();
    }

    fn run(&'static self) {
        let mut q = self.queue.lock().unwrap();
        loop {
            let now = Instant::now();
            let next = q.heap.peek().map(|Reverse(d)| d.at);
            match next {
                Some(at) if at <= now => {
                    let Reverse(due) = q.heap.pop().unwrap();
                    let entry = q.entries.remove(&due.seq);
                    drop(q);
                    if let Some(e) = entry {
                        self.expire(e, due.at);
                    }
                    q = self.queue.lock().unwrap();
                }
                Some(at) => q = self.changed.wait_timeout(q, at - now).unwrap().0,
                None => q = self.changed.wait(q).unwrap(),
            }
        }
    }

    /// Fires a due timer if it was not re-armed since, and schedules its
    /// next period.
    fn expire(&'static self, e: Entry, at: Instant) {
        let Some(state) = e.state.upgrade() else {
            return;
        };
        let mut st = state.lock().unwrap();
        if st.generation != e.generation || st.next != Some(at) {
            return;
        }
        // Periods that passed while nothing ran count as overruns.
        let mut missed = 0;
        st.next = if st.interval.is_zero() {
            None
        } else {
            let mut next = at + st.interval;
            let now = Instant::now();
            while next <= now {
                next += st.interval;
                missed += 1;
            }
            Some(next)
        };
        st.overrun += missed;
        let overrun = st.overrun;
        if (st.fire)(overrun) {
            st.last_overrun = overrun;
            st.overrun = 0;
        } else {
            st.overrun += 1;
        }
        if let Some(next) = st.next {
            let generation = st.generation;
            drop(st);
            self.schedule(next, Arc::downgrade(&state), generation);
        }
    }
}
