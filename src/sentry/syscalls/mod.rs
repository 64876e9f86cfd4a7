//! The syscall table: one entry per implemented syscall, naming its handler
//! and how `--strace` prints its arguments. Handlers live in one file per
//! family and stay thin: decode arguments, call into mm/vfs/kernel, copy
//! results out, return a value or an errno. Everything not in the table
//! returns ENOSYS and is logged once by name.

mod attr;
mod creds;
mod epoll;
mod event;
mod file;
mod fs;
mod futex;
mod inotify;
mod ipc;
mod lifecycle;
mod lock;
mod mm;
mod mount;
mod poll;
mod process;
mod sched;

pub use ipc::process_key as ipc_process_key;
pub use lock::closed as release_closed_file_locks;
pub use lock::process_exit as release_process_locks;
pub use process::RELEASE;
mod signal;
mod socket;
mod splice;
mod strace;
mod time;
mod tty;
mod xattr;

use crate::abi::sysno as nr;
use crate::abi::SysResult;
use crate::sentry::kernel::Task;

/// A syscall handler: the task and the six raw arguments.
pub type Handler = fn(&mut Task, [u64; 6]) -> SysResult<u64>;

/// One implemented syscall.
pub struct Entry {
    pub handler: Handler,
    /// One character per argument for `--strace`: `i` signed decimal,
    /// `u` unsigned decimal, `x` hex, `f` fd, `p` path string, `b` buffer
    /// written by the guest (length in the next argument), `o` flags (hex).
    pub args: &'static str,
}

const fn e(handler: Handler, args: &'static str) -> Entry {
    Entry { handler, args }
}

/// The entry of syscall `n`, None when unimplemented.
pub fn lookup(n: u64) -> Option<Entry> {
    Some(match n {
        nr::READ => e(file::sys_read, "fxu"),
        nr::WRITE => e(file::sys_write, "fbu"),
        nr::OPEN => e(file::sys_open, "pox"),
        nr::CLOSE => e(file::sys_close, "f"),
        nr::STAT => e(file::sys_stat, "px"),
        nr::FSTAT => e(file::sys_fstat, "fx"),
        nr::LSTAT => e(file::sys_lstat, "px"),
        nr::LSEEK => e(file::sys_lseek, "fii"),
        nr::MMAP => e(mm::sys_mmap, "xuxxfx"),
        nr::MPROTECT => e(mm::sys_mprotect, "xux"),
        nr::MUNMAP => e(mm::sys_munmap, "xu"),
        nr::BRK => e(mm::sys_brk, "x"),
        nr::RT_SIGACTION => e(signal::sys_rt_sigaction, "ixxu"),
        nr::RT_SIGPROCMASK => e(signal::sys_rt_sigprocmask, "ixxu"),
        nr::IOCTL => e(file::sys_ioctl, "fxx"),
        nr::PREAD64 => e(file::sys_pread64, "fxui"),
        nr::PWRITE64 => e(file::sys_pwrite64, "fbui"),
        nr::READV => e(file::sys_readv, "fxu"),
        nr::WRITEV => e(file::sys_writev, "fxu"),
        nr::PREADV => e(file::sys_preadv, "fxuix"),
        nr::PWRITEV => e(file::sys_pwritev, "fxuix"),
        nr::PREADV2 => e(file::sys_preadv2, "fxuixo"),
        nr::PWRITEV2 => e(file::sys_pwritev2, "fxuixo"),
        nr::READAHEAD => e(file::sys_readahead, "fiu"),
        nr::ACCESS => e(file::sys_access, "po"),
        nr::SCHED_YIELD => e(process::sys_sched_yield, ""),
        nr::MADVISE => e(mm::sys_madvise, "xui"),
        nr::DUP => e(file::sys_dup, "f"),
        nr::DUP2 => e(file::sys_dup2, "ff"),
        nr::NANOSLEEP => e(time::sys_nanosleep, "xx"),
        nr::GETPID => e(process::sys_getpid, ""),
        nr::EXIT => e(lifecycle::sys_exit, "i"),
        nr::CLONE => e(lifecycle::sys_clone, "xxxxx"),
        nr::FORK => e(lifecycle::sys_fork, ""),
        nr::VFORK => e(lifecycle::sys_vfork, ""),
        nr::EXECVE => e(lifecycle::sys_execve, "pxx"),
        nr::WAIT4 => e(lifecycle::sys_wait4, "ixxx"),
        nr::KILL => e(signal::sys_kill, "ii"),
        nr::RT_SIGRETURN => e(signal::sys_rt_sigreturn, ""),
        nr::RT_SIGSUSPEND => e(signal::sys_rt_sigsuspend, "xu"),
        nr::RT_SIGPENDING => e(signal::sys_rt_sigpending, "xu"),
        nr::PAUSE => e(signal::sys_pause, ""),
        nr::SIGALTSTACK => e(signal::sys_sigaltstack, "xx"),
        nr::TKILL => e(signal::sys_tkill, "ii"),
        nr::TGKILL => e(signal::sys_tgkill, "iii"),
        nr::PIPE => e(file::sys_pipe, "x"),
        nr::PIPE2 => e(file::sys_pipe2, "xx"),
        nr::SETPGID => e(process::sys_setpgid, "ii"),
        nr::GETPGID => e(process::sys_getpgid, "i"),
        nr::SETSID => e(process::sys_setsid, ""),
        nr::GETSID => e(process::sys_getsid, "i"),
        nr::UNAME => e(process::sys_uname, "x"),
        nr::FCNTL => e(file::sys_fcntl, "fix"),
        nr::GETCWD => e(file::sys_getcwd, "xu"),
        nr::CHDIR => e(file::sys_chdir, "p"),
        nr::FCHDIR => e(file::sys_fchdir, "f"),
        nr::READLINK => e(file::sys_readlink, "pxu"),
        nr::UMASK => e(process::sys_umask, "o"),
        nr::GETTIMEOFDAY => e(time::sys_gettimeofday, "xx"),
        nr::GETRLIMIT => e(process::sys_getrlimit, "ix"),
        nr::SYSINFO => e(process::sys_sysinfo, "x"),
        nr::GETRUSAGE => e(process::sys_getrusage, "ix"),
        nr::TIMES => e(process::sys_times, "x"),
        nr::TIMER_CREATE => e(time::sys_timer_create, "ixx"),
        nr::TIMER_SETTIME => e(time::sys_timer_settime, "ixxx"),
        nr::TIMER_GETTIME => e(time::sys_timer_gettime, "ix"),
        nr::TIMER_GETOVERRUN => e(time::sys_timer_getoverrun, "i"),
        nr::TIMER_DELETE => e(time::sys_timer_delete, "i"),
        nr::GETUID => e(process::sys_getuid, ""),
        nr::GETGID => e(process::sys_getgid, ""),
        nr::GETEUID => e(process::sys_geteuid, ""),
        nr::GETEGID => e(process::sys_getegid, ""),
        nr::GETPPID => e(process::sys_getppid, ""),
        nr::GETPGRP => e(process::sys_getpgrp, ""),
        nr::ARCH_PRCTL => e(process::sys_arch_prctl, "xx"),
        nr::GETTID => e(process::sys_gettid, ""),
        nr::TIME => e(time::sys_time, "x"),
        nr::GETDENTS64 => e(file::sys_getdents64, "fxu"),
        nr::GETDENTS => e(file::sys_getdents, "fxu"),
        nr::SET_TID_ADDRESS => e(process::sys_set_tid_address, "x"),
        nr::CLOCK_GETTIME => e(time::sys_clock_gettime, "ix"),
        nr::CLOCK_GETRES => e(time::sys_clock_getres, "ix"),
        nr::CLOCK_NANOSLEEP => e(time::sys_clock_nanosleep, "iixx"),
        nr::EXIT_GROUP => e(lifecycle::sys_exit_group, "i"),
        nr::OPENAT => e(file::sys_openat, "fpox"),
        nr::NEWFSTATAT => e(file::sys_newfstatat, "fpxx"),
        nr::READLINKAT => e(file::sys_readlinkat, "fpxu"),
        nr::FACCESSAT => e(file::sys_faccessat, "fpo"),
        nr::FACCESSAT2 => e(file::sys_faccessat2, "fpoo"),
        nr::DUP3 => e(file::sys_dup3, "ffo"),
        nr::SHMGET => e(ipc::sys_shmget, "iuo"),
        nr::SHMAT => e(ipc::sys_shmat, "ixo"),
        nr::SHMDT => e(ipc::sys_shmdt, "x"),
        nr::SHMCTL => e(ipc::sys_shmctl, "iix"),
        nr::SEMGET => e(ipc::sys_semget, "iio"),
        nr::SEMOP => e(ipc::sys_semop, "ixu"),
        nr::SEMTIMEDOP => e(ipc::sys_semtimedop, "ixux"),
        nr::SEMCTL => e(ipc::sys_semctl, "iiix"),
        nr::MSGGET => e(ipc::sys_msgget, "io"),
        nr::MSGSND => e(ipc::sys_msgsnd, "ixuo"),
        nr::MSGRCV => e(ipc::sys_msgrcv, "ixuio"),
        nr::MSGCTL => e(ipc::sys_msgctl, "iix"),
        nr::SETHOSTNAME => e(process::sys_sethostname, "bu"),
        nr::SETDOMAINNAME => e(process::sys_setdomainname, "bu"),
        nr::SOCKET => e(socket::sys_socket, "ixi"),
        nr::SOCKETPAIR => e(socket::sys_socketpair, "ixix"),
        nr::BIND => e(socket::sys_bind, "fxu"),
        nr::LISTEN => e(socket::sys_listen, "fi"),
        nr::CONNECT => e(socket::sys_connect, "fxu"),
        nr::ACCEPT => e(socket::sys_accept, "fxx"),
        nr::ACCEPT4 => e(socket::sys_accept4, "fxxx"),
        nr::GETSOCKNAME => e(socket::sys_getsockname, "fxx"),
        nr::GETPEERNAME => e(socket::sys_getpeername, "fxx"),
        nr::SHUTDOWN => e(socket::sys_shutdown, "fi"),
        nr::SENDTO => e(socket::sys_sendto, "fbuxxu"),
        nr::RECVFROM => e(socket::sys_recvfrom, "fxuxxx"),
        nr::SENDMSG => e(socket::sys_sendmsg, "fxx"),
        nr::RECVMSG => e(socket::sys_recvmsg, "fxx"),
        nr::SENDMMSG => e(socket::sys_sendmmsg, "fxux"),
        nr::RECVMMSG => e(socket::sys_recvmmsg, "fxuxx"),
        nr::SETSOCKOPT => e(socket::sys_setsockopt, "fiixu"),
        nr::GETSOCKOPT => e(socket::sys_getsockopt, "fiixx"),
        nr::POLL => e(poll::sys_poll, "xui"),
        nr::PPOLL => e(poll::sys_ppoll, "xuxxu"),
        nr::SELECT => e(poll::sys_select, "ixxxx"),
        nr::PSELECT6 => e(poll::sys_pselect6, "ixxxxx"),
        nr::ALARM => e(time::sys_alarm, "u"),
        nr::SETITIMER => e(time::sys_setitimer, "ixx"),
        nr::GETITIMER => e(time::sys_getitimer, "ix"),
        nr::WAITID => e(lifecycle::sys_waitid, "iixxx"),
        nr::RT_SIGTIMEDWAIT => e(signal::sys_rt_sigtimedwait, "xxxu"),
        nr::MKDIR => e(fs::sys_mkdir, "po"),
        nr::MKDIRAT => e(fs::sys_mkdirat, "fpo"),
        nr::UNLINK => e(fs::sys_unlink, "p"),
        nr::UNLINKAT => e(fs::sys_unlinkat, "fpx"),
        nr::RMDIR => e(fs::sys_rmdir, "p"),
        nr::RENAME => e(fs::sys_rename, "pp"),
        nr::RENAMEAT => e(fs::sys_renameat, "fpfp"),
        nr::RENAMEAT2 => e(fs::sys_renameat2, "fpfpx"),
        nr::SYMLINK => e(fs::sys_symlink, "pp"),
        nr::SYMLINKAT => e(fs::sys_symlinkat, "pfp"),
        nr::TRUNCATE => e(attr::sys_truncate, "pi"),
        nr::FTRUNCATE => e(attr::sys_ftruncate, "fi"),
        nr::CHMOD => e(attr::sys_chmod, "po"),
        nr::FCHMOD => e(attr::sys_fchmod, "fo"),
        nr::FCHMODAT => e(attr::sys_fchmodat, "fpo"),
        nr::CHOWN => e(attr::sys_chown, "pii"),
        nr::LCHOWN => e(attr::sys_lchown, "pii"),
        nr::FCHOWN => e(attr::sys_fchown, "fii"),
        nr::FCHOWNAT => e(attr::sys_fchownat, "fpiio"),
        nr::UTIME => e(attr::sys_utime, "px"),
        nr::UTIMES => e(attr::sys_utimes, "px"),
        nr::FUTIMESAT => e(attr::sys_futimesat, "fpx"),
        nr::UTIMENSAT => e(attr::sys_utimensat, "fpxo"),
        nr::FALLOCATE => e(attr::sys_fallocate, "fxii"),
        nr::FSYNC | nr::FDATASYNC => e(attr::sys_fsync, "f"),
        nr::SYNCFS => e(attr::sys_syncfs, "f"),
        nr::SYNC => e(attr::sys_sync, ""),
        nr::SYNC_FILE_RANGE => e(attr::sys_sync_file_range, "fiio"),
        nr::LINK => e(fs::sys_link, "pp"),
        nr::LINKAT => e(fs::sys_linkat, "fpfpo"),
        nr::MKNOD => e(fs::sys_mknod, "pox"),
        nr::MKNODAT => e(fs::sys_mknodat, "fpox"),
        nr::CHROOT => e(fs::sys_chroot, "p"),
        nr::OPENAT2 => e(file::sys_openat2, "fpxu"),
        nr::CREAT => e(file::sys_creat, "po"),
        nr::SETUID => e(creds::sys_setuid, "u"),
        nr::SETGID => e(creds::sys_setgid, "u"),
        nr::SETREUID => e(creds::sys_setreuid, "ii"),
        nr::SETREGID => e(creds::sys_setregid, "ii"),
        nr::SETRESUID => e(creds::sys_setresuid, "iii"),
        nr::SETRESGID => e(creds::sys_setresgid, "iii"),
        nr::GETRESUID => e(creds::sys_getresuid, "xxx"),
        nr::GETRESGID => e(creds::sys_getresgid, "xxx"),
        nr::SETGROUPS => e(creds::sys_setgroups, "ux"),
        nr::GETGROUPS => e(creds::sys_getgroups, "ux"),
        nr::CAPGET => e(creds::sys_capget, "xx"),
        nr::CAPSET => e(creds::sys_capset, "xx"),
        nr::SETRLIMIT => e(process::sys_setrlimit, "ix"),
        nr::GETCPU => e(process::sys_getcpu, "xxx"),
        nr::EXECVEAT => e(lifecycle::sys_execveat, "fpxxx"),
        nr::SENDFILE => e(file::sys_sendfile, "ffxu"),
        nr::INOTIFY_INIT => e(inotify::sys_inotify_init, ""),
        nr::INOTIFY_INIT1 => e(inotify::sys_inotify_init1, "x"),
        nr::INOTIFY_ADD_WATCH => e(inotify::sys_inotify_add_watch, "fpx"),
        nr::INOTIFY_RM_WATCH => e(inotify::sys_inotify_rm_watch, "fi"),
        nr::MOUNT => e(mount::sys_mount, "ppxxx"),
        nr::UMOUNT2 => e(mount::sys_umount2, "px"),
        nr::SPLICE => e(splice::sys_splice, "fxfxux"),
        nr::TEE => e(splice::sys_tee, "ffux"),
        nr::VMSPLICE => e(splice::sys_vmsplice, "fxux"),
        nr::COPY_FILE_RANGE => e(splice::sys_copy_file_range, "fxfxux"),
        nr::CLOSE_RANGE => e(file::sys_close_range, "uux"),
        nr::MREMAP => e(mm::sys_mremap, "xuuxx"),
        nr::STATX => e(file::sys_statx, "fpxux"),
        nr::STATFS => e(file::sys_statfs, "px"),
        nr::FSTATFS => e(file::sys_fstatfs, "fx"),
        nr::GETXATTR => e(xattr::sys_getxattr, "ppxu"),
        nr::LGETXATTR => e(xattr::sys_lgetxattr, "ppxu"),
        nr::FGETXATTR => e(xattr::sys_fgetxattr, "fpxu"),
        nr::LISTXATTR => e(xattr::sys_listxattr, "pxu"),
        nr::LLISTXATTR => e(xattr::sys_llistxattr, "pxu"),
        nr::FLISTXATTR => e(xattr::sys_flistxattr, "fxu"),
        nr::SETXATTR => e(xattr::sys_setxattr, "ppxuo"),
        nr::LSETXATTR => e(xattr::sys_lsetxattr, "ppxuo"),
        nr::FSETXATTR => e(xattr::sys_fsetxattr, "fpxuo"),
        nr::REMOVEXATTR => e(xattr::sys_removexattr, "pp"),
        nr::LREMOVEXATTR => e(xattr::sys_lremovexattr, "pp"),
        nr::FREMOVEXATTR => e(xattr::sys_fremovexattr, "fp"),
        nr::FADVISE64 => e(file::sys_fadvise64, "fiii"),
        nr::MINCORE => e(mm::sys_mincore, "xux"),
        nr::MSYNC => e(mm::sys_msync, "xuo"),
        nr::SCHED_GETAFFINITY => e(process::sys_sched_getaffinity, "iux"),
        nr::SCHED_GETSCHEDULER => e(sched::sys_sched_getscheduler, "i"),
        nr::SCHED_SETSCHEDULER => e(sched::sys_sched_setscheduler, "iix"),
        nr::SCHED_GETPARAM => e(sched::sys_sched_getparam, "ix"),
        nr::SCHED_SETPARAM => e(sched::sys_sched_setparam, "ix"),
        nr::SCHED_GET_PRIORITY_MAX => e(sched::sys_sched_get_priority_max, "i"),
        nr::SCHED_GET_PRIORITY_MIN => e(sched::sys_sched_get_priority_min, "i"),
        nr::SCHED_RR_GET_INTERVAL => e(sched::sys_sched_rr_get_interval, "ix"),
        nr::PRLIMIT64 => e(process::sys_prlimit64, "iixx"),
        nr::SET_ROBUST_LIST => e(process::sys_set_robust_list, "xu"),
        nr::FUTEX => e(futex::sys_futex, "xiuxxx"),
        nr::RT_SIGQUEUEINFO => e(signal::sys_rt_sigqueueinfo, "iix"),
        nr::RT_TGSIGQUEUEINFO => e(signal::sys_rt_tgsigqueueinfo, "iiix"),
        nr::CLONE3 => e(lifecycle::sys_clone3, "xu"),
        nr::GET_ROBUST_LIST => e(process::sys_get_robust_list, "ixx"),
        nr::PRCTL => e(process::sys_prctl, "ixxxx"),
        nr::GETRANDOM => e(process::sys_getrandom, "xuo"),
        nr::EVENTFD => e(event::sys_eventfd, "u"),
        nr::EVENTFD2 => e(event::sys_eventfd2, "uo"),
        nr::TIMERFD_CREATE => e(event::sys_timerfd_create, "io"),
        nr::TIMERFD_SETTIME => e(event::sys_timerfd_settime, "foxx"),
        nr::TIMERFD_GETTIME => e(event::sys_timerfd_gettime, "fx"),
        nr::SIGNALFD => e(event::sys_signalfd, "ixu"),
        nr::SIGNALFD4 => e(event::sys_signalfd4, "ixuo"),
        nr::FLOCK => e(lock::sys_flock, "fx"),
        nr::MEMFD_CREATE => e(event::sys_memfd_create, "px"),
        nr::EPOLL_CREATE => e(epoll::sys_epoll_create, "i"),
        nr::EPOLL_CREATE1 => e(epoll::sys_epoll_create1, "o"),
        nr::EPOLL_CTL => e(epoll::sys_epoll_ctl, "fifx"),
        nr::EPOLL_WAIT => e(epoll::sys_epoll_wait, "fxii"),
        nr::EPOLL_PWAIT => e(epoll::sys_epoll_pwait, "fxiixu"),
        nr::EPOLL_PWAIT2 => e(epoll::sys_epoll_pwait2, "fxixxu"),
        _ => return None,
    })
}

/// Handles the syscall in the task's registers and stores the result.
pub fn dispatch(t: &mut Task) {
    let n = t.regs.rax;
    let a = [
        t.regs.rdi, t.regs.rsi, t.regs.rdx, t.regs.r10, t.regs.r8, t.regs.r9,
    ];
    let entry = lookup(n);
    let shown =
        t.k.strace
            .then(|| strace::enter(t, n, entry.as_ref().map(|e| e.args), a));
    t.fs_pull();
    let res = match &entry {
        Some(e) => (e.handler)(t, a),
        None => Err(t.unimplemented(n)),
    };
    t.fs_push();
    if crate::sentry::kernel::view::changes_view(n) {
        t.publish();
    }
    if let Some(call) = shown {
        strace::exit(t, call, &res);
    }
    t.interrupted_syscall = (res == Err(crate::abi::Errno::EINTR)).then(|| (n, restartable(n)));
    t.regs.rax = match res {
        Ok(v) => v,
        Err(e) => e.as_ret(),
    };
}

/// Whether syscall `n`, cut short by a signal, may be restarted after its
/// handler. These are never restarted after a handler, SA_RESTART or not
/// (signal(7)); nanosleep's restart would need the remaining time. Only
/// asked when a syscall returned EINTR.
fn restartable(n: u64) -> bool {
    !matches!(
        n,
        nr::RT_SIGSUSPEND
            | nr::PAUSE
            | nr::NANOSLEEP
            | nr::CLOCK_NANOSLEEP
            | nr::POLL
            | nr::PPOLL
            | nr::SELECT
            | nr::PSELECT6
            | nr::EPOLL_WAIT
            | nr::EPOLL_PWAIT
            | nr::EPOLL_PWAIT2
            | nr::SEMOP
            | nr::SEMTIMEDOP
            | nr::MSGSND
            | nr::MSGRCV
            | nr::RT_SIGTIMEDWAIT
    )
}
