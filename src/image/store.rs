//! The content-addressed store of unpacked images.
//!
//! Layout under the store root:
//! - `<sha256>/rootfs`    the unpacked tree, never written after creation;
//! - `<sha256>/meta.json` source path, size, format, unpack time;
//! - `tmp/<unique>/`      entries being unpacked (or left by a crash);
//! - `.lock`              flock taken around publishing and removing.
//!
//! The key is the sha256 of the bundle file's bytes. An entry is unpacked
//! into `tmp/`, fsynced (syncfs) and then renamed into place, so a
//! `<sha256>` directory is always complete; `tmp/` directories are never
//! taken for entries. Each tmp directory is flocked by its creator while in
//! use; one that is unlocked and older than an hour is abandoned and is
//! removed by the next prepare. Concurrent prepares of one bundle may both
//! unpack; under `.lock` the first publishes and the second discards its
//! copy and uses the first.
//!
//! Lock order: a tmp directory's flock, then `.lock`.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::fcntl::{Flock, FlockArg};
use nix::unistd::geteuid;
use serde::{Deserialize, Serialize};

use super::digest::{self, HashingReader};
use super::error::ImageError;
use super::format::{Format, HEAD_LEN};
use super::tree;
use super::unpack::{self, Limits, Options};
use crate::pod::Image;

const META: &str = "meta.json";
const ROOTFS: &str = "rootfs";
const TMP: &str = "tmp";
const LOCK: &str = ".lock";
/// Age after which an unlocked tmp directory is taken as abandoned.
const TMP_MAX_AGE: Duration = Duration::from_secs(3600);

/// The content-addressed store of unpacked images.
pub struct Store {
    root: PathBuf,
    options: Options,
}

/// One complete store entry, as `sandboxd image ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// sha256 of the bundle (lowercase hex): the entry's name.
    pub digest: String,
    /// The bundle it was unpacked from.
    pub source: PathBuf,
    /// Size of the bundle file in bytes.
    pub size: u64,
    /// Bundle format (`tar`, `tar+gzip`).
    pub format: String,
    /// Unix time of the unpack.
    pub unpacked_at: u64,
    /// The directory of its rootfs.
    pub rootfs: PathBuf,
}

/// The content of `meta.json`.
#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    digest: String,
    source: String,
    size: u64,
    format: String,
    unpacked_at: u64,
    entries: u64,
    bytes: u64,
}

impl Store {
    /// The store at `root`, with limits from the environment
    /// (`SANDBOXD_MAX_IMAGE_BYTES`); owners are preserved when running as
    /// root.
    pub fn new(root: PathBuf) -> Store {
        Store {
            root,
            options: Options {
                limits: Limits::from_env(),
                preserve_owner: geteuid().is_root(),
            },
        }
    }

    /// The same store with other unpack limits.
    pub fn with_limits(mut self, limits: Limits) -> Store {
        self.options.limits = limits;
        self
    }

    /// `$SANDBOXD_STORE`, else `/var/lib/sandboxd/store` for root, else
    /// `$XDG_DATA_HOME/sandboxd/store` (`~/.local/share/sandboxd/store`).
    pub fn default_root() -> PathBuf {
        let var = |name| std::env::var_os(name).filter(|v: &OsString| !v.is_empty());
        let home = var("HOME").or_else(|| {
            nix::unistd::User::from_uid(geteuid())
                .ok()
                .flatten()
                .map(|u| u.dir.into_os_string())
        });
        choose_root(
            var("SANDBOXD_STORE"),
            geteuid().is_root(),
            var("XDG_DATA_HOME"),
            home,
        )
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Verifies `image` against its pin, unpacks it into the store unless it
    /// is there already, and returns the directory of its rootfs.
    pub fn prepare(&self, image: &Image) -> Result<PathBuf, ImageError> {
        let bundle = image.path.as_path();
        let mut file = File::open(bundle).map_err(|e| read_error(bundle, e))?;
        let stat = file.metadata().map_err(|e| read_error(bundle, e))?;
        if !stat.is_file() {
            return Err(ImageError::NotRegularFile {
                bundle: bundle.to_path_buf(),
            });
        }
        let (digest, size) = digest::hash_reader(&mut file).map_err(|e| read_error(bundle, e))?;
        if let Some(pin) = &image.sha256 {
            check_pin(bundle, pin, &digest)?;
        }
        let entry = self.root.join(&digest);
        if entry.join(META).is_file() {
            log::debug!("{}: store entry {digest} exists", bundle.display());
            return Ok(entry.join(ROOTFS));
        }
        self.unpack_new(bundle, file, &digest, size)?;
        Ok(entry.join(ROOTFS))
    }

    /// The complete entries of the store, by digest.
    pub fn list(&self) -> Result<Vec<Entry>, ImageError> {
        let dir = match fs::read_dir(&self.root) {
            Ok(dir) => dir,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.store_error(&self.root, "list store", e)),
        };
        let mut entries = Vec::new();
        for item in dir {
            let item = item.map_err(|e| self.store_error(&self.root, "list store", e))?;
            let name = item.file_name();
            match name.to_str() {
                Some(digest) if digest::is_digest(digest) => {
                    if let Some(entry) = self.read_entry(digest)? {
                        entries.push(entry);
                    }
                }
                _ => {}
            }
        }
        entries.sort_by(|a, b| a.digest.cmp(&b.digest));
        Ok(entries)
    }

    /// Removes the entry `digest`. It disappears at once (renamed into
    /// `tmp/` under the lock) and is then deleted.
    pub fn remove(&self, digest: &str) -> Result<(), ImageError> {
        if !digest::is_digest(digest) {
            return Err(ImageError::InvalidDigest {
                digest: digest.to_string(),
            });
        }
        let entry = self.root.join(digest);
        let doomed = self.new_tmp_name()?;
        {
            let _lock = self.lock()?;
            if fs::symlink_metadata(&entry).is_err() {
                return Err(ImageError::NoSuchEntry { path: entry });
            }
            fs::rename(&entry, &doomed)
                .map_err(|e| self.store_error(&entry, "move entry aside", e))?;
        }
        remove_path(&doomed).map_err(|e| self.store_error(&doomed, "remove", e))
    }

    /// Unpacks `file` (whose sha256 is `digest`) into a tmp directory and
    /// publishes it as the entry `digest`.
    fn unpack_new(
        &self,
        bundle: &Path,
        mut file: File,
        digest: &str,
        size: u64,
    ) -> Result<(), ImageError> {
        let tmp_root = self.root.join(TMP);
        fs::create_dir_all(&tmp_root)
            .map_err(|e| self.store_error(&tmp_root, "create store", e))?;
        self.clean_tmp();
        let tmp = TmpDir::create(self)?;
        let rootfs = tmp.path.join(ROOTFS);
        fs::create_dir(&rootfs).map_err(|e| self.store_error(&rootfs, "create directory", e))?;
        let rootfd = tree::open_dir(nix::fcntl::AT_FDCWD, rootfs.as_os_str().as_bytes())
            .map_err(|e| self.store_error(&rootfs, "open directory", e))?;

        let format = detect(bundle, &mut file)?;
        let mut source = HashingReader::new(BufReader::with_capacity(256 << 10, file));
        let stats = unpack::unpack(bundle, format, &mut source, rootfd, &self.options)?;
        let (after, _) = source.finish_reading().map_err(|e| read_error(bundle, e))?;
        if after != digest {
            return Err(ImageError::ChangedDuringUnpack {
                bundle: bundle.to_path_buf(),
                before: digest.to_string(),
                after,
            });
        }
        let meta = Meta {
            digest: digest.to_string(),
            source: bundle.to_string_lossy().into_owned(),
            size,
            format: format.name().to_string(),
            unpacked_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            entries: stats.entries,
            bytes: stats.bytes,
        };
        tmp.write_meta(self, &meta)?;
        log::info!(
            "{}: unpacked {} entries, {} bytes into store entry {digest}",
            bundle.display(),
            stats.entries,
            stats.bytes
        );
        self.publish(tmp, digest)
    }

    /// Renames `tmp` to the entry `digest`, unless a complete entry is there
    /// already (a concurrent prepare won): then `tmp` is discarded.
    fn publish(&self, mut tmp: TmpDir, digest: &str) -> Result<(), ImageError> {
        let entry = self.root.join(digest);
        let _lock = self.lock()?;
        if entry.join(META).is_file() {
            log::debug!("store entry {digest} published concurrently; discarding ours");
            return Ok(());
        }
        if fs::symlink_metadata(&entry).is_ok() {
            // Not made by this code (no meta.json): never trust it.
            let stale = self.new_tmp_name()?;
            fs::rename(&entry, &stale)
                .map_err(|e| self.store_error(&entry, "move entry aside", e))?;
            remove_path(&stale).map_err(|e| self.store_error(&stale, "remove", e))?;
        }
        fs::rename(&tmp.path, &entry).map_err(|e| self.store_error(&entry, "publish entry", e))?;
        tmp.published = true;
        Ok(())
    }

    fn read_entry(&self, digest: &str) -> Result<Option<Entry>, ImageError> {
        let path = self.root.join(digest).join(META);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.store_error(&path, "read", e)),
        };
        let meta: Meta = serde_json::from_str(&text).map_err(|e| ImageError::Metadata {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        Ok(Some(Entry {
            digest: digest.to_string(),
            source: PathBuf::from(meta.source),
            size: meta.size,
            format: meta.format,
            unpacked_at: meta.unpacked_at,
            rootfs: self.root.join(digest).join(ROOTFS),
        }))
    }

    /// Removes abandoned tmp directories: unlocked and older than an hour.
    /// Best effort: failures are logged.
    fn clean_tmp(&self) {
        let tmp_root = self.root.join(TMP);
        let Ok(dir) = fs::read_dir(&tmp_root) else {
            return;
        };
        for item in dir.flatten() {
            let path = item.path();
            let old = item
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > TMP_MAX_AGE);
            if !old {
                continue;
            }
            let Ok(handle) = File::open(&path) else {
                continue;
            };
            // Held by a live prepare: not abandoned, whatever its age.
            let Ok(_held) = Flock::lock(handle, FlockArg::LockExclusiveNonblock) else {
                continue;
            };
            match remove_path(&path) {
                Ok(()) => log::info!("removed abandoned {}", path.display()),
                Err(e) => log::warn!("cannot remove abandoned {}: {}", path.display(), e),
            }
        }
    }

    /// Takes the store's `.lock` (exclusive, blocking).
    fn lock(&self) -> Result<Flock<File>, ImageError> {
        let path = self.root.join(LOCK);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| self.store_error(&path, "open lock", e))?;
        Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, e)| self.store_error(&path, "lock", e.into()))
    }

    /// A fresh name under `tmp/` (not created).
    fn new_tmp_name(&self) -> Result<PathBuf, ImageError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let tmp_root = self.root.join(TMP);
        fs::create_dir_all(&tmp_root)
            .map_err(|e| self.store_error(&tmp_root, "create store", e))?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        Ok(tmp_root.join(format!("{}-{nanos:08x}-{n}", std::process::id())))
    }

    fn store_error(&self, path: &Path, op: &'static str, cause: io::Error) -> ImageError {
        ImageError::Store {
            path: path.to_path_buf(),
            op,
            cause,
        }
    }
}

/// A directory under `tmp/` being filled, flocked while it exists; removed
/// on drop unless it was published.
struct TmpDir {
    path: PathBuf,
    _held: Flock<File>,
    published: bool,
}

impl TmpDir {
    fn create(store: &Store) -> Result<TmpDir, ImageError> {
        loop {
            let path = store.new_tmp_name()?;
            match fs::create_dir(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(store.store_error(&path, "create directory", e)),
            }
            let guard = |e| store.store_error(&path, "lock", e);
            let handle = File::open(&path).map_err(guard)?;
            let held =
                Flock::lock(handle, FlockArg::LockExclusive).map_err(|(_, e)| guard(e.into()))?;
            return Ok(TmpDir {
                path,
                _held: held,
                published: false,
            });
        }
    }

    /// Writes `meta.json` and flushes the file system, so that once renamed
    /// the entry is complete on disk as well.
    fn write_meta(&self, store: &Store, meta: &Meta) -> Result<(), ImageError> {
        let path = self.path.join(META);
        let text = serde_json::to_string_pretty(meta).map_err(|e| ImageError::Metadata {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        fs::write(&path, text).map_err(|e| store.store_error(&path, "write", e))?;
        nix::unistd::syncfs(self._held.as_fd())
            .map_err(|e| store.store_error(&self.path, "sync", e.into()))
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        if !self.published {
            if let Err(e) = remove_path(&self.path) {
                log::warn!("cannot remove {}: {}", self.path.display(), e);
            }
        }
    }
}

/// Removes `path` and everything beneath it, never following symlinks.
pub(super) fn remove_path(path: &Path) -> io::Result<()> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    let parent = tree::open_dir(nix::fcntl::AT_FDCWD, parent.as_os_str().as_bytes())?;
    tree::remove_tree(parent.as_fd(), name.as_bytes())
}

/// The format of the bundle `file`, leaving it at offset 0.
fn detect(bundle: &Path, file: &mut File) -> Result<Format, ImageError> {
    let mut head = Vec::with_capacity(HEAD_LEN);
    let read = |file: &mut File, head: &mut Vec<u8>| -> io::Result<()> {
        file.seek(SeekFrom::Start(0))?;
        file.take(HEAD_LEN as u64).read_to_end(head)?;
        file.seek(SeekFrom::Start(0)).map(drop)
    };
    read(file, &mut head).map_err(|e| read_error(bundle, e))?;
    Format::detect(&head).map_err(|format| ImageError::UnsupportedFormat {
        bundle: bundle.to_path_buf(),
        format,
    })
}

fn check_pin(bundle: &Path, pin: &str, digest: &str) -> Result<(), ImageError> {
    let Some(pinned) = digest::parse_pin(pin) else {
        return Err(ImageError::InvalidPin {
            bundle: bundle.to_path_buf(),
            pin: pin.to_string(),
        });
    };
    if pinned != digest {
        return Err(ImageError::PinMismatch {
            bundle: bundle.to_path_buf(),
            pinned,
            actual: digest.to_string(),
        });
    }
    Ok(())
}

fn read_error(bundle: &Path, cause: io::Error) -> ImageError {
    ImageError::ReadBundle {
        bundle: bundle.to_path_buf(),
        cause,
    }
}

/// The default store root from the environment's values.
fn choose_root(
    store: Option<OsString>,
    euid_root: bool,
    xdg_data: Option<OsString>,
    home: Option<OsString>,
) -> PathBuf {
    if let Some(store) = store {
        return PathBuf::from(store);
    }
    if euid_root {
        return PathBuf::from("/var/lib/sandboxd/store");
    }
    // The XDG spec says relative values are to be ignored.
    if let Some(data) = xdg_data.map(PathBuf::from).filter(|p| p.is_absolute()) {
        return data.join("sandboxd/store");
    }
    match home {
        Some(home) => PathBuf::from(home).join(".local/share/sandboxd/store"),
        None => std::env::temp_dir().join(format!("sandboxd-{}/store", geteuid())),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::image::testutil::{gzip, tar_of, Item, TempDir};

    /// A store under `tmp/store` and a bundle file `tmp/<name>` holding `data`.
    fn setup(name: &str, data: &[u8]) -> (TempDir, Store, PathBuf) {
        let tmp = TempDir::new();
        let store = Store::new(tmp.path().join("store")).with_limits(Limits::default());
        let bundle = tmp.path().join(name);
        fs::write(&bundle, data).unwrap();
        (tmp, store, bundle)
    }

    fn image(path: &Path, sha256: Option<&str>) -> Image {
        Image {
            path: path.to_path_buf(),
            sha256: sha256.map(str::to_string),
        }
    }

    fn rootfs_tar() -> Vec<u8> {
        tar_of(&[
            Item::Dir("./", 0o755),
            Item::File("bin/sh", b"#!sh", 0o755),
            Item::Symlink("bin/ls", "sh"),
        ])
    }

    fn sha(data: &[u8]) -> String {
        digest::hash_reader(data).unwrap().0
    }

    fn tmp_is_empty(store: &Store) -> bool {
        fs::read_dir(store.root().join(TMP)).map_or(true, |mut d| d.next().is_none())
    }

    #[test]
    fn prepare_new_bundle_unpacks_into_digest_entry() {
        let data = gzip(&rootfs_tar());
        let (_tmp, store, bundle) = setup("busybox.tar.gz", &data);
        let rootfs = store.prepare(&image(&bundle, None)).unwrap();
        assert_eq!(rootfs, store.root().join(sha(&data)).join("rootfs"));
        assert_eq!(fs::read(rootfs.join("bin/sh")).unwrap(), b"#!sh");
        let entries = store.list().unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].digest, sha(&data));
        assert_eq!(entries[0].source, bundle);
        assert_eq!(entries[0].size, data.len() as u64);
        assert_eq!(entries[0].format, "tar+gzip");
        assert_eq!(entries[0].rootfs, rootfs);
        assert!(tmp_is_empty(&store));
    }

    #[test]
    fn prepare_second_time_reuses_entry_without_unpacking() {
        let (_tmp, store, bundle) = setup("r.tar", &rootfs_tar());
        let first = store.prepare(&image(&bundle, None)).unwrap();
        let inode = fs::metadata(first.join("bin/sh")).unwrap().ino();
        fs::write(first.join("marker"), b"").unwrap();
        let second = store.prepare(&image(&bundle, None)).unwrap();
        assert_eq!(first, second);
        assert_eq!(fs::metadata(second.join("bin/sh")).unwrap().ino(), inode);
        assert!(second.join("marker").exists(), "entry was unpacked again");
    }

    #[test]
    fn prepare_pin_match_accepted() {
        let data = rootfs_tar();
        let (_tmp, store, bundle) = setup("r.tar", &data);
        let pin = format!("sha256:{}", sha(&data).to_uppercase());
        assert!(store.prepare(&image(&bundle, Some(&pin))).is_ok());
    }

    #[test]
    fn prepare_pin_mismatch_writes_nothing() {
        let data = gzip(&rootfs_tar());
        let (_tmp, store, bundle) = setup("busybox.tar.gz", &data);
        let pin = "12".repeat(32);
        let err = store.prepare(&image(&bundle, Some(&pin))).unwrap_err();
        let expected = format!(
            "{}: sha256 mismatch: pinned {pin}, got {}",
            bundle.display(),
            sha(&data)
        );
        assert_eq!(err.to_string(), expected);
        assert!(!store.root().exists(), "store touched before the pin check");
    }

    #[test]
    fn prepare_invalid_pin_refused() {
        let (_tmp, store, bundle) = setup("r.tar", &rootfs_tar());
        let err = store.prepare(&image(&bundle, Some("abc"))).unwrap_err();
        assert!(matches!(err, ImageError::InvalidPin { .. }), "{err}");
    }

    #[test]
    fn prepare_missing_file_names_file_and_cause() {
        let tmp = TempDir::new();
        let store = Store::new(tmp.path().join("store"));
        let bundle = tmp.path().join("x.tar");
        let err = store.prepare(&image(&bundle, None)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: cannot read: No such file or directory",
                bundle.display()
            )
        );
    }

    #[test]
    fn prepare_directory_refused() {
        let tmp = TempDir::new();
        let store = Store::new(tmp.path().join("store"));
        let err = store.prepare(&image(tmp.path(), None)).unwrap_err();
        assert!(matches!(err, ImageError::NotRegularFile { .. }), "{err}");
    }

    #[test]
    fn prepare_garbage_leaves_no_entry() {
        let (_tmp, store, bundle) = setup("x.tar", &b"garbage!".repeat(200));
        let err = store.prepare(&image(&bundle, None)).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("not a tar archive (tar header corrupt at offset 0)"),
            "{err}"
        );
        assert!(store.list().unwrap().is_empty());
        assert!(tmp_is_empty(&store));
    }

    #[test]
    fn prepare_truncated_gzip_leaves_no_entry() {
        let body: Vec<u8> = (0..100_000u32).map(|i| (i * 31 % 253) as u8).collect();
        let data = gzip(&tar_of(&[
            Item::File("a", b"a", 0o644),
            Item::File("big", &body, 0o644),
        ]));
        let (_tmp, store, bundle) = setup("x.tar.gz", &data[..data.len() / 2]);
        let err = store.prepare(&image(&bundle, None)).unwrap_err();
        assert!(matches!(err, ImageError::Truncated { .. }), "{err}");
        assert!(store.list().unwrap().is_empty());
        assert!(tmp_is_empty(&store));
    }

    #[test]
    fn prepare_size_limit_enforced() {
        let data = tar_of(&[Item::File("big", &[0u8; 4096], 0o644)]);
        let (_tmp, store, bundle) = setup("x.tar", &data);
        let store = store.with_limits(Limits {
            max_bytes: 4095,
            ..Limits::default()
        });
        let err = store.prepare(&image(&bundle, None)).unwrap_err();
        assert!(
            matches!(err, ImageError::TooLarge { limit: 4095, .. }),
            "{err}"
        );
        assert!(tmp_is_empty(&store));
    }

    #[test]
    fn prepare_zstd_refused_by_magic() {
        let (_tmp, store, bundle) = setup("x.tar.gz", &[0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]);
        let err = store.prepare(&image(&bundle, None)).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("unsupported bundle format: zstd-compressed"),
            "{err}"
        );
    }

    #[test]
    fn prepare_concurrent_same_bundle_one_entry() {
        let (_tmp, store, bundle) = setup("r.tar", &rootfs_tar());
        let img = image(&bundle, None);
        let results: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4).map(|_| s.spawn(|| store.prepare(&img))).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let first = results[0].as_ref().unwrap();
        for res in &results {
            assert_eq!(res.as_ref().unwrap(), first);
        }
        assert_eq!(store.list().unwrap().len(), 1);
        assert!(tmp_is_empty(&store));
        assert_eq!(fs::read(first.join("bin/sh")).unwrap(), b"#!sh");
    }

    #[test]
    fn prepare_replaces_incomplete_entry_dir() {
        let data = rootfs_tar();
        let (_tmp, store, bundle) = setup("r.tar", &data);
        let stale = store.root().join(sha(&data));
        fs::create_dir_all(stale.join("rootfs/junk")).unwrap();
        let rootfs = store.prepare(&image(&bundle, None)).unwrap();
        assert!(!rootfs.join("junk").exists());
        assert!(rootfs.join("bin/sh").exists());
    }

    #[test]
    fn prepare_removes_abandoned_tmp_but_not_locked_or_fresh() {
        let (_tmp, store, bundle) = setup("r.tar", &rootfs_tar());
        let tmp_root = store.root().join(TMP);
        let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
        let make = |name: &str| {
            let dir = tmp_root.join(name);
            fs::create_dir_all(dir.join("rootfs/x")).unwrap();
            File::open(&dir)
                .unwrap()
                .set_modified(two_hours_ago)
                .unwrap();
            dir
        };
        let abandoned = make("abandoned");
        let held = make("held");
        let _lock = Flock::lock(File::open(&held).unwrap(), FlockArg::LockExclusive).unwrap();
        let fresh = tmp_root.join("fresh");
        fs::create_dir_all(&fresh).unwrap();
        store.prepare(&image(&bundle, None)).unwrap();
        assert!(!abandoned.exists());
        assert!(held.exists());
        assert!(fresh.exists());
    }

    #[test]
    fn remove_entry_disappears() {
        let data = rootfs_tar();
        let (_tmp, store, bundle) = setup("r.tar", &data);
        store.prepare(&image(&bundle, None)).unwrap();
        store.remove(&sha(&data)).unwrap();
        assert!(store.list().unwrap().is_empty());
        assert!(!store.root().join(sha(&data)).exists());
        assert!(tmp_is_empty(&store));
    }

    #[test]
    fn remove_bad_or_unknown_digest_refused() {
        let tmp = TempDir::new();
        let store = Store::new(tmp.path().join("store"));
        let err = store.remove("../../etc").unwrap_err();
        assert!(matches!(err, ImageError::InvalidDigest { .. }), "{err}");
        let err = store.remove(&"0".repeat(64)).unwrap_err();
        assert!(matches!(err, ImageError::NoSuchEntry { .. }), "{err}");
    }

    #[test]
    fn list_missing_store_is_empty() {
        let tmp = TempDir::new();
        let store = Store::new(tmp.path().join("nothing"));
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn choose_root_follows_precedence() {
        let os = |s: &str| Some(OsString::from(s));
        assert_eq!(
            choose_root(os("/s"), true, os("/x"), os("/h")),
            Path::new("/s")
        );
        assert_eq!(
            choose_root(None, true, os("/x"), os("/h")),
            Path::new("/var/lib/sandboxd/store")
        );
        assert_eq!(
            choose_root(None, false, os("/x"), os("/h")),
            Path::new("/x/sandboxd/store")
        );
        assert_eq!(
            choose_root(None, false, os("rel"), os("/h")),
            Path::new("/h/.local/share/sandboxd/store")
        );
    }
}
