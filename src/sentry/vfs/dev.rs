//! The guest's /dev: character devices the sentry implements itself (null,
//! zero, full, random, urandom) and the stdin/stdout/stderr and fd/N
//! aliases of the opening process's descriptors, /dev/tty and /dev/ptmx
//! (the terminals are in `tty.rs`, /dev/pts in `tty_pts.rs`). It is laid over whatever
//! /dev directory the image has: host device nodes never reach the guest.

use std::sync::Arc;

use super::file::FileOps;
use super::proc::ProcNode;
use crate::abi::types::{Stat, S_IFCHR, S_IFDIR, S_IFLNK};
use crate::abi::{Errno, SysResult};

/// A synthetic file of the sentry's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Synth {
    /// The /dev directory.
    DevDir,
    Device(Device),
    /// /dev/stdin etc.: a symlink to /dev/fd/N; /dev/fd/N opens the
    /// process's descriptor N.
    FdLink(i32),
    FdDir,
    Fd(i32),
    /// A file or directory of /proc (`proc.rs`).
    Proc(ProcNode),
    /// A file or directory of /sys (`sysfs.rs`).
    Sys(super::sysfs::SysNode),
    /// /dev/ptmx and /dev/pts/ptmx: opening one makes a new pty master.
    Ptmx,
    /// /dev/pts, the root of the container's devpts mount.
    PtsDir,
    /// /dev/pts/N: the slave of pty N.
    Pts(u32),
    /// /dev/tty: the opener's controlling terminal.
    Tty,
}

/// A character device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    Null,
    Zero,
    Full,
    Random,
    Urandom,
}

/// Entries of /dev: (name, what).
pub const DEV_ENTRIES: &[(&str, Synth)] = &[
    ("fd", Synth::FdDir),
    ("full", Synth::Device(Device::Full)),
    ("null", Synth::Device(Device::Null)),
    ("ptmx", Synth::Ptmx),
    ("random", Synth::Device(Device::Random)),
    ("stderr", Synth::FdLink(2)),
    ("stdin", Synth::FdLink(0)),
    ("stdout", Synth::FdLink(1)),
    ("tty", Synth::Tty),
    ("urandom", Synth::Device(Device::Urandom)),
    ("zero", Synth::Device(Device::Zero)),
];

/// The device a device node made by mknod(2) stands for, by its number
/// (Linux's encoding): the memory devices the sentry has; None for any
/// other (opening it is ENXIO, as for a device no driver serves).
pub fn device_of_rdev(rdev: u64) -> Option<Device> {
    [
        Device::Null,
        Device::Zero,
        Device::Full,
        Device::Random,
        Device::Urandom,
    ]
    .into_iter()
    .find(|&d| self::rdev(d) == rdev)
}

/// Device numbers as on Linux (major 1: memory devices).
fn rdev(d: Device) -> u64 {
    let minor = match d {
        Device::Null => 3,
        Device::Zero => 5,
        Device::Full => 7,
        Device::Random => 8,
        Device::Urandom => 9,
    };
    (1 << 8) | minor
}

/// The metadata of a synthetic file.
pub fn stat_of(s: Synth, ino: u64) -> Stat {
    let (mode, rdev, size) = match s {
        Synth::DevDir | Synth::FdDir => (S_IFDIR | 0o755, 0, 0),
        Synth::Proc(p) => (super::proc::mode_of(p), 0, 0),
        Synth::Sys(s) => (s.mode(), 0, 0),
        Synth::Device(d) => (S_IFCHR | 0o666, rdev(d), 0),
        Synth::FdLink(n) => (S_IFLNK | 0o777, 0, format!("fd/{n}").len() as i64),
        Synth::Fd(_) => (S_IFLNK | 0o700, 0, 0),
        // Terminals (major 5: /dev/tty 5:0, /dev/ptmx 5:2); a slave's
        // metadata comes from its pty (`tty_pts.rs`).
        Synth::Tty => (S_IFCHR | 0o666, 0x500, 0),
        Synth::Ptmx => (S_IFCHR | 0o666, 0x502, 0),
        Synth::PtsDir => return super::tty_pts::root_stat(),
        Synth::Pts(_) => (S_IFCHR | 0o620, 0, 0),
    };
    Stat {
        dev: 5,
        ino,
        mode,
        nlink: 1,
        rdev,
        size,
        blksize: 4096,
        ..Default::default()
    }
}

/// The target of a synthetic symlink.
pub fn link_of(s: Synth) -> Option<Vec<u8>> {
    match s {
        Synth::FdLink(n) => Some(format!("fd/{n}").into_bytes()),
        _ => None,
    }
}

impl FileOps for Device {
    fn read(&self, buf: &mut [u8], _off: u64) -> SysResult<usize> {
        match self {
            Device::Null => Ok(0),
            Device::Zero | Device::Full => {
                buf.fill(0);
                Ok(buf.len())
            }
            Device::Random | Device::Urandom => {
                // SAFETY: getrandom writes at most `buf.len()` bytes.
                let n =
                    unsafe { libc::getrandom(buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
                if n < 0 {
                    return Err(Errno::last());
                }
                Ok(n as usize)
            }
        }
    }

    fn write(&self, buf: &[u8], _off: u64) -> SysResult<usize> {
        match self {
            Device::Full => Err(Errno::ENOSPC),
            _ => Ok(buf.len()),
        }
    }

    fn stat(&self) -> SysResult<Stat> {
        Ok(stat_of(Synth::Device(*self), 0))
    }
}

/// The open file of a device.
pub fn open_device(d: Device) -> Arc<dyn FileOps> {
    Arc::new(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_behave_like_linux() {
        let mut buf = [1u8; 8];
        assert_eq!(Device::Null.read(&mut buf, 0), Ok(0));
        assert_eq!(Device::Zero.read(&mut buf, 0), Ok(8));
        assert_eq!(buf, [0; 8]);
        assert_eq!(Device::Full.write(b"x", 0), Err(Errno::ENOSPC));
        assert_eq!(Device::Null.write(b"xyz", 0), Ok(3));
        assert_eq!(stat_of(Synth::Device(Device::Null), 1).rdev, 0x103);
    }
}
