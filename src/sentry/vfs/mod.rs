//! The sentry's file system layer: a container's tree of dentries (the
//! root overlay of the image under a memory layer, tmpfs mounts, the
//! sentry's /dev and /proc), path resolution, open file descriptions and
//! fd tables.
//!
//! The image rootfs is immutable (store entries are never written), so its
//! dentries, stat results and symlink targets are cached for the life of
//! the sandbox without revalidation; every change lives in memory. Bind
//! mounts of host directories are the exception: revalidated on every
//! lookup, changed on the host through the gofer (`bind.rs`).

pub mod anon;
mod bind;
pub mod dev;
pub mod epoll;
pub mod eventfd;
mod file;
mod gofer;
pub mod guest_mount;
pub mod hostfd;
pub mod inotify;
pub mod locks;
pub mod memfd;
pub mod memfile;
pub mod mount;
mod node;
pub mod opath;
mod overlay;
mod path;
pub mod pipe;
pub mod poll;
pub mod proc;
mod setup;
pub mod signalfd;
pub mod socket;
pub mod sysfs;
#[cfg(test)]
mod tests;
pub mod timerfd;
pub mod tmpfs;
pub mod tty;
pub mod tty_console;
pub mod tty_ldisc;
pub mod tty_pts;
pub mod volume;
pub mod waitq;

pub use bind::{BindFile, NewEntry};
pub use file::{DirFile, FdTable, FileOps, HostFile, OpenFile, StdioFile, FD_CLOEXEC, MAX_FDS};
pub use gofer::{Dirent, GoferFs};
pub use node::{Node, NOFID};
pub use path::{resolve, resolve_parent, resolve_with, Follow, Rules, MAX_PATH, MAX_SYMLINKS};
