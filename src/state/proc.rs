//! Naming a host process so that a reused pid is not mistaken for it: the
//! pid with its start time (field 22 of /proc/PID/stat, in clock ticks
//! since boot).

use std::io;

use serde::{Deserialize, Serialize};

/// A process as recorded in `meta.json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcRef {
    pub pid: i32,
    pub start: u64,
}

impl ProcRef {
    /// The live process `pid`.
    pub fn of(pid: i32) -> io::Result<ProcRef> {
        let (start, _) = stat(pid)?;
        Ok(ProcRef { pid, start })
    }

    /// Whether this very process still runs (a zombie does not).
    pub fn alive(&self) -> bool {
        matches!(stat(self.pid), Ok((start, state)) if start == self.start && state != 'Z' && state != 'X')
    }

    /// A pidfd on this process, if it is still the one recorded (checked
    /// after the pidfd is open, so the pid cannot be reused in between).
    pub fn pidfd(&self) -> Option<std::os::fd::OwnedFd> {
        let fd = crate::sys::process::pidfd_open(self.pid).ok()?;
        self.alive().then_some(fd)
    }

    /// SIGKILL, if it is still the process recorded.
    pub fn kill(&self, sig: libc::c_int) {
        if let Some(fd) = self.pidfd() {
            use std::os::fd::AsFd;
            let _ = crate::sys::process::pidfd_kill(fd.as_fd(), sig);
        }
    }
}

/// Start time and state letter of process `pid`.
fn stat(pid: i32) -> io::Result<(u64, char)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat(&text).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))
}

/// The command name may hold spaces and parentheses: fields are counted
/// after the last ')'. State is field 3, starttime field 22.
fn parse_stat(text: &str) -> Option<(u64, char)> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((start, state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_stat_name_with_parens_counts_after_last() {
        let line = "42 (a) b) S 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 12345 0 0";
        assert_eq!(parse_stat(line), Some((12345, 'S')));
    }

    #[test]
    fn of_self_is_alive_and_other_start_is_not() {
        let me = ProcRef::of(std::process::id() as i32).unwrap();
        assert!(me.alive());
        let other = ProcRef {
            start: me.start + 1,
            ..me
        };
        assert!(!other.alive());
    }
}
