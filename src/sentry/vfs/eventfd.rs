//! eventfd(2): a 64-bit counter as a file. A write adds to it (blocking
//! while the sum would pass 2^64 - 2); a read returns it and resets it to
//! zero, or with EFD_SEMAPHORE returns 1 and decrements it (blocking while
//! it is zero). Both take exactly 8 bytes or more.

use std::sync::{Arc, Mutex};

use super::file::FileOps;
use super::poll::{POLLERR, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};
use super::waitq::{block_current, WaitQueue};
use crate::abi::types::Stat;
use crate::abi::{Errno, SysResult};

/// The largest value the counter holds.
const MAX: u64 = u64::MAX - 1;

pub struct EventFd {
    count: Mutex<u64>,
    semaphore: bool,
    queue: Arc<WaitQueue>,
    ino: u64,
}

impl EventFd {
    pub fn new(init: u64, semaphore: bool) -> Arc<EventFd> {
        Arc::new(EventFd {
            count: Mutex::new(init),
            semaphore,
            queue: WaitQueue::new(),
            ino: super::anon::next_ino(),
        })
    }

    /// Takes the value a read returns, if the counter is not zero.
    fn take(&self) -> Option<u64> {
        let mut c = self.count.lock().unwrap();
        if *c == 0 {
            return None;
        }
        let v = if self.semaphore { 1 } else { *c };
        *c -= v;
        Some(v)
    }

    /// Adds `v` if it fits.
    fn add(&self, v: u64) -> bool {
        let mut c = self.count.lock().unwrap();
        if MAX - *c < v {
            return false;
        }
        *c += v;
        true
    }
}

impl FileOps for EventFd {
    fn read_stream(&self, buf: &mut [u8], nonblock: bool) -> SysResult<usize> {
        if buf.len() < 8 {
            return Err(Errno::EINVAL);
        }
        let v = block_current(&self.queue, POLLIN, || match self.take() {
            Some(v) => Some(Ok(v)),
            None if nonblock => Some(Err(Errno::EAGAIN)),
            None => None,
        })?;
        self.queue.notify(POLLOUT | POLLWRNORM);
        buf[..8].copy_from_slice(&v.to_le_bytes());
        Ok(8)
    }

    fn write_stream(&self, buf: &[u8], nonblock: bool) -> SysResult<usize> {
        if buf.len() < 8 {
            return Err(Errno::EINVAL);
        }
        let v = u64::from_le_bytes(buf[..8].try_into().unwrap());
        if v == u64::MAX {
            return Err(Errno::EINVAL);
        }
        block_current(&self.queue, POLLOUT, || match self.add(v) {
            true => Some(Ok(())),
            false if nonblock => Some(Err(Errno::EAGAIN)),
            false => None,
        })?;
        if v > 0 {
            self.queue.notify(POLLIN | POLLRDNORM);
        }
        Ok(8)
    }

    fn stat(&self) -> SysResult<Stat> {
        Ok(super::anon::stat(self.ino))
    }

    fn seekable(&self) -> bool {
        false
    }

    fn poll(&self, want: u16) -> u16 {
        let c = *self.count.lock().unwrap();
        let mut ready = 0;
        if c > 0 {
            ready |= POLLIN | POLLRDNORM;
        }
        if c < MAX {
            ready |= POLLOUT | POLLWRNORM;
        }
        if c == u64::MAX {
            ready |= POLLERR;
        }
        ready & (want | POLLERR)
    }

    fn waitq(&self) -> Option<Arc<WaitQueue>> {
        Some(self.queue.clone())
    }

    fn fd_target(&self) -> Option<Vec<u8>> {
        Some(super::anon::fd_target("eventfd"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(e: &EventFd) -> SysResult<u64> {
        let mut b = [0u8; 8];
        e.read_stream(&mut b, true)?;
        Ok(u64::from_le_bytes(b))
    }

    #[test]
    fn eventfd_read_returns_sum_and_resets() {
        let e = EventFd::new(2, false);
        e.write_stream(&5u64.to_le_bytes(), true).unwrap();
        assert_eq!(read(&e), Ok(7));
        assert_eq!(read(&e), Err(Errno::EAGAIN));
    }

    #[test]
    fn eventfd_semaphore_reads_one_at_a_time() {
        let e = EventFd::new(2, true);
        assert_eq!(read(&e), Ok(1));
        assert_eq!(read(&e), Ok(1));
        assert_eq!(read(&e), Err(Errno::EAGAIN));
    }

    #[test]
    fn eventfd_overflowing_write_is_eagain_and_short_buffer_einval() {
        let e = EventFd::new(MAX, false);
        assert_eq!(
            e.write_stream(&1u64.to_le_bytes(), true),
            Err(Errno::EAGAIN)
        );
        assert_eq!(e.write_stream(&[0u8; 4], true), Err(Errno::EINVAL));
        assert_eq!(
            e.write_stream(&u64::MAX.to_le_bytes(), true),
            Err(Errno::EINVAL)
        );
    }
}
