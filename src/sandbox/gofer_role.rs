//! The gofer role (`sandboxd-gofer`): one per container. Started by the
//! launcher in new mount/pid/ipc/uts/net namespaces; pivots into a root
//! holding only its exports (the container's rootfs, read-only, and its
//! bind mounts), drops to the gofer capabilities, installs the gofer
//! seccomp filter, reports ready, then serves the image root as "/" and
//! each bind mount under its attach name over its socket until the sentry
//! hangs up.
#![forbid(unsafe_code)]

use std::os::fd::OwnedFd;

use crate::gofer::{Root, IMAGE_ROOT};
use crate::seccomp;
use crate::sys::fd::adopt;

use super::args::GoferArgs;
use super::errpipe::{self, chain};
use super::setup::{self, Export, SetupError};

/// What set-up hands the server.
struct Ready {
    roots: Vec<Root>,
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
    match crate::gofer::serve(ready.roots, ready.sock) {
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
    let readonly = args.binds.iter().all(|b| b.readonly);
    let policy = seccomp::compile(seccomp::gofer::policy(readonly), seccomp::default_action())?;
    let exports = exports(args);
    let fds = setup::enter_exports(&exports)?;
    // New files get exactly the mode the sentry asks for.
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    let caps = if readonly {
        setup::GOFER_CAPS
    } else {
        setup::GOFER_WRITE_CAPS
    };
    setup::drop_privileges(caps)?;
    seccomp::install(&policy)?;
    let roots = exports
        .into_iter()
        .zip(fds)
        .enumerate()
        .map(|(i, (e, fd))| Root {
            name: if i == 0 { IMAGE_ROOT.into() } else { e.name },
            fd,
            readonly: e.readonly,
        })
        .collect();
    Ok(Ready { roots, sock })
}

/// The image (always read-only) first, then the bind mounts, each in a
/// directory of the gofer's root named after its attach name.
fn exports(args: &GoferArgs) -> Vec<Export> {
    let image = Export {
        name: "image".into(),
        source: args.root.clone(),
        readonly: true,
    };
    let binds = args.binds.iter().map(|b| Export {
        name: b.aname.clone(),
        source: b.source.clone(),
        readonly: b.readonly,
    });
    std::iter::once(image).chain(binds).collect()
}
