//! Length-prefixed JSON messages with fds on a unix stream socket.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::sys::unix::{recv_with_fds, send_with_fds};

/// Largest message body, bytes.
pub const MAX_MESSAGE: usize = 1 << 20;

/// Sends `msg` with `fds`.
pub fn send<T: Serialize>(sock: BorrowedFd<'_>, msg: &T, fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    let body = serde_json::to_vec(msg).map_err(io::Error::other)?;
    if body.len() > MAX_MESSAGE {
        return Err(io::Error::from_raw_os_error(libc::EMSGSIZE));
    }
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(&body);
    send_with_fds(sock, &frame, fds)
}

/// Receives one message and the fds that came with it; None at end of
/// stream before any byte.
pub fn recv<T: DeserializeOwned>(sock: BorrowedFd<'_>) -> io::Result<Option<(T, Vec<OwnedFd>)>> {
    let mut head = [0u8; 4];
    let (n, fds) = recv_with_fds(sock, &mut head)?;
    if n == 0 {
        return Ok(None);
    }
    read_exact(sock.as_fd(), &mut head[n..])?;
    let len = u32::from_le_bytes(head) as usize;
    if len > MAX_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message of {len} bytes is too large"),
        ));
    }
    let mut body = vec![0u8; len];
    read_exact(sock, &mut body)?;
    let msg =
        serde_json::from_slice(&body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok(Some((msg, fds)))
}

/// Reads exactly `buf.len()` bytes (fds arriving mid-message are dropped).
fn read_exact(sock: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<()> {
    let mut got = 0;
    while got < buf.len() {
        let (n, _) = recv_with_fds(sock, &mut buf[got..])?;
        if n == 0 {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        got += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{Request, Response};
    use std::os::unix::net::UnixStream;

    #[test]
    fn send_recv_round_trip_with_fds() {
        let (a, b) = UnixStream::pair().unwrap();
        let (r, _w) = crate::sys::fd::pipe().unwrap();
        send(a.as_fd(), &Request::Ps, &[r.as_fd()]).unwrap();
        send(a.as_fd(), &Response::Ok, &[]).unwrap();
        let (req, fds): (Request, _) = recv(b.as_fd()).unwrap().unwrap();
        assert_eq!((req, fds.len()), (Request::Ps, 1));
        let (resp, fds): (Response, _) = recv(b.as_fd()).unwrap().unwrap();
        assert_eq!((resp, fds.len()), (Response::Ok, 0));
        drop(a);
        assert!(recv::<Response>(b.as_fd()).unwrap().is_none());
    }

    #[test]
    fn recv_oversized_length_is_refused() {
        use std::io::Write;
        let (mut a, b) = UnixStream::pair().unwrap();
        a.write_all(&u32::MAX.to_le_bytes()).unwrap();
        let err = recv::<Request>(b.as_fd()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
