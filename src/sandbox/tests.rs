//! Security tests of the roles' set-up, run in forked children (they need
//! root): each seccomp policy stops its forbidden calls and lets the
//! allowed ones through, with "Seccomp: 2" in /proc; the gofer's
//! namespace + pivot_root leaves only its exports, read-only unless asked.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use seccompiler::SeccompAction;

use crate::seccomp::{self, Compiled};
use crate::sys::fd::pipe;
use crate::sys::process::{self, Exit};

/// Forks; the child runs `body` and exits with its result (101 on panic).
/// The child may allocate: glibc's fork leaves malloc usable in the child.
fn fork_run(body: impl FnOnce() -> i32) -> libc::pid_t {
    // SAFETY: the child only runs `body` and then `_exit`s; it never
    // returns into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or(101);
        // SAFETY: ends the forked child without running the harness.
        unsafe { libc::_exit(code) };
    }
    pid
}

/// Runs `act` in a child under `compiled`. The child installs the filters,
/// then waits for the parent, which checks its /proc status first. Returns
/// how the child ended and its "Seccomp:" line.
fn run_filtered(compiled: &Compiled, act: impl FnOnce() -> i32) -> (Exit, String) {
    // One such child at a time: a child forked by a parallel test would
    // inherit this test's pipe ends (and this one theirs), and each would
    // then wait for an end of file the other holds back.
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let (ready_r, ready_w) = pipe().unwrap();
    let (go_r, go_w) = pipe().unwrap();
    let (ready_fd, go_fd, go_w_fd) = (ready_w.as_raw_fd(), go_r.as_raw_fd(), go_w.as_raw_fd());
    let pid = fork_run(|| {
        let mut b = [b'x'];
        // SAFETY: raw syscalls on fds inherited from the parent, with a
        // local one-byte buffer.
        unsafe {
            libc::close(go_w_fd);
            if seccomp::install(compiled).is_err() {
                return 90;
            }
            libc::write(ready_fd, b.as_ptr().cast(), 1);
            libc::read(go_fd, b.as_mut_ptr().cast(), 1);
        }
        act()
    });
    drop((ready_w, go_r));
    let mut b = [0u8; 1];
    let n = File::from(ready_r).read(&mut b).unwrap();
    assert_eq!(n, 1, "child failed before installing the filter");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("Seccomp:"))
        .unwrap_or("")
        .to_string();
    drop(go_w);
    (process::wait(pid).unwrap(), line)
}

fn gofer_filter() -> Compiled {
    seccomp::compile(seccomp::gofer::policy(true), SeccompAction::KillProcess).unwrap()
}

fn sentry_filter() -> Compiled {
    seccomp::compile(seccomp::sentry::policy(), SeccompAction::KillProcess).unwrap()
}

fn raw_socket() -> i32 {
    // SAFETY: socket has no memory arguments.
    unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) }
}

fn raw_openat(path: &std::ffi::CStr) -> i32 {
    // SAFETY: `path` is a valid C string.
    unsafe { libc::openat(libc::AT_FDCWD, path.as_ptr(), libc::O_RDONLY) }
}

#[test]
fn gofer_policy_socket_kills_with_sigsys_in_mode_2() {
    let (exit, line) = run_filtered(&gofer_filter(), || {
        raw_socket();
        0
    });
    assert_eq!(line, "Seccomp:\t2");
    assert_eq!(exit, Exit::Signal(libc::SIGSYS));
}

#[test]
fn gofer_policy_open_for_reading_and_threads_work() {
    let (exit, _) = run_filtered(&gofer_filter(), || {
        if raw_openat(c"/etc/hostname") < 0 {
            return 1;
        }
        let t = std::thread::spawn(|| vec![7u8; 1 << 20].iter().map(|&b| b as u64).sum::<u64>());
        if t.join().ok() != Some(7 << 20) {
            return 2;
        }
        0
    });
    assert_eq!(exit, Exit::Code(0));
}

#[test]
fn gofer_policy_open_with_create_kills() {
    let (exit, _) = run_filtered(&gofer_filter(), || {
        // SAFETY: a valid C string path and plain flags.
        unsafe {
            libc::openat(
                libc::AT_FDCWD,
                c"/tmp/x".as_ptr(),
                libc::O_CREAT | libc::O_WRONLY,
                0o600,
            )
        };
        0
    });
    assert_eq!(exit, Exit::Signal(libc::SIGSYS));
}

#[test]
fn sentry_policy_openat_kills_with_sigsys_in_mode_2() {
    let (exit, line) = run_filtered(&sentry_filter(), || {
        raw_openat(c"/etc/hostname");
        0
    });
    assert_eq!(line, "Seccomp:\t2");
    assert_eq!(exit, Exit::Signal(libc::SIGSYS));
}

#[test]
fn sentry_policy_kvm_ioctl_allowed_other_ioctl_kills() {
    let kvm: OwnedFd = match File::options().read(true).write(true).open("/dev/kvm") {
        Ok(f) => f.into(),
        Err(e) => panic!("this test needs /dev/kvm: {e}"),
    };
    let fd = kvm.as_raw_fd();
    let (exit, _) = run_filtered(&sentry_filter(), || {
        // SAFETY: KVM_GET_API_VERSION (_IO(KVMIO, 0)) takes no argument.
        let version =
            unsafe { libc::ioctl(fd, nix::request_code_none!(kvm_bindings::KVMIO, 0x00)) };
        if version != 12 {
            return 1;
        }
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int into `n`; the filter should kill first.
        unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) };
        0
    });
    assert_eq!(exit, Exit::Signal(libc::SIGSYS));
}

#[test]
fn sentry_policy_executable_mmap_kills() {
    let (exit, _) = run_filtered(&sentry_filter(), || {
        let prot = libc::PROT_READ | libc::PROT_EXEC;
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
        // SAFETY: an anonymous mapping at a kernel-chosen address.
        unsafe { libc::mmap(std::ptr::null_mut(), 4096, prot, flags, -1, 0) };
        0
    });
    assert_eq!(exit, Exit::Signal(libc::SIGSYS));
}

#[test]
fn sentry_policy_threads_memfd_and_clone3_enosys_work() {
    let (exit, _) = run_filtered(&sentry_filter(), || {
        // SAFETY: clone3 with a null argument; the filter answers ENOSYS
        // before the kernel would look at it.
        let rc = unsafe { libc::syscall(libc::SYS_clone3, 0usize, 0usize) };
        if rc != -1 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ENOSYS) {
            return 1;
        }
        if crate::sys::fd::sealed_memfd("guest", b"abc").is_err() {
            return 2;
        }
        let t = std::thread::Builder::new()
            .name("vcpu0".into())
            .spawn(|| vec![1u8; 1 << 20].len());
        if t.ok().and_then(|t| t.join().ok()) != Some(1 << 20) {
            return 3;
        }
        0
    });
    assert_eq!(exit, Exit::Code(0));
}

/// A fresh directory with one file and one subdirectory.
fn export_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sandboxd-export-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("hello.txt"), "hi").unwrap();
    dir
}

fn export(name: &str, source: &std::path::Path, readonly: bool) -> super::setup::Export {
    super::setup::Export {
        name: name.into(),
        source: source.into(),
        readonly,
    }
}

/// Whether creating `path` fails with EROFS.
fn erofs(path: &str) -> bool {
    matches!(std::fs::write(path, "x"), Err(e) if e.raw_os_error() == Some(libc::EROFS))
}

fn names(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn gofer_exports_root_has_only_exports_read_only_unless_asked() {
    let (image, rw, ro) = (export_dir("image"), export_dir("rw"), export_dir("ro"));
    let exports = [
        export("image", &image, true),
        export("bind0", &rw, false),
        export("bind1", &ro, true),
    ];
    let pid = fork_run(|| {
        // SAFETY: unshare has no memory arguments.
        if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
            return 10;
        }
        let fds = match super::setup::enter_exports(&exports) {
            Ok(fds) => fds,
            Err(_) => return 11,
        };
        if names("/") != ["bind0", "bind1", "image"] || names("/image") != ["hello.txt", "sub"] {
            return 12;
        }
        if std::fs::read_to_string("/bind1/hello.txt").ok().as_deref() != Some("hi") {
            return 13;
        }
        if !erofs("/new") || !erofs("/image/new") || !erofs("/bind1/new") {
            return 14;
        }
        if std::fs::write("/bind0/new", "x").is_err() {
            return 15;
        }
        // SAFETY: mkdirat relative to the image fd with a C string name.
        let rc = unsafe { libc::mkdirat(fds[0].as_raw_fd(), c"d".as_ptr(), 0o755) };
        if rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EROFS) {
            return 16;
        }
        0
    });
    let exit = process::wait(pid).unwrap();
    let wrote = std::fs::read_to_string(rw.join("new"));
    for d in [&image, &rw, &ro] {
        std::fs::remove_dir_all(d).unwrap();
    }
    assert_eq!(exit, Exit::Code(0));
    assert_eq!(wrote.unwrap(), "x");
}

#[test]
fn sandbox_empty_root_is_empty_and_read_only() {
    let pid = fork_run(|| {
        // SAFETY: unshare has no memory arguments.
        if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
            return 10;
        }
        if super::setup::enter_empty_root().is_err() {
            return 11;
        }
        let entries = std::fs::read_dir("/").map(|rd| rd.count());
        if entries.ok() != Some(0) {
            return 12;
        }
        match std::fs::write("/new", "x") {
            Err(e) if e.raw_os_error() == Some(libc::EROFS) => 0,
            _ => 13,
        }
    });
    assert_eq!(process::wait(pid).unwrap(), Exit::Code(0));
}

/// Roots serving `dir` as a writable "bind0" (and its `sub` as the
/// read-only image "/").
fn gofer_roots(dir: &std::path::Path) -> Vec<crate::gofer::Root> {
    use crate::gofer::Root;
    let open = |p: &std::path::Path| -> OwnedFd { File::open(p).unwrap().into() };
    vec![
        Root {
            name: "/".into(),
            fd: open(&dir.join("sub")),
            readonly: true,
        },
        Root {
            name: "bind0".into(),
            fd: open(dir),
            readonly: false,
        },
    ]
}

/// Serves `roots` on `b` from a server thread and runs every operation
/// through a client on `a`. Returns which step failed (0: none).
fn exercise_gofer(roots: Vec<crate::gofer::Root>, a: OwnedFd, b: OwnedFd) -> i32 {
    use crate::gofer::{serve, GoferClient, Owner, SetAttr};
    std::thread::spawn(move || serve(roots, b));
    let c = GoferClient::new(a);
    let owner = Owner { uid: 7, gid: 7 };
    let attr = SetAttr {
        mode: Some(0o600),
        uid: Some(8),
        size: Some(1),
        mtime: Some((0, libc::UTIME_NOW)),
        ..Default::default()
    };
    let steps: Vec<Box<dyn Fn() -> bool>> = vec![
        Box::new(|| c.attach().is_ok()),
        Box::new(|| {
            let (root, _) = c.attach_root("bind0").unwrap();
            let (f, _, _) = c.create(root, b"f", libc::O_RDWR, 0o644, owner).unwrap();
            let (d, _) = c.mkdir(root, b"d", 0o755, owner).unwrap();
            c.mknod(d, b"p", libc::S_IFIFO | 0o600, owner).unwrap();
            c.symlink(d, b"l", b"../f", owner).unwrap();
            c.link(d, b"h", f).unwrap();
            c.setattr(f, &attr).unwrap();
            c.open(f, libc::O_WRONLY | libc::O_TRUNC).unwrap();
            c.fsync(f).unwrap();
            c.fsync(d).unwrap();
            c.rename(root, b"f", d, b"g", 0).unwrap();
            c.rename(d, b"g", d, b"h", libc::RENAME_EXCHANGE).unwrap();
            c.readdir(d).unwrap().len() == 4
        }),
        Box::new(|| {
            let (root, _) = c.attach_root("bind0").unwrap();
            let (d, _) = c.walk(root, b"d").unwrap();
            for name in [&b"p"[..], b"l", b"h", b"g"] {
                c.unlink(d, name, 0).unwrap();
            }
            c.unlink(root, b"d", libc::AT_REMOVEDIR).is_ok()
        }),
    ];
    for (i, step) in steps.iter().enumerate() {
        if !step() {
            return 20 + i as i32;
        }
    }
    0
}

#[test]
fn gofer_writable_policy_lets_every_operation_through() {
    let dir = export_dir("policy");
    let compiled =
        seccomp::compile(seccomp::gofer::policy(false), SeccompAction::KillProcess).unwrap();
    let roots = gofer_roots(&dir);
    let (a, b) = crate::sys::fd::seqpacket_pair().unwrap();
    let (exit, _) = run_filtered(&compiled, || exercise_gofer(roots, a, b));
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(exit, Exit::Code(0));
}

#[test]
fn gofer_readonly_policy_serves_reads_and_answers_erofs() {
    use crate::gofer::{serve, GoferClient, Owner};
    let dir = export_dir("ropolicy");
    let mut roots = gofer_roots(&dir);
    roots[1].readonly = true;
    let (a, b) = crate::sys::fd::seqpacket_pair().unwrap();
    let (exit, _) = run_filtered(&gofer_filter(), move || {
        std::thread::spawn(move || serve(roots, b));
        let c = GoferClient::new(a);
        let (root, _) = c.attach_root("bind0").unwrap();
        let (file, _) = c.walk(root, b"hello.txt").unwrap();
        let reads = c.open(file, libc::O_RDONLY).is_ok()
            && c.readdir(root).unwrap().len() == 2
            && c.statfs(root).is_ok()
            && c.fsync(file).is_ok()
            && c.fsync(root).is_ok();
        let owner = Owner::default();
        let refused = [
            c.mkdir(root, b"d", 0o755, owner).unwrap_err(),
            c.open(file, libc::O_RDWR).unwrap_err(),
            c.unlink(root, b"hello.txt", 0).unwrap_err(),
        ];
        i32::from(!reads) + 2 * i32::from(refused.iter().any(|e| *e != crate::abi::Errno::EROFS))
    });
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(exit, Exit::Code(0));
}
