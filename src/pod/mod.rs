//! The pod file: a declarative JSON description of the containers to run.
//!
//! [`load`] reads a pod file, merges the files it imports (`imports.rs`)
//! and returns the fully evaluated [`Pod`]: every default applied, every
//! path absolute, every container's `image` a key of `images`. The fields
//! and their defaults are listed in one table, in the README ("The pod
//! file: every field and its default"); `sandboxd check` prints the
//! evaluated pod.
//!
//! Paths are relative to the pod file's directory. An object may not
//! have the same key twice. A container whose `image`
//! is a bundle path gets an `images` entry keyed by that path string. Unknown
//! fields are errors everywhere, and every error names its JSON path in one
//! line: `pod.json: containers.app.command: expected an array of strings,
//! got a number`. The schema itself lives in `schema.rs`, one field table
//! per object.
#![forbid(unsafe_code)]

mod error;
mod imports;
mod json;
mod mounts;
mod schema;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use error::PodError;
pub use mounts::{parse_size, DEFAULT_TMPFS_SIZE};
pub use schema::{parse_user, valid_name, PLATFORMS};

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
    pub resources: Resources,
    /// Directories shared by containers that mount them by name.
    pub volumes: BTreeMap<String, Volume>,
    /// "container" (default): each container has its own PID namespace;
    /// "pod": the containers share one and see each other's processes.
    pub pid: String,
}

/// Guest memory of a pod that does not set `resources.memory`.
pub const DEFAULT_MEMORY: u64 = 512 << 20;

/// What the pod's sandbox may use (`resources`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Resources {
    /// Guest memory in bytes (default [`DEFAULT_MEMORY`], set once the
    /// pod is evaluated): a process that needs more is killed as by the
    /// OOM killer.
    pub memory: Option<u64>,
    /// The CPUs the guest sees (default, null: the host's).
    pub cpus: Option<u32>,
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
    /// Run the embedded mini-init as PID 1 (default true); false runs the
    /// command itself as PID 1.
    pub init: bool,
    /// File systems mounted over the image, in this order (default none).
    pub mounts: Vec<Mount>,
    /// Containers whose first process must exist before this one starts
    /// (default none).
    pub after: Vec<String>,
    /// A helper whose exit does not end the pod; stopped (SIGTERM, then
    /// SIGKILL) once the main containers are done (default false).
    pub background: bool,
    /// The launcher's stdin goes to this container (default: true in a
    /// pod of one container, else false; at most one may ask). The others
    /// read end of file.
    pub stdin: bool,
    /// The command runs on a pseudo-terminal of the sentry (default false).
    pub tty: bool,
}

/// One mount of a container.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Mount {
    /// A host directory, served by the container's gofer.
    Bind {
        /// Canonical absolute path of the host directory.
        source: PathBuf,
        /// Absolute, normalised path in the container.
        target: String,
        /// Refuse every change under the mount (default false).
        readonly: bool,
    },
    /// A memory file system.
    Tmpfs {
        target: String,
        /// At most this many bytes (default 64MiB).
        size: u64,
    },
    /// One of the pod's `volumes`, shared with the other containers that
    /// mount it.
    Volume {
        name: String,
        target: String,
        readonly: bool,
    },
}

/// A pod-level volume: a directory several containers mount.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Volume {
    /// Memory of the sentry (a tmpfs), empty at start, gone with the pod,
    /// holding at most `size` bytes (default 64MiB) of the pod's memory.
    Tmpfs { size: u64 },
    /// A host directory (canonical absolute path).
    Bind { source: PathBuf },
}

impl Mount {
    /// Where the mount appears in the container.
    pub fn target(&self) -> &str {
        match self {
            Mount::Bind { target, .. }
            | Mount::Tmpfs { target, .. }
            | Mount::Volume { target, .. } => target,
        }
    }
}

/// Numeric credentials of a container's processes.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
}

/// Reads, composes (`imports`), checks and evaluates the pod file at
/// `path` (which gives the default name and the directory that relative
/// paths start from). A schema error names the file that wrote the
/// offending value.
pub fn load(path: &Path) -> Result<Pod, PodError> {
    let (value, origins) = imports::compose(path)?;
    let absolute = std::path::absolute(path).map_err(|source| PodError::Read {
        file: path.to_owned(),
        source,
    })?;
    let parent = absolute.parent().unwrap_or(Path::new("/"));
    // Canonical when it exists, so that `..` and symlinks are resolved once.
    let dir = std::fs::canonicalize(parent).unwrap_or_else(|_| parent.to_owned());
    let ctx = schema::Ctx { dir };
    schema::evaluate(&value, &ctx, default_name(path)).map_err(|e| PodError::Validate {
        file: origins.file_of(&e.at).unwrap_or(path).to_owned(),
        at: e.at.to_string(),
        msg: e.msg,
    })
}

/// The pod file's name without `.pod.json` or `.json` (or any other
/// extension).
fn default_name(path: &Path) -> String {
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = match file.strip_suffix(".pod.json") {
        Some(stem) => stem.to_owned(),
        None => Path::new(&file)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    if stem.is_empty() {
        "pod".to_owned()
    } else {
        stem
    }
}

/// A fresh directory under the system temp dir, removed on drop.
#[cfg(test)]
pub(crate) struct TestDir(pub PathBuf);

#[cfg(test)]
impl TestDir {
    pub(crate) fn new() -> TestDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("sandboxd-pod-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TestDir(dir)
    }

    /// Writes `content` into `name` inside the directory; returns its path.
    pub(crate) fn file(&self, name: &str, content: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, content).unwrap();
        path
    }
}

#[cfg(test)]
impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str =
        r#"{"containers": {"app": {"image": "root.tar", "command": ["/bin/true"]}}}"#;

    #[test]
    fn load_missing_file_is_read_error() {
        let dir = TestDir::new();
        let err = load(&dir.0.join("nope.json")).unwrap_err();
        let PodError::Read { source, .. } = &err else {
            panic!("unexpected {err}");
        };
        assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        assert!(err.to_string().ends_with("nope.json: cannot read"));
    }

    #[test]
    fn load_syntax_error_names_line_and_column() {
        let dir = TestDir::new();
        let path = dir.file(
            "pod.json",
            "{\n  \"name\": \"x\"\n  \"platform\": \"kvm\"\n}",
        );
        let err = load(&path).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.ends_with("pod.json: line 3 column 3: expected ',' or '}'"),
            "{msg}"
        );
    }

    #[test]
    fn load_minimal_pod_applies_defaults() {
        let dir = TestDir::new();
        dir.file("root.tar", "");
        let pod = load(&dir.file("demo.pod.json", MINIMAL)).unwrap();
        assert_eq!(pod.name, "demo");
        assert_eq!(pod.platform, "auto");
        assert_eq!(pod.dir, dir.0);
        let app = &pod.containers["app"];
        assert_eq!(app.workdir, "/");
        assert_eq!(app.user, User { uid: 0, gid: 0 });
        assert!(app.env.is_empty());
    }

    #[test]
    fn load_bundle_path_image_is_synthesized_absolute() {
        let dir = TestDir::new();
        dir.file("root.tar", "");
        let pod = load(&dir.file("demo.json", MINIMAL)).unwrap();
        let image = &pod.images[&pod.containers["app"].image];
        assert_eq!(pod.containers["app"].image, "root.tar");
        assert_eq!(image.path, dir.0.join("root.tar"));
        assert!(image.path.is_absolute());
        assert_eq!(image.sha256, None);
    }

    #[test]
    fn load_relative_pod_path_gives_absolute_dir() {
        let dir = TestDir::new();
        dir.file("root.tar", "");
        let path = dir.file("p.json", MINIMAL);
        let cwd = std::env::current_dir().unwrap();
        let rel: PathBuf = std::iter::repeat_n("..", cwd.components().count())
            .collect::<PathBuf>()
            .join(path.strip_prefix("/").unwrap());
        let pod = load(&rel).unwrap();
        assert_eq!(pod.images["root.tar"].path, dir.0.join("root.tar"));
        assert_eq!(pod.dir, dir.0);
    }

    #[test]
    fn load_duplicate_container_is_refused() {
        let dir = TestDir::new();
        let text = r#"{"containers": {"a": {}, "a": {}}}"#;
        let err = load(&dir.file("pod.json", text)).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.ends_with("pod.json: line 1 column 28: duplicate key \"a\""),
            "{msg}"
        );
    }

    #[test]
    fn default_name_strips_json_suffixes() {
        assert_eq!(default_name(Path::new("/a/demo.pod.json")), "demo");
        assert_eq!(default_name(Path::new("demo.json")), "demo");
        assert_eq!(default_name(Path::new("demo")), "demo");
        assert_eq!(default_name(Path::new(".pod.json")), "pod");
    }

    #[test]
    fn pod_serializes_without_dir() {
        let dir = TestDir::new();
        dir.file("root.tar", "");
        let pod = load(&dir.file("demo.json", MINIMAL)).unwrap();
        let v = serde_json::to_value(&pod).unwrap();
        assert!(v.get("dir").is_none());
        assert_eq!(v["containers"]["app"]["user"]["uid"], 0);
    }
}
