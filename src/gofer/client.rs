//! The sentry's side of the gofer protocol.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;

use super::socket;
use crate::abi::types::Stat;
use crate::abi::{Errno, SysResult};
use crate::proto::{
    decode_reply, encode_request, Dirent, Fid, Owner, Reply, Request, SetAttr, Statfs, IMAGE_ROOT,
};

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
            // The gofer died: the launcher reports it, the sentry's gofer
            // monitor destroys the container.
            log::info!("gofer closed the connection");
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

    /// Sends a request answered with a new fid.
    fn call_fid(&self, req: &Request) -> SysResult<(Fid, Stat)> {
        match self.call(req)?.0 {
            Reply::Fid { fid, stat } => Ok((fid, stat)),
            _ => Err(unexpected()),
        }
    }

    /// Sends a request answered with Done.
    fn call_done(&self, req: &Request) -> SysResult<()> {
        match self.call(req)?.0 {
            Reply::Done => Ok(()),
            _ => Err(unexpected()),
        }
    }

    /// The image root (attach name "/").
    pub fn attach(&self) -> SysResult<(Fid, Stat)> {
        self.attach_root(IMAGE_ROOT)
    }

    /// The root served under `aname` ("/" for the image, the `aname` of a
    /// bind mount in the container spec otherwise); ENOENT if none.
    pub fn attach_root(&self, aname: &str) -> SysResult<(Fid, Stat)> {
        self.call_fid(&Request::Attach {
            name: aname.as_bytes().to_vec(),
        })
    }

    /// The child `name` of directory `dir`.
    pub fn walk(&self, dir: Fid, name: &[u8]) -> SysResult<(Fid, Stat)> {
        self.call_fid(&Request::Walk {
            dir,
            name: name.to_vec(),
        })
    }

    pub fn stat(&self, fid: Fid) -> SysResult<Stat> {
        match self.call(&Request::Stat { fid })?.0 {
            Reply::Stat(st) => Ok(st),
            _ => Err(unexpected()),
        }
    }

    /// Opens a regular file (O_RDONLY, O_WRONLY or O_RDWR; O_APPEND and
    /// O_TRUNC are kept); returns the host fd the gofer donated.
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

    /// Creates the regular file `name` in `dir` (exclusively: EEXIST if
    /// the name exists) with the permission bits `mode` and `owner`, opened
    /// with `flags` (access mode and O_APPEND). Returns its fid, stat and
    /// the open host fd.
    pub fn create(
        &self,
        dir: Fid,
        name: &[u8],
        flags: i32,
        mode: u32,
        owner: Owner,
    ) -> SysResult<(Fid, Stat, OwnedFd)> {
        let req = Request::Create {
            dir,
            name: name.to_vec(),
            flags: flags as u32,
            mode,
            owner,
        };
        match self.call(&req)? {
            (Reply::Fid { fid, stat }, Some(fd)) => Ok((fid, stat, fd)),
            _ => Err(unexpected()),
        }
    }

    /// mkdir(2) of `name` in `dir`; returns the new directory's fid.
    pub fn mkdir(&self, dir: Fid, name: &[u8], mode: u32, owner: Owner) -> SysResult<(Fid, Stat)> {
        self.call_fid(&Request::Mkdir {
            dir,
            name: name.to_vec(),
            mode,
            owner,
        })
    }

    /// mknod(2) of a regular file or FIFO (`mode` = type | permissions).
    pub fn mknod(&self, dir: Fid, name: &[u8], mode: u32, owner: Owner) -> SysResult<(Fid, Stat)> {
        self.call_fid(&Request::Mknod {
            dir,
            name: name.to_vec(),
            mode,
            owner,
        })
    }

    /// symlink(2): `name` in `dir` pointing at `target` (never followed by
    /// the gofer).
    pub fn symlink(
        &self,
        dir: Fid,
        name: &[u8],
        target: &[u8],
        owner: Owner,
    ) -> SysResult<(Fid, Stat)> {
        self.call_fid(&Request::Symlink {
            dir,
            name: name.to_vec(),
            target: target.to_vec(),
            owner,
        })
    }

    /// link(2): a new name `name` in `dir` for the file of fid `target`
    /// (same root only: EXDEV otherwise).
    pub fn link(&self, dir: Fid, name: &[u8], target: Fid) -> SysResult<(Fid, Stat)> {
        self.call_fid(&Request::Link {
            dir,
            name: name.to_vec(),
            target,
        })
    }

    /// unlink(2), or rmdir(2) when `flags` is AT_REMOVEDIR.
    pub fn unlink(&self, dir: Fid, name: &[u8], flags: i32) -> SysResult<()> {
        self.call_done(&Request::Unlink {
            dir,
            name: name.to_vec(),
            flags: flags as u32,
        })
    }

    /// renameat2(2) of `old_name` in `old_dir` to `new_name` in `new_dir`
    /// (same root only: EXDEV otherwise); `flags` is 0, RENAME_NOREPLACE
    /// or RENAME_EXCHANGE. Fids of the moved files follow them.
    pub fn rename(
        &self,
        old_dir: Fid,
        old_name: &[u8],
        new_dir: Fid,
        new_name: &[u8],
        flags: u32,
    ) -> SysResult<()> {
        self.call_done(&Request::Rename {
            old_dir,
            old_name: old_name.to_vec(),
            new_dir,
            new_name: new_name.to_vec(),
            flags,
        })
    }

    /// Changes what `attr` gives (size, mode, owner, times); returns the
    /// new stat.
    pub fn setattr(&self, fid: Fid, attr: &SetAttr) -> SysResult<Stat> {
        match self.call(&Request::SetAttr { fid, attr: *attr })?.0 {
            Reply::Stat(st) => Ok(st),
            _ => Err(unexpected()),
        }
    }

    /// fsync(2) of a regular file or directory.
    pub fn fsync(&self, fid: Fid) -> SysResult<()> {
        self.call_done(&Request::Fsync { fid })
    }
}

fn broken(op: &str, e: nix::errno::Errno) -> Errno {
    // Reported by the launcher (the gofer died); see `sentry::control::watch`.
    log::info!("gofer connection broken ({op}): {e}");
    Errno::EIO
}

fn unexpected() -> Errno {
    log::error!("gofer sent a reply of the wrong kind");
    Errno::EIO
}
