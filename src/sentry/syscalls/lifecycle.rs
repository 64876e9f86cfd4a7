//! Process lifecycle syscalls: clone/fork/vfork, execve, exit, wait4.

use crate::abi::{Errno, SysResult};
use crate::sentry::kernel::process::{Reported, WaitFor, WaitKinds};
use crate::sentry::kernel::task::{Exit, Share};
use crate::sentry::kernel::Task;
use crate::sentry::vfs::MAX_PATH;

const CLONE_VM: u64 = 0x100;
const CLONE_FS: u64 = 0x200;
const CLONE_FILES: u64 = 0x400;
const CLONE_SIGHAND: u64 = 0x800;
const CLONE_SYSVSEM: u64 = 0x40000;
const CLONE_VFORK: u64 = 0x4000;
const CLONE_THREAD: u64 = 0x10000;
const CLONE_SETTLS: u64 = 0x80000;
const CLONE_PARENT_SETTID: u64 = 0x100000;
const CLONE_CHILD_CLEARTID: u64 = 0x200000;
const CLONE_CHILD_SETTID: u64 = 0x1000000;
/// Flags this sentry honours; namespaces and the like are refused.
const SUPPORTED: u64 = 0xff
    | CLONE_VM
    | CLONE_VFORK
    | CLONE_THREAD
    | CLONE_SYSVSEM
    | CLONE_SETTLS
    | CLONE_PARENT_SETTID
    | CLONE_CHILD_CLEARTID
    | CLONE_CHILD_SETTID
    | CLONE_FS
    | CLONE_FILES
    | CLONE_SIGHAND;
/// Most argv + envp entries, and their total size (Linux: ARG_MAX-ish).
const MAX_ARGS: usize = 1 << 16;
const MAX_ARG_BYTES: usize = 2 << 20;

/// Implements clone(2): new processes, and threads (CLONE_THREAD, which
/// Linux lets through only with CLONE_SIGHAND and CLONE_VM). A thread
/// shares memory, descriptors and signal dispositions, and with CLONE_FS
/// its working directory, root and umask.
/// A process made with CLONE_VM (vfork, posix_spawn) shares its parent's
/// memory until it execs, and CLONE_FILES / CLONE_SIGHAND share those.
pub fn sys_clone(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let [flags, stack, parent_tid, child_tid, tls, _] = a;
    clone(t, flags, stack, parent_tid, child_tid, tls)
}

/// Size of clone3's `struct clone_args` up to `tls` (CLONE_ARGS_SIZE_VER0).
const CLONE_ARGS_VER0: u64 = 64;

/// Implements clone3(2) (without set_tid, pidfd or cgroup).
pub fn sys_clone3(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let [args, size, ..] = a;
    if !(CLONE_ARGS_VER0..=4096).contains(&size) {
        return Err(Errno::EINVAL);
    }
    let mut raw = vec![0u8; size as usize];
    t.mm.copy_in(args, &mut raw)?;
    let field = |i: usize| u64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap());
    let [flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls] =
        std::array::from_fn(field);
    // set_tid, set_tid_size, cgroup, and anything newer must be unused.
    // pidfd is read only with CLONE_PIDFD, which is refused with the other
    // unsupported flags.
    let _ = pidfd;
    if raw[CLONE_ARGS_VER0 as usize..].iter().any(|&b| b != 0) {
        return Err(t.unimplemented_option("clone3 arguments", size));
    }
    if flags & 0xff != 0 || exit_signal > 64 || (stack == 0) != (stack_size == 0) {
        return Err(Errno::EINVAL);
    }
    let sp = if stack == 0 { 0 } else { stack + stack_size };
    clone(t, flags | exit_signal, sp, parent_tid, child_tid, tls)
}

fn clone(
    t: &mut Task,
    flags: u64,
    stack: u64,
    parent_tid: u64,
    child_tid: u64,
    tls: u64,
) -> SysResult<u64> {
    if flags & !SUPPORTED != 0 {
        return Err(t.unimplemented_option("clone", flags & !SUPPORTED));
    }
    let thread = flags & CLONE_THREAD != 0;
    if (thread && flags & CLONE_SIGHAND == 0)
        || (flags & CLONE_SIGHAND != 0 && flags & CLONE_VM == 0)
    {
        return Err(Errno::EINVAL);
    }
    let mut regs = t.regs;
    regs.rax = 0;
    if stack != 0 {
        regs.rsp = stack;
    }
    if flags & CLONE_SETTLS != 0 {
        regs.fs_base = tls;
    }
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let vfork = flags & CLONE_VFORK != 0;
    let setup = move |child: &mut Task| {
        if vfork {
            child.vfork_done = Some(done_tx);
        }
        // In shared memory the parent's word is written before the child
        // runs: a thread that exits at once must find it set to clear it.
        if flags & CLONE_PARENT_SETTID != 0 && flags & CLONE_VM != 0 {
            let _ = child.mm.write_u32(parent_tid, child.tid as u32);
        }
        if flags & CLONE_CHILD_SETTID != 0 {
            let _ = child.mm.write_u32(child_tid, child.tid as u32);
        }
        if flags & CLONE_CHILD_CLEARTID != 0 {
            child.clear_child_tid = child_tid;
        }
    };
    let pid = if thread {
        t.spawn_thread(regs, flags & CLONE_FS != 0, setup)?
    } else {
        let share = Share {
            vm: flags & CLONE_VM != 0,
            files: flags & CLONE_FILES != 0,
            sighand: flags & CLONE_SIGHAND != 0,
            fs: flags & CLONE_FS != 0,
        };
        t.spawn_child(regs, share, setup)?
    };
    if flags & CLONE_PARENT_SETTID != 0 && flags & CLONE_VM == 0 {
        t.mm.write_u32(parent_tid, pid as u32)?;
    }
    if vfork {
        // Suspended until the child execs or exits (its end of the
        // channel is used or dropped then).
        let _ = done_rx.recv();
    }
    Ok(pid as u64)
}

/// Implements fork(2).
pub fn sys_fork(t: &mut Task, _: [u64; 6]) -> SysResult<u64> {
    sys_clone(t, [libc::SIGCHLD as u64, 0, 0, 0, 0, 0])
}

/// Implements vfork(2).
pub fn sys_vfork(t: &mut Task, _: [u64; 6]) -> SysResult<u64> {
    sys_clone(
        t,
        [CLONE_VM | CLONE_VFORK | libc::SIGCHLD as u64, 0, 0, 0, 0, 0],
    )
}

/// Reads a NULL-terminated array of string pointers (argv, envp).
fn string_array(t: &mut Task, mut addr: u64, total: &mut usize) -> SysResult<Vec<Vec<u8>>> {
    let mut out = vec![];
    if addr == 0 {
        return Ok(out);
    }
    loop {
        let p = t.mm.read_u64(addr)?;
        if p == 0 {
            return Ok(out);
        }
        let s = t.mm.read_cstr(p, MAX_ARG_BYTES)?;
        *total += s.len() + 1;
        if out.len() >= MAX_ARGS || *total > MAX_ARG_BYTES {
            return Err(Errno::E2BIG);
        }
        out.push(s);
        addr += 8;
    }
}

/// Implements execve(2).
pub fn sys_execve(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let path = t.mm.read_cstr(a[0], MAX_PATH)?;
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    let mut total = 0;
    let argv = string_array(t, a[1], &mut total)?;
    let envp = string_array(t, a[2], &mut total)?;
    t.exec(&path, argv, &envp)?;
    Ok(0)
}

/// Implements execveat(2): the path is relative to `dirfd`, or with
/// AT_EMPTY_PATH and an empty path the file open at `dirfd` runs.
pub fn sys_execveat(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let [dirfd, path_addr, argv_addr, envp_addr, flags, _] = a;
    const AT_EMPTY_PATH: u64 = 0x1000;
    const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
    if flags & !(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = t.mm.read_cstr(path_addr, MAX_PATH)?;
    let dirfd = dirfd as i32;
    let full = if path.is_empty() {
        if flags & AT_EMPTY_PATH == 0 {
            return Err(Errno::ENOENT);
        }
        let file = t.fds.get(dirfd)?;
        t.fs.path_of(file.ops.node().ok_or(Errno::EACCES)?)
    } else if path.starts_with(b"/") || dirfd == libc::AT_FDCWD {
        path
    } else {
        let mut p = t.fs.path_of(&super::file::dir_of(t, dirfd)?);
        p.push(b'/');
        p.extend_from_slice(&path);
        p
    };
    if flags & AT_SYMLINK_NOFOLLOW != 0 {
        let node = crate::sentry::vfs::resolve(
            &t.fs,
            &t.root,
            &t.cwd,
            &full,
            crate::sentry::vfs::Follow::No,
        )?;
        if node.current_stat().mode & libc::S_IFMT == libc::S_IFLNK {
            return Err(Errno::ELOOP);
        }
    }
    let mut total = 0;
    let argv = string_array(t, argv_addr, &mut total)?;
    let envp = string_array(t, envp_addr, &mut total)?;
    t.exec(&full, argv, &envp)?;
    Ok(0)
}

/// Implements exit(2): the calling thread ends (the process with its
/// last thread).
pub fn sys_exit(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    t.exit = Some(Exit::Code(a[0] as u8));
    Ok(0)
}

/// Implements exit_group(2): every thread of the process ends.
pub fn sys_exit_group(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let exit = Exit::Code(a[0] as u8);
    t.control.group.exit_all(exit);
    t.exit = Some(exit);
    Ok(0)
}

/// Implements wait4(2).
pub fn sys_wait4(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let [pid, status, options, rusage, ..] = a;
    let pid = pid as i32;
    const KNOWN: u64 = (libc::WNOHANG | libc::WUNTRACED | libc::WCONTINUED) as u64 | 0xe000_0000;
    if options & !KNOWN != 0 {
        return Err(Errno::EINVAL);
    }
    let which = match pid {
        -1 => WaitFor::Any,
        0 => WaitFor::Group(0),
        p if p < 0 => WaitFor::Group(-p),
        p => WaitFor::Pid(p),
    };
    let nohang = options & libc::WNOHANG as u64 != 0;
    let kinds = WaitKinds {
        exited: true,
        stopped: options & libc::WUNTRACED as u64 != 0,
        continued: options & libc::WCONTINUED as u64 != 0,
    };
    let ns = t.ns.clone();
    let Some((child, reported, times)) =
        ns.wait_opts(t.pid, which, nohang, true, kinds, &t.control)?
    else {
        return Ok(0);
    };
    if status != 0 {
        t.mm.write_u32(status, reported.wait_status())?;
    }
    if rusage != 0 {
        t.mm.copy_out(rusage, &super::process::rusage(times, 0))?;
    }
    Ok(child as u64)
}

const P_ALL: u64 = 0;
const P_PID: u64 = 1;
const P_PGID: u64 = 2;
const WEXITED: u64 = 4;
const WNOWAIT: u64 = 0x0100_0000;

/// Implements waitid(2).
pub fn sys_waitid(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let [idtype, id, infop, options, rusage, _] = a;
    const KNOWN: u64 = libc::WNOHANG as u64
        | libc::WSTOPPED as u64
        | WEXITED
        | libc::WCONTINUED as u64
        | WNOWAIT
        | 0xe000_0000;
    if options & !KNOWN != 0
        || options & (WEXITED | libc::WSTOPPED as u64 | libc::WCONTINUED as u64) == 0
    {
        return Err(Errno::EINVAL);
    }
    let which = match idtype {
        P_ALL => WaitFor::Any,
        P_PID if (id as i32) > 0 => WaitFor::Pid(id as i32),
        P_PGID if id as i32 == 0 => WaitFor::Group(0),
        P_PGID if (id as i32) > 0 => WaitFor::Group(id as i32),
        _ => return Err(Errno::EINVAL),
    };
    let nohang = options & libc::WNOHANG as u64 != 0;
    let kinds = WaitKinds {
        exited: options & WEXITED != 0,
        stopped: options & libc::WSTOPPED as u64 != 0,
        continued: options & libc::WCONTINUED as u64 != 0,
    };
    let ns = t.ns.clone();
    let found = ns.wait_opts(
        t.pid,
        which,
        nohang,
        options & WNOWAIT == 0,
        kinds,
        &t.control,
    )?;
    let mut info = [0u8; 128];
    let mut child_times = (0, 0);
    if let Some((pid, reported, times)) = found {
        child_times = times;
        let (code, status): (i32, i32) = match reported {
            Reported::Exited(Exit::Code(c)) => (1, c as i32), // CLD_EXITED
            Reported::Exited(e @ Exit::Signal(s)) if e.wait_status() & 0x80 != 0 => (3, s), // CLD_DUMPED
            Reported::Exited(Exit::Signal(s)) => (2, s), // CLD_KILLED
            Reported::Stopped(s) => (5, s),              // CLD_STOPPED
            Reported::Continued => (6, libc::SIGCONT),   // CLD_CONTINUED
        };
        info[0..4].copy_from_slice(&libc::SIGCHLD.to_le_bytes());
        info[8..12].copy_from_slice(&code.to_le_bytes());
        info[16..20].copy_from_slice(&pid.to_le_bytes());
        info[24..28].copy_from_slice(&status.to_le_bytes());
    }
    if infop != 0 {
        t.mm.copy_out(infop, &info)?;
    }
    if rusage != 0 {
        t.mm.copy_out(rusage, &super::process::rusage(child_times, 0))?;
    }
    Ok(0)
}
