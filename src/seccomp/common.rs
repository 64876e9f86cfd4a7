//! Rules both roles need just to be a Rust program: memory allocation,
//! threads, signals, time, exiting.

use seccompiler::SeccompCmpOp;

use super::{cond, has_all, has_none, Policy};

/// Adds the rules of the Rust runtime (std + glibc, statically linked).
pub fn runtime(p: &mut Policy) {
    let no_exec = || vec![has_none(2, libc::PROT_EXEC as u64)];
    p.allow(libc::SYS_brk, "glibc malloc grows the heap")
        .allow_if(
            libc::SYS_mmap,
            no_exec(),
            "allocator and thread stacks; never executable",
        )
        .allow_if(
            libc::SYS_mprotect,
            no_exec(),
            "stack guard pages; never executable",
        )
        .allow(libc::SYS_munmap, "allocator")
        .allow(libc::SYS_mremap, "allocator (realloc of large blocks)")
        .allow(
            libc::SYS_madvise,
            "allocator returns memory (MADV_DONTNEED)",
        )
        .allow(libc::SYS_futex, "Mutex, Condvar, thread join")
        .allow(libc::SYS_set_robust_list, "glibc, for every new thread")
        .allow(
            libc::SYS_rseq,
            "glibc registers restartable sequences per thread",
        )
        .allow(
            libc::SYS_sched_getaffinity,
            "glibc/std count CPUs (thread pools, malloc arenas)",
        )
        .allow(libc::SYS_sched_yield, "spin loops in locks")
        .allow_if(
            libc::SYS_clone,
            vec![has_all(0, (libc::CLONE_THREAD | libc::CLONE_VM) as u64)],
            "threads only: CLONE_THREAD|CLONE_VM must be set, no new processes",
        )
        .allow(
            libc::SYS_rt_sigprocmask,
            "std and glibc block signals around thread creation",
        )
        .allow(libc::SYS_rt_sigreturn, "return from a signal handler")
        .allow(
            libc::SYS_sigaltstack,
            "std installs an alternate stack per thread",
        )
        .allow(
            libc::SYS_restart_syscall,
            "resuming a sleep interrupted by a signal",
        )
        .allow(
            libc::SYS_clock_gettime,
            "time (when the vDSO falls back to the syscall)",
        )
        .allow(libc::SYS_getrandom, "HashMap seeds")
        .allow(libc::SYS_gettid, "glibc (abort, thread ids)")
        .allow(libc::SYS_getpid, "glibc (abort)")
        .allow_if(
            libc::SYS_tgkill,
            vec![cond(0, SeccompCmpOp::Eq, own_pid())],
            "signals to own threads only (abort, stopping a vCPU thread)",
        )
        .allow(libc::SYS_close, "closing fds")
        .allow(libc::SYS_exit, "a thread ends")
        .allow(libc::SYS_exit_group, "the process ends");
}

fn own_pid() -> u64 {
    u64::from(std::process::id())
}
