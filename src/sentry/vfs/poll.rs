//! Readiness for poll/select/epoll: the event bits files report. Each
//! file that can change state tells its own wait queue (`waitq.rs`);
//! signals wake the task's own waiter.

pub const POLLIN: u16 = 0x1;
pub const POLLPRI: u16 = 0x2;
pub const POLLOUT: u16 = 0x4;
pub const POLLERR: u16 = 0x8;
pub const POLLHUP: u16 = 0x10;
pub const POLLNVAL: u16 = 0x20;
pub const POLLRDNORM: u16 = 0x40;
pub const POLLRDBAND: u16 = 0x80;
pub const POLLWRNORM: u16 = 0x100;
pub const POLLWRBAND: u16 = 0x200;
pub const POLLMSG: u16 = 0x400;
pub const POLLRDHUP: u16 = 0x2000;

/// Readiness of a host fd the sentry holds (stdio), without blocking.
pub fn host_ready(fd: std::os::fd::BorrowedFd<'_>, want: u16) -> u16 {
    let mut pfd = [nix::poll::PollFd::new(
        fd,
        nix::poll::PollFlags::from_bits_truncate(want as i16),
    )];
    match nix::poll::poll(&mut pfd, nix::poll::PollTimeout::ZERO) {
        Ok(n) if n > 0 => pfd[0].revents().map_or(0, |r| r.bits() as u16),
        _ => 0,
    }
}
