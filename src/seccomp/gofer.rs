//! The gofer's allowlist: serving files from the directory fds it was
//! given, over the socket it was given, and nothing else (no sockets, no
//! exec, no mounts, no open_by_handle_at).

use super::common::runtime;
use super::{cond32, has_none, Policy};

use seccompiler::SeccompCmpOp;

/// `O_TMPFILE` without `O_DIRECTORY` (the kernel's `__O_TMPFILE`).
const O_TMPFILE_BIT: u64 = 0o20000000;

/// The gofer policy. With `readonly` (no writable export), nothing can
/// create or change files (the exports are also mounted read-only and the
/// server refuses with EROFS; this is the third wall).
pub fn policy(readonly: bool) -> Policy {
    let mut p = Policy::default();
    runtime(&mut p);
    p.allow(libc::SYS_read, "the peer socket; std reads")
        .allow(libc::SYS_write, "error pipe before ready; stderr")
        .allow(libc::SYS_writev, "stderr through std's vectored writes")
        .allow(libc::SYS_recvmsg, "requests on the peer socket")
        .allow(libc::SYS_sendmsg, "replies, donating fds with SCM_RIGHTS")
        .allow(libc::SYS_recvfrom, "std's recv on the peer socket")
        .allow(libc::SYS_sendto, "std's send on the peer socket (no socket to address exists)")
        .allow(libc::SYS_ppoll, "waiting on the peer socket")
        .allow(libc::SYS_poll, "waiting on the peer socket")
        .allow(libc::SYS_newfstatat, "stat relative to a directory fd")
        .allow(libc::SYS_fstat, "stat of an open fd")
        .allow(libc::SYS_statx, "std's metadata")
        .allow(libc::SYS_readlinkat, "readlink")
        .allow(libc::SYS_getdents64, "readdir")
        .allow(libc::SYS_lseek, "readdir rewinds; file offsets")
        .allow(libc::SYS_pread64, "reading file contents")
        .allow(libc::SYS_fstatfs, "statfs of the export")
        .allow(libc::SYS_fsync, "fsync op (allowed on read-only roots: it changes nothing)")
        .allow_if(
            libc::SYS_fcntl,
            vec![cond32(1, SeccompCmpOp::Le, libc::F_SETFL as u64)],
            "F_DUPFD, F_GETFD/F_SETFD, F_GETFL/F_SETFL only (commands 0-4)",
        )
        .allow_if(
            libc::SYS_fcntl,
            vec![cond32(1, SeccompCmpOp::Eq, libc::F_DUPFD_CLOEXEC as u64)],
            "dup with close-on-exec",
        )
        .allow(libc::SYS_openat2, "RESOLVE_BENEATH walks; flags sit in memory BPF cannot see, the read-only mount stops writes");
    if readonly {
        let open_flags = (libc::O_CREAT as u64) | O_TMPFILE_BIT;
        p.allow_if(
            libc::SYS_openat,
            vec![has_none(2, open_flags)],
            "open without creating anything",
        );
    } else {
        writable(&mut p);
    }
    p
}

/// Operations on a read-write export (a bind mount asked read-write).
fn writable(p: &mut Policy) {
    p.allow(libc::SYS_openat, "open, and create with O_CREAT|O_EXCL")
        .allow(libc::SYS_mkdirat, "mkdir")
        .allow(
            libc::SYS_mknodat,
            "mknod (regular files and fifos; no CAP_MKNOD for devices)",
        )
        .allow(libc::SYS_unlinkat, "unlink and rmdir")
        .allow(libc::SYS_renameat2, "rename (NOREPLACE, EXCHANGE)")
        .allow(
            libc::SYS_renameat,
            "rename: glibc's renameat2 with no flags",
        )
        .allow(libc::SYS_linkat, "link, AT_EMPTY_PATH on the held fd")
        .allow(libc::SYS_symlinkat, "symlink")
        .allow(libc::SYS_fchmodat2, "setattr mode on the held O_PATH fd")
        .allow(
            libc::SYS_fchmod,
            "setattr mode before Linux 6.6 (fchmodat2)",
        )
        .allow(
            libc::SYS_fchownat,
            "setattr owner and new files' owner, on the held fd",
        )
        .allow(libc::SYS_utimensat, "setattr times on the held fd")
        .allow(libc::SYS_ftruncate, "setattr size; open with O_TRUNC");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readonly_policy_has_no_write_operations() {
        let p = policy(true);
        for sysno in [
            libc::SYS_mkdirat,
            libc::SYS_unlinkat,
            libc::SYS_renameat2,
            libc::SYS_socket,
            libc::SYS_execve,
        ] {
            assert!(!p.mentions(sysno), "syscall {sysno} allowed");
        }
        assert!(p.mentions(libc::SYS_openat));
    }

    #[test]
    fn writable_policy_adds_mutations() {
        let p = policy(false);
        assert!(p.mentions(libc::SYS_mkdirat) && p.mentions(libc::SYS_renameat2));
        assert!(!p.mentions(libc::SYS_open_by_handle_at));
    }
}
