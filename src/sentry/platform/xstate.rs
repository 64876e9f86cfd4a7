//! The guest's extended FPU state (XSAVE) as signal frames carry it: the
//! standard (uncompacted) XSAVE layout of the user features Linux puts in
//! frames by default (x87, SSE, AVX, AVX-512), as both platforms read and
//! write it.
//!
//! Layout: 512 bytes of legacy FXSAVE area, the 64-byte XSAVE header
//! (XSTATE_BV, XCOMP_BV, reserved), then each component at the offset
//! CPUID leaf 0xD gives.

use std::sync::OnceLock;

/// x87, SSE, AVX, and AVX-512's opmask, ZMM_Hi256 and Hi16_ZMM.
const USER_FEATURES: u64 = 0b1110_0111;
/// Size of the legacy area plus the XSAVE header.
pub const HEADER_END: usize = 576;
const XSTATE_BV: usize = 512;
const MXCSR: usize = 24;

/// Which features a frame holds and its size in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub features: u64,
    pub size: usize,
}

/// The layout of this host: the user features the CPU supports (CPUID
/// 0xD.0 EDX:EAX) and the end of the last of them. Without XSAVE, the
/// legacy area only.
pub fn layout() -> Layout {
    static LAYOUT: OnceLock<Layout> = OnceLock::new();
    *LAYOUT.get_or_init(|| {
        use std::arch::x86_64::{__cpuid, __cpuid_count};
        let has_xsave = __cpuid(1).ecx & (1 << 26) != 0;
        if !has_xsave {
            return Layout {
                features: 0b11,
                size: 512,
            };
        }
        let leaf = __cpuid_count(0xd, 0);
        let supported = (leaf.edx as u64) << 32 | leaf.eax as u64;
        let features = supported & USER_FEATURES;
        let mut size = HEADER_END;
        for comp in 2..8 {
            if features & (1 << comp) != 0 {
                let c = __cpuid_count(0xd, comp);
                size = size.max((c.ebx + c.eax) as usize);
            }
        }
        Layout { features, size }
    })
}

/// Makes an area the guest handed back (rt_sigreturn) safe to load: only
/// this layout's features, standard format, no reserved header bits, and
/// MXCSR without reserved bits (they would fault the load).
pub fn sanitize(area: &mut [u8], layout: Layout) {
    if area.len() >= MXCSR + 4 {
        let mxcsr = u32::from_le_bytes(area[MXCSR..MXCSR + 4].try_into().unwrap()) & 0xffff;
        area[MXCSR..MXCSR + 4].copy_from_slice(&mxcsr.to_le_bytes());
    }
    if area.len() >= HEADER_END {
        let bv = u64::from_le_bytes(area[XSTATE_BV..XSTATE_BV + 8].try_into().unwrap());
        area[XSTATE_BV..XSTATE_BV + 8].copy_from_slice(&(bv & layout.features).to_le_bytes());
        area[XSTATE_BV + 8..HEADER_END].fill(0);
    }
}

/// The legacy FXSAVE area at the start of `state` (zeros where it is
/// shorter), for a CPU or frame without XSAVE.
pub fn legacy_area(state: &[u8]) -> [u8; 512] {
    let mut legacy = [0u8; 512];
    let n = state.len().min(512);
    legacy[..n].copy_from_slice(&state[..n]);
    legacy
}

/// An XSAVE area from a legacy FXSAVE area alone: the extended components
/// in their initial state (XSTATE_BV has x87 and SSE only).
pub fn from_legacy(legacy: &[u8], layout: Layout) -> Vec<u8> {
    let mut area = vec![0u8; layout.size.max(512)];
    let n = legacy.len().min(512);
    area[..n].copy_from_slice(&legacy[..n]);
    if area.len() >= HEADER_END {
        area[XSTATE_BV..XSTATE_BV + 8].copy_from_slice(&0b11u64.to_le_bytes());
    }
    area
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_covers_the_legacy_area_and_header_with_sse() {
        let l = layout();
        assert_eq!(l.features & 0b11, 0b11);
        assert!(l.size >= 512);
        if l.features & 0b100 != 0 {
            assert!(l.size >= 832, "AVX ends at 832: {l:?}");
        }
    }

    #[test]
    fn sanitize_drops_unknown_features_and_reserved_bits() {
        let l = Layout {
            features: 0b111,
            size: 832,
        };
        let mut area = vec![0xffu8; 832];
        sanitize(&mut area, l);
        assert_eq!(
            u64::from_le_bytes(area[512..520].try_into().unwrap()),
            0b111
        );
        assert!(area[520..576].iter().all(|&b| b == 0));
        assert_eq!(u32::from_le_bytes(area[24..28].try_into().unwrap()), 0xffff);
    }
}
