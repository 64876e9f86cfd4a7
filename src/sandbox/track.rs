//! Recording a pod being launched in its state directory: the launcher
//! (or the detached monitor) tells the [`Track`] what it started, and the
//! track writes meta.json, binds the control socket and starts the
//! containers through it.
#![forbid(unsafe_code)]

use std::io::{self, BufRead, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::sync::Mutex;
use std::thread::JoinHandle;

use crate::control::client::{Client, ControlError};
use crate::control::{Request, Response};
use crate::state::{PodDir, ProcRef, StateError, Status};

use super::errpipe;

/// Why tracking a launch failed.
#[derive(Debug, thiserror::Error)]
pub enum TrackError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("bind the control socket {}", .path.display())]
    Bind {
        path: std::path::PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("start the containers")]
    Start(#[source] ControlError),
    #[error("output pipe")]
    Pipe(#[source] io::Error),
}

/// A launch being recorded in `dir`.
pub struct Track {
    pub dir: PodDir,
    /// `run -d`: the pipe to the command waiting for the pod to run.
    ready: Mutex<Option<OwnedFd>>,
    /// Give each container its own output pipe and copy it to stdout
    /// with a "[name] " prefix on every line (detached pods with several
    /// containers).
    prefix: Vec<String>,
}

impl Track {
    pub fn new(dir: PodDir, ready: Option<OwnedFd>, prefix: Vec<String>) -> Track {
        Track {
            dir,
            ready: Mutex::new(ready),
            prefix,
        }
    }

    /// Binds and listens on the pod's control socket; the fd goes to the
    /// sandbox.
    pub fn listen(&self) -> Result<OwnedFd, TrackError> {
        let path = self.dir.control_path();
        let listener = UnixListener::bind(&path).map_err(|source| TrackError::Bind {
            path: path.clone(),
            source,
        })?;
        Ok(listener.into())
    }

    pub fn gofer_started(&self, pid: i32) -> Result<(), TrackError> {
        let p = ProcRef::of(pid).map_err(StateError::io("stat gofer", "/proc"))?;
        self.dir.update(|m| {
            m.gofers.push(p);
            Ok(())
        })?;
        Ok(())
    }

    /// The sandbox reported ready: Creating -> Created.
    pub fn sandbox_ready(&self, pid: i32) -> Result<(), TrackError> {
        let p = ProcRef::of(pid).map_err(StateError::io("stat sandbox", "/proc"))?;
        self.dir.update(|m| {
            m.sandbox = Some(p);
            crate::state::transition(m, Status::Created)
        })?;
        Ok(())
    }

    /// Starts the containers (Created -> Running) and tells a waiting
    /// `run -d` that the pod runs. Returns the threads copying prefixed
    /// output, to join once the sandbox has exited.
    pub fn start(&self) -> Result<Vec<JoinHandle<()>>, TrackError> {
        let mut copiers = Vec::new();
        let mut ends = Vec::new();
        for name in &self.prefix {
            let (r, w) = crate::sys::fd::pipe().map_err(TrackError::Pipe)?;
            ends.push(w);
            copiers.push(spawn_prefixer(name.clone(), r).map_err(TrackError::Pipe)?);
        }
        let client = Client::connect(&self.dir.control_path()).map_err(TrackError::Start)?;
        let fds: Vec<_> = ends.iter().map(|e| e.as_fd()).collect();
        let req = Request::Start {
            output_fds: !fds.is_empty(),
        };
        client.send(&req, &fds).map_err(TrackError::Start)?;
        match client.recv().map_err(TrackError::Start)? {
            Response::Ok => {}
            other => return Err(TrackError::Start(ControlError::unexpected(&other))),
        }
        drop(ends);
        self.dir.set_status(Status::Running)?;
        if let Some(pipe) = self.ready.lock().unwrap().take() {
            let _ = errpipe::send_ready(pipe);
        }
        Ok(copiers)
    }

    /// Tells a waiting `run -d` why the pod could not start (once).
    pub fn failed(&self, line: &str) {
        if let Some(pipe) = self.ready.lock().unwrap().take() {
            errpipe::send_error(pipe, line);
        }
    }

    /// Records that container `container`'s gofer died (`cause`).
    pub fn gofer_died(&self, container: &str, cause: &str) -> Result<(), StateError> {
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.dir.update(|m| {
            m.events.push(crate::state::PodEvent {
                kind: "gofer-died".into(),
                container: container.into(),
                cause: cause.into(),
                time,
            });
            Ok(())
        })?;
        Ok(())
    }

    /// Records the end: Stopped with `status` (None: unknown).
    pub fn stopped(&self, status: Option<i32>) -> Result<(), StateError> {
        self.dir.update(|m| {
            m.exit_status = status;
            if m.status.can_become(Status::Stopped) {
                m.status = Status::Stopped;
            }
            Ok(())
        })?;
        Ok(())
    }
}

/// Copies `from` to stdout line by line, each line prefixed "[name] ".
fn spawn_prefixer(name: String, from: OwnedFd) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("out-{name}"))
        .spawn(move || {
            let mut reader = io::BufReader::new(std::fs::File::from(from));
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        let mut out = io::stdout().lock();
                        let _ = out.write_all(format!("[{name}] ").as_bytes());
                        let body = line.strip_suffix(b"\n").unwrap_or(&line);
                        let _ = out.write_all(body);
                        // A raw terminal (a tty container's) adds no CR.
                        let raw = crate::sys::term::raw_active() && !body.ends_with(b"\r");
                        let _ = out.write_all(if raw { b"\r\n" } else { b"\n" });
                        let _ = out.flush();
                    }
                }
            }
        })
}
