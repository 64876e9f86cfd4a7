//! The sandbox role (`sandboxd-sandbox`): one per pod. Started by the
//! launcher in new mount/pid/ipc/uts/net namespaces; reads the spec, opens
//! /dev/kvm, pivots into an empty read-only tmpfs, drops every capability,
//! installs the sentry seccomp filter, reports ready, then becomes the
//! sentry and exits with the pod's status.
#![forbid(unsafe_code)]

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};

use crate::seccomp;
use crate::sentry::{self, SentrySpec};
use crate::sys::fd::adopt;
use crate::sys::signal;

use super::args::SandboxArgs;
use super::errpipe::{self, chain};
use super::setup::{self, SetupError};

const ROLE: &str = "sandbox";

/// What set-up hands the sentry.
struct Ready {
    spec: SentrySpec,
    gofers: Vec<OwnedFd>,
    kvm: Option<OwnedFd>,
    control: Option<OwnedFd>,
}

pub fn main() -> i32 {
    crate::sys::process::single_malloc_arena();
    crate::cli::logger::init_role(super::SANDBOX_ROLE);
    let argv: Vec<String> = std::env::args().collect();
    let args = match SandboxArgs::parse(&argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("sandboxd-sandbox: {}", SetupError::Args(e));
            return 125;
        }
    };
    let err = match adopt(args.err_fd) {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("{ROLE}: error pipe fd {}: {e}", args.err_fd);
            return 125;
        }
    };
    let ready = match set_up(&args) {
        Ok(r) => r,
        Err(e) => {
            errpipe::send_error(err, &format!("{ROLE}: {}", chain(&e)));
            return 125;
        }
    };
    if errpipe::send_ready(err).is_err() {
        return 125;
    }
    match sentry::run(ready.spec, ready.gofers, ready.kvm, ready.control) {
        Ok(status) => status,
        Err(e) => {
            eprintln!("sandboxd: sentry: {}", chain(&e));
            125
        }
    }
}

fn set_up(args: &SandboxArgs) -> Result<Ready, SetupError> {
    let adopt_as = |fd, what| adopt(fd).map_err(|source| SetupError::AdoptFd { fd, what, source });
    let spec = read_spec(adopt_as(args.spec_fd, "spec")?)?;
    let gofers = args
        .gofer_fds
        .iter()
        .map(|&fd| adopt_as(fd, "gofer socket"))
        .collect::<Result<Vec<_>, _>>()?;
    let control = args
        .control_fd
        .map(|fd| adopt_as(fd, "control socket"))
        .transpose()?;
    let kvm = open_kvm(&spec.platform)?;
    let mut rules = seccomp::sentry::policy();
    if let Some(fd) = &control {
        seccomp::sentry::control_socket(&mut rules, fd.as_raw_fd());
    }
    if spec.platform != "kvm" {
        seccomp::sentry::ptrace_platform(&mut rules);
        crate::sentry::platform::ptrace::prepare()
            .map_err(|e| SetupError::Platform(e.to_string()))?;
    }
    let policy = seccomp::compile(rules, seccomp::default_action())?;
    // pid 1 of a pid namespace ignores signals it has no handler for; the
    // sentry may replace these handlers to forward signals to the guest.
    let forwarded = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];
    signal::exit_on(&forwarded).map_err(SetupError::Signals)?;
    setup::enter_empty_root()?;
    setup::drop_privileges(&[])?;
    seccomp::install(&policy)?;
    Ok(Ready {
        spec,
        gofers,
        kvm,
        control,
    })
}

fn read_spec(fd: OwnedFd) -> Result<SentrySpec, SetupError> {
    let mut text = Vec::new();
    std::fs::File::from(fd)
        .read_to_end(&mut text)
        .map_err(SetupError::ReadSpec)?;
    serde_json::from_slice(&text).map_err(SetupError::ParseSpec)
}

/// /dev/kvm for platform "kvm" (required) or "auto" (if it opens).
fn open_kvm(platform: &str) -> Result<Option<OwnedFd>, SetupError> {
    let open = || {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .map(OwnedFd::from)
    };
    match platform {
        "kvm" => open().map(Some).map_err(SetupError::OpenKvm),
        "auto" => Ok(open().ok()),
        _ => Ok(None),
    }
}
