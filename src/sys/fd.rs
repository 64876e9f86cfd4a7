//! File descriptors: pipes, SOCK_SEQPACKET socketpairs, sealed memfds, and
//! adopting an fd received by number on the command line.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Returns `(read end, write end)` of a new close-on-exec pipe.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` is a valid array of two ints for the kernel to fill.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both fds are open and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Returns a connected close-on-exec `AF_UNIX`/`SOCK_SEQPACKET` pair.
pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    let ty = libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC;
    // SAFETY: `fds` is a valid array of two ints for the kernel to fill.
    let rc = unsafe { libc::socketpair(libc::AF_UNIX, ty, 0, fds.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: socketpair succeeded, so both fds are open and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Returns a close-on-exec memfd holding `data`, sealed against any change
/// and positioned at offset 0.
pub fn sealed_memfd(name: &str, data: &[u8]) -> io::Result<OwnedFd> {
    let opts = memfd::MemfdOptions::default()
        .close_on_exec(true)
        .allow_sealing(true);
    let mfd = opts.create(name).map_err(memfd_error)?;
    let mut file = mfd.as_file();
    file.write_all(data)?;
    file.seek(SeekFrom::Start(0))?;
    let seals = [
        memfd::FileSeal::SealShrink,
        memfd::FileSeal::SealGrow,
        memfd::FileSeal::SealWrite,
        memfd::FileSeal::SealSeal,
    ];
    mfd.add_seals(&seals).map_err(memfd_error)?;
    Ok(mfd.into_file().into())
}

fn memfd_error(e: memfd::Error) -> io::Error {
    match e {
        memfd::Error::Create(e) | memfd::Error::AddSeals(e) | memfd::Error::GetSeals(e) => e,
    }
}

/// Reads `fd` to its end and closes it.
pub fn read_all(fd: OwnedFd) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    File::from(fd).read_to_end(&mut out)?;
    Ok(out)
}

/// Takes ownership of fd number `raw`, received on the command line.
/// Fails with EBADF unless `raw` is an open fd above stdio. The fd is made
/// close-on-exec so that nothing the role might start inherits it.
pub fn adopt(raw: RawFd) -> io::Result<OwnedFd> {
    if raw <= 2 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: F_SETFD on any integer is harmless: it fails with EBADF when
    // `raw` is not open, which is the check we need before owning it.
    let rc = unsafe { libc::fcntl(raw, libc::F_SETFD, libc::FD_CLOEXEC) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the fd is open (checked above) and by the re-exec contract
    // nothing else in this process refers to it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Whether `fd` is open in this process.
pub fn is_open(fd: &impl AsRawFd) -> bool {
    // SAFETY: F_GETFD only reads the fd flags.
    unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) >= 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_memfd_contents_read_back_and_writes_fail() {
        let fd = sealed_memfd("t", b"hello").unwrap();
        let mut file = File::from(fd);
        assert!(file.write_all(b"x").is_err());
        let mut s = String::new();
        file.read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello");
    }

    #[test]
    fn pipe_write_end_closed_read_all_returns_data() {
        let (r, w) = pipe().unwrap();
        File::from(w).write_all(b"abc").unwrap();
        assert_eq!(read_all(r).unwrap(), b"abc");
    }

    #[test]
    fn adopt_stdio_number_fails() {
        assert!(adopt(1).is_err());
    }

    #[test]
    fn seqpacket_pair_preserves_message_boundaries() {
        let (a, b) = seqpacket_pair().unwrap();
        let (mut a, mut b) = (File::from(a), File::from(b));
        a.write_all(b"one").unwrap();
        a.write_all(b"two").unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(b.read(&mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], b"one");
    }
}
