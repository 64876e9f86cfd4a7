//! Starting the sentry: guest memory, the platform, the kernel, and the
//! first process of each container.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use super::control::{Container, HostStream, Sandbox};
use super::kernel::process::PidNs;
use super::kernel::task::{default_rlimits, Exit, Inherit, Memory, SpawnError};
use super::kernel::{Creds, Kernel, Task};
use super::mm::memory::GuestMemory;
use super::platform::{self, PlatformError};
use super::vfs::dev;
use super::vfs::memfile::MemFile;
use super::vfs::tty_console::{Console, Input};
use super::vfs::{resolve, FdTable, FileOps, Follow, GoferFs, OpenFile, StdioFile};
use super::vfs::{tmpfs, volume, Node};
use super::{ContainerSpec, MountKind, SentrySpec};

use crate::abi::Errno;
use crate::gofer::GoferClient;

/// Guest memory when the pod sets no limit.
const DEFAULT_MEMORY: u64 = 2 << 30;
/// PATH used to find a command when the container's env has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A failure of the sentry itself (not of the guest).
#[derive(Debug, thiserror::Error)]
pub enum SentryError {
    #[error("creating guest memory")]
    Memory(#[from] super::mm::memory::MemoryError),
    #[error("platform {name}")]
    Platform {
        name: String,
        #[source]
        source: PlatformError,
    },
    #[error("container {name}: attaching to its gofer: {errno}")]
    Attach { name: String, errno: Errno },
    #[error("container {name}: mounting {target}: {reason}")]
    Mount {
        name: String,
        target: String,
        reason: String,
    },
    #[error("spec names {containers} containers but {gofers} gofer sockets were passed")]
    GoferCount { containers: usize, gofers: usize },
    #[error("container {name}: opening its terminal: {errno}")]
    Console { name: String, errno: Errno },
    #[error("container {name}: creating its first process")]
    Task {
        name: String,
        #[source]
        source: SpawnError,
    },
    #[error("starting the thread of container {name}")]
    SpawnThread {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("container thread panicked")]
    Panicked,
    #[error("serving the control socket")]
    Control(#[source] std::io::Error),
    #[error("the control socket closed before the containers were started")]
    NoStart,
    #[error("watching a gofer socket")]
    WatchGofer(#[source] std::io::Error),
}

/// How starting a container's command failed, as the user sees it.
pub(super) struct StartError {
    pub status: i32,
    pub message: String,
}

/// Runs the pod described by `spec` to completion: `gofers[i]` is the
/// connected gofer socket of `spec.containers[i]`, `kvm` an open
/// `/dev/kvm`, `control` the listening control socket (the containers
/// then start on its `start` request; see `sentry::control`). Returns the pod's exit status: the first non-zero container
/// status, else 0 (126/127 when a command cannot be run or is not found).
pub fn run(
    spec: SentrySpec,
    gofers: Vec<OwnedFd>,
    kvm: Option<OwnedFd>,
    control: Option<OwnedFd>,
) -> Result<i32, SentryError> {
    if gofers.len() != spec.containers.len() {
        return Err(SentryError::GoferCount {
            containers: spec.containers.len(),
            gofers: gofers.len(),
        });
    }
    let size = if spec.memory == 0 {
        DEFAULT_MEMORY
    } else {
        spec.memory
    };
    let memory = Arc::new(GuestMemory::new(size, size)?);
    let platform = platform::create(&spec.platform, memory.clone(), kvm).map_err(|source| {
        SentryError::Platform {
            name: spec.platform.clone(),
            source,
        }
    })?;
    let hostname = if spec.hostname.is_empty() {
        "sandbox".to_string()
    } else {
        spec.hostname.clone()
    };
    let cpus = match spec.cpus {
        0 => crate::sys::process::host_cpus(),
        n => n as usize,
    };
    let kernel = Kernel::new(
        platform,
        memory.clone(),
        spec.strace,
        hostname.clone(),
        cpus,
    );
    // The pod's memory volumes: one tmpfs each, in guest memory.
    let volumes: HashMap<String, Arc<Node>> = spec
        .volumes
        .iter()
        .map(|v| (v.name.clone(), volume::new_volume(v.size)))
        .collect();
    let mut containers = Vec::new();
    // `"pid": "pod"`: one namespace for all; else one each.
    let pod_ns = PidNs::new();
    for (index, (c, sock)) in spec.containers.into_iter().zip(gofers).enumerate() {
        let watch = sock.try_clone().map_err(SentryError::WatchGofer)?;
        let fs =
            GoferFs::attach(GoferClient::new(sock), memory.clone(), size).map_err(|errno| {
                SentryError::Attach {
                    name: c.name.clone(),
                    errno,
                }
            })?;
        build_tree(&fs, &c, &hostname, &volumes, kernel.cpus())?;
        let ns = if spec.shared_pid {
            pod_ns.clone()
        } else {
            PidNs::new()
        };
        let ctr = Arc::new(Container::new(c, Arc::new(fs), index, ns));
        super::control::watch_gofer(ctr.clone(), watch).map_err(SentryError::WatchGofer)?;
        containers.push(ctr);
    }
    let sandbox = Arc::new(Sandbox {
        kernel: kernel.clone(),
        containers,
    });
    // With a control socket the containers start when the launcher says
    // so (Created -> Running), with the outputs it hands over.
    let (outputs, ack) = match control {
        Some(listener) => super::control::serve(sandbox.clone(), listener)
            .map_err(SentryError::Control)?
            .recv()
            .map_err(|_| SentryError::NoStart)?,
        None => (Vec::new(), mpsc::channel().0),
    };
    let mut outputs = outputs.into_iter();
    let (started_tx, started) = mpsc::channel::<()>();
    let flags: Vec<Arc<StartFlag>> = sandbox.containers.iter().map(|_| Arc::default()).collect();
    let mut handles = vec![];
    for (i, ctr) in sandbox.containers.iter().enumerate() {
        let (k, ctr) = (kernel.clone(), ctr.clone());
        let name = ctr.spec.name.clone();
        let output = outputs.next();
        let started = Started {
            _all: started_tx.clone(),
            mine: flags[i].clone(),
        };
        // `after`: wait until those containers' first processes exist
        // (the pod file was checked for unknown names and cycles).
        let deps: Vec<Arc<StartFlag>> = ctr
            .spec
            .after
            .iter()
            .filter_map(|d| sandbox.containers.iter().position(|c| c.spec.name == *d))
            .map(|j| flags[j].clone())
            .collect();
        let h = std::thread::Builder::new()
            .name(format!("ctr-{name}"))
            .spawn(move || {
                deps.iter().for_each(|d| d.wait());
                run_container(k, &ctr, output, started)
            })
            .map_err(|source| SentryError::SpawnThread {
                name: name.clone(),
                source,
            })?;
        handles.push(h);
    }
    drop(started_tx);
    // `start` is answered once every container's first process exists
    // (or failed to), so the pod's processes are there to signal.
    while started.recv().is_ok() {}
    let _ = ack.send(());
    // The main containers end the pod; background helpers are then
    // stopped, and their statuses do not count.
    let (main, background): (Vec<_>, Vec<_>) = sandbox
        .containers
        .iter()
        .zip(handles)
        .partition(|(c, _)| !c.spec.background);
    let mut status = 0;
    for (ctr, h) in main {
        let mut s = h.join().map_err(|_| SentryError::Panicked)??;
        if ctr.gofer_dead.load(Ordering::SeqCst) {
            s = crate::exit::ExitStatus::Failed.code().into();
        }
        if status == 0 {
            status = s;
        }
    }
    for (ctr, h) in background {
        stop_background(ctr, &h);
        h.join().map_err(|_| SentryError::Panicked)??;
    }
    Ok(status)
}

/// How long a background helper has between SIGTERM and SIGKILL.
const BACKGROUND_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Stops a background container whose thread is `h`: SIGTERM to its
/// first process (the mini-init passes it on to the command), then, if it
/// has not ended within BACKGROUND_GRACE, SIGKILL to every process it has.
fn stop_background(ctr: &Container, h: &std::thread::JoinHandle<Result<i32, SentryError>>) {
    use super::kernel::signal;
    if h.is_finished() {
        return;
    }
    log::info!(
        "container {}: main containers done, stopping it",
        ctr.spec.name
    );
    if let Some(init) = ctr.first() {
        signal::send(&init, libc::SIGTERM);
    }
    let deadline = std::time::Instant::now() + BACKGROUND_GRACE;
    while !h.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    ctr.kill_until(std::time::Duration::from_millis(10), || h.is_finished());
}

/// Set once a container's first process exists (or it failed to start).
#[derive(Default)]
struct StartFlag {
    done: std::sync::Mutex<bool>,
    cond: std::sync::Condvar,
}

impl StartFlag {
    fn wait(&self) {
        let mut done = self.done.lock().unwrap();
        while !*done {
            done = self.cond.wait(done).unwrap();
        }
    }
}

/// Held by a container's thread until its first process exists: dropping
/// it tells the `start` request (`_all`) and the containers `after` it.
struct Started {
    _all: mpsc::Sender<()>,
    mine: Arc<StartFlag>,
}

impl Drop for Started {
    fn drop(&mut self) {
        *self.mine.done.lock().unwrap() = true;
        self.mine.cond.notify_all();
    }
}

/// Mounts the container's file systems (the standard ones, then its
/// own in order) and writes the default /etc files.
fn build_tree(
    fs: &GoferFs,
    c: &ContainerSpec,
    hostname: &str,
    volumes: &HashMap<String, Arc<Node>>,
    cpus: usize,
) -> Result<(), SentryError> {
    let fail = |target: &str, reason: String| SentryError::Mount {
        name: c.name.clone(),
        target: target.to_string(),
        reason,
    };
    fs.mount_standard(tmpfs::LIMIT)
        .map_err(|e| fail("/tmp", errno_text(e)))?;
    fs.mount_sysfs(cpus);
    for m in &c.mounts {
        let target = m.target.as_bytes();
        match &m.kind {
            MountKind::Tmpfs { size } => fs
                .mount_tmpfs(target, if *size == 0 { tmpfs::LIMIT } else { *size })
                .map_err(|e| fail(&m.target, errno_text(e)))?,
            MountKind::Bind { aname, readonly } => fs
                .mount_bind(target, aname, *readonly)
                .map_err(|e| fail(&m.target, errno_text(e)))?,
            MountKind::Volume { name, readonly } => {
                let root = volumes
                    .get(name)
                    .ok_or_else(|| fail(&m.target, format!("no memory volume {name:?}")))?;
                fs.mount_volume(target, root, *readonly)
                    .map_err(|e| fail(&m.target, errno_text(e)))?
            }
        }
    }
    fs.default_etc(hostname)
        .map_err(|e| fail("/etc", errno_text(e)))
}

/// Sets its flag when dropped.
struct Finished<'a>(&'a AtomicBool);

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Runs one container's command as its first process; returns its
/// shell-style status. `output`, when given, is its stdout and stderr.
fn run_container(
    k: Arc<Kernel>,
    ctr: &Container,
    output: Option<OwnedFd>,
    started: Started,
) -> Result<i32, SentryError> {
    // Whatever happens, the container counts as started when this goes,
    // and as finished when this returns.
    let _started = started;
    let _finished = Finished(&ctr.finished);
    let c = &ctr.spec;
    let (fds, console) = container_stdio(ctr, output).map_err(|errno| SentryError::Console {
        name: c.name.clone(),
        errno,
    })?;
    let mut task = new_task(k, ctr, fds, true).map_err(|source| SentryError::Task {
        name: c.name.clone(),
        source,
    })?;
    if let (Some(con), false) = (&console, c.init) {
        // The command is the session leader; under the mini-init, the
        // init's child takes the terminal itself (setsid, TIOCSCTTY).
        let _ = con.control(&ctr.ns, task.pid);
    }
    if let Err(e) = start(&mut task, c) {
        let line = format!("sandboxd: container {}: {}\n", c.name, e.message);
        let _ = task.fds.get(2).map(|f| f.ops.write(line.as_bytes(), 0));
        task.exit = Some(Exit::Code(e.status as u8));
        drop(_started);
        task.run_to_exit();
        return Ok(e.status);
    }
    drop(_started);
    let exit = task.run_to_exit();
    if let Exit::Signal(sig) = exit {
        log::info!("container {}: killed by signal {sig}", c.name);
    }
    // Its descriptors close with it; then the console's last output.
    drop(task);
    if let Some(con) = console {
        con.finish(CONSOLE_DRAIN);
    }
    Ok(exit.shell_status())
}

/// How long a console's output may take to drain once its container ended.
pub(super) const CONSOLE_DRAIN: std::time::Duration = std::time::Duration::from_secs(2);

/// The first process's fds 0-2: with `tty`, a pty slave (the console
/// copies the sentry's stdin, when the container reads it, into the
/// master and the master into the output); else the sentry's stdin or,
/// when another container reads it, /dev/null; and `output`, when
/// given, else the sentry's stdout and stderr.
fn container_stdio(
    ctr: &Container,
    output: Option<OwnedFd>,
) -> Result<(FdTable, Option<Console>), Errno> {
    let c = &ctr.spec;
    let fds = FdTable::default();
    let output: Option<Arc<dyn FileOps>> = output.map(|fd| Arc::new(HostStream::new(fd)) as _);
    if c.tty {
        let sink = output.unwrap_or_else(|| Arc::new(StdioFile::new(1)));
        // The launcher's terminal size, when its stdin is one.
        let size = c
            .stdin
            .then(|| StdioFile::new(0).winsize().ok())
            .flatten()
            .map(|b| {
                (
                    u16::from_le_bytes([b[0], b[1]]),
                    u16::from_le_bytes([b[2], b[3]]),
                )
            });
        let input = c.stdin.then_some(Input::Stdin);
        let (console, slave) = Console::open(&ctr.fs, c.uid, size, input, sink)?;
        for fd in 0..3 {
            fds.set(fd, slave.clone(), 0);
        }
        return Ok((fds, Some(console)));
    }
    let stdin: Arc<dyn FileOps> = if c.stdin {
        Arc::new(StdioFile::new(0))
    } else {
        dev::open_device(dev::Device::Null)
    };
    fds.set(0, OpenFile::new(stdin, libc::O_RDONLY as u32), 0);
    for fd in 1..3u8 {
        let file: Arc<dyn FileOps> = match &output {
            Some(out) => out.clone(),
            None => Arc::new(StdioFile::new(fd)),
        };
        fds.set(fd as usize, OpenFile::new(file, libc::O_WRONLY as u32), 0);
    }
    Ok((fds, None))
}

/// A process of its own (no parent: reaped as soon as it exits, unless it
/// is the container's `first` process) in container `ctr`, with
/// descriptors `fds`, created on the calling host thread, which must run it.
pub(super) fn new_task(
    k: Arc<Kernel>,
    ctr: &Container,
    fds: FdTable,
    first: bool,
) -> Result<Task, SpawnError> {
    let c = &ctr.spec;
    let root = ctr.fs.root().clone();
    let inh = Inherit {
        fs: ctr.fs.clone(),
        cwd: root.clone(),
        root,
        fds,
        creds: Creds::new(c.uid, c.gid),
        groups: vec![],
        umask: 0o022,
        fs_share: None,
        sigactions: Arc::new(std::sync::Mutex::new([[0; 4]; 64])),
        sigmask: 0,
        rlimits: default_rlimits(),
        comm: [0; 16],
        exe: Default::default(),
        layout: Default::default(),
        regs: Default::default(),
        ns: ctr.ns.clone(),
        parent: 0,
        entry: ctr.entry(first),
    };
    Task::new(k, inh, Memory::Fresh)
}

/// Sets the working directory and loads the command.
pub(super) fn start(task: &mut Task, c: &ContainerSpec) -> Result<(), StartError> {
    let root = task.root.clone();
    let wd = resolve(&task.fs, &root, &root, c.workdir.as_bytes(), Follow::Yes)
        .map_err(|e| fail(125, format!("workdir {:?}: {}", c.workdir, errno_text(e))))?;
    if !wd.stat.is_dir() {
        return Err(fail(
            125,
            format!("workdir {:?}: not a directory", c.workdir),
        ));
    }
    task.cwd = wd;
    let path = find_command(task, c)?;
    let mut argv: Vec<Vec<u8>> = c.command.iter().map(|a| a.as_bytes().to_vec()).collect();
    let mut envp: Vec<Vec<u8>> = c.env.iter().map(|e| e.as_bytes().to_vec()).collect();
    // As container runtimes do: a command gets the default PATH (and a
    // HOSTNAME) when the pod sets none.
    if !c.env.iter().any(|e| e.starts_with("PATH=")) {
        envp.push(format!("PATH={DEFAULT_PATH}").into_bytes());
    }
    if !c.env.iter().any(|e| e.starts_with("HOSTNAME=")) {
        envp.push(format!("HOSTNAME={}", task.k.hostname()).into_bytes());
    }
    if c.init {
        // Check the command here, where the error can name it, then let
        // the mini-init (PID 1) start it as PID 2.
        task.open_executable(&path)
            .map_err(|e| exec_error(&path, e))?;
        argv.insert(0, path.clone());
        argv.insert(0, INIT_PATH.to_vec());
        let init = MemFile::new(crate::init_binary::INIT, 1);
        return task
            .exec_image(INIT_PATH, Some(init), argv, &envp)
            .map_err(|e| exec_error(INIT_PATH, e));
    }
    task.exec(&path, argv, &envp)
        .map_err(|e| exec_error(&path, e))
}

/// Finds the executable for argv[0]: as a path if it has a '/', else in
/// the container's $PATH.
fn find_command(task: &Task, c: &ContainerSpec) -> Result<Vec<u8>, StartError> {
    let arg0 = c
        .command
        .first()
        .ok_or_else(|| fail(125, "empty command".into()))?;
    if arg0.contains('/') {
        return Ok(arg0.as_bytes().to_vec());
    }
    let path_env = c
        .env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    for dir in path_env.split(':').filter(|d| !d.is_empty()) {
        let cand = format!("{dir}/{arg0}");
        if let Ok(node) = resolve(
            &task.fs,
            &task.root,
            &task.cwd,
            cand.as_bytes(),
            Follow::Yes,
        ) {
            if node.stat.is_reg() {
                return Ok(cand.into_bytes());
            }
        }
    }
    Err(fail(
        127,
        format!("exec {arg0:?}: executable file not found in $PATH"),
    ))
}

/// The guest path under which the mini-init runs (it is not in the image).
const INIT_PATH: &[u8] = b"/.sandboxd-init";

/// A command that cannot be started: 127 when it does not exist, else 126.
fn exec_error(path: &[u8], e: Errno) -> StartError {
    let status = if e == Errno::ENOENT { 127 } else { 126 };
    fail(
        status,
        format!(
            "exec {:?}: {}",
            String::from_utf8_lossy(path),
            errno_text(e)
        ),
    )
}

fn fail(status: i32, message: String) -> StartError {
    StartError { status, message }
}

fn errno_text(e: Errno) -> String {
    let s = std::io::Error::from_raw_os_error(e.0).to_string();
    s.split(" (os error").next().unwrap_or_default().to_string()
}
