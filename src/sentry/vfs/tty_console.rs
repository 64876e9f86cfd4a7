//! A console: a pty of a container's devpts whose slave is a process's
//! stdin, stdout and stderr, and whose master the sentry copies to and
//! from host fds — the launcher's stdin (the sentry's own fd 0, or the fd
//! `exec -t` passed) into the master, the master into the container's
//! output (the sentry's stdout, an output pipe, or the exec caller's
//! stdout). The copy threads end when every slave is closed (output) or
//! the host input ends (input); the master closes with the last of them.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use super::file::{FileOps, OpenFile};
use super::gofer::GoferFs;
use super::tty::{Caller, PtyMaster, PtySlave, Terminal};
use crate::abi::{Errno, SysResult};
use crate::sentry::kernel::process::PidNs;

/// How often the input copier checks whether the console ended.
const INPUT_POLL_MS: u16 = 100;

/// Where a console's input comes from.
pub enum Input {
    /// The sentry's own stdin (the launcher's).
    Stdin,
    /// A host fd handed over the control socket.
    Fd(OwnedFd),
}

impl Input {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            // SAFETY: fd 0 is the sentry's stdin, open for its whole life
            // (the launcher passes it and nothing in the sentry closes it).
            Input::Stdin => unsafe { BorrowedFd::borrow_raw(0) },
            Input::Fd(fd) => fd.as_fd(),
        }
    }
}

/// A running console.
pub struct Console {
    pub term: Arc<Terminal>,
    /// Told when the output copier is done.
    output_done: mpsc::Receiver<()>,
}

impl Console {
    /// Opens a new pty in `fs`'s devpts owned by `uid`, with window size
    /// `winsize` (rows, cols), and starts copying: `input` (if any) into
    /// the master, the master into `output`. Returns the console and the
    /// slave, opened read-write, for the process's fds 0-2.
    pub fn open(
        fs: &GoferFs,
        uid: u32,
        winsize: Option<(u16, u16)>,
        input: Option<Input>,
        output: Arc<dyn FileOps>,
    ) -> SysResult<(Console, Arc<OpenFile>)> {
        let ptmx = fs.pts.ptmx_node()?;
        let master = fs.pts.open_master(uid, ptmx)?;
        let term = master.term.clone();
        term.set_locked(false);
        if let Some((rows, cols)) = winsize {
            term.set_winsize([rows, cols, 0, 0]);
        }
        let slave = PtySlave::open(term.clone(), fs.pts.slave_node(term.index)?)?;
        let slave = OpenFile::new(Arc::new(slave), libc::O_RDWR as u32);
        let ended = Arc::new(AtomicBool::new(false));
        let (done_tx, output_done) = mpsc::channel();
        let (m, e) = (master.clone(), ended.clone());
        spawn("tty-out", move || {
            copy_output(&m, output.as_ref());
            e.store(true, Ordering::SeqCst);
            let _ = done_tx.send(());
        })?;
        if let Some(input) = input {
            spawn("tty-in", move || copy_input(&master, &input, &ended))?;
        }
        Ok((Console { term, output_done }, slave))
    }

    /// Makes the console the controlling terminal of session leader
    /// `pid` (a process that starts a session of its own).
    pub fn control(&self, ns: &Arc<PidNs>, pid: i32) -> SysResult<()> {
        self.term.make_controlling(&Caller { ns, pid }, false)
    }

    /// Waits, at most `limit`, for the output copier to pass on the last
    /// bytes once every slave closed.
    pub fn finish(self, limit: Duration) {
        if self.output_done.recv_timeout(limit).is_err() {
            log::warn!(
                "pty {}: output still open after the process ended",
                self.term.index
            );
        }
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> SysResult<()> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map(|_| ())
        .map_err(|_| Errno::EAGAIN)
}

/// Master to host until every slave is closed (EIO) or the host side
/// goes away.
fn copy_output(master: &PtyMaster, output: &dyn FileOps) {
    let mut buf = vec![0u8; 16 << 10];
    while let Ok(n) = master.read_stream(&mut buf, false) {
        let mut at = 0;
        while at < n {
            match output.write(&buf[at..n], 0) {
                Ok(0) | Err(_) => return,
                Ok(w) => at += w,
            }
        }
    }
}

/// Host to master until the host input ends or the console is done.
fn copy_input(master: &PtyMaster, input: &Input, ended: &AtomicBool) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let fd = input.fd();
    let mut buf = vec![0u8; 4096];
    while !ended.load(Ordering::SeqCst) && !master.term.hung_up() {
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(INPUT_POLL_MS)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
            Ok(_) => {}
        }
        let n = match nix::unistd::read(fd, &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut at = 0;
        while at < n {
            match master.write_stream(&buf[at..n], false) {
                Ok(w) => at += w,
                Err(_) => return,
            }
        }
    }
}
