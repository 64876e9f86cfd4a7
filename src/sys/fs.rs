//! File operations on an fd itself (`AT_EMPTY_PATH`) that nix does not
//! wrap: they let the gofer change the exact inode it holds as an O_PATH
//! fd, without resolving a name again.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `fchmodat2(fd, "", mode, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)` (Linux
/// 6.6): works on O_PATH fds; a symlink gives EOPNOTSUPP.
pub fn chmod_fd(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    let flags = libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW;
    // SAFETY: a valid fd, a NUL-terminated empty path and plain integers.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fchmodat2,
            fd.as_raw_fd(),
            c"".as_ptr(),
            mode as libc::c_uint,
            flags,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `utimensat(fd, "", times, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)`: works
/// on O_PATH fds (Linux 5.8). Each time is (seconds, nanoseconds), where
/// nanoseconds may be `UTIME_NOW` or `UTIME_OMIT`.
pub fn utimens_fd(fd: BorrowedFd<'_>, atime: (i64, i64), mtime: (i64, i64)) -> io::Result<()> {
    let ts = |(s, ns): (i64, i64)| libc::timespec {
        tv_sec: s,
        tv_nsec: ns,
    };
    let times = [ts(atime), ts(mtime)];
    let flags = libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW;
    // SAFETY: a valid fd, a NUL-terminated empty path and an array of two
    // timespecs that outlives the call.
    let rc = unsafe { libc::utimensat(fd.as_raw_fd(), c"".as_ptr(), times.as_ptr(), flags) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
