//! The sentry's allowlist: run vCPUs through KVM ioctls, move bytes on the
//! fds it was handed (stdio, gofer sockets, files the gofers donate), manage
//! its own memory and threads. Nothing that names a host path, creates a
//! socket, starts a process or changes the mount table.
//!
//! The KVM ioctl numbers are computed from `kvm_bindings` (the `KVMIO` type
//! and the argument structs) with nix's `_IO*` encoders, the way kvm-ioctls
//! defines them.

use kvm_bindings as kb;
use seccompiler::SeccompCmpOp;

use super::common::runtime;
use super::{cond32, has_all, has_none, Policy};

/// Builds an ioctl request number.
macro_rules! io {
    (none, $nr:expr) => {
        nix::request_code_none!(kb::KVMIO, $nr) as u64
    };
    (r, $nr:expr, $ty:ty) => {
        nix::request_code_read!(kb::KVMIO, $nr, std::mem::size_of::<$ty>()) as u64
    };
    (w, $nr:expr, $ty:ty) => {
        nix::request_code_write!(kb::KVMIO, $nr, std::mem::size_of::<$ty>()) as u64
    };
    (rw, $nr:expr, $ty:ty) => {
        nix::request_code_readwrite!(kb::KVMIO, $nr, std::mem::size_of::<$ty>()) as u64
    };
}

/// The KVM ioctls the sentry may make, with why.
pub fn kvm_ioctls() -> Vec<(u64, &'static str)> {
    vec![
        (io!(none, 0x00), "KVM_GET_API_VERSION: check the API"),
        (io!(none, 0x01), "KVM_CREATE_VM: the pod's VM"),
        (
            io!(rw, 0x02, kb::kvm_msr_list),
            "KVM_GET_MSR_INDEX_LIST: MSRs to save/restore",
        ),
        (io!(none, 0x03), "KVM_CHECK_EXTENSION: probe capabilities"),
        (
            io!(none, 0x04),
            "KVM_GET_VCPU_MMAP_SIZE: size of the kvm_run mapping",
        ),
        (
            io!(rw, 0x05, kb::kvm_cpuid2),
            "KVM_GET_SUPPORTED_CPUID: the guest CPUID",
        ),
        (io!(none, 0x41), "KVM_CREATE_VCPU: one per guest thread"),
        (
            io!(w, 0x46, kb::kvm_userspace_memory_region),
            "KVM_SET_USER_MEMORY_REGION: the memfd",
        ),
        (
            io!(none, 0x47),
            "KVM_SET_TSS_ADDR: required on Intel before running",
        ),
        (
            io!(w, 0x48, u64),
            "KVM_SET_IDENTITY_MAP_ADDR: required on Intel before running",
        ),
        (io!(none, 0x80), "KVM_RUN: run guest code"),
        (
            io!(r, 0x81, kb::kvm_regs),
            "KVM_GET_REGS: syscall arguments",
        ),
        (io!(w, 0x82, kb::kvm_regs), "KVM_SET_REGS: syscall results"),
        (
            io!(r, 0x83, kb::kvm_sregs),
            "KVM_GET_SREGS: fault address, modes",
        ),
        (
            io!(w, 0x84, kb::kvm_sregs),
            "KVM_SET_SREGS: page tables, segments",
        ),
        (io!(rw, 0x88, kb::kvm_msrs), "KVM_GET_MSRS: FS/GS base"),
        (
            io!(w, 0x89, kb::kvm_msrs),
            "KVM_SET_MSRS: FS/GS base, syscall MSRs, the guest TSC",
        ),
        (io!(r, 0x8c, kb::kvm_fpu), "KVM_GET_FPU: signal frames"),
        (io!(w, 0x8d, kb::kvm_fpu), "KVM_SET_FPU: signal frames"),
        (
            io!(w, 0x90, kb::kvm_cpuid2),
            "KVM_SET_CPUID2: the guest CPUID",
        ),
        (
            io!(w, 0x9b, kb::kvm_guest_debug),
            "KVM_SET_GUEST_DEBUG: single-step, breakpoints",
        ),
        (
            io!(r, 0x9f, kb::kvm_vcpu_events),
            "KVM_GET_VCPU_EVENTS: pending exceptions",
        ),
        (
            io!(w, 0xa0, kb::kvm_vcpu_events),
            "KVM_SET_VCPU_EVENTS: inject exceptions",
        ),
        (
            io!(none, 0xa3),
            "KVM_GET_TSC_KHZ: the vDSO's clock parameters",
        ),
        (
            io!(w, 0xa3, kb::kvm_enable_cap),
            "KVM_ENABLE_CAP: opt into capabilities",
        ),
        (
            io!(r, 0xa4, kb::kvm_xsave),
            "KVM_GET_XSAVE: extended state for signal frames",
        ),
        (
            io!(w, 0xa5, kb::kvm_xsave),
            "KVM_SET_XSAVE: extended state for signal frames",
        ),
        (io!(r, 0xa6, kb::kvm_xcrs), "KVM_GET_XCRS: XCR0"),
        (
            io!(w, 0xa7, kb::kvm_xcrs),
            "KVM_SET_XCRS: enable AVX state (XCR0)",
        ),
        (
            io!(w, 0xe1, kb::kvm_device_attr),
            "KVM_SET_DEVICE_ATTR: zero each vCPU's TSC offset (for the vDSO)",
        ),
        (
            io!(r, 0xcf, kb::kvm_xsave),
            "KVM_GET_XSAVE2: extended state larger than 4 KiB",
        ),
    ]
}

/// The sentry policy.
pub fn policy() -> Policy {
    let mut p = Policy::default();
    runtime(&mut p);
    ioctl(&mut p);
    io(&mut p);
    memory(&mut p);
    wait(&mut p);
    p.allow(
        libc::SYS_rt_sigaction,
        "vCPU threads are stopped and guest signals emulated with host signals",
    )
    .allow(libc::SYS_clock_nanosleep, "timers")
    .allow(libc::SYS_nanosleep, "timers")
    .allow(libc::SYS_gettimeofday, "time (vDSO fallback)")
    .allow(
        libc::SYS_getcpu,
        "the host CPU a guest getcpu maps from (vDSO fallback)",
    )
    .allow_if(
        libc::SYS_prctl,
        vec![cond32(0, SeccompCmpOp::Eq, libc::PR_SET_NAME as u64)],
        "naming threads (std::thread::Builder::name)",
    )
    .allow_if(
        libc::SYS_prctl,
        vec![cond32(0, SeccompCmpOp::Eq, libc::PR_GET_NAME as u64)],
        "reading a thread's name",
    );
    p
}

/// What a tracked pod adds: accepting connections on the listening
/// control socket `fd` (bound by the launcher; the sentry creates no
/// socket and names no path). The connections are then read and written
/// with the io rules (recvmsg with SCM_RIGHTS for the fds of `exec`).
pub fn control_socket(p: &mut Policy, fd: i32) {
    p.allow_if(
        libc::SYS_accept4,
        vec![cond32(0, SeccompCmpOp::Eq, fd as u64)],
        "accept control connections on the one listening socket handed over",
    );
}

/// What the ptrace platform adds: forking stub processes, tracing them, and
/// what a stub does to itself before it stops (see
/// `sentry::platform::ptrace`). Stubs inherit this filter; the guest's own
/// syscalls never run in them (PTRACE_SYSEMU skips them).
pub fn ptrace_platform(p: &mut Policy) {
    let fork_flags = libc::CLONE_THREAD
        | libc::CLONE_VM
        | libc::CLONE_NEWUSER
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWPID;
    p.allow_if(
        libc::SYS_clone,
        vec![has_none(0, fork_flags as u64)],
        "fork a stub process (no shared memory, no new namespaces)",
    )
    .allow(
        libc::SYS_ptrace,
        "trace stub processes: PTRACE_SYSEMU, registers, injected mmap",
    )
    .allow(libc::SYS_wait4, "wait for stub stops and reap stubs")
    .allow(libc::SYS_kill, "kill stub processes")
    .allow(
        libc::SYS_pause,
        "stub: a new stub thread waits in pause until its tracer attaches",
    )
    .allow_if(
        libc::SYS_tkill,
        vec![cond32(1, SeccompCmpOp::Eq, libc::SIGSTOP as u64)],
        "stop one stub thread (interrupt its guest thread)",
    )
    .allow(
        libc::SYS_sched_setaffinity,
        "keep each stub on its tracer's CPU",
    )
    .allow(
        libc::SYS_dup2,
        "stub: move the guest memfd to its fixed number",
    )
    .allow(libc::SYS_close_range, "stub: close every other fd")
    .allow(libc::SYS_seccomp, "stub: install its own, narrower filter")
    .allow(
        libc::SYS_arch_prctl,
        "stub: find its rseq area to unregister it",
    )
    .allow_if(
        libc::SYS_prctl,
        vec![cond32(0, SeccompCmpOp::Eq, libc::PR_SET_PDEATHSIG as u64)],
        "stub: die with the sentry",
    )
    .allow_if(
        libc::SYS_prctl,
        vec![cond32(
            0,
            SeccompCmpOp::Eq,
            libc::PR_SET_NO_NEW_PRIVS as u64,
        )],
        "stub: required before its own filter",
    )
    .allow_if(
        libc::SYS_prctl,
        vec![
            cond32(0, SeccompCmpOp::Eq, libc::PR_SET_DUMPABLE as u64),
            cond32(1, SeccompCmpOp::Eq, 1),
        ],
        "stub: let the sentry's other threads attach to its threads",
    );
    // Guest memory mapped into a stub with the guest's protection, which
    // may include PROT_EXEC: only shared fixed mappings of the stub's memfd.
    let memfd_map = vec![
        has_all(3, (libc::MAP_SHARED | libc::MAP_FIXED) as u64),
        cond32(
            4,
            SeccompCmpOp::Eq,
            crate::sentry::platform::ptrace::STUB_MEMFD as u64,
        ),
    ];
    p.allow_if(
        libc::SYS_mmap,
        memfd_map,
        "stub: guest memory at guest addresses",
    );
}

/// ioctl: the KVM list above, and terminal queries on stdio.
fn ioctl(p: &mut Policy) {
    for (nr, why) in kvm_ioctls() {
        p.allow_if(libc::SYS_ioctl, vec![cond32(1, SeccompCmpOp::Eq, nr)], why);
    }
    for (nr, why) in [
        (libc::TCGETS, "TCGETS: is stdio a terminal"),
        (libc::TIOCGWINSZ, "TIOCGWINSZ: terminal size for the guest"),
    ] {
        let on_stdio = cond32(0, SeccompCmpOp::Le, 2);
        p.allow_if(
            libc::SYS_ioctl,
            vec![on_stdio, cond32(1, SeccompCmpOp::Eq, nr)],
            why,
        );
    }
}

/// Moving bytes on fds the sentry already holds.
fn io(p: &mut Policy) {
    let empty_path = || vec![has_all(3, libc::AT_EMPTY_PATH as u64)];
    p.allow(libc::SYS_read, "stdin, pipes, donated files")
        .allow(libc::SYS_write, "stdout/stderr, error pipe")
        .allow(libc::SYS_pread64, "donated image files")
        .allow(libc::SYS_pwrite64, "donated read-write files")
        .allow(libc::SYS_readv, "vectored guest I/O")
        .allow(libc::SYS_writev, "vectored guest I/O")
        .allow(libc::SYS_preadv, "vectored guest I/O")
        .allow(libc::SYS_pwritev, "vectored guest I/O")
        .allow(libc::SYS_recvmsg, "gofer replies with donated fds")
        .allow(libc::SYS_sendmsg, "gofer requests")
        .allow(libc::SYS_recvfrom, "std's recv on a gofer socket")
        .allow(
            libc::SYS_sendto,
            "std's send on a gofer socket (no socket to address exists)",
        )
        .allow(libc::SYS_fstat, "size of a donated file")
        .allow_if(
            libc::SYS_newfstatat,
            empty_path(),
            "glibc's fstat; with AT_EMPTY_PATH only, no path lookup",
        )
        .allow_if(
            libc::SYS_statx,
            vec![has_all(2, libc::AT_EMPTY_PATH as u64)],
            "std's File::metadata; with AT_EMPTY_PATH only",
        )
        .allow(libc::SYS_lseek, "file offsets")
        .allow(libc::SYS_dup, "duplicating held fds");
    let fcntl_cmds = [
        (libc::F_GETFD, "F_GETFD"),
        (libc::F_SETFD, "F_SETFD: close-on-exec"),
        (libc::F_GETFL, "F_GETFL"),
        (libc::F_SETFL, "F_SETFL: O_NONBLOCK on stdio and sockets"),
        (libc::F_DUPFD_CLOEXEC, "F_DUPFD_CLOEXEC: std's try_clone"),
        (
            libc::F_ADD_SEALS,
            "F_ADD_SEALS: seal the guest memfd's size",
        ),
        (libc::F_GET_SEALS, "F_GET_SEALS"),
    ];
    for (cmd, why) in fcntl_cmds {
        p.allow_if(
            libc::SYS_fcntl,
            vec![cond32(1, SeccompCmpOp::Eq, cmd as u64)],
            why,
        );
    }
}

/// Guest memory (the memfd) and the sentry's own memory.
fn memory(p: &mut Policy) {
    let no_hugetlb_exec = vec![has_none(
        1,
        libc::MFD_HUGETLB as u64 | libc::MFD_EXEC as u64,
    )];
    p.allow_if(
        libc::SYS_memfd_create,
        no_hugetlb_exec,
        "guest memory (anonymous, never executable)",
    )
    .allow(libc::SYS_ftruncate, "sizing the guest memfd")
    .allow(libc::SYS_fallocate, "punching holes to free guest frames");
}

/// Waiting for events on held fds.
fn wait(p: &mut Policy) {
    p.allow(libc::SYS_ppoll, "waiting on stdio and gofer sockets")
        .allow(libc::SYS_poll, "waiting on stdio and gofer sockets")
        .allow(libc::SYS_epoll_create1, "event loop")
        .allow(libc::SYS_epoll_ctl, "event loop")
        .allow(libc::SYS_epoll_wait, "event loop")
        .allow(libc::SYS_epoll_pwait, "event loop")
        .allow(libc::SYS_eventfd2, "waking the event loop");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number_of(name: &str) -> u64 {
        let found = kvm_ioctls()
            .into_iter()
            .find(|(_, why)| why.starts_with(name));
        found.expect("listed").0
    }

    #[test]
    fn kvm_ioctls_numbers_match_the_kernel_abi() {
        // Values from <linux/kvm.h> as printed by a C program on x86-64.
        assert_eq!(number_of("KVM_RUN:"), 0xae80);
        assert_eq!(number_of("KVM_GET_REGS:"), 0x8090_ae81);
        assert_eq!(number_of("KVM_SET_USER_MEMORY_REGION:"), 0x4020_ae46);
        assert_eq!(number_of("KVM_GET_SUPPORTED_CPUID:"), 0xc008_ae05);
        assert_eq!(number_of("KVM_SET_SREGS:"), 0x4138_ae84);
    }

    #[test]
    fn policy_compiles_and_forbids_process_creation() {
        let p = policy();
        assert!(!p.mentions(libc::SYS_execve));
        assert!(!p.mentions(libc::SYS_openat));
        assert!(!p.mentions(libc::SYS_socket));
        assert!(!p.mentions(libc::SYS_fork));
        assert!(p.compile(seccompiler::SeccompAction::KillProcess).is_ok());
    }

    #[test]
    fn control_socket_allows_accept4_only() {
        let mut p = policy();
        assert!(!p.mentions(libc::SYS_accept4));
        control_socket(&mut p, 7);
        assert!(p.mentions(libc::SYS_accept4));
        assert!(!p.mentions(libc::SYS_accept));
        assert!(!p.mentions(libc::SYS_bind));
        assert!(p.compile(seccompiler::SeccompAction::KillProcess).is_ok());
    }
}
