//! signalfd: pending signals read as `struct signalfd_siginfo` records.
//! A read takes signals of the file's mask from the *reading* thread's
//! pending set, then its process's (the reader blocks them, as Linux
//! expects; otherwise they are delivered first). Readiness is likewise
//! the caller's, and the process's signal queue tells of new signals.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::file::FileOps;
use super::poll::{POLLIN, POLLRDNORM};
use super::waitq::{block_current, WaitQueue};
use crate::abi::types::Stat;
use crate::abi::{Errno, SysResult};
use crate::sentry::kernel::siginfo::{SigInfo, SI_TIMER};
use crate::sentry::kernel::signal::current_control;

/// Size of `struct signalfd_siginfo`.
pub const RECORD: usize = 128;

pub struct SignalFd {
    mask: AtomicU64,
    ino: u64,
}

impl SignalFd {
    pub fn new(mask: u64) -> Arc<SignalFd> {
        Arc::new(SignalFd {
            mask: AtomicU64::new(mask),
            ino: super::anon::next_ino(),
        })
    }

    /// signalfd4 on an existing signalfd: a new mask.
    pub fn set_mask(&self, mask: u64) {
        self.mask.store(mask, Ordering::SeqCst);
    }

    fn take(&self) -> Option<SigInfo> {
        let c = current_control()?;
        c.take_pending(self.mask.load(Ordering::SeqCst))
    }
}

/// Converts a siginfo to a signalfd record, field by field after what
/// the si_code says the union holds.
pub fn record(info: &SigInfo) -> [u8; RECORD] {
    let src = &info.0;
    let mut r = [0u8; RECORD];
    let mut put = |at: usize, bytes: &[u8]| r[at..at + bytes.len()].copy_from_slice(bytes);
    put(0, &src[0..12]); // signo, errno, code
    let (sig, code) = (info.signo(), info.code());
    let fault = matches!(
        sig,
        libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE | libc::SIGTRAP
    );
    if code == SI_TIMER {
        put(24, &src[16..20]); // ssi_tid: the timer id
        put(32, &src[20..24]); // ssi_overrun
        put(44, &src[24..28]); // ssi_int
        put(48, &src[24..32]); // ssi_ptr
    } else if sig == libc::SIGCHLD && code > 0 {
        put(12, &src[16..24]); // pid, uid
        put(40, &src[24..28]); // ssi_status
        put(56, &src[32..48]); // utime, stime
    } else if fault && code > 0 {
        put(72, &src[16..24]); // ssi_addr
    } else if sig == libc::SIGIO && code > 0 {
        put(28, &src[16..20]); // ssi_band
        put(20, &src[24..28]); // ssi_fd
    } else {
        put(12, &src[16..24]); // pid, uid
        if code < 0 {
            // Queued with a value (sigqueue, mq_notify...).
            put(44, &src[24..28]);
            put(48, &src[24..32]);
        }
    }
    r
}

impl FileOps for SignalFd {
    fn read_stream(&self, buf: &mut [u8], nonblock: bool) -> SysResult<usize> {
        let room = buf.len() / RECORD;
        if room == 0 {
            return Err(Errno::EINVAL);
        }
        let queue = self.waitq().ok_or(Errno::EINVAL)?;
        let first = block_current(&queue, POLLIN, || match self.take() {
            Some(i) => Some(Ok(i)),
            None if nonblock => Some(Err(Errno::EAGAIN)),
            None => None,
        })?;
        buf[..RECORD].copy_from_slice(&record(&first));
        let mut n = 1;
        while n < room {
            let Some(info) = self.take() else { break };
            buf[n * RECORD..(n + 1) * RECORD].copy_from_slice(&record(&info));
            n += 1;
        }
        Ok(n * RECORD)
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
        let pending = current_control().map_or(0, |c| c.all_pending());
        if pending & self.mask.load(Ordering::SeqCst) != 0 {
            want & (POLLIN | POLLRDNORM)
        } else {
            0
        }
    }

    /// The queue of the calling task's process: what poll and epoll_ctl
    /// register on (the signals watched are that process's).
    fn waitq(&self) -> Option<Arc<WaitQueue>> {
        current_control().map(|c| c.group.signal_queue.clone())
    }

    fn epollable(&self) -> bool {
        true
    }

    fn fd_target(&self) -> Option<Vec<u8>> {
        Some(super::anon::fd_target("signalfd"))
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sentry::kernel::siginfo::SI_USER;

    #[test]
    fn record_of_kill_carries_sender() {
        let info = SigInfo::from_process(libc::SIGUSR1, SI_USER, 42, 1000);
        let r = record(&info);
        assert_eq!(u32::from_le_bytes(r[0..4].try_into().unwrap()), 10);
        assert_eq!(u32::from_le_bytes(r[12..16].try_into().unwrap()), 42);
        assert_eq!(u32::from_le_bytes(r[16..20].try_into().unwrap()), 1000);
    }

    #[test]
    fn record_of_timer_carries_overrun_and_value() {
        let info = SigInfo::timer(libc::SIGALRM, 3, 2, 0x55);
        let r = record(&info);
        assert_eq!(u32::from_le_bytes(r[24..28].try_into().unwrap()), 3);
        assert_eq!(u32::from_le_bytes(r[32..36].try_into().unwrap()), 2);
        assert_eq!(u64::from_le_bytes(r[48..56].try_into().unwrap()), 0x55);
    }
}
