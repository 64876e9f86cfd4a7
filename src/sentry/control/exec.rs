//! `exec`: a new process in a running container, with the caller's stdio
//! (three fds passed over the control socket) and its exit status sent
//! back on the same connection.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::{mpsc, Arc};

use super::{container, reply, Container, HostStream, Sandbox};
use crate::abi::Errno;
use crate::control::{ExecRequest, Response};
use crate::sentry::kernel::task::Exit;
use crate::sentry::vfs::tty_console::{Console, Input};
use crate::sentry::vfs::{FdTable, OpenFile};
use crate::sentry::ContainerSpec;

/// Serves an exec request to its end: `ExecStarted`, then `ExecExited`;
/// or one `Error`.
pub fn serve(sb: &Sandbox, req: ExecRequest, fds: Vec<OwnedFd>, conn: &UnixStream) {
    let (tx, rx) = mpsc::channel();
    if let Err(message) = spawn(sb, req, fds, tx) {
        let _ = reply(conn, &Response::Error { message });
        return;
    }
    while let Ok(resp) = rx.recv() {
        let last = matches!(resp, Response::ExecExited { .. } | Response::Error { .. });
        // A caller that went away leaves the process running.
        let _ = reply(conn, &resp);
        if last {
            return;
        }
    }
}

/// The exec'd process's fds 0-2: the caller's stdio, or with `tty` a
/// new pty's slave whose master is copied from the caller's stdin and to
/// its stdout.
fn exec_stdio(
    ctr: &Container,
    spec: &ContainerSpec,
    stdio: [OwnedFd; 3],
    tty: bool,
    winsize: Option<(u16, u16)>,
) -> Result<(FdTable, Option<Console>), Errno> {
    let fds = FdTable::default();
    let [stdin, stdout, stderr] = stdio;
    if tty {
        let sink = Arc::new(HostStream::new(stdout));
        let input = Some(Input::Fd(stdin));
        let (console, slave) = Console::open(&ctr.fs, spec.uid, winsize, input, sink)?;
        for n in 0..3 {
            fds.set(n, slave.clone(), 0);
        }
        return Ok((fds, Some(console)));
    }
    for (n, fd) in [stdin, stdout, stderr].into_iter().enumerate() {
        let flags = if n == 0 {
            libc::O_RDONLY
        } else {
            libc::O_WRONLY
        } as u32;
        fds.set(n, OpenFile::new(Arc::new(HostStream::new(fd)), flags), 0);
    }
    Ok((fds, None))
}

fn spawn(
    sb: &Sandbox,
    req: ExecRequest,
    fds: Vec<OwnedFd>,
    tx: mpsc::Sender<Response>,
) -> Result<(), String> {
    let ctr = container(sb, req.container.as_deref())?.clone();
    if sb.kernel.pause.is_paused() {
        return Err("the pod is paused".into());
    }
    if ctr.gofer_dead.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(format!(
            "container {} was destroyed: its gofer died",
            ctr.spec.name
        ));
    }
    if ctr.first().is_none() {
        return Err(format!("container {} has exited", ctr.spec.name));
    }
    if req.argv.is_empty() {
        return Err("exec: empty command".into());
    }
    let stdio: [OwnedFd; 3] = fds
        .try_into()
        .map_err(|v: Vec<OwnedFd>| format!("exec: expected 3 stdio fds, got {}", v.len()))?;
    let mut spec = ctr.spec.clone();
    spec.command = req.argv;
    spec.init = false;
    for e in req.env {
        let key = e.split('=').next().unwrap_or_default().to_string();
        spec.env
            .retain(|old| old.split('=').next() != Some(key.as_str()));
        spec.env.push(e);
    }
    if let Some(w) = req.workdir {
        spec.workdir = w;
    }
    let k = sb.kernel.clone();
    let (tty, winsize) = (req.tty, req.winsize);
    std::thread::Builder::new()
        .name(format!("exec-{}", ctr.spec.name))
        .spawn(move || {
            let (fds, console) = match exec_stdio(&ctr, &spec, stdio, tty, winsize) {
                Ok(r) => r,
                Err(e) => {
                    let _ = tx.send(Response::Error {
                        message: format!("exec: opening a terminal: {e}"),
                    });
                    return;
                }
            };
            let mut task = match crate::sentry::boot::new_task(k, &ctr, fds, false) {
                Ok(t) => t,
                Err(e) => {
                    let _ = tx.send(Response::Error {
                        message: format!("exec: creating the process: {}", e.errno()),
                    });
                    return;
                }
            };
            if let Some(con) = &console {
                // A process of its own session, with the pty as its terminal.
                let _ = con.control(&ctr.ns, task.pid);
            }
            let pty = console.as_ref().map(|c| c.term.index);
            let status = match crate::sentry::boot::start(&mut task, &spec) {
                Err(e) => {
                    let line = format!("sandboxd: exec: {}\n", e.message);
                    let _ = task.fds.get(2).map(|f| f.ops.write(line.as_bytes(), 0));
                    task.exit = Some(Exit::Code(e.status as u8));
                    task.run_to_exit();
                    e.status
                }
                Ok(()) => {
                    let _ = tx.send(Response::ExecStarted {
                        pid: task.pid,
                        tty: pty,
                    });
                    task.run_to_exit().shell_status()
                }
            };
            // Every byte of a terminal's output goes out before the status.
            drop(task);
            if let Some(con) = console {
                con.finish(crate::sentry::boot::CONSOLE_DRAIN);
            }
            let _ = tx.send(Response::ExecExited { status });
        })
        .map_err(|e| format!("exec: no thread for the process: {e}"))?;
    Ok(())
}
