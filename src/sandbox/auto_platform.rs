//! Resolving `platform: auto` in the launcher, once per boot: the
//! measurement (a guest syscall on each usable platform, see
//! `sentry::platform::select`) costs tens of milliseconds, too much for
//! every cold start, and its answer only changes with the host. It is kept
//! in the runtime directory, keyed by the kernel's boot id.

use std::path::PathBuf;

use crate::sentry::platform::select;

/// Where the choice is kept: /run/sandboxd as root, else
/// $XDG_RUNTIME_DIR/sandboxd.
fn cache_file() -> Option<PathBuf> {
    let dir = if nix::unistd::geteuid().is_root() {
        PathBuf::from("/run/sandboxd")
    } else {
        PathBuf::from(std::env::var_os("XDG_RUNTIME_DIR")?).join("sandboxd")
    };
    Some(dir.join("auto-platform"))
}

fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
}

/// The platform `auto` stands for on this host: from the cache when it was
/// measured since boot, else measured now (and cached). None when no
/// platform is usable (the sandbox then reports why).
pub fn resolve() -> Option<String> {
    let boot = boot_id();
    let file = cache_file();
    if let (Some(boot), Some(file)) = (&boot, &file) {
        if let Ok(text) = std::fs::read_to_string(file) {
            let mut parts = text.split_whitespace();
            if parts.next() == Some(boot.as_str()) {
                let kvm_ok = || {
                    std::fs::OpenOptions::new()
                        .read(true)
                        .write(true)
                        .open("/dev/kvm")
                        .is_ok()
                };
                // A cached "kvm" holds only while /dev/kvm still opens (a
                // container may hide it).
                if let Some(p @ ("kvm" | "ptrace")) =
                    parts.next().filter(|p| *p != "kvm" || kvm_ok())
                {
                    log::debug!(
                        "platform auto: {p} (measured earlier this boot, {})",
                        file.display()
                    );
                    return Some(p.to_string());
                }
            }
        }
    }
    let kvm = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .ok()
        .map(std::os::fd::OwnedFd::from);
    let probes = select::probe(kvm.as_ref());
    let (pick, why) = select::choose(&probes)?;
    log::info!("platform auto: picked {pick}: {why}");
    if let (Some(boot), Some(file)) = (boot, file) {
        let tmp = file.with_extension("tmp");
        let written = std::fs::create_dir_all(file.parent().unwrap())
            .and_then(|_| std::fs::write(&tmp, format!("{boot} {pick}\n")))
            .and_then(|_| std::fs::rename(&tmp, &file));
        if let Err(e) = written {
            log::debug!(
                "cannot cache the platform choice in {}: {e}",
                file.display()
            );
        }
    }
    Some(pick.to_string())
}
