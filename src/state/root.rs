//! The state root: where it is, creating it, and finding pods in it.

use std::fs::DirBuilder;
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::dir::PodDir;
use super::{Meta, StateError};

/// Overrides the state root (tests, or several independent setups).
pub const ROOT_VAR: &str = "SANDBOXD_STATE_ROOT";

/// The directory that holds one directory per pod.
#[derive(Clone, Debug)]
pub struct Root {
    path: PathBuf,
}

impl Root {
    /// `$SANDBOXD_STATE_ROOT`, else /run/sandboxd as root, else
    /// `$XDG_RUNTIME_DIR/sandboxd`.
    pub fn default_path() -> Result<PathBuf, StateError> {
        if let Some(p) = std::env::var_os(ROOT_VAR).filter(|p| !p.is_empty()) {
            return Ok(std::path::absolute(PathBuf::from(p)).unwrap_or_default());
        }
        if nix::unistd::geteuid().is_root() {
            return Ok(PathBuf::from("/run/sandboxd"));
        }
        match std::env::var_os("XDG_RUNTIME_DIR").filter(|p| !p.is_empty()) {
            Some(dir) => Ok(PathBuf::from(dir).join("sandboxd")),
            None => Err(StateError::NoRoot),
        }
    }

    /// Opens `path` (default: [`Root::default_path`]), creating it 0700.
    pub fn open(path: Option<PathBuf>) -> Result<Root, StateError> {
        let path = match path {
            Some(p) => p,
            None => Root::default_path()?,
        };
        let fail = |source| StateError::CreateRoot {
            path: path.clone(),
            source,
        };
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&path)
            .map_err(fail)?;
        Ok(Root { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes the directory of a new pod with a fresh id and writes its
    /// first meta.json (`make` fills it in from the id and the directory).
    pub fn create(&self, make: impl FnOnce(&PodDir) -> Meta) -> Result<PodDir, StateError> {
        for _ in 0..16 {
            let id = random_id().map_err(StateError::io("read", "/dev/urandom"))?;
            let dir = PodDir::new(&self.path, &id);
            let made = DirBuilder::new().mode(0o700).create(dir.path());
            match made {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(StateError::io("create", dir.path())(e)),
            }
            let _ = std::fs::set_permissions(dir.path(), PermissionsExt::from_mode(0o700));
            if let Err(e) = dir.check_socket_path().and_then(|()| {
                let lock = dir.lock_new()?;
                lock.write(&make(&dir))
            }) {
                let _ = std::fs::remove_dir_all(dir.path());
                return Err(e);
            }
            return Ok(dir);
        }
        Err(StateError::io("create a pod directory in", &self.path)(
            io::Error::from_raw_os_error(libc::EEXIST),
        ))
    }

    /// Every pod directory (those with a meta.json), sorted by id.
    pub fn list(&self) -> Result<Vec<PodDir>, StateError> {
        let entries = match std::fs::read_dir(&self.path) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StateError::io("read", &self.path)(e)),
        };
        let mut out: Vec<PodDir> = entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|name| is_id(name))
            .map(|id| PodDir::new(&self.path, &id))
            .filter(|d| d.meta_path().exists())
            .collect();
        out.sort_by(|a, b| a.id().cmp(b.id()));
        Ok(out)
    }

    /// The pod `arg` names: its id, a unique prefix of an id, or a unique
    /// pod name.
    pub fn find(&self, arg: &str) -> Result<PodDir, StateError> {
        let pods = self.list()?;
        if let Some(p) = pods.iter().find(|p| p.id() == arg) {
            return Ok(p.clone());
        }
        let by_prefix: Vec<&PodDir> = pods
            .iter()
            .filter(|p| !arg.is_empty() && p.id().starts_with(arg))
            .collect();
        let by_name: Vec<&PodDir> = pods
            .iter()
            .filter(|p| p.read().is_ok_and(|m| m.name == arg))
            .collect();
        let hits = if by_prefix.is_empty() {
            by_name
        } else {
            by_prefix
        };
        match hits.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(StateError::NotFound(arg.into())),
            many => Err(StateError::Ambiguous {
                arg: arg.into(),
                ids: many.iter().map(|p| p.id().to_string()).collect(),
            }),
        }
    }
}

/// Length of a pod id in hex digits.
const ID_LEN: usize = 12;

fn is_id(name: &str) -> bool {
    name.len() == ID_LEN && name.bytes().all(|b| b.is_ascii_hexdigit())
}

fn random_id() -> io::Result<String> {
    let mut bytes = [0u8; ID_LEN / 2];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Status;

    fn meta(dir: &PodDir, name: &str) -> Meta {
        Meta {
            id: dir.id().into(),
            name: name.into(),
            pod_file: "/p.json".into(),
            created: 1,
            status: Status::Creating,
            detached: false,
            monitor: None,
            sandbox: None,
            gofers: vec![],
            containers: vec!["app".into()],
            control: dir.control_path().display().to_string(),
            exit_status: None,
            events: vec![],
        }
    }

    fn temp_root() -> (crate::pod::TestDir, Root) {
        let t = crate::pod::TestDir::new();
        let root = Root::open(Some(t.0.join("state"))).unwrap();
        (t, root)
    }

    #[test]
    fn create_then_find_by_id_prefix_and_name() {
        let (_t, root) = temp_root();
        let a = root.create(|d| meta(d, "web")).unwrap();
        let found = root.find(&a.id()[..4]).unwrap();
        assert_eq!(found.id(), a.id());
        assert_eq!(root.find("web").unwrap().id(), a.id());
        assert_eq!(a.read().unwrap().name, "web");
        let mode = std::fs::metadata(a.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn find_unknown_is_not_found_and_shared_name_is_ambiguous() {
        let (_t, root) = temp_root();
        root.create(|d| meta(d, "web")).unwrap();
        root.create(|d| meta(d, "web")).unwrap();
        let err = root.find("nope").unwrap_err();
        assert_eq!(err.to_string(), "pod \"nope\" does not exist");
        assert!(matches!(
            root.find("web").unwrap_err(),
            StateError::Ambiguous { .. }
        ));
    }

    #[test]
    fn list_ignores_other_files() {
        let (_t, root) = temp_root();
        std::fs::write(root.path().join("auto-platform"), "kvm").unwrap();
        root.create(|d| meta(d, "a")).unwrap();
        assert_eq!(root.list().unwrap().len(), 1);
    }
}
