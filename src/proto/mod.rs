//! The gofer wire protocol: binary messages over a SOCK_SEQPACKET socket,
//! one request or reply per packet, little-endian, hand-encoded.
//!
//! Request: `tag u32, op u8, payload`. Reply: `tag u32, errno i32, payload`
//! (payload only when errno is 0). An `Open` or `Create` reply carries the
//! opened host fd as SCM_RIGHTS. Errors are the host's errno, passed
//! through unchanged. Decoders check every length and never panic on
//! garbage: the gofer parses what a compromised sentry may send, and the
//! sentry what a compromised gofer may send.
#![forbid(unsafe_code)]

mod wire;

pub use wire::{Reader, Writer};

use crate::abi::types::Stat;
use crate::abi::Errno;

/// Largest packet either side sends.
pub const MAX_MESSAGE: usize = 64 * 1024;
/// Longest name in a walk (NAME_MAX).
pub const MAX_NAME: usize = 255;

/// A file handle on the gofer side.
pub type Fid = u32;

/// Longest symlink target (PATH_MAX, with its NUL).
pub const MAX_TARGET: usize = 4095;

/// The attach name of the container's image root.
pub const IMAGE_ROOT: &str = "/";

/// The owner a new file gets (the creating guest's fsuid/fsgid).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// What a SetAttr changes; `None` leaves a field as it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetAttr {
    /// Permission bits (07777 at most; the file type cannot change).
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Truncate or extend a regular file.
    pub size: Option<u64>,
    /// (seconds, nanoseconds); nanoseconds may be `UTIME_NOW`.
    pub atime: Option<(i64, i64)>,
    pub mtime: Option<(i64, i64)>,
}

/// A request from the sentry. Names are single components: never empty,
/// `.`, `..`, with a `/` or a NUL, nor longer than [`MAX_NAME`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// The root served under the attach name `name` ([`IMAGE_ROOT`] for
    /// the image, `bind0`, `bind1`, ... for bind mounts).
    Attach {
        name: Vec<u8>,
    },
    /// The child `name` of directory `dir`.
    Walk {
        dir: Fid,
        name: Vec<u8>,
    },
    Stat {
        fid: Fid,
    },
    /// Open a regular file (O_RDONLY, O_WRONLY or O_RDWR, with O_APPEND
    /// and O_TRUNC kept); the host fd comes back as SCM_RIGHTS.
    Open {
        fid: Fid,
        flags: u32,
    },
    Readlink {
        fid: Fid,
    },
    /// Entries of a directory from index `cookie` on.
    Readdir {
        fid: Fid,
        cookie: u64,
    },
    Statfs {
        fid: Fid,
    },
    /// Forget a fid.
    Clunk {
        fid: Fid,
    },
    /// Create and open the regular file `name` in `dir` (always exclusive:
    /// an existing name, symlink or not, is EEXIST). Replies with the new
    /// fid and the open host fd as SCM_RIGHTS.
    Create {
        dir: Fid,
        name: Vec<u8>,
        flags: u32,
        mode: u32,
        owner: Owner,
    },
    Mkdir {
        dir: Fid,
        name: Vec<u8>,
        mode: u32,
        owner: Owner,
    },
    /// A regular file or a FIFO (`mode` carries the type); nothing else.
    Mknod {
        dir: Fid,
        name: Vec<u8>,
        mode: u32,
        owner: Owner,
    },
    Symlink {
        dir: Fid,
        name: Vec<u8>,
        target: Vec<u8>,
        owner: Owner,
    },
    /// A new name `name` in `dir` for the file of fid `target`.
    Link {
        dir: Fid,
        name: Vec<u8>,
        target: Fid,
    },
    /// Removes `name` from `dir`; `flags` is 0 or AT_REMOVEDIR.
    Unlink {
        dir: Fid,
        name: Vec<u8>,
        flags: u32,
    },
    /// renameat2: `flags` is 0, RENAME_NOREPLACE or RENAME_EXCHANGE.
    Rename {
        old_dir: Fid,
        old_name: Vec<u8>,
        new_dir: Fid,
        new_name: Vec<u8>,
        flags: u32,
    },
    SetAttr {
        fid: Fid,
        attr: SetAttr,
    },
    Fsync {
        fid: Fid,
    },
}

/// One directory entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dirent {
    pub ino: u64,
    /// `d_type`.
    pub kind: u8,
    pub name: Vec<u8>,
}

/// File system statistics (the statfs(2) fields the sentry reports).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Statfs {
    pub kind: u64,
    pub bsize: u64,
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub namelen: u64,
}

/// A successful reply's payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// A new fid (Attach, Walk, Create, Mkdir, Mknod, Symlink, Link); a
    /// Create reply carries the open fd beside it.
    Fid {
        fid: Fid,
        stat: Stat,
    },
    Stat(Stat),
    /// Open: the fd travels beside the message.
    Opened,
    Link(Vec<u8>),
    /// A page of entries; `next` is the cookie to continue, None at the end.
    Entries {
        entries: Vec<Dirent>,
        next: Option<u64>,
    },
    Statfs(Statfs),
    Done,
}

const ATTACH: u8 = 1;
const WALK: u8 = 2;
const STAT: u8 = 3;
const OPEN: u8 = 4;
const READLINK: u8 = 5;
const READDIR: u8 = 6;
const STATFS: u8 = 7;
const CLUNK: u8 = 8;
const CREATE: u8 = 9;
const MKDIR: u8 = 10;
const MKNOD: u8 = 11;
const SYMLINK: u8 = 12;
const LINK: u8 = 13;
const UNLINK: u8 = 14;
const RENAME: u8 = 15;
const SETATTR: u8 = 16;
const FSYNC: u8 = 17;

/// Which `SetAttr` fields are present, one bit each.
const SET_MODE: u8 = 1;
const SET_UID: u8 = 2;
const SET_GID: u8 = 4;
const SET_SIZE: u8 = 8;
const SET_ATIME: u8 = 16;
const SET_MTIME: u8 = 32;

/// Encodes a request with `tag`.
pub fn encode_request(tag: u32, req: &Request) -> Vec<u8> {
    let mut w = Writer::new();
    w.u32(tag);
    match req {
        Request::Attach { name } => {
            w.u8(ATTACH);
            w.bytes(name);
        }
        Request::Walk { dir, name } => named_op(&mut w, WALK, *dir, name),
        Request::Stat { fid } => fid_op(&mut w, STAT, *fid),
        Request::Open { fid, flags } => {
            fid_op(&mut w, OPEN, *fid);
            w.u32(*flags);
        }
        Request::Readlink { fid } => fid_op(&mut w, READLINK, *fid),
        Request::Readdir { fid, cookie } => {
            fid_op(&mut w, READDIR, *fid);
            w.u64(*cookie);
        }
        Request::Statfs { fid } => fid_op(&mut w, STATFS, *fid),
        Request::Clunk { fid } => fid_op(&mut w, CLUNK, *fid),
        Request::Create {
            dir,
            name,
            flags,
            mode,
            owner,
        } => {
            named_op(&mut w, CREATE, *dir, name);
            w.u32(*flags);
            w.u32(*mode);
            put_owner(&mut w, owner);
        }
        Request::Mkdir {
            dir,
            name,
            mode,
            owner,
        } => {
            named_op(&mut w, MKDIR, *dir, name);
            w.u32(*mode);
            put_owner(&mut w, owner);
        }
        Request::Mknod {
            dir,
            name,
            mode,
            owner,
        } => {
            named_op(&mut w, MKNOD, *dir, name);
            w.u32(*mode);
            put_owner(&mut w, owner);
        }
        Request::Symlink {
            dir,
            name,
            target,
            owner,
        } => {
            named_op(&mut w, SYMLINK, *dir, name);
            w.bytes(target);
            put_owner(&mut w, owner);
        }
        Request::Link { dir, name, target } => {
            named_op(&mut w, LINK, *dir, name);
            w.u32(*target);
        }
        Request::Unlink { dir, name, flags } => {
            named_op(&mut w, UNLINK, *dir, name);
            w.u32(*flags);
        }
        Request::Rename {
            old_dir,
            old_name,
            new_dir,
            new_name,
            flags,
        } => {
            named_op(&mut w, RENAME, *old_dir, old_name);
            w.u32(*new_dir);
            w.bytes(new_name);
            w.u32(*flags);
        }
        Request::SetAttr { fid, attr } => {
            fid_op(&mut w, SETATTR, *fid);
            put_setattr(&mut w, attr);
        }
        Request::Fsync { fid } => fid_op(&mut w, FSYNC, *fid),
    }
    w.finish()
}

fn fid_op(w: &mut Writer, op: u8, fid: Fid) {
    w.u8(op);
    w.u32(fid);
}

fn named_op(w: &mut Writer, op: u8, dir: Fid, name: &[u8]) {
    fid_op(w, op, dir);
    w.bytes(name);
}

fn put_owner(w: &mut Writer, owner: &Owner) {
    w.u32(owner.uid);
    w.u32(owner.gid);
}

fn get_owner(r: &mut Reader) -> Option<Owner> {
    Some(Owner {
        uid: r.u32()?,
        gid: r.u32()?,
    })
}

fn put_setattr(w: &mut Writer, a: &SetAttr) {
    let bits = [
        (a.mode.is_some(), SET_MODE),
        (a.uid.is_some(), SET_UID),
        (a.gid.is_some(), SET_GID),
        (a.size.is_some(), SET_SIZE),
        (a.atime.is_some(), SET_ATIME),
        (a.mtime.is_some(), SET_MTIME),
    ];
    w.u8(bits.iter().filter(|b| b.0).fold(0, |m, b| m | b.1));
    w.u32(a.mode.unwrap_or(0));
    w.u32(a.uid.unwrap_or(0));
    w.u32(a.gid.unwrap_or(0));
    w.u64(a.size.unwrap_or(0));
    for t in [a.atime, a.mtime] {
        let (s, ns) = t.unwrap_or((0, 0));
        w.u64(s as u64);
        w.u64(ns as u64);
    }
}

fn get_setattr(r: &mut Reader) -> Option<SetAttr> {
    let bits = r.u8()?;
    if bits & !(SET_MODE | SET_UID | SET_GID | SET_SIZE | SET_ATIME | SET_MTIME) != 0 {
        return None;
    }
    let has = |b: u8| bits & b != 0;
    let (mode, uid, gid, size) = (r.u32()?, r.u32()?, r.u32()?, r.u64()?);
    let atime = (r.u64()? as i64, r.u64()? as i64);
    let mtime = (r.u64()? as i64, r.u64()? as i64);
    Some(SetAttr {
        mode: has(SET_MODE).then_some(mode),
        uid: has(SET_UID).then_some(uid),
        gid: has(SET_GID).then_some(gid),
        size: has(SET_SIZE).then_some(size),
        atime: has(SET_ATIME).then_some(atime),
        mtime: has(SET_MTIME).then_some(mtime),
    })
}

/// Decodes a request: (tag, request), or None for a malformed packet.
pub fn decode_request(b: &[u8]) -> Option<(u32, Request)> {
    let mut r = Reader::new(b);
    let tag = r.u32()?;
    let op = r.u8()?;
    let req = if op == ATTACH {
        Request::Attach {
            name: r.bytes()?.to_vec(),
        }
    } else {
        let fid = r.u32()?;
        decode_fid_op(op, fid, &mut r)?
    };
    r.end().then_some((tag, req))
}

/// The rest of a request that starts with a fid.
fn decode_fid_op(op: u8, fid: Fid, r: &mut Reader) -> Option<Request> {
    let name = |r: &mut Reader| r.bytes().map(|n| n.to_vec());
    Some(match op {
        WALK => Request::Walk {
            dir: fid,
            name: name(r)?,
        },
        STAT => Request::Stat { fid },
        OPEN => Request::Open {
            fid,
            flags: r.u32()?,
        },
        READLINK => Request::Readlink { fid },
        READDIR => Request::Readdir {
            fid,
            cookie: r.u64()?,
        },
        STATFS => Request::Statfs { fid },
        CLUNK => Request::Clunk { fid },
        CREATE => Request::Create {
            dir: fid,
            name: name(r)?,
            flags: r.u32()?,
            mode: r.u32()?,
            owner: get_owner(r)?,
        },
        MKDIR => Request::Mkdir {
            dir: fid,
            name: name(r)?,
            mode: r.u32()?,
            owner: get_owner(r)?,
        },
        MKNOD => Request::Mknod {
            dir: fid,
            name: name(r)?,
            mode: r.u32()?,
            owner: get_owner(r)?,
        },
        SYMLINK => Request::Symlink {
            dir: fid,
            name: name(r)?,
            target: name(r)?,
            owner: get_owner(r)?,
        },
        LINK => Request::Link {
            dir: fid,
            name: name(r)?,
            target: r.u32()?,
        },
        UNLINK => Request::Unlink {
            dir: fid,
            name: name(r)?,
            flags: r.u32()?,
        },
        RENAME => Request::Rename {
            old_dir: fid,
            old_name: name(r)?,
            new_dir: r.u32()?,
            new_name: name(r)?,
            flags: r.u32()?,
        },
        SETATTR => Request::SetAttr {
            fid,
            attr: get_setattr(r)?,
        },
        FSYNC => Request::Fsync { fid },
        _ => return None,
    })
}

/// Encodes a reply to the request with `tag`.
pub fn encode_reply(tag: u32, reply: &Result<Reply, Errno>) -> Vec<u8> {
    let mut w = Writer::new();
    w.u32(tag);
    let reply = match reply {
        Err(e) => {
            w.i32(e.0);
            return w.finish();
        }
        Ok(r) => r,
    };
    w.i32(0);
    match reply {
        Reply::Fid { fid, stat } => {
            w.u8(1);
            w.u32(*fid);
            w.stat(stat);
        }
        Reply::Stat(st) => {
            w.u8(2);
            w.stat(st);
        }
        Reply::Opened => w.u8(3),
        Reply::Link(t) => {
            w.u8(4);
            w.bytes(t);
        }
        Reply::Entries { entries, next } => {
            w.u8(5);
            w.u64(next.map_or(u64::MAX, |n| n));
            w.u32(entries.len() as u32);
            for e in entries {
                w.u64(e.ino);
                w.u8(e.kind);
                w.bytes(&e.name);
            }
        }
        Reply::Statfs(s) => {
            w.u8(6);
            for v in [
                s.kind, s.bsize, s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.namelen,
            ] {
                w.u64(v);
            }
        }
        Reply::Done => w.u8(7),
    }
    w.finish()
}

/// Decodes a reply: (tag, result), or None for a malformed packet.
pub fn decode_reply(b: &[u8]) -> Option<(u32, Result<Reply, Errno>)> {
    let mut r = Reader::new(b);
    let tag = r.u32()?;
    let errno = r.i32()?;
    if errno != 0 {
        return (errno > 0 && r.end()).then_some((tag, Err(Errno(errno))));
    }
    let reply = match r.u8()? {
        1 => Reply::Fid {
            fid: r.u32()?,
            stat: r.stat()?,
        },
        2 => Reply::Stat(r.stat()?),
        3 => Reply::Opened,
        4 => Reply::Link(r.bytes()?.to_vec()),
        5 => {
            let next = Some(r.u64()?).filter(|&n| n != u64::MAX);
            let n = r.u32()? as usize;
            let mut entries = Vec::with_capacity(n.min(4096));
            for _ in 0..n {
                entries.push(Dirent {
                    ino: r.u64()?,
                    kind: r.u8()?,
                    name: r.bytes()?.to_vec(),
                });
            }
            Reply::Entries { entries, next }
        }
        6 => {
            let mut v = [0u64; 8];
            for x in v.iter_mut() {
                *x = r.u64()?;
            }
            let [kind, bsize, blocks, bfree, bavail, files, ffree, namelen] = v;
            Reply::Statfs(Statfs {
                kind,
                bsize,
                blocks,
                bfree,
                bavail,
                files,
                ffree,
                namelen,
            })
        }
        7 => Reply::Done,
        _ => return None,
    };
    r.end().then_some((tag, Ok(reply)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trip_every_op() {
        let owner = Owner {
            uid: 1000,
            gid: 100,
        };
        let attr = SetAttr {
            mode: Some(0o640),
            size: Some(7),
            mtime: Some((5, libc::UTIME_NOW)),
            ..Default::default()
        };
        let reqs = [
            Request::Attach {
                name: b"bind0".to_vec(),
            },
            Request::Walk {
                dir: 3,
                name: b"etc".to_vec(),
            },
            Request::Stat { fid: 1 },
            Request::Open { fid: 2, flags: 0 },
            Request::Readlink { fid: 4 },
            Request::Readdir { fid: 5, cookie: 77 },
            Request::Statfs { fid: 6 },
            Request::Clunk { fid: 7 },
            Request::Create {
                dir: 1,
                name: b"f".to_vec(),
                flags: libc::O_RDWR as u32,
                mode: 0o644,
                owner,
            },
            Request::Mkdir {
                dir: 1,
                name: b"d".to_vec(),
                mode: 0o755,
                owner,
            },
            Request::Mknod {
                dir: 1,
                name: b"p".to_vec(),
                mode: libc::S_IFIFO | 0o600,
                owner,
            },
            Request::Symlink {
                dir: 1,
                name: b"l".to_vec(),
                target: b"../t".to_vec(),
                owner,
            },
            Request::Link {
                dir: 1,
                name: b"h".to_vec(),
                target: 9,
            },
            Request::Unlink {
                dir: 1,
                name: b"d".to_vec(),
                flags: libc::AT_REMOVEDIR as u32,
            },
            Request::Rename {
                old_dir: 1,
                old_name: b"a".to_vec(),
                new_dir: 2,
                new_name: b"b".to_vec(),
                flags: libc::RENAME_EXCHANGE,
            },
            Request::SetAttr { fid: 3, attr },
            Request::SetAttr {
                fid: 3,
                attr: SetAttr::default(),
            },
            Request::Fsync { fid: 8 },
        ];
        for (i, req) in reqs.iter().enumerate() {
            let b = encode_request(i as u32, req);
            assert_eq!(decode_request(&b), Some((i as u32, req.clone())));
            for cut in 0..b.len() {
                assert_eq!(decode_request(&b[..cut]), None, "{req:?} cut at {cut}");
            }
        }
    }

    #[test]
    fn decode_setattr_unknown_field_bit_is_malformed() {
        let mut b = encode_request(
            1,
            &Request::SetAttr {
                fid: 1,
                attr: SetAttr::default(),
            },
        );
        b[9] = 0x40;
        assert_eq!(decode_request(&b), None);
    }

    #[test]
    fn reply_round_trip_entries_and_errors() {
        let st = Stat {
            ino: 9,
            mode: 0o100644,
            size: 5,
            mtime: (1, 2),
            ..Default::default()
        };
        let replies = [
            Ok(Reply::Fid { fid: 1, stat: st }),
            Ok(Reply::Entries {
                entries: vec![Dirent {
                    ino: 1,
                    kind: 8,
                    name: b"a".to_vec(),
                }],
                next: Some(1),
            }),
            Ok(Reply::Entries {
                entries: vec![],
                next: None,
            }),
            Ok(Reply::Link(b"../x".to_vec())),
            Err(Errno::ENOENT),
        ];
        for r in replies {
            assert_eq!(decode_reply(&encode_reply(5, &r)), Some((5, r)));
        }
    }

    #[test]
    fn decode_garbage_never_panics() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        for len in 0..300 {
            let b: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let _ = decode_request(&b);
            let _ = decode_reply(&b);
        }
        let good = encode_request(
            1,
            &Request::Walk {
                dir: 1,
                name: b"abc".to_vec(),
            },
        );
        for cut in 0..good.len() {
            assert_eq!(decode_request(&good[..cut]), None);
        }
    }
}
