//! The sentry: the user-space kernel. It owns guest memory, the platform
//! (KVM), and implements every guest system call itself.

pub mod control;
pub mod kernel;
pub mod loader;
pub mod mm;
pub mod platform;
pub mod syscalls;
pub mod vdso;
pub mod vfs;

use serde::{Deserialize, Serialize};

/// What the sandbox process hands the sentry to run one container: the
/// evaluated container spec, sent as JSON over the spec fd.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ContainerSpec {
    pub name: String,
    /// argv of the command; argv[0] is resolved against PATH in `env`.
    pub command: Vec<String>,
    /// "K=V" pairs.
    pub env: Vec<String>,
    pub workdir: String,
    pub uid: u32,
    pub gid: u32,
    /// Start the command under the embedded mini-init (PID 1).
    #[serde(default)]
    pub init: bool,
    /// File systems mounted over the image, in order (a later target may
    /// lie inside an earlier one).
    #[serde(default)]
    pub mounts: Vec<MountSpec>,
    /// Containers whose first process must exist before this one starts.
    #[serde(default)]
    pub after: Vec<String>,
    /// A background helper: its end does not end the pod; it is stopped
    /// once the other containers are done.
    #[serde(default)]
    pub background: bool,
    /// Reads the sentry's stdin (else an empty one).
    #[serde(default)]
    pub stdin: bool,
    /// Runs on a pty of the sentry whose master is copied to and from the
    /// container's stdio.
    #[serde(default)]
    pub tty: bool,
}

/// One mount of a container, as the sentry sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    /// Absolute path inside the container.
    pub target: String,
    pub kind: MountKind,
}

/// What is mounted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountKind {
    /// A memory file system holding at most `size` bytes.
    Tmpfs { size: u64 },
    /// A host directory, served by the container's gofer under the attach
    /// name `aname`; the gofer itself refuses writes when `readonly`.
    Bind { aname: String, readonly: bool },
    /// The pod's memory volume `name` (of `SentrySpec::volumes`), shared
    /// with the other containers that mount it; read-only in this one
    /// when `readonly`.
    Volume { name: String, readonly: bool },
}

/// A memory volume of the pod: one sentry tmpfs the containers share.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeSpec {
    pub name: String,
    /// Its files hold at most this many bytes (of the guest's memory).
    pub size: u64,
}

/// Everything the sentry needs, sent by the launcher as JSON on the spec fd.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SentrySpec {
    pub containers: Vec<ContainerSpec>,
    /// "kvm" (more later).
    pub platform: String,
    /// Print every guest syscall to stderr.
    pub strace: bool,
    /// Guest memory limit in bytes.
    pub memory: u64,
    /// CPUs the guest sees (0: the host's).
    #[serde(default)]
    pub cpus: u32,
    /// The pod's memory volumes.
    #[serde(default)]
    pub volumes: Vec<VolumeSpec>,
    pub hostname: String,
    /// The containers share one PID namespace (the pod's `"pid": "pod"`).
    #[serde(default)]
    pub shared_pid: bool,
}

pub(crate) mod boot;

pub use boot::{run, SentryError};
