//! Terminal syscalls: opening /dev/ptmx, /dev/pts/N and /dev/tty, and the
//! terminal ioctls of pty ends (termios, window size, controlling
//! terminal, foreground group, pty number and lock, queues).

use std::sync::Arc;

use crate::abi::{Errno, SysResult};
use crate::sentry::kernel::Task;
use crate::sentry::vfs::dev::Synth;
use crate::sentry::vfs::tty::{Caller, PtyMaster, PtySlave, Terminal};
use crate::sentry::vfs::tty_ldisc::{Termios, TERMIOS2_SIZE, TERMIOS_SIZE};
use crate::sentry::vfs::{FileOps, Node, OpenFile, FD_CLOEXEC};

const TCGETS: u64 = 0x5401;
const TCSETS: u64 = 0x5402;
const TCSETSW: u64 = 0x5403;
const TCSETSF: u64 = 0x5404;
const TCSBRK: u64 = 0x5409;
const TCXONC: u64 = 0x540a;
const TCFLSH: u64 = 0x540b;
const TIOCSCTTY: u64 = 0x540e;
const TIOCGPGRP: u64 = 0x540f;
const TIOCSPGRP: u64 = 0x5410;
const TIOCOUTQ: u64 = 0x5411;
const TIOCSTI: u64 = 0x5412;
const TIOCGWINSZ: u64 = 0x5413;
const TIOCSWINSZ: u64 = 0x5414;
const FIONREAD: u64 = 0x541b;
const TIOCNOTTY: u64 = 0x5422;
const TIOCSETD: u64 = 0x5423;
const TIOCGETD: u64 = 0x5424;
const TCSBRKP: u64 = 0x5425;
const TIOCGSID: u64 = 0x5429;
const TCGETS2: u64 = 0x802c_542a;
const TCSETS2: u64 = 0x402c_542b;
const TCSETSW2: u64 = 0x402c_542c;
const TCSETSF2: u64 = 0x402c_542d;
const TIOCGPTN: u64 = 0x8004_5430;
const TIOCSPTLCK: u64 = 0x4004_5431;
const TIOCGPTLCK: u64 = 0x8004_5439;
const TIOCGPTPEER: u64 = 0x5441;
/// CAP_SYS_ADMIN: steal a terminal (TIOCSCTTY 1), TIOCSTI elsewhere.
const CAP_SYS_ADMIN: u32 = 21;

/// Opens a terminal node: a new master for ptmx, a slave, or the
/// caller's controlling terminal for /dev/tty. None for other nodes.
pub fn open(t: &Task, node: &Arc<Node>, flags: u64) -> Option<SysResult<Arc<OpenFile>>> {
    let status = flags as u32 & !(libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_CREAT) as u32;
    let file: SysResult<Arc<dyn FileOps>> = match node.synth? {
        Synth::Ptmx => {
            t.fs.pts
                .open_master(t.creds.euid, node.clone())
                .map(|m| m as Arc<dyn FileOps>)
        }
        Synth::Pts(n) => match t.fs.pts.terminal(n) {
            Some(term) => open_slave(t, term, node.clone(), flags),
            None => Err(Errno::EIO),
        },
        Synth::Tty => match t.ns.ctty(t.pid) {
            Some(term) => PtySlave::open(term, node.clone()).map(|s| Arc::new(s) as _),
            None => Err(Errno::ENXIO),
        },
        _ => return None,
    };
    Some(file.map(|f| OpenFile::new(f, status)))
}

/// Opens the slave of `term`; without O_NOCTTY a session leader with no
/// terminal makes it its controlling terminal.
fn open_slave(
    t: &Task,
    term: Arc<Terminal>,
    node: Arc<Node>,
    flags: u64,
) -> SysResult<Arc<dyn FileOps>> {
    let slave = PtySlave::open(term.clone(), node)?;
    if flags & libc::O_NOCTTY as u64 == 0 && term.session().is_none() {
        let who = Caller {
            ns: &t.ns,
            pid: t.pid,
        };
        if t.ns.sid(t.pid) == Ok(t.pid) && t.ns.ctty(t.pid).is_none() {
            let _ = term.make_controlling(&who, false);
        }
    }
    Ok(Arc::new(slave))
}

/// The terminal behind `file` and whether it is the master end.
fn terminal_of(file: &OpenFile) -> Option<(Arc<Terminal>, bool)> {
    let any = file.ops.as_any()?;
    if let Some(m) = any.downcast_ref::<PtyMaster>() {
        return Some((m.term.clone(), true));
    }
    any.downcast_ref::<PtySlave>()
        .map(|s| (s.term.clone(), false))
}

/// ioctl(2) of a pty end; None when `file` is not one.
pub fn ioctl(t: &mut Task, file: &Arc<OpenFile>, cmd: u64, arg: u64) -> Option<SysResult<u64>> {
    let (term, master) = terminal_of(file)?;
    if !master && term.hung_up() {
        // A hung-up terminal answers nothing (Linux's hung_up_tty_ioctl).
        return Some(Err(if cmd == TIOCSPGRP {
            Errno::ENOTTY
        } else {
            Errno::EIO
        }));
    }
    let r = match cmd {
        TCGETS | TCGETS2 | TCSETS | TCSETSW | TCSETSF | TCSETS2 | TCSETSW2 | TCSETSF2 => {
            termios_ioctl(t, &term, cmd, arg)
        }
        TIOCGWINSZ => copy_out(t, arg, &winsize_bytes(term.winsize())),
        TIOCSWINSZ => {
            let mut b = [0u8; 8];
            match t.mm.copy_in(arg, &mut b) {
                Ok(()) => {
                    let w = |i: usize| u16::from_le_bytes([b[i * 2], b[i * 2 + 1]]);
                    term.set_winsize([w(0), w(1), w(2), w(3)]);
                    Ok(0)
                }
                Err(e) => Err(e),
            }
        }
        FIONREAD => put_int(t, arg, term.readable(master) as u32),
        TIOCOUTQ => put_int(t, arg, if master { 0 } else { term.queued_output() } as u32),
        TCFLSH => flush(&term, master, arg),
        TCXONC => xonc(t, &term, arg),
        TCSBRK | TCSBRKP => term.drain().map(|_| 0),
        TIOCGETD => put_int(t, arg, 0),
        TIOCSETD => match t.mm.read_u32(arg) {
            Ok(0) => Ok(0),
            Ok(_) => Err(Errno::EINVAL),
            Err(e) => Err(e),
        },
        TIOCSCTTY => {
            let steal = arg == 1 && t.creds.has_cap(CAP_SYS_ADMIN);
            let who = Caller {
                ns: &t.ns,
                pid: t.pid,
            };
            term.make_controlling(&who, steal).map(|_| 0)
        }
        TIOCNOTTY => notty(t, &term, master),
        TIOCGPGRP => {
            let who = Caller {
                ns: &t.ns,
                pid: t.pid,
            };
            if !master && !term.controls(&who) {
                Err(Errno::ENOTTY)
            } else {
                put_int(t, arg, term.pgrp() as u32)
            }
        }
        TIOCSPGRP => set_pgrp(t, &term, arg),
        TIOCGSID => {
            let who = Caller {
                ns: &t.ns,
                pid: t.pid,
            };
            match term.session() {
                Some((_, sid)) if master || term.controls(&who) => put_int(t, arg, sid as u32),
                _ => Err(Errno::ENOTTY),
            }
        }
        TIOCSTI => {
            let who = Caller {
                ns: &t.ns,
                pid: t.pid,
            };
            if !term.controls(&who) && !t.creds.has_cap(CAP_SYS_ADMIN) {
                Err(Errno::EPERM)
            } else {
                let mut c = [0u8; 1];
                t.mm.copy_in(arg, &mut c).map(|_| {
                    term.inject(c[0]);
                    0
                })
            }
        }
        TIOCGPTN if master => put_int(t, arg, term.index),
        TIOCSPTLCK if master => t.mm.read_u32(arg).map(|v| {
            term.set_locked(v != 0);
            0
        }),
        TIOCGPTLCK if master => put_int(t, arg, term.locked() as u32),
        TIOCGPTPEER if master => open_peer(t, file, &term, arg),
        _ => return None,
    };
    Some(r)
}

fn copy_out(t: &mut Task, addr: u64, bytes: &[u8]) -> SysResult<u64> {
    t.mm.copy_out(addr, bytes).map(|_| 0)
}

fn put_int(t: &mut Task, addr: u64, v: u32) -> SysResult<u64> {
    t.mm.write_u32(addr, v).map(|_| 0)
}

fn winsize_bytes(ws: [u16; 4]) -> [u8; 8] {
    let mut b = [0u8; 8];
    for (i, v) in ws.iter().enumerate() {
        b[i * 2..i * 2 + 2].copy_from_slice(&v.to_le_bytes());
    }
    b
}

/// TCGETS and the TCSETS family (termios or termios2).
fn termios_ioctl(t: &mut Task, term: &Arc<Terminal>, cmd: u64, arg: u64) -> SysResult<u64> {
    let size = if cmd >> 16 == 0 {
        TERMIOS_SIZE
    } else {
        TERMIOS2_SIZE
    };
    if matches!(cmd, TCGETS | TCGETS2) {
        return copy_out(t, arg, &term.termios().to_bytes(size));
    }
    let mut b = vec![0u8; size];
    t.mm.copy_in(arg, &mut b)?;
    term.job_control(libc::SIGTTOU)?;
    if matches!(cmd, TCSETSW | TCSETSF | TCSETSW2 | TCSETSF2) {
        term.drain()?;
    }
    term.set_termios(Termios::from_bytes(&b), matches!(cmd, TCSETSF | TCSETSF2));
    Ok(0)
}

/// TCFLSH: TCIFLUSH 0, TCOFLUSH 1, TCIOFLUSH 2; from the master, its
/// input is the slave's output.
fn flush(term: &Arc<Terminal>, master: bool, arg: u64) -> SysResult<u64> {
    let (input, output) = match arg {
        0 => (true, false),
        1 => (false, true),
        2 => (true, true),
        _ => return Err(Errno::EINVAL),
    };
    term.job_control(libc::SIGTTOU)?;
    if master {
        term.flush(output, input);
    } else {
        term.flush(input, output);
    }
    Ok(0)
}

/// TCXONC: TCOOFF 0 and TCOON 1 stop and restart output; TCIOFF 2 and
/// TCION 3 would send STOP/START to the other end, which for a pty has
/// no flow control to ask for.
fn xonc(t: &Task, term: &Arc<Terminal>, arg: u64) -> SysResult<u64> {
    let _ = t;
    term.job_control(libc::SIGTTOU)?;
    match arg {
        0 => term.set_stopped(true),
        1 => term.set_stopped(false),
        2 | 3 => {}
        _ => return Err(Errno::EINVAL),
    }
    Ok(0)
}

/// TIOCNOTTY: the caller gives up its controlling terminal; a session
/// leader's whole session does, and its foreground group is hung up.
fn notty(t: &Task, term: &Arc<Terminal>, master: bool) -> SysResult<u64> {
    let who = Caller {
        ns: &t.ns,
        pid: t.pid,
    };
    if master || !term.controls(&who) {
        return Err(Errno::ENOTTY);
    }
    if t.ns.sid(t.pid) == Ok(t.pid) {
        term.leader_disassociates(false);
    } else {
        t.ns.set_ctty(t.pid, None);
    }
    Ok(0)
}

/// TIOCSPGRP: only on the caller's own terminal, from its session.
fn set_pgrp(t: &mut Task, term: &Arc<Terminal>, arg: u64) -> SysResult<u64> {
    let pgrp = t.mm.read_u32(arg)? as i32;
    let who = Caller {
        ns: &t.ns,
        pid: t.pid,
    };
    let same_session = term
        .session()
        .is_some_and(|(ns, sid)| Arc::ptr_eq(&ns, &t.ns) && t.ns.sid(t.pid) == Ok(sid));
    if !term.controls(&who) || !same_session {
        return Err(Errno::ENOTTY);
    }
    term.job_control(libc::SIGTTOU)?;
    term.set_pgrp(&who, pgrp).map(|_| 0)
}

/// TIOCGPTPEER: opens the slave of this master with open flags `arg`.
fn open_peer(t: &mut Task, file: &OpenFile, term: &Arc<Terminal>, arg: u64) -> SysResult<u64> {
    let allowed = (libc::O_ACCMODE | libc::O_NOCTTY | libc::O_NONBLOCK | libc::O_CLOEXEC) as u64;
    if arg & !allowed != 0 {
        return Err(Errno::EINVAL);
    }
    let master = file
        .ops
        .as_any()
        .and_then(|a| a.downcast_ref::<PtyMaster>())
        .ok_or(Errno::ENOTTY)?;
    let node = master.devpts().slave_node(term.index)?;
    let slave = open_slave(t, term.clone(), node, arg)?;
    let status = arg as u32 & !(libc::O_CLOEXEC | libc::O_NOCTTY) as u32;
    let fd_flags = if arg & libc::O_CLOEXEC as u64 != 0 {
        FD_CLOEXEC
    } else {
        0
    };
    Ok(t.fds
        .insert(OpenFile::new(slave, status), fd_flags, 0, t.nofile())? as u64)
}
