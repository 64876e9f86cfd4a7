//! inotify_init, inotify_init1, inotify_add_watch and inotify_rm_watch.
//! The watches and event queues are `vfs/inotify.rs`.

use std::sync::Arc;

use super::event::install;
use super::file::{fd_arg, lookup_at, path_arg, permitted, AT_FDCWD};
use crate::abi::{Errno, SysResult};
use crate::sentry::kernel::Task;
use crate::sentry::vfs::inotify::{
    Inotify, ALL_INOTIFY_BITS, IN_DONT_FOLLOW, IN_MASK_ADD, IN_MASK_CREATE, IN_ONLYDIR,
};
use crate::sentry::vfs::{Follow, OpenFile};

const IN_NONBLOCK: u64 = libc::O_NONBLOCK as u64;
const IN_CLOEXEC: u64 = libc::O_CLOEXEC as u64;

/// Implements inotify_init1(2).
pub fn sys_inotify_init1(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    if a[0] & !(IN_NONBLOCK | IN_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    install(t, Inotify::new(), libc::O_RDONLY as u32, a[0])
}

/// Implements inotify_init(2).
pub fn sys_inotify_init(t: &mut Task, _a: [u64; 6]) -> SysResult<u64> {
    sys_inotify_init1(t, [0; 6])
}

/// The inotify instance behind `fd` (EINVAL for another kind of file).
fn instance(file: &OpenFile) -> SysResult<&Inotify> {
    file.ops
        .as_any()
        .and_then(|a| a.downcast_ref::<Inotify>())
        .ok_or(Errno::EINVAL)
}

/// Implements inotify_add_watch(2): the path must be readable; IN_ONLYDIR
/// wants a directory, IN_DONT_FOLLOW does not follow a final symlink.
pub fn sys_inotify_add_watch(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let mask = a[2] as u32;
    if mask & IN_MASK_ADD != 0 && mask & IN_MASK_CREATE != 0 {
        return Err(Errno::EINVAL);
    }
    if mask & ALL_INOTIFY_BITS == 0 {
        return Err(Errno::EINVAL);
    }
    let file: Arc<OpenFile> = t.fds.get(fd_arg(a[0]))?;
    let inotify = instance(&file)?;
    let path = path_arg(t, a[1])?;
    let follow = if mask & IN_DONT_FOLLOW != 0 {
        Follow::No
    } else {
        Follow::Yes
    };
    let node = lookup_at(t, AT_FDCWD, &path, follow)?;
    if mask & IN_ONLYDIR != 0 && !node.stat.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    if !permitted(t, &node.current_stat(), 4) {
        return Err(Errno::EACCES);
    }
    Ok(inotify.add_watch(&node, mask)? as u64)
}

/// Implements inotify_rm_watch(2).
pub fn sys_inotify_rm_watch(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let file = t.fds.get(fd_arg(a[0]))?;
    instance(&file)?.rm_watch(a[1] as i32).map(|_| 0)
}
