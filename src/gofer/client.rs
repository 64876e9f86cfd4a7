//! The sentry's side of the gofer protocol.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;

use super::socket;
use crate::abi::types::Stat;
use crate::abi::{Errno, SysResult};
use crate::proto::{decode_reply, encode_request, Dirent, Fid, Reply, Request, Statfs};

/// A connection to one gofer. One request is in flight at a time.
pub struct GoferClient {
    conn: Mutex<Conn>,
}

struct Conn {
    sock: OwnedFd,
    tag: u32,
}

impl GoferClient {
    pub fn new(sock: OwnedFd) -> GoferClient {
        GoferClient {
            conn: Mutex::new(Conn { sock, tag: 0 }),
        }
    }

    /// Sends `req` and waits for its reply (and donated fd).
    fn call(&self, req: &Request) -> SysResult<(Reply, Option<OwnedFd>)> {
        let mut conn = self.conn.lock().unwrap();
        conn.tag = conn.tag.wrapping_add(1);
        let tag = conn.tag;
        let sock = conn.sock.as_fd();
        socket::send(sock, &encode_request(tag, req), None).map_err(|e| broken("send", e))?;
        let (packet, fd) = socket::recv(sock).map_err(|e| broken("receive", e))?;
        if packet.is_empty() {
            log::error!("gofer closed the connection");
            return Err(Errno::EIO);
        }
        match decode_reply(&packet) {
            Some((t, res)) if t == tag => res.map(|r| (r, fd)),
            _ => {
                log::error!("gofer sent a malformed reply to {req:?}");
                Err(Errno::EIO)
            }
        }
    }

    /// The export root.
    pub fn attach(&self) -> SysResult<(Fid, Stat)> {
        match self.call(&Request::Attach)?.0 {
            Reply::Fid { fid, stat } => Ok((fid, stat)),
            _ => Err(unexpected()),
        }
    }

    /// The child `name` of directory `dir`.
    pub fn walk(&self, dir: Fid, name: &[u8]) -> SysResult<(Fid, Stat)> {
        match self
            .call(&Request::Walk {
                dir,
                name: name.to_vec(),
            })?
            .0
        {
            Reply::Fid { fid, stat } => Ok((fid, stat)),
            _ => Err(unexpected()),
        }
    }

    pub fn stat(&self, fid: Fid) -> SysResult<Stat> {
        match self.call(&Request::Stat { fid })?.0 {
            Reply::Stat(st) => Ok(st),
            _ => Err(unexpected()),
        }
    }

    /// Opens a regular file; returns the host fd the gofer donated.
    pub fn open(&self, fid: Fid, flags: i32) -> SysResult<OwnedFd> {
        match self.call(&Request::Open {
            fid,
            flags: flags as u32,
        })? {
            (Reply::Opened, Some(fd)) => Ok(fd),
            _ => Err(unexpected()),
        }
    }

    pub fn readlink(&self, fid: Fid) -> SysResult<Vec<u8>> {
        match self.call(&Request::Readlink { fid })?.0 {
            Reply::Link(t) => Ok(t),
            _ => Err(unexpected()),
        }
    }

    /// Every entry of a directory ("." and ".." excluded).
    pub fn readdir(&self, fid: Fid) -> SysResult<Vec<Dirent>> {
        let mut all = vec![];
        let mut cookie = 0;
        loop {
            match self.call(&Request::Readdir { fid, cookie })?.0 {
                Reply::Entries { entries, next } => {
                    all.extend(entries);
                    match next {
                        Some(n) if n > cookie => cookie = n,
                        Some(_) => return Err(unexpected()),
                        None => return Ok(all),
                    }
                }
                _ => return Err(unexpected()),
            }
        }
    }

    pub fn statfs(&self, fid: Fid) -> SysResult<Statfs> {
        match self.call(&Request::Statfs { fid })?.0 {
            Reply::Statfs(s) => Ok(s),
            _ => Err(unexpected()),
        }
    }

    /// Forgets `fid` on the gofer side.
    pub fn clunk(&self, fid: Fid) -> SysResult<()> {
        self.call(&Request::Clunk { fid }).map(|_| ())
    }
}

fn broken(op: &str, e: nix::errno::Errno) -> Errno {
    log::error!("gofer connection broken ({op}): {e}");
    Errno::EIO
}

fn unexpected() -> Errno {
    log::error!("gofer sent a reply of the wrong kind");
    Errno::EIO
}
