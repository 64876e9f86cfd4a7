//! A read-only file whose bytes live in the sentry (the embedded
//! mini-init): readable, executable, mappable.

use std::sync::{Arc, OnceLock};

use super::file::FileOps;
use crate::abi::types::{Stat, S_IFREG};
use crate::abi::SysResult;
use crate::sentry::mm::memory::GuestMemory;
use crate::sentry::mm::SharedObject;

/// Static bytes served as a regular file.
pub struct MemFile {
    bytes: &'static [u8],
    ino: u64,
    /// The bytes in guest frames, once mapped (every mapping shares them).
    frames: OnceLock<Arc<SharedObject>>,
}

impl MemFile {
    pub fn new(bytes: &'static [u8], ino: u64) -> Arc<MemFile> {
        Arc::new(MemFile {
            bytes,
            ino,
            frames: OnceLock::new(),
        })
    }

    fn slice(&self, off: u64, len: usize) -> &[u8] {
        let start = (off as usize).min(self.bytes.len());
        let end = start.saturating_add(len).min(self.bytes.len());
        &self.bytes[start..end]
    }
}

impl FileOps for MemFile {
    fn read(&self, buf: &mut [u8], off: u64) -> SysResult<usize> {
        let src = self.slice(off, buf.len());
        buf[..src.len()].copy_from_slice(src);
        Ok(src.len())
    }

    fn stat(&self) -> SysResult<Stat> {
        let size = self.bytes.len() as i64;
        Ok(Stat {
            dev: 5,
            ino: self.ino,
            mode: S_IFREG | 0o555,
            nlink: 1,
            size,
            blksize: 4096,
            blocks: (size + 511) / 512,
            ..Default::default()
        })
    }

    fn page_cache(&self, mem: &Arc<GuestMemory>, _writer: bool) -> Option<Arc<SharedObject>> {
        if let Some(o) = self.frames.get() {
            return Some(o.clone());
        }
        let object = SharedObject::new(mem.clone(), 0);
        object
            .write(0, self.bytes)
            .ok()
            .filter(|&n| n == self.bytes.len())?;
        Some(self.frames.get_or_init(|| object).clone())
    }
}
