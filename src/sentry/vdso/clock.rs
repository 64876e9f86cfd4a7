//! The clock math of the vDSO, pure so it can be tested: each clock is a
//! line over the TSC, `ns = base_ns + ((tsc - base_tsc) * mult) >> SHIFT`,
//! fitted to the host's clocks.
//!
//! Calibration fits the lines to two host samples a few milliseconds
//! apart. After that, each re-anchor (about once a second) starts a new
//! line exactly where the old one is at that moment, so the clock never
//! jumps, and tilts it so that it meets the host clock one period later:
//! errors (of the calibration, or from NTP slewing the host clock) are
//! slewed away instead of piling up. Only a guest clock far behind the
//! host's (the host was suspended, say) is stepped, and only forwards.

use super::vvar::Clocks;

/// Fixed-point shift of `mult`: `mult` is nanoseconds per tick × 2^32.
pub const SHIFT: u32 = 32;

/// Behind the host by more than this, the guest clock steps forward
/// instead of slewing.
const MAX_SLEW_NS: u64 = 100_000_000;

/// A new rate further than this from the last one (parts per million)
/// means the TSC cannot be trusted as a clock.
const MAX_RATE_CHANGE_PPM: u128 = 5_000;

/// One clock as a line over the TSC.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Line {
    pub base_tsc: u64,
    pub base_ns: u64,
    pub mult: u64,
}

impl Line {
    /// The clock at TSC value `tsc` (a TSC before the base counts as the
    /// base, as in the vDSO).
    pub fn at(&self, tsc: u64) -> u64 {
        let delta = tsc.saturating_sub(self.base_tsc);
        self.base_ns + scale(delta, self.mult)
    }
}

/// `ticks` TSC ticks in nanoseconds at rate `mult`.
pub fn scale(ticks: u64, mult: u64) -> u64 {
    ((ticks as u128 * mult as u128) >> SHIFT) as u64
}

/// The rate (`mult`) of `ns` nanoseconds per `ticks` ticks.
pub fn rate(ns: u64, ticks: u64) -> u64 {
    let r = ((ns as u128) << SHIFT) / ticks.max(1) as u128;
    r.min(u64::MAX as u128) as u64
}

/// Whether `new` is close enough to `old` for the TSC to count as steady.
pub fn plausible(old: u64, new: u64) -> bool {
    let (old, new) = (old as u128, new as u128);
    old != 0 && old.abs_diff(new) * 1_000_000 <= old * MAX_RATE_CHANGE_PPM
}

/// A host clock reading and the TSC value it was taken at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Point {
    pub tsc: u64,
    pub ns: u64,
}

/// The line through `p` at `rate`.
pub fn line_through(p: Point, rate: u64) -> Line {
    Line {
        base_tsc: p.tsc,
        base_ns: p.ns,
        mult: rate,
    }
}

/// The rate between two readings of one host clock.
pub fn rate_between(a: Point, b: Point) -> u64 {
    rate(b.ns.saturating_sub(a.ns), b.tsc.saturating_sub(a.tsc))
}

/// Steers `old` back onto the host clock: the returned line starts at
/// `now` where `old` is then, and reaches the host clock (`host`, which
/// runs at `rate`) `period` ticks later. It never runs slower than half
/// the host's rate, so the clock keeps moving forward; a guest clock more
/// than `MAX_SLEW_NS` behind steps to the host clock at once.
pub fn steer(old: &Line, host: Point, rate: u64, now: u64, period: u64) -> Line {
    let start = old.at(now);
    let host_now = host.ns + scale(now.saturating_sub(host.tsc), rate);
    if host_now > start + MAX_SLEW_NS {
        return line_through(
            Point {
                tsc: now,
                ns: host_now,
            },
            rate,
        );
    }
    let period_ns = scale(period, rate);
    let target = host_now + period_ns;
    let span = target.saturating_sub(start).max(period_ns / 2);
    Line {
        base_tsc: now,
        base_ns: start,
        mult: self::rate(span, period),
    }
}

/// One reading of every host clock the vDSO serves, against the TSC.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    pub mono: Point,
    pub raw: Point,
    /// REALTIME, BOOTTIME and TAI less MONOTONIC, in ns.
    pub real_off: i64,
    pub boot_off: i64,
    pub tai_off: i64,
}

/// The sentry's side of the vvar page: the clocks it last published and
/// what it needs to steer them at the next re-anchor.
#[derive(Clone, Copy, Debug)]
pub struct Tracker {
    /// The CPU's TSC runs at a constant rate.
    invariant: bool,
    last: Sample,
    mono_rate: u64,
    raw_rate: u64,
    clocks: Clocks,
}

impl Tracker {
    /// Fits the clocks to two samples taken a few milliseconds apart.
    /// `invariant` says the CPU's TSC runs at a constant rate; without it
    /// (or when the samples disagree) the vDSO is told not to use the TSC.
    pub fn calibrate(a: Sample, b: Sample, invariant: bool, coarse_ns: u64) -> Tracker {
        let mono_rate = rate_between(a.mono, b.mono);
        let raw_rate = rate_between(a.raw, b.raw);
        let steady = b.mono.tsc > a.mono.tsc && plausible(mono_rate, raw_rate);
        Tracker {
            invariant,
            last: b,
            mono_rate,
            raw_rate,
            clocks: Clocks {
                tsc_ok: invariant && steady,
                mono: line_through(b.mono, mono_rate),
                raw: line_through(b.raw, raw_rate),
                real_off: b.real_off,
                boot_off: b.boot_off,
                tai_off: b.tai_off,
                coarse_ns,
            },
        }
    }

    /// The clocks as last computed.
    pub fn clocks(&self) -> Clocks {
        self.clocks
    }

    /// TSC ticks in `ns` nanoseconds at the host's current rate.
    pub fn ticks(&self, ns: u64) -> u64 {
        (((ns as u128) << SHIFT) / self.mono_rate.max(1) as u128).min(u64::MAX as u128) as u64
    }

    /// Re-anchors at TSC `now` on the fresh sample `s`, steering each clock
    /// to meet the host's `period` ticks later. A rate that jumped (a TSC
    /// that is not a steady clock after all, a suspended host) turns the
    /// TSC off until the rate is steady again; the lines are then refitted
    /// to the host's clocks rather than steered.
    pub fn reanchor(&mut self, s: Sample, now: u64, period: u64) -> Clocks {
        let mono_rate = rate_between(self.last.mono, s.mono);
        let raw_rate = rate_between(self.last.raw, s.raw);
        let steady = plausible(self.mono_rate, mono_rate) && plausible(self.raw_rate, raw_rate);
        let ok = self.invariant && steady;
        let c = &mut self.clocks;
        if ok && c.tsc_ok {
            c.mono = steer(&c.mono, s.mono, mono_rate, now, period);
            c.raw = steer(&c.raw, s.raw, raw_rate, now, period);
        } else {
            // Guests read the host clocks through the syscall meanwhile.
            c.mono = line_through(s.mono, mono_rate);
            c.raw = line_through(s.raw, raw_rate);
        }
        c.tsc_ok = ok;
        (c.real_off, c.boot_off, c.tai_off) = (s.real_off, s.boot_off, s.tai_off);
        self.last = s;
        (self.mono_rate, self.raw_rate) = (mono_rate, raw_rate);
        self.clocks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3 GHz TSC: 1/3 ns per tick.
    const GHZ3: u64 = (1u64 << SHIFT) / 3;

    #[test]
    fn line_at_scales_ticks_to_ns() {
        let l = Line {
            base_tsc: 1000,
            base_ns: 5,
            mult: GHZ3,
        };
        assert_eq!(l.at(1000), 5);
        // 3e9 ticks at 3 GHz is one second, less rounding of the mult.
        assert!(l.at(1000 + 3_000_000_000).abs_diff(1_000_000_005) < 2);
    }

    #[test]
    fn line_at_before_base_is_base() {
        let l = Line {
            base_tsc: 1000,
            base_ns: 77,
            mult: GHZ3,
        };
        assert_eq!(l.at(10), 77);
    }

    #[test]
    fn line_at_large_delta_does_not_overflow() {
        // A year of ticks at 3 GHz: the 128-bit product keeps it exact.
        let ticks = 3_000_000_000u64 * 86_400 * 365;
        let l = line_through(Point::default(), rate(1, 1));
        assert_eq!(l.at(ticks), ticks);
    }

    #[test]
    fn rate_between_recovers_the_frequency() {
        let a = Point { tsc: 0, ns: 0 };
        let b = Point {
            tsc: 30_000_000,
            ns: 10_000_000,
        };
        let r = rate_between(a, b);
        assert!(r.abs_diff(GHZ3) <= 1, "{r} vs {GHZ3}");
    }

    #[test]
    fn plausible_accepts_slew_rejects_jumps() {
        assert!(plausible(GHZ3, GHZ3 + GHZ3 / 10_000)); // 100 ppm
        assert!(!plausible(GHZ3, GHZ3 + GHZ3 / 100)); // 1%
        assert!(!plausible(0, GHZ3));
    }

    #[test]
    fn steer_is_continuous_at_the_anchor() {
        let old = Line {
            base_tsc: 0,
            base_ns: 1_000,
            mult: GHZ3,
        };
        let host = Point {
            tsc: 2_999_000_000,
            ns: 1_000_050_000,
        };
        let now = 3_000_000_000;
        let new = steer(&old, host, GHZ3, now, 3_000_000_000);
        assert_eq!(new.at(now), old.at(now));
        assert_eq!(new.base_tsc, now);
    }

    #[test]
    fn steer_meets_the_host_clock_one_period_later() {
        // The guest clock runs 40 µs behind the host's (slow calibration).
        let old = Line {
            base_tsc: 0,
            base_ns: 0,
            mult: GHZ3,
        };
        let now = 3_000_000_000;
        let host = Point {
            tsc: now,
            ns: old.at(now) + 40_000,
        };
        let period = 3_000_000_000;
        let new = steer(&old, host, GHZ3, now, period);
        let host_later = host.ns + scale(period, GHZ3);
        assert!(new.at(now + period).abs_diff(host_later) <= 1);
        assert!(new.mult > GHZ3);
    }

    #[test]
    fn steer_ahead_of_host_slows_but_never_goes_back() {
        // The guest clock is 300 ms ahead: it may only slow down.
        let old = Line {
            base_tsc: 0,
            base_ns: 300_000_000,
            mult: GHZ3,
        };
        let now = 3_000_000_000;
        let host = Point {
            tsc: now,
            ns: 1_000_000_000,
        };
        let new = steer(&old, host, GHZ3, now, 3_000_000_000);
        assert_eq!(new.base_ns, old.at(now));
        assert!(new.mult >= GHZ3 / 2 - 1 && new.mult < GHZ3);
        assert!(new.at(now + 1) >= new.at(now));
    }

    #[test]
    fn steer_far_behind_steps_forward() {
        let old = Line {
            base_tsc: 0,
            base_ns: 0,
            mult: GHZ3,
        };
        let now = 3_000_000_000;
        let host = Point {
            tsc: now,
            ns: 5_000_000_000,
        };
        let new = steer(&old, host, GHZ3, now, 3_000_000_000);
        assert_eq!(new.at(now), 5_000_000_000);
        assert_eq!(new.mult, GHZ3);
    }

    fn sample_at(tsc: u64, rate: u64) -> Sample {
        let p = Point {
            tsc,
            ns: scale(tsc, rate),
        };
        Sample {
            mono: p,
            raw: p,
            real_off: 1_700_000_000_000_000_000,
            boot_off: 0,
            tai_off: 1_700_000_037_000_000_000,
        }
    }

    #[test]
    fn tracker_calibrate_fits_both_samples_rate() {
        let t = Tracker::calibrate(sample_at(0, GHZ3), sample_at(30_000_000, GHZ3), true, 4);
        let c = t.clocks();
        assert!(c.tsc_ok);
        assert!(c.mono.mult.abs_diff(GHZ3) <= GHZ3 / 1_000_000);
        assert_eq!(c.mono.at(30_000_000), scale(30_000_000, GHZ3));
        assert_eq!(c.real_off, 1_700_000_000_000_000_000);
        assert!(t.ticks(1_000_000_000).abs_diff(3_000_000_000) < 1_000);
    }

    #[test]
    fn tracker_without_invariant_tsc_never_enables_it() {
        let mut t = Tracker::calibrate(sample_at(0, GHZ3), sample_at(30_000_000, GHZ3), false, 4);
        assert!(!t.clocks().tsc_ok);
        let now = 3_030_000_000;
        assert!(!t.reanchor(sample_at(now, GHZ3), now, 3_000_000_000).tsc_ok);
    }

    #[test]
    fn tracker_rate_jump_turns_tsc_off_then_back_on() {
        let mut t = Tracker::calibrate(sample_at(0, GHZ3), sample_at(30_000_000, GHZ3), true, 4);
        // The host clock advanced twice as far as the TSC says: not steady.
        let mut s = sample_at(3_030_000_000, GHZ3);
        s.mono.ns *= 2;
        s.raw.ns *= 2;
        assert!(!t.reanchor(s, s.mono.tsc, 3_000_000_000).tsc_ok);
        // Steady again, but the last rate was the jump: one more period.
        let shifted = |tsc| {
            let mut s = sample_at(tsc, GHZ3);
            s.mono.ns += 1_010_000_000;
            s.raw.ns += 1_010_000_000;
            s
        };
        let s2 = shifted(6_030_000_000);
        assert!(!t.reanchor(s2, s2.mono.tsc, 3_000_000_000).tsc_ok);
        let s3 = shifted(9_030_000_000);
        let c = t.reanchor(s3, s3.mono.tsc, 3_000_000_000);
        assert!(c.tsc_ok);
        assert_eq!(c.mono.at(s3.mono.tsc), s3.mono.ns);
    }

    #[test]
    fn tracker_reanchor_is_continuous_and_monotonic() {
        // Calibrated 50 ppm slow; the host runs at its true rate.
        let slow = GHZ3 - GHZ3 / 1_000_000 * 50;
        let mut t = Tracker::calibrate(sample_at(0, slow), sample_at(30_000_000, slow), true, 4);
        let period = t.ticks(1_000_000_000);
        let mut before = t.clocks();
        for i in 1..=4u64 {
            let now = 30_000_000 + i * period;
            let s = sample_at(now - 1000, GHZ3);
            let after = t.reanchor(s, now, period);
            assert!(after.mono.at(now) >= before.mono.at(now));
            assert_eq!(after.mono.at(now), before.mono.at(now));
            before = after;
        }
        let end = 30_000_000 + 5 * period;
        assert!(before.mono.at(end).abs_diff(scale(end, GHZ3)) < 1_000);
    }

    #[test]
    fn steer_repeatedly_tracks_a_slewed_host() {
        // The host clock runs 300 ppm fast against the TSC (NTP slewing);
        // the guest line, calibrated at the nominal rate, follows it
        // within a microsecond after a few re-anchors.
        let host_rate = GHZ3 + GHZ3 / 1_000_000 * 300;
        let host_at = |tsc: u64| scale(tsc, host_rate);
        let period = 3_000_000_000u64;
        let mut line = line_through(Point::default(), GHZ3);
        let mut last = 0;
        for i in 1..=5u64 {
            let now = i * period;
            let host = Point {
                tsc: now,
                ns: host_at(now),
            };
            line = steer(&line, host, host_rate, now, period);
            assert!(line.at(now) >= last);
            last = line.at(now);
        }
        let now = 6 * period;
        assert!(line.at(now).abs_diff(host_at(now)) < 1_000);
    }
}
