//! The error pipe between a role and the launcher, so that a role failing
//! during set-up tells the user why (never a bare "EOF").
//!
//! Protocol: the role writes exactly one message and closes the pipe:
//! - one NUL byte: set-up succeeded, the role is ready;
//! - a line of text: set-up failed for that reason (the role then exits 125).
//!
//! The launcher reads to end of file: a NUL means ready, text is the error,
//! and nothing at all means the role died without a word (a signal, e.g.
//! SIGSYS from its seccomp filter); the launcher then reports how it died.
//! An explicit ready byte is needed because a role that dies also closes
//! the pipe: end of file alone cannot tell success from death.
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;

/// What the launcher learned from an error pipe.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Ready,
    Failed(String),
    /// The pipe closed with no message.
    Silent,
}

const READY: u8 = 0;

/// Role side: set-up is done. Closes the pipe.
pub fn send_ready(pipe: OwnedFd) -> io::Result<()> {
    File::from(pipe).write_all(&[READY])
}

/// Role side: set-up failed because of `line` (made one line). Closes the
/// pipe. Errors are ignored: there is nobody left to tell.
pub fn send_error(pipe: OwnedFd, line: &str) {
    let one_line = line.replace('\n', " ");
    let _ = File::from(pipe).write_all(one_line.as_bytes());
}

/// Launcher side: reads the message to its end.
pub fn receive(pipe: OwnedFd) -> io::Result<Outcome> {
    let mut buf = Vec::new();
    File::from(pipe).take(4096).read_to_end(&mut buf)?;
    Ok(decode(&buf))
}

fn decode(buf: &[u8]) -> Outcome {
    match buf {
        [] => Outcome::Silent,
        [READY] => Outcome::Ready,
        text => Outcome::Failed(String::from_utf8_lossy(text).trim_end().to_string()),
    }
}

/// `e` and its sources joined by ": ", the one-line form of an error chain.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::fd::pipe;

    #[test]
    fn receive_after_send_ready_is_ready() {
        let (r, w) = pipe().unwrap();
        send_ready(w).unwrap();
        assert_eq!(receive(r).unwrap(), Outcome::Ready);
    }

    #[test]
    fn receive_after_send_error_returns_the_line() {
        let (r, w) = pipe().unwrap();
        send_error(
            w,
            "gofer[app]: pivot_root into /x: Operation not permitted\n",
        );
        assert_eq!(
            receive(r).unwrap(),
            Outcome::Failed("gofer[app]: pivot_root into /x: Operation not permitted".into())
        );
    }

    #[test]
    fn receive_writer_closed_without_message_is_silent() {
        let (r, w) = pipe().unwrap();
        drop(w);
        assert_eq!(receive(r).unwrap(), Outcome::Silent);
    }

    #[test]
    fn chain_joins_sources() {
        #[derive(Debug, thiserror::Error)]
        #[error("open /dev/kvm")]
        struct Outer(#[source] io::Error);
        let e = Outer(io::Error::from_raw_os_error(libc::ENOENT));
        assert_eq!(
            chain(&e),
            "open /dev/kvm: No such file or directory (os error 2)"
        );
    }
}
