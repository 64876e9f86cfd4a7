//! Safe unpacking of a tar stream into a directory: the driver.
//!
//! This file walks the archive with the `tar` crate's reader (never its
//! `unpack`, which trusts too much), bounds the work, and turns the reader's
//! failures into messages that say what is wrong with the bundle: a corrupt
//! gzip stream, a corrupt tar header and where, or a file that ends early.
//! Each entry is handed to `apply.rs`, which writes it beneath the root fd.

use std::cell::{Cell, RefCell};
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::rc::Rc;

use super::apply::{EntryFailure, Unpacker};
use super::error::{describe, ImageError};
use super::format::Format;

/// Bounds on what one bundle may unpack to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Total bytes of regular file data.
    pub max_bytes: u64,
    /// Archive entries of any type.
    pub max_entries: u64,
}

/// Environment variable overriding [`Limits::max_bytes`].
pub const MAX_BYTES_ENV: &str = "SANDBOXD_MAX_IMAGE_BYTES";

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_bytes: 16 << 30,
            max_entries: 1_000_000,
        }
    }
}

impl Limits {
    /// The defaults, with `SANDBOXD_MAX_IMAGE_BYTES` applied if it is set
    /// to a number of bytes (an invalid value is logged and ignored).
    pub fn from_env() -> Limits {
        let mut limits = Limits::default();
        if let Some(value) = std::env::var_os(MAX_BYTES_ENV) {
            match value.to_str().and_then(|v| v.trim().parse::<u64>().ok()) {
                Some(bytes) => limits.max_bytes = bytes,
                None => log::warn!("ignoring {MAX_BYTES_ENV}={value:?}: not a number of bytes"),
            }
        }
        limits
    }
}

/// How to unpack.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub limits: Limits,
    /// Keep the archive's uid/gid (only meaningful when running as root).
    pub preserve_owner: bool,
}

/// What an unpack produced.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Entries read, of any type.
    pub entries: u64,
    /// Bytes of regular file data written.
    pub bytes: u64,
    /// Device nodes, fifos and unknown entry types that were skipped.
    pub skipped: u64,
}

/// What the reader under the tar crate saw, shared because the tar crate
/// owns the reader.
#[derive(Default)]
struct StreamState {
    /// Bytes of tar data delivered.
    pos: Cell<u64>,
    /// The input ended (a read returned 0).
    eof: Cell<bool>,
    /// The first failure of the input (decompressor or file read).
    failure: RefCell<Option<(io::ErrorKind, String)>>,
}

/// The tar stream, instrumented with a [`StreamState`].
struct TarStream<R> {
    inner: R,
    state: Rc<StreamState>,
}

impl<R: Read> Read for TarStream<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(0) if !buf.is_empty() => {
                self.state.eof.set(true);
                Ok(0)
            }
            Ok(n) => {
                self.state.pos.set(self.state.pos.get() + n as u64);
                Ok(n)
            }
            Err(e) => {
                if e.kind() != io::ErrorKind::Interrupted {
                    let mut failure = self.state.failure.borrow_mut();
                    failure.get_or_insert((e.kind(), describe(&e)));
                }
                Err(e)
            }
        }
    }
}

/// Unpacks the bundle read from `source` (in `format`) beneath `root`.
/// On error the caller discards the directory: it holds a partial tree.
pub fn unpack(
    bundle: &Path,
    format: Format,
    source: impl Read,
    root: OwnedFd,
    options: &Options,
) -> Result<Stats, ImageError> {
    let state = Rc::new(StreamState::default());
    let stream = TarStream {
        inner: format.tar_stream(source),
        state: state.clone(),
    };
    let mut archive = tar::Archive::new(stream);
    let mut unpacker = Unpacker::new(bundle, root, options);
    let fail = |err: io::Error, offset: u64| stream_error(bundle, format, &state, &err, offset);
    let mut next_header = 0u64;
    for entry in archive.entries().map_err(|e| fail(e, 0))? {
        let mut entry = entry.map_err(|e| fail(e, next_header))?;
        next_header = entry
            .raw_file_position()
            .saturating_add(entry.size().div_ceil(512).saturating_mul(512));
        match unpacker.entry(&mut entry) {
            Ok(()) => {}
            Err(EntryFailure::Image(err)) => return Err(err),
            Err(EntryFailure::Read(err)) => return Err(fail(err, next_header)),
        }
    }
    if unpacker.stats().entries == 0 {
        return Err(ImageError::EmptyArchive {
            bundle: bundle.to_path_buf(),
        });
    }
    if state.eof.get() {
        let detail = format!(
            "ends at offset {} without an end-of-archive marker",
            state.pos.get()
        );
        return Err(truncated(bundle, detail));
    }
    unpacker.finish()
}

/// The error for a failure of the tar reader or of the input beneath it.
fn stream_error(
    bundle: &Path,
    format: Format,
    state: &StreamState,
    err: &io::Error,
    offset: u64,
) -> ImageError {
    let bundle = bundle.to_path_buf();
    if let Some((kind, text)) = state.failure.borrow_mut().take() {
        return match (format.is_compressed(), kind) {
            (true, io::ErrorKind::UnexpectedEof) => {
                let detail = format!(
                    "gzip stream ends early, after {} bytes of tar data",
                    state.pos.get()
                );
                truncated(&bundle, detail)
            }
            (true, io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData) => {
                ImageError::Decompress {
                    bundle,
                    detail: text,
                }
            }
            _ => ImageError::ReadBundle {
                bundle,
                cause: io::Error::new(kind, text),
            },
        };
    }
    let text = err.to_string();
    let gzip_ok = if format.is_compressed() {
        "gzip header ok, "
    } else {
        ""
    };
    if text.contains("failed to read entire block") {
        if offset == 0 {
            let detail = format!("{gzip_ok}too short for a tar header");
            return ImageError::ReadArchive { bundle, detail };
        }
        return truncated(
            &bundle,
            format!("ends inside the header at offset {offset}"),
        );
    }
    // The tar crate's own text quotes raw header bytes (untrusted, multi-line):
    // it goes to the debug log only.
    log::debug!("{}: tar reader: {text:?}", bundle.display());
    let detail = format!("{gzip_ok}tar header corrupt at offset {offset}");
    ImageError::ReadArchive { bundle, detail }
}

fn truncated(bundle: &Path, detail: String) -> ImageError {
    ImageError::Truncated {
        bundle: bundle.to_path_buf(),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;
    use crate::image::error::Refusal;
    use crate::image::testutil::{gzip, tar_of, Item, TempDir, MTIME};
    use crate::image::tree;

    const LIMITS: Limits = Limits {
        max_bytes: 1 << 20,
        max_entries: 100,
    };

    /// Unpacks `data` into `<tmp>/root`.
    fn unpack_with(
        data: &[u8],
        limits: Limits,
        preserve_owner: bool,
    ) -> (TempDir, Result<Stats, ImageError>) {
        let tmp = TempDir::new();
        let root = tmp.path().join("root");
        fs::create_dir(&root).unwrap();
        let fd = tree::open_dir(nix::fcntl::AT_FDCWD, root.as_os_str().as_encoded_bytes()).unwrap();
        let format = Format::detect(data).unwrap();
        let options = Options {
            limits,
            preserve_owner,
        };
        let res = unpack(Path::new("t.tar"), format, data, fd, &options);
        (tmp, res)
    }

    fn unpack_items(items: &[Item]) -> (TempDir, Result<Stats, ImageError>) {
        unpack_with(&tar_of(items), LIMITS, false)
    }

    fn refusal(res: Result<Stats, ImageError>) -> (String, Refusal) {
        match res {
            Err(ImageError::UnsafeEntry { entry, refusal, .. }) => (entry, refusal),
            other => panic!("expected a refused entry, got {other:?}"),
        }
    }

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn unpack_rootfs_round_trip_keeps_tree() {
        let (tmp, res) = unpack_items(&[
            Item::Dir("./", 0o755),
            Item::Dir("./bin/", 0o755),
            Item::File("./bin/sh", b"#!sh", 0o4755),
            Item::File("etc/passwd", b"root:x:0:0", 0o644),
            Item::Dir("ro", 0o555),
            Item::File("ro/inside", b"data", 0o400),
            Item::Symlink("bin/abs", "/etc/passwd"),
            Item::Symlink("bin/rel", "../etc/passwd"),
            Item::Link("bin/hard", "bin/sh"),
            Item::Fifo("dev/fifo"),
        ]);
        let stats = res.unwrap();
        let root = tmp.path().join("root");
        assert_eq!(stats.entries, 10);
        assert_eq!(stats.skipped, 1);
        assert_eq!(stats.bytes, 4 + 10 + 4);
        assert_eq!(fs::read(root.join("bin/sh")).unwrap(), b"#!sh");
        assert_eq!(mode(&root.join("bin/sh")), 0o755, "setuid must be dropped");
        assert_eq!(fs::read(root.join("etc/passwd")).unwrap(), b"root:x:0:0");
        assert_eq!(mode(&root.join("etc")), 0o755, "implicit parent");
        assert_eq!(mode(&root.join("ro")), 0o555);
        assert_eq!(fs::read(root.join("ro/inside")).unwrap(), b"data");
        assert_eq!(mode(&root.join("ro/inside")), 0o400);
        assert_eq!(
            fs::read_link(root.join("bin/abs")).unwrap(),
            Path::new("/etc/passwd")
        );
        assert_eq!(
            fs::read_link(root.join("bin/rel")).unwrap(),
            Path::new("../etc/passwd")
        );
        let sh = fs::metadata(root.join("bin/sh")).unwrap();
        let hard = fs::metadata(root.join("bin/hard")).unwrap();
        assert_eq!((sh.ino(), sh.nlink()), (hard.ino(), 2));
        assert_eq!(sh.mtime() as u64, MTIME);
        assert_eq!(
            fs::metadata(root.join("bin")).unwrap().mtime() as u64,
            MTIME
        );
        assert_eq!(
            fs::symlink_metadata(root.join("bin/abs")).unwrap().mtime() as u64,
            MTIME
        );
        assert!(!root.join("dev/fifo").exists());
    }

    #[test]
    fn unpack_preserve_owner_keeps_ids() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("unpack_preserve_owner_keeps_ids: needs root to chown, not run");
            return;
        }
        let data = tar_of(&[Item::File("f", b"x", 0o644), Item::Symlink("l", "f")]);
        let (tmp, res) = unpack_with(&data, LIMITS, true);
        res.unwrap();
        let file = fs::metadata(tmp.path().join("root/f")).unwrap();
        let link = fs::symlink_metadata(tmp.path().join("root/l")).unwrap();
        assert_eq!((file.uid(), file.gid()), (1000, 1000));
        assert_eq!((link.uid(), link.gid()), (1000, 1000));
    }

    #[test]
    fn unpack_without_preserve_owner_owns_files() {
        let (tmp, res) = unpack_items(&[Item::File("f", b"x", 0o644)]);
        res.unwrap();
        let file = fs::metadata(tmp.path().join("root/f")).unwrap();
        assert_eq!(file.uid(), nix::unistd::geteuid().as_raw());
    }

    #[test]
    fn unpack_later_entry_replaces_earlier() {
        let (tmp, res) = unpack_items(&[
            Item::File("a", b"first", 0o644),
            Item::File("a", b"second", 0o600),
            Item::Dir("d", 0o700),
            Item::File("d/x", b"x", 0o644),
            Item::Dir("d", 0o750),
            Item::Dir("gone", 0o755),
            Item::File("gone/y", b"y", 0o644),
            Item::Symlink("gone", "a"),
        ]);
        res.unwrap();
        let root = tmp.path().join("root");
        assert_eq!(fs::read(root.join("a")).unwrap(), b"second");
        assert_eq!(mode(&root.join("a")), 0o600);
        assert_eq!(
            mode(&root.join("d")),
            0o750,
            "dir over dir updates metadata"
        );
        assert!(root.join("d/x").exists(), "dir over dir keeps contents");
        assert_eq!(fs::read_link(root.join("gone")).unwrap(), Path::new("a"));
    }

    #[test]
    fn unpack_dotdot_refused() {
        let (tmp, res) = unpack_items(&[Item::File("../x", b"x", 0o644)]);
        assert_eq!(refusal(res), ("../x".into(), Refusal::Escapes));
        assert!(!tmp.path().join("x").exists());
    }

    #[test]
    fn unpack_dotdot_message_names_bundle_entry_and_cause() {
        let (_tmp, res) = unpack_items(&[Item::File("../x", b"x", 0o644)]);
        assert_eq!(
            res.unwrap_err().to_string(),
            r#"t.tar: entry "../x": path escapes the image root"#
        );
    }

    #[test]
    fn unpack_absolute_path_refused() {
        let (_tmp, res) = unpack_items(&[Item::File("/etc/x", b"x", 0o644)]);
        assert_eq!(refusal(res), ("/etc/x".into(), Refusal::Absolute));
    }

    #[test]
    fn unpack_write_through_absolute_symlink_refused() {
        let outside = TempDir::new();
        let target = outside.path().to_str().unwrap().to_string();
        let (_tmp, res) = unpack_items(&[
            Item::Symlink("a", &target),
            Item::File("a/passwd", b"pwned", 0o644),
        ]);
        assert_eq!(
            refusal(res),
            ("a/passwd".into(), Refusal::ThroughSymlink("a".into()))
        );
        assert!(!outside.path().join("passwd").exists());
    }

    #[test]
    fn unpack_write_through_dotdot_symlink_refused() {
        let (tmp, res) = unpack_items(&[Item::Symlink("a", ".."), Item::File("a/x", b"x", 0o644)]);
        assert_eq!(
            refusal(res),
            ("a/x".into(), Refusal::ThroughSymlink("a".into()))
        );
        assert!(!tmp.path().join("x").exists());
    }

    #[test]
    fn unpack_directory_through_symlink_refused() {
        let outside = TempDir::new();
        let target = outside.path().to_str().unwrap().to_string();
        let (_tmp, res) = unpack_items(&[Item::Symlink("a", &target), Item::Dir("a/sub", 0o755)]);
        assert_eq!(refusal(res).1, Refusal::ThroughSymlink("a".into()));
        assert!(!outside.path().join("sub").exists());
    }

    #[test]
    fn unpack_file_over_symlink_replaces_link_not_target() {
        let outside = TempDir::new();
        let victim = outside.path().join("victim");
        fs::write(&victim, b"safe").unwrap();
        let target = victim.to_str().unwrap().to_string();
        let (tmp, res) = unpack_items(&[
            Item::Symlink("a", &target),
            Item::File("a", b"pwned", 0o644),
        ]);
        res.unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"safe");
        assert_eq!(fs::read(tmp.path().join("root/a")).unwrap(), b"pwned");
    }

    #[test]
    fn unpack_hard_link_outside_refused() {
        let (_tmp, res) = unpack_items(&[Item::Link("h", "../../x")]);
        assert_eq!(
            refusal(res),
            ("h".into(), Refusal::LinkEscapes("../../x".into()))
        );
    }

    #[test]
    fn unpack_hard_link_message_names_target() {
        let (_tmp, res) = unpack_items(&[Item::Link("h", "/etc/shadow")]);
        assert_eq!(
            res.unwrap_err().to_string(),
            r#"t.tar: entry "h": hard link target "/etc/shadow" escapes the image root"#
        );
    }

    #[test]
    fn unpack_hard_link_through_symlink_refused() {
        let (_tmp, res) = unpack_items(&[Item::Symlink("s", "/etc"), Item::Link("h", "s/passwd")]);
        assert_eq!(
            refusal(res).1,
            Refusal::LinkThroughSymlink("s/passwd".into(), "s".into())
        );
    }

    #[test]
    fn unpack_hard_link_to_symlink_links_the_symlink() {
        let (tmp, res) = unpack_items(&[Item::Symlink("s", "/etc/passwd"), Item::Link("h", "s")]);
        res.unwrap();
        let h = fs::symlink_metadata(tmp.path().join("root/h")).unwrap();
        assert!(h.file_type().is_symlink());
        assert_eq!(
            fs::read_link(tmp.path().join("root/h")).unwrap(),
            Path::new("/etc/passwd")
        );
    }

    #[test]
    fn unpack_hard_link_missing_target_refused() {
        let (_tmp, res) = unpack_items(&[Item::Link("h", "nothere")]);
        assert_eq!(refusal(res).1, Refusal::LinkTargetMissing("nothere".into()));
    }

    #[test]
    fn unpack_garbage_not_a_tar() {
        let garbage = b"this is not an archive at all\n".repeat(100);
        let (_tmp, res) = unpack_with(&garbage, LIMITS, false);
        assert_eq!(
            res.unwrap_err().to_string(),
            "t.tar: not a tar archive (tar header corrupt at offset 0)"
        );
    }

    #[test]
    fn unpack_gzip_corrupt_second_header_reports_offset() {
        let mut data = tar_of(&[
            Item::File("a", &[7u8; 512], 0o644),
            Item::File("b", b"b", 0o644),
        ]);
        data[1024 + 100] ^= 0xff;
        let (_tmp, res) = unpack_with(&gzip(&data), LIMITS, false);
        assert_eq!(
            res.unwrap_err().to_string(),
            "t.tar: not a tar archive (gzip header ok, tar header corrupt at offset 1024)"
        );
    }

    #[test]
    fn unpack_truncated_gzip_reported() {
        let body: Vec<u8> = (0..200_000u32).map(|i| (i * 7919 % 251) as u8).collect();
        let data = gzip(&tar_of(&[Item::File("big", &body, 0o644)]));
        let (_tmp, res) = unpack_with(&data[..data.len() / 2], LIMITS, false);
        let err = res.unwrap_err();
        assert!(matches!(err, ImageError::Truncated { .. }), "{err}");
        assert!(err.to_string().contains("gzip stream ends early"), "{err}");
    }

    #[test]
    fn unpack_corrupt_gzip_header_reported() {
        let mut data = gzip(&tar_of(&[Item::File("a", b"hello", 0o644)]));
        data[2] = 9; // compression method: not deflate
        let (_tmp, res) = unpack_with(&data, LIMITS, false);
        let err = res.unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.tar: corrupt gzip stream (invalid gzip header)"
        );
    }

    #[test]
    fn unpack_missing_end_marker_is_truncated() {
        let data = tar_of(&[Item::File("a", b"hello", 0o644)]);
        let (_tmp, res) = unpack_with(&data[..data.len() - 1024], LIMITS, false);
        assert_eq!(
            res.unwrap_err().to_string(),
            "t.tar: truncated archive (ends at offset 1024 without an end-of-archive marker)"
        );
    }

    #[test]
    fn unpack_file_data_cut_short_is_truncated() {
        let data = tar_of(&[Item::File("a", &[1u8; 2000], 0o644)]);
        let (_tmp, res) = unpack_with(&data[..512 + 1000], LIMITS, false);
        assert_eq!(
            res.unwrap_err().to_string(),
            r#"t.tar: truncated archive (entry "a" ends after 1000 of 2000 bytes)"#
        );
    }

    #[test]
    fn unpack_empty_archive_refused() {
        let (_tmp, res) = unpack_items(&[]);
        assert!(matches!(res, Err(ImageError::EmptyArchive { .. })));
    }

    #[test]
    fn unpack_over_size_limit_refused() {
        let limits = Limits {
            max_bytes: 1000,
            ..LIMITS
        };
        let data = tar_of(&[
            Item::File("a", &[0u8; 600], 0o644),
            Item::File("b", &[0u8; 600], 0o644),
        ]);
        let (tmp, res) = unpack_with(&data, limits, false);
        assert!(matches!(res, Err(ImageError::TooLarge { limit: 1000, .. })));
        assert!(!tmp.path().join("root/b").exists());
    }

    #[test]
    fn unpack_over_entry_limit_refused() {
        let limits = Limits {
            max_entries: 2,
            ..LIMITS
        };
        let data = tar_of(&[
            Item::Dir("a", 0o755),
            Item::Dir("b", 0o755),
            Item::Dir("c", 0o755),
        ]);
        let (_tmp, res) = unpack_with(&data, limits, false);
        assert!(matches!(
            res,
            Err(ImageError::TooManyEntries { limit: 2, .. })
        ));
    }

    #[test]
    fn unpack_overlong_path_refused() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(0);
        header.set_mode(0o644);
        let long = "d/".repeat(2100) + "f";
        builder.append_data(&mut header, &long, &b""[..]).unwrap();
        let (_tmp, res) = unpack_with(&builder.into_inner().unwrap(), LIMITS, false);
        assert_eq!(refusal(res).1, Refusal::PathTooLong(4201, 4096));
    }
}
