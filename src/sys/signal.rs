//! Signals: the launcher turns SIGINT/SIGTERM/SIGHUP into bytes on a pipe
//! (the self-pipe trick) so its wait loop can `poll` for them next to the
//! children's pidfds; the sandbox role turns them into an exit status.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

use super::fd::pipe;

/// Write end of the one active self-pipe, or -1.
static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn to_pipe(sig: libc::c_int) {
    let fd = PIPE_WRITE.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = sig as u8;
        // SAFETY: write is async-signal-safe; one byte from a local. A full
        // pipe drops the byte, which is fine: a signal is already pending.
        unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    }
}

/// While alive, the given signals are written to a pipe instead of acting;
/// dropping it restores the previous handlers. One at a time per process.
pub struct SignalPipe {
    read: OwnedFd,
    _write: OwnedFd,
    old: Vec<(libc::c_int, libc::sigaction)>,
}

impl SignalPipe {
    pub fn install(sigs: &[libc::c_int]) -> io::Result<SignalPipe> {
        let (read, write) = pipe()?;
        for fd in [&read, &write] {
            set_nonblocking(fd.as_raw_fd())?;
        }
        let raw = write.as_raw_fd();
        if PIPE_WRITE
            .compare_exchange(-1, raw, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return Err(io::Error::from_raw_os_error(libc::EBUSY));
        }
        let mut this = SignalPipe {
            read,
            _write: write,
            old: Vec::new(),
        };
        for &sig in sigs {
            let old = set_handler(sig, to_pipe as *const () as libc::sighandler_t)?;
            this.old.push((sig, old));
        }
        Ok(this)
    }

    /// The pipe to poll for readability.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }

    /// The next signal received, if any.
    pub fn take(&self) -> Option<libc::c_int> {
        let mut byte = 0u8;
        // SAFETY: reads at most one byte into a local; the fd is non-blocking.
        let n = unsafe { libc::read(self.read.as_raw_fd(), (&mut byte as *mut u8).cast(), 1) };
        (n == 1).then_some(libc::c_int::from(byte))
    }
}

impl Drop for SignalPipe {
    fn drop(&mut self) {
        for (sig, old) in &self.old {
            // SAFETY: restores a sigaction value read earlier by sigaction.
            unsafe { libc::sigaction(*sig, old, std::ptr::null_mut()) };
        }
        PIPE_WRITE.store(-1, Ordering::SeqCst);
    }
}

fn set_nonblocking(fd: libc::c_int) -> io::Result<()> {
    // SAFETY: fcntl on an owned fd with integer arguments.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Installs `handler` for `sig` (no SA_RESTART: blocking calls see EINTR)
/// and returns the previous action.
fn set_handler(sig: libc::c_int, handler: libc::sighandler_t) -> io::Result<libc::sigaction> {
    // SAFETY: an all-zero sigaction is valid (empty mask, no flags).
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    act.sa_sigaction = handler;
    // SAFETY: as above.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers refer to live locals.
    if unsafe { libc::sigaction(sig, &act, &mut old) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(old)
}

extern "C" fn exit_by_signal(sig: libc::c_int) {
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(128 + sig) };
}

/// Makes each of `sigs` end this process with status 128 + signo. A
/// process that is pid 1 of a pid namespace ignores signals it has no
/// handler for, so the sandbox role needs this to be stoppable at all.
pub fn exit_on(sigs: &[libc::c_int]) -> io::Result<()> {
    for &sig in sigs {
        set_handler(sig, exit_by_signal as *const () as libc::sighandler_t)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_pipe_raised_signal_is_taken_once() {
        let pipe = SignalPipe::install(&[libc::SIGUSR2]).unwrap();
        // SAFETY: raising a signal we handle.
        unsafe { libc::raise(libc::SIGUSR2) };
        assert_eq!(pipe.take(), Some(libc::SIGUSR2));
        assert_eq!(pipe.take(), None);
        assert!(SignalPipe::install(&[libc::SIGUSR2]).is_err());
    }
}
