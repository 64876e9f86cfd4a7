//! `sandboxd platforms`: what can run guests on this host, what a guest
//! syscall costs on each (measured now), and what `auto` picks.

use argh::FromArgs;

/// Show the platforms usable on this host, the cost of a guest syscall on
/// each (measured now), and which one `--platform auto` picks and why.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "platforms", help_triggers("-h", "--help", "help"))]
pub struct PlatformsCmd {}

impl PlatformsCmd {
    pub(super) fn execute(self) -> i32 {
        let kvm = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm");
        let kvm = match kvm {
            Ok(f) => Some(std::os::fd::OwnedFd::from(f)),
            Err(e) => {
                println!("kvm      unavailable: /dev/kvm: {}", super::report(&e));
                None
            }
        };
        let report = crate::sentry::platform::select::report(kvm.as_ref());
        // A missing /dev/kvm was reported above with its real cause.
        let lines = report
            .lines()
            .filter(|l| kvm.is_some() || !l.starts_with("kvm "));
        for line in lines {
            println!("{line}");
        }
        0
    }
}
