//! The gofer: the only process that touches a container's files on the
//! host. It serves the sentry over a SOCK_SEQPACKET socket (protocol in
//! [`crate::proto`]) and donates host fds of regular files so the sentry
//! reads and writes them directly with pread/pwrite. It serves several
//! roots, each under an attach name: the image ("/", read-only) and the
//! container's bind mounts (`bind0`, `bind1`, ..., read-only when asked).
//!
//! Security invariants of the server:
//! * every fid holds an `O_PATH|O_NOFOLLOW` fd opened relative to its
//!   parent's fd, one component at a time: no path string is ever resolved
//!   by the host from the root, `..` and `/` never appear in a walked name,
//!   and a symlink is never followed (walking onto one yields the link);
//! * opening a file reopens it from its parent fd with `O_NOFOLLOW` and
//!   checks it is still the inode the fid names;
//! * every change is made relative to a directory fd a fid holds, with an
//!   *at syscall that does not follow symlinks (`write.rs`), or on the
//!   held fd itself (AT_EMPTY_PATH): nothing is resolved by path again;
//! * a read-only root refuses every change and every write-mode open with
//!   EROFS, whatever the sentry asks (its mount is read-only too);
//! * an operation never involves two roots (EXDEV), and nothing gets a
//!   set-user-ID bit;
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
