//! The `log` backend of every sandboxd role: one line per record, on stderr
//! or, with `--debug-log DIR`, appended to `DIR/<role>.log`.
//!
//! The level comes from `SANDBOXD_LOG` (`off`, `error`, `warn`, `info`,
//! `debug`, `trace`); without it the level is `warn` on stderr and `debug`
//! in a log file (asking for a debug log means asking for debug lines).
//! Levels mean what Cloud Hypervisor's logging guide says: error for
//! failures the user must see, warn for recoverable surprises, info for
//! milestones of a run, debug for what helps a developer follow it, trace
//! for per-event detail.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use log::{LevelFilter, Log, Metadata, Record};

/// The environment variable that sets the log level.
pub const LEVEL_VAR: &str = "SANDBOXD_LOG";

/// Installs the logger of the role `role` (e.g. "sandboxd",
/// "sandboxd-gofer"). With `dir`, lines go to `dir/<role>.log` (created,
/// appended to, mode 0600); if that file cannot be opened they go to stderr
/// with an error saying why. Only the first call in a process has effect.
/// Environment variable through which the launcher hands `--debug-log DIR`
/// to the roles it starts.
pub const DIR_VAR: &str = "SANDBOXD_DEBUG_LOG";

/// Sets up logging for a role started by the launcher: to `<role>.log` in
/// `$SANDBOXD_DEBUG_LOG` when set, else to stderr.
pub fn init_role(role: &str) {
    let dir = std::env::var_os(DIR_VAR).map(std::path::PathBuf::from);
    init(role, dir.as_deref());
}

pub fn init(role: &str, dir: Option<&Path>) {
    let (sink, open_error) = match dir.map(|d| open_log(d, role)) {
        None => (Sink::Stderr, None),
        Some(Ok(file)) => (Sink::File(Mutex::new(file)), None),
        Some(Err(e)) => (Sink::Stderr, Some(e)),
    };
    let to_file = matches!(sink, Sink::File(_));
    let env = std::env::var(LEVEL_VAR).ok();
    let (level, bad_level) = match parse_level(env.as_deref(), to_file) {
        Ok(level) => (level, None),
        Err(bad) => (default_level(to_file), Some(bad)),
    };
    let logger = Logger {
        role: role.to_owned(),
        level,
        sink,
    };
    if log::set_logger(Box::leak(Box::new(logger))).is_err() {
        return;
    }
    log::set_max_level(level);
    if let Some(bad) = bad_level {
        let name = level.as_str().to_ascii_lowercase();
        log::warn!("{LEVEL_VAR}={bad:?} is not a log level; using {name}");
    }
    if let Some((path, e)) = open_error {
        let why = crate::cli::report(&e);
        log::error!("cannot open log file {}: {why}", path.display());
    }
}

fn default_level(to_file: bool) -> LevelFilter {
    if to_file {
        LevelFilter::Debug
    } else {
        LevelFilter::Warn
    }
}

/// The level named by `value` (case-insensitive), the default when unset
/// or empty, or the unrecognized value.
fn parse_level(value: Option<&str>, to_file: bool) -> Result<LevelFilter, String> {
    match value.map(str::trim) {
        None | Some("") => Ok(default_level(to_file)),
        Some(v) => v.parse().map_err(|_| v.to_owned()),
    }
}

fn open_log(dir: &Path, role: &str) -> Result<File, (std::path::PathBuf, std::io::Error)> {
    let path = dir.join(format!("{role}.log"));
    std::fs::create_dir_all(dir)
        .and_then(|()| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&path)
        })
        .map_err(|e| (path, e))
}

enum Sink {
    Stderr,
    File(Mutex<File>),
}

struct Logger {
    role: String,
    level: LevelFilter,
    sink: Sink,
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // One write per line, so lines of concurrent threads do not mix.
        match &self.sink {
            Sink::Stderr => {
                let line = stderr_line(&self.role, record);
                let _ = std::io::stderr().lock().write_all(line.as_bytes());
            }
            Sink::File(file) => {
                let since_epoch = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default();
                let line = file_line(&self.role, std::process::id(), since_epoch, record);
                if let Ok(mut f) = file.lock() {
                    let _ = f.write_all(line.as_bytes());
                }
            }
        }
    }

    fn flush(&self) {
        if let Sink::File(file) = &self.sink {
            if let Ok(mut f) = file.lock() {
                let _ = f.flush();
            }
        }
    }
}

/// `sandboxd: warn: message` — short, for a terminal.
fn stderr_line(role: &str, record: &Record) -> String {
    let level = record.level().as_str().to_ascii_lowercase();
    format!("{role}: {level}: {}\n", record.args())
}

/// `1700000000.123456 sandboxd[42] DEBUG sandboxd::cli::run: message` —
/// complete, for merging the logs of several roles by time.
fn file_line(role: &str, pid: u32, since_epoch: std::time::Duration, record: &Record) -> String {
    format!(
        "{}.{:06} {role}[{pid}] {:<5} {}: {}\n",
        since_epoch.as_secs(),
        since_epoch.subsec_micros(),
        record.level(),
        record.target(),
        record.args()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use log::Level;
    use std::time::Duration;

    fn with_record<T>(level: Level, f: impl FnOnce(&Record) -> T) -> T {
        f(&Record::builder()
            .level(level)
            .target("sandboxd::x")
            .args(format_args!("hello {}", 7))
            .build())
    }

    #[test]
    fn parse_level_unset_defaults_by_sink() {
        assert_eq!(parse_level(None, false), Ok(LevelFilter::Warn));
        assert_eq!(parse_level(Some(""), true), Ok(LevelFilter::Debug));
    }

    #[test]
    fn parse_level_names_are_case_insensitive() {
        assert_eq!(parse_level(Some("TRACE"), false), Ok(LevelFilter::Trace));
        assert_eq!(parse_level(Some("error"), true), Ok(LevelFilter::Error));
        assert_eq!(parse_level(Some("off"), false), Ok(LevelFilter::Off));
    }

    #[test]
    fn parse_level_unknown_is_returned() {
        assert_eq!(parse_level(Some("loud"), false), Err("loud".to_owned()));
    }

    #[test]
    fn stderr_line_is_short() {
        let line = with_record(Level::Warn, |r| stderr_line("sandboxd", r));
        assert_eq!(line, "sandboxd: warn: hello 7\n");
    }

    #[test]
    fn file_line_has_time_pid_level_and_target() {
        let t = Duration::new(1_700_000_000, 1_500_000);
        let line = with_record(Level::Debug, |r| file_line("sandboxd-gofer", 42, t, r));
        assert_eq!(
            line,
            "1700000000.001500 sandboxd-gofer[42] DEBUG sandboxd::x: hello 7\n"
        );
    }

    #[test]
    fn logger_file_sink_appends_enabled_lines_only() {
        let dir = crate::pod::TestDir::new();
        let file = open_log(&dir.0.join("logs"), "sandboxd").unwrap();
        let logger = Logger {
            role: "sandboxd".to_owned(),
            level: LevelFilter::Info,
            sink: Sink::File(Mutex::new(file)),
        };
        with_record(Level::Info, |r| logger.log(r));
        with_record(Level::Debug, |r| logger.log(r));
        logger.flush();
        let text = std::fs::read_to_string(dir.0.join("logs/sandboxd.log")).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("INFO  sandboxd::x: hello 7"), "{text}");
    }
}
