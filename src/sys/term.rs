//! The launcher's terminal: raw mode for the length of a `tty: true` run
//! (restored when the guard drops, on every way out that unwinds or
//! returns), and its window size.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};

/// Whether a [`RawMode`] is in force (lines printed meanwhile end in
/// CR LF, as the terminal no longer adds the CR).
static RAW: AtomicBool = AtomicBool::new(false);

pub fn raw_active() -> bool {
    RAW.load(Ordering::SeqCst)
}

/// While alive, the terminal is in raw mode; dropping it restores the
/// settings it had.
pub struct RawMode {
    fd: BorrowedFd<'static>,
    saved: Termios,
}

impl RawMode {
    /// Puts `fd` (the launcher's stdin) in raw mode, if it is a terminal.
    pub fn enter(fd: BorrowedFd<'static>) -> Option<RawMode> {
        let saved = tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(fd, SetArg::TCSADRAIN, &raw).ok()?;
        RAW.store(true, Ordering::SeqCst);
        Some(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        RAW.store(false, Ordering::SeqCst);
        if let Err(e) = tcsetattr(self.fd, SetArg::TCSADRAIN, &self.saved) {
            log::warn!("restoring the terminal settings: {e}");
        }
    }
}

/// The launcher's stdin, which lives as long as the process.
pub fn stdin() -> BorrowedFd<'static> {
    // SAFETY: fd 0 is open for the life of the process (nothing here
    // closes it; a closed stdin only makes the terminal calls fail).
    unsafe { BorrowedFd::borrow_raw(0) }
}

/// Whether `fd` is a terminal.
pub fn is_terminal(fd: BorrowedFd<'_>) -> bool {
    nix::unistd::isatty(fd).unwrap_or(false)
}

/// The window size of terminal `fd`: (rows, columns).
pub fn window_size(fd: BorrowedFd<'_>) -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one struct winsize into the one we pass.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (r == 0).then_some((ws.ws_row, ws.ws_col))
}
