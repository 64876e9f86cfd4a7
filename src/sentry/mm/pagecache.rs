//! The page cache: the host file a [`SharedObject`] caches.
//!
//! A file of the image or of a bind mount that is mapped gets one shared
//! object per dentry (kept by its `Node`), whose frames are filled from
//! the host file on first touch and then mapped by every mapping of the
//! file: shared mappings map them as they are, private ones copy-on-write
//! (the first write copies), and the ELF loader maps programs and
//! libraries the same way. So twenty processes running one dynamic program
//! share one copy of its libraries' text and read-only data.
//!
//! A [`FileSource`] is where such an object's pages come from and where
//! the dirty ones go back to:
//!
//! - An image file is immutable: its cache never needs revalidation, is
//!   kept for the life of its dentry, and its pages are never dirty.
//! - A bind-mounted file may be written: the sentry writes through
//!   (write(2) goes to the host, then into the cached pages it touches).
//!   A shared mapping maps a clean page read-only; its first write marks
//!   the page dirty (and maps it writable), and it stays dirty until it was
//!   written back with no mapping left on it (a writable mapping elsewhere
//!   may still change it). Dirty pages go back to the host on msync,
//!   munmap, process exit and when the object goes.
//!   read(2) takes dirty pages from the cache and the rest from the host.
//!
//! Clean pages that no mapping holds are the cache's alone: under memory
//! pressure the allocator asks every cache to let them go
//! ([`super::memory::Reclaim`]); they are read again on the next touch.
//!
//! Lock order: a dentry's [`CacheSlot`], then an object's state, then its
//! source's fd, then the frame table.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use super::memory::{GuestMemory, PAGE_SIZE};
use super::shared::SharedObject;
use crate::abi::{Errno, SysResult};

/// The host file behind a page cache object.
pub struct FileSource {
    fd: Mutex<Arc<OwnedFd>>,
    /// Whether `fd` may write (dirty pages can go back through it).
    writer: AtomicBool,
    /// Whether the file may change at all (false for image files).
    mutable: bool,
}

impl FileSource {
    /// An immutable file of the image, read through `fd`.
    pub fn image(fd: Arc<OwnedFd>) -> FileSource {
        FileSource {
            fd: Mutex::new(fd),
            writer: AtomicBool::new(false),
            mutable: false,
        }
    }

    /// A host file that may change (a bind mount's), read through `fd`,
    /// written back through it when `writer`.
    pub fn host(fd: Arc<OwnedFd>, writer: bool) -> FileSource {
        FileSource {
            fd: Mutex::new(fd),
            writer: AtomicBool::new(writer),
            mutable: true,
        }
    }

    /// Whether pages of this file can be dirty (written through a shared
    /// mapping) and go back.
    pub fn mutable(&self) -> bool {
        self.mutable
    }

    /// Offers another descriptor of the same file: a writable one replaces
    /// a read-only one, so that a writable mapping can write back.
    pub fn offer(&self, fd: &Arc<OwnedFd>, writer: bool) {
        if writer && !self.writer.load(Ordering::SeqCst) {
            *self.fd.lock().unwrap() = fd.clone();
            self.writer.store(true, Ordering::SeqCst);
        }
    }

    /// Fills the fresh (zeroed) frame at `frame` with the page at `offset`
    /// (zeros past the end of the file).
    pub fn fill(&self, mem: &GuestMemory, frame: u64, offset: u64) -> SysResult<()> {
        let fd = self.fd.lock().unwrap().clone();
        mem.pread_into(fd.as_fd(), frame, PAGE_SIZE as usize, offset)?;
        Ok(())
    }

    /// Writes `len` bytes of the frame at `frame` back to the file at
    /// `offset`.
    pub fn write_back(
        &self,
        mem: &GuestMemory,
        frame: u64,
        offset: u64,
        len: usize,
    ) -> SysResult<()> {
        if !self.writer.load(Ordering::SeqCst) {
            return Err(Errno::EBADF);
        }
        let fd = self.fd.lock().unwrap().clone();
        mem.pwrite_from(fd.as_fd(), frame, len, offset)?;
        Ok(())
    }
}

/// Where a dentry keeps its file's page cache object: for good (an image
/// file: its frames go only under memory pressure), or only while mappings
/// hold it (a bind file, which may change on the host: a new cache then
/// reads it afresh).
#[derive(Default)]
pub struct CacheSlot(Mutex<Slot>);

#[derive(Default)]
enum Slot {
    #[default]
    Empty,
    Kept(Arc<SharedObject>),
    Held(Weak<SharedObject>),
}

impl Slot {
    fn live(&self) -> Option<Arc<SharedObject>> {
        match self {
            Slot::Empty => None,
            Slot::Kept(o) => Some(o.clone()),
            Slot::Held(w) => w.upgrade(),
        }
    }
}

impl CacheSlot {
    /// The object in the slot, if there is one alive.
    pub fn get(&self) -> Option<Arc<SharedObject>> {
        self.0.lock().unwrap().live()
    }

    /// Runs `f` with the object in the slot (if any), holding the slot so
    /// that no cache is made meanwhile: a write to the file that finds no
    /// cache cannot race a new cache's first reads.
    pub fn with<R>(&self, f: impl FnOnce(Option<Arc<SharedObject>>) -> R) -> R {
        let slot = self.0.lock().unwrap();
        f(slot.live())
    }

    /// The object in the slot, made by `make` when there is none; `keep`
    /// keeps it for the slot's life.
    pub fn get_or_make(
        &self,
        keep: bool,
        make: impl FnOnce() -> Arc<SharedObject>,
    ) -> Arc<SharedObject> {
        let mut slot = self.0.lock().unwrap();
        if let Some(o) = slot.live() {
            return o;
        }
        let o = make();
        *slot = if keep {
            Slot::Kept(o.clone())
        } else {
            Slot::Held(Arc::downgrade(&o))
        };
        o
    }
}
