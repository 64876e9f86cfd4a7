//! The errors of image preparation.
//!
//! Every message is one line that names the bundle file (or the store) and
//! the cause, e.g. `busybox.tar.gz: sha256 mismatch: pinned 12.., got ab..`.
//! Because the cause is part of the message, host I/O errors are kept in a
//! field named `cause` rather than exposed as `source()`: a caller that
//! prints the error chain prints it once.

use std::io;
use std::path::PathBuf;

/// Failure to prepare, list or remove an image.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{bundle}: cannot read: {}", describe(.cause))]
    ReadBundle { bundle: PathBuf, cause: io::Error },

    #[error("{bundle}: not a regular file")]
    NotRegularFile { bundle: PathBuf },

    #[error("{bundle}: invalid sha256 pin {pin:?}: expected 64 hex digits")]
    InvalidPin { bundle: PathBuf, pin: String },

    #[error("{bundle}: sha256 mismatch: pinned {pinned}, got {actual}")]
    PinMismatch {
        bundle: PathBuf,
        pinned: String,
        actual: String,
    },

    #[error(
        "{bundle}: file changed while it was being unpacked (sha256 was {before}, now {after})"
    )]
    ChangedDuringUnpack {
        bundle: PathBuf,
        before: String,
        after: String,
    },

    #[error("{bundle}: unsupported bundle format: {format}")]
    UnsupportedFormat {
        bundle: PathBuf,
        format: &'static str,
    },

    #[error("{bundle}: corrupt gzip stream ({detail})")]
    Decompress { bundle: PathBuf, detail: String },

    #[error("{bundle}: not a tar archive ({detail})")]
    ReadArchive { bundle: PathBuf, detail: String },

    #[error("{bundle}: truncated archive ({detail})")]
    Truncated { bundle: PathBuf, detail: String },

    #[error("{bundle}: archive has no entries")]
    EmptyArchive { bundle: PathBuf },

    #[error("{bundle}: entry {entry:?}: {refusal}")]
    UnsafeEntry {
        bundle: PathBuf,
        entry: String,
        refusal: Refusal,
    },

    #[error("{bundle}: unpacked size exceeds the limit of {limit} bytes (set SANDBOXD_MAX_IMAGE_BYTES to raise it)")]
    TooLarge { bundle: PathBuf, limit: u64 },

    #[error("{bundle}: more than {limit} entries")]
    TooManyEntries { bundle: PathBuf, limit: u64 },

    #[error("{bundle}: entry {entry:?}: cannot {op}: {}", describe(.cause))]
    WriteEntry {
        bundle: PathBuf,
        entry: String,
        op: &'static str,
        cause: io::Error,
    },

    #[error("{path}: cannot {op}: {}", describe(.cause))]
    Store {
        path: PathBuf,
        op: &'static str,
        cause: io::Error,
    },

    #[error("{path}: invalid store metadata: {detail}")]
    Metadata { path: PathBuf, detail: String },

    #[error("{digest:?}: not a store entry digest (64 lowercase hex digits)")]
    InvalidDigest { digest: String },

    #[error("{path}: no such store entry")]
    NoSuchEntry { path: PathBuf },
}

/// Why an archive entry is refused: each would let the archive write
/// outside the image root or create something the store never holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("path escapes the image root")]
    Escapes,
    #[error("absolute path")]
    Absolute,
    #[error("path is {0} bytes long, over the limit of {1}")]
    PathTooLong(usize, usize),
    #[error("writes through symlink {0:?}")]
    ThroughSymlink(String),
    #[error("parent {0:?} is not a directory")]
    ParentNotDirectory(String),
    #[error("only a directory may name the image root")]
    RootNotDirectory,
    #[error("symlink has an empty target")]
    EmptySymlink,
    #[error("hard link without a target")]
    NoLinkTarget,
    #[error("hard link target {0:?} escapes the image root")]
    LinkEscapes(String),
    #[error("hard link target {0:?} passes through symlink {1:?}")]
    LinkThroughSymlink(String, String),
    #[error("hard link target {0:?} does not exist")]
    LinkTargetMissing(String),
    #[error("hard link target {0:?} is a directory")]
    LinkTargetDirectory(String),
    #[error("header field {0} is invalid")]
    BadHeader(&'static str),
}

/// The text of an I/O error without Rust's " (os error N)" suffix.
pub(crate) fn describe(err: &io::Error) -> String {
    match err.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
        None => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_bundle_missing_file_names_file_and_cause() {
        let err = ImageError::ReadBundle {
            bundle: PathBuf::from("x.tar"),
            cause: io::Error::from_raw_os_error(libc::ENOENT),
        };
        assert_eq!(
            err.to_string(),
            "x.tar: cannot read: No such file or directory"
        );
    }

    #[test]
    fn unsafe_entry_message_quotes_entry() {
        let err = ImageError::UnsafeEntry {
            bundle: PathBuf::from("evil.tar"),
            entry: "../x".into(),
            refusal: Refusal::Escapes,
        };
        assert_eq!(
            err.to_string(),
            r#"evil.tar: entry "../x": path escapes the image root"#
        );
    }
}
