//! timerfd: a timer whose expirations are counted and read as a file.
//! The timer itself is an `itimer::Timer` (the sandbox's timer thread
//! fires it); each expiry (and each period missed) adds to the count, and
//! a read returns the count and resets it, blocking while it is zero.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::file::FileOps;
use super::poll::{POLLIN, POLLRDNORM};
use super::waitq::{block_current, WaitQueue};
use crate::abi::types::Stat;
use crate::abi::{Errno, SysResult};
use crate::sentry::kernel::itimer::Timer;

pub struct TimerFd {
    /// The clock settings are measured on (CLOCK_REALTIME, ...).
    pub clock: i32,
    ticks: Arc<Mutex<u64>>,
    timer: Timer,
    queue: Arc<WaitQueue>,
    ino: u64,
}

impl TimerFd {
    pub fn new(clock: i32) -> Arc<TimerFd> {
        let ticks = Arc::new(Mutex::new(0u64));
        let queue = WaitQueue::new();
        let (t, q) = (ticks.clone(), queue.clone());
        let timer = Timer::new(Box::new(move |overrun| {
            *t.lock().unwrap() += 1 + overrun.max(0) as u64;
            q.notify(POLLIN | POLLRDNORM);
            true
        }));
        Arc::new(TimerFd {
            clock,
            ticks,
            timer,
            queue,
            ino: super::anon::next_ino(),
        })
    }

    /// Arms the timer for `at` (disarms for None), then every `interval`;
    /// expirations not read yet are forgotten. Returns the previous
    /// (time left, interval).
    pub fn set(&self, at: Option<Instant>, interval: Duration) -> (Duration, Duration) {
        // Disarm first (no old expiry can count after this), forget the
        // unread count, then arm: an expiry already due (an absolute time
        // in the past) may fire at once and must not be forgotten.
        let old = self.timer.set(None, Duration::ZERO);
        *self.ticks.lock().unwrap() = 0;
        self.timer.set(at, interval);
        old
    }

    /// (time left, interval); zeros when disarmed.
    pub fn get(&self) -> (Duration, Duration) {
        self.timer.get()
    }

    fn take(&self) -> Option<u64> {
        let mut t = self.ticks.lock().unwrap();
        (*t > 0).then(|| std::mem::take(&mut *t))
    }
}

impl FileOps for TimerFd {
    fn read_stream(&self, buf: &mut [u8], nonblock: bool) -> SysResult<usize> {
        if buf.len() < 8 {
            return Err(Errno::EINVAL);
        }
        let n = block_current(&self.queue, POLLIN, || match self.take() {
            Some(n) => Some(Ok(n)),
            None if nonblock => Some(Err(Errno::EAGAIN)),
            None => None,
        })?;
        buf[..8].copy_from_slice(&n.to_le_bytes());
        Ok(8)
    }

    fn write_stream(&self, _buf: &[u8], _nonblock: bool) -> SysResult<usize> {
        Err(Errno::EINVAL)
    }

    fn stat(&self) -> SysResult<Stat> {
        Ok(super::anon::stat(self.ino))
    }

    fn seekable(&self) -> bool {
        false
    }

    fn poll(&self, want: u16) -> u16 {
        if *self.ticks.lock().unwrap() > 0 {
            want & (POLLIN | POLLRDNORM)
        } else {
            0
        }
    }

    fn waitq(&self) -> Option<Arc<WaitQueue>> {
        Some(self.queue.clone())
    }

    fn fd_target(&self) -> Option<Vec<u8>> {
        Some(super::anon::fd_target("timerfd"))
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
