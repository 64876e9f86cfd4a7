//! Starting a role: `clone` into new namespaces, then `execveat` of the saved
//! `/proc/self/exe` fd with exactly the fds the role needs.
//!
//! Between `clone` and `execveat` the child runs on a copy of the parent's
//! memory in a possibly multi-threaded process, so it only makes raw,
//! async-signal-safe system calls on data prepared before the clone
//! (`Plan`). In that window it:
//! 1. resets every signal handler and unblocks every signal (the parent
//!    blocks them around the clone so that no handler of the launcher runs
//!    in the child);
//! 2. asks for SIGKILL when its parent dies (`PR_SET_PDEATHSIG`), then checks
//!    that the parent did not die before that (see `parent_alive_pipe`);
//! 3. writes its uid/gid maps when it got a new user namespace;
//! 4. moves the given fds to 3, 4, ... and marks every other fd above stdio
//!    close-on-exec, so the role inherits stdio plus exactly those fds;
//! 5. execs. If anything fails it writes the errno into a close-on-exec
//!    pipe that the parent reads: an empty read means the exec happened.
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that spawned the child exits:
//! spawn from a thread that outlives the child (the launcher's main thread).

use std::ffi::CString;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;

use super::fd::pipe;
use super::process::{self, Exit};

/// First fd number handed to a role; 0-2 are stdio.
pub const FIRST_FD: RawFd = 3;

/// What to start.
pub struct Command<'a> {
    /// The executable, opened for reading (`/proc/self/exe`).
    pub exe: BorrowedFd<'a>,
    pub argv: Vec<String>,
    /// "K=V" pairs; the role gets only these.
    pub env: Vec<String>,
    /// Become fds 3, 4, ... in the child, in this order.
    pub fds: Vec<BorrowedFd<'a>>,
    /// `CLONE_NEW*` flags.
    pub namespaces: libc::c_int,
}

/// A started child; kill and reap it through `process`.
#[derive(Debug)]
pub struct Child {
    pub pid: libc::pid_t,
    /// Readable when the child has exited (for `poll`).
    pub pidfd: OwnedFd,
}

impl Child {
    /// Sends SIGKILL (ignoring a child that is already gone) and reaps it.
    pub fn kill_and_reap(self) -> io::Result<Exit> {
        let _ = process::kill(self.pid, libc::SIGKILL);
        process::wait(self.pid)
    }
}

/// Everything the child needs, prepared before the clone so that the child
/// never allocates.
struct Plan {
    /// Owns the strings `argv_ptrs` points into.
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    /// Owns the strings `env_ptrs` points into.
    _env: Vec<CString>,
    env_ptrs: Vec<*const libc::c_char>,
    /// exe, the exec-error pipe, then the role's fds.
    sources: Vec<RawFd>,
    id_maps: Option<IdMaps>,
    alive_read: RawFd,
    alive_write: RawFd,
}

/// "0 <id> 1" maps for a child in a new user namespace.
struct IdMaps {
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
}

/// A pipe whose write end the launcher holds until it dies: a child that
/// finds it hung up knows its parent died before `PR_SET_PDEATHSIG` was set
/// (`getppid` cannot tell, it is 0 in a new pid namespace).
fn parent_alive_pipe() -> io::Result<(RawFd, RawFd)> {
    static PIPE: OnceLock<(OwnedFd, OwnedFd)> = OnceLock::new();
    if PIPE.get().is_none() {
        let _ = PIPE.set(pipe()?);
    }
    let (r, w) = PIPE.get().expect("set above");
    Ok((r.as_raw_fd(), w.as_raw_fd()))
}

/// Starts `cmd`. Returns once the child has exec'd, or with the error that
/// kept it from exec'ing.
pub fn spawn(cmd: &Command<'_>) -> io::Result<Child> {
    let (err_read, err_write) = pipe()?;
    let plan = plan(cmd, err_write.as_raw_fd())?;
    let (pid, pidfd) = clone_child(cmd.namespaces, &plan)?;
    drop(err_write);
    let mut buf = [0u8; 4];
    let n = std::fs::File::from(err_read).read(&mut buf)?;
    if n == 0 {
        return Ok(Child { pid, pidfd });
    }
    let _ = process::wait(pid);
    Err(io::Error::from_raw_os_error(i32::from_ne_bytes(buf)))
}

fn plan(cmd: &Command<'_>, err_write: RawFd) -> io::Result<Plan> {
    let cstrings = |v: &[String]| -> io::Result<Vec<CString>> {
        v.iter()
            .map(|s| {
                CString::new(s.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
            })
            .collect()
    };
    let argv = cstrings(&cmd.argv)?;
    let env = cstrings(&cmd.env)?;
    let ptrs = |v: &[CString]| -> Vec<*const libc::c_char> {
        v.iter()
            .map(|c| c.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect()
    };
    let mut sources = vec![cmd.exe.as_raw_fd(), err_write];
    sources.extend(cmd.fds.iter().map(|f| f.as_raw_fd()));
    if sources.len() > MAX_SOURCES {
        return Err(io::Error::from_raw_os_error(libc::EMFILE));
    }
    let (alive_read, alive_write) = parent_alive_pipe()?;
    let id_maps = (cmd.namespaces & libc::CLONE_NEWUSER != 0).then(id_maps);
    Ok(Plan {
        argv_ptrs: ptrs(&argv),
        env_ptrs: ptrs(&env),
        _argv: argv,
        _env: env,
        sources,
        id_maps,
        alive_read,
        alive_write,
    })
}

/// Maps root in the new user namespace to the caller's ids.
fn id_maps() -> IdMaps {
    // SAFETY: getuid/getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    IdMaps {
        uid_map: format!("0 {uid} 1\n").into_bytes(),
        gid_map: format!("0 {gid} 1\n").into_bytes(),
    }
}

/// Forks with `flags` and a pidfd; the child runs `child_exec`.
fn clone_child(namespaces: libc::c_int, plan: &Plan) -> io::Result<(libc::pid_t, OwnedFd)> {
    let flags = (namespaces | libc::CLONE_PIDFD | libc::SIGCHLD) as libc::c_ulong;
    let mut pidfd: libc::c_int = -1;
    let all = full_sigset();
    let mut old = empty_sigset();
    // SAFETY: both sets are valid sigset_t values.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old) };
    // SAFETY: a clone without CLONE_VM and without a new stack behaves like
    // fork: the child gets a copy of this address space. The x86-64 argument
    // order is (flags, stack, parent_tid, child_tid, tls); CLONE_PIDFD stores
    // the pidfd through `parent_tid`, which points to a live local.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags,
            0usize,
            &mut pidfd as *mut libc::c_int,
            0usize,
            0usize,
        )
    };
    if pid == 0 {
        // SAFETY: we are the freshly cloned child; `plan` was built before
        // the clone and stays valid in our copy of the memory.
        unsafe { child_exec(plan) }
    }
    let err = io::Error::last_os_error();
    // SAFETY: `old` is the mask read above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    if pid < 0 {
        return Err(err);
    }
    // SAFETY: CLONE_PIDFD succeeded, so `pidfd` is a new fd that we own.
    Ok((pid as libc::pid_t, unsafe { OwnedFd::from_raw_fd(pidfd) }))
}

fn full_sigset() -> libc::sigset_t {
    let mut set = empty_sigset();
    // SAFETY: `set` is a valid sigset_t.
    unsafe { libc::sigfillset(&mut set) };
    set
}

fn empty_sigset() -> libc::sigset_t {
    // SAFETY: an all-zero sigset_t is a valid value; sigemptyset makes it
    // the empty set.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t.
    unsafe { libc::sigemptyset(&mut set) };
    set
}

/// Most fds a child can be handed (exe and exec-error pipe included).
const MAX_SOURCES: usize = 256;

/// The child side between clone and exec. Never returns.
///
/// # Safety
/// Must only be called in the child right after `clone_child`'s clone.
unsafe fn child_exec(plan: &Plan) -> ! {
    let mut parked = [-1 as RawFd; MAX_SOURCES];
    // SAFETY: the caller guarantees we are the fresh child; everything below
    // is raw syscalls on memory prepared before the clone or on our stack.
    let errno = unsafe { child_setup(plan, &mut parked) };
    // Report through the parked copy of the exec-error pipe if there is one
    // (the original number may have been reused by then), else the original.
    let report = if parked[1] >= 0 {
        parked[1]
    } else {
        plan.sources[1]
    };
    let bytes = errno.to_ne_bytes();
    // SAFETY: writing 4 bytes from a local buffer; _exit never returns.
    unsafe {
        libc::write(report, bytes.as_ptr().cast(), 4);
        libc::_exit(127)
    }
}

fn last_errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// Returns the errno of the step that failed (exec only returns on error).
///
/// # Safety
/// Only in the fresh child (see `child_exec`).
unsafe fn child_setup(plan: &Plan, parked: &mut [RawFd; MAX_SOURCES]) -> i32 {
    // SAFETY: (whole block) raw syscalls with valid pointers to locals or to
    // `plan`, which lives in our copy of the parent's memory.
    unsafe {
        if let Err(e) = park_fds(&plan.sources, parked) {
            return e;
        }
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        for sig in 1..=64 {
            libc::sigaction(sig, &dfl, std::ptr::null_mut());
        }
        let none = empty_sigset();
        libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());

        libc::close(plan.alive_write);
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
            return last_errno();
        }
        let mut pfd = libc::pollfd {
            fd: plan.alive_read,
            events: libc::POLLIN,
            revents: 0,
        };
        if libc::poll(&mut pfd, 1, 0) != 0 {
            // Hung up: the parent is gone (the pipe is never written).
            libc::_exit(125);
        }
        if let Some(maps) = &plan.id_maps {
            if let Err(e) = write_id_maps(maps) {
                return e;
            }
        }
        if let Err(e) = place_fds(&parked[2..plan.sources.len()]) {
            return e;
        }
        libc::syscall(
            libc::SYS_execveat,
            parked[0],
            c"".as_ptr(),
            plan.argv_ptrs.as_ptr(),
            plan.env_ptrs.as_ptr(),
            libc::AT_EMPTY_PATH,
        );
        last_errno()
    }
}

/// Copies every source, close-on-exec, to a number above all target numbers
/// (3 + sources), so that placing the role's fds overwrites no source.
///
/// # Safety
/// Only in the fresh child (see `child_exec`).
unsafe fn park_fds(sources: &[RawFd], parked: &mut [RawFd; MAX_SOURCES]) -> Result<(), i32> {
    let above = FIRST_FD + sources.len() as RawFd;
    for (i, &src) in sources.iter().enumerate() {
        // SAFETY: fcntl on integers; F_DUPFD_CLOEXEC never replaces an fd.
        let fd = unsafe { libc::fcntl(src, libc::F_DUPFD_CLOEXEC, above) };
        if fd < 0 {
            return Err(last_errno());
        }
        parked[i] = fd;
    }
    Ok(())
}

/// Puts `role_fds` at 3, 4, ... (inheritable) and marks every other fd
/// above stdio close-on-exec.
///
/// # Safety
/// Only in the fresh child (see `child_exec`).
unsafe fn place_fds(role_fds: &[RawFd]) -> Result<(), i32> {
    // SAFETY: (whole block) dup2/close_range on integers only.
    unsafe {
        for (i, &fd) in role_fds.iter().enumerate() {
            if libc::dup2(fd, FIRST_FD + i as RawFd) < 0 {
                return Err(last_errno());
            }
        }
        let first_hidden = (FIRST_FD + role_fds.len() as RawFd) as libc::c_uint;
        let flags = libc::CLOSE_RANGE_CLOEXEC as libc::c_uint;
        if libc::syscall(
            libc::SYS_close_range,
            first_hidden,
            libc::c_uint::MAX,
            flags,
        ) != 0
        {
            return Err(last_errno());
        }
    }
    Ok(())
}

/// Writes the user-namespace maps of this (child) process.
///
/// # Safety
/// Only in the fresh child (see `child_exec`).
unsafe fn write_id_maps(maps: &IdMaps) -> Result<(), i32> {
    // SAFETY: the paths are NUL-terminated literals and the buffers live in
    // `maps`.
    unsafe {
        write_file(c"/proc/self/setgroups", b"deny")?;
        write_file(c"/proc/self/uid_map", &maps.uid_map)?;
        write_file(c"/proc/self/gid_map", &maps.gid_map)
    }
}

/// # Safety
/// Async-signal-safe; `path` must be NUL-terminated.
unsafe fn write_file(path: &std::ffi::CStr, data: &[u8]) -> Result<(), i32> {
    let errno = last_errno;
    // SAFETY: `path` is a C string and `data` a live buffer.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(errno());
        }
        let n = libc::write(fd, data.as_ptr().cast(), data.len());
        let e = errno();
        libc::close(fd);
        if n != data.len() as isize {
            return Err(e);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::os::fd::AsFd;

    fn sh_exe() -> OwnedFd {
        File::open("/bin/sh").unwrap().into()
    }

    fn run_sh(script: &str, fds: Vec<BorrowedFd<'_>>, ns: libc::c_int) -> (Exit, String) {
        let exe = sh_exe();
        let (r, w) = pipe().unwrap();
        let mut all = vec![w.as_fd()];
        all.extend(fds);
        let cmd = Command {
            exe: exe.as_fd(),
            argv: vec!["sh".into(), "-c".into(), script.into()],
            env: vec!["PATH=/usr/bin:/bin".into()],
            fds: all,
            namespaces: ns,
        };
        let child = spawn(&cmd).unwrap();
        drop(cmd);
        drop(w);
        let out = String::from_utf8(crate::sys::fd::read_all(r).unwrap()).unwrap();
        (process::wait(child.pid).unwrap(), out)
    }

    #[test]
    fn spawn_child_sees_only_stdio_and_given_fds() {
        let (_keep_r, keep_w) = pipe().unwrap();
        let (extra_r, _extra_w) = pipe().unwrap();
        let _ = keep_w;
        let (exit, out) = run_sh("ls /proc/self/fd >&3", vec![extra_r.as_fd()], 0);
        assert_eq!(exit, Exit::Code(0));
        let mut fds: Vec<i32> = out.split_whitespace().map(|s| s.parse().unwrap()).collect();
        fds.sort();
        // 0-2 stdio, 3 the output pipe, 4 `extra_r`, and ls's own directory fd.
        assert_eq!(&fds[..5], &[0, 1, 2, 3, 4]);
        assert!(fds.len() <= 6, "leaked fds: {fds:?}");
    }

    #[test]
    fn spawn_new_pid_namespace_child_is_pid_1() {
        let (exit, out) = run_sh("echo $$ >&3", vec![], libc::CLONE_NEWPID);
        assert_eq!(exit, Exit::Code(0));
        assert_eq!(out.trim(), "1");
    }

    #[test]
    fn spawn_env_is_exactly_the_given_list() {
        let (_, out) = run_sh("env >&3", vec![], 0);
        let mut lines: Vec<&str> = out
            .lines()
            .filter(|l| !l.starts_with("PWD=") && !l.starts_with("SHLVL=") && !l.starts_with("_="))
            .collect();
        lines.sort();
        assert_eq!(lines, vec!["PATH=/usr/bin:/bin"]);
    }

    #[test]
    fn spawn_non_executable_reports_errno() {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(format!("spawn-noexec-{}", std::process::id()));
        std::fs::write(&path, [0u8; 64]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let exe: OwnedFd = File::open(&path).unwrap().into();
        std::fs::remove_file(&path).unwrap();
        let cmd = Command {
            exe: exe.as_fd(),
            argv: vec!["x".into()],
            env: vec![],
            fds: vec![],
            namespaces: 0,
        };
        let err = spawn(&cmd).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOEXEC));
    }
}
