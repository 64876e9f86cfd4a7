//! mount(2) and umount2(2) inside the guest, in the calling container's
//! mount namespace (its tree), with CAP_SYS_ADMIN: new tmpfs mounts
//! (`size=`, `mode=`, `uid=`, `gid=`), remounts that change the per-mount
//! flags (read-only, nosuid, nodev, noexec), propagation changes (every
//! mount here is private already), and unmounts with EBUSY and
//! MNT_DETACH, bind mounts (MS_BIND, with MS_REC the mounts under the
//! source too) and moves (MS_MOVE). Other file system types are ENODEV.

use super::file::{lookup_at, path_arg, AT_FDCWD};
use crate::abi::{Errno, SysResult};
use crate::sentry::kernel::{Missing, Task};
use crate::sentry::vfs::guest_mount::{TmpfsOptions, MOUNT_FLAGS};
use crate::sentry::vfs::Follow;

const CAP_SYS_ADMIN: u32 = 21;
const MS_REMOUNT: u64 = 32;
const MS_BIND: u64 = 4096;
const MS_MOVE: u64 = 8192;
const MS_REC: u64 = 16384;
const MS_SILENT: u64 = 32768;
const MS_RELATIME: u64 = 1 << 21;
/// MS_UNBINDABLE, MS_PRIVATE, MS_SLAVE, MS_SHARED.
const MS_PROPAGATION: u64 = 0xf << 17;
const MS_MGC_MSK: u64 = 0xffff_0000;
const MS_MGC_VAL: u64 = 0xc0ed_0000;
const MNT_FORCE: u64 = 1;
const MNT_DETACH: u64 = 2;
const MNT_EXPIRE: u64 = 4;
const UMOUNT_NOFOLLOW: u64 = 8;
/// Longest option string read (a page, as Linux).
const DATA_MAX: usize = 4096;

/// A string argument, or `none` for NULL.
fn string_arg(t: &mut Task, addr: u64, none: &str) -> SysResult<String> {
    if addr == 0 {
        return Ok(none.to_string());
    }
    let b = t.mm.read_cstr(addr, DATA_MAX)?;
    Ok(String::from_utf8_lossy(&b).into_owned())
}

/// Logs a mount operation this sentry does not implement and fails with
/// ENOSYS: the caller learns it is missing, not that it was refused.
fn not_implemented(t: &Task, what: &str, flag: u64) -> Errno {
    if t.k.first_unimplemented(Missing::MountFlag(flag)) {
        log::warn!("mount: {what} is not implemented (pid {}): ENOSYS", t.pid);
    }
    Errno::ENOSYS
}

/// Implements mount(2).
pub fn sys_mount(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let mut flags = a[3];
    if flags & MS_MGC_MSK == MS_MGC_VAL {
        flags &= !MS_MGC_MSK;
    }
    let target = path_arg(t, a[1])?;
    let node = lookup_at(t, AT_FDCWD, &target, Follow::Yes)?;
    if !t.creds.has_cap(CAP_SYS_ADMIN) {
        return Err(Errno::EPERM);
    }
    if flags & MS_REMOUNT != 0 {
        let data = string_arg(t, a[4], "")?;
        if flags & MS_BIND == 0 && !data.is_empty() {
            // Changing a file system's own options is not implemented.
            return Err(t.unimplemented_option("mount remount data", 0));
        }
        return t.fs.remount(&node, flags).map(|_| 0);
    }
    if flags & (MS_BIND | MS_MOVE) != 0 {
        // Other flags are ignored, as Linux does (a read-only bind is a
        // bind and then a remount).
        let source = path_arg(t, a[0])?;
        let from = lookup_at(t, AT_FDCWD, &source, Follow::Yes)?;
        return match flags & MS_MOVE != 0 {
            true => t.fs.move_mount(&from, &node),
            false => t.fs.bind_guest(&from, &node, flags & MS_REC != 0),
        }
        .map(|_| 0);
    }
    if flags & MS_PROPAGATION != 0 {
        // Nothing propagates between mounts here: every mount is private.
        return match t.fs.is_mount_point(&node) {
            true => Ok(0),
            false => Err(Errno::EINVAL),
        };
    }
    if a[2] == 0 {
        return Err(Errno::EINVAL);
    }
    if string_arg(t, a[2], "")? != "tmpfs" {
        return Err(Errno::ENODEV);
    }
    let known = MOUNT_FLAGS | MS_SILENT | MS_RELATIME | MS_REC;
    if flags & !known != 0 {
        return Err(t.unimplemented_option("mount", flags & !known));
    }
    let data = string_arg(t, a[4], "")?;
    let ram = t.k.memory.size();
    let opts = TmpfsOptions::parse(&data, ram, t.creds.euid, t.creds.egid).map_err(|e| {
        log::debug!("mount: {e} refused");
        Errno::EINVAL
    })?;
    let source = string_arg(t, a[0], "none")?;
    t.fs.mount_guest_tmpfs(&node, &opts, flags, source)?;
    Ok(0)
}

/// Implements umount2(2).
pub fn sys_umount2(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let flags = a[1];
    if flags & !(MNT_FORCE | MNT_DETACH | MNT_EXPIRE | UMOUNT_NOFOLLOW) != 0 {
        return Err(Errno::EINVAL);
    }
    let follow = if flags & UMOUNT_NOFOLLOW != 0 {
        Follow::No
    } else {
        Follow::Yes
    };
    let target = path_arg(t, a[0])?;
    let node = lookup_at(t, AT_FDCWD, &target, follow)?;
    if !t.creds.has_cap(CAP_SYS_ADMIN) {
        return Err(Errno::EPERM);
    }
    if flags & MNT_EXPIRE != 0 && flags & (MNT_FORCE | MNT_DETACH) != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & MNT_EXPIRE != 0 {
        return Err(not_implemented(t, "MNT_EXPIRE", MNT_EXPIRE));
    }
    t.fs.umount(node, flags & MNT_DETACH != 0).map(|_| 0)
}
