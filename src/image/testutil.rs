//! Helpers for the image tests: temporary directories and in-memory
//! archives, including archives `tar::Builder` would refuse to write.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use tar::{EntryType, Header};

/// A directory under the system temp dir, removed (with its contents) on
/// drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new() -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("sandboxd-image-test-{}-{n}", std::process::id());
        let path = std::env::temp_dir().join(name);
        let _ = super::store::remove_path(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = super::store::remove_path(&self.path);
    }
}

/// One archive entry. Names and link targets are written into the header
/// as raw bytes, unchecked.
pub enum Item<'a> {
    File(&'a str, &'a [u8], u32),
    Dir(&'a str, u32),
    Symlink(&'a str, &'a str),
    Link(&'a str, &'a str),
    Fifo(&'a str),
}

/// Fixed mtime of every test entry.
pub const MTIME: u64 = 1_600_000_000;

/// A tar archive (with its end-of-archive marker) of `items`.
pub fn tar_of(items: &[Item]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for item in items {
        let (kind, name, link, data, mode) = match *item {
            Item::File(n, d, m) => (EntryType::Regular, n, "", d, m),
            Item::Dir(n, m) => (EntryType::Directory, n, "", &b""[..], m),
            Item::Symlink(n, l) => (EntryType::Symlink, n, l, &b""[..], 0o777),
            Item::Link(n, l) => (EntryType::Link, n, l, &b""[..], 0o644),
            Item::Fifo(n) => (EntryType::Fifo, n, "", &b""[..], 0o644),
        };
        let header = raw_header(kind, name, link, data.len() as u64, mode);
        builder.append(&header, data).unwrap();
    }
    builder.into_inner().unwrap()
}

fn raw_header(kind: EntryType, name: &str, link: &str, size: u64, mode: u32) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(mode);
    header.set_mtime(MTIME);
    header.set_uid(1000);
    header.set_gid(1000);
    let old = header.as_old_mut();
    old.name[..name.len()].copy_from_slice(name.as_bytes());
    old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    header.set_cksum();
    header
}

/// `data` gzip-compressed.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}
