//! Exit statuses of `sandboxd`, as container engines use them.
#![forbid(unsafe_code)]

/// How a run ended, as an exit status of the `sandboxd` process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// The container's own status (0-255; 128+N for death by signal N).
    Container(u8),
    /// sandboxd itself failed.
    Failed,
    /// The command exists but cannot be run.
    CannotRun,
    /// The command was not found.
    NotFound,
}

impl ExitStatus {
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Container(c) => c,
            ExitStatus::Failed => 125,
            ExitStatus::CannotRun => 126,
            ExitStatus::NotFound => 127,
        }
    }
}
