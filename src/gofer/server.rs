//! The gofer's file server: fids, roots, and the read-only operations
//! (the mutating ones are in `write.rs`).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use nix::fcntl::{openat, readlinkat, OFlag};
use nix::sys::stat::{fstatat, Mode};

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

/// One tree the gofer serves.
pub struct Root {
    /// The attach name: [`crate::proto::IMAGE_ROOT`] for the image,
    /// `bind0`, `bind1`, ... for bind mounts.
    pub name: String,
    /// A directory (or O_PATH) fd of the tree's top.
    pub fd: OwnedFd,
    /// Refuse every change with EROFS (the mount should be read-only too).
    pub readonly: bool,
}

/// Where a node sits: the fd of the directory it was found in and its name
/// there (kept up to date by renames made through this server).
pub(super) struct Parent {
    pub fd: Arc<OwnedFd>,
    /// (dev, ino) of that directory.
    pub id: (u64, u64),
    pub name: Vec<u8>,
}

/// A file the sentry holds a fid for.
pub(super) struct Node {
    /// O_PATH|O_NOFOLLOW fd of the file itself.
    pub fd: Arc<OwnedFd>,
    /// None for a root.
    pub parent: Option<Parent>,
    /// The stat at walk time (the file type never changes).
    pub stat: Stat,
    /// Index of the root this node lies in.
    pub root: usize,
}

pub(super) struct Server {
    pub fids: HashMap<Fid, Node>,
    next: Fid,
    roots: Vec<(String, Arc<OwnedFd>, bool)>,
    /// Directory listings being paged out, by fid.
    listings: HashMap<Fid, Vec<Dirent>>,
}

/// Serves `sock` from `roots` until the sentry closes its end. New files
/// get exactly the mode asked for only if the process umask is 0.
pub fn serve(roots: Vec<Root>, sock: OwnedFd) -> Result<(), GoferError> {
    let mut s = Server {
        fids: HashMap::new(),
        next: 1,
        roots: roots
            .into_iter()
            .map(|r| (r.name, Arc::new(r.fd), r.readonly))
            .collect(),
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
            Request::Attach { name } => self.attach(&name),
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
            Request::Fsync { fid } => self.fsync(fid),
            req => self.handle_write(req, donated),
        }
    }

    fn attach(&mut self, name: &[u8]) -> SysResult<Reply> {
        let root = self
            .roots
            .iter()
            .position(|r| r.0.as_bytes() == name)
            .ok_or(Errno::ENOENT)?;
        let fd = self.roots[root].1.clone();
        let stat = stat_of(&fd)?;
        let fid = self.insert(Node {
            fd,
            parent: None,
            stat,
            root,
        })?;
        Ok(Reply::Fid { fid, stat })
    }

    pub(super) fn node(&self, fid: Fid) -> SysResult<&Node> {
        self.fids.get(&fid).ok_or(Errno::EBADF)
    }

    /// Whether the root `root` refuses changes.
    pub(super) fn readonly(&self, root: usize) -> bool {
        self.roots[root].2
    }

    pub(super) fn insert(&mut self, node: Node) -> SysResult<Fid> {
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
        check_name(name)?;
        let (pfd, root) = self.dir_of(dir)?;
        let fd = open_path(&pfd, name)?;
        self.add_child(pfd, root, name, fd)
    }

    /// The fd and root of the directory fid `dir`.
    pub(super) fn dir_of(&self, dir: Fid) -> SysResult<(Arc<OwnedFd>, usize)> {
        let node = self.node(dir)?;
        if node.stat.mode & S_IFMT != S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        Ok((node.fd.clone(), node.root))
    }

    /// Makes a fid of `fd`, the child `name` of the directory `pfd`.
    pub(super) fn add_child(
        &mut self,
        pfd: Arc<OwnedFd>,
        root: usize,
        name: &[u8],
        fd: OwnedFd,
    ) -> SysResult<Reply> {
        let stat = stat_of(&fd)?;
        let dir = stat_of(&pfd)?;
        let fid = self.insert(Node {
            fd: Arc::new(fd),
            parent: Some(Parent {
                fd: pfd,
                id: (dir.dev, dir.ino),
                name: name.to_vec(),
            }),
            stat,
            root,
        })?;
        Ok(Reply::Fid { fid, stat })
    }

    fn open(&self, fid: Fid, flags: u32) -> SysResult<OwnedFd> {
        let node = self.node(fid)?;
        let acc = flags as i32 & libc::O_ACCMODE;
        let writes = acc != libc::O_RDONLY || flags as i32 & libc::O_TRUNC != 0;
        if writes && self.readonly(node.root) {
            return Err(Errno::EROFS);
        }
        match node.stat.mode & S_IFMT {
            S_IFREG => {}
            S_IFDIR => return Err(Errno::EISDIR),
            _ => return Err(Errno::ENXIO),
        }
        let keep = OFlag::from_bits_truncate(flags as i32) & (OFlag::O_ACCMODE | OFlag::O_APPEND);
        let fd = reopen(node, keep)?;
        // Truncate only once the fd is known to be the fid's file.
        if flags as i32 & libc::O_TRUNC != 0 {
            nix::unistd::ftruncate(&fd, 0).map_err(Errno::from)?;
        }
        // O_NONBLOCK only guarded the open against fifos swapped in.
        nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_SETFL(keep & OFlag::O_APPEND))
            .map_err(Errno::from)?;
        Ok(fd)
    }

    /// fsync(2) of a regular file or a directory (allowed on read-only
    /// roots too: it changes nothing).
    fn fsync(&self, fid: Fid) -> SysResult<Reply> {
        let node = self.node(fid)?;
        let fd = match node.stat.mode & S_IFMT {
            S_IFREG | S_IFDIR => reopen(node, OFlag::O_RDONLY)?,
            _ => return Err(Errno::EINVAL),
        };
        nix::unistd::fsync(&fd).map_err(Errno::from)?;
        Ok(Reply::Done)
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

/// Checks one name component: not empty, `.` or `..`, without `/` or NUL
/// (EINVAL), at most [`MAX_NAME`] bytes (ENAMETOOLONG).
pub(super) fn check_name(name: &[u8]) -> SysResult<()> {
    let bad = name.is_empty()
        || name == b"."
        || name == b".."
        || name.contains(&b'/')
        || name.contains(&0);
    if bad {
        return Err(Errno::EINVAL);
    }
    if name.len() > MAX_NAME {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(())
}

/// An O_PATH|O_NOFOLLOW fd of the child `name` of the directory `dir`.
pub(super) fn open_path(dir: &OwnedFd, name: &[u8]) -> SysResult<OwnedFd> {
    let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    openat(dir.as_fd(), OsStr::from_bytes(name), flags, Mode::empty()).map_err(Errno::from)
}

/// A real (not O_PATH) fd of `node`'s file with `flags`. A directory is
/// reopened through its own fd ("."); anything else from its parent by
/// name with O_NOFOLLOW, and must still be the inode the fid names
/// (ESTALE otherwise).
pub(super) fn reopen(node: &Node, flags: OFlag) -> SysResult<OwnedFd> {
    let common = OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK;
    let fd = if node.stat.mode & S_IFMT == S_IFDIR {
        let flags = flags | common | OFlag::O_DIRECTORY;
        openat(node.fd.as_fd(), OsStr::new("."), flags, Mode::empty())
    } else {
        let p = node.parent.as_ref().ok_or(Errno::EINVAL)?;
        let flags = flags | common | OFlag::O_NOFOLLOW;
        openat(
            p.fd.as_fd(),
            OsStr::from_bytes(&p.name),
            flags,
            Mode::empty(),
        )
    }
    .map_err(Errno::from)?;
    let now = stat_of(&fd)?;
    if (now.dev, now.ino) != (node.stat.dev, node.stat.ino) {
        return Err(Errno::ESTALE);
    }
    Ok(fd)
}

pub(super) fn stat_of(fd: &OwnedFd) -> SysResult<Stat> {
    let st = fstatat(
        fd.as_fd(),
        OsStr::new(""),
        nix::fcntl::AtFlags::AT_EMPTY_PATH | nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(Errno::from)?;
    Ok(Stat::from_host(&st))
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
