//! The CLI side: connect to a pod's control socket, send one request,
//! read the reply.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use super::{wire, Request, Response};

/// Why a control request failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("connect to the sentry at {}", .path.display())]
    Connect {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("talk to the sentry")]
    Io(#[source] io::Error),
    #[error("the sentry hung up without an answer (the pod is stopping?)")]
    HungUp,
    /// The sentry's own one-line refusal.
    #[error("{0}")]
    Refused(String),
    #[error("unexpected answer from the sentry: {0}")]
    Unexpected(String),
}

/// One connection to a sentry.
pub struct Client {
    sock: UnixStream,
}

impl Client {
    pub fn connect(path: &Path) -> Result<Client, ControlError> {
        let sock = UnixStream::connect(path).map_err(|source| ControlError::Connect {
            path: path.into(),
            source,
        })?;
        Ok(Client { sock })
    }

    /// Sends `req` with `fds`.
    pub fn send(&self, req: &Request, fds: &[BorrowedFd<'_>]) -> Result<(), ControlError> {
        wire::send(self.sock.as_fd(), req, fds).map_err(ControlError::Io)
    }

    /// The socket, to poll beside other fds.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }

    /// The next reply; a refusal becomes `ControlError::Refused`.
    pub fn recv(&self) -> Result<Response, ControlError> {
        match wire::recv::<Response>(self.sock.as_fd()).map_err(ControlError::Io)? {
            None => Err(ControlError::HungUp),
            Some((Response::Error { message }, _)) => Err(ControlError::Refused(message)),
            Some((resp, _)) => Ok(resp),
        }
    }

    /// Sends `req` and returns the one reply.
    pub fn call(path: &Path, req: &Request) -> Result<Response, ControlError> {
        let c = Client::connect(path)?;
        c.send(req, &[])?;
        c.recv()
    }
}

impl ControlError {
    /// For a reply that is not the one the request expects.
    pub fn unexpected(resp: &Response) -> ControlError {
        ControlError::Unexpected(format!("{resp:?}"))
    }
}
