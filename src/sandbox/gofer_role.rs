//! The gofer role (`sandboxd-gofer`): one per container. Started by the
//! launcher in new mount/pid/ipc/uts/net namespaces; pivots into the
//! container's rootfs mounted read-only, drops to the gofer capabilities,
//! installs the gofer seccomp filter, reports ready, then serves files
//! over its socket until the sentry hangs up.
#![forbid(unsafe_code)]

use std::os::fd::OwnedFd;

use crate::seccomp;
use crate::sys::fd::adopt;

use super::args::GoferArgs;
use super::errpipe::{self, chain};
use super::setup::{self, SetupError};

/// What set-up hands the server.
struct Ready {
    root: OwnedFd,
    sock: OwnedFd,
}

pub fn main() -> i32 {
    crate::cli::logger::init_role(super::GOFER_ROLE);
    let argv: Vec<String> = std::env::args().collect();
    let args = match GoferArgs::parse(&argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("sandboxd-gofer: {}", SetupError::Args(e));
            return 125;
        }
    };
    let role = format!("gofer[{}]", args.container);
    let err = match adopt(args.err_fd) {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("{role}: error pipe fd {}: {e}", args.err_fd);
            return 125;
        }
    };
    let ready = match set_up(&args) {
        Ok(r) => r,
        Err(e) => {
            errpipe::send_error(err, &format!("{role}: {}", chain(&e)));
            return 125;
        }
    };
    if errpipe::send_ready(err).is_err() {
        return 125;
    }
    let root = crate::gofer::Root {
        name: crate::gofer::IMAGE_ROOT.into(),
        fd: ready.root,
        readonly: true,
    };
    match crate::gofer::serve(vec![root], ready.sock) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("sandboxd: {role}: {}", chain(&e));
            125
        }
    }
}

fn set_up(args: &GoferArgs) -> Result<Ready, SetupError> {
    let sock = adopt(args.sock_fd).map_err(|source| SetupError::AdoptFd {
        fd: args.sock_fd,
        what: "gofer socket",
        source,
    })?;
    let policy = seccomp::compile(seccomp::gofer::policy(true), seccomp::default_action())?;
    let root = setup::enter_export(&args.root)?;
    setup::drop_privileges(setup::GOFER_CAPS)?;
    seccomp::install(&policy)?;
    Ok(Ready { root, sock })
}
