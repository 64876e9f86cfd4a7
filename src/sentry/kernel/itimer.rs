//! The real-time interval timer of a process (alarm(2), ITIMER_REAL): a
//! host thread sleeps until expiry and sends SIGALRM; re-arming or
//! disarming bumps a generation so a stale sleeper does nothing.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::process::Control;

#[derive(Default)]
struct State {
    generation: u64,
    /// Next expiry and the reload interval (zero: one shot).
    next: Option<Instant>,
    interval: Duration,
}

/// A process's ITIMER_REAL.
#[derive(Default)]
pub struct RealTimer {
    state: Arc<Mutex<State>>,
}

impl RealTimer {
    /// Time left and interval (zeros when disarmed).
    pub fn get(&self) -> (Duration, Duration) {
        let st = self.state.lock().unwrap();
        let left = st.next.map_or(Duration::ZERO, |n| {
            n.saturating_duration_since(Instant::now())
        });
        (left, st.interval)
    }

    /// Arms the timer to fire after `value` (disarms for zero) and every
    /// `interval` after that; returns the previous setting.
    pub fn set(
        &self,
        target: &Arc<Control>,
        value: Duration,
        interval: Duration,
    ) -> (Duration, Duration) {
        let old = self.get();
        let mut st = self.state.lock().unwrap();
        st.generation += 1;
        st.interval = interval;
        st.next = (!value.is_zero()).then(|| Instant::now() + value);
        if let Some(first) = st.next {
            let generation = st.generation;
            let state = self.state.clone();
            let target = Arc::downgrade(target);
            let spawned = std::thread::Builder::new()
                .name("itimer".into())
                .spawn(move || run(state, target, generation, first));
            if spawned.is_err() {
                log::error!("cannot start a timer thread; the alarm will not fire");
            }
        }
        old
    }
}

fn run(state: Arc<Mutex<State>>, target: Weak<Control>, generation: u64, mut at: Instant) {
    loop {
        std::thread::sleep(at.saturating_duration_since(Instant::now()));
        let mut st = state.lock().unwrap();
        if st.generation != generation {
            return;
        }
        let Some(control) = target.upgrade() else {
            return;
        };
        if st.interval.is_zero() {
            st.next = None;
        } else {
            at += st.interval;
            st.next = Some(at);
        }
        let again = st.next.is_some();
        drop(st);
        super::signal::send(&control, libc::SIGALRM);
        if !again {
            return;
        }
    }
}
