//! The host's time sources as the vDSO's calibration reads them: the TSC
//! and the POSIX clocks.

use nix::time::{clock_gettime, ClockId};

/// The TSC, read after every earlier instruction has completed (`lfence`
/// first), as the guest's vDSO reads it.
pub fn tsc() -> u64 {
    use std::arch::x86_64::{_mm_lfence, _rdtsc};
    // SAFETY: lfence (SSE2, part of x86-64) and rdtsc touch no memory.
    unsafe {
        _mm_lfence();
        let t = _rdtsc();
        _mm_lfence();
        t
    }
}

/// Whether the CPU says its TSC is invariant: a constant rate in every
/// P-, C- and T-state (CPUID 8000_0007h EDX bit 8; Linux's constant_tsc
/// and nonstop_tsc).
pub fn tsc_invariant() -> bool {
    let max = std::arch::x86_64::__cpuid(0x8000_0000).eax;
    max >= 0x8000_0007 && std::arch::x86_64::__cpuid(0x8000_0007).edx & (1 << 8) != 0
}

/// Host clock `id` in nanoseconds since its epoch (0 if it cannot be read).
pub fn clock_ns(id: libc::clockid_t) -> u64 {
    clock_gettime(ClockId::from_raw(id))
        .map(|ts| ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64)
        .unwrap_or(0)
}
