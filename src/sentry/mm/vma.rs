//! Virtual memory areas: what a guest range is backed by.

use std::sync::Arc;

use super::shared::SharedObject;
use crate::sentry::mm::fixed::FixedFrames;
use crate::sentry::mm::memory::PAGE_SIZE;
use crate::sentry::platform::Prot;

/// What backs the pages of a VMA.
#[derive(Clone)]
pub enum Backing {
    /// Zero-filled private memory.
    Anon,
    /// A private file mapping: pages map the frames of the file's page
    /// cache `object` at `offset`, copy-on-write; bytes at guest addresses
    /// from `zero_from` on are zeros (the part of an ELF segment's last
    /// file page that belongs to bss: that page is a private copy at once).
    File {
        object: Arc<SharedObject>,
        offset: u64,
        zero_from: Option<u64>,
    },
    /// A shared mapping: each page is the object's own frame at `offset`
    /// plus the page's distance from the VMA's start, never copy-on-write.
    Shared {
        object: Arc<SharedObject>,
        offset: u64,
    },
    /// Fixed frames every process maps (the vDSO), copy-on-write, from
    /// page `index` of them on.
    Fixed {
        frames: Arc<FixedFrames>,
        index: u64,
    },
}

impl Backing {
    /// The backing of the part of a VMA that starts `delta` bytes later.
    pub fn advanced(&self, delta: u64) -> Backing {
        match self {
            Backing::Anon => Backing::Anon,
            Backing::File {
                object,
                offset,
                zero_from,
            } => Backing::File {
                object: object.clone(),
                offset: offset + delta,
                zero_from: *zero_from,
            },
            Backing::Shared { object, offset } => Backing::Shared {
                object: object.clone(),
                offset: offset + delta,
            },
            Backing::Fixed { frames, index } => Backing::Fixed {
                frames: frames.clone(),
                index: index + delta / PAGE_SIZE,
            },
        }
    }

    /// The shared object and the offset of the VMA's start in it.
    pub fn shared(&self) -> Option<(&Arc<SharedObject>, u64)> {
        match self {
            Backing::Shared { object, offset } => Some((object, *offset)),
            _ => None,
        }
    }

    /// The fixed frames behind this backing, if any.
    pub fn fixed(&self) -> Option<&FixedFrames> {
        match self {
            Backing::Fixed { frames, .. } => Some(frames),
            _ => None,
        }
    }
}

/// What /proc/[pid]/maps names a mapping by: the file's path (or a
/// pseudo name such as "/memfd:x (deleted)"), device and inode.
#[derive(Debug, Default)]
pub struct MapName {
    pub path: Vec<u8>,
    pub dev: u64,
    pub ino: u64,
}

/// One mapped range `[start, end)`; the start is the key in the VMA map.
#[derive(Clone)]
pub struct Vma {
    pub end: u64,
    pub prot: Prot,
    pub backing: Backing,
    /// Whether PROT_WRITE may be had: false for a shared mapping of a file
    /// opened read-only (mprotect then refuses it with EACCES).
    pub may_write: bool,
    /// MAP_GROWSDOWN (and the main thread's stack): a fault just below
    /// grows the VMA down (see `MemoryManager::grow_down`).
    pub grows_down: bool,
    /// The file (or object) it maps, for /proc/[pid]/maps.
    pub name: Option<Arc<MapName>>,
}

impl Vma {
    /// The shared object and offset of the page at `addr` (inside the VMA
    /// that starts at `start`), for a shared VMA.
    pub fn shared_at(&self, start: u64, addr: u64) -> Option<(&Arc<SharedObject>, u64)> {
        self.backing
            .shared()
            .map(|(object, offset)| (object, offset + (addr - start)))
    }
}
