//! The vvar page: the clock data the vDSO reads, in the layout of
//! `vvar.h` (the C side). Offsets are checked there with static asserts.
//!
//! The page is guarded by a seqlock: the 32-bit sequence at offset 0 is
//! odd while the sentry rewrites the rest, and readers retry when it was
//! odd or changed under them.

use super::clock::{Line, SHIFT};

/// `flags` bit: the vDSO may compute time from the TSC.
pub const FLAG_TSC_OK: u32 = 1;

/// Bytes of the fields after the sequence word.
pub const BODY_LEN: usize = 92;

/// What the vvar page says about the clocks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Clocks {
    /// The TSC may be used; when false every call becomes a syscall.
    pub tsc_ok: bool,
    /// CLOCK_MONOTONIC; REALTIME, BOOTTIME and TAI are offsets from it.
    pub mono: Line,
    /// CLOCK_MONOTONIC_RAW.
    pub raw: Line,
    pub real_off: i64,
    pub boot_off: i64,
    pub tai_off: i64,
    /// Resolution of the *_COARSE clocks, in ns.
    pub coarse_ns: u64,
}

impl Clocks {
    /// The page's bytes after the sequence word (offset 4 on).
    pub fn body(&self) -> [u8; BODY_LEN] {
        let flags = if self.tsc_ok { FLAG_TSC_OK } else { 0 };
        let mut words: Vec<u8> = Vec::with_capacity(BODY_LEN);
        for w in [flags, SHIFT, 0] {
            words.extend(w.to_le_bytes());
        }
        for line in [self.mono, self.raw] {
            for w in [line.base_tsc, line.base_ns, line.mult] {
                words.extend(w.to_le_bytes());
            }
        }
        for w in [self.real_off, self.boot_off, self.tai_off] {
            words.extend(w.to_le_bytes());
        }
        words.extend(self.coarse_ns.to_le_bytes());
        words.try_into().expect("vvar body is BODY_LEN bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u64_at(b: &[u8], page_off: usize) -> u64 {
        let o = page_off - 4;
        u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
    }

    #[test]
    fn body_matches_the_c_layout() {
        let c = Clocks {
            tsc_ok: true,
            mono: Line {
                base_tsc: 1,
                base_ns: 2,
                mult: 3,
            },
            raw: Line {
                base_tsc: 4,
                base_ns: 5,
                mult: 6,
            },
            real_off: 7,
            boot_off: 8,
            tai_off: -9,
            coarse_ns: 10,
        };
        let b = c.body();
        // Offsets as in vvar.h (page offsets; the body starts at 4).
        assert_eq!(&b[0..4], &FLAG_TSC_OK.to_le_bytes());
        assert_eq!(&b[4..8], &SHIFT.to_le_bytes());
        assert_eq!(u64_at(&b, 16), 1);
        assert_eq!(u64_at(&b, 32), 3);
        assert_eq!(u64_at(&b, 40), 4);
        assert_eq!(u64_at(&b, 64), 7);
        assert_eq!(u64_at(&b, 80) as i64, -9);
        assert_eq!(u64_at(&b, 88), 10);
    }
}
