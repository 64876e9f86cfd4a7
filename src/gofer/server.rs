//! The gofer's file server.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use nix::fcntl::{openat, readlinkat, OFlag};
use nix::sys::stat::{fstatat, FileStat, Mode};

use super::socket;
use crate::abi::types::{dtype_of_mode, Stat, S_IFDIR, S_IFMT, S_IFREG};
use crate::abi::{Errno, SysResult};
use crate::proto::{
    decode_request, encode_reply, Dirent, Fid, Reply, Request, Statfs, MAX_MESSAGE, MAX_NAME,
};

/// Most fids one connection may hold.
pub const MAX_FIDS: usize = 1 << 20;
/// Room for the reply header and the page bookkeeping of a readdir page.
const ENTRIES_BUDGET: usize = MAX_MESSAGE - 64;

/// Why the server stopped.
#[derive(Debug, thiserror::Error)]
pub enum GoferError {
    #[error("receive a request")]
    Receive(#[source] nix::errno::Errno),
    #[error("send a reply")]
    Send(#[source] nix::errno::Errno),
    #[error("malformed request of {0} bytes")]
    Malformed(usize),
}

/// A file the sentry holds a fid for.
struct Node {
    /// O_PATH|O_NOFOLLOW fd of the file itself.
    fd: Arc<OwnedFd>,
    /// The parent directory's fd and our name in it (None for the root).
    parent: Option<(Arc<OwnedFd>, Vec<u8>)>,
    stat: Stat,
}

struct Server {
    fids: HashMap<Fid, Node>,
    next: Fid,
    root: Arc<OwnedFd>,
    readonly: bool,
    /// Directory listings being paged out, by fid.
    listings: HashMap<Fid, Vec<Dirent>>,
}

/// Serves `sock` from the export `root` (an O_PATH or directory fd) until
/// the sentry closes its end.
pub fn serve(root: OwnedFd, sock: OwnedFd, readonly: bool) -> Result<(), GoferError> {
    let mut s = Server {
        fids: HashMap::new(),
        next: 1,
        root: Arc::new(root),
        readonly,
        listings: HashMap::new(),
    };
    loop {
        let (packet, _) = socket::recv(sock.as_fd()).map_err(GoferError::Receive)?;
        if packet.is_empty() {
            return Ok(());
        }
        let (tag, req) = decode_request(&packet).ok_or(GoferError::Malformed(packet.len()))?;
        let mut donated = None;
        let result = s.handle(req, &mut donated);
        let reply = encode_reply(tag, &result);
        socket::send(
            sock.as_fd(),
            &reply,
            donated.as_ref().map(|f: &OwnedFd| f.as_fd()),
        )
        .map_err(GoferError::Send)?;
    }
}

impl Server {
    fn handle(&mut self, req: Request, donated: &mut Option<OwnedFd>) -> SysResult<Reply> {
        match req {
            Request::Attach => {
                let stat = stat_of(&self.root)?;
                let fid = self.insert(Node {
                    fd: self.root.clone(),
                    parent: None,
                    stat,
                })?;
                Ok(Reply::Fid { fid, stat })
            }
            Request::Walk { dir, name } => self.walk(dir, &name),
            Request::Stat { fid } => Ok(Reply::Stat(stat_of(&self.node(fid)?.fd)?)),
            Request::Open { fid, flags } => {
                *donated = Some(self.open(fid, flags)?);
                Ok(Reply::Opened)
            }
            Request::Readlink { fid } => {
                let node = self.node(fid)?;
                let target = readlinkat(node.fd.as_fd(), OsStr::new("")).map_err(Errno::from)?;
                Ok(Reply::Link(target.as_bytes().to_vec()))
            }
            Request::Readdir { fid, cookie } => self.readdir(fid, cookie),
            Request::Statfs { fid } => statfs(&self.node(fid)?.fd),
            Request::Clunk { fid } => {
                self.fids.remove(&fid).ok_or(Errno::EBADF)?;
                self.listings.remove(&fid);
                Ok(Reply::Done)
            }
        }
    }

    fn node(&self, fid: Fid) -> SysResult<&Node> {
        self.fids.get(&fid).ok_or(Errno::EBADF)
    }

    fn insert(&mut self, node: Node) -> SysResult<Fid> {
        if self.fids.len() >= MAX_FIDS {
            return Err(Errno::ENFILE);
        }
        while self.fids.contains_key(&self.next) || self.next == 0 {
            self.next = self.next.wrapping_add(1);
        }
        let fid = self.next;
        self.next = self.next.wrapping_add(1);
        self.fids.insert(fid, node);
        Ok(fid)
    }

    fn walk(&mut self, dir: Fid, name: &[u8]) -> SysResult<Reply> {
        let bad = name.is_empty()
            || name == b"."
            || name == b".."
            || name.contains(&b'/')
            || name.contains(&0);
        if bad || name.len() > MAX_NAME {
            return Err(Errno::EINVAL);
        }
        let parent = self.node(dir)?;
        if parent.stat.mode & S_IFMT != S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        let pfd = parent.fd.clone();
        let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = openat(pfd.as_fd(), OsStr::from_bytes(name), flags, Mode::empty())
            .map_err(Errno::from)?;
        let stat = stat_of(&fd)?;
        let fid = self.insert(Node {
            fd: Arc::new(fd),
            parent: Some((pfd, name.to_vec())),
            stat,
        })?;
        Ok(Reply::Fid { fid, stat })
    }

    fn open(&self, fid: Fid, flags: u32) -> SysResult<OwnedFd> {
        let node = self.node(fid)?;
        let acc = flags as i32 & libc::O_ACCMODE;
        if acc != libc::O_RDONLY && self.readonly {
            return Err(Errno::EROFS);
        }
        match node.stat.mode & S_IFMT {
            S_IFREG => {}
            S_IFDIR => return Err(Errno::EISDIR),
            _ => return Err(Errno::ENXIO),
        }
        let (pfd, name) = node.parent.as_ref().ok_or(Errno::EISDIR)?;
        let keep = OFlag::from_bits_truncate(flags as i32) & (OFlag::O_ACCMODE | OFlag::O_APPEND);
        let flags =
            keep | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK;
        let fd = openat(pfd.as_fd(), OsStr::from_bytes(name), flags, Mode::empty())
            .map_err(Errno::from)?;
        let now = stat_of(&fd)?;
        if (now.dev, now.ino) != (node.stat.dev, node.stat.ino) {
            return Err(Errno::ESTALE);
        }
        // O_NONBLOCK only guarded the open against fifos swapped in.
        nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_SETFL(keep & OFlag::O_APPEND))
            .map_err(Errno::from)?;
        Ok(fd)
    }

    fn readdir(&mut self, fid: Fid, cookie: u64) -> SysResult<Reply> {
        if cookie == 0 || !self.listings.contains_key(&fid) {
            let node = self.node(fid)?;
            if node.stat.mode & S_IFMT != S_IFDIR {
                return Err(Errno::ENOTDIR);
            }
            let list = list_dir(&node.fd)?;
            self.listings.insert(fid, list);
        }
        let list = &self.listings[&fid];
        let start = (cookie as usize).min(list.len());
        let mut used = 0;
        let mut end = start;
        while end < list.len() && used + 11 + list[end].name.len() <= ENTRIES_BUDGET {
            used += 11 + list[end].name.len();
            end += 1;
        }
        let entries = list[start..end].to_vec();
        let next = (end < list.len()).then_some(end as u64);
        if next.is_none() {
            self.listings.remove(&fid);
        }
        Ok(Reply::Entries { entries, next })
    }
}

fn stat_of(fd: &OwnedFd) -> SysResult<Stat> {
    let st = fstatat(
        fd.as_fd(),
        OsStr::new(""),
        nix::fcntl::AtFlags::AT_EMPTY_PATH | nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(Errno::from)?;
    Ok(from_host(&st))
}

fn from_host(st: &FileStat) -> Stat {
    Stat {
        dev: st.st_dev,
        ino: st.st_ino,
        mode: st.st_mode,
        nlink: st.st_nlink,
        uid: st.st_uid,
        gid: st.st_gid,
        rdev: st.st_rdev,
        size: st.st_size,
        blksize: st.st_blksize,
        blocks: st.st_blocks,
        atime: (st.st_atime, st.st_atime_nsec),
        mtime: (st.st_mtime, st.st_mtime_nsec),
        ctime: (st.st_ctime, st.st_ctime_nsec),
    }
}

fn list_dir(fd: &OwnedFd) -> SysResult<Vec<Dirent>> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
    let dfd = openat(fd.as_fd(), OsStr::new("."), flags, Mode::empty()).map_err(Errno::from)?;
    let mut dir = nix::dir::Dir::from_fd(dfd).map_err(Errno::from)?;
    let mut out = vec![];
    for entry in dir.iter() {
        let entry = entry.map_err(Errno::from)?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        let kind = match entry.file_type() {
            Some(t) => dtype_of_mode(host_type_bits(t)),
            None => 0,
        };
        out.push(Dirent {
            ino: entry.ino(),
            kind,
            name: name.to_vec(),
        });
    }
    Ok(out)
}

fn host_type_bits(t: nix::dir::Type) -> u32 {
    use nix::dir::Type::*;
    match t {
        Fifo => 0o010000,
        CharacterDevice => 0o020000,
        Directory => 0o040000,
        BlockDevice => 0o060000,
        File => 0o100000,
        Symlink => 0o120000,
        Socket => 0o140000,
    }
}

fn statfs(fd: &OwnedFd) -> SysResult<Reply> {
    let mut st = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: fstatfs fills the statfs struct we pass for an fd we own.
    let r = unsafe { libc::fstatfs(fd.as_raw_fd(), st.as_mut_ptr()) };
    if r < 0 {
        return Err(Errno::last());
    }
    // SAFETY: fstatfs succeeded and initialized the struct.
    let st = unsafe { st.assume_init() };
    Ok(Reply::Statfs(Statfs {
        kind: st.f_type as u64,
        bsize: st.f_bsize as u64,
        blocks: st.f_blocks,
        bfree: st.f_bfree,
        bavail: st.f_bavail,
        files: st.f_files,
        ffree: st.f_ffree,
        namelen: st.f_namelen as u64,
    }))
}
