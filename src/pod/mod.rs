//! The pod file: a declarative JSON description of the containers to run.
//! (Skeleton: the types are fixed; loading and validation are to be written.)

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

/// A fully evaluated pod: every default applied, every path absolute, every
/// container's `image` a key of `images`.
#[derive(Clone, Debug, Serialize)]
pub struct Pod {
    /// Defaults to the pod file's name without `.json` / `.pod.json`.
    pub name: String,
    /// The directory of the pod file (paths in the file are relative to it).
    #[serde(skip)]
    pub dir: PathBuf,
    pub images: BTreeMap<String, Image>,
    pub containers: BTreeMap<String, Container>,
    /// "auto" (default), "kvm" or "ptrace".
    pub platform: String,
}

/// An image bundle on the host.
#[derive(Clone, Debug, Serialize)]
pub struct Image {
    /// Absolute path of the bundle (a rootfs .tar, .tar.gz or .tgz).
    pub path: PathBuf,
    /// Pinned sha256 of the bundle file (lowercase hex), if any.
    pub sha256: Option<String>,
}

/// One container of the pod.
#[derive(Clone, Debug, Serialize)]
pub struct Container {
    /// Key of `Pod::images`.
    pub image: String,
    pub command: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// Default "/".
    pub workdir: String,
    /// Default 0:0.
    pub user: User,
}

/// Numeric credentials of a container's processes.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
}
