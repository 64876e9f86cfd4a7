//! `sandboxd run`: load a pod and run it, in the foreground (the command
//! ends with the pod, and removes its state entry) or detached with `-d`
//! (see `sandbox::monitor`).

use std::path::{Path, PathBuf};

use argh::FromArgs;

use crate::sandbox::RunOptions;

/// Run the containers of a pod in the foreground and exit with their status,
/// or start it detached with -d.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "run",
    help_triggers("-h", "--help", "help"),
    example = "{command_name} --strace demo.pod.json",
    example = "{command_name} -d demo.pod.json",
    note = "A detached pod's output goes to <state root>/<id>/log (`sandboxd logs`),",
    note = "its stdin is /dev/null; `sandboxd list` shows it until `sandboxd delete`."
)]
pub struct RunCmd {
    /// start the pod in the background: print its id and exit 0 once it runs
    #[argh(switch, short = 'd')]
    detach: bool,

    /// the state root (default: $SANDBOXD_STATE_ROOT, else /run/sandboxd as
    /// root, else $XDG_RUNTIME_DIR/sandboxd)
    #[argh(option, arg_name = "DIR")]
    root: Option<PathBuf>,

    /// print every system call of the guest programs with its arguments and
    /// result
    #[argh(switch)]
    strace: bool,

    /// write the logs of every sandboxd process into DIR (DIR/sandboxd.log,
    /// DIR/sandboxd-gofer.log, ...); the level defaults to debug there
    #[argh(option, arg_name = "DIR")]
    debug_log: Option<PathBuf>,

    /// how guest code runs: auto (the best this host offers), kvm or ptrace;
    /// overrides the pod file's "platform"
    #[argh(option, arg_name = "PLATFORM", from_str_fn(parse_platform))]
    platform: Option<String>,

    /// directory of the image store (default: $SANDBOXD_STORE, else
    /// /var/lib/sandboxd/store as root, else ~/.local/share/sandboxd/store)
    #[argh(option, arg_name = "DIR")]
    store: Option<PathBuf>,

    /// the pod file to run
    #[argh(positional, arg_name = "POD.json")]
    pod: PathBuf,
}

/// Whether the `run` option `arg` is followed by a value (used to find the
/// first positional argument before argh parses anything).
pub(super) fn takes_value(arg: &str) -> bool {
    matches!(arg, "--debug-log" | "--platform" | "--store" | "--root")
}

fn parse_platform(value: &str) -> Result<String, String> {
    if crate::pod::PLATFORMS.contains(&value) {
        Ok(value.to_owned())
    } else {
        Err(format!("expected auto, kvm or ptrace, got {value:?}"))
    }
}

/// `path` made absolute against the current directory: the roles that use
/// it run elsewhere.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

impl RunCmd {
    /// The options of the run that do not come from the pod file.
    pub(super) fn options(&self) -> RunOptions {
        RunOptions {
            strace: self.strace,
            debug_log: self.debug_log.as_deref().map(absolute),
            platform: self.platform.clone(),
            store: self.store.as_deref().map(absolute),
        }
    }

    pub(super) fn execute(self) -> i32 {
        let opts = self.options();
        super::logger::init("sandboxd", opts.debug_log.as_deref());
        if let Some(dir) = &opts.debug_log {
            // The roles inherit SANDBOXD_* variables and open their own
            // log file in DIR before they give up the host file system.
            std::env::set_var(super::logger::DIR_VAR, dir);
        }
        let pod = match crate::pod::load(&self.pod) {
            Ok(pod) => pod,
            Err(e) => return super::fail(&e),
        };
        log::debug!(
            "running pod {} ({} container(s)) with {opts:?}",
            pod.name,
            pod.containers.len()
        );
        let root = crate::state::Root::open(self.root.as_deref().map(absolute));
        if self.detach {
            let root = match root {
                Ok(r) => r,
                Err(e) => return super::fail(&e),
            };
            return self.detached(&pod, &opts, &root);
        }
        // A foreground run is recorded while it runs (so `ps`, `exec`, ...
        // reach it) and forgotten when it ends. Without a usable state
        // root it still runs, untracked.
        let dir = match root.and_then(|r| r.create(|d| self.meta(&pod, d, false))) {
            Ok(dir) => Some(dir),
            Err(e) => {
                log::warn!("running untracked: {}", super::report(&e));
                None
            }
        };
        let prefixes = crate::sandbox::monitor::prefixes(&pod);
        let track = dir.map(|d| crate::sandbox::track::Track::new(d, None, prefixes));
        let status = crate::sandbox::run_pod(&pod, &opts, track.as_ref());
        if let Some(t) = track {
            let _ = t.dir.remove();
        }
        log::debug!("pod {} ended: {status:?}", pod.name);
        i32::from(status.code())
    }

    fn detached(&self, pod: &crate::pod::Pod, opts: &RunOptions, root: &crate::state::Root) -> i32 {
        let dir = match root.create(|d| self.meta(pod, d, true)) {
            Ok(d) => d,
            Err(e) => return super::fail(&e),
        };
        let id = dir.id().to_string();
        match crate::sandbox::start_detached(pod, opts, dir) {
            Ok(()) => {
                println!("{id}");
                0
            }
            Err(line) => {
                eprintln!("{line}");
                125
            }
        }
    }

    /// The first meta.json of a pod being created by this process.
    fn meta(
        &self,
        pod: &crate::pod::Pod,
        dir: &crate::state::PodDir,
        detached: bool,
    ) -> crate::state::Meta {
        crate::state::Meta {
            id: dir.id().into(),
            name: pod.name.clone(),
            pod_file: absolute(&self.pod).display().to_string(),
            created: super::pods::now(),
            status: crate::state::Status::Creating,
            detached,
            monitor: crate::state::ProcRef::of(std::process::id() as i32).ok(),
            sandbox: None,
            gofers: Vec::new(),
            containers: pod.containers.keys().cloned().collect(),
            control: dir.control_path().display().to_string(),
            exit_status: None,
            events: vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<RunCmd, argh::EarlyExit> {
        RunCmd::from_args(&["sandboxd", "run"], args)
    }

    #[test]
    fn run_defaults_leave_options_unset() {
        let opts = parse(&["p.json"]).unwrap().options();
        assert!(!opts.strace);
        assert_eq!(opts.debug_log, None);
        assert_eq!(opts.platform, None);
        assert_eq!(opts.store, None);
    }

    #[test]
    fn run_relative_dirs_become_absolute() {
        let cmd = parse(&["--debug-log", "logs", "--store", "st", "p.json"]).unwrap();
        let opts = cmd.options();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(opts.debug_log, Some(cwd.join("logs")));
        assert_eq!(opts.store, Some(cwd.join("st")));
    }

    #[test]
    fn run_without_pod_is_usage_error() {
        let err = parse(&["--strace"]).unwrap_err();
        assert!(err.status.is_err());
        assert!(err.output.contains("POD.json"), "{}", err.output);
    }

    #[test]
    fn takes_value_matches_value_options() {
        for opt in ["--debug-log", "--platform", "--store"] {
            assert!(takes_value(opt));
            assert!(parse(&[opt, "auto", "p.json"]).is_ok(), "{opt}");
        }
        assert!(!takes_value("--strace"));
    }
}
