//! The guest's CPUs (`resources.cpus`): at most that many guest threads
//! execute guest code at the same time, on every platform.
//!
//! A task takes a slot just before `Context::switch` and gives it back as
//! soon as the switch returns, so a thread in a syscall (or blocked in
//! one) holds none. Threads wait for a slot in arrival order, sleeping on
//! a condition variable (never spinning). A thread that keeps its slot for
//! a whole time slice while others wait is interrupted, as a timer tick
//! would preempt it: it leaves guest mode, goes round the task loop (where
//! pending signals are taken) and queues again behind the waiters. So N
//! busy threads on M < N CPUs share them round robin, and a guest spin
//! lock never waits forever for a holder that cannot run.
//!
//! [`CpuGate::cpus`] is the one place the count lives: sched_getaffinity,
//! /proc/cpuinfo, /proc/stat, get_nprocs's /sys files all ask it.
//!
//! Lock order: `state` is a leaf (interrupting a holder takes no lock).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::Interrupter;

/// How long a thread runs guest code while others wait before it is
/// preempted.
pub const TIME_SLICE: Duration = Duration::from_millis(10);

/// Counts the threads in guest code against the guest's CPU count.
pub struct CpuGate {
    cpus: usize,
    state: Mutex<State>,
    freed: Condvar,
    next_ticket: AtomicU64,
}

/// A thread running guest code.
struct Holder {
    ticket: u64,
    since: Instant,
    interrupter: Arc<dyn Interrupter>,
    preempted: bool,
}

#[derive(Default)]
struct State {
    running: Vec<Holder>,
    /// Tickets of the threads waiting for a slot, oldest first.
    waiting: VecDeque<u64>,
}

/// A slot held by one thread; [`CpuGate::leave`] gives it back.
#[must_use = "a slot must be given back with CpuGate::leave"]
pub struct Slot(u64);

impl CpuGate {
    /// A gate for `cpus` CPUs (at least one).
    pub fn new(cpus: usize) -> CpuGate {
        CpuGate {
            cpus: cpus.max(1),
            state: Mutex::default(),
            freed: Condvar::new(),
            next_ticket: AtomicU64::new(0),
        }
    }

    /// The number of CPUs the guest sees and may use.
    pub fn cpus(&self) -> usize {
        self.cpus
    }

    /// Waits for a free CPU for the thread whose context `interrupter`
    /// stops. None when `give_up` says so while waiting (e.g. the task was
    /// killed); it is asked at least every time slice.
    pub fn enter(
        &self,
        interrupter: &Arc<dyn Interrupter>,
        give_up: impl Fn() -> bool,
    ) -> Option<Slot> {
        let ticket = self.next_ticket.fetch_add(1, Ordering::Relaxed);
        let mut st = self.state.lock().unwrap();
        if st.waiting.is_empty() && st.running.len() < self.cpus {
            return Some(self.take(&mut st, ticket, interrupter));
        }
        st.waiting.push_back(ticket);
        loop {
            if st.running.len() < self.cpus && st.waiting.front() == Some(&ticket) {
                st.waiting.pop_front();
                let slot = self.take(&mut st, ticket, interrupter);
                // The next waiter may find a slot free too.
                self.freed.notify_all();
                return Some(slot);
            }
            if give_up() {
                st.waiting.retain(|&t| t != ticket);
                self.freed.notify_all();
                return None;
            }
            if st.waiting.front() == Some(&ticket) {
                Self::preempt_longest(&mut st);
            }
            st = self.freed.wait_timeout(st, TIME_SLICE).unwrap().0;
        }
    }

    fn take(&self, st: &mut State, ticket: u64, interrupter: &Arc<dyn Interrupter>) -> Slot {
        st.running.push(Holder {
            ticket,
            since: Instant::now(),
            interrupter: interrupter.clone(),
            preempted: false,
        });
        Slot(ticket)
    }

    /// Interrupts the thread that has run longest, once its time slice
    /// is over.
    fn preempt_longest(st: &mut State) {
        let oldest = st
            .running
            .iter_mut()
            .filter(|h| !h.preempted)
            .min_by_key(|h| h.since);
        if let Some(h) = oldest {
            if h.since.elapsed() >= TIME_SLICE {
                h.preempted = true;
                h.interrupter.interrupt();
            }
        }
    }

    /// After the switch returned.
    pub fn leave(&self, slot: Slot) {
        let mut st = self.state.lock().unwrap();
        st.running.retain(|h| h.ticket != slot.0);
        if !st.waiting.is_empty() {
            self.freed.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize};

    #[derive(Default)]
    struct Flag(AtomicBool);

    impl Interrupter for Flag {
        fn interrupt(&self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    fn flag() -> (Arc<Flag>, Arc<dyn Interrupter>) {
        let f = Arc::new(Flag::default());
        (f.clone(), f as Arc<dyn Interrupter>)
    }

    #[test]
    fn gate_never_admits_more_than_its_cpus() {
        let gate = Arc::new(CpuGate::new(2));
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..6)
            .map(|_| {
                let (gate, inside, most) = (gate.clone(), inside.clone(), most.clone());
                std::thread::spawn(move || {
                    let (_, i) = flag();
                    for _ in 0..50 {
                        let slot = gate.enter(&i, || false).unwrap();
                        let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(n, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_micros(200));
                        inside.fetch_sub(1, Ordering::SeqCst);
                        gate.leave(slot);
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn gate_preempts_a_holder_after_its_time_slice() {
        let gate = Arc::new(CpuGate::new(1));
        let (held, i) = flag();
        let slot = gate.enter(&i, || false).unwrap();
        let g = gate.clone();
        let waiter = std::thread::spawn(move || {
            let (_, j) = flag();
            let s = g.enter(&j, || false).unwrap();
            g.leave(s);
        });
        let start = Instant::now();
        while !held.0.load(Ordering::SeqCst) {
            assert!(start.elapsed() < Duration::from_secs(5), "never preempted");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(start.elapsed() >= TIME_SLICE / 2);
        gate.leave(slot);
        waiter.join().unwrap();
    }

    #[test]
    fn gate_waiter_gives_up_when_asked() {
        let gate = CpuGate::new(1);
        let (_, i) = flag();
        let slot = gate.enter(&i, || false).unwrap();
        assert!(gate.enter(&i, || true).is_none());
        gate.leave(slot);
        let again = gate.enter(&i, || false).unwrap();
        gate.leave(again);
    }
}
