//! Processes: waiting for a child, sending it a signal, naming signals, and
//! the per-process switches a role flips on itself (no_new_privs).

use std::io;

/// How a child process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It called exit with this status.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

/// Blocks until child `pid` ends and reaps it; retries on EINTR.
pub fn wait(pid: libc::pid_t) -> io::Result<Exit> {
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid int for the kernel to fill.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            return Ok(decode(status));
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Decodes a `waitpid` status word.
fn decode(status: libc::c_int) -> Exit {
    if libc::WIFSIGNALED(status) {
        Exit::Signal(libc::WTERMSIG(status))
    } else {
        Exit::Code(libc::WEXITSTATUS(status))
    }
}

/// Sends `sig` to process `pid`.
pub fn kill(pid: libc::pid_t, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: kill has no memory arguments.
    if unsafe { libc::kill(pid, sig) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Forbids this process and its descendants from ever gaining privileges
/// through execve (setuid bits, file capabilities).
pub fn set_no_new_privs() -> io::Result<()> {
    // SAFETY: PR_SET_NO_NEW_PRIVS takes plain integers.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The conventional name of signal `sig` ("SIGKILL"), or "signal N".
pub fn signal_name(sig: libc::c_int) -> String {
    let name = match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGSYS => "SIGSYS",
        _ => return format!("signal {sig}"),
    };
    name.to_string()
}

/// Makes every thread allocate from glibc's main arena. Per-thread arenas
/// are heaps glibc trims by first reading /proc/sys/vm/overcommit_memory:
/// an open(2) the sentry's seccomp filter kills the sandbox for (seen with
/// a guest fork bomb: hundreds of task threads, arenas shrinking).
pub fn single_malloc_arena() {
    // SAFETY: mallopt only changes malloc's tunables; called before any
    // thread exists.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
}

/// Which side of a fork the caller is on.
#[derive(Debug, PartialEq, Eq)]
pub enum Forked {
    /// The original process; the child's pid.
    Parent(libc::pid_t),
    Child,
}

/// fork(2), refused (EBUSY) unless the calling process has one thread:
/// in the child only the calling thread survives, so any lock another
/// thread held would stay locked forever.
pub fn fork_single_threaded() -> io::Result<Forked> {
    let threads = std::fs::read_dir("/proc/self/task")?.count();
    if threads != 1 {
        return Err(io::Error::from_raw_os_error(libc::EBUSY));
    }
    // SAFETY: the process is single-threaded (checked above), so the
    // child gets a consistent copy of every lock and allocator state.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Parent { child } => Ok(Forked::Parent(child.as_raw())),
        nix::unistd::ForkResult::Child => Ok(Forked::Child),
    }
}

/// Sends `sig` through a pidfd (no pid-reuse race), ignoring a process
/// that is already gone.
pub fn pidfd_kill(pidfd: std::os::fd::BorrowedFd<'_>, sig: libc::c_int) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: pidfd_send_signal takes an fd, a signal number, a null
    // siginfo and flags 0.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    let err = io::Error::last_os_error();
    if rc != 0 && err.raw_os_error() != Some(libc::ESRCH) {
        return Err(err);
    }
    Ok(())
}

/// A pidfd for process `pid` (any process, not only a child): readable
/// once it has exited.
pub fn pidfd_open(pid: libc::pid_t) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open takes a pid and flags; no memory arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new fd that nothing else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

/// The CPU-time clock of the calling host thread, readable by every
/// thread of the process (`cpu_clock_ns`) while this one lives.
pub fn thread_cpu_clock() -> libc::clockid_t {
    let mut id: libc::clockid_t = libc::CLOCK_THREAD_CPUTIME_ID;
    // SAFETY: pthread_getcpuclockid writes one clockid for our own thread.
    unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut id) };
    id
}

/// CPU time in ns on clock `id` (0 if it cannot be read).
pub fn cpu_clock_ns(id: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `ts`.
    if unsafe { libc::clock_gettime(id, &mut ts) } != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// How many CPUs the calling thread may run on (at least 1).
pub fn host_cpus() -> usize {
    // SAFETY: a zeroed cpu_set_t is valid; the call fills at most its size.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above, for the calling thread.
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) } != 0
    {
        return 1;
    }
    // SAFETY: CPU_COUNT reads the set we own.
    (unsafe { libc::CPU_COUNT(&set) } as usize).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_exit_status_returns_code() {
        assert_eq!(decode(7 << 8), Exit::Code(7));
    }

    #[test]
    fn decode_killed_status_returns_signal() {
        assert_eq!(decode(libc::SIGKILL), Exit::Signal(libc::SIGKILL));
    }

    #[test]
    fn signal_name_unknown_number_is_spelled_out() {
        assert_eq!(signal_name(libc::SIGSYS), "SIGSYS");
        assert_eq!(signal_name(40), "signal 40");
    }
}
