//! The launcher role: prepares the images, starts one gofer per container
//! and the sandbox, waits for each to report ready on its error pipe,
//! forwards SIGINT/SIGTERM/SIGHUP to the sandbox, and turns the sandbox's
//! end into the pod's exit status. Whatever happens, every child it started
//! is killed (if still running) and reaped before it returns; and the
//! children die with it if the launcher itself is killed (PDEATHSIG).
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use crate::exit::ExitStatus;
use crate::image::{ImageError, Store};
use crate::pod::Pod;
use crate::sys::fd::{pipe, sealed_memfd, seqpacket_pair};
use crate::sys::process::{self, signal_name, Exit};
use crate::sys::signal::SignalPipe;
use crate::sys::spawn::{self, Child, Command};
use crate::sys::term;

use super::args::{GoferArgs, SandboxArgs};
use super::errpipe::{self, chain, Outcome};
use super::track::{Track, TrackError};
use super::{spec, RunOptions};

/// Signals the launcher passes on to the sandbox.
const FORWARDED: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// Environment variables the roles inherit; everything else is dropped.
const PASSED_ENV: [&str; 2] = ["RUST_BACKTRACE", "RUST_LOG"];

/// Why a run could not complete; printed as `sandboxd: <chain>`.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("open /proc/self/exe")]
    OpenExe(#[source] io::Error),
    #[error("container {container}: image {image:?} is not in the pod's images")]
    UnknownImage { container: String, image: String },
    #[error("prepare image {name:?}")]
    PrepareImage {
        name: String,
        #[source]
        source: ImageError,
    },
    #[error("install signal handlers")]
    Signals(#[source] io::Error),
    #[error("create {what}")]
    Plumbing {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("serialize the sentry spec")]
    Spec(#[source] serde_json::Error),
    #[error("start {role}")]
    Spawn {
        role: String,
        #[source]
        source: io::Error,
    },
    #[error("wait for {role}")]
    Wait {
        role: String,
        #[source]
        source: io::Error,
    },
    /// A role's own one-line report of its set-up failure.
    #[error("{0}")]
    Setup(String),
    #[error("{role} died during set-up: {how}")]
    DiedInSetup { role: String, how: String },
    #[error("sandbox died: {0}")]
    SandboxDied(String),
    /// A forwarded signal arrived before the sandbox was ready.
    #[error("interrupted by {}", signal_name(*.0))]
    Interrupted(libc::c_int),
    #[error("pod state")]
    Track(#[from] TrackError),
}

/// The started children; dropping it kills and reaps whatever is left.
#[derive(Default)]
struct Children {
    gofers: Vec<(String, Child)>,
    sandbox: Option<Child>,
}

impl Drop for Children {
    fn drop(&mut self) {
        if let Some(c) = self.sandbox.take() {
            let _ = c.kill_and_reap();
        }
        for (_, c) in self.gofers.drain(..) {
            let _ = c.kill_and_reap();
        }
    }
}

/// Runs `pod` to its end; with `track`, records it in its state directory
/// (the caller removes or keeps that).
pub fn run(pod: &Pod, opts: &RunOptions, track: Option<&Track>) -> ExitStatus {
    match launch(pod, opts, track) {
        Ok(status) => status,
        Err(LaunchError::Interrupted(sig)) => ExitStatus::Container(128 + sig as u8),
        Err(e) => {
            let line = format!("sandboxd: {}", chain(&e));
            if let Some(t) = track {
                t.failed(&line);
            }
            eprintln!("{line}");
            ExitStatus::Failed
        }
    }
}

fn launch(pod: &Pod, opts: &RunOptions, track: Option<&Track>) -> Result<ExitStatus, LaunchError> {
    let exe: OwnedFd = std::fs::File::open("/proc/self/exe")
        .map_err(LaunchError::OpenExe)?
        .into();
    let roots = prepare_images(pod, opts)?;
    // A `tty: true` container reading stdin on the launcher's terminal:
    // the terminal goes raw while the pod runs, its size changes follow.
    let console = pod
        .containers
        .iter()
        .find(|(_, c)| c.tty && c.stdin)
        .map(|(name, _)| name.clone())
        .filter(|_| term::is_terminal(term::stdin()));
    let mut wanted = FORWARDED.to_vec();
    if console.is_some() {
        wanted.push(libc::SIGWINCH);
    }
    let signals = SignalPipe::install(&wanted).map_err(LaunchError::Signals)?;
    let listener = track.map(Track::listen).transpose()?;
    let volumes = spec::VolumeDirs::new(pod);
    let mut children = Children::default();
    let mut sentry_ends = Vec::new();
    for (name, root) in roots {
        let (ours, theirs) = seqpacket_pair().map_err(plumbing("gofer socketpair"))?;
        let binds = spec::gofer_binds(&pod.containers[&name], &volumes);
        let args = GoferArgs::new(&name, root, binds);
        let child = start_gofer(exe.as_fd(), args, theirs.as_fd(), &signals)?;
        let pid = child.pid;
        children.gofers.push((name, child));
        if let Some(t) = track {
            t.gofer_started(pid)?;
        }
        sentry_ends.push(ours);
    }
    let mut sentry_spec = spec::build(pod, opts, &volumes);
    if sentry_spec.platform == "auto" {
        if let Some(p) = super::auto_platform::resolve() {
            sentry_spec.platform = p;
        }
    }
    let spec = serde_json::to_vec(&sentry_spec).map_err(LaunchError::Spec)?;
    let spec_fd = sealed_memfd("sandboxd-spec", &spec).map_err(plumbing("spec memfd"))?;
    let mut fds = vec![spec_fd.as_fd()];
    fds.extend(sentry_ends.iter().map(|s| s.as_fd()));
    fds.extend(listener.iter().map(|l| l.as_fd()));
    let args = SandboxArgs::new(sentry_ends.len(), listener.is_some()).to_argv();
    let sandbox = start_role(exe.as_fd(), "sandbox", args, fds, &signals)?;
    drop(sentry_ends);
    drop(listener);
    let pid = sandbox.pid;
    // Until it is waited for, a failure kills and reaps it with the rest.
    children.sandbox = Some(sandbox);
    // Restored when this returns, whichever way.
    let _raw = console
        .as_ref()
        .and_then(|_| term::RawMode::enter(term::stdin()));
    let resize = || {
        if let (Some(name), Some(t)) = (&console, track) {
            resize_console(t, name);
        }
    };
    let copiers = match track {
        Some(t) => {
            t.sandbox_ready(pid)?;
            let sandbox = children.sandbox.as_ref().expect("stored above");
            match t.start() {
                Ok(copiers) => copiers,
                // The sentry failed before it could start the containers:
                // it said why on stderr, its status tells the rest.
                Err(e) if exits_soon(sandbox) => {
                    log::debug!("start failed, the sandbox exited: {}", chain(&e));
                    Vec::new()
                }
                Err(e) => return Err(e.into()),
            }
        }
        None => Vec::new(),
    };
    let sandbox = children.sandbox.take().expect("stored above");
    let status = wait_sandbox(&sandbox, &mut children.gofers, &signals, track, resize);
    // `wait_sandbox` reaped the sandbox unless waiting itself failed; then
    // `children` kills and reaps it, and the gofers in any case.
    children.sandbox = matches!(status, Err(LaunchError::Wait { .. })).then_some(sandbox);
    drop(children);
    for c in copiers {
        let _ = c.join();
    }
    status
}

fn plumbing(what: &'static str) -> impl Fn(io::Error) -> LaunchError {
    move |source| LaunchError::Plumbing { what, source }
}

/// Rootfs directory of each container, in the pod's container order.
fn prepare_images(pod: &Pod, opts: &RunOptions) -> Result<Vec<(String, PathBuf)>, LaunchError> {
    let store = Store::new(opts.store.clone().unwrap_or_else(Store::default_root));
    let mut prepared: BTreeMap<&str, PathBuf> = BTreeMap::new();
    let mut out = Vec::new();
    for (name, c) in &pod.containers {
        let unknown = || LaunchError::UnknownImage {
            container: name.clone(),
            image: c.image.clone(),
        };
        let image = pod.images.get(&c.image).ok_or_else(unknown)?;
        if !prepared.contains_key(c.image.as_str()) {
            let root = store
                .prepare(image)
                .map_err(|source| LaunchError::PrepareImage {
                    name: c.image.clone(),
                    source,
                })?;
            prepared.insert(&c.image, root);
        }
        out.push((name.clone(), prepared[c.image.as_str()].clone()));
    }
    Ok(out)
}

fn start_gofer(
    exe: BorrowedFd<'_>,
    args: GoferArgs,
    sock: BorrowedFd<'_>,
    signals: &SignalPipe,
) -> Result<Child, LaunchError> {
    let role = format!("gofer[{}]", args.container);
    start_role(exe, &role, args.to_argv(), vec![sock], signals)
}

/// Namespaces of both roles: mount, pid, ipc, uts and net always; a user
/// namespace too when not root (best effort: needs unprivileged userns).
fn namespaces() -> libc::c_int {
    let base = libc::CLONE_NEWNS
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWNET;
    if nix::unistd::geteuid().is_root() {
        base
    } else {
        base | libc::CLONE_NEWUSER
    }
}

fn role_env() -> Vec<String> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with("SANDBOXD_") || PASSED_ENV.contains(&k.as_str()))
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

/// Starts a role with `[error pipe, fds...]` at 3, 4, ... and waits until it
/// reports ready. On failure the child is already killed and reaped.
fn start_role(
    exe: BorrowedFd<'_>,
    role: &str,
    argv: Vec<String>,
    fds: Vec<BorrowedFd<'_>>,
    signals: &SignalPipe,
) -> Result<Child, LaunchError> {
    let (err_read, err_write) = pipe().map_err(plumbing("error pipe"))?;
    let mut all = vec![err_write.as_fd()];
    all.extend(fds);
    let cmd = Command {
        exe,
        argv,
        env: role_env(),
        fds: all,
        namespaces: namespaces(),
    };
    let spawned = spawn::spawn(&cmd).map_err(|source| LaunchError::Spawn {
        role: role.into(),
        source,
    });
    drop(cmd);
    drop(err_write);
    let child = spawned?;
    match wait_ready(role, err_read, signals) {
        Ok(()) => Ok(child),
        Err(LaunchError::DiedInSetup { role, .. }) => {
            let how = describe(child.kill_and_reap());
            Err(LaunchError::DiedInSetup { role, how })
        }
        Err(e) => {
            let _ = child.kill_and_reap();
            Err(e)
        }
    }
}

/// Waits for the role's error-pipe message, or a forwarded signal (a
/// window size change before the pod runs changes nothing).
fn wait_ready(role: &str, err: OwnedFd, signals: &SignalPipe) -> Result<(), LaunchError> {
    while let Some(sig) = poll_two(err.as_fd(), signals).map_err(wait_err(role))? {
        if sig != libc::SIGWINCH {
            return Err(LaunchError::Interrupted(sig));
        }
    }
    match errpipe::receive(err).map_err(wait_err(role))? {
        Outcome::Ready => Ok(()),
        Outcome::Failed(line) => Err(LaunchError::Setup(line)),
        Outcome::Silent => Err(LaunchError::DiedInSetup {
            role: role.into(),
            how: String::new(),
        }),
    }
}

fn wait_err(role: &str) -> impl Fn(io::Error) -> LaunchError + '_ {
    move |source| LaunchError::Wait {
        role: role.into(),
        source,
    }
}

/// Blocks until `fd` is readable (returns None) or a forwarded signal
/// arrives (returns it).
fn poll_two(fd: BorrowedFd<'_>, signals: &SignalPipe) -> io::Result<Option<libc::c_int>> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    loop {
        if let Some(sig) = signals.take() {
            return Ok(Some(sig));
        }
        let mut fds = [
            PollFd::new(fd, PollFlags::POLLIN),
            PollFd::new(signals.fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) if fds[0].any().unwrap_or(false) => return Ok(None),
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(io::Error::from(e)),
        }
    }
}

/// Whether `child` has exited or does so within a second.
fn exits_soon(child: &Child) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(child.pidfd.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::from(1000u16)), Ok(n) if n > 0)
}

/// Forwards signals to the sandbox until it exits (a SIGWINCH calls
/// `resize` instead); returns the pod status.
/// A gofer that dies meanwhile is reaped and reported (the sentry destroys
/// its container): one line on stderr, and an event in the pod's state.
fn wait_sandbox(
    sandbox: &Child,
    gofers: &mut Vec<(String, Child)>,
    signals: &SignalPipe,
    track: Option<&Track>,
    resize: impl Fn(),
) -> Result<ExitStatus, LaunchError> {
    let role = "sandbox";
    loop {
        match wait_any(sandbox, gofers, signals).map_err(wait_err(role))? {
            Woken::Sandbox => break,
            Woken::Signal(libc::SIGWINCH) => resize(),
            Woken::Signal(sig) => {
                let _ = process::kill(sandbox.pid, sig);
            }
            Woken::Gofer(i) => {
                let (name, gofer) = gofers.remove(i);
                let how = process::wait(gofer.pid);
                // A gofer ends by itself (status 0) when the sentry's end
                // of its socket closes, i.e. when the sandbox exits.
                if !matches!(how, Ok(Exit::Code(0))) {
                    report_gofer_death(&name, &describe_end(how), track);
                }
            }
        }
    }
    match process::wait(sandbox.pid).map_err(wait_err(role))? {
        Exit::Code(code) => Ok(status_of(code)),
        Exit::Signal(sig) => Err(LaunchError::SandboxDied(describe(Ok(Exit::Signal(sig))))),
    }
}

fn report_gofer_death(container: &str, cause: &str, track: Option<&Track>) {
    eprintln!(
        "sandboxd: container {container}: its gofer died ({cause}); the container was destroyed"
    );
    if let Some(t) = track {
        if let Err(e) = t.gofer_died(container, cause) {
            log::warn!("recording the gofer's death: {}", chain(&e));
        }
    }
}

/// What woke [`wait_any`].
enum Woken {
    Sandbox,
    Signal(libc::c_int),
    /// The gofer at this index has exited.
    Gofer(usize),
}

/// Blocks until the sandbox or a gofer exits, or a forwarded signal comes.
fn wait_any(
    sandbox: &Child,
    gofers: &[(String, Child)],
    signals: &SignalPipe,
) -> io::Result<Woken> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    loop {
        if let Some(sig) = signals.take() {
            return Ok(Woken::Signal(sig));
        }
        let mut fds = vec![
            PollFd::new(sandbox.pidfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(signals.fd(), PollFlags::POLLIN),
        ];
        fds.extend(
            gofers
                .iter()
                .map(|(_, g)| PollFd::new(g.pidfd.as_fd(), PollFlags::POLLIN)),
        );
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {
                // A gofer first: its death may be why the sandbox ended.
                let ready = |f: &PollFd| f.any().unwrap_or(false);
                if let Some(i) = fds[2..].iter().position(ready) {
                    return Ok(Woken::Gofer(i));
                }
                if ready(&fds[0]) {
                    return Ok(Woken::Sandbox);
                }
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(io::Error::from(e)),
        }
    }
}

/// Passes the launcher's window size on to the console of container
/// `name` (its pty 0, the first its devpts made).
fn resize_console(track: &Track, name: &str) {
    let Some((rows, cols)) = term::window_size(term::stdin()) else {
        return;
    };
    let req = crate::control::Request::Resize {
        container: Some(name.to_string()),
        tty: 0,
        rows,
        cols,
    };
    if let Err(e) = crate::control::client::Client::call(&track.dir.control_path(), &req) {
        log::debug!("passing on the window size: {e}");
    }
}

/// The pod status for the sandbox's exit code (125-127 keep their meaning).
fn status_of(code: i32) -> ExitStatus {
    match code {
        125 => ExitStatus::Failed,
        126 => ExitStatus::CannotRun,
        127 => ExitStatus::NotFound,
        c => ExitStatus::Container(c as u8),
    }
}

/// "killed by SIGKILL", "exited with status 3".
fn describe_end(exit: io::Result<Exit>) -> String {
    match exit {
        Ok(Exit::Code(code)) => format!("exited with status {code}"),
        other => describe(other),
    }
}

/// "killed by SIGSYS", "exited with status 3".
fn describe(exit: io::Result<Exit>) -> String {
    match exit {
        Ok(Exit::Signal(sig)) => format!("killed by {}", signal_name(sig)),
        Ok(Exit::Code(code)) => format!("exited with status {code} without a message"),
        Err(e) => format!("cannot tell: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_signal_names_it() {
        assert_eq!(
            describe(Ok(Exit::Signal(libc::SIGKILL))),
            "killed by SIGKILL"
        );
    }

    #[test]
    fn status_of_reserved_codes_keep_meaning() {
        assert_eq!(status_of(0), ExitStatus::Container(0));
        assert_eq!(status_of(130), ExitStatus::Container(130));
        assert_eq!(status_of(127), ExitStatus::NotFound);
        assert_eq!(status_of(125), ExitStatus::Failed);
    }

    #[test]
    fn sandbox_died_message_matches_the_contract() {
        let e = LaunchError::SandboxDied(describe(Ok(Exit::Signal(libc::SIGKILL))));
        assert_eq!(
            format!("sandboxd: {}", chain(&e)),
            "sandboxd: sandbox died: killed by SIGKILL"
        );
    }
}
