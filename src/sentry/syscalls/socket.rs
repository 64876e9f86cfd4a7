//! Socket syscalls: AF_UNIX sockets of the sentry's own (see
//! `vfs::socket`). Other address families are not supported by the
//! sandbox (EAFNOSUPPORT, as a kernel built without them answers).

use std::sync::Arc;
use std::time::Duration;

use super::file::{fd_arg, iovecs, lookup_at, permitted, sigpipe, AT_FDCWD};
use crate::abi::types::{S_IFMT, S_IFSOCK};
use crate::abi::{Errno, SysResult};
use crate::sentry::kernel::Task;
use crate::sentry::vfs::socket::{Addr, Cred, Kind, Received, RecvFlags, Socket, MAX_RIGHTS};
use crate::sentry::vfs::{Follow, OpenFile, FD_CLOEXEC};

const AF_UNSPEC: u16 = 0;
const AF_UNIX: u16 = 1;
const SOCK_NONBLOCK: u64 = libc::O_NONBLOCK as u64;
const SOCK_CLOEXEC: u64 = libc::O_CLOEXEC as u64;
/// Offset of sun_path in sockaddr_un, and its size.
const PATH_OFF: usize = 2;
const PATH_MAX: usize = 108;

const MSG_OOB: u64 = 0x1;
const MSG_PEEK: u64 = 0x2;
const MSG_CTRUNC: u32 = 0x8;
const MSG_TRUNC: u64 = 0x20;
const MSG_DONTWAIT: u64 = 0x40;
const MSG_WAITALL: u64 = 0x100;
const MSG_NOSIGNAL: u64 = 0x4000;
const MSG_WAITFORONE: u64 = 0x10000;
const MSG_CMSG_CLOEXEC: u64 = 0x4000_0000;

const SOL_SOCKET: u64 = 1;
const SCM_RIGHTS: i32 = 1;
const SCM_CREDENTIALS: i32 = 2;

const SO_REUSEADDR: u64 = 2;
const SO_TYPE: u64 = 3;
const SO_ERROR: u64 = 4;
const SO_BROADCAST: u64 = 6;
const SO_SNDBUF: u64 = 7;
const SO_RCVBUF: u64 = 8;
const SO_KEEPALIVE: u64 = 9;
const SO_OOBINLINE: u64 = 10;
const SO_LINGER: u64 = 13;
const SO_PASSCRED: u64 = 16;
const SO_PEERCRED: u64 = 17;
const SO_RCVTIMEO: u64 = 20;
const SO_SNDTIMEO: u64 = 21;
const SO_ACCEPTCONN: u64 = 30;
const SO_SNDBUFFORCE: u64 = 32;
const SO_RCVBUFFORCE: u64 = 33;
const SO_PROTOCOL: u64 = 38;
const SO_DOMAIN: u64 = 39;

/// Size of struct msghdr and struct mmsghdr on x86-64.
const MSGHDR: usize = 56;
const MMSGHDR: u64 = 64;
/// Most messages one sendmmsg/recvmmsg handles (UIO_MAXIOV).
const MMSG_MAX: u64 = 1024;
/// Largest send gathered into one buffer.
const SEND_MAX: usize = 16 << 20;

/// The socket behind descriptor `fd`: EBADF, or ENOTSOCK for other files.
fn socket(t: &Task, fd: u64) -> SysResult<(Arc<OpenFile>, Arc<Socket>)> {
    let file = t.fds.get(fd_arg(fd))?;
    let sock = Socket::of(&file).ok_or(Errno::ENOTSOCK)?.arc();
    Ok((file, sock))
}

fn cred_of(t: &Task) -> Cred {
    Cred {
        pid: t.pid,
        uid: t.creds.uid,
        gid: t.creds.gid,
    }
}

/// The kind and descriptor flags of socket(2)'s `type` argument.
fn kind_arg(ty: u64) -> SysResult<(Kind, bool, bool)> {
    if ty & !(0xf | SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let kind = match ty & 0xf {
        1 => Kind::Stream,
        // SOCK_RAW is a datagram socket in the unix family.
        2 | 3 => Kind::Dgram,
        5 => Kind::Seqpacket,
        _ => return Err(Errno::ESOCKTNOSUPPORT),
    };
    Ok((kind, ty & SOCK_NONBLOCK != 0, ty & SOCK_CLOEXEC != 0))
}

fn check_family(t: &Task, domain: u64, proto: u64) -> SysResult<()> {
    if domain != AF_UNIX as u64 {
        if t.k
            .first_unimplemented(crate::sentry::kernel::Missing::SocketFamily(domain))
        {
            log::warn!(
                "socket family {domain} called by pid {}: only AF_UNIX exists in the sandbox, returning EAFNOSUPPORT",
                t.pid
            );
        }
        return Err(Errno::EAFNOSUPPORT);
    }
    if proto != 0 && proto != AF_UNIX as u64 {
        return Err(Errno::EPROTONOSUPPORT);
    }
    Ok(())
}

/// Installs `sock` as a new descriptor.
fn install(t: &Task, sock: Arc<Socket>, nonblock: bool, cloexec: bool) -> SysResult<i32> {
    let status = libc::O_RDWR as u32 | if nonblock { libc::O_NONBLOCK as u32 } else { 0 };
    let fdflags = if cloexec { FD_CLOEXEC } else { 0 };
    t.fds
        .insert(OpenFile::new(sock, status), fdflags, 0, t.nofile())
}

/// Implements socket(2).
pub fn sys_socket(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    check_family(t, a[0], a[2])?;
    let (kind, nonblock, cloexec) = kind_arg(a[1])?;
    let sock = Socket::new(kind, cred_of(t));
    Ok(install(t, sock, nonblock, cloexec)? as u64)
}

/// Implements socketpair(2).
pub fn sys_socketpair(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    // The internet families have no pairs on Linux either.
    if a[0] == libc::AF_INET as u64 || a[0] == libc::AF_INET6 as u64 {
        return Err(Errno::EOPNOTSUPP);
    }
    check_family(t, a[0], a[2])?;
    let (kind, nonblock, cloexec) = kind_arg(a[1])?;
    let (x, y) = Socket::pair(kind, cred_of(t));
    super::file::install_pair(
        t,
        a[3],
        |t| install(t, x, nonblock, cloexec),
        |t| install(t, y, nonblock, cloexec),
    )
}

/// A sockaddr as given: its family and the name (None: unnamed, only the
/// family).
fn read_addr(t: &Task, addr: u64, len: u64) -> SysResult<(u16, Option<Addr>)> {
    if len < PATH_OFF as u64 || len > (PATH_OFF + PATH_MAX) as u64 {
        return Err(Errno::EINVAL);
    }
    let mut raw = vec![0u8; len as usize];
    t.mm.copy_in(addr, &mut raw)?;
    let family = u16::from_le_bytes([raw[0], raw[1]]);
    let path = &raw[PATH_OFF..];
    let name = match path.first() {
        None => None,
        Some(0) => Some(Addr::Abstract(path[1..].to_vec())),
        Some(_) => {
            let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
            Some(Addr::Path(path[..end].to_vec()))
        }
    };
    Ok((family, name))
}

/// The sockaddr_un of `name`.
fn encode_addr(name: Option<&Addr>) -> Vec<u8> {
    let mut out = AF_UNIX.to_le_bytes().to_vec();
    match name {
        None => {}
        Some(Addr::Path(p)) => {
            out.extend_from_slice(p);
            out.push(0);
        }
        Some(Addr::Abstract(n)) => {
            out.push(0);
            out.extend_from_slice(n);
        }
    }
    out
}

/// Writes `name` to a (sockaddr, socklen_t*) pair of the guest: as much as
/// fits, and its whole length.
fn write_addr(t: &Task, addr: u64, lenp: u64, name: Option<&Addr>) -> SysResult<()> {
    if addr == 0 || lenp == 0 {
        return Ok(());
    }
    let room = t.mm.read_u32(lenp)? as i32;
    if room < 0 {
        return Err(Errno::EINVAL);
    }
    let bytes = encode_addr(name);
    let n = bytes.len().min(room as usize);
    t.mm.copy_out(addr, &bytes[..n])?;
    t.mm.write_u32(lenp, bytes.len() as u32)
}

/// The socket a name stands for: ECONNREFUSED when nobody is bound to it.
fn find(t: &mut Task, name: &Addr) -> SysResult<Arc<Socket>> {
    match name {
        Addr::Abstract(n) => Socket::find_abstract(n).ok_or(Errno::ECONNREFUSED),
        Addr::Path(p) => {
            if p.is_empty() {
                return Err(Errno::ENOENT);
            }
            let node = lookup_at(t, AT_FDCWD, p, Follow::Yes)?;
            let st = t.fs.fresh_stat(&node)?;
            if st.mode & S_IFMT != S_IFSOCK {
                return Err(Errno::ECONNREFUSED);
            }
            if !permitted(t, &st, 2) {
                return Err(Errno::EACCES);
            }
            let inode = node.upper().ok_or(Errno::ECONNREFUSED)?;
            Socket::find_path(inode).ok_or(Errno::ECONNREFUSED)
        }
    }
}

/// Implements bind(2).
pub fn sys_bind(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let (_, sock) = socket(t, a[0])?;
    let (family, name) = read_addr(t, a[1], a[2])?;
    if family != AF_UNIX {
        return Err(Errno::EINVAL);
    }
    if sock.name().is_some() {
        return Err(Errno::EINVAL);
    }
    match name {
        None => sock.autobind()?,
        Some(Addr::Path(p)) => {
            if p.is_empty() {
                return Err(Errno::ENOENT);
            }
            let inode = super::fs::make_socket_node(t, &p)?;
            sock.bind(Addr::Path(p), Some(inode))?;
        }
        Some(abs) => sock.bind(abs, None)?,
    }
    Ok(0)
}

/// Implements listen(2).
pub fn sys_listen(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let (_, sock) = socket(t, a[0])?;
    // A negative or huge backlog is net.core.somaxconn.
    let backlog = (a[1] as u32).min(4096) as usize;
    sock.listen(backlog, cred_of(t))?;
    Ok(0)
}

/// Implements connect(2).
pub fn sys_connect(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let (file, sock) = socket(t, a[0])?;
    let (family, name) = read_addr(t, a[1], a[2])?;
    if family == AF_UNSPEC && sock.kind() == Kind::Dgram {
        sock.disconnect()?;
        return Ok(0);
    }
    if family != AF_UNIX {
        return Err(Errno::EINVAL);
    }
    let target = find(t, &name.ok_or(Errno::EINVAL)?)?;
    sock.connect(&target, cred_of(t), file.nonblocking())?;
    Ok(0)
}

/// Implements accept4(2).
pub fn sys_accept4(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let flags = a[3];
    if flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let (file, sock) = socket(t, a[0])?;
    let conn = sock.accept(file.nonblocking())?;
    let peer = conn.peer_name().ok().flatten();
    let fd = install(
        t,
        conn,
        flags & SOCK_NONBLOCK != 0,
        flags & SOCK_CLOEXEC != 0,
    )?;
    if let Err(e) = write_addr(t, a[1], a[2], peer.as_ref()) {
        let _ = t.fds.remove(fd);
        return Err(e);
    }
    Ok(fd as u64)
}

/// Implements accept(2).
pub fn sys_accept(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    sys_accept4(t, [a[0], a[1], a[2], 0, 0, 0])
}

/// Implements getsockname(2).
pub fn sys_getsockname(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let (_, sock) = socket(t, a[0])?;
    write_addr(t, a[1], a[2], sock.name().as_ref())?;
    Ok(0)
}

/// Implements getpeername(2).
pub fn sys_getpeername(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let (_, sock) = socket(t, a[0])?;
    let peer = sock.peer_name()?;
    write_addr(t, a[1], a[2], peer.as_ref())?;
    Ok(0)
}

/// Implements shutdown(2).
pub fn sys_shutdown(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let (_, sock) = socket(t, a[0])?;
    sock.shutdown(a[1])?;
    Ok(0)
}

/// The descriptors and credentials a message's control data carries.
fn parse_control(t: &Task, control: &[u8]) -> SysResult<(Vec<Arc<OpenFile>>, Option<Cred>)> {
    let mut rights = Vec::new();
    let mut cred = None;
    let mut at = 0;
    while control.len() - at >= 16 {
        let len = u64::from_le_bytes(control[at..at + 8].try_into().unwrap()) as usize;
        let level = i32::from_le_bytes(control[at + 8..at + 12].try_into().unwrap());
        let ty = i32::from_le_bytes(control[at + 12..at + 16].try_into().unwrap());
        if len < 16 || len > control.len() - at {
            return Err(Errno::EINVAL);
        }
        let data = &control[at + 16..at + len];
        if level as u64 != SOL_SOCKET {
            return Err(Errno::EINVAL);
        }
        match ty {
            SCM_RIGHTS => {
                for fd in data.chunks_exact(4) {
                    let fd = i32::from_le_bytes(fd.try_into().unwrap());
                    rights.push(t.fds.get(fd)?);
                }
                if rights.len() > MAX_RIGHTS {
                    return Err(Errno::EINVAL);
                }
            }
            SCM_CREDENTIALS if data.len() >= 12 => {
                let c = Cred {
                    pid: i32::from_le_bytes(data[0..4].try_into().unwrap()),
                    uid: u32::from_le_bytes(data[4..8].try_into().unwrap()),
                    gid: u32::from_le_bytes(data[8..12].try_into().unwrap()),
                };
                check_cred(t, c)?;
                cred = Some(c);
            }
            _ => return Err(Errno::EINVAL),
        }
        at += (len + 7) & !7;
    }
    Ok((rights, cred))
}

/// Credentials a sender may claim: its own pid and one of its ids,
/// unless it holds CAP_SYS_ADMIN, CAP_SETUID or CAP_SETGID (EPERM).
fn check_cred(t: &Task, c: Cred) -> SysResult<()> {
    const CAP_SETGID: u32 = 6;
    const CAP_SETUID: u32 = 7;
    const CAP_SYS_ADMIN: u32 = 21;
    let k = &t.creds;
    let pid_ok = c.pid == t.pid || t.creds.has_cap(CAP_SYS_ADMIN);
    let uid_ok = [k.uid, k.euid, k.suid].contains(&c.uid) || k.has_cap(CAP_SETUID);
    let gid_ok = [k.gid, k.egid, k.sgid].contains(&c.gid) || k.has_cap(CAP_SETGID);
    if pid_ok && uid_ok && gid_ok {
        Ok(())
    } else {
        Err(Errno::EPERM)
    }
}

/// One send: `data` to the socket at `fd`, to `dest` (a sockaddr, len)
/// if given, with `control` data.
fn send(
    t: &mut Task,
    fd: u64,
    data: &[u8],
    dest: Option<(u64, u64)>,
    control: &[u8],
    flags: u64,
) -> SysResult<u64> {
    let (file, sock) = socket(t, fd)?;
    if flags & MSG_OOB != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    let to = match dest {
        Some(_) if sock.kind() != Kind::Dgram => {
            return Err(if sock.peer_name().is_ok() {
                Errno::EISCONN
            } else {
                Errno::EOPNOTSUPP
            });
        }
        Some((addr, len)) => {
            let (family, name) = read_addr(t, addr, len)?;
            if family != AF_UNIX {
                return Err(Errno::EINVAL);
            }
            Some(find(t, &name.ok_or(Errno::EINVAL)?)?)
        }
        None => None,
    };
    let (rights, claimed) = parse_control(t, control)?;
    let cred = claimed.unwrap_or_else(|| cred_of(t));
    let nonblock = file.nonblocking() || flags & MSG_DONTWAIT != 0;
    match sock.send(data, rights, cred, to, sock.name(), nonblock) {
        Err(Errno::EPIPE) if flags & MSG_NOSIGNAL == 0 => Err(sigpipe(t)),
        r => Ok(r? as u64),
    }
}

/// One receive of at most `max` bytes from the socket at `fd`.
fn recv(t: &Task, fd: u64, max: usize, flags: u64) -> SysResult<(Arc<Socket>, Received)> {
    let (file, sock) = socket(t, fd)?;
    if flags & MSG_OOB != 0 {
        return Err(Errno::EINVAL);
    }
    let how = RecvFlags {
        peek: flags & MSG_PEEK != 0,
        nonblock: file.nonblocking() || flags & MSG_DONTWAIT != 0,
        waitall: flags & MSG_WAITALL != 0,
    };
    let got = sock.recv(max, how)?;
    Ok((sock, got))
}

/// The value recv returns: the bytes read, or with MSG_TRUNC on a record
/// socket its whole length.
fn recv_result(sock: &Socket, got: &Received, flags: u64) -> u64 {
    if flags & MSG_TRUNC != 0 && sock.kind() != Kind::Stream {
        got.len as u64
    } else {
        got.data.len() as u64
    }
}

/// Implements sendto(2).
pub fn sys_sendto(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let mut buf = vec![0u8; (a[2] as usize).min(SEND_MAX)];
    t.mm.copy_in(a[1], &mut buf)?;
    let dest = (a[4] != 0).then_some((a[4], a[5]));
    send(t, a[0], &buf, dest, &[], a[3])
}

/// Implements recvfrom(2).
pub fn sys_recvfrom(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let (sock, got) = recv(t, a[0], (a[2] as usize).min(SEND_MAX), a[3])?;
    t.mm.copy_out(a[1], &got.data)?;
    if got.from.is_some() {
        write_addr(t, a[4], a[5], got.from.as_ref())?;
    } else if a[4] != 0 && a[5] != 0 {
        // An unnamed sender has no address at all: length 0.
        t.mm.write_u32(a[5], 0)?;
    }
    Ok(recv_result(&sock, &got, a[3]))
}

/// A struct msghdr of the guest.
struct MsgHdr {
    name: u64,
    namelen: u32,
    iov: Vec<(u64, usize)>,
    control: u64,
    controllen: u64,
}

fn read_msghdr(t: &mut Task, addr: u64) -> SysResult<MsgHdr> {
    let mut raw = [0u8; MSGHDR];
    t.mm.copy_in(addr, &mut raw)?;
    let u64_at = |o: usize| u64::from_le_bytes(raw[o..o + 8].try_into().unwrap());
    let iov = iovecs(t, u64_at(16), u64_at(24))?;
    Ok(MsgHdr {
        name: u64_at(0),
        namelen: u32::from_le_bytes(raw[8..12].try_into().unwrap()),
        iov,
        control: u64_at(32),
        controllen: u64_at(40),
    })
}

fn sendmsg_one(t: &mut Task, fd: u64, msg: u64, flags: u64) -> SysResult<u64> {
    let h = read_msghdr(t, msg)?;
    let total: usize = h.iov.iter().map(|&(_, l)| l).sum();
    let mut data = Vec::with_capacity(total.min(SEND_MAX));
    for &(base, len) in &h.iov {
        let take = len.min(SEND_MAX - data.len());
        let at = data.len();
        data.resize(at + take, 0);
        t.mm.copy_in(base, &mut data[at..])?;
    }
    if h.controllen > 1 << 20 {
        return Err(Errno::ENOBUFS);
    }
    let mut control = vec![0u8; h.controllen as usize];
    if !control.is_empty() {
        t.mm.copy_in(h.control, &mut control)?;
    }
    let dest = (h.name != 0 && h.namelen != 0).then_some((h.name, h.namelen as u64));
    send(t, fd, &data, dest, &control, flags)
}

/// Writes the control data of a received message: credentials (with
/// SO_PASSCRED), then descriptors installed in the receiver. Returns the
/// bytes used and whether some did not fit (MSG_CTRUNC).
fn write_control(
    t: &mut Task,
    sock: &Socket,
    got: &Received,
    at: u64,
    room: u64,
    cloexec: bool,
) -> SysResult<(u64, bool)> {
    let mut out = Vec::new();
    let mut trunc = false;
    let cmsg = |out: &mut Vec<u8>, ty: i32, data: &[u8]| {
        out.extend_from_slice(&((16 + data.len()) as u64).to_le_bytes());
        out.extend_from_slice(&(SOL_SOCKET as i32).to_le_bytes());
        out.extend_from_slice(&ty.to_le_bytes());
        out.extend_from_slice(data);
        while out.len() % 8 != 0 {
            out.push(0);
        }
    };
    if let Some(c) = got.cred.filter(|_| sock.passcred()) {
        if room >= 16 + 12 {
            let mut d = Vec::with_capacity(12);
            d.extend_from_slice(&c.pid.to_le_bytes());
            d.extend_from_slice(&c.uid.to_le_bytes());
            d.extend_from_slice(&c.gid.to_le_bytes());
            cmsg(&mut out, SCM_CREDENTIALS, &d);
        } else {
            trunc = true;
        }
    }
    if !got.rights.is_empty() {
        let left = (room as usize).saturating_sub(out.len());
        let fit = left.saturating_sub(16) / 4;
        let n = got.rights.len().min(fit);
        trunc |= n < got.rights.len();
        let mut fds = Vec::with_capacity(n * 4);
        for f in got.rights.iter().take(n) {
            let fd = t.fds.insert(
                f.clone(),
                if cloexec { FD_CLOEXEC } else { 0 },
                0,
                t.nofile(),
            )?;
            fds.extend_from_slice(&fd.to_le_bytes());
        }
        if n > 0 {
            cmsg(&mut out, SCM_RIGHTS, &fds);
        }
    }
    let len = out.len().min(room as usize);
    t.mm.copy_out(at, &out[..len])?;
    Ok((len as u64, trunc))
}

fn recvmsg_one(t: &mut Task, fd: u64, msg: u64, flags: u64) -> SysResult<u64> {
    let h = read_msghdr(t, msg)?;
    let total: usize = h.iov.iter().map(|&(_, l)| l).sum();
    let (sock, got) = recv(t, fd, total.min(SEND_MAX), flags)?;
    let mut at = 0;
    for &(base, len) in &h.iov {
        if at == got.data.len() {
            break;
        }
        let n = len.min(got.data.len() - at);
        t.mm.copy_out(base, &got.data[at..at + n])?;
        at += n;
    }
    let mut msg_flags = 0u32;
    if got.len > got.data.len() && sock.kind() != Kind::Stream {
        msg_flags |= MSG_TRUNC as u32;
    }
    let (clen, ctrunc) = if h.control != 0 {
        write_control(
            t,
            &sock,
            &got,
            h.control,
            h.controllen,
            flags & MSG_CMSG_CLOEXEC != 0,
        )?
    } else {
        (
            0,
            !got.rights.is_empty() || (got.cred.is_some() && sock.passcred()),
        )
    };
    if ctrunc {
        msg_flags |= MSG_CTRUNC;
    }
    let namelen = if h.name != 0 {
        let bytes = match &got.from {
            Some(from) => encode_addr(Some(from)),
            None => Vec::new(),
        };
        let n = bytes.len().min(h.namelen as usize);
        t.mm.copy_out(h.name, &bytes[..n])?;
        bytes.len() as u32
    } else {
        0
    };
    t.mm.write_u32(msg + 8, namelen)?;
    t.mm.write_u64(msg + 40, clen)?;
    t.mm.write_u32(msg + 48, msg_flags)?;
    Ok(recv_result(&sock, &got, flags))
}

/// Implements sendmsg(2).
pub fn sys_sendmsg(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    sendmsg_one(t, a[0], a[1], a[2])
}

/// Implements recvmsg(2).
pub fn sys_recvmsg(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    recvmsg_one(t, a[0], a[1], a[2])
}

/// Runs `one` over the mmsghdr array of sendmmsg/recvmmsg, storing each
/// result in msg_len; an error after the first message ends the batch.
fn each_mmsg(
    t: &mut Task,
    a: [u64; 6],
    mut one: impl FnMut(&mut Task, u64, usize) -> SysResult<u64>,
) -> SysResult<u64> {
    let n = a[2].min(MMSG_MAX);
    let mut done = 0;
    while done < n {
        let hdr = a[1] + done * MMSGHDR;
        match one(t, hdr, done as usize) {
            Ok(len) => t.mm.write_u32(hdr + MSGHDR as u64, len as u32)?,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
        done += 1;
    }
    Ok(done)
}

/// Implements sendmmsg(2).
pub fn sys_sendmmsg(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    each_mmsg(t, a, |t, hdr, _| sendmsg_one(t, a[0], hdr, a[3]))
}

/// Implements recvmmsg(2). MSG_WAITFORONE makes every receive after the
/// first non-blocking; the timeout is checked between messages.
pub fn sys_recvmmsg(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let deadline = super::time::read_timeout(t, a[4])?;
    let flags = a[3];
    each_mmsg(t, a, |t, hdr, i| {
        let past = deadline.is_some_and(|d| std::time::Instant::now() >= d);
        if i > 0 && past {
            return Err(Errno::EAGAIN);
        }
        let f = if i > 0 && flags & MSG_WAITFORONE != 0 {
            flags | MSG_DONTWAIT
        } else {
            flags
        };
        recvmsg_one(t, a[0], hdr, f & !MSG_WAITFORONE)
    })
}

/// Reads a struct timeval option: None for zero (wait for ever).
fn timeval_opt(t: &Task, addr: u64, len: u64) -> SysResult<Option<Duration>> {
    if len < 16 {
        return Err(Errno::EINVAL);
    }
    let secs = t.mm.read_u64(addr)? as i64;
    let usecs = t.mm.read_u64(addr + 8)? as i64;
    if !(0..1_000_000).contains(&usecs) {
        return Err(Errno::EDOM);
    }
    if secs < 0 {
        // Linux takes a negative time as "do not wait".
        return Ok(Some(Duration::ZERO));
    }
    let d = Duration::new(secs as u64, usecs as u32 * 1000);
    Ok((!d.is_zero()).then_some(d))
}

/// Implements setsockopt(2) (SOL_SOCKET options of unix sockets).
pub fn sys_setsockopt(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let (_, sock) = socket(t, a[0])?;
    let (level, opt, val, len) = (a[1], a[2], a[3], a[4]);
    if level != SOL_SOCKET {
        return Err(Errno::EOPNOTSUPP);
    }
    let int = |t: &Task| -> SysResult<i32> {
        if len < 4 {
            return Err(Errno::EINVAL);
        }
        Ok(t.mm.read_u32(val)? as i32)
    };
    match opt {
        SO_PASSCRED => sock.set_passcred(int(t)? != 0),
        SO_RCVBUF | SO_RCVBUFFORCE => sock.set_buf(true, int(t)?.max(0) as usize),
        SO_SNDBUF | SO_SNDBUFFORCE => sock.set_buf(false, int(t)?.max(0) as usize),
        SO_RCVTIMEO => sock.set_timeout(true, timeval_opt(t, val, len)?),
        SO_SNDTIMEO => sock.set_timeout(false, timeval_opt(t, val, len)?),
        SO_REUSEADDR | SO_KEEPALIVE | SO_BROADCAST | SO_OOBINLINE => {
            let v = (int(t)? != 0) as i32;
            sock.set_inert(opt as u32, v.to_le_bytes().to_vec());
        }
        SO_LINGER => {
            if len < 8 {
                return Err(Errno::EINVAL);
            }
            let mut v = vec![0u8; 8];
            t.mm.copy_in(val, &mut v)?;
            sock.set_inert(opt as u32, v);
        }
        _ => return Err(Errno::ENOPROTOOPT),
    }
    Ok(0)
}

/// Implements getsockopt(2).
pub fn sys_getsockopt(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let (_, sock) = socket(t, a[0])?;
    let (level, opt, val, lenp) = (a[1], a[2], a[3], a[4]);
    if level != SOL_SOCKET {
        return Err(Errno::EOPNOTSUPP);
    }
    let room = t.mm.read_u32(lenp)? as i32;
    if room < 0 {
        return Err(Errno::EINVAL);
    }
    let int = |v: i64| (v as i32).to_le_bytes().to_vec();
    let timeval = |d: Option<Duration>| {
        let d = d.unwrap_or_default();
        let mut v = (d.as_secs() as i64).to_le_bytes().to_vec();
        v.extend_from_slice(&(d.subsec_micros() as i64).to_le_bytes());
        v
    };
    let (rcvbuf, sndbuf) = sock.bufs();
    let (rcvtimeo, sndtimeo) = sock.timeouts();
    let bytes = match opt {
        SO_TYPE => int(sock.kind() as i64),
        SO_DOMAIN => int(AF_UNIX as i64),
        SO_PROTOCOL | SO_ERROR => int(0),
        SO_ACCEPTCONN => int(sock.listening() as i64),
        SO_PASSCRED => int(sock.passcred() as i64),
        SO_RCVBUF => int(rcvbuf as i64),
        SO_SNDBUF => int(sndbuf as i64),
        SO_RCVTIMEO => timeval(rcvtimeo),
        SO_SNDTIMEO => timeval(sndtimeo),
        SO_PEERCRED => {
            let c = sock.peer_cred();
            let mut v = c.pid.to_le_bytes().to_vec();
            v.extend_from_slice(&c.uid.to_le_bytes());
            v.extend_from_slice(&c.gid.to_le_bytes());
            v
        }
        SO_REUSEADDR | SO_KEEPALIVE | SO_BROADCAST | SO_OOBINLINE => {
            sock.inert(opt as u32).unwrap_or_else(|| int(0))
        }
        SO_LINGER => sock.inert(opt as u32).unwrap_or_else(|| vec![0; 8]),
        _ => return Err(Errno::ENOPROTOOPT),
    };
    let n = bytes.len().min(room as usize);
    t.mm.copy_out(val, &bytes[..n])?;
    t.mm.write_u32(lenp, n as u32)?;
    Ok(0)
}
