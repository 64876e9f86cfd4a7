//! What `meta.json` holds about one pod, and the status machine.

use serde::{Deserialize, Serialize};

use super::proc::ProcRef;

/// Where a pod is in its life.
///
/// ```text
/// Creating -> Created -> Running <-> Paused
///                 \          \        /
///                  `-------> Stopped <
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The state directory exists; images, gofers and the sandbox are
    /// being set up.
    Creating,
    /// Every role reported ready; the containers have not started.
    Created,
    /// The containers run.
    Running,
    /// Every guest thread is parked in the sentry.
    Paused,
    /// The sandbox has exited (or died).
    Stopped,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }

    /// Whether the status machine allows going from `self` to `to`.
    pub fn can_become(self, to: Status) -> bool {
        use Status::*;
        matches!(
            (self, to),
            (Creating, Created)
                | (Created, Running)
                | (Running, Paused)
                | (Paused, Running)
                | (Created | Running | Paused, Stopped)
        )
    }

    /// Whether a sandbox process is meant to exist in this status.
    pub fn has_sandbox(self) -> bool {
        matches!(self, Status::Created | Status::Running | Status::Paused)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The contents of `<root>/<id>/meta.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub id: String,
    /// The pod's `name`.
    pub name: String,
    /// The pod file it was started from (absolute).
    pub pod_file: String,
    /// Seconds since the Unix epoch.
    pub created: u64,
    pub status: Status,
    /// `run -d`: the pod outlives the command that started it.
    pub detached: bool,
    /// The process that supervises the pod: the foreground launcher, or
    /// the detached monitor. It reaps the sandbox and records its end.
    pub monitor: Option<ProcRef>,
    pub sandbox: Option<ProcRef>,
    pub gofers: Vec<ProcRef>,
    /// Container names, in the pod's order.
    pub containers: Vec<String>,
    /// The sentry's control socket.
    pub control: String,
    /// The pod's exit status once Stopped (None: not recorded, e.g. the
    /// monitor died with it).
    pub exit_status: Option<i32>,
    /// What happened to the pod's roles while it ran (`sandboxd events`).
    #[serde(default)]
    pub events: Vec<PodEvent>,
}

/// Something that happened to a running pod, as `events` prints it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodEvent {
    /// "gofer-died".
    #[serde(rename = "type")]
    pub kind: String,
    pub container: String,
    /// What happened, in words ("killed by SIGKILL").
    pub cause: String,
    /// Seconds since the Unix epoch.
    pub time: u64,
}

impl Meta {
    /// The status as it really is: a pod whose sandbox is gone is Stopped
    /// whatever the file says; a creation whose creator is gone, too.
    pub fn effective_status(&self) -> Status {
        let alive = |p: &Option<ProcRef>| p.as_ref().is_some_and(ProcRef::alive);
        match self.status {
            Status::Creating if !alive(&self.monitor) => Status::Stopped,
            s if s.has_sandbox() && !alive(&self.sandbox) => Status::Stopped,
            s => s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    #[test]
    fn can_become_follows_the_machine() {
        let all = [Creating, Created, Running, Paused, Stopped];
        let allowed = [
            (Creating, Created),
            (Created, Running),
            (Running, Paused),
            (Paused, Running),
            (Created, Stopped),
            (Running, Stopped),
            (Paused, Stopped),
        ];
        for from in all {
            for to in all {
                assert_eq!(
                    from.can_become(to),
                    allowed.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
    }

    #[test]
    fn effective_status_dead_sandbox_is_stopped() {
        let mut m = Meta {
            id: "ab".into(),
            name: "n".into(),
            pod_file: "/p".into(),
            created: 0,
            status: Running,
            detached: true,
            monitor: None,
            sandbox: Some(ProcRef {
                pid: i32::MAX,
                start: 1,
            }),
            gofers: vec![],
            containers: vec![],
            control: String::new(),
            exit_status: None,
            events: vec![],
        };
        assert_eq!(m.effective_status(), Stopped);
        m.sandbox = ProcRef::of(std::process::id() as i32).ok();
        assert_eq!(m.effective_status(), Running);
    }

    #[test]
    fn status_serializes_lowercase() {
        assert_eq!(serde_json::to_string(&Paused).unwrap(), "\"paused\"");
    }
}
