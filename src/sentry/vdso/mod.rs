//! The vDSO: clock_gettime, gettimeofday, time and clock_getres answered
//! in guest code, from the TSC and a clock page the sentry keeps, without
//! an exit to the sentry.
//!
//! * The image is our own freestanding C (`vdso.c`, `vvar.h`, laid out by
//!   `vdso.lds`, versioned by `vdso.map`), built by `build.rs` and
//!   embedded. Its symbols carry version LINUX_2.6, which glibc looks up
//!   through AT_SYSINFO_EHDR.
//! * One set of frames per sandbox holds the image and the vvar page; every
//!   exec maps the same frames (`Backing::Fixed`, copy-on-write) into the
//!   new process, the vvar page just below the image, and fork keeps them
//!   as ordinary VMAs.
//! * Both platforms run guest code on the host CPU with the host's TSC (the
//!   KVM platform sets each vCPU's TSC offset to zero), so the sentry
//!   calibrates the TSC against the host clocks and publishes lines over it
//!   (`clock.rs`) in the vvar page (`vvar.rs`), under a seqlock.
//! * The sentry calibrates over a millisecond when the sandbox starts; a
//!   sentry thread then re-anchors the lines after 10 ms, 100 ms and about
//!   once a second from then on, continuously (see `clock.rs`), so
//!   calibration error and NTP slewing of the host's clocks never
//!   accumulate. It ends when no mapping of the page is left.
//! * Clocks the vDSO does not compute (CPU time, unknown ids), and every
//!   clock while the TSC is not usable, are the real syscall.

mod clock;
mod vvar;

use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::abi::SysResult;
use crate::sentry::mm::fixed::FixedFrames;
use crate::sentry::mm::memory::{GuestMemory, PAGE_SIZE};
use crate::sentry::mm::{Backing, MemoryManager};
use crate::sentry::platform::Prot;
use crate::sys::clock::{clock_ns, tsc, tsc_invariant};
use clock::{Point, Sample, Tracker};

/// The vDSO shared object built from `vdso.c`.
pub static IMAGE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/vdso.so"));

/// Resolution of the *_COARSE clocks (as clock_getres reports it).
pub const COARSE_NS: u64 = 4_000_000;

/// How often the clock lines are re-anchored to the host clocks.
const REANCHOR: Duration = Duration::from_secs(1);
/// The first re-anchors, sooner: each refines the rate over a longer span.
const FIRST_REANCHORS: [Duration; 2] = [Duration::from_millis(10), Duration::from_millis(100)];
/// Time between the two calibration samples.
const CALIBRATION: Duration = Duration::from_millis(1);
/// Readings per sample; the one with the shortest TSC bracket wins.
const TRIES: usize = 5;

/// The vDSO of one sandbox: image and clock page frames shared by every
/// process, and the thread that keeps the clock page current.
pub struct Vdso {
    image: Arc<FixedFrames>,
    vvar: Arc<FixedFrames>,
}

impl Vdso {
    /// Loads the image into guest memory, calibrates the TSC (a
    /// millisecond) and starts the clock thread.
    pub fn new(mem: &Arc<GuestMemory>) -> SysResult<Vdso> {
        let image = FixedFrames::new(mem, IMAGE, "[vdso]", true)?;
        let vvar = FixedFrames::new(mem, &[0; PAGE_SIZE as usize], "[vvar]", false)?;
        let first = sample();
        std::thread::sleep(CALIBRATION);
        let tracker = Tracker::calibrate(first, sample(), tsc_invariant(), COARSE_NS);
        if !tracker.clocks().tsc_ok {
            log::info!("the host TSC is not a usable clock: guest clock calls stay syscalls");
        }
        let weak = Arc::downgrade(&vvar);
        let body = tracker.clocks().body();
        publish(&weak, || body.to_vec());
        let spawned = std::thread::Builder::new()
            .name("vdso-clock".into())
            .spawn(move || keep_time(weak, tracker));
        if let Err(e) = spawned {
            log::warn!("vDSO clock thread: {e}; the guest clocks will drift from the host's");
        }
        Ok(Vdso { image, vvar })
    }

    /// Maps the vvar page and, just above it, the image into `mm` at a free
    /// address; returns the image's address (AT_SYSINFO_EHDR).
    pub fn map(&self, mm: &mut MemoryManager) -> SysResult<u64> {
        let base = mm.find_free(self.vvar.len() + self.image.len())?;
        let r = Prot {
            read: true,
            write: false,
            exec: false,
        };
        let rx = Prot { exec: true, ..r };
        let at = |frames: &Arc<FixedFrames>| Backing::Fixed {
            frames: frames.clone(),
            index: 0,
        };
        mm.map(base, self.vvar.len(), r, at(&self.vvar))?;
        let image = base + self.vvar.len();
        mm.map(image, self.image.len(), rx, at(&self.image))?;
        Ok(image)
    }
}

/// The clock thread: re-anchors soon after the short calibration (whose
/// rate is the least precise), then every `REANCHOR`, until the vvar page
/// is gone.
fn keep_time(vvar: Weak<FixedFrames>, mut tracker: Tracker) {
    let mut waits = FIRST_REANCHORS
        .into_iter()
        .chain(std::iter::repeat(REANCHOR));
    let mut wait = waits.next().unwrap_or(REANCHOR);
    loop {
        std::thread::sleep(wait);
        wait = waits.next().unwrap_or(REANCHOR);
        let period = tracker.ticks(wait.as_nanos() as u64);
        let s = sample();
        let published = publish(&vvar, || tracker.reanchor(s, tsc(), period).body().to_vec());
        if !published {
            return;
        }
    }
}

/// Rewrites the vvar page with what `make` returns; false once the page is
/// gone.
fn publish(vvar: &Weak<FixedFrames>, make: impl FnOnce() -> Vec<u8>) -> bool {
    let Some(page) = vvar.upgrade() else {
        return false;
    };
    let frame = page.frame(0).expect("the vvar page has a frame");
    page.memory().write_seqlocked(frame, make);
    true
}

/// Host clock `id` with the TSC at the moment it was read: the midpoint of
/// the tightest TSC bracket of a few tries.
fn point(id: libc::clockid_t) -> Point {
    let mut best = (u64::MAX, Point::default());
    for _ in 0..TRIES {
        let a = tsc();
        let ns = clock_ns(id);
        let b = tsc();
        if b.wrapping_sub(a) < best.0 {
            best = (
                b.wrapping_sub(a),
                Point {
                    tsc: a / 2 + b / 2,
                    ns,
                },
            );
        }
    }
    best.1
}

/// Host clock `id` less CLOCK_MONOTONIC, read between two readings of it:
/// the tightest bracket of a few tries (a preempted one would be off).
fn offset(id: libc::clockid_t) -> i64 {
    let mut best = (u64::MAX, 0);
    for _ in 0..TRIES {
        let a = clock_ns(libc::CLOCK_MONOTONIC);
        let v = clock_ns(id);
        let b = clock_ns(libc::CLOCK_MONOTONIC);
        if b.wrapping_sub(a) < best.0 {
            best = (b.wrapping_sub(a), v as i64 - (a / 2 + b / 2) as i64);
        }
    }
    best.1
}

/// Reads every host clock the vDSO serves. The host's TAI is REALTIME plus
/// whole seconds and its BOOTTIME never behind MONOTONIC: the offsets keep
/// that, rather than the few ns of noise between two readings.
fn sample() -> Sample {
    const SEC: i64 = 1_000_000_000;
    let real_off = offset(libc::CLOCK_REALTIME);
    let tai_secs = (offset(libc::CLOCK_TAI) - real_off + SEC / 2).div_euclid(SEC);
    Sample {
        mono: point(libc::CLOCK_MONOTONIC),
        raw: point(libc::CLOCK_MONOTONIC_RAW),
        real_off,
        boot_off: offset(libc::CLOCK_BOOTTIME).max(0),
        tai_off: real_off + tai_secs * SEC,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::Errno;
    use crate::sentry::platform::{AddressSpace, PlatformError};
    use std::sync::Mutex;

    /// Records what the memory manager maps: (addr, frame, writable).
    #[derive(Default)]
    struct FakeSpace(Mutex<Vec<(u64, u64, bool)>>);

    impl AddressSpace for FakeSpace {
        fn map(&self, addr: u64, len: u64, offset: u64, prot: Prot) -> Result<(), PlatformError> {
            let mut m = self.0.lock().unwrap();
            for i in (0..len).step_by(PAGE_SIZE as usize) {
                m.retain(|&(a, _, _)| a != addr + i);
                m.push((addr + i, offset + i, prot.write));
            }
            Ok(())
        }
        fn unmap(&self, addr: u64, len: u64) -> Result<(), PlatformError> {
            self.0
                .lock()
                .unwrap()
                .retain(|&(a, _, _)| !(addr..addr + len).contains(&a));
            Ok(())
        }
        fn as_any(&self) -> &dyn std::any::Any {
            self
        }
    }

    fn setup() -> (Arc<GuestMemory>, Vdso, MemoryManager) {
        let mem = Arc::new(GuestMemory::new(64 * PAGE_SIZE, 64 * PAGE_SIZE).unwrap());
        let vdso = Vdso::new(&mem).unwrap();
        let mm = MemoryManager::new(mem.clone(), Arc::new(FakeSpace::default()));
        (mem, vdso, mm)
    }

    #[test]
    fn image_is_an_elf_shared_object() {
        assert_eq!(&IMAGE[..4], b"\x7fELF");
        assert_eq!(u16::from_le_bytes([IMAGE[16], IMAGE[17]]), 3); // ET_DYN
    }

    #[test]
    fn calibrated_clock_agrees_with_the_host() {
        let a = sample();
        std::thread::sleep(CALIBRATION);
        let mut t = Tracker::calibrate(a, sample(), tsc_invariant(), COARSE_NS);
        assert!(t.clocks().tsc_ok, "this host's TSC should be usable");
        let check = |c: &vvar::Clocks| {
            let before = clock_ns(libc::CLOCK_MONOTONIC);
            let ours = c.mono.at(tsc());
            let after = clock_ns(libc::CLOCK_MONOTONIC);
            // Within 50 µs of the host's reading (a preemption may widen it).
            assert!(
                ours + 50_000 >= before && ours <= after + 50_000,
                "{before} {ours} {after}"
            );
            let real = (ours as i64 + c.real_off) as u64;
            let host_real = clock_ns(libc::CLOCK_REALTIME);
            assert!(
                real.abs_diff(host_real) < 1_000_000,
                "{real} vs {host_real}"
            );
        };
        check(&t.clocks());
        std::thread::sleep(Duration::from_millis(20));
        let period = t.ticks(20_000_000);
        let c = t.reanchor(sample(), tsc(), period);
        check(&c);
    }

    #[test]
    fn map_puts_vvar_below_the_image_shared_by_processes() {
        let (mem, vdso, mut mm) = setup();
        let mut other = MemoryManager::new(mem.clone(), Arc::new(FakeSpace::default()));
        let at = vdso.map(&mut mm).unwrap();
        let at2 = vdso.map(&mut other).unwrap();
        let (vstart, vvma) = mm.vma_at(at - PAGE_SIZE).unwrap();
        assert_eq!(vstart, at - PAGE_SIZE);
        assert!(!vvma.prot.write && !vvma.prot.exec);
        assert!(mm.vma_at(at).unwrap().1.prot.exec);
        let mut head = [0u8; 4];
        mm.copy_in(at, &mut head).unwrap();
        assert_eq!(&head, b"\x7fELF");
        other.copy_in(at2, &mut head).unwrap();
        // Both read the same frame, referenced by the vDSO and two pages.
        let frame = vdso.image.frame(0).unwrap();
        assert_eq!(mem.refcount(frame), 3);
    }

    #[test]
    fn vvar_cannot_be_made_writable() {
        let (_, vdso, mut mm) = setup();
        let at = vdso.map(&mut mm).unwrap();
        let rw = Prot {
            read: true,
            write: true,
            exec: false,
        };
        assert_eq!(
            mm.protect(at - PAGE_SIZE, PAGE_SIZE, rw),
            Err(Errno::EACCES)
        );
        assert_eq!(mm.copy_out(at - PAGE_SIZE, &[1]), Err(Errno::EFAULT));
    }

    #[test]
    fn writable_image_page_is_a_private_copy() {
        let (mem, vdso, mut mm) = setup();
        let at = vdso.map(&mut mm).unwrap();
        let rwx = Prot {
            read: true,
            write: true,
            exec: true,
        };
        mm.protect(at, PAGE_SIZE, rwx).unwrap();
        mm.copy_out(at, b"XELF").unwrap();
        let frame = vdso.image.frame(0).unwrap();
        let mut head = [0u8; 4];
        mem.read(frame, &mut head);
        assert_eq!(&head, b"\x7fELF", "the shared frame is untouched");
        mm.copy_in(at, &mut head).unwrap();
        assert_eq!(&head, b"XELF");
    }
}
