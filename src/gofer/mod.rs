//! The gofer: the only process that touches a container's image files. It
//! serves the sentry over a SOCK_SEQPACKET socket (protocol in
//! [`crate::proto`]) and donates host fds of regular files so the sentry
//! reads them directly with pread.
//!
//! Security invariants of the server:
//! * every fid holds an `O_PATH|O_NOFOLLOW` fd opened relative to its
//!   parent's fd, one component at a time: no path string is ever resolved
//!   by the host from the root, `..` and `/` never appear in a walked name,
//!   and a symlink is never followed (walking onto one yields the link);
//! * opening a file reopens it from its parent fd with `O_NOFOLLOW` and
//!   checks it is still the inode the fid names;
//! * a read-only export refuses every write-mode open with EROFS (the
//!   mount itself is read-only too);
//! * bounded memory: at most [`MAX_FIDS`] fids, packets of at most
//!   [`crate::proto::MAX_MESSAGE`] bytes.

mod client;
mod server;
mod socket;
mod write;

pub use crate::proto::{Dirent, Fid, Owner, SetAttr, Statfs, IMAGE_ROOT};
pub use client::GoferClient;
pub use server::{serve, GoferError, Root, MAX_FIDS};

#[cfg(test)]
mod tests;
