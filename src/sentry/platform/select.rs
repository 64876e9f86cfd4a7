//! Choosing a platform: `auto` measures what a guest syscall costs on each
//! platform usable on this host, right now, and picks the cheaper one.
//! KVM wins on hosts with hardware virtualization (an exit costs a few µs);
//! under nested or shadow-paging hypervisors (e.g. PVM, where a ring-3
//! syscall round trip costs ~300 µs) the ptrace stub platform wins.

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{kvm, ptrace, Event, Platform, PlatformError, Prot, Regs};
use crate::sentry::mm::memory::{GuestMemory, PAGE_SIZE};

/// Guest syscalls timed per platform.
const ROUNDS: u32 = 128;
/// Guest memory for a calibration run.
const PROBE_MEMORY: u64 = 16 << 20;
/// `syscall; jmp -4`: a guest that does nothing but syscalls.
const SYSCALL_LOOP: [u8; 4] = [0x0f, 0x05, 0xeb, 0xfc];

/// One platform as seen on this host.
pub struct Probe {
    pub name: &'static str,
    /// Cost of one guest syscall round trip, or why the platform is not usable.
    pub cost: Result<Duration, String>,
}

/// Times `ROUNDS` guest syscall round trips on `platform`.
pub fn syscall_cost(
    platform: &dyn Platform,
    memory: &GuestMemory,
) -> Result<Duration, PlatformError> {
    let space = platform.new_address_space()?;
    let mut ctx = platform.new_context()?;
    let code = memory
        .alloc_frame()
        .map_err(|_| PlatformError::OutOfMemory)?;
    memory.write(code, &SYSCALL_LOOP);
    space.map(
        0x10000,
        PAGE_SIZE,
        code,
        Prot {
            read: true,
            write: false,
            exec: true,
        },
    )?;
    let mut regs = Regs {
        rip: 0x10000,
        rflags: 0x202,
        ..Default::default()
    };
    // The first switch pays for warming up; time the rest one by one and
    // take the median: a mean is swayed by the odd preempted round trip.
    expect_syscall(ctx.switch(space.as_ref(), &mut regs)?)?;
    let mut samples = Vec::with_capacity(ROUNDS as usize);
    for _ in 0..ROUNDS {
        regs.rax = 0;
        let start = Instant::now();
        expect_syscall(ctx.switch(space.as_ref(), &mut regs)?)?;
        samples.push(start.elapsed());
    }
    samples.sort_unstable();
    let cost = samples[samples.len() / 2];
    drop(space);
    memory.decref(code);
    Ok(cost)
}

fn expect_syscall(e: Event) -> Result<(), PlatformError> {
    match e {
        Event::Syscall => Ok(()),
        other => Err(PlatformError::UnexpectedExit(format!(
            "calibration guest stopped with {other:?}"
        ))),
    }
}

/// Probes KVM (through `kvm`, an open /dev/kvm, if any) and ptrace.
pub fn probe(kvm: Option<&OwnedFd>) -> Vec<Probe> {
    let kvm_cost = match kvm {
        None => Err("/dev/kvm is not available".to_string()),
        Some(fd) => measure(|mem| {
            Ok(Arc::new(kvm::KvmPlatform::new(
                mem,
                fd.try_clone()
                    .map_err(|e| PlatformError::host("dup of /dev/kvm", e))?,
            )?))
        }),
    };
    let ptrace_cost = measure(|mem| Ok(Arc::new(ptrace::PtracePlatform::new(mem)?)));
    vec![
        Probe {
            name: "kvm",
            cost: kvm_cost,
        },
        Probe {
            name: "ptrace",
            cost: ptrace_cost,
        },
    ]
}

fn measure(
    make: impl FnOnce(Arc<GuestMemory>) -> Result<Arc<dyn Platform>, PlatformError>,
) -> Result<Duration, String> {
    let memory = Arc::new(GuestMemory::new(PROBE_MEMORY, PROBE_MEMORY).map_err(|e| e.to_string())?);
    let platform = make(memory.clone()).map_err(|e| error_chain(&e))?;
    syscall_cost(platform.as_ref(), &memory).map_err(|e| error_chain(&e))
}

/// The error and its sources on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// The platform `auto` picks from `probes`, and why.
pub fn choose(probes: &[Probe]) -> Option<(&'static str, String)> {
    let usable: Vec<(&'static str, Duration)> = probes
        .iter()
        .filter_map(|p| p.cost.as_ref().ok().map(|c| (p.name, *c)))
        .collect();
    let best = usable.iter().min_by_key(|(_, c)| *c)?;
    let reason = match usable.iter().find(|(n, _)| *n != best.0) {
        Some((other, c)) => format!(
            "a guest syscall costs {:?} on {} against {:?} on {other}",
            best.1, best.0, c
        ),
        None => format!("the only usable platform ({:?} per guest syscall)", best.1),
    };
    Some((best.0, reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choose_prefers_cheaper_usable_platform() {
        let probes = vec![
            Probe {
                name: "kvm",
                cost: Ok(Duration::from_micros(300)),
            },
            Probe {
                name: "ptrace",
                cost: Ok(Duration::from_micros(6)),
            },
        ];
        assert_eq!(choose(&probes).unwrap().0, "ptrace");
        let probes = vec![
            Probe {
                name: "kvm",
                cost: Ok(Duration::from_micros(2)),
            },
            Probe {
                name: "ptrace",
                cost: Ok(Duration::from_micros(6)),
            },
        ];
        assert_eq!(choose(&probes).unwrap().0, "kvm");
    }

    #[test]
    fn choose_skips_unusable_and_fails_when_none() {
        let probes = vec![
            Probe {
                name: "kvm",
                cost: Err("/dev/kvm: permission denied".into()),
            },
            Probe {
                name: "ptrace",
                cost: Ok(Duration::from_micros(6)),
            },
        ];
        assert_eq!(choose(&probes).unwrap().0, "ptrace");
        let none = vec![Probe {
            name: "kvm",
            cost: Err("x".into()),
        }];
        assert!(choose(&none).is_none());
    }

    #[test]
    fn syscall_cost_on_ptrace_is_measured() {
        let memory = Arc::new(GuestMemory::new(PROBE_MEMORY, PROBE_MEMORY).unwrap());
        let p = ptrace::PtracePlatform::new(memory.clone()).unwrap();
        let cost = syscall_cost(&p, &memory).unwrap();
        assert!(
            cost > Duration::ZERO && cost < Duration::from_millis(50),
            "{cost:?}"
        );
    }
}

/// The report of `sandboxd platforms`: each platform, its measured cost or
/// why it is unusable, and what `auto` picks.
pub fn report(kvm: Option<&OwnedFd>) -> String {
    let probes = probe(kvm);
    let mut out = String::new();
    for p in &probes {
        match &p.cost {
            Ok(c) => out.push_str(&format!(
                "{:<8} available   {:>9.1} µs per guest syscall\n",
                p.name,
                c.as_secs_f64() * 1e6
            )),
            Err(why) => out.push_str(&format!("{:<8} unavailable: {why}\n", p.name)),
        }
    }
    match choose(&probes) {
        Some((name, why)) => out.push_str(&format!("auto     -> {name}: {why}\n")),
        None => out.push_str("auto     -> none: no platform is usable on this host\n"),
    }
    out
}

#[cfg(test)]
mod report_tests {
    /// The cost (µs) a report line gives `name`, or None when it says
    /// why the platform is unusable; panics on anything else.
    fn verdict(name: &str, line: &str) -> Option<f64> {
        let rest = line
            .strip_prefix(name)
            .unwrap_or_else(|| panic!("not a {name} line: {line:?}"))
            .trim_start();
        if let Some(why) = rest.strip_prefix("unavailable: ") {
            assert!(!why.trim().is_empty(), "no reason: {line:?}");
            return None;
        }
        let cost: f64 = rest
            .strip_prefix("available")
            .and_then(|r| r.strip_suffix(" µs per guest syscall"))
            .unwrap_or_else(|| panic!("no verdict: {line:?}"))
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("no cost: {line:?}"));
        assert!(cost > 0.0 && cost < 50_000.0, "{line:?}");
        Some(cost)
    }

    #[test]
    fn report_on_this_host_gives_each_platform_a_verdict_and_auto_the_cheaper() {
        let kvm = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .ok()
            .map(std::os::fd::OwnedFd::from);
        let r = super::report(kvm.as_ref());
        let lines: Vec<&str> = r.lines().collect();
        assert_eq!(lines.len(), 3, "{r}");
        let kvm_cost = verdict("kvm", lines[0]);
        if kvm.is_none() {
            assert_eq!(lines[0], "kvm      unavailable: /dev/kvm is not available");
        }
        // ptrace works wherever the sentry can run (its own unit tests
        // and the end-to-end tests use it).
        let ptrace_cost = verdict("ptrace", lines[1]).expect("ptrace is usable here");
        let picked = lines[2]
            .strip_prefix("auto     -> ")
            .and_then(|l| l.split(':').next())
            .unwrap_or_else(|| panic!("no pick: {r}"));
        let want: &[&str] = match kvm_cost {
            // Costs printed alike (0.1 µs) may be either way round.
            Some(k) if (k - ptrace_cost).abs() < 0.15 => &["kvm", "ptrace"],
            Some(k) if k < ptrace_cost => &["kvm"],
            _ => &["ptrace"],
        };
        assert!(want.contains(&picked), "{r}");
    }

    #[test]
    fn report_without_dev_kvm_says_why_and_picks_ptrace() {
        let r = super::report(None);
        let lines: Vec<&str> = r.lines().collect();
        assert_eq!(lines.len(), 3, "{r}");
        assert_eq!(verdict("kvm", lines[0]), None);
        assert_eq!(lines[0], "kvm      unavailable: /dev/kvm is not available");
        assert!(verdict("ptrace", lines[1]).is_some(), "{r}");
        assert!(
            lines[2].starts_with("auto     -> ptrace: the only usable platform ("),
            "{r}"
        );
    }
}
