//! Detached pods (`run -d`): the command forks a *monitor*, which starts
//! a new session, points its stdio at /dev/null and the pod's log, and
//! then runs the pod exactly as a foreground launcher does: it starts the
//! roles (so they are its children and die with it, PR_SET_PDEATHSIG),
//! forwards SIGINT/SIGTERM/SIGHUP to the sandbox, reaps it, and records
//! the pod's exit status in meta.json. The command waits on a pipe until
//! the pod runs (prints the id, exits 0) or the monitor reports why it
//! could not start (prints that line, removes the state dir, exits 125).
//!
//! Killing the monitor kills the pod: its sandbox and gofers get SIGKILL
//! from PDEATHSIG, so no sandbox ever runs untracked; meta.json then still
//! says Running, but every reader checks the sandbox's pid and start time
//! and reports Stopped (exit status unknown).
#![forbid(unsafe_code)]

use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;

use crate::pod::Pod;
use crate::state::{PodDir, ProcRef};
use crate::sys::fd::pipe;
use crate::sys::process::{self, Forked};

use super::errpipe::{self, Outcome};
use super::track::Track;
use super::RunOptions;

/// Starts `pod`, recorded in `dir`, detached. Ok once it runs; Err with
/// the line saying why not (`dir` is then removed).
pub fn start_detached(pod: &Pod, opts: &RunOptions, dir: PodDir) -> Result<(), String> {
    let fail = |what: &str, e: std::io::Error| {
        let _ = dir.remove();
        format!("sandboxd: {what}: {e}")
    };
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(dir.log_path())
        .map_err(|e| fail("create the pod log", e))?;
    let (ready_r, ready_w) = pipe().map_err(|e| fail("create a pipe", e))?;
    match process::fork_single_threaded().map_err(|e| fail("fork the monitor", e))? {
        Forked::Child => {
            drop(ready_r);
            let code = monitor(pod, opts, dir, ready_w, log.into());
            std::process::exit(code);
        }
        Forked::Parent(pid) => {
            drop((ready_w, log));
            let outcome = errpipe::receive(ready_r);
            match outcome {
                Ok(Outcome::Ready) => Ok(()),
                Ok(Outcome::Failed(line)) => {
                    let _ = process::wait(pid);
                    let _ = dir.remove();
                    Err(line)
                }
                Ok(Outcome::Silent) | Err(_) => {
                    let how = process::wait(pid);
                    let _ = dir.remove();
                    Err(format!(
                        "sandboxd: the pod monitor died during set-up ({how:?})"
                    ))
                }
            }
        }
    }
}

/// The monitor process; returns its exit code (the pod's status).
fn monitor(pod: &Pod, opts: &RunOptions, dir: PodDir, ready: OwnedFd, log: OwnedFd) -> i32 {
    let track = Track::new(dir, Some(ready), prefixes(pod));
    if let Err(e) = detach_stdio(&log) {
        track.failed(&format!("sandboxd: detach the monitor: {e}"));
        return 125;
    }
    let me = ProcRef::of(std::process::id() as i32);
    let recorded = me.map_err(|e| e.to_string()).and_then(|me| {
        track
            .dir
            .update(|m| {
                m.monitor = Some(me);
                Ok(())
            })
            .map_err(|e| crate::cli::report(&e))
    });
    if let Err(e) = recorded {
        track.failed(&format!("sandboxd: record the monitor: {e}"));
        return 125;
    }
    let status = crate::sandbox::run_pod(pod, opts, Some(&track));
    let code = i32::from(status.code());
    // Ended before it ran: tell the waiting command what the log says.
    let last = std::fs::read_to_string(track.dir.log_path()).unwrap_or_default();
    let last = last.lines().last().unwrap_or("").to_string();
    track.failed(&if last.is_empty() {
        format!("sandboxd: the pod ended with status {code} before it started")
    } else {
        last
    });
    // The pod may have been deleted meanwhile (delete --force).
    let _ = track.stopped(Some(code));
    code
}

/// Container names whose output is prefixed: all of them when the pod
/// has several, none otherwise (the log is then the raw output).
pub fn prefixes(pod: &Pod) -> Vec<String> {
    if pod.containers.len() > 1 {
        pod.containers.keys().cloned().collect()
    } else {
        Vec::new()
    }
}

/// A new session (no controlling terminal, no SIGHUP when it closes),
/// stdin from /dev/null, stdout and stderr into the log.
fn detach_stdio(log: &OwnedFd) -> std::io::Result<()> {
    nix::unistd::setsid()?;
    let null = std::fs::File::open("/dev/null")?;
    nix::unistd::dup2_stdin(&null)?;
    nix::unistd::dup2_stdout(log)?;
    nix::unistd::dup2_stderr(log)?;
    Ok(())
}
