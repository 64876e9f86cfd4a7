//! Fixed frames mapped into every address space: the vDSO image
//! and its clock page. A page of such a mapping is always the shared
//! frame itself, mapped copy-on-write, so a guest that makes it writable
//! (`mprotect`, where allowed) writes to a copy of its own, never to the
//! frame other processes see.

use std::sync::Arc;

use crate::abi::SysResult;
use crate::sentry::mm::memory::{GuestMemory, PAGE_SIZE};

/// Frames filled once and mapped, never copied, into address spaces.
pub struct FixedFrames {
    mem: Arc<GuestMemory>,
    frames: Vec<u64>,
    /// How /proc/PID/maps names the mapping ("[vdso]").
    pub name: &'static str,
    /// Whether mprotect may make a mapping of these writable (copy-on-write).
    pub may_write: bool,
}

impl FixedFrames {
    /// Allocates frames holding `bytes` (zero-padded to whole pages).
    pub fn new(
        mem: &Arc<GuestMemory>,
        bytes: &[u8],
        name: &'static str,
        may_write: bool,
    ) -> SysResult<Arc<FixedFrames>> {
        let mut shared = FixedFrames {
            mem: mem.clone(),
            frames: Vec::new(),
            name,
            may_write,
        };
        for chunk in bytes.chunks(PAGE_SIZE as usize) {
            let frame = mem.alloc_frame()?;
            shared.frames.push(frame);
            mem.write(frame, chunk);
        }
        Ok(Arc::new(shared))
    }

    /// The frame of page `index`, None past the end.
    pub fn frame(&self, index: u64) -> Option<u64> {
        self.frames.get(usize::try_from(index).ok()?).copied()
    }

    /// Bytes covered (whole pages).
    pub fn len(&self) -> u64 {
        self.frames.len() as u64 * PAGE_SIZE
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The guest memory the frames live in.
    pub fn memory(&self) -> &GuestMemory {
        &self.mem
    }
}

impl Drop for FixedFrames {
    fn drop(&mut self) {
        for &f in &self.frames {
            self.mem.decref(f);
        }
    }
}
