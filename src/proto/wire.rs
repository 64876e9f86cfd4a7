//! Little-endian encoding helpers with checked decoding.

use crate::abi::types::Stat;

/// Builds a packet.
#[derive(Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Writer {
        Writer::default()
    }

    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// A byte string with a u16 length.
    pub fn bytes(&mut self, b: &[u8]) {
        let n = b.len().min(u16::MAX as usize);
        self.buf.extend_from_slice(&(n as u16).to_le_bytes());
        self.buf.extend_from_slice(&b[..n]);
    }

    pub fn stat(&mut self, st: &Stat) {
        for v in [st.dev, st.ino] {
            self.u64(v);
        }
        self.u32(st.mode);
        self.u64(st.nlink);
        self.u32(st.uid);
        self.u32(st.gid);
        self.u64(st.rdev);
        for v in [
            st.size, st.blksize, st.blocks, st.atime.0, st.atime.1, st.mtime.0, st.mtime.1,
            st.ctime.0, st.ctime.1,
        ] {
            self.u64(v as u64);
        }
    }

    /// The current length of the packet.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads a packet; every getter returns None past the end.
pub struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(b: &'a [u8]) -> Reader<'a> {
        Reader { b }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.b.len() < n {
            return None;
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Some(head)
    }

    pub fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    pub fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }

    pub fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
    }

    pub fn i32(&mut self) -> Option<i32> {
        self.take(4)
            .map(|b| i32::from_le_bytes(b.try_into().unwrap()))
    }

    pub fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
    }

    pub fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()? as usize;
        self.take(n)
    }

    pub fn stat(&mut self) -> Option<Stat> {
        let (dev, ino, mode, nlink) = (self.u64()?, self.u64()?, self.u32()?, self.u64()?);
        let (uid, gid, rdev) = (self.u32()?, self.u32()?, self.u64()?);
        let mut v = [0i64; 9];
        for x in v.iter_mut() {
            *x = self.u64()? as i64;
        }
        let [size, blksize, blocks, a0, a1, m0, m1, c0, c1] = v;
        Some(Stat {
            dev,
            ino,
            mode,
            nlink,
            uid,
            gid,
            rdev,
            size,
            blksize,
            blocks,
            atime: (a0, a1),
            mtime: (m0, m1),
            ctime: (c0, c1),
        })
    }

    /// True when everything was consumed.
    pub fn end(&self) -> bool {
        self.b.is_empty()
    }
}
