//! Safe unpacking: writing one tar entry beneath the root fd.
//!
//! Policy, entry by entry:
//! - paths must stay lexically inside the root (`path.rs`) and must not
//!   pass through a symlink on the host (`tree.rs` walks with O_NOFOLLOW);
//! - regular files, directories, symlinks (target stored as-is: it is only
//!   ever resolved inside the sandbox) and hard links to files already in
//!   the tree are created; device nodes and fifos are skipped (the sentry
//!   provides /dev) with one warning per bundle;
//! - a later entry replaces an earlier one, except that a directory over a
//!   directory only updates its metadata;
//! - setuid/setgid bits are dropped; mode and mtime are kept; uid/gid only
//!   when `Options::preserve_owner`;
//! - directory metadata is applied last, deepest first, so that read-only
//!   directories still receive their contents;
//! - file data is bounded by `Limits::max_bytes` as it is written.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{fchmod, futimens, mkdirat, utimensat, Mode, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, Gid, Uid};
use tar::EntryType;

use super::error::{ImageError, Refusal};
use super::path::{components, join, show, MAX_PATH};
use super::tree::{self, Kind, Tree, WalkError};
use super::unpack::{Options, Stats};

/// Why an entry could not be applied.
pub enum EntryFailure {
    Image(ImageError),
    /// Reading the entry's data from the archive failed; the driver knows
    /// what the input saw.
    Read(io::Error),
}

impl From<ImageError> for EntryFailure {
    fn from(err: ImageError) -> Self {
        EntryFailure::Image(err)
    }
}

/// Metadata taken from a header.
#[derive(Debug, Clone, Copy)]
struct Meta {
    mode: u32,
    mtime: i64,
    uid: u32,
    gid: u32,
}

/// Unpacks entries beneath one root.
pub struct Unpacker<'a> {
    bundle: &'a Path,
    tree: Tree,
    options: &'a Options,
    stats: Stats,
    /// Directories created or updated by entries, applied at the end.
    dirs: BTreeMap<Vec<u8>, Meta>,
    warned_skip: bool,
    warned_chown: bool,
    /// Copy buffer, allocated once: a fresh large buffer per file costs an
    /// mmap and its page faults each time.
    buf: Vec<u8>,
}

const COPY_BUF: usize = 256 << 10;

impl<'a> Unpacker<'a> {
    pub fn new(bundle: &'a Path, root: OwnedFd, options: &'a Options) -> Self {
        Unpacker {
            bundle,
            tree: Tree::new(root),
            options,
            stats: Stats::default(),
            dirs: BTreeMap::new(),
            warned_skip: false,
            warned_chown: false,
            buf: vec![0u8; COPY_BUF],
        }
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Applies one archive entry.
    pub fn entry<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<(), EntryFailure> {
        self.stats.entries += 1;
        if self.stats.entries > self.options.limits.max_entries {
            return Err(ImageError::TooManyEntries {
                bundle: self.bundle.to_path_buf(),
                limit: self.options.limits.max_entries,
            }
            .into());
        }
        let raw = entry.path_bytes().into_owned();
        let kind = entry.header().entry_type();
        if self.skip(kind, &raw) {
            return Ok(());
        }
        let comps = components(&raw).map_err(|r| self.refuse(&raw, r))?;
        let meta = self.meta(entry.header(), &raw)?;
        match kind {
            EntryType::Directory => self.directory(&raw, &comps, meta),
            EntryType::Symlink => self.symlink(&raw, &comps, meta, entry),
            EntryType::Link => self.hard_link(&raw, &comps, entry),
            _ => self.file(&raw, &comps, meta, entry),
        }
    }

    /// Applies directory metadata, deepest first; returns the totals.
    pub fn finish(mut self) -> Result<Stats, ImageError> {
        let mut dirs: Vec<(Vec<u8>, Meta)> = std::mem::take(&mut self.dirs).into_iter().collect();
        dirs.sort_by_key(|(path, _)| std::cmp::Reverse(depth(path)));
        for (path, meta) in dirs {
            let comps = components(&path).map_err(|r| self.refuse(&path, r))?;
            let dir = match self.tree.dir(&comps, false) {
                Ok(dir) => dir,
                // Replaced by a later entry: nothing to apply.
                Err(WalkError::Symlink(_) | WalkError::NotDirectory(_) | WalkError::Missing(_)) => {
                    continue
                }
                Err(WalkError::Io(op, cause)) => return Err(self.write_error(&path, op, cause)),
            };
            self.set_meta(dir.as_fd(), &path, meta)?;
        }
        Ok(self.stats)
    }

    /// Whether `kind` is not unpacked at all.
    fn skip(&mut self, kind: EntryType, raw: &[u8]) -> bool {
        match kind {
            EntryType::Regular
            | EntryType::Continuous
            | EntryType::GNUSparse
            | EntryType::Directory
            | EntryType::Symlink
            | EntryType::Link => false,
            // Metadata for other entries; the tar crate applies what it needs.
            EntryType::XGlobalHeader | EntryType::XHeader => true,
            _ => {
                self.stats.skipped += 1;
                if !self.warned_skip {
                    self.warned_skip = true;
                    log::warn!(
                        "{}: skipping device nodes, fifos and unknown entries (first: {:?}, type {:?})",
                        self.bundle.display(),
                        show(raw),
                        kind
                    );
                }
                true
            }
        }
    }

    fn meta(&self, header: &tar::Header, raw: &[u8]) -> Result<Meta, ImageError> {
        let bad = |field| self.refuse(raw, Refusal::BadHeader(field));
        let mode = header.mode().map_err(|_| bad("mode"))?;
        let mtime = header.mtime().map_err(|_| bad("mtime"))?;
        let uid = header.uid().map_err(|_| bad("uid"))?;
        let gid = header.gid().map_err(|_| bad("gid"))?;
        Ok(Meta {
            // Permission bits and sticky; never setuid/setgid.
            mode: mode & 0o1777,
            mtime: i64::try_from(mtime).map_err(|_| bad("mtime"))?,
            uid: u32::try_from(uid).map_err(|_| bad("uid"))?,
            gid: u32::try_from(gid).map_err(|_| bad("gid"))?,
        })
    }

    /// The parent directory of the entry at `comps`, created as needed, and
    /// the entry's own name. `None` if `comps` names the root.
    fn parent<'c>(
        &mut self,
        raw: &[u8],
        comps: &'c [&'c [u8]],
    ) -> Result<(std::rc::Rc<OwnedFd>, &'c [u8]), ImageError> {
        let Some((name, parents)) = comps.split_last() else {
            return Err(self.refuse(raw, Refusal::RootNotDirectory));
        };
        match self.tree.dir(parents, true) {
            Ok(dir) => Ok((dir, name)),
            Err(WalkError::Symlink(p)) => Err(self.refuse(raw, Refusal::ThroughSymlink(p))),
            Err(WalkError::NotDirectory(p) | WalkError::Missing(p)) => {
                Err(self.refuse(raw, Refusal::ParentNotDirectory(p)))
            }
            Err(WalkError::Io(op, cause)) => Err(self.write_error(raw, op, cause)),
        }
    }

    /// Frees the entry's name for a new non-directory.
    fn clear(
        &mut self,
        dir: BorrowedFd,
        name: &[u8],
        comps: &[&[u8]],
        raw: &[u8],
    ) -> Result<(), ImageError> {
        if tree::kind(dir, name).map_err(|e| self.write_error(raw, "stat", e))? == Kind::Directory {
            self.forget_dirs(&join(comps));
        }
        self.tree
            .clear(dir, name, false)
            .map(drop)
            .map_err(|e| self.write_error(raw, "replace existing entry", e))
    }

    fn directory(&mut self, raw: &[u8], comps: &[&[u8]], meta: Meta) -> Result<(), EntryFailure> {
        if !comps.is_empty() {
            let (dir, name) = self.parent(raw, comps)?;
            let existed = self
                .tree
                .clear(dir.as_fd(), name, true)
                .map_err(|e| self.write_error(raw, "replace existing entry", e))?;
            if !existed {
                mkdirat(dir.as_fd(), name, Mode::from_bits_truncate(0o700))
                    .map_err(|e| self.write_error(raw, "create directory", e.into()))?;
            }
        }
        self.dirs.insert(join(comps), meta);
        Ok(())
    }

    fn file<R: Read>(
        &mut self,
        raw: &[u8],
        comps: &[&[u8]],
        meta: Meta,
        entry: &mut tar::Entry<R>,
    ) -> Result<(), EntryFailure> {
        let expected =
            logical_size(entry).map_err(|_| self.refuse(raw, Refusal::BadHeader("size")))?;
        if self.stats.bytes.saturating_add(expected) > self.options.limits.max_bytes {
            return Err(self.too_large().into());
        }
        let (dir, name) = self.parent(raw, comps)?;
        self.clear(dir.as_fd(), name, comps, raw)?;
        let mut file = tree::create_file(dir.as_fd(), name)
            .map_err(|e| self.write_error(raw, "create file", e))?;
        let written = self.copy(raw, entry, &mut file)?;
        if written != expected {
            let detail = format!(
                "entry {:?} ends after {written} of {expected} bytes",
                show(raw)
            );
            return Err(ImageError::Truncated {
                bundle: self.bundle.to_path_buf(),
                detail,
            }
            .into());
        }
        self.set_meta(file.as_fd(), raw, meta)?;
        Ok(())
    }

    /// Copies the entry's data into `file`, within the byte budget.
    fn copy<R: Read>(
        &mut self,
        raw: &[u8],
        entry: &mut tar::Entry<R>,
        file: &mut File,
    ) -> Result<u64, EntryFailure> {
        let mut buf = std::mem::take(&mut self.buf);
        let res = self.copy_with(raw, entry, file, &mut buf);
        self.buf = buf;
        res
    }

    fn copy_with<R: Read>(
        &mut self,
        raw: &[u8],
        entry: &mut tar::Entry<R>,
        file: &mut File,
        buf: &mut [u8],
    ) -> Result<u64, EntryFailure> {
        let mut written = 0u64;
        loop {
            let n = match entry.read(buf) {
                Ok(0) => return Ok(written),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(EntryFailure::Read(e)),
            };
            self.stats.bytes += n as u64;
            if self.stats.bytes > self.options.limits.max_bytes {
                return Err(self.too_large().into());
            }
            file.write_all(&buf[..n])
                .map_err(|e| self.write_error(raw, "write file", e))?;
            written += n as u64;
        }
    }

    fn symlink<R: Read>(
        &mut self,
        raw: &[u8],
        comps: &[&[u8]],
        meta: Meta,
        entry: &mut tar::Entry<R>,
    ) -> Result<(), EntryFailure> {
        let target = entry
            .link_name_bytes()
            .map(|t| t.into_owned())
            .unwrap_or_default();
        if target.is_empty() {
            return Err(self.refuse(raw, Refusal::EmptySymlink).into());
        }
        if target.len() > MAX_PATH {
            return Err(self
                .refuse(raw, Refusal::PathTooLong(target.len(), MAX_PATH))
                .into());
        }
        if target.contains(&0) {
            return Err(self.refuse(raw, Refusal::BadHeader("link target")).into());
        }
        let (dir, name) = self.parent(raw, comps)?;
        self.clear(dir.as_fd(), name, comps, raw)?;
        symlinkat(&target[..], dir.as_fd(), name)
            .map_err(|e| self.write_error(raw, "create symlink", e.into()))?;
        if self.options.preserve_owner {
            let res = fchownat(
                dir.as_fd(),
                name,
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            );
            self.chown_result(raw, res)?;
        }
        let mtime = TimeSpec::new(meta.mtime, 0);
        utimensat(
            dir.as_fd(),
            name,
            &mtime,
            &mtime,
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|e| self.write_error(raw, "set symlink mtime", e.into()))?;
        Ok(())
    }

    fn hard_link<R: Read>(
        &mut self,
        raw: &[u8],
        comps: &[&[u8]],
        entry: &mut tar::Entry<R>,
    ) -> Result<(), EntryFailure> {
        let Some(target) = entry.link_name_bytes().map(|t| t.into_owned()) else {
            return Err(self.refuse(raw, Refusal::NoLinkTarget).into());
        };
        let shown = show(&target);
        let tcomps = match components(&target) {
            Ok(c) => c,
            Err(Refusal::Escapes | Refusal::Absolute) => {
                return Err(self.refuse(raw, Refusal::LinkEscapes(shown)).into())
            }
            Err(r) => return Err(self.refuse(raw, r).into()),
        };
        let Some((tname, tparents)) = tcomps.split_last() else {
            return Err(self.refuse(raw, Refusal::LinkTargetDirectory(shown)).into());
        };
        let tdir = match self.tree.dir(tparents, false) {
            Ok(dir) => dir,
            Err(WalkError::Symlink(p)) => {
                return Err(self
                    .refuse(raw, Refusal::LinkThroughSymlink(shown, p))
                    .into())
            }
            Err(WalkError::NotDirectory(_) | WalkError::Missing(_)) => {
                return Err(self.refuse(raw, Refusal::LinkTargetMissing(shown)).into())
            }
            Err(WalkError::Io(op, cause)) => return Err(self.write_error(raw, op, cause).into()),
        };
        // A symlink target is linked as the symlink itself (no follow), so
        // its target is still only resolved inside the sandbox.
        match tree::kind(tdir.as_fd(), tname)
            .map_err(|e| self.write_error(raw, "stat link target", e))?
        {
            Kind::Missing => {
                return Err(self.refuse(raw, Refusal::LinkTargetMissing(shown)).into())
            }
            Kind::Directory => {
                return Err(self.refuse(raw, Refusal::LinkTargetDirectory(shown)).into())
            }
            Kind::Symlink | Kind::Other => {}
        }
        if tcomps == comps {
            return Ok(());
        }
        let (dir, name) = self.parent(raw, comps)?;
        self.clear(dir.as_fd(), name, comps, raw)?;
        linkat(tdir.as_fd(), *tname, dir.as_fd(), name, AtFlags::empty())
            .map_err(|e| self.write_error(raw, "create hard link", e.into()))?;
        Ok(())
    }

    /// Sets owner (if preserved), mode and mtime of an open file or directory.
    fn set_meta(&mut self, fd: BorrowedFd, raw: &[u8], meta: Meta) -> Result<(), ImageError> {
        if self.options.preserve_owner {
            let res = fchown(
                fd,
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
            );
            self.chown_result(raw, res)?;
        }
        fchmod(fd, Mode::from_bits_truncate(meta.mode))
            .map_err(|e| self.write_error(raw, "chmod", e.into()))?;
        let mtime = TimeSpec::new(meta.mtime, 0);
        futimens(fd, &mtime, &mtime).map_err(|e| self.write_error(raw, "set mtime", e.into()))
    }

    /// An unmapped id (EINVAL, in a user namespace) is logged once and
    /// otherwise ignored; other chown failures are errors.
    fn chown_result(&mut self, raw: &[u8], res: nix::Result<()>) -> Result<(), ImageError> {
        match res {
            Ok(()) => Ok(()),
            Err(Errno::EINVAL) => {
                if !self.warned_chown {
                    self.warned_chown = true;
                    log::warn!(
                        "{}: entry {:?}: owner not mapped here; keeping ours",
                        self.bundle.display(),
                        show(raw)
                    );
                }
                Ok(())
            }
            Err(e) => Err(self.write_error(raw, "chown", e.into())),
        }
    }

    /// Drops recorded metadata of `path` and everything beneath it (they are
    /// about to be removed).
    fn forget_dirs(&mut self, path: &[u8]) {
        self.dirs.retain(|k, _| {
            !(k == path || (k.starts_with(path) && k.get(path.len()) == Some(&b'/')))
        });
    }

    fn refuse(&self, raw: &[u8], refusal: Refusal) -> ImageError {
        ImageError::UnsafeEntry {
            bundle: self.bundle.to_path_buf(),
            entry: show(raw),
            refusal,
        }
    }

    fn write_error(&self, raw: &[u8], op: &'static str, cause: io::Error) -> ImageError {
        ImageError::WriteEntry {
            bundle: self.bundle.to_path_buf(),
            entry: show(raw),
            op,
            cause,
        }
    }

    fn too_large(&self) -> ImageError {
        ImageError::TooLarge {
            bundle: PathBuf::from(self.bundle),
            limit: self.options.limits.max_bytes,
        }
    }
}

/// Size of the file an entry unpacks to (a GNU sparse entry is larger than
/// its data in the archive).
fn logical_size<R: Read>(entry: &tar::Entry<R>) -> io::Result<u64> {
    let header = entry.header();
    match header.as_gnu() {
        Some(gnu) if header.entry_type() == EntryType::GNUSparse => gnu.real_size(),
        _ => Ok(entry.size()),
    }
}

/// Number of components of a joined path (0 for the root).
fn depth(path: &[u8]) -> usize {
    if path.is_empty() {
        0
    } else {
        path.iter().filter(|&&b| b == b'/').count() + 1
    }
}
