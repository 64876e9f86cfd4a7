//! `sandboxd exec POD [CONTAINER] -- CMD...`: run a process in a running
//! container with this command's stdin, stdout and stderr.

use std::os::fd::AsFd;
use std::path::PathBuf;

use argh::FromArgs;

use super::pods::{exit_code, find, require, PodError};
use crate::control::client::{Client, ControlError};
use crate::control::{ExecRequest, Request, Response};
use crate::state::Status;
use crate::sys::signal::SignalPipe;
use crate::sys::term;

/// Run a new process in a running container; its stdio is this command's
/// and its exit status becomes this command's.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "exec",
    help_triggers("-h", "--help", "help"),
    example = "{command_name} web -- /bin/sh -c 'echo hi'",
    example = "{command_name} web app -- ps",
    note = "Without `--` every argument after POD is the command. The process runs",
    note = "with the container's user, environment and working directory; it sees",
    note = "pipes, or with -t a new terminal of the container (this command's",
    note = "terminal is raw meanwhile, its size changes are passed on). A command",
    note = "that is not found exits 127."
)]
pub struct ExecCmd {
    /// run the command on a new pseudo-terminal (stdin is always passed on)
    #[argh(switch, short = 't')]
    tty: bool,

    /// an environment variable K=V for the process (repeatable)
    #[argh(option, short = 'e', arg_name = "K=V")]
    env: Vec<String>,

    /// the working directory (default: the container's)
    #[argh(option, short = 'w', arg_name = "DIR")]
    workdir: Option<String>,

    /// the state root (see `sandboxd list --help`)
    #[argh(option, arg_name = "DIR")]
    root: Option<PathBuf>,

    /// the pod: its id, a unique prefix of it, or its name
    #[argh(positional, arg_name = "POD")]
    pod: String,

    /// [CONTAINER] -- CMD...
    #[argh(positional, greedy, arg_name = "ARGS")]
    rest: Vec<String>,

    /// the arguments after `--`, when there was one (set by `dispatch`)
    #[argh(option, hidden_help)]
    after_dashes: Option<usize>,
}

impl ExecCmd {
    pub(super) fn execute(self) -> i32 {
        exit_code(self.exec())
    }

    /// (container, command) from the positional arguments.
    fn split(&self) -> Result<(Option<String>, Vec<String>), PodError> {
        let (container, cmd) = match self.after_dashes {
            Some(n) => {
                let mut head = &self.rest[..self.rest.len() - n];
                // argh keeps the `--` once the greedy list has started.
                if head.last().is_some_and(|a| a == "--") {
                    head = &head[..head.len() - 1];
                }
                if head.len() > 1 {
                    return Err(PodError::Usage(format!(
                        "exec: unexpected {:?} before `--` (expected POD [CONTAINER])",
                        head[1]
                    )));
                }
                (
                    head.first().cloned(),
                    self.rest[self.rest.len() - n..].to_vec(),
                )
            }
            None => (None, self.rest.clone()),
        };
        if cmd.is_empty() {
            return Err(PodError::Usage("exec: no command given".into()));
        }
        Ok((container, cmd))
    }

    fn exec(&self) -> Result<i32, PodError> {
        let (container, argv) = self.split()?;
        if let Some(bad) = self.env.iter().find(|e| !e.contains('=')) {
            return Err(PodError::Usage(format!("exec: -e {bad:?}: expected K=V")));
        }
        let (dir, meta) = find(&self.root, &self.pod)?;
        require(&meta, &[Status::Running], "cannot exec in it")?;
        let path = dir.control_path();
        let client = Client::connect(&path)?;
        let stdin = term::stdin();
        let on_terminal = self.tty && term::is_terminal(stdin);
        let req = Request::Exec(ExecRequest {
            container: container.clone(),
            argv,
            env: self.env.clone(),
            workdir: self.workdir.clone(),
            tty: self.tty,
            winsize: if self.tty {
                term::window_size(stdin)
            } else {
                None
            },
        });
        // Size changes are passed on while the process runs; a signal
        // that would end this command ends it with the terminal restored
        // (the process goes on, as when the caller goes away).
        let signals = if on_terminal {
            SignalPipe::install(&[libc::SIGWINCH, libc::SIGINT, libc::SIGTERM, libc::SIGHUP]).ok()
        } else {
            None
        };
        let _raw = if on_terminal {
            term::RawMode::enter(stdin)
        } else {
            None
        };
        let (i, o, e) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
        client.send(&req, &[i.as_fd(), o.as_fd(), e.as_fd()])?;
        let mut pty = None;
        loop {
            if let Some(w) = &signals {
                let resize = || {
                    if let (Some(tty), Some((rows, cols))) = (pty, term::window_size(stdin)) {
                        let req = Request::Resize {
                            container: container.clone(),
                            tty,
                            rows,
                            cols,
                        };
                        if let Err(e) = Client::call(&path, &req) {
                            log::debug!("exec: passing on the window size: {e}");
                        }
                    }
                };
                if let Some(sig) = wait_reply(&client, w, resize) {
                    return Ok(128 + sig);
                }
            }
            match client.recv()? {
                Response::ExecStarted { pid, tty } => {
                    log::debug!("exec: pid {pid}, pty {tty:?}");
                    pty = tty;
                }
                Response::ExecExited { status } => return Ok(status),
                other => return Err(ControlError::unexpected(&other).into()),
            }
        }
    }
}

/// Waits until the sentry's next reply can be read, calling `winch` for
/// every SIGWINCH meanwhile; returns any other signal caught.
fn wait_reply(client: &Client, signals: &SignalPipe, winch: impl Fn()) -> Option<i32> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    loop {
        while let Some(sig) = signals.take() {
            if sig != libc::SIGWINCH {
                return Some(sig);
            }
            winch();
        }
        let mut fds = [
            PollFd::new(client.fd(), PollFlags::POLLIN),
            PollFd::new(signals.fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) if fds[0].any().unwrap_or(false) => return None,
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return None,
        }
    }
}

/// Marks where `--` was in the arguments of `exec` (argh drops it): the
/// number of arguments after it goes in as the hidden `--after-dashes`.
pub fn mark_dashes(args: &[String]) -> Vec<String> {
    let Some(dd) = args.iter().position(|a| a == "--") else {
        return args.to_vec();
    };
    let after = args.len() - dd - 1;
    let mut out = vec![args[0].clone(), "--after-dashes".into(), after.to_string()];
    out.extend_from_slice(&args[1..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> ExecCmd {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let args = mark_dashes(&args);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ExecCmd::from_args(&["sandboxd", "exec"], &args[1..]).unwrap()
    }

    #[test]
    fn split_container_before_dashes() {
        let cmd = parse(&["exec", "web", "app", "--", "sh", "-c", "exit 3"]);
        let (c, argv) = cmd.split().unwrap();
        assert_eq!(c.as_deref(), Some("app"));
        assert_eq!(argv, ["sh", "-c", "exit 3"]);
    }

    #[test]
    fn split_without_dashes_all_is_command() {
        let cmd = parse(&["exec", "web", "echo", "hi"]);
        let (c, argv) = cmd.split().unwrap();
        assert_eq!(c, None);
        assert_eq!(argv, ["echo", "hi"]);
    }

    #[test]
    fn split_flags_after_dashes_belong_to_command() {
        let cmd = parse(&["exec", "-e", "A=1", "web", "--", "ls", "-l", "--help"]);
        let (_, argv) = cmd.split().unwrap();
        assert_eq!(argv, ["ls", "-l", "--help"]);
        assert_eq!(cmd.env, ["A=1"]);
    }

    #[test]
    fn split_no_command_is_usage_error() {
        let cmd = parse(&["exec", "web", "--"]);
        assert!(cmd.split().is_err());
    }
}
