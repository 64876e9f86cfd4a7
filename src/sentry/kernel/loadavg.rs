//! The load average (/proc/loadavg, sysinfo(2)'s `loads`): Linux's
//! exponentially decayed averages over 1, 5 and 15 minutes of the tasks
//! that run or want to, sampled every 5 s (`kernel/sched/loadavg.c`, with
//! its fixed-point constants and rounding).
//!
//! A task counts as *active* from its start to its end, except while it
//! is blocked in a wait ([`blocked`]: sleeps, futexes, wait4, poll,
//! pipes, locks, a job-control stop, a paused pod). So a thread running
//! guest code, waiting for one of the guest's CPUs, or in a syscall the
//! sentry is working on counts, as Linux counts R (and D) tasks.
//!
//! No thread samples: every change of the active count first folds in
//! the 5 s periods that ended since the last one (the count was constant
//! over them), and so does every read. Periods missed in one go are
//! folded with Linux's `calc_load_n`.
//!
//! Lock order: `avenrun` is a leaf.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Bits of fraction in a load (FSHIFT).
pub const FSHIFT: u32 = 11;
/// 1.0 as a load (FIXED_1).
pub const FIXED_1: u64 = 1 << FSHIFT;
/// 1/exp(5 s / 1 min), 1/exp(5 s / 5 min), 1/exp(5 s / 15 min) as loads
/// (EXP_1, EXP_5, EXP_15).
const EXP: [u64; 3] = [1884, 2014, 2037];
/// The sampling period (LOAD_FREQ).
pub const LOAD_FREQ: Duration = Duration::from_secs(5);

/// The sandbox's load average and task counts.
pub struct LoadAvg {
    boot: Instant,
    /// Tasks not blocked in a wait.
    active: AtomicI64,
    /// Live tasks.
    tasks: AtomicI64,
    /// When the next sample is due, ns since boot (a copy of
    /// `avenrun.1`, read without the lock).
    next: AtomicU64,
    /// The three averages (fixed point) and when the next sample is due.
    avenrun: Mutex<([u64; 3], u64)>,
}

impl LoadAvg {
    /// No load; the first sample is due one period after `boot`.
    pub fn new(boot: Instant) -> Arc<LoadAvg> {
        let first = LOAD_FREQ.as_nanos() as u64;
        Arc::new(LoadAvg {
            boot,
            active: AtomicI64::new(0),
            tasks: AtomicI64::new(0),
            next: AtomicU64::new(first),
            avenrun: Mutex::new(([0; 3], first)),
        })
    }

    /// Folds in the periods that ended by now with the active count as
    /// it has been since the last change.
    fn catch_up(&self) {
        let now = self.boot.elapsed().as_nanos() as u64;
        if now < self.next.load(Ordering::Acquire) {
            return;
        }
        let mut st = self.avenrun.lock().unwrap();
        if now < st.1 {
            return;
        }
        let freq = LOAD_FREQ.as_nanos() as u64;
        let periods = (now - st.1) / freq + 1;
        let active = self.active.load(Ordering::SeqCst).max(0) as u64 * FIXED_1;
        for (avg, exp) in st.0.iter_mut().zip(EXP) {
            *avg = calc_load_n(*avg, exp, active, periods);
        }
        st.1 += periods * freq;
        self.next.store(st.1, Ordering::Release);
    }

    fn change(&self, active: i64, tasks: i64) {
        self.catch_up();
        self.active.fetch_add(active, Ordering::SeqCst);
        self.tasks.fetch_add(tasks, Ordering::SeqCst);
    }

    /// The 1, 5 and 15 minute averages now (fixed point, FSHIFT bits).
    pub fn averages(&self) -> [u64; 3] {
        self.catch_up();
        self.avenrun.lock().unwrap().0
    }

    /// Tasks running or runnable now (the caller included).
    pub fn active(&self) -> usize {
        self.active.load(Ordering::SeqCst).max(0) as usize
    }

    /// Live tasks of the sandbox.
    pub fn tasks(&self) -> usize {
        self.tasks.load(Ordering::SeqCst).max(0) as usize
    }
}

/// One step of the average: `load` decayed by `exp`, plus `active` for
/// the rest, rounded up while the load rises (Linux's `calc_load`).
fn calc_load(load: u64, exp: u64, active: u64) -> u64 {
    let mut new = load * exp + active * (FIXED_1 - exp);
    if active >= load {
        new += FIXED_1 - 1;
    }
    new / FIXED_1
}

/// `x` (fixed point, `frac` bits) to the power `n`, rounding each
/// product (Linux's `fixed_power_int`).
fn fixed_power(mut x: u64, frac: u32, mut n: u64) -> u64 {
    let mut result = 1u64 << frac;
    while n > 0 {
        if n & 1 == 1 {
            result = (result * x + (1 << (frac - 1))) >> frac;
        }
        n >>= 1;
        x = (x * x + (1 << (frac - 1))) >> frac;
    }
    result
}

/// `n` steps of [`calc_load`] with the same `active` (Linux's
/// `calc_load_n`; one step is exactly `calc_load`).
fn calc_load_n(load: u64, exp: u64, active: u64, n: u64) -> u64 {
    calc_load(load, fixed_power(exp, FSHIFT, n), active)
}

/// A load as /proc/loadavg prints it: "1.05" (rounded to 1/100).
pub fn format(load: u64) -> String {
    let x = load + FIXED_1 / 200;
    format!(
        "{}.{:02}",
        x >> FSHIFT,
        ((x & (FIXED_1 - 1)) * 100) >> FSHIFT
    )
}

thread_local! {
    /// The load of the sandbox whose task this host thread runs.
    static LOAD: RefCell<Option<Arc<LoadAvg>>> = const { RefCell::new(None) };
    /// Nested [`blocked`] guards on this thread.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// A task counted in `load` while this lives; its host thread's waits
/// ([`blocked`]) take it out while they last.
pub struct Counted(Arc<LoadAvg>);

impl Counted {
    /// Counts the task of the calling host thread.
    pub fn new(load: &Arc<LoadAvg>) -> Counted {
        load.change(1, 1);
        LOAD.with(|l| *l.borrow_mut() = Some(load.clone()));
        Counted(load.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        LOAD.with(|l| *l.borrow_mut() = None);
        let blocked = DEPTH.with(|d| d.get()) > 0;
        self.0.change(if blocked { 0 } else { -1 }, -1);
    }
}

/// Takes the calling task out of the active count until the guard
/// drops: held across a wait for something else to happen. Nested
/// guards count once; on a thread that runs no task it does nothing.
#[must_use = "the task counts as blocked only while the guard lives"]
pub struct Blocked(());

/// See [`Blocked`].
pub fn blocked() -> Blocked {
    if DEPTH.with(|d| d.replace(d.get() + 1)) == 0 {
        LOAD.with(|l| l.borrow().as_ref().map(|l| l.change(-1, 0)));
    }
    Blocked(())
}

impl Drop for Blocked {
    fn drop(&mut self) {
        if DEPTH.with(|d| d.replace(d.get() - 1)) == 1 {
            LOAD.with(|l| l.borrow().as_ref().map(|l| l.change(1, 0)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two busy tasks for `periods` samples from no load.
    fn busy(periods: u64) -> u64 {
        (0..periods).fold(0, |l, _| calc_load(l, EXP[0], 2 * FIXED_1))
    }

    #[test]
    fn calc_load_two_busy_tasks_rise_as_on_linux() {
        // Linux: 328 after one period, 630 after two ("0.31").
        assert_eq!(busy(1), 328);
        assert_eq!(busy(2), 630);
        assert_eq!(format(busy(2)), "0.31");
        // A minute of two busy tasks: 2 * (1 - 1/e) = 1.26.
        assert_eq!(format(busy(12)), "1.27");
    }

    #[test]
    fn calc_load_n_matches_n_single_steps_within_rounding() {
        let start = 3 * FIXED_1;
        let stepwise = (0..7).fold(start, |l, _| calc_load(l, EXP[1], 0));
        let at_once = calc_load_n(start, EXP[1], 0, 7);
        // Within 1/100 of a task: the power's own rounding, as on Linux.
        assert!(
            stepwise.abs_diff(at_once) <= FIXED_1 / 100,
            "{stepwise} {at_once}"
        );
        assert_eq!(
            calc_load_n(start, EXP[1], 0, 1),
            calc_load(start, EXP[1], 0)
        );
    }

    #[test]
    fn format_rounds_to_hundredths() {
        assert_eq!(format(0), "0.00");
        assert_eq!(format(FIXED_1), "1.00");
        assert_eq!(format(FIXED_1 / 2), "0.50");
        assert_eq!(format(FIXED_1 * 3 / 100), "0.03");
    }

    #[test]
    fn counted_tasks_leave_the_active_count_while_blocked() {
        let load = LoadAvg::new(Instant::now());
        std::thread::scope(|s| {
            s.spawn(|| {
                let _task = Counted::new(&load);
                assert_eq!((load.active(), load.tasks()), (1, 1));
                {
                    let _outer = blocked();
                    let _inner = blocked();
                    assert_eq!((load.active(), load.tasks()), (0, 1));
                }
                assert_eq!(load.active(), 1);
            });
        });
        assert_eq!((load.active(), load.tasks()), (0, 0));
    }

    #[test]
    fn load_folds_the_periods_that_passed() {
        let load = LoadAvg::new(Instant::now() - LOAD_FREQ * 2 - Duration::from_millis(1));
        load.active.store(2, Ordering::SeqCst);
        // Two periods ended with two active tasks, folded at once.
        let [one, ..] = load.averages();
        assert_eq!(one, calc_load_n(0, EXP[0], 2 * FIXED_1, 2));
        assert_eq!(format(one), "0.31");
    }
}
