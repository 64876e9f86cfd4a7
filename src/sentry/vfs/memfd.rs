//! memfd_create(2): an anonymous regular file in the sentry's memory. Its
//! data is a [`SharedObject`], like a tmpfs file's, so MAP_SHARED mappings
//! (in any process that gets the fd) and read/write share frames.
//!
//! Seals (F_ADD_SEALS) forbid shrinking, growing or writing, and further
//! sealing. A write seal makes new shared mappings read-only for good;
//! mappings made writable before the seal are not tracked, so they keep
//! writing (Linux refuses the seal with EBUSY instead).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use super::file::FileOps;
use crate::abi::types::{Stat, S_IFREG};
use crate::abi::{Errno, SysResult};
use crate::sentry::mm::memory::GuestMemory;
use crate::sentry::mm::{Quota, SharedObject};

pub const F_SEAL_SEAL: u32 = 0x1;
pub const F_SEAL_SHRINK: u32 = 0x2;
pub const F_SEAL_GROW: u32 = 0x4;
pub const F_SEAL_WRITE: u32 = 0x8;
pub const F_SEAL_FUTURE_WRITE: u32 = 0x10;
pub const F_SEAL_EXEC: u32 = 0x20;
const ALL_SEALS: u32 =
    F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE | F_SEAL_EXEC;

/// The bytes all memfds of a sandbox may hold together.
static QUOTA: Quota = Quota::new(super::tmpfs::LIMIT);
const DEV: u64 = 0x1f;

pub struct MemFd {
    name: Vec<u8>,
    data: Arc<SharedObject>,
    seals: AtomicU32,
    mode: u32,
    ino: u64,
}

impl MemFd {
    /// An empty memfd named `name`; `seals` are those it starts with
    /// (F_SEAL_SEAL unless sealing is allowed).
    pub fn new(mem: Arc<GuestMemory>, name: Vec<u8>, seals: u32, perm: u32) -> Arc<MemFd> {
        static NEXT_INO: AtomicU64 = AtomicU64::new(0x30_0000);
        Arc::new(MemFd {
            name,
            data: SharedObject::with_quota(mem, &QUOTA),
            seals: AtomicU32::new(seals),
            mode: S_IFREG | perm,
            ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// The memfd behind a file, if it is one.
    pub fn of(ops: &dyn FileOps) -> Option<&MemFd> {
        ops.as_any().and_then(|a| a.downcast_ref::<MemFd>())
    }

    pub fn seals(&self) -> u32 {
        self.seals.load(Ordering::SeqCst)
    }

    /// F_ADD_SEALS: EPERM once F_SEAL_SEAL is set.
    pub fn add_seals(&self, seals: u32) -> SysResult<()> {
        if seals & !ALL_SEALS != 0 {
            return Err(Errno::EINVAL);
        }
        self.seals
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |s| {
                (s & F_SEAL_SEAL == 0).then_some(s | seals)
            })
            .map(|_| ())
            .map_err(|_| Errno::EPERM)
    }

    /// Whether writes (and writable shared mappings) are refused.
    pub fn write_sealed(&self) -> bool {
        self.seals() & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE) != 0
    }
}

impl FileOps for MemFd {
    fn read(&self, buf: &mut [u8], off: u64) -> SysResult<usize> {
        Ok(self.data.read(off, buf))
    }

    fn write(&self, buf: &[u8], off: u64) -> SysResult<usize> {
        if self.write_sealed() {
            return Err(Errno::EPERM);
        }
        let end = off.checked_add(buf.len() as u64).ok_or(Errno::EFBIG)?;
        if self.seals() & F_SEAL_GROW != 0 && end > self.data.size() {
            return Err(Errno::EPERM);
        }
        self.data.write(off, buf)
    }

    fn stat(&self) -> SysResult<Stat> {
        let size = self.data.size() as i64;
        Ok(Stat {
            dev: DEV,
            ino: self.ino,
            mode: self.mode,
            nlink: 1,
            size,
            blksize: 4096,
            blocks: (size + 511) / 512,
            ..Default::default()
        })
    }

    fn truncate(&self, len: u64) -> SysResult<()> {
        let size = self.data.size();
        let seals = self.seals();
        if (len < size && seals & F_SEAL_SHRINK != 0) || (len > size && seals & F_SEAL_GROW != 0) {
            return Err(Errno::EPERM);
        }
        self.data.set_size(len)
    }

    fn shared_object(&self) -> Option<Arc<SharedObject>> {
        Some(self.data.clone())
    }

    fn fd_target(&self) -> Option<Vec<u8>> {
        let mut t = b"/memfd:".to_vec();
        t.extend_from_slice(&self.name);
        t.extend_from_slice(b" (deleted)");
        Some(t)
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
