//! The sentry's file system layer: dentries of the image served by the
//! gofer, path resolution, open file descriptions and fd tables.
//!
//! The image rootfs is immutable (store entries are never written), so its
//! dentries, stat results and symlink targets are cached for the life of
//! the sandbox without revalidation.

pub mod anon;
pub mod dev;
pub mod epoll;
pub mod eventfd;
mod file;
mod gofer;
pub mod locks;
pub mod memfd;
pub mod memfile;
mod path;
pub mod pipe;
pub mod poll;
pub mod signalfd;
pub mod timerfd;
pub mod tmpfs;
pub mod waitq;

pub use file::{DirFile, FdTable, FileOps, HostFile, OpenFile, StdioFile, FD_CLOEXEC};
pub use gofer::{GoferFs, Node};
pub use path::{resolve, resolve_parent, Follow, MAX_PATH, MAX_SYMLINKS};
