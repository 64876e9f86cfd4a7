//! `exec`: a new process in a running container, with the caller's stdio
//! (three fds passed over the control socket) and its exit status sent
//! back on the same connection.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::{mpsc, Arc};

use super::{container, reply, HostStream, Sandbox};
use crate::control::{ExecRequest, Response};
use crate::sentry::kernel::task::Exit;
use crate::sentry::vfs::{FdTable, OpenFile};

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
    if ctr.ns.control(1).is_none() {
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
    std::thread::Builder::new()
        .name(format!("exec-{}", ctr.spec.name))
        .spawn(move || {
            let fds = FdTable::default();
            for (n, fd) in stdio.into_iter().enumerate() {
                let flags = if n == 0 {
                    libc::O_RDONLY
                } else {
                    libc::O_WRONLY
                } as u32;
                fds.set(n, OpenFile::new(Arc::new(HostStream::new(fd)), flags), 0);
            }
            let mut task = match crate::sentry::boot::new_task(k, &ctr, fds) {
                Ok(t) => t,
                Err(e) => {
                    let _ = tx.send(Response::Error {
                        message: format!("exec: creating the process: {}", e.errno()),
                    });
                    return;
                }
            };
            if let Err(e) = crate::sentry::boot::start(&mut task, &spec) {
                let line = format!("sandboxd: exec: {}\n", e.message);
                let _ = task.fds.get(2).map(|f| f.ops.write(line.as_bytes(), 0));
                task.exit = Some(Exit::Code(e.status as u8));
                task.run_to_exit();
                let _ = tx.send(Response::ExecExited { status: e.status });
                return;
            }
            let _ = tx.send(Response::ExecStarted { pid: task.pid });
            let exit = task.run_to_exit();
            let _ = tx.send(Response::ExecExited {
                status: exit.shell_status(),
            });
        })
        .map_err(|e| format!("exec: no thread for the process: {e}"))?;
    Ok(())
}
