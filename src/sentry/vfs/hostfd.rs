//! Reading and writing a host fd the sentry holds for the guest (its
//! standard streams, an exec'd process's stdio) the way a guest pipe
//! behaves: a blocked call sleeps in a host poll that a signal or kill
//! of the task ends at once (EINTR), O_NONBLOCK gives EAGAIN, and a
//! blocking write that a signal cuts short returns what it wrote.
//!
//! The host fd itself stays blocking (its file description may be
//! shared with the launcher): the sentry polls it first, then reads or
//! writes only what the poll promised.

use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use super::poll::{host_ready, POLLERR, POLLHUP, POLLIN, POLLOUT};
use crate::abi::{Errno, SysResult};
use crate::sentry::kernel::signal::{current_interrupted, current_waiter};

/// Longest sleep in a host poll between checks for a kill (a safety
/// net: signals and kills wake the poll at once).
const RECHECK: Duration = Duration::from_millis(100);
/// Bytes a write sends per readiness: POLLOUT on a pipe promises room
/// for PIPE_BUF.
const WRITE_STEP: usize = 4096;

/// Waits until `fd` reports one of `want` (or an error or hangup); EINTR
/// when the calling task is interrupted first.
fn wait(fd: BorrowedFd<'_>, want: u16) -> SysResult<()> {
    let waiter = current_waiter();
    let efd = match &waiter {
        Some(w) => Some(w.host_fd()?),
        None => None,
    };
    if let Some(w) = &waiter {
        w.set_in_host_poll(true);
    }
    let done = loop {
        if current_interrupted() {
            break Err(Errno::EINTR);
        }
        let flags = |bits: u16| nix::poll::PollFlags::from_bits_truncate(bits as i16);
        let mut fds = vec![nix::poll::PollFd::new(fd, flags(want))];
        if let Some(e) = efd {
            fds.push(nix::poll::PollFd::new(e, flags(POLLIN)));
        }
        let timeout =
            nix::poll::PollTimeout::try_from(RECHECK).unwrap_or(nix::poll::PollTimeout::MAX);
        // Waiting for the host: not part of the load average.
        let blocked = crate::sentry::kernel::loadavg::blocked();
        let polled = nix::poll::poll(&mut fds, timeout);
        drop(blocked);
        match polled {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => break Err(Errno::from(e)),
        }
        let hit = |p: &nix::poll::PollFd| p.revents().is_some_and(|r| !r.is_empty());
        if hit(&fds[0]) {
            break Ok(());
        }
        if let (Some(e), Some(p)) = (efd, fds.get(1)) {
            if hit(p) {
                let mut b = [0u8; 8];
                let _ = nix::unistd::read(e, &mut b);
            }
        }
    };
    if let Some(w) = &waiter {
        w.set_in_host_poll(false);
    }
    done
}

/// A host fd the sentry reads and writes for the guest. One on storage
/// (a regular file, a block device: stdout redirected to a file) never
/// waits for a peer, so it is read and written straight away, in one
/// call; a pipe, socket or terminal goes through the host poll above.
pub struct Stream<F> {
    fd: F,
    storage: bool,
}

impl<F: AsFd> Stream<F> {
    pub fn new(fd: F) -> Stream<F> {
        let storage = nix::sys::stat::fstat(fd.as_fd()).is_ok_and(|st| {
            let kind = st.st_mode & libc::S_IFMT;
            kind == libc::S_IFREG || kind == libc::S_IFBLK
        });
        Stream { fd, storage }
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Reads into `buf`: EAGAIN when `nonblock` and nothing is there;
    /// otherwise waits for data (or end of file) as a pipe read does.
    pub fn read(&self, buf: &mut [u8], nonblock: bool) -> SysResult<usize> {
        let fd = self.fd();
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if !self.storage && host_ready(fd, POLLIN | POLLHUP | POLLERR) == 0 {
                if nonblock {
                    return Err(Errno::EAGAIN);
                }
                wait(fd, POLLIN)?;
            }
            match nix::unistd::read(fd, buf) {
                Err(nix::errno::Errno::EINTR) => continue,
                // Another reader of the host fd took what the poll saw.
                Err(nix::errno::Errno::EAGAIN) if !nonblock => continue,
                r => return Ok(r?),
            }
        }
    }

    /// Writes `buf`: all of it unless `nonblock` (then what fits, or
    /// EAGAIN), or a signal comes after some was written (then that
    /// much). EPIPE when the reader is gone.
    pub fn write(&self, buf: &[u8], nonblock: bool) -> SysResult<usize> {
        let fd = self.fd();
        // What one write may send: a storage write never waits; after
        // POLLOUT a pipe has room for PIPE_BUF.
        let step = if self.storage { buf.len() } else { WRITE_STEP };
        let mut done = 0;
        while done < buf.len() {
            if !self.storage && host_ready(fd, POLLOUT | POLLERR | POLLHUP) == 0 {
                if nonblock {
                    break;
                }
                match wait(fd, POLLOUT) {
                    Ok(()) => {}
                    Err(e) if done == 0 => return Err(e),
                    Err(_) => break,
                }
            }
            let chunk = &buf[done..buf.len().min(done + step)];
            match nix::unistd::write(fd, chunk) {
                Ok(n) => done += n,
                Err(nix::errno::Errno::EINTR) => {}
                Err(nix::errno::Errno::EAGAIN) => {
                    if nonblock {
                        break;
                    }
                }
                Err(e) if done == 0 => return Err(e.into()),
                Err(_) => break,
            }
        }
        match done {
            0 if !buf.is_empty() => Err(Errno::EAGAIN),
            n => Ok(n),
        }
    }
}
