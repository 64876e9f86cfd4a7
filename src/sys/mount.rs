//! Mounts for a role's private root: making mounts private, read-only bind
//! mounts, a tmpfs, and `pivot_root` into a directory.

use std::io;
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};

fn io_err(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// Makes every mount of this (new) mount namespace private, so nothing done
/// here propagates back to the host.
pub fn make_all_private() -> io::Result<()> {
    let flags = MsFlags::MS_REC | MsFlags::MS_PRIVATE;
    mount(None::<&str>, "/", None::<&str>, flags, None::<&str>).map_err(io_err)
}

/// Bind-mounts `src` (not the mounts below it) on `dst`, then makes that
/// mount nosuid, nodev, noexec and, with `readonly`, read-only. Flags the
/// kernel locks on the source mount (atime flags, in a user namespace) are
/// carried over, or the remount is refused.
pub fn bind(src: &Path, dst: &Path, readonly: bool) -> io::Result<()> {
    mount(Some(src), dst, None::<&str>, MsFlags::MS_BIND, None::<&str>).map_err(io_err)?;
    let st = nix::sys::statvfs::statvfs(dst).map_err(io_err)?;
    let kept = st.flags().bits() as libc::c_ulong
        & (libc::MS_NOATIME | libc::MS_NODIRATIME | libc::MS_RELATIME);
    let mut flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | readonly_flags();
    if !readonly {
        flags.remove(MsFlags::MS_RDONLY);
    }
    let flags = flags | MsFlags::from_bits_truncate(kept);
    mount(None::<&str>, dst, None::<&str>, flags, None::<&str>).map_err(io_err)
}

fn readonly_flags() -> MsFlags {
    MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC
}

/// Mounts a small empty tmpfs named `name` on `target`.
pub fn mount_empty_tmpfs(name: &str, target: &Path) -> io::Result<()> {
    mount_small_tmpfs(name, target, 16)
}

/// Mounts an empty tmpfs named `name` on `target` with room for `inodes`
/// inodes and no data (directories to mount on).
pub fn mount_small_tmpfs(name: &str, target: &Path, inodes: usize) -> io::Result<()> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let options = format!("size=16k,nr_inodes={inodes},mode=0555");
    mount(
        Some(name),
        target,
        Some("tmpfs"),
        flags,
        Some(options.as_str()),
    )
    .map_err(io_err)
}

/// Remounts the (non-bind) mount at `target` read-only.
pub fn remount_readonly(target: &Path) -> io::Result<()> {
    let flags = MsFlags::MS_REMOUNT | readonly_flags();
    mount(None::<&str>, target, None::<&str>, flags, None::<&str>).map_err(io_err)
}

/// Makes the mount at `dir` this process's root and detaches the old root,
/// so that nothing outside `dir` stays reachable. Ends with cwd = "/".
pub fn pivot_into(dir: &Path) -> io::Result<()> {
    nix::unistd::chdir(dir).map_err(io_err)?;
    // Stack the old root under the new one at ".", then detach it: no
    // directory for the old root is needed inside `dir`.
    nix::unistd::pivot_root(".", ".").map_err(io_err)?;
    umount2(".", MntFlags::MNT_DETACH).map_err(io_err)?;
    nix::unistd::chdir("/").map_err(io_err)
}
