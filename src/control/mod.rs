//! The control protocol between the CLI and a running sentry, over the
//! unix stream socket `<state dir>/control.sock`.
//!
//! Framing: each message is a 4-byte little-endian length and that many
//! bytes of JSON (at most [`MAX_MESSAGE`]); fds ride with a message's first
//! byte (SCM_RIGHTS). One connection carries one request and its
//! response(s): `exec` answers `ExecStarted` at once and `ExecExited` when
//! the process ends, everything else answers once. The sentry serves each
//! connection on a thread of its own.
//!
//! Trust: the socket lives in a 0700 directory, so only the pod's owner
//! can connect. The CLI treats replies as untrusted input (a compromised
//! sentry may send anything): sizes are bounded and replies are only
//! printed, never acted on beyond that.
#![forbid(unsafe_code)]

pub mod client;
pub mod wire;

use serde::{Deserialize, Serialize};

pub use wire::MAX_MESSAGE;

/// What the CLI asks the sentry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Start the containers (the sentry waits for this once it is ready:
    /// Created -> Running). With `output_fds`, the message carries one fd
    /// per container (in the pod's order) that becomes its stdout and
    /// stderr.
    Start { output_fds: bool },
    /// Processes of every container.
    Ps,
    /// Run a new process in a container; the message carries its stdin,
    /// stdout and stderr.
    Exec(ExecRequest),
    /// Send `signal` to a container's first process (every process with
    /// `all`); every container when `container` is None.
    Signal {
        container: Option<String>,
        signal: i32,
        all: bool,
    },
    /// Park every guest thread.
    Pause,
    /// Let them run again.
    Resume,
    /// Memory and CPU use.
    Stats,
    /// A new window size for pty `tty` (its /dev/pts number) of a
    /// container (the launcher's or `exec -t`'s terminal changed size).
    Resize {
        container: Option<String>,
        tty: u32,
        rows: u16,
        cols: u16,
    },
}

/// A process to start in a running container.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRequest {
    /// None: the pod's only container (an error if it has several).
    pub container: Option<String>,
    pub argv: Vec<String>,
    /// "K=V" pairs added to (or replacing those of) the container's env.
    pub env: Vec<String>,
    /// None: the container's workdir.
    pub workdir: Option<String>,
    /// Run on a new pty of the container: the passed stdin is copied to
    /// its master and the master to the passed stdout.
    #[serde(default)]
    pub tty: bool,
    /// The pty's first window size (rows, columns).
    #[serde(default)]
    pub winsize: Option<(u16, u16)>,
}

/// What the sentry answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Response {
    Ok,
    /// The request failed; one line saying why.
    Error {
        message: String,
    },
    Ps {
        processes: Vec<ProcessInfo>,
    },
    /// The exec'd process runs with this pid in its container.
    ExecStarted {
        pid: i32,
        /// With `tty`: the pty's number, for `Resize`.
        #[serde(default)]
        tty: Option<u32>,
    },
    /// It ended: the shell-style status (128+N for signal N).
    ExecExited {
        status: i32,
    },
    Stats(Stats),
}

/// One guest process, as `ps` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub container: String,
    pub pid: i32,
    pub ppid: i32,
    /// "running", "stopped" (job control), "paused" or "zombie".
    pub state: String,
    pub threads: usize,
    /// CPU time, user plus system, in nanoseconds.
    pub cpu_ns: u64,
    /// The command line, arguments joined by spaces.
    pub command: String,
}

/// Resource use of a pod.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Guest memory in use (allocated frames), bytes.
    pub memory_used: u64,
    /// The pod's guest memory limit, bytes.
    pub memory_limit: u64,
    pub containers: Vec<ContainerStats>,
}

/// Resource use of one container.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerStats {
    pub name: String,
    pub processes: usize,
    /// CPU time of its live processes and of the exited ones they
    /// waited for, nanoseconds.
    pub cpu_user_ns: u64,
    pub cpu_system_ns: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_json_is_tagged_by_op() {
        let r = Request::Signal {
            container: None,
            signal: 15,
            all: false,
        };
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(
            text,
            r#"{"op":"signal","container":null,"signal":15,"all":false}"#
        );
        assert_eq!(serde_json::from_str::<Request>(&text).unwrap(), r);
    }

    #[test]
    fn response_json_is_tagged_by_reply() {
        let text = serde_json::to_string(&Response::ExecExited { status: 3 }).unwrap();
        assert_eq!(text, r#"{"reply":"exec_exited","status":3}"#);
    }
}
