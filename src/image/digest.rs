//! sha256 of bundle files: the store key and the pin check.
//!
//! A bundle is hashed once before anything is unpacked (to check the pin and
//! find an existing entry) and hashed again by [`HashingReader`] while it is
//! unpacked, so that a file rewritten between the two reads is caught
//! instead of being stored under the wrong key.

use std::io::{self, Read};

use sha2::{Digest as _, Sha256};

/// Read size when hashing a whole file.
const BUF_LEN: usize = 256 << 10;

/// Length of a digest in lowercase hex.
pub const HEX_LEN: usize = 64;

/// Hashes everything read from `reader`; returns (lowercase hex, length).
pub fn hash_reader(reader: impl Read) -> io::Result<(String, u64)> {
    HashingReader::new(reader).finish_reading()
}

/// Normalises a pinned digest: an optional `sha256:` prefix, any case.
/// Returns `None` unless what remains is 64 hex digits.
pub fn parse_pin(pin: &str) -> Option<String> {
    let hex = pin.trim().strip_prefix("sha256:").unwrap_or(pin.trim());
    let hex = hex.to_ascii_lowercase();
    is_digest(&hex).then_some(hex)
}

/// Whether `s` is a store key: exactly 64 lowercase hex digits.
pub fn is_digest(s: &str) -> bool {
    s.len() == HEX_LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A reader that hashes and counts what passes through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    len: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            len: 0,
        }
    }

    /// Reads the rest of the input, then returns (lowercase hex, length).
    pub fn finish_reading(mut self) -> io::Result<(String, u64)> {
        let mut buf = vec![0u8; BUF_LEN];
        loop {
            match self.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok((hex::encode(self.hasher.finalize()), self.len))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_reader_abc_matches_known_vector() {
        let (hex, len) = hash_reader(&b"abc"[..]).unwrap();
        assert_eq!(
            hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(len, 3);
    }

    #[test]
    fn parse_pin_prefix_and_uppercase_normalised() {
        let upper = format!("sha256:{}", "AB".repeat(32));
        assert_eq!(parse_pin(&upper), Some("ab".repeat(32)));
    }

    #[test]
    fn parse_pin_short_or_non_hex_rejected() {
        assert_eq!(parse_pin("abcd"), None);
        assert_eq!(parse_pin(&"zz".repeat(32)), None);
    }

    #[test]
    fn hashing_reader_finish_reading_hashes_unread_tail() {
        let mut reader = HashingReader::new(&b"abc"[..]);
        let mut first = [0u8; 1];
        reader.read_exact(&mut first).unwrap();
        let (hex, len) = reader.finish_reading().unwrap();
        assert_eq!(hex, hash_reader(&b"abc"[..]).unwrap().0);
        assert_eq!(len, 3);
    }
}
