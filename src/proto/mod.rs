//! The gofer wire protocol: binary messages over a SOCK_SEQPACKET socket,
//! one request or reply per packet, little-endian, hand-encoded.
//!
//! Request: `tag u32, op u8, payload`. Reply: `tag u32, errno i32, payload`
//! (payload only when errno is 0). An `Open` reply carries the opened host
//! fd as SCM_RIGHTS. Decoders check every length and never panic on
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

/// A request from the sentry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// The export root.
    Attach,
    /// The child `name` of directory `dir`: one component, never `.`/`..`.
    Walk {
        dir: Fid,
        name: Vec<u8>,
    },
    Stat {
        fid: Fid,
    },
    /// Open a regular file; the host fd comes back as SCM_RIGHTS.
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

/// Encodes a request with `tag`.
pub fn encode_request(tag: u32, req: &Request) -> Vec<u8> {
    let mut w = Writer::new();
    w.u32(tag);
    match req {
        Request::Attach => w.u8(ATTACH),
        Request::Walk { dir, name } => {
            w.u8(WALK);
            w.u32(*dir);
            w.bytes(name);
        }
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
    }
    w.finish()
}

fn fid_op(w: &mut Writer, op: u8, fid: Fid) {
    w.u8(op);
    w.u32(fid);
}

/// Decodes a request: (tag, request), or None for a malformed packet.
pub fn decode_request(b: &[u8]) -> Option<(u32, Request)> {
    let mut r = Reader::new(b);
    let tag = r.u32()?;
    let req = match r.u8()? {
        ATTACH => Request::Attach,
        WALK => Request::Walk {
            dir: r.u32()?,
            name: r.bytes()?.to_vec(),
        },
        STAT => Request::Stat { fid: r.u32()? },
        OPEN => Request::Open {
            fid: r.u32()?,
            flags: r.u32()?,
        },
        READLINK => Request::Readlink { fid: r.u32()? },
        READDIR => Request::Readdir {
            fid: r.u32()?,
            cookie: r.u64()?,
        },
        STATFS => Request::Statfs { fid: r.u32()? },
        CLUNK => Request::Clunk { fid: r.u32()? },
        _ => return None,
    };
    r.end().then_some((tag, req))
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
        let reqs = [
            Request::Attach,
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
        ];
        for (i, req) in reqs.iter().enumerate() {
            let b = encode_request(i as u32, req);
            assert_eq!(decode_request(&b), Some((i as u32, req.clone())));
        }
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
