//! Image bundles and the content-addressed store.
//!
//! `Store::prepare` turns a bundle file (a rootfs `.tar`, `.tar.gz`/`.tgz`)
//! into a read-only directory tree the gofer can serve: it checks the
//! pinned sha256, then unpacks the bundle once into
//! `<store>/<sha256>/rootfs`, atomically, and reuses that entry afterwards.
//!
//! Unpacking is written here rather than taken from `tar::Archive::unpack`,
//! because a bundle is untrusted input: every entry is created relative to
//! the root fd, component by component with `O_NOFOLLOW`, and anything that
//! would land outside the root, write through a symlink, or create a device
//! node is refused or skipped (see `apply.rs`).
//!
//! Parts: `format` (what a bundle is), `unpack` + `apply` (tar stream to
//! tree), `tree` (fd-relative file operations), `path` (entry names),
//! `digest` (sha256), `store` (layout, atomic publish, list/remove).

#![forbid(unsafe_code)]

mod apply;
mod digest;
mod error;
mod format;
mod path;
mod store;
#[cfg(test)]
mod testutil;
mod tree;
mod unpack;

pub use error::{ImageError, Refusal};
pub use format::Format;
pub use store::{Entry, Store};
pub use unpack::{Limits, MAX_BYTES_ENV};
