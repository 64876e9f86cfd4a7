//! Unix domain sockets (AF_UNIX), implemented in the sentry: stream,
//! datagram and seqpacket sockets, socketpair, names in the file system
//! (a socket inode in the overlay or a tmpfs) and in the abstract
//! namespace, listen/connect/accept, shutdown, and messages that carry
//! descriptors (SCM_RIGHTS) and credentials (SCM_CREDENTIALS).
//!
//! Every socket has one lock over its state and its receive queue. A
//! sender locks its own state to find its peer, lets go, then locks the
//! peer's to queue data: no two socket locks are ever held together. A
//! connected socket knows its peer by a weak reference; when a socket
//! goes (its last descriptor closed), it tells its peer, whose reads then
//! see end of file and whose writes fail with EPIPE.
//!
//! Readiness: a socket's wait queue hears POLLIN when data, a connection
//! or end of file arrives, and POLLOUT when room appears in the queue it
//! sends into. A blocked stream sender sleeps on its own queue (its peer
//! tells it when it read); a blocked datagram sender sleeps on the
//! receiver's queue (the receiver tells its own queue when it read).
//!
//! Names: a path name is an S_IFSOCK inode; the registry maps that inode
//! (by address, kept alive by the bound socket) to the socket. Abstract
//! names live in one table for the sandbox (its one network namespace).
//! A descriptor passed inside a message that is never received stays
//! alive until the socket holding it goes (no garbage collection of
//! cycles of sockets sent over themselves, unlike Linux).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use super::file::{FileOps, OpenFile};
use super::poll::{POLLHUP, POLLIN, POLLOUT, POLLRDHUP, POLLRDNORM, POLLWRNORM};
use super::tmpfs::TmpInode;
use super::waitq::{block_current_until, WaitQueue};
use crate::abi::types::{Stat, S_IFSOCK};
use crate::abi::{Errno, SysResult};

/// Bytes a socket may hold unread (Linux's default net.core.rmem_default
/// is near this).
pub const BUF_SIZE: usize = 212_992;
/// Descriptors one message may carry (SCM_MAX_FD).
pub const MAX_RIGHTS: usize = 253;
/// Datagrams a socket may hold unread (net.unix.max_dgram_qlen).
const MAX_DGRAMS: usize = 512;
/// The device number sockets report (sockfs).
const SOCK_DEV: u64 = 0x8;

/// The kind of a socket (its SOCK_* type).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Stream = 1,
    Dgram = 2,
    Seqpacket = 5,
}

impl Kind {
    fn connection(self) -> bool {
        self != Kind::Dgram
    }
}

/// The name of a socket.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Addr {
    /// A file system path, as given to bind.
    Path(Vec<u8>),
    /// An abstract name (the bytes after sun_path's leading NUL).
    Abstract(Vec<u8>),
}

/// Who sent a message, or who is at the other end (SO_PEERCRED).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cred {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

/// One queued message (a datagram, a seqpacket record, or a run of
/// stream bytes written by one send).
struct Msg {
    data: Vec<u8>,
    /// Bytes of `data` already read (stream only).
    read: usize,
    rights: Vec<Arc<OpenFile>>,
    cred: Cred,
    from: Option<Addr>,
}

/// What a receive got.
#[derive(Default)]
pub struct Received {
    pub data: Vec<u8>,
    /// The whole length of the message (datagrams: more than `data` when
    /// it was truncated).
    pub len: usize,
    pub rights: Vec<Arc<OpenFile>>,
    pub cred: Option<Cred>,
    pub from: Option<Addr>,
}

/// How a receive behaves (MSG_* flags, the descriptor's O_NONBLOCK).
#[derive(Clone, Copy, Default)]
pub struct RecvFlags {
    pub peek: bool,
    pub nonblock: bool,
    pub waitall: bool,
}

enum Conn {
    Idle,
    Listening {
        backlog: usize,
        pending: VecDeque<Arc<Socket>>,
    },
    Connected(Weak<Socket>),
}

struct Inner {
    conn: Conn,
    bound: Option<Addr>,
    /// The inode a path name lives in (it keeps the registry key unique).
    inode: Option<Arc<TmpInode>>,
    rx: VecDeque<Msg>,
    rx_bytes: usize,
    /// shutdown(SHUT_RD) here, or SHUT_WR by the peer, or the peer went:
    /// reads end at the data queued.
    rd_closed: bool,
    /// shutdown(SHUT_WR) here, or SHUT_RD by the peer, or the peer went.
    wr_closed: bool,
    /// The peer of a connection went (stream and seqpacket).
    peer_gone: bool,
    passcred: bool,
    rcvbuf: usize,
    sndbuf: usize,
    rcvtimeo: Option<Duration>,
    sndtimeo: Option<Duration>,
    /// Who is at the other end (SO_PEERCRED).
    peer_cred: Option<Cred>,
}

/// An AF_UNIX socket.
pub struct Socket {
    me: Weak<Socket>,
    kind: Kind,
    /// Options Linux keeps but that change nothing for a unix socket
    /// (SO_REUSEADDR, SO_KEEPALIVE, ...), as getsockopt returns them.
    inert: Mutex<std::collections::BTreeMap<u32, Vec<u8>>>,
    ino: u64,
    /// Whoever made it, as of socket(), listen() or connect().
    cred: Mutex<Cred>,
    queue: Arc<WaitQueue>,
    inner: Mutex<Inner>,
}

/// Names in use: abstract names, and path inodes by address.
#[derive(Default)]
struct Registry {
    abstract_names: HashMap<Vec<u8>, Weak<Socket>>,
    paths: HashMap<usize, Weak<Socket>>,
}

fn registry() -> MutexGuard<'static, Registry> {
    static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(Default::default);
    REGISTRY.lock().unwrap()
}

/// Blocks as [`block_current_until`] does, a wait that reaches
/// `deadline` (SO_RCVTIMEO, SO_SNDTIMEO) ending with EAGAIN.
fn wait<R>(
    queue: &Arc<WaitQueue>,
    mask: u16,
    deadline: Option<Instant>,
    attempt: impl FnMut() -> Option<SysResult<R>>,
) -> SysResult<R> {
    block_current_until(queue, mask, deadline, attempt).map_err(|e| match e {
        Errno::ETIMEDOUT => Errno::EAGAIN,
        e => e,
    })
}

impl Socket {
    /// A new unconnected socket made by `cred`.
    pub fn new(kind: Kind, cred: Cred) -> Arc<Socket> {
        Arc::new_cyclic(|me| Socket {
            me: me.clone(),
            kind,
            inert: Mutex::default(),
            ino: super::anon::next_ino(),
            cred: Mutex::new(cred),
            queue: WaitQueue::new(),
            inner: Mutex::new(Inner {
                conn: Conn::Idle,
                bound: None,
                inode: None,
                rx: VecDeque::new(),
                rx_bytes: 0,
                rd_closed: false,
                wr_closed: false,
                peer_gone: false,
                passcred: false,
                rcvbuf: BUF_SIZE,
                sndbuf: BUF_SIZE,
                rcvtimeo: None,
                sndtimeo: None,
                peer_cred: None,
            }),
        })
    }

    /// Two sockets connected to each other (socketpair).
    pub fn pair(kind: Kind, cred: Cred) -> (Arc<Socket>, Arc<Socket>) {
        let (a, b) = (Socket::new(kind, cred), Socket::new(kind, cred));
        Socket::join(&a, &b);
        (a, b)
    }

    /// Connects `a` and `b` to each other, each knowing the other's maker.
    fn join(a: &Arc<Socket>, b: &Arc<Socket>) {
        let (ca, cb) = (*a.cred.lock().unwrap(), *b.cred.lock().unwrap());
        {
            let mut ia = a.lock();
            ia.conn = Conn::Connected(Arc::downgrade(b));
            ia.peer_cred = Some(cb);
        }
        let mut ib = b.lock();
        ib.conn = Conn::Connected(Arc::downgrade(a));
        ib.peer_cred = Some(ca);
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap()
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// This socket as an `Arc` (it is only ever made in one).
    pub fn arc(&self) -> Arc<Socket> {
        self.me.upgrade().expect("a socket in use is alive")
    }

    /// The value of an inert option, if set.
    pub fn inert(&self, opt: u32) -> Option<Vec<u8>> {
        self.inert.lock().unwrap().get(&opt).cloned()
    }

    pub fn set_inert(&self, opt: u32, v: Vec<u8>) {
        self.inert.lock().unwrap().insert(opt, v);
    }

    /// Forgets a datagram socket's peer (connect to AF_UNSPEC).
    pub fn disconnect(&self) -> SysResult<()> {
        if self.kind.connection() {
            return Err(Errno::EINVAL);
        }
        self.lock().conn = Conn::Idle;
        Ok(())
    }

    /// The socket of `file`, if it is one.
    pub fn of(file: &OpenFile) -> Option<&Socket> {
        file.ops.as_any()?.downcast_ref::<Socket>()
    }

    /// The connected peer, while it exists.
    fn peer(&self) -> Option<Arc<Socket>> {
        match &self.lock().conn {
            Conn::Connected(p) => p.upgrade(),
            _ => None,
        }
    }

    pub fn name(&self) -> Option<Addr> {
        self.lock().bound.clone()
    }

    /// The peer's name (getpeername): ENOTCONN when not connected.
    pub fn peer_name(&self) -> SysResult<Option<Addr>> {
        let peer = match &self.lock().conn {
            Conn::Connected(p) => p.clone(),
            _ => return Err(Errno::ENOTCONN),
        };
        Ok(peer.upgrade().and_then(|p| p.name()))
    }

    /// Gives the socket the abstract name `name`, or path `path` whose new
    /// socket inode is `inode`. EINVAL if it has a name already.
    pub fn bind(self: &Arc<Self>, addr: Addr, inode: Option<Arc<TmpInode>>) -> SysResult<()> {
        let mut inner = self.lock();
        if inner.bound.is_some() {
            return Err(Errno::EINVAL);
        }
        let mut reg = registry();
        match (&addr, &inode) {
            (Addr::Abstract(name), _) => {
                let taken = reg
                    .abstract_names
                    .get(name)
                    .is_some_and(|w| w.strong_count() > 0);
                if taken {
                    return Err(Errno::EADDRINUSE);
                }
                reg.abstract_names
                    .insert(name.clone(), Arc::downgrade(self));
            }
            (Addr::Path(_), Some(inode)) => {
                let key = Arc::as_ptr(inode) as usize;
                reg.paths.insert(key, Arc::downgrade(self));
            }
            (Addr::Path(_), None) => return Err(Errno::EINVAL),
        }
        inner.bound = Some(addr);
        inner.inode = inode;
        Ok(())
    }

    /// Binds an unnamed socket to a fresh abstract name of five hex
    /// digits, as Linux's autobind does; a named one keeps its name.
    pub fn autobind(self: &Arc<Self>) -> SysResult<()> {
        if self.lock().bound.is_some() {
            return Ok(());
        }
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
        for _ in 0..0x10_0000 {
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) & 0xf_ffff;
            let name = format!("{n:05x}").into_bytes();
            match self.bind(Addr::Abstract(name), None) {
                Err(Errno::EADDRINUSE) => continue,
                r => return r,
            }
        }
        Err(Errno::ENOSPC)
    }

    /// The socket bound to abstract name `name`.
    pub fn find_abstract(name: &[u8]) -> Option<Arc<Socket>> {
        registry().abstract_names.get(name)?.upgrade()
    }

    /// The socket bound to path inode `inode`.
    pub fn find_path(inode: &Arc<TmpInode>) -> Option<Arc<Socket>> {
        let key = Arc::as_ptr(inode) as usize;
        registry().paths.get(&key)?.upgrade()
    }

    /// listen(2): EINVAL unless bound and unconnected; EOPNOTSUPP for
    /// datagram sockets.
    pub fn listen(&self, backlog: usize, cred: Cred) -> SysResult<()> {
        if !self.kind.connection() {
            return Err(Errno::EOPNOTSUPP);
        }
        let mut inner = self.lock();
        if inner.bound.is_none() {
            return Err(Errno::EINVAL);
        }
        match &mut inner.conn {
            Conn::Connected(_) => return Err(Errno::EINVAL),
            Conn::Listening { backlog: b, .. } => *b = backlog,
            c @ Conn::Idle => {
                *c = Conn::Listening {
                    backlog,
                    pending: VecDeque::new(),
                };
                *self.cred.lock().unwrap() = cred;
            }
        }
        Ok(())
    }

    /// connect(2) to `target`. A connection socket queues a new socket on
    /// the listener for accept and is connected at once (a full backlog
    /// waits, or EAGAIN when `nonblock`); a datagram socket just takes
    /// `target` as where its sends go.
    pub fn connect(
        self: &Arc<Self>,
        target: &Arc<Socket>,
        cred: Cred,
        nonblock: bool,
    ) -> SysResult<()> {
        if target.kind != self.kind {
            return Err(Errno::EPROTOTYPE);
        }
        if !self.kind.connection() {
            self.lock().conn = Conn::Connected(Arc::downgrade(target));
            return Ok(());
        }
        match self.lock().conn {
            Conn::Connected(_) => return Err(Errno::EISCONN),
            Conn::Listening { .. } => return Err(Errno::EINVAL),
            Conn::Idle => {}
        }
        *self.cred.lock().unwrap() = cred;
        let deadline = self.lock().sndtimeo.map(|d| Instant::now() + d);
        let server = Socket::new(self.kind, *target.cred.lock().unwrap());
        wait(&target.queue, POLLOUT, deadline, || {
            let mut t = target.lock();
            let bound = t.bound.clone();
            let Conn::Listening { backlog, pending } = &mut t.conn else {
                return Some(Err(Errno::ECONNREFUSED));
            };
            if pending.len() > *backlog {
                return nonblock.then_some(Err(Errno::EAGAIN));
            }
            // The accepted end is named as the listener is.
            {
                let mut s = server.lock();
                s.bound = bound;
                s.passcred = t.passcred;
            }
            Socket::join(self, &server);
            if let Conn::Listening { pending, .. } = &mut t.conn {
                pending.push_back(server.clone());
            }
            Some(Ok(()))
        })?;
        target.queue.notify(POLLIN | POLLRDNORM);
        Ok(())
    }

    /// accept(2): the next connection, waiting for one unless `nonblock`.
    pub fn accept(&self, nonblock: bool) -> SysResult<Arc<Socket>> {
        let deadline = self.lock().rcvtimeo.map(|d| Instant::now() + d);
        let s = wait(&self.queue, POLLIN, deadline, || {
            let mut inner = self.lock();
            let Conn::Listening { pending, .. } = &mut inner.conn else {
                return Some(Err(Errno::EINVAL));
            };
            match pending.pop_front() {
                Some(s) => Some(Ok(s)),
                None if nonblock => Some(Err(Errno::EAGAIN)),
                None => None,
            }
        })?;
        // Room in the backlog for a connector that waits.
        self.queue.notify(POLLOUT);
        Ok(s)
    }

    /// shutdown(2): `how` is SHUT_RD (0), SHUT_WR (1) or SHUT_RDWR (2).
    pub fn shutdown(&self, how: u64) -> SysResult<()> {
        if how > 2 {
            return Err(Errno::EINVAL);
        }
        let (rd, wr) = (how != 1, how != 0);
        let peer = {
            let mut inner = self.lock();
            let peer = match &inner.conn {
                Conn::Connected(p) => p.upgrade(),
                _ if self.kind.connection() => return Err(Errno::ENOTCONN),
                _ => None,
            };
            inner.rd_closed |= rd;
            inner.wr_closed |= wr;
            peer
        };
        if let Some(p) = peer.filter(|_| self.kind.connection()) {
            {
                let mut pi = p.lock();
                pi.rd_closed |= wr;
                pi.wr_closed |= rd;
            }
            p.queue.notify(POLLIN | POLLOUT | POLLRDHUP | POLLHUP);
        }
        self.queue.notify(POLLIN | POLLOUT | POLLRDHUP | POLLHUP);
        Ok(())
    }

    /// Sends `data` (with `rights` on its first byte) to the peer, or to
    /// `to` (datagrams). Streams send all of it unless non-blocking or
    /// interrupted (then what was sent, if any); records go whole.
    pub fn send(
        &self,
        data: &[u8],
        rights: Vec<Arc<OpenFile>>,
        cred: Cred,
        to: Option<Arc<Socket>>,
        from: Option<Addr>,
        nonblock: bool,
    ) -> SysResult<usize> {
        let (sndbuf, deadline, wr_closed, conn_peer) = {
            let inner = self.lock();
            let peer = match &inner.conn {
                Conn::Connected(p) => Some(p.clone()),
                _ => None,
            };
            let deadline = inner.sndtimeo.map(|d| Instant::now() + d);
            (inner.sndbuf, deadline, inner.wr_closed, peer)
        };
        if self.kind.connection() {
            if to.is_some() {
                return Err(if conn_peer.is_some() {
                    Errno::EISCONN
                } else {
                    Errno::EOPNOTSUPP
                });
            }
            let Some(peer) = conn_peer else {
                return Err(Errno::ENOTCONN);
            };
            if wr_closed {
                return Err(Errno::EPIPE);
            }
            let peer = peer.upgrade().ok_or(Errno::EPIPE)?;
            if self.kind == Kind::Seqpacket && data.len() > sndbuf {
                return Err(Errno::EMSGSIZE);
            }
            return self.send_connected(&peer, data, rights, cred, from, nonblock, deadline);
        }
        // A datagram: to `to`, or to the connected peer.
        let dest = match (to, conn_peer) {
            (Some(t), _) => t,
            (None, Some(p)) => p.upgrade().ok_or(Errno::ECONNREFUSED)?,
            (None, None) => return Err(Errno::ENOTCONN),
        };
        if wr_closed {
            return Err(Errno::EPIPE);
        }
        if data.len() > sndbuf {
            return Err(Errno::EMSGSIZE);
        }
        let me = self as *const Socket;
        let mut msg = Some(Msg {
            data: data.to_vec(),
            read: 0,
            rights,
            cred,
            from,
        });
        wait(&dest.queue, POLLOUT, deadline, || {
            let mut d = dest.lock();
            // A receiver connected elsewhere takes only from its peer.
            if let Conn::Connected(p) = &d.conn {
                if !std::ptr::eq(p.as_ptr(), me) {
                    return Some(Err(Errno::EPERM));
                }
            }
            if d.rd_closed {
                return Some(Err(Errno::EPIPE));
            }
            let full = d.rx.len() >= MAX_DGRAMS
                || (!d.rx.is_empty() && d.rx_bytes + data.len() > d.rcvbuf);
            if full {
                return nonblock.then_some(Err(Errno::EAGAIN));
            }
            d.rx_bytes += data.len();
            d.rx.push_back(msg.take().expect("queued once"));
            Some(Ok(()))
        })?;
        dest.queue.notify(POLLIN | POLLRDNORM);
        Ok(data.len())
    }

    #[allow(clippy::too_many_arguments)]
    fn send_connected(
        &self,
        peer: &Arc<Socket>,
        data: &[u8],
        mut rights: Vec<Arc<OpenFile>>,
        cred: Cred,
        from: Option<Addr>,
        nonblock: bool,
        deadline: Option<Instant>,
    ) -> SysResult<usize> {
        let stream = self.kind == Kind::Stream;
        if stream && data.is_empty() {
            // Nothing to queue: a stream has no empty messages.
            return Ok(0);
        }
        let mut sent = 0;
        loop {
            let r = wait(&self.queue, POLLOUT, deadline, || {
                if self.lock().wr_closed {
                    return Some(Err(Errno::EPIPE));
                }
                let mut p = peer.lock();
                if p.peer_gone || p.rd_closed {
                    return Some(Err(Errno::EPIPE));
                }
                let room = p.rcvbuf.saturating_sub(p.rx_bytes);
                let rest = data.len() - sent;
                // A record needs room for all of it (an empty queue takes
                // any record, so one larger than the buffer still goes).
                let n = if stream {
                    rest.min(room)
                } else if room >= rest || p.rx.is_empty() {
                    rest
                } else {
                    0
                };
                if n == 0 && !(rest == 0 && sent == 0) {
                    return nonblock.then_some(Err(Errno::EAGAIN));
                }
                p.rx_bytes += n;
                p.rx.push_back(Msg {
                    data: data[sent..sent + n].to_vec(),
                    read: 0,
                    rights: std::mem::take(&mut rights),
                    cred,
                    from: from.clone(),
                });
                Some(Ok(n))
            });
            match r {
                Ok(n) => {
                    sent += n;
                    peer.queue.notify(POLLIN | POLLRDNORM);
                    if sent == data.len() {
                        return Ok(sent);
                    }
                }
                Err(e) if sent > 0 && e != Errno::EPIPE => return Ok(sent),
                Err(e) => return Err(e),
            }
        }
    }

    /// Receives up to `max` bytes: a stream gives what is queued (up to
    /// the next message with descriptors), a record gives one message,
    /// truncated to `max`. End of file gives an empty result.
    pub fn recv(&self, max: usize, flags: RecvFlags) -> SysResult<Received> {
        let deadline = self.lock().rcvtimeo.map(|d| Instant::now() + d);
        let mut got = Received::default();
        loop {
            let r = wait(&self.queue, POLLIN, deadline, || {
                let mut inner = self.lock();
                if let Conn::Listening { .. } = inner.conn {
                    return Some(Err(Errno::EINVAL));
                }
                if inner.rx.is_empty() {
                    let idle = self.kind.connection() && matches!(inner.conn, Conn::Idle);
                    if idle {
                        return Some(Err(Errno::EINVAL));
                    }
                    if inner.rd_closed || inner.peer_gone || !got.data.is_empty() {
                        return Some(Ok(true));
                    }
                    return flags.nonblock.then_some(Err(Errno::EAGAIN));
                }
                Some(Ok(self.take(&mut inner, &mut got, max, flags.peek)))
            });
            let done = match r {
                Ok(done) => done,
                // An error after some bytes ends the read with them.
                Err(_) if !got.data.is_empty() => true,
                Err(e) => return Err(e),
            };
            if !flags.peek {
                self.queue.notify(POLLOUT | POLLWRNORM);
                if let Some(p) = self.peer() {
                    p.queue.notify(POLLOUT | POLLWRNORM);
                }
            }
            let more = self.kind == Kind::Stream
                && flags.waitall
                && !flags.peek
                && got.data.len() < max
                && got.rights.is_empty();
            if done || !more {
                return Ok(got);
            }
        }
    }

    /// Takes from the queue into `got`; true when the receive is complete.
    fn take(&self, inner: &mut Inner, got: &mut Received, max: usize, peek: bool) -> bool {
        if self.kind != Kind::Stream {
            let m = if peek { inner.rx.front() } else { None };
            let owned;
            let m = match m {
                Some(m) => m,
                None => {
                    owned = inner.rx.pop_front().expect("not empty");
                    inner.rx_bytes -= owned.data.len();
                    &owned
                }
            };
            let n = m.data.len().min(max);
            got.data.extend_from_slice(&m.data[..n]);
            got.len = m.data.len();
            got.rights = m.rights.clone();
            got.cred = Some(m.cred);
            got.from = m.from.clone();
            return true;
        }
        // Stream: bytes of several sends, but descriptors and a change of
        // sender end a read (as Linux keeps them apart).
        let mut i = 0;
        let check_cred = inner.passcred;
        while got.data.len() < max && i < inner.rx.len() {
            let m = &inner.rx[i];
            let first = got.data.is_empty() && got.cred.is_none();
            let other_sender = check_cred && got.cred != Some(m.cred);
            if !first && (!m.rights.is_empty() || other_sender) {
                break;
            }
            let avail = &m.data[m.read..];
            let n = avail.len().min(max - got.data.len());
            got.data.extend_from_slice(&avail[..n]);
            if first {
                got.cred = Some(m.cred);
                got.from = m.from.clone();
            }
            if peek {
                got.rights.extend(m.rights.iter().cloned());
                i += 1;
                continue;
            }
            let m = &mut inner.rx[i];
            got.rights.append(&mut m.rights);
            m.read += n;
            inner.rx_bytes -= n;
            if m.read == m.data.len() {
                inner.rx.pop_front();
            } else {
                break;
            }
        }
        got.len = got.data.len();
        // A zero-length read of a queued empty message still completes.
        true
    }

    /// Bytes a read would find now (FIONREAD / SIOCINQ): a stream's queued
    /// bytes, or the size of the next record.
    pub fn available(&self) -> usize {
        let inner = self.lock();
        match self.kind {
            Kind::Stream => inner.rx_bytes,
            _ => inner.rx.front().map_or(0, |m| m.data.len()),
        }
    }

    pub fn passcred(&self) -> bool {
        self.lock().passcred
    }

    pub fn set_passcred(&self, on: bool) {
        self.lock().passcred = on;
    }

    /// SO_PEERCRED: the peer's maker, or none (pid 0, uid and gid -1).
    pub fn peer_cred(&self) -> Cred {
        self.lock().peer_cred.unwrap_or(Cred {
            pid: 0,
            uid: u32::MAX,
            gid: u32::MAX,
        })
    }

    /// Whether it listens (SO_ACCEPTCONN).
    pub fn listening(&self) -> bool {
        matches!(self.lock().conn, Conn::Listening { .. })
    }

    /// (SO_RCVBUF, SO_SNDBUF).
    pub fn bufs(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.rcvbuf, inner.sndbuf)
    }

    /// Sets SO_RCVBUF or SO_SNDBUF: Linux doubles the value asked for and
    /// keeps it within its limits.
    pub fn set_buf(&self, rcv: bool, v: usize) {
        let v = v.clamp(2304, BUF_SIZE / 2) * 2;
        let mut inner = self.lock();
        if rcv {
            inner.rcvbuf = v;
        } else {
            inner.sndbuf = v;
        }
    }

    /// (SO_RCVTIMEO, SO_SNDTIMEO): None waits for ever.
    pub fn timeouts(&self) -> (Option<Duration>, Option<Duration>) {
        let inner = self.lock();
        (inner.rcvtimeo, inner.sndtimeo)
    }

    pub fn set_timeout(&self, rcv: bool, v: Option<Duration>) {
        let mut inner = self.lock();
        if rcv {
            inner.rcvtimeo = v;
        } else {
            inner.sndtimeo = v;
        }
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        let inner = self.inner.get_mut().unwrap();
        {
            let mut reg = registry();
            match (&inner.bound, &inner.inode) {
                (Some(Addr::Abstract(name)), _) => {
                    let mine = reg
                        .abstract_names
                        .get(name)
                        .is_some_and(|w| w.strong_count() == 0);
                    if mine {
                        reg.abstract_names.remove(name);
                    }
                }
                (Some(Addr::Path(_)), Some(inode)) => {
                    reg.paths.remove(&(Arc::as_ptr(inode) as usize));
                }
                _ => {}
            }
        }
        if !self.kind.connection() {
            return;
        }
        if let Conn::Connected(p) = &inner.conn {
            if let Some(p) = p.upgrade() {
                {
                    let mut pi = p.lock();
                    pi.peer_gone = true;
                    pi.rd_closed = true;
                    pi.wr_closed = true;
                }
                p.queue.notify(POLLIN | POLLOUT | POLLRDHUP | POLLHUP);
            }
        }
    }
}

impl FileOps for Socket {
    fn read_stream(&self, buf: &mut [u8], nonblock: bool) -> SysResult<usize> {
        let flags = RecvFlags {
            nonblock,
            ..Default::default()
        };
        let got = self.recv(buf.len(), flags)?;
        buf[..got.data.len()].copy_from_slice(&got.data);
        Ok(got.data.len())
    }

    fn write_stream(&self, buf: &[u8], nonblock: bool) -> SysResult<usize> {
        // write(2) carries no credentials of its own: the maker's stand in.
        let cred = *self.cred.lock().unwrap();
        let from = self.name();
        self.send(buf, Vec::new(), cred, None, from, nonblock)
    }

    fn stat(&self) -> SysResult<Stat> {
        Ok(Stat {
            dev: SOCK_DEV,
            ino: self.ino,
            mode: S_IFSOCK | 0o777,
            nlink: 1,
            blksize: 4096,
            ..Default::default()
        })
    }

    fn seekable(&self) -> bool {
        false
    }

    fn poll(&self, want: u16) -> u16 {
        let inner = self.lock();
        let mut ready = 0;
        match &inner.conn {
            Conn::Listening { pending, .. } => {
                if !pending.is_empty() {
                    ready |= POLLIN | POLLRDNORM;
                }
                return ready & want;
            }
            Conn::Idle if self.kind.connection() => ready |= POLLHUP,
            _ => {}
        }
        if !inner.rx.is_empty() {
            ready |= POLLIN | POLLRDNORM;
        }
        if inner.rd_closed {
            ready |= POLLIN | POLLRDNORM | POLLRDHUP;
        }
        if inner.rd_closed && inner.wr_closed {
            ready |= POLLHUP;
        }
        let peer = match &inner.conn {
            Conn::Connected(p) => Some(p.clone()),
            _ => None,
        };
        let wr_closed = inner.wr_closed;
        drop(inner);
        // Writable while the queue it sends into has room.
        let room = match peer.and_then(|p| p.upgrade()) {
            Some(p) => {
                let pi = p.lock();
                pi.rx_bytes < pi.rcvbuf && (self.kind.connection() || pi.rx.len() < MAX_DGRAMS)
            }
            None => true,
        };
        if room && !wr_closed {
            ready |= POLLOUT | POLLWRNORM;
        }
        if wr_closed && self.kind.connection() {
            // Linux reports a shut write side writable (the write fails).
            ready |= POLLOUT | POLLWRNORM;
        }
        ready & (want | POLLHUP)
    }

    fn waitq(&self) -> Option<Arc<WaitQueue>> {
        Some(self.queue.clone())
    }

    fn fd_target(&self) -> Option<Vec<u8>> {
        Some(format!("socket:[{}]", self.ino).into_bytes())
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NB: RecvFlags = RecvFlags {
        peek: false,
        nonblock: true,
        waitall: false,
    };

    fn send(s: &Socket, data: &[u8]) -> SysResult<usize> {
        s.send(data, Vec::new(), Cred::default(), None, None, true)
    }

    #[test]
    fn socket_stream_pair_joins_sends_and_ends_with_eof_then_epipe() {
        let (a, b) = Socket::pair(Kind::Stream, Cred::default());
        assert_eq!(send(&a, b"ab"), Ok(2));
        assert_eq!(send(&a, b"cd"), Ok(2));
        assert_eq!(b.recv(10, NB).unwrap().data, b"abcd");
        assert_eq!(b.recv(10, NB).err(), Some(Errno::EAGAIN));
        drop(a);
        assert!(b.recv(10, NB).unwrap().data.is_empty());
        assert_eq!(send(&b, b"x"), Err(Errno::EPIPE));
    }

    #[test]
    fn socket_stream_fills_to_its_buffer_then_eagain() {
        let (a, b) = Socket::pair(Kind::Stream, Cred::default());
        let big = vec![7u8; BUF_SIZE + 10];
        assert_eq!(send(&a, &big), Ok(BUF_SIZE));
        assert_eq!(send(&a, b"x"), Err(Errno::EAGAIN));
        assert_eq!(b.available(), BUF_SIZE);
        assert_eq!(b.recv(100, NB).unwrap().data.len(), 100);
        assert_eq!(send(&a, &big), Ok(100));
    }

    #[test]
    fn socket_recv_with_rcvtimeo_ends_with_eagain_after_the_timeout() {
        let (_a, b) = Socket::pair(Kind::Stream, Cred::default());
        let timeout = std::time::Duration::from_millis(30);
        b.lock().rcvtimeo = Some(timeout);
        let start = Instant::now();
        let blocking = RecvFlags {
            nonblock: false,
            ..NB
        };
        assert_eq!(b.recv(10, blocking).err(), Some(Errno::EAGAIN));
        assert!(start.elapsed() >= timeout);
    }

    #[test]
    fn socket_records_keep_boundaries_and_truncate() {
        let (a, b) = Socket::pair(Kind::Seqpacket, Cred::default());
        send(&a, b"hello").unwrap();
        send(&a, b"").unwrap();
        let got = b.recv(2, NB).unwrap();
        assert_eq!((got.data.as_slice(), got.len), (&b"he"[..], 5));
        let empty = b.recv(2, NB).unwrap();
        assert_eq!((empty.data.len(), empty.len), (0, 0));
        assert_eq!(b.recv(2, NB).err(), Some(Errno::EAGAIN));
    }

    #[test]
    fn socket_abstract_name_is_unique_and_freed_with_its_socket() {
        let name = b"sandboxd-unit-abstract".to_vec();
        let a = Socket::new(Kind::Dgram, Cred::default());
        a.bind(Addr::Abstract(name.clone()), None).unwrap();
        let b = Socket::new(Kind::Dgram, Cred::default());
        assert_eq!(
            b.bind(Addr::Abstract(name.clone()), None),
            Err(Errno::EADDRINUSE)
        );
        assert!(Socket::find_abstract(&name).is_some());
        drop(a);
        assert!(Socket::find_abstract(&name).is_none());
        b.bind(Addr::Abstract(name), None).unwrap();
    }

    #[test]
    fn socket_connect_queues_on_listener_and_accept_takes_it() {
        let l = Socket::new(Kind::Stream, Cred::default());
        let c = Socket::new(Kind::Stream, Cred::default());
        assert_eq!(l.listen(1, Cred::default()), Err(Errno::EINVAL));
        l.bind(Addr::Abstract(b"sandboxd-unit-listen".to_vec()), None)
            .unwrap();
        assert_eq!(
            c.connect(&l, Cred::default(), true),
            Err(Errno::ECONNREFUSED)
        );
        l.listen(0, Cred::default()).unwrap();
        c.connect(&l, Cred::default(), true).unwrap();
        send(&c, b"early").unwrap();
        let s = l.accept(true).unwrap();
        assert_eq!(s.recv(10, NB).unwrap().data, b"early");
        assert_eq!(l.accept(true).err(), Some(Errno::EAGAIN));
        assert_eq!(s.name(), l.name());
    }
}
