//! A read-only file whose bytes live in the sentry (the embedded
//! mini-init): readable, executable, mappable.

use std::sync::Arc;

use super::file::FileOps;
use crate::abi::types::{Stat, S_IFREG};
use crate::abi::SysResult;
use crate::sentry::mm::memory::{GuestMemory, PAGE_SIZE};
use crate::sentry::mm::PageSource;

/// Static bytes served as a regular file.
pub struct MemFile {
    bytes: &'static [u8],
    ino: u64,
}

impl MemFile {
    pub fn new(bytes: &'static [u8], ino: u64) -> Arc<MemFile> {
        Arc::new(MemFile { bytes, ino })
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

    fn page_source(self: Arc<Self>) -> Option<Arc<dyn PageSource>> {
        Some(self)
    }
}

impl PageSource for MemFile {
    fn fill(&self, mem: &GuestMemory, frame: u64, offset: u64) -> SysResult<()> {
        let src = self.slice(offset, PAGE_SIZE as usize);
        mem.write(frame, src);
        Ok(())
    }
}
