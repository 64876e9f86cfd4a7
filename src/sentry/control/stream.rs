//! A host fd handed to the sentry over the control socket (the stdio of an
//! exec'd process, a container's output pipe), given to the guest as a
//! stream file. The guest never gets the host fd; the sentry reads and
//! writes it on the guest's behalf (`vfs/hostfd.rs`: interruptible,
//! O_NONBLOCK honoured, pollable and epollable).

use std::os::fd::OwnedFd;

use crate::abi::types::{Stat, S_IFIFO};
use crate::abi::SysResult;
use crate::sentry::vfs::{hostfd, FileOps};

pub struct HostStream {
    stream: hostfd::Stream<OwnedFd>,
}

impl HostStream {
    pub fn new(fd: OwnedFd) -> HostStream {
        HostStream {
            stream: hostfd::Stream::new(fd),
        }
    }
}

impl FileOps for HostStream {
    fn read(&self, buf: &mut [u8], _off: u64) -> SysResult<usize> {
        self.stream.read(buf, false)
    }

    // The reader went away: the guest gets EPIPE (and SIGPIPE from the
    // syscall layer, as for a pipe).
    fn write(&self, buf: &[u8], _off: u64) -> SysResult<usize> {
        self.stream.write(buf, false)
    }

    fn read_stream(&self, buf: &mut [u8], nonblock: bool) -> SysResult<usize> {
        self.stream.read(buf, nonblock)
    }

    fn write_stream(&self, buf: &[u8], nonblock: bool) -> SysResult<usize> {
        self.stream.write(buf, nonblock)
    }

    fn stat(&self) -> SysResult<Stat> {
        // The guest sees a pipe (no terminal through the control socket).
        Ok(Stat {
            mode: S_IFIFO | 0o600,
            nlink: 1,
            blksize: 4096,
            ..Default::default()
        })
    }

    fn seekable(&self) -> bool {
        false
    }

    fn poll(&self, want: u16) -> u16 {
        crate::sentry::vfs::poll::host_ready(self.stream.fd(), want)
    }

    fn epollable(&self) -> bool {
        true
    }
}
