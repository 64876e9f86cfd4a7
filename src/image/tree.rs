//! Filesystem operations confined beneath one directory fd.
//!
//! Everything here works relative to a directory fd with `*at` calls and
//! resolves paths one component at a time with `O_NOFOLLOW | O_DIRECTORY`,
//! so no symlink is ever followed on the host, whoever created it. Paths
//! given to this module are already split into components without `.`/`..`
//! (see `path.rs`); a symlink met on the way is reported, never entered.
//!
//! The walker caches the fd of the last directory it resolved, because tar
//! entries come grouped by directory. The cache is dropped whenever a
//! directory is removed, so it never points at an unlinked directory.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::rc::Rc;

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fstatat, mkdirat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};

use super::path::{join, show};

/// Why a walk stopped.
#[derive(Debug)]
pub enum WalkError {
    /// The component at this path (relative to the root) is a symlink.
    Symlink(String),
    /// The component at this path exists and is neither a directory nor a
    /// symlink.
    NotDirectory(String),
    /// The component at this path does not exist (walks that do not create).
    Missing(String),
    Io(&'static str, io::Error),
}

/// What a name in a directory is, without following symlinks.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Kind {
    Missing,
    Directory,
    Symlink,
    Other,
}

/// A directory tree reached only through its root fd.
pub struct Tree {
    root: Rc<OwnedFd>,
    cache: Option<(Vec<u8>, Rc<OwnedFd>)>,
}

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

impl Tree {
    pub fn new(root: OwnedFd) -> Tree {
        Tree {
            root: Rc::new(root),
            cache: None,
        }
    }

    /// The directory at `comps` (the root if empty). Missing directories
    /// are created with mode 0755 when `create` is set.
    pub fn dir(&mut self, comps: &[&[u8]], create: bool) -> Result<Rc<OwnedFd>, WalkError> {
        if comps.is_empty() {
            return Ok(self.root.clone());
        }
        let key = join(comps);
        if let Some((cached, fd)) = &self.cache {
            if *cached == key {
                return Ok(fd.clone());
            }
        }
        let mut cur = self.root.clone();
        for (i, comp) in comps.iter().enumerate() {
            let next = step(cur.as_fd(), comp, create).map_err(|e| e.at(&join(&comps[..=i])))?;
            cur = Rc::new(next);
        }
        self.cache = Some((key, cur.clone()));
        Ok(cur)
    }

    /// Frees `name` in `dir` for a new entry. An existing directory is kept
    /// if `keep_dir` (returns true), else removed with its contents, as
    /// is any other existing file.
    pub fn clear(&mut self, dir: BorrowedFd, name: &[u8], keep_dir: bool) -> io::Result<bool> {
        match kind(dir, name)? {
            Kind::Missing => Ok(false),
            Kind::Directory if keep_dir => Ok(true),
            Kind::Directory => {
                self.cache = None;
                remove_tree(dir, name)?;
                Ok(false)
            }
            Kind::Symlink | Kind::Other => {
                unlinkat(dir, name, UnlinkatFlags::NoRemoveDir)?;
                Ok(false)
            }
        }
    }
}

/// Why one step of a walk failed, before the path is known.
enum StepError {
    Symlink,
    NotDirectory,
    Missing,
    Io(&'static str, io::Error),
}

impl StepError {
    fn at(self, path: &[u8]) -> WalkError {
        match self {
            StepError::Symlink => WalkError::Symlink(show(path)),
            StepError::NotDirectory => WalkError::NotDirectory(show(path)),
            StepError::Missing => WalkError::Missing(show(path)),
            StepError::Io(op, err) => WalkError::Io(op, err),
        }
    }
}

/// Opens the directory `name` in `dir` without following a symlink,
/// creating it (0755) if missing and `create`.
fn step(dir: BorrowedFd, name: &[u8], create: bool) -> Result<OwnedFd, StepError> {
    match openat(dir, name, DIR_FLAGS, Mode::empty()) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) if create => {}
        Err(Errno::ENOENT) => return Err(StepError::Missing),
        Err(Errno::ELOOP | Errno::ENOTDIR) => {
            return Err(match kind(dir, name) {
                Ok(Kind::Symlink) => StepError::Symlink,
                Ok(_) => StepError::NotDirectory,
                Err(e) => StepError::Io("stat", e),
            })
        }
        Err(e) => return Err(StepError::Io("open directory", e.into())),
    }
    match mkdirat(dir, name, Mode::from_bits_truncate(0o700)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(StepError::Io("create directory", e.into())),
    }
    let fd = openat(dir, name, DIR_FLAGS, Mode::empty())
        .map_err(|e| StepError::Io("open directory", e.into()))?;
    fchmod(&fd, Mode::from_bits_truncate(0o755))
        .map_err(|e| StepError::Io("chmod directory", e.into()))?;
    Ok(fd)
}

/// What `name` in `dir` is, without following a symlink.
pub fn kind(dir: BorrowedFd, name: &[u8]) -> io::Result<Kind> {
    let st = match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Ok(Kind::Missing),
        Err(e) => return Err(e.into()),
    };
    Ok(
        match SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) {
            SFlag::S_IFDIR => Kind::Directory,
            SFlag::S_IFLNK => Kind::Symlink,
            _ => Kind::Other,
        },
    )
}

/// Creates the regular file `name` in `dir` (which must not exist), mode
/// 0600 until the caller sets the final mode.
pub fn create_file(dir: BorrowedFd, name: &[u8]) -> io::Result<File> {
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = openat(dir, name, flags, Mode::from_bits_truncate(0o600))?;
    Ok(File::from(fd))
}

/// Opens the directory `name` in `dir` without following a symlink.
pub fn open_dir(dir: BorrowedFd, name: &[u8]) -> io::Result<OwnedFd> {
    Ok(openat(dir, name, DIR_FLAGS, Mode::empty())?)
}

/// Removes `name` in `dir` and, if it is a directory, everything beneath
/// it, never following a symlink. Directories are made writable first so
/// that read-only directories from an image can be removed. A missing
/// `name` is not an error.
pub fn remove_tree(dir: BorrowedFd, name: &[u8]) -> io::Result<()> {
    match kind(dir, name)? {
        Kind::Missing => return Ok(()),
        Kind::Directory => {}
        Kind::Symlink | Kind::Other => {
            return ignore_missing(unlinkat(dir, name, UnlinkatFlags::NoRemoveDir))
        }
    }
    let fd = open_dir(dir, name)?;
    // Best effort: when it fails (not our directory) the unlinks below
    // report the real error.
    let _ = fchmod(&fd, Mode::from_bits_truncate(0o700));
    // The listing goes through the fd's /proc link (nix's `dir` feature is
    // not enabled); the unlinks are relative to the fd itself.
    let listing = std::fs::read_dir(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
    for child in listing {
        remove_tree(fd.as_fd(), child?.file_name().as_bytes())?;
    }
    drop(fd);
    ignore_missing(unlinkat(dir, name, UnlinkatFlags::RemoveDir))
}

fn ignore_missing(res: nix::Result<()>) -> io::Result<()> {
    match res {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn tree_at(path: &std::path::Path) -> Tree {
        let fd = openat(nix::fcntl::AT_FDCWD, path, DIR_FLAGS, Mode::empty()).unwrap();
        Tree::new(fd)
    }

    #[test]
    fn dir_missing_components_created() {
        let tmp = crate::image::testutil::TempDir::new();
        let mut tree = tree_at(tmp.path());
        tree.dir(&[b"a", b"b"], true).unwrap();
        assert!(tmp.path().join("a/b").is_dir());
    }

    #[test]
    fn dir_through_symlink_refused() {
        let tmp = crate::image::testutil::TempDir::new();
        std::fs::create_dir(tmp.path().join("real")).unwrap();
        symlink("real", tmp.path().join("a")).unwrap();
        let mut tree = tree_at(tmp.path());
        let err = tree.dir(&[b"a", b"b"], true).unwrap_err();
        assert!(matches!(err, WalkError::Symlink(p) if p == "a"));
        assert!(!tmp.path().join("real/b").exists());
    }

    #[test]
    fn dir_through_file_refused() {
        let tmp = crate::image::testutil::TempDir::new();
        std::fs::write(tmp.path().join("f"), b"").unwrap();
        let mut tree = tree_at(tmp.path());
        let err = tree.dir(&[b"f", b"x"], true).unwrap_err();
        assert!(matches!(err, WalkError::NotDirectory(p) if p == "f"));
    }

    #[test]
    fn remove_tree_read_only_dirs_removed() {
        let tmp = crate::image::testutil::TempDir::new();
        let top = tmp.path().join("top");
        std::fs::create_dir_all(top.join("ro/sub")).unwrap();
        std::fs::write(top.join("ro/sub/f"), b"x").unwrap();
        symlink("/etc", top.join("ro/link")).unwrap();
        std::fs::set_permissions(top.join("ro"), std::fs::Permissions::from_mode(0o555)).unwrap();
        let root = tree_at(tmp.path());
        remove_tree(root.root.as_fd(), b"top").unwrap();
        assert!(!top.exists());
        assert!(std::path::Path::new("/etc").is_dir());
    }
}
