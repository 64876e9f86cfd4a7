//! What the pod commands (`list`, `ps`, `exec`, `kill`, `pause`, `resume`,
//! `wait`, `logs`, `stats`, `events`, `delete`) share: finding the state
//! root and a pod in it, refusing a pod in the wrong state, and the one
//! error type they print.

use std::path::PathBuf;

use crate::control::client::ControlError;
use crate::state::{Meta, PodDir, Root, StateError, Status};

/// A pod command's failure; printed as `sandboxd: <line>`, exit 125.
#[derive(Debug, thiserror::Error)]
pub enum PodError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error("pod {id} is {status}: {why}")]
    WrongState {
        id: String,
        status: Status,
        why: &'static str,
    },
    #[error("{0}")]
    Usage(String),
    #[error("read {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The state root: `--root`, else the default (see `state::Root`).
pub fn root(opt: &Option<PathBuf>) -> Result<Root, StateError> {
    Root::open(opt.clone())
}

/// The pod `arg` names, with its meta (status as it really is).
pub fn find(root_opt: &Option<PathBuf>, arg: &str) -> Result<(PodDir, Meta), PodError> {
    let dir = root(root_opt)?.find(arg)?;
    let mut meta = dir.read()?;
    meta.status = meta.effective_status();
    Ok((dir, meta))
}

/// Refuses unless `meta` is in one of `allowed`; `why` completes "pod X is
/// <status>: ...".
pub fn require(meta: &Meta, allowed: &[Status], why: &'static str) -> Result<(), PodError> {
    if allowed.contains(&meta.status) {
        return Ok(());
    }
    Err(PodError::WrongState {
        id: meta.id.clone(),
        status: meta.status,
        why,
    })
}

/// Runs a command body, printing its error as one line.
pub fn exit_code(r: Result<i32, PodError>) -> i32 {
    match r {
        Ok(code) => code,
        Err(e) => super::fail(&e),
    }
}

/// "2024-05-01T12:00:00Z" for `secs` since the epoch.
pub fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Now, in seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Parses a signal: a number, or a name with or without "SIG" in any case.
pub fn parse_signal(s: &str) -> Result<i32, String> {
    if let Ok(n) = s.parse::<i32>() {
        return if (1..=64).contains(&n) {
            Ok(n)
        } else {
            Err(format!("bad signal number {n}: expected 1-64"))
        };
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|sig| sig as i32)
        .map_err(|_| format!("unknown signal {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_known_instants() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn parse_signal_names_and_numbers() {
        assert_eq!(parse_signal("9"), Ok(9));
        assert_eq!(parse_signal("KILL"), Ok(libc::SIGKILL));
        assert_eq!(parse_signal("sigterm"), Ok(libc::SIGTERM));
        assert_eq!(parse_signal("SIGUSR1"), Ok(libc::SIGUSR1));
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("NOPE").unwrap_err().contains("NOPE"));
    }
}
