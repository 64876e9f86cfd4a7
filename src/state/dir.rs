//! One pod's directory: reading meta.json, and changing it under the
//! flock of meta.lock with an atomic replace.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::{Meta, StateError, Status};

/// Longest path a unix socket address holds (sun_path, with its NUL).
const SUN_PATH_MAX: usize = 107;

/// The directory of one pod.
#[derive(Clone, Debug)]
pub struct PodDir {
    id: String,
    path: PathBuf,
}

/// The pod's lock, held: meta.json may be read and replaced.
pub struct Locked<'a> {
    dir: &'a PodDir,
    _lock: Flock<File>,
}

impl PodDir {
    pub(super) fn new(root: &Path, id: &str) -> PodDir {
        PodDir {
            id: id.into(),
            path: root.join(id),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn meta_path(&self) -> PathBuf {
        self.path.join("meta.json")
    }

    pub fn log_path(&self) -> PathBuf {
        self.path.join("log")
    }

    pub fn control_path(&self) -> PathBuf {
        self.path.join("control.sock")
    }

    fn lock_path(&self) -> PathBuf {
        self.path.join("meta.lock")
    }

    pub(super) fn check_socket_path(&self) -> Result<(), StateError> {
        let p = self.control_path();
        if p.as_os_str().len() > SUN_PATH_MAX {
            return Err(StateError::SocketPath(p));
        }
        Ok(())
    }

    /// The current meta.json (no lock needed: it is replaced whole).
    pub fn read(&self) -> Result<Meta, StateError> {
        let path = self.meta_path();
        let text = std::fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StateError::NotFound(self.id.clone()),
            _ => StateError::io("read", &path)(e),
        })?;
        serde_json::from_slice(&text).map_err(|source| StateError::Parse { path, source })
    }

    /// Takes the pod's lock, waiting for its holder. Fails with NotFound
    /// when the pod was deleted meanwhile.
    pub fn lock(&self) -> Result<Locked<'_>, StateError> {
        self.lock_with(false)
    }

    /// Creates the lock file (a new pod) and takes the lock. Only the
    /// creation makes the file: a lock taken while `delete` empties the
    /// directory must not put a file back into it.
    pub(super) fn lock_new(&self) -> Result<Locked<'_>, StateError> {
        self.lock_with(true)
    }

    fn lock_with(&self, create: bool) -> Result<Locked<'_>, StateError> {
        let path = self.lock_path();
        let file = OpenOptions::new()
            .create(create)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => StateError::NotFound(self.id.clone()),
                _ => StateError::io("open", &path)(e),
            })?;
        let lock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, e)| StateError::io("lock", &path)(e.into()))?;
        Ok(Locked {
            dir: self,
            _lock: lock,
        })
    }

    /// Read-modify-write of meta.json under the lock; `change` may refuse.
    pub fn update(
        &self,
        change: impl FnOnce(&mut Meta) -> Result<(), StateError>,
    ) -> Result<Meta, StateError> {
        let lock = self.lock()?;
        let mut meta = lock.read()?;
        change(&mut meta)?;
        lock.write(&meta)?;
        Ok(meta)
    }

    /// Moves the pod to status `to`, if the status machine allows it.
    pub fn set_status(&self, to: Status) -> Result<Meta, StateError> {
        self.update(|m| transition(m, to))
    }

    /// Removes the directory and everything in it.
    pub fn remove(&self) -> Result<(), StateError> {
        match std::fs::remove_dir_all(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(StateError::io("remove", &self.path)(e))
            }
            _ => Ok(()),
        }
    }
}

/// Sets `meta.status` to `to`, refusing what the machine forbids.
pub fn transition(meta: &mut Meta, to: Status) -> Result<(), StateError> {
    if !meta.status.can_become(to) {
        return Err(StateError::Transition {
            id: meta.id.clone(),
            from: meta.status,
            to,
        });
    }
    meta.status = to;
    Ok(())
}

impl Locked<'_> {
    /// meta.json; NotFound if the pod was deleted before the lock came.
    pub fn read(&self) -> Result<Meta, StateError> {
        self.dir.read()
    }

    /// Replaces meta.json atomically: a temporary file, fsync, rename.
    pub fn write(&self, meta: &Meta) -> Result<(), StateError> {
        let path = self.dir.meta_path();
        let tmp = self.dir.path.join("meta.json.tmp");
        let text = serde_json::to_vec_pretty(meta).expect("Meta serializes");
        let write = || -> std::io::Result<()> {
            let mut f = OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(StateError::io("write", &path))
    }

    pub fn dir(&self) -> &PodDir {
        self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Root;

    fn root() -> (crate::pod::TestDir, Root) {
        let t = crate::pod::TestDir::new();
        let r = Root::open(Some(t.0.join("s"))).unwrap();
        (t, r)
    }

    fn new_pod(root: &Root) -> PodDir {
        root.create(|d| Meta {
            id: d.id().into(),
            name: "n".into(),
            pod_file: "/p".into(),
            created: 0,
            status: Status::Creating,
            detached: false,
            monitor: None,
            sandbox: None,
            gofers: vec![],
            containers: vec![],
            control: String::new(),
            exit_status: None,
            events: vec![],
        })
        .unwrap()
    }

    #[test]
    fn set_status_refused_transition_names_both_states() {
        let (_t, root) = root();
        let pod = new_pod(&root);
        let err = pod.set_status(Status::Paused).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("pod {} is creating: it cannot become paused", pod.id())
        );
        pod.set_status(Status::Created).unwrap();
        assert_eq!(pod.read().unwrap().status, Status::Created);
    }

    #[test]
    fn update_concurrent_writers_lose_nothing() {
        let (_t, root) = root();
        let pod = new_pod(&root);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let pod = pod.clone();
                std::thread::spawn(move || {
                    for _ in 0..25 {
                        pod.update(|m| {
                            m.created += 1;
                            Ok(())
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(pod.read().unwrap().created, 100);
    }

    #[test]
    fn lock_after_remove_is_not_found() {
        let (_t, root) = root();
        let pod = new_pod(&root);
        pod.remove().unwrap();
        assert!(matches!(pod.lock(), Err(StateError::NotFound(_))));
        assert!(matches!(pod.read(), Err(StateError::NotFound(_))));
    }
}
