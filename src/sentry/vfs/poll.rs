//! Readiness for poll/select: what each kind of file reports, and one
//! sandbox-wide wait queue that state changes (pipe reads and writes,
//! closes, signals) kick, so pollers sleep instead of spinning.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

pub const POLLIN: u16 = 0x1;
pub const POLLPRI: u16 = 0x2;
pub const POLLOUT: u16 = 0x4;
pub const POLLERR: u16 = 0x8;
pub const POLLHUP: u16 = 0x10;
pub const POLLNVAL: u16 = 0x20;
pub const POLLRDNORM: u16 = 0x40;
pub const POLLWRNORM: u16 = 0x100;

/// A generation counter with a condition variable.
pub struct WaitQueue {
    generation: Mutex<u64>,
    cond: Condvar,
}

/// The wait queue of everything pollable in the sentry.
pub static EVENTS: WaitQueue = WaitQueue {
    generation: Mutex::new(0),
    cond: Condvar::new(),
};

impl WaitQueue {
    /// Something changed: wake every waiter.
    pub fn kick(&self) {
        *self.generation.lock().unwrap() += 1;
        self.cond.notify_all();
    }

    /// The current generation, to wait for a change after it.
    pub fn generation(&self) -> u64 {
        *self.generation.lock().unwrap()
    }

    /// Waits until the generation moves past `seen` or `max` elapses.
    pub fn wait(&self, seen: u64, max: Duration) {
        let g = self.generation.lock().unwrap();
        if *g != seen {
            return;
        }
        let _ = self.cond.wait_timeout(g, max).unwrap();
    }
}

/// Readiness of a host fd the sentry holds (stdio), without blocking.
pub fn host_ready(fd: std::os::fd::BorrowedFd<'_>, want: u16) -> u16 {
    let mut pfd = [nix::poll::PollFd::new(
        fd,
        nix::poll::PollFlags::from_bits_truncate(want as i16),
    )];
    match nix::poll::poll(&mut pfd, nix::poll::PollTimeout::ZERO) {
        Ok(n) if n > 0 => pfd[0].revents().map_or(0, |r| r.bits() as u16),
        _ => 0,
    }
}
