//! The gofer monitor: a thread per container waits for its gofer's end of
//! the socket to close. A gofer that dies while its container runs takes
//! the container with it: the container is marked destroyed (its file
//! operations already fail with EIO, the socket being closed; `exec` is
//! refused), every process of it is killed, and its status becomes 125
//! (sandboxd failed it). The other containers keep running. The launcher,
//! which is the gofer's parent, reports the cause.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::Container;

/// Watches `sock` (a duplicate of the container's gofer socket) from a
/// thread of its own.
pub fn watch_gofer(ctr: Arc<Container>, sock: OwnedFd) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name(format!("watch-{}", ctr.spec.name))
        .spawn(move || {
            if wait_hangup(&sock) {
                destroy(&ctr);
            }
        })?;
    Ok(())
}

/// Blocks until the peer of `sock` closes (true), or polling fails.
fn wait_hangup(sock: &OwnedFd) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    loop {
        // No events asked for: replies to the client are none of our
        // business; POLLHUP and POLLERR are always reported.
        let mut fds = [PollFd::new(sock.as_fd(), PollFlags::empty())];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {
                let ev = fds[0].revents().unwrap_or(PollFlags::empty());
                if ev.intersects(PollFlags::POLLHUP | PollFlags::POLLERR) {
                    return true;
                }
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                log::warn!("watching a gofer socket: {e}; its death goes unnoticed");
                return false;
            }
        }
    }
}

/// Kills every process of `ctr` until its first process has ended.
fn destroy(ctr: &Container) {
    if ctr.finished.load(Ordering::SeqCst) {
        // It had ended already: nothing to destroy, its status stands.
        return;
    }
    ctr.gofer_dead.store(true, Ordering::SeqCst);
    // The launcher, the gofer's parent, prints the line with the cause.
    log::info!(
        "container {}: its gofer died; destroying the container",
        ctr.spec.name
    );
    ctr.kill_until(Duration::from_millis(20), || {
        ctr.finished.load(Ordering::SeqCst)
    });
}
