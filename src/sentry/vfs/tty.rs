//! Pseudo-terminals: a [`Terminal`] is one pty pair's state (settings,
//! window size, the line discipline's queues, its session and foreground
//! process group); [`PtyMaster`] and [`PtySlave`] are the open files of
//! its two ends. Bytes written to the master are the terminal's input
//! (line discipline, echo, signal characters); bytes written to the slave
//! are its output (OPOST), read from the master.
//!
//! Job control follows Linux: a process whose controlling terminal this
//! is and whose group is not the foreground one gets SIGTTIN for a read
//! (EIO when it ignores or blocks it, or its group is orphaned), SIGTTOU
//! for changing the settings and, with TOSTOP, for a write. Closing the
//! master hangs the slave up: its reads return 0, writes fail with EIO,
//! and the session leader gets SIGHUP and SIGCONT.
//!
//! Lock order: a terminal's state lock, then the pid namespace's (a
//! leaf). Signals are sent and wait queues told with no terminal lock
//! held.

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use super::file::FileOps;
use super::node::Node;
use super::poll::{POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};
use super::tty_ldisc::{Event, Ldisc, Termios, TOSTOP, VMIN, VTIME};
use super::tty_pts::Devpts;
use super::waitq::{block_current, block_current_until, WaitQueue};
use crate::abi::types::Stat;
use crate::abi::{Errno, SysResult};
use crate::sentry::kernel::process::PidNs;
use crate::sentry::kernel::signal;

/// The session a terminal controls: its namespace and session id.
type Session = (Weak<PidNs>, i32);

struct State {
    ld: Ldisc,
    /// struct winsize: rows, columns, x and y pixels.
    winsize: [u16; 4],
    /// TIOCSPTLCK: the slave may not be opened (set at the master's open).
    locked: bool,
    /// Open slave files.
    slaves: usize,
    /// Every slave closed again after one was open (master reads EIO).
    slave_closed: bool,
    /// The master closed: the slave is hung up.
    hung_up: bool,
    session: Option<Session>,
    /// The foreground process group (0: none).
    pgrp: i32,
}

/// One pseudo-terminal pair.
pub struct Terminal {
    /// N of /dev/pts/N.
    pub index: u32,
    /// Owner of the slave: the credentials that opened the master.
    pub uid: u32,
    pub gid: u32,
    st: Mutex<State>,
    /// Told of every change; both ends' readers, writers and pollers
    /// listen to it.
    queue: Arc<WaitQueue>,
}

/// Who is asking: the calling process's namespace and pid.
pub struct Caller<'a> {
    pub ns: &'a Arc<PidNs>,
    pub pid: i32,
}

impl Terminal {
    pub fn new(index: u32, uid: u32, gid: u32) -> Arc<Terminal> {
        Arc::new(Terminal {
            index,
            uid,
            gid,
            st: Mutex::new(State {
                ld: Ldisc::default(),
                winsize: [0; 4],
                locked: true,
                slaves: 0,
                slave_closed: false,
                hung_up: false,
                session: None,
                pgrp: 0,
            }),
            queue: WaitQueue::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap()
    }

    fn wake(&self) {
        self.queue
            .notify(POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM | POLLHUP);
    }

    pub fn termios(&self) -> Termios {
        self.lock().ld.termios
    }

    /// TCSETS: new settings; `flush` drops pending input first (TCSETSF).
    pub fn set_termios(&self, t: Termios, flush: bool) {
        let mut st = self.lock();
        if flush {
            st.ld.flush_input();
        }
        st.ld.set_termios(t);
        drop(st);
        self.wake();
    }

    pub fn winsize(&self) -> [u16; 4] {
        self.lock().winsize
    }

    /// TIOCSWINSZ: a change sends SIGWINCH to the foreground group.
    pub fn set_winsize(&self, ws: [u16; 4]) {
        let mut st = self.lock();
        if st.winsize == ws {
            return;
        }
        st.winsize = ws;
        let target = foreground(&st);
        drop(st);
        signal_group(target, libc::SIGWINCH);
    }

    pub fn locked(&self) -> bool {
        self.lock().locked
    }

    pub fn set_locked(&self, on: bool) {
        self.lock().locked = on;
    }

    pub fn hung_up(&self) -> bool {
        self.lock().hung_up
    }

    /// The session this terminal controls, while its namespace lives.
    pub fn session(&self) -> Option<(Arc<PidNs>, i32)> {
        let st = self.lock();
        let (ns, sid) = st.session.as_ref()?;
        Some((ns.upgrade()?, *sid))
    }

    pub fn pgrp(&self) -> i32 {
        self.lock().pgrp
    }

    /// Whether this terminal is `who`'s controlling terminal.
    pub fn controls(self: &Arc<Self>, who: &Caller) -> bool {
        who.ns.ctty(who.pid).is_some_and(|c| Arc::ptr_eq(&c, self))
    }

    /// Makes this the controlling terminal of session leader `who`
    /// (TIOCSCTTY, or an open without O_NOCTTY). `steal` takes it from
    /// another session (TIOCSCTTY with 1, by CAP_SYS_ADMIN).
    pub fn make_controlling(self: &Arc<Self>, who: &Caller, steal: bool) -> SysResult<()> {
        let sid = who.ns.sid(who.pid)?;
        let mut st = self.lock();
        let current = st
            .session
            .as_ref()
            .and_then(|(ns, s)| Some((ns.upgrade()?, *s)));
        if sid == who.pid
            && current
                .as_ref()
                .is_some_and(|(ns, s)| Arc::ptr_eq(ns, who.ns) && *s == sid)
        {
            return Ok(());
        }
        if sid != who.pid || who.ns.ctty(who.pid).is_some() {
            return Err(Errno::EPERM);
        }
        if let Some((ns, old)) = current {
            if !steal {
                return Err(Errno::EPERM);
            }
            ns.clear_session_ctty(old, self);
        }
        st.session = Some((Arc::downgrade(who.ns), sid));
        st.pgrp = who.ns.pgid(who.pid)?;
        drop(st);
        who.ns.set_ctty(who.pid, Some(self.clone()));
        Ok(())
    }

    /// The session leader gives up its terminal (TIOCNOTTY, or its exit
    /// when `exiting`): the foreground group gets SIGHUP (and SIGCONT
    /// unless `exiting`), and no process of the session keeps it.
    pub fn leader_disassociates(self: &Arc<Self>, exiting: bool) {
        let mut st = self.lock();
        let target = foreground(&st);
        let session = st.session.take();
        st.pgrp = 0;
        drop(st);
        signal_group(target.clone(), libc::SIGHUP);
        if !exiting {
            signal_group(target, libc::SIGCONT);
        }
        if let Some((ns, sid)) = session.and_then(|(ns, s)| Some((ns.upgrade()?, s))) {
            ns.clear_session_ctty(sid, self);
        }
    }

    /// TIOCSPGRP: `pgrp` must be a group of the terminal's session.
    pub fn set_pgrp(&self, who: &Caller, pgrp: i32) -> SysResult<()> {
        if pgrp < 0 {
            return Err(Errno::EINVAL);
        }
        let sid = who.ns.sid(who.pid)?;
        if !who.ns.group_in_session(pgrp, sid) {
            return Err(if who.ns.group_exists(pgrp) {
                Errno::EPERM
            } else {
                Errno::ESRCH
            });
        }
        self.lock().pgrp = pgrp;
        Ok(())
    }

    /// Job control for the calling task: Ok when it may go on; EINTR
    /// after sending `sig` (SIGTTIN or SIGTTOU) to its background group,
    /// EIO when it cannot be stopped that way.
    pub fn job_control(self: &Arc<Self>, sig: i32) -> SysResult<()> {
        let Some(ctl) = signal::current_control() else {
            return Ok(());
        };
        let Some((ns, _)) = self.session() else {
            return Ok(());
        };
        let Some(pid) = ns.pid_of(&ctl) else {
            return Ok(());
        };
        let who = Caller { ns: &ns, pid };
        let fg = self.pgrp();
        let mine = ns.pgid(pid)?;
        if !self.controls(&who) || mine == fg {
            return Ok(());
        }
        let bit = 1u64 << (sig - 1);
        let ignored = ctl.sigactions.lock().unwrap()[sig as usize - 1][0] == 1
            || ctl.mask.load(std::sync::atomic::Ordering::SeqCst) & bit != 0;
        if ignored {
            return if sig == libc::SIGTTIN {
                Err(Errno::EIO)
            } else {
                Ok(())
            };
        }
        if ns.orphaned(mine) {
            return Err(Errno::EIO);
        }
        signal_group(Some((ns, mine)), sig);
        Err(Errno::EINTR)
    }

    /// Input from the master (or TIOCSTI): returns the bytes taken.
    fn receive(&self, buf: &[u8]) -> usize {
        let mut st = self.lock();
        let (n, events) = st.ld.receive(buf);
        let target = foreground(&st);
        drop(st);
        self.wake();
        for Event::Signal(sig) in events {
            signal_group(target.clone(), sig);
        }
        n
    }

    /// TIOCSTI: `c` as if typed.
    pub fn inject(&self, c: u8) {
        self.receive(&[c]);
    }

    /// Bytes a read of the slave (or, `master`, of the master) finds now.
    pub fn readable(&self, master: bool) -> usize {
        let st = self.lock();
        if master {
            st.ld.out.len()
        } else {
            st.ld.readable()
        }
    }

    /// Output queued for the master (TIOCOUTQ of the slave).
    pub fn queued_output(&self) -> usize {
        self.lock().ld.out.len()
    }

    /// TCFLSH on the slave's side: input and/or output.
    pub fn flush(&self, input: bool, output: bool) {
        let mut st = self.lock();
        if input {
            st.ld.flush_input();
        }
        if output {
            st.ld.out.clear();
        }
        drop(st);
        self.wake();
    }

    /// TCXONC: stop or restart output.
    pub fn set_stopped(&self, on: bool) {
        self.lock().ld.stopped = on;
        self.wake();
    }

    /// Waits until the master has read every byte of output (TCSETSW,
    /// TCSBRK), or the terminal hung up.
    pub fn drain(&self) -> SysResult<()> {
        block_current(&self.queue, POLLIN | POLLOUT, || {
            let st = self.lock();
            (st.ld.out.is_empty() || st.hung_up || st.slave_closed).then_some(Ok(()))
        })
    }

    fn slave_opened(&self) {
        let mut st = self.lock();
        st.slaves += 1;
        st.slave_closed = false;
    }

    fn slave_closed(&self) {
        let mut st = self.lock();
        st.slaves -= 1;
        if st.slaves == 0 {
            st.slave_closed = true;
        }
        drop(st);
        self.wake();
    }

    /// The master closed: hang the slave up.
    fn hang_up(self: &Arc<Self>) {
        let mut st = self.lock();
        st.hung_up = true;
        st.ld.flush_input();
        st.ld.out.clear();
        let session = st.session.take();
        st.pgrp = 0;
        drop(st);
        self.wake();
        let Some((ns, sid)) = session.and_then(|(ns, s)| Some((ns.upgrade()?, s))) else {
            return;
        };
        ns.clear_session_ctty(sid, self);
        if let Some(leader) = ns.control(sid) {
            signal::send(&leader, libc::SIGHUP);
            signal::send(&leader, libc::SIGCONT);
        }
    }

    /// A read of the slave: a line (canonical) or as VMIN/VTIME say.
    fn read_slave(self: &Arc<Self>, buf: &mut [u8], nonblock: bool) -> SysResult<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.job_control(libc::SIGTTIN)?;
        let t = self.termios();
        if t.canonical() {
            let n = self.wait_for(nonblock, None, |st| {
                if st.hung_up {
                    return Some(Ok(0));
                }
                st.ld.read_line(buf).map(Ok)
            })?;
            self.wake();
            return Ok(n);
        }
        let (min, time) = (t.cc[VMIN] as usize, t.cc[VTIME] as u64);
        let tenths = Duration::from_millis(100 * time);
        let mut got = 0;
        // MIN 0: one wait of TIME for any byte; else wait for MIN bytes,
        // with TIME between bytes once the first came.
        let mut deadline = (min == 0).then(|| Instant::now() + tenths);
        loop {
            let want = min.clamp(1, buf.len());
            let r = self.wait_for(nonblock || (min == 0 && time == 0), deadline, |st| {
                if st.hung_up {
                    return Some(Ok(0));
                }
                let n = st.ld.read_raw(&mut buf[got..]);
                (n > 0).then_some(Ok(n))
            });
            match r {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(Errno::EAGAIN) if got > 0 || (min == 0 && !nonblock) => break,
                Err(Errno::ETIMEDOUT) => break,
                Err(Errno::EINTR) if got > 0 => break,
                Err(e) => return Err(e),
            }
            self.wake();
            if got >= want || min == 0 {
                break;
            }
            if time > 0 {
                deadline = Some(Instant::now() + tenths);
            }
        }
        self.wake();
        Ok(got)
    }

    /// Runs `attempt` under the lock until it answers; EAGAIN at once when
    /// `nonblock`, ETIMEDOUT at `deadline`, EINTR on a signal.
    fn wait_for<R>(
        &self,
        nonblock: bool,
        deadline: Option<Instant>,
        mut attempt: impl FnMut(&mut State) -> Option<SysResult<R>>,
    ) -> SysResult<R> {
        block_current_until(&self.queue, POLLIN | POLLOUT, deadline, || {
            match attempt(&mut self.lock()) {
                None if nonblock => Some(Err(Errno::EAGAIN)),
                r => r,
            }
        })
    }

    /// A write to the slave: output for the master.
    fn write_slave(self: &Arc<Self>, buf: &[u8], nonblock: bool) -> SysResult<usize> {
        if self.termios().lflag & TOSTOP != 0 {
            self.job_control(libc::SIGTTOU)?;
        }
        let mut done = 0;
        while done < buf.len() {
            let r = self.wait_for(nonblock, None, |st| {
                if st.hung_up {
                    return Some(Err(Errno::EIO));
                }
                if !st.ld.output_room() {
                    return None;
                }
                let room = super::tty_ldisc::OUTPUT_MAX - st.ld.out.len();
                let n = (buf.len() - done).min(room);
                Some(Ok(st.ld.output(&buf[done..done + n])))
            });
            match r {
                Ok(n) => done += n,
                Err(_) if done > 0 => break,
                Err(e) => return Err(e),
            }
            self.wake();
        }
        Ok(done)
    }

    /// A read of the master: the slave's output; EIO once every slave
    /// closed and nothing is left.
    fn read_master(&self, buf: &mut [u8], nonblock: bool) -> SysResult<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.wait_for(nonblock, None, |st| {
            if st.ld.out.is_empty() {
                return st.slave_closed.then_some(Err(Errno::EIO));
            }
            let n = st.ld.out.len().min(buf.len());
            for (i, b) in st.ld.out.drain(..n).enumerate() {
                buf[i] = b;
            }
            Some(Ok(n))
        })?;
        self.wake();
        Ok(n)
    }

    /// A write to the master: input for the slave.
    fn write_master(&self, buf: &[u8], nonblock: bool) -> SysResult<usize> {
        let mut done = 0;
        while done < buf.len() {
            let r = self.wait_for(nonblock, None, |st| st.ld.input_room().then_some(Ok(())));
            match r {
                Ok(()) => done += self.receive(&buf[done..]),
                Err(_) if done > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    fn poll_end(&self, master: bool, want: u16) -> u16 {
        let st = self.lock();
        let mut ready = 0;
        if master {
            if !st.ld.out.is_empty() {
                ready |= POLLIN | POLLRDNORM;
            }
            if st.ld.input_room() {
                ready |= POLLOUT | POLLWRNORM;
            }
            if st.slave_closed {
                ready |= POLLHUP;
            }
        } else if st.hung_up {
            ready = POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM | POLLHUP | POLLERR;
        } else {
            let t = st.ld.termios;
            if (t.canonical() && st.ld.has_line())
                || (!t.canonical() && st.ld.readable() >= (t.cc[VMIN] as usize).max(1))
            {
                ready |= POLLIN | POLLRDNORM;
            }
            if st.ld.output_room() {
                ready |= POLLOUT | POLLWRNORM;
            }
        }
        ready & (want | POLLHUP | POLLERR)
    }
}

/// The foreground group of a terminal's session, to signal.
fn foreground(st: &State) -> Option<(Arc<PidNs>, i32)> {
    let ns = st.session.as_ref()?.0.upgrade()?;
    (st.pgrp > 0).then_some((ns, st.pgrp))
}

/// Sends `sig` from the kernel to every process of group `target`.
fn signal_group(target: Option<(Arc<PidNs>, i32)>, sig: i32) {
    if let Some((ns, pgrp)) = target {
        for (_, ctl) in ns.members(Some(pgrp)) {
            signal::send(&ctl, sig);
        }
    }
}

/// The master end: /dev/ptmx opened.
pub struct PtyMaster {
    pub term: Arc<Terminal>,
    node: Arc<Node>,
    devpts: Arc<Devpts>,
}

impl PtyMaster {
    pub(super) fn new(term: Arc<Terminal>, node: Arc<Node>, devpts: Arc<Devpts>) -> PtyMaster {
        PtyMaster { term, node, devpts }
    }

    pub fn devpts(&self) -> &Arc<Devpts> {
        &self.devpts
    }
}

impl Drop for PtyMaster {
    fn drop(&mut self) {
        self.devpts.forget(self.term.index);
        self.term.hang_up();
    }
}

/// The slave end: /dev/pts/N (or /dev/tty) opened.
pub struct PtySlave {
    pub term: Arc<Terminal>,
    node: Arc<Node>,
}

impl PtySlave {
    /// A new open file of the slave; EIO while it is locked or after the
    /// master closed.
    pub fn open(term: Arc<Terminal>, node: Arc<Node>) -> SysResult<PtySlave> {
        if term.locked() || term.hung_up() {
            return Err(Errno::EIO);
        }
        term.slave_opened();
        Ok(PtySlave { term, node })
    }
}

impl Drop for PtySlave {
    fn drop(&mut self) {
        self.term.slave_closed();
    }
}

/// One end of a pty: the master or the slave.
trait PtyEnd: Send + Sync + 'static {
    const MASTER: bool;
    fn term(&self) -> &Arc<Terminal>;
    fn dentry(&self) -> &Arc<Node>;
}

impl PtyEnd for PtyMaster {
    const MASTER: bool = true;
    fn term(&self) -> &Arc<Terminal> {
        &self.term
    }
    fn dentry(&self) -> &Arc<Node> {
        &self.node
    }
}

impl PtyEnd for PtySlave {
    const MASTER: bool = false;
    fn term(&self) -> &Arc<Terminal> {
        &self.term
    }
    fn dentry(&self) -> &Arc<Node> {
        &self.node
    }
}

/// Both ends read and write their side of the terminal as streams.
impl<T: PtyEnd> FileOps for T {
    fn read_stream(&self, buf: &mut [u8], nonblock: bool) -> SysResult<usize> {
        if T::MASTER {
            self.term().read_master(buf, nonblock)
        } else {
            self.term().read_slave(buf, nonblock)
        }
    }

    fn write_stream(&self, buf: &[u8], nonblock: bool) -> SysResult<usize> {
        if T::MASTER {
            self.term().write_master(buf, nonblock)
        } else {
            self.term().write_slave(buf, nonblock)
        }
    }

    fn read(&self, buf: &mut [u8], _off: u64) -> SysResult<usize> {
        self.read_stream(buf, false)
    }

    fn write(&self, buf: &[u8], _off: u64) -> SysResult<usize> {
        self.write_stream(buf, false)
    }

    fn stat(&self) -> SysResult<Stat> {
        Ok(self.dentry().current_stat())
    }

    fn seekable(&self) -> bool {
        false
    }

    fn poll(&self, want: u16) -> u16 {
        self.term().poll_end(T::MASTER, want)
    }

    fn waitq(&self) -> Option<Arc<WaitQueue>> {
        Some(self.term().queue.clone())
    }

    fn node(&self) -> Option<&Arc<Node>> {
        Some(self.dentry())
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
