//! `sandboxd stats POD` and `sandboxd events POD`: resource use as JSON.

use std::path::PathBuf;
use std::time::Duration;

use argh::FromArgs;

use super::pods::{exit_code, find, now, require, PodError};
use crate::control::client::{Client, ControlError};
use crate::control::{Request, Response};
use crate::state::{PodDir, Status};

/// Print one JSON line with the pod's guest memory use (frames allocated
/// in the sentry) and the CPU time of each container.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "stats", help_triggers("-h", "--help", "help"))]
pub struct StatsCmd {
    /// the state root (see `sandboxd list --help`)
    #[argh(option, arg_name = "DIR")]
    root: Option<PathBuf>,

    /// the pod: its id, a unique prefix of it, or its name
    #[argh(positional, arg_name = "POD")]
    pod: String,
}

/// Print a stats JSON line every interval until the pod stops, then one
/// line with its exit status (at once for a stopped pod); and a line for each thing that happened to
/// the pod's roles (a gofer that died: "gofer-died").
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "events", help_triggers("-h", "--help", "help"))]
pub struct EventsCmd {
    /// seconds between samples (default 1; fractions allowed)
    #[argh(option, default = "1.0", arg_name = "SECS")]
    interval: f64,

    /// the state root (see `sandboxd list --help`)
    #[argh(option, arg_name = "DIR")]
    root: Option<PathBuf>,

    /// the pod: its id, a unique prefix of it, or its name
    #[argh(positional, arg_name = "POD")]
    pod: String,
}

const LIVE: [Status; 2] = [Status::Running, Status::Paused];

impl StatsCmd {
    pub(super) fn execute(self) -> i32 {
        exit_code(self.stats())
    }

    fn stats(&self) -> Result<i32, PodError> {
        let (dir, meta) = find(&self.root, &self.pod)?;
        require(&meta, &LIVE, "it has no resource use")?;
        println!("{}", sample(&dir)?);
        Ok(0)
    }
}

impl EventsCmd {
    pub(super) fn execute(self) -> i32 {
        exit_code(self.events())
    }

    fn events(&self) -> Result<i32, PodError> {
        if !(self.interval > 0.0 && self.interval.is_finite()) {
            return Err(PodError::Usage(
                "events: --interval must be positive".into(),
            ));
        }
        let (dir, meta) = find(&self.root, &self.pod)?;
        // A stopped pod still has its recorded events and its status.
        let ran = [Status::Running, Status::Paused, Status::Stopped];
        require(&meta, &ran, "it has no events")?;
        let mut seen = 0;
        loop {
            seen = print_events(&dir, seen);
            match sample(&dir) {
                Ok(line) => println!("{line}"),
                // The pod stopping between the check and the request.
                Err(_) if stopped(&dir) => {}
                Err(e) => return Err(e),
            }
            if stopped(&dir) {
                let meta = super::wait::wait_stopped(&dir)?;
                print_events(&dir, seen);
                let ev = serde_json::json!({
                    "type": "exit", "id": meta.id, "time": now(), "status": meta.exit_status,
                });
                println!("{ev}");
                return Ok(0);
            }
            std::thread::sleep(Duration::from_secs_f64(self.interval));
        }
    }
}

/// Prints the recorded events after the first `seen`; returns how many
/// there are now.
fn print_events(dir: &PodDir, seen: usize) -> usize {
    let Ok(meta) = dir.read() else {
        return seen;
    };
    for ev in meta.events.iter().skip(seen) {
        let line = serde_json::json!({
            "type": ev.kind, "id": meta.id, "time": ev.time,
            "container": ev.container, "cause": ev.cause,
        });
        println!("{line}");
    }
    meta.events.len().max(seen)
}

fn stopped(dir: &PodDir) -> bool {
    dir.read()
        .map_or(true, |m| m.effective_status() == Status::Stopped)
}

/// One stats line: {"type":"stats","id":..,"time":..,"memory":..,"containers":..}.
fn sample(dir: &PodDir) -> Result<String, PodError> {
    let stats = match Client::call(&dir.control_path(), &Request::Stats)? {
        Response::Stats(s) => s,
        other => return Err(ControlError::unexpected(&other).into()),
    };
    let line = serde_json::json!({
        "type": "stats",
        "id": dir.id(),
        "time": now(),
        "memory": { "used": stats.memory_used, "limit": stats.memory_limit },
        "containers": stats.containers,
    });
    Ok(line.to_string())
}
