//! The roles' own set-up after the re-exec: giving up the host file system
//! (pivot_root into a tree of the gofer's exports or an empty tmpfs),
//! capabilities and privileges, then installing the seccomp filter last.
//!
//! The gofer's root is a read-only tmpfs holding one directory per export,
//! each a bind mount: `image` (the image rootfs, read-only) and `bind0`,
//! `bind1`, ... (the container's bind mounts, read-only when asked). Nothing
//! else of the host is reachable from it.
//!
//! Capabilities: the sandbox keeps none. The gofer keeps CAP_DAC_OVERRIDE
//! and CAP_DAC_READ_SEARCH in its effective and permitted sets, nothing
//! else, and an empty bounding set: image files keep their owners and modes
//! (a 0600 file of uid 1000), the gofer must read them all, and the sentry
//! does the permission checks against the guest's credentials. The image
//! is a read-only mount, so DAC_OVERRIDE cannot write through it, and the
//! classic abuse of CAP_DAC_READ_SEARCH (`open_by_handle_at`) is not in the
//! gofer's seccomp allowlist. A gofer with a writable bind mount also keeps
//! CAP_CHOWN and CAP_FOWNER, to give new files the guest's owner and to
//! change modes and times of files it does not own; it never makes a
//! set-user-ID file (see `gofer/write.rs`).
#![forbid(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use crate::seccomp::SeccompError;
use crate::sys::{caps, mount, process};

/// An existing directory of every Linux host that the sandbox covers with
/// its empty tmpfs root, in its private mount namespace only.
const EMPTY_ROOT_AT: &str = "/proc";

/// A role's set-up failure; the message goes through the error pipe.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("bad arguments: {0}")]
    Args(String),
    #[error("fd {fd} ({what}) handed over by the launcher")]
    AdoptFd {
        fd: i32,
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("read the spec")]
    ReadSpec(#[source] io::Error),
    #[error("parse the spec")]
    ParseSpec(#[source] serde_json::Error),
    #[error("prepare the ptrace platform: {0}")]
    Platform(String),
    #[error("open /dev/kvm")]
    OpenKvm(#[source] io::Error),
    #[error("make mounts private")]
    MakePrivate(#[source] io::Error),
    #[error("bind-mount {} on {}", .path.display(), .at.display())]
    Bind {
        path: PathBuf,
        at: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("create the mount point {}", .path.display())]
    MountPoint {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("mount tmpfs on {}", .path.display())]
    MountTmpfs {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("pivot_root into {}", .path.display())]
    PivotRoot {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("remount / read-only")]
    RemountReadonly(#[source] io::Error),
    #[error("open the export root {}", .path.display())]
    OpenRoot {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("drop capabilities")]
    DropCaps(#[source] io::Error),
    #[error("set no_new_privs")]
    NoNewPrivs(#[source] io::Error),
    #[error("signal handlers")]
    Signals(#[source] io::Error),
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
}

/// One directory a gofer serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Export {
    /// The directory's name in the gofer's root (`image`, `bind0`, ...).
    pub name: String,
    /// The host directory.
    pub source: PathBuf,
    pub readonly: bool,
}

/// Gofer: makes a read-only tmpfs holding a bind mount of each export the
/// whole file system of this process, and returns an fd of each export's
/// top, in order. Needs a private mount namespace.
pub fn enter_exports(exports: &[Export]) -> Result<Vec<OwnedFd>, SetupError> {
    mount::make_all_private().map_err(SetupError::MakePrivate)?;
    let top = Path::new(EMPTY_ROOT_AT);
    let tmpfs = |source| SetupError::MountTmpfs {
        path: top.into(),
        source,
    };
    mount::mount_small_tmpfs("sandboxd-gofer", top, exports.len() + 4).map_err(tmpfs)?;
    for e in exports {
        let at = top.join(&e.name);
        let point = |source| SetupError::MountPoint {
            path: at.clone(),
            source,
        };
        std::fs::create_dir(&at).map_err(point)?;
        let bind = |source| SetupError::Bind {
            path: e.source.clone(),
            at: at.clone(),
            source,
        };
        mount::bind(&e.source, &at, e.readonly).map_err(bind)?;
    }
    let pivot = |source| SetupError::PivotRoot {
        path: top.into(),
        source,
    };
    mount::pivot_into(top).map_err(pivot)?;
    mount::remount_readonly(Path::new("/")).map_err(SetupError::RemountReadonly)?;
    let open = |e: &Export| {
        let path = Path::new("/").join(&e.name);
        let dir = File::open(&path).map_err(|source| SetupError::OpenRoot { path, source })?;
        Ok(OwnedFd::from(dir))
    };
    exports.iter().map(open).collect()
}

/// Sandbox: makes an empty read-only tmpfs the whole file system of this
/// process. Needs a private mount namespace; open /dev/kvm before.
pub fn enter_empty_root() -> Result<(), SetupError> {
    mount::make_all_private().map_err(SetupError::MakePrivate)?;
    let at = Path::new(EMPTY_ROOT_AT);
    let tmpfs = |source| SetupError::MountTmpfs {
        path: at.into(),
        source,
    };
    mount::mount_empty_tmpfs("sandboxd-root", at).map_err(tmpfs)?;
    let pivot = |source| SetupError::PivotRoot {
        path: at.into(),
        source,
    };
    mount::pivot_into(at).map_err(pivot)?;
    mount::remount_readonly(Path::new("/")).map_err(SetupError::RemountReadonly)
}

/// Keeps only `keep` capabilities and sets no_new_privs.
pub fn drop_privileges(keep: &[u32]) -> Result<(), SetupError> {
    caps::restrict_to(keep).map_err(SetupError::DropCaps)?;
    process::set_no_new_privs().map_err(SetupError::NoNewPrivs)
}

/// The capabilities the gofer keeps (see the module doc).
pub const GOFER_CAPS: &[u32] = &[caps::CAP_DAC_OVERRIDE, caps::CAP_DAC_READ_SEARCH];

/// The capabilities a gofer with a writable export keeps.
pub const GOFER_WRITE_CAPS: &[u32] = &[
    caps::CAP_DAC_OVERRIDE,
    caps::CAP_DAC_READ_SEARCH,
    caps::CAP_CHOWN,
    caps::CAP_FOWNER,
];
