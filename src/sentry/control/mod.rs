//! The sentry's end of the control socket (see `crate::control` for the
//! protocol): starting the containers, `ps`, `exec`, signals, pause and
//! resume, stats.
//!
//! The launcher binds and listens on `<state dir>/control.sock` and hands
//! the listening fd to the sandbox, so the sentry never names a host path
//! and its seccomp filter only adds accept4 on that one fd. A thread
//! accepts; each connection is served on a thread of its own, which may
//! block (an exec'd process's connection lasts as long as the process).
//!
//! Lock order: nothing here holds a lock while calling into the kernel;
//! the kernel's own locks (`PidNs`, `Group`, `PauseGate`) are leaves.

mod exec;
mod stream;
mod watch;

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc, Mutex};

pub use stream::HostStream;
pub use watch::watch_gofer;

use super::kernel::process::{Control, Entry, PidNs};
use super::kernel::{signal, Kernel};
use super::vfs::GoferFs;
use super::ContainerSpec;
use crate::control::{wire, ContainerStats, ProcessInfo, Request, Response, Stats};

/// What the control socket reaches: the kernel and every container.
pub struct Sandbox {
    pub kernel: Arc<Kernel>,
    pub containers: Vec<Arc<Container>>,
}

/// One container: its spec, its file system, its processes.
pub struct Container {
    pub spec: ContainerSpec,
    pub fs: Arc<GoferFs>,
    /// Its PID namespace: its own, or the pod's when the pod shares one
    /// (then its processes are those `ns` records in container `index`).
    pub ns: Arc<PidNs>,
    /// Its place in the pod (the sandbox's `containers`).
    pub index: usize,
    /// Its gofer died: the container is being (or was) destroyed.
    pub gofer_dead: AtomicBool,
    /// Its first process has ended (or could not start).
    pub finished: AtomicBool,
}

impl Container {
    /// Container `index` of the pod, in namespace `ns` (a new one for a
    /// namespace of its own).
    pub fn new(spec: ContainerSpec, fs: Arc<GoferFs>, index: usize, ns: Arc<PidNs>) -> Container {
        Container {
            spec,
            fs,
            ns,
            index,
            gofer_dead: AtomicBool::new(false),
            finished: AtomicBool::new(false),
        }
    }

    /// How a process without a parent enters the container: its first
    /// process, or an exec'd one.
    pub fn entry(&self, first: bool) -> Entry {
        Entry {
            container: self.index,
            first,
        }
    }

    /// Its running processes (whatever namespace it shares).
    pub fn members(&self) -> Vec<(i32, Arc<Control>)> {
        self.ns.members_of(self.index)
    }

    /// SIGKILLs every process it has, again every `period` (a process
    /// forked meanwhile is killed too), until `done` says so.
    pub fn kill_until(&self, period: std::time::Duration, done: impl Fn() -> bool) {
        while !done() {
            for (_, ctl) in self.members() {
                signal::send(&ctl, libc::SIGKILL);
            }
            std::thread::sleep(period);
        }
    }

    /// Its first process while it runs (the mini-init, or the command).
    pub fn first(&self) -> Option<Arc<Control>> {
        self.ns.first_of(self.index).map(|(_, c)| c)
    }
}

/// What the `start` request hands the boot thread: the output fds (empty
/// when it passed none), and where to say that the containers started.
pub type Start = (Vec<OwnedFd>, mpsc::Sender<()>);

/// Until the `start` request: where it goes.
type StartTx = Mutex<Option<mpsc::Sender<Start>>>;

/// How long `start` waits for the first processes to exist.
const START_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Serves `listener` from a thread of its own. The receiver yields the
/// `start` request.
pub fn serve(sandbox: Arc<Sandbox>, listener: OwnedFd) -> std::io::Result<mpsc::Receiver<Start>> {
    let (tx, rx) = mpsc::channel();
    let start: Arc<StartTx> = Arc::new(Mutex::new(Some(tx)));
    let listener = UnixListener::from(listener);
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || accept_loop(sandbox, listener, start))?;
    Ok(rx)
}

fn accept_loop(sandbox: Arc<Sandbox>, listener: UnixListener, start: Arc<StartTx>) {
    loop {
        let conn = match listener.accept() {
            Ok((c, _)) => c,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                log::error!("control socket: accept: {e}; no more control requests");
                return;
            }
        };
        let (sb, st) = (sandbox.clone(), start.clone());
        let spawned = std::thread::Builder::new()
            .name("control-conn".into())
            .spawn(move || serve_one(&sb, &st, conn));
        if let Err(e) = spawned {
            log::warn!("control socket: no thread for a connection: {e}");
        }
    }
}

/// Serves the one request of `conn`.
fn serve_one(sb: &Sandbox, start: &StartTx, conn: UnixStream) {
    let (req, fds) = match wire::recv::<Request>(conn.as_fd()) {
        Ok(Some(r)) => r,
        Ok(None) => return,
        Err(e) => {
            log::warn!("control socket: bad request: {e}");
            let _ = reply(
                &conn,
                &Response::Error {
                    message: format!("bad request: {e}"),
                },
            );
            return;
        }
    };
    log::debug!("control request {req:?} with {} fd(s)", fds.len());
    let resp = match req {
        Request::Start { .. } => start_containers(sb, start, fds),
        Request::Ps => Ok(Response::Ps { processes: ps(sb) }),
        Request::Exec(req) => return exec::serve(sb, req, fds, &conn),
        Request::Signal {
            container,
            signal,
            all,
        } => send_signal(sb, container.as_deref(), signal, all),
        Request::Pause => pause(sb),
        Request::Resume => {
            sb.kernel.pause.resume();
            Ok(Response::Ok)
        }
        Request::Stats => Ok(Response::Stats(stats(sb))),
        Request::Resize {
            container: name,
            tty,
            rows,
            cols,
        } => resize(sb, name.as_deref(), tty, rows, cols),
    };
    let resp = resp.unwrap_or_else(|message| Response::Error { message });
    let _ = reply(&conn, &resp);
}

pub(super) fn reply(conn: &UnixStream, resp: &Response) -> std::io::Result<()> {
    wire::send(conn.as_fd(), resp, &[])
}

fn start_containers(sb: &Sandbox, start: &StartTx, fds: Vec<OwnedFd>) -> Result<Response, String> {
    if !fds.is_empty() && fds.len() != sb.containers.len() {
        return Err(format!(
            "start: {} output fds for {} containers",
            fds.len(),
            sb.containers.len()
        ));
    }
    let tx = start
        .lock()
        .unwrap()
        .take()
        .ok_or("the containers already started")?;
    let (ack_tx, ack) = mpsc::channel();
    tx.send((fds, ack_tx))
        .map_err(|_| "the sentry is not waiting to start".to_string())?;
    ack.recv_timeout(START_TIMEOUT)
        .map_err(|_| "the containers did not start".to_string())?;
    Ok(Response::Ok)
}

/// The container `name` names (None: the only one).
pub(super) fn container<'a>(
    sb: &'a Sandbox,
    name: Option<&str>,
) -> Result<&'a Arc<Container>, String> {
    match name {
        Some(n) => sb
            .containers
            .iter()
            .find(|c| c.spec.name == n)
            .ok_or_else(|| format!("no container {n:?} in this pod")),
        None if sb.containers.len() == 1 => Ok(&sb.containers[0]),
        None => Err("the pod has several containers: name one".into()),
    }
}

fn ps(sb: &Sandbox) -> Vec<ProcessInfo> {
    let paused = sb.kernel.pause.is_paused();
    let mut out = Vec::new();
    for c in &sb.containers {
        for (pid, ppid, control) in c.ns.snapshot(c.index) {
            out.push(process_info(&c.spec.name, pid, ppid, control, paused));
        }
    }
    out
}

fn process_info(
    container: &str,
    pid: i32,
    ppid: i32,
    control: Option<Arc<Control>>,
    paused: bool,
) -> ProcessInfo {
    let Some(ctl) = control else {
        return ProcessInfo {
            container: container.into(),
            pid,
            ppid,
            state: "zombie".into(),
            threads: 0,
            cpu_ns: 0,
            command: "<defunct>".into(),
        };
    };
    let group = &ctl.group;
    let state = if paused {
        "paused"
    } else if ctl.stopped.load(std::sync::atomic::Ordering::SeqCst) {
        "stopped"
    } else {
        "running"
    };
    let (user, sys) = group.times();
    let cmdline = group.cmdline.lock().unwrap().clone();
    let command = cmdline
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    ProcessInfo {
        container: container.into(),
        pid,
        ppid,
        state: state.into(),
        threads: group.threads().len(),
        cpu_ns: user + sys,
        command,
    }
}

fn send_signal(sb: &Sandbox, name: Option<&str>, sig: i32, all: bool) -> Result<Response, String> {
    if !(1..=64).contains(&sig) {
        return Err(format!("bad signal number {sig}"));
    }
    let targets: Vec<&Arc<Container>> = match name {
        Some(_) => vec![container(sb, name)?],
        None => sb.containers.iter().collect(),
    };
    let mut sent = 0;
    for c in targets {
        let procs = if all {
            c.members()
        } else {
            c.first().map(|ctl| vec![(0, ctl)]).unwrap_or_default()
        };
        for (_, ctl) in procs {
            signal::send(&ctl, sig);
            sent += 1;
        }
    }
    if sent == 0 {
        return Err("no process to signal: the containers have exited".into());
    }
    Ok(Response::Ok)
}

/// Every live thread of every container.
fn all_threads(sb: &Sandbox) -> Vec<Arc<Control>> {
    sb.containers
        .iter()
        .flat_map(|c| c.members())
        .flat_map(|(_, ctl)| ctl.group.threads())
        .collect()
}

/// A new window size for pty `tty` of a container (SIGWINCH follows).
fn resize(
    sb: &Sandbox,
    name: Option<&str>,
    tty: u32,
    rows: u16,
    cols: u16,
) -> Result<Response, String> {
    let c = container(sb, name)?;
    let term =
        c.fs.pts
            .terminal(tty)
            .ok_or_else(|| format!("no pty {tty} in container {}", c.spec.name))?;
    let [_, _, x, y] = term.winsize();
    term.set_winsize([rows, cols, x, y]);
    Ok(Response::Ok)
}

fn pause(sb: &Sandbox) -> Result<Response, String> {
    sb.kernel.pause.pause(&all_threads(sb))?;
    Ok(Response::Ok)
}

fn stats(sb: &Sandbox) -> Stats {
    let containers = sb
        .containers
        .iter()
        .map(|c| {
            let members = c.members();
            let (mut user, mut sys) = (0, 0);
            for (_, ctl) in &members {
                let (u, s) = ctl.group.times();
                let (cu, cs) = ctl.group.child_times.get();
                user += u + cu;
                sys += s + cs;
            }
            ContainerStats {
                name: c.spec.name.clone(),
                processes: members.len(),
                cpu_user_ns: user,
                cpu_system_ns: sys,
            }
        })
        .collect();
    Stats {
        memory_used: sb.kernel.memory.used_bytes(),
        memory_limit: sb.kernel.memory.size(),
        containers,
    }
}
