//! Terminals: the sentry's ptys against Linux's, pods with `tty: true`
//! under a host terminal, stdin routing between containers, `exec -t`.

mod common;

use common::*;

#[test]
fn tty_pty_program_matches_its_native_run() {
    let img = image("testprogs");
    let want = native(&img, "pty", &[]);
    assert_eq!(want.status, 0, "native run failed: {}", want.stderr);
    each_platform(|p| {
        let got = TestPod::new(&img, &["/bin/pty"]).platform(p).run();
        assert_eq!(
            (got.status, got.stdout.lines().collect::<Vec<_>>()),
            (want.status, want.stdout.lines().collect::<Vec<_>>()),
            "pty on {p}: {}",
            got.stderr
        );
    });
}

/// A host terminal for `sandboxd`: its stdin, stdout and stderr are the
/// slave of a host pty; the test plays the user on the master.
struct HostTerminal {
    master: std::os::fd::OwnedFd,
    slave: std::os::fd::OwnedFd,
    child: std::process::Child,
    out: Vec<u8>,
    /// The settings before sandboxd started.
    initial: nix::sys::termios::Termios,
}

impl HostTerminal {
    /// Starts `sandboxd ARGS` on a new host pty of `rows` x `cols`.
    fn start(args: &[&str], root: &std::path::Path, rows: u16, cols: u16) -> HostTerminal {
        let ws = nix::pty::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&ws), None).expect("openpty");
        let initial = nix::sys::termios::tcgetattr(&pty.slave).unwrap();
        // Other tests' children must not keep this terminal open.
        for fd in [&pty.master, &pty.slave] {
            let cloexec = nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC);
            nix::fcntl::fcntl(fd, cloexec).unwrap();
        }
        let io = |fd: &std::os::fd::OwnedFd| std::process::Stdio::from(fd.try_clone().unwrap());
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_sandboxd"))
            .args(args)
            .env("SANDBOXD_STORE", store())
            .env("SANDBOXD_STATE_ROOT", root)
            .stdin(io(&pty.slave))
            .stdout(io(&pty.slave))
            .stderr(io(&pty.slave))
            .spawn()
            .expect("start sandboxd");
        HostTerminal {
            master: pty.master,
            slave: pty.slave,
            child,
            out: Vec::new(),
            initial,
        }
    }

    fn termios(&self) -> nix::sys::termios::Termios {
        nix::sys::termios::tcgetattr(&self.slave).unwrap()
    }

    /// Reads the master until the output contains `text` (fails after 60 s).
    fn expect(&mut self, text: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !String::from_utf8_lossy(&self.out).contains(text) {
            assert!(
                std::time::Instant::now() < deadline,
                "no {text:?} in {:?}",
                String::from_utf8_lossy(&self.out)
            );
            self.read_some(200);
        }
    }

    fn read_some(&mut self, ms: u16) {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLIN)];
        if matches!(poll(&mut fds, PollTimeout::from(ms)), Ok(n) if n > 0) {
            let mut buf = [0u8; 4096];
            if let Ok(n) = nix::unistd::read(&self.master, &mut buf) {
                self.out.extend_from_slice(&buf[..n]);
            }
        }
    }

    fn type_in(&self, bytes: &[u8]) {
        nix::unistd::write(&self.master, bytes).unwrap();
    }

    /// Resizes the host terminal and tells the launcher, as a terminal
    /// emulator does (the launcher does not lead the pty's session here).
    fn resize(&self, rows: u16, cols: u16) {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        use std::os::fd::AsRawFd;
        // SAFETY: TIOCSWINSZ reads one winsize from the struct we pass.
        let r = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        assert_eq!(r, 0);
        self.signal(libc::SIGWINCH);
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill of our own child process.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// Waits for the launcher; returns its status after reading the rest.
    fn wait(&mut self) -> i32 {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            self.read_some(50);
            if let Some(st) = self.child.try_wait().unwrap() {
                self.read_some(100);
                return st.code().unwrap_or(-1);
            }
            assert!(std::time::Instant::now() < deadline, "sandboxd did not end");
        }
    }

    fn output(&self) -> String {
        String::from_utf8_lossy(&self.out).into_owned()
    }
}

/// Writes a pod of `containers` (see `container`) into `dir`.
fn write_pod(dir: &TempDir, containers: &[String]) -> String {
    let path = dir.0.join("pod.json");
    let all = containers.join(", ");
    std::fs::write(&path, format!("{{\"containers\": {{{all}}}}}")).unwrap();
    path.to_str().unwrap().to_string()
}

fn container(name: &str, script: &str, extra: &str) -> String {
    format!(
        "{name:?}: {{\"image\": {:?}, \"command\": [\"/bin/sh\", \"-c\", {}]{extra}}}",
        image("busybox"),
        serde_json::to_string(script).unwrap()
    )
}

#[test]
fn tty_pod_gets_a_terminal_of_the_host_size_input_and_resizes() {
    each_platform(|p| {
        let dir = TempDir::new("ttypod");
        let script = "tty; stty size; echo ready; read x; echo got:$x; \
                      trap 'stty size; exit 7' WINCH; echo waiting; \
                      while :; do sleep 0.1; done";
        let pod = write_pod(&dir, &[container("app", script, ", \"tty\": true")]);
        let root = dir.0.join("state");
        let mut term = HostTerminal::start(&["run", "--platform", p, &pod], &root, 33, 111);
        let before = term.initial.clone();
        term.expect("ready");
        term.type_in(b"abc\r");
        term.expect("waiting");
        term.resize(40, 120);
        let status = term.wait();
        let out = term.output();
        assert_eq!(status, 7, "{out:?}");
        assert!(
            out.starts_with("/dev/pts/0\r\n33 111\r\nready\r\n"),
            "{out:?}"
        );
        assert!(out.contains("abc\r\ngot:abc\r\n"), "{out:?}");
        assert!(out.contains("40 120\r\n"), "{out:?}");
        let after = term.termios();
        assert_eq!(
            (before.local_flags, before.input_flags, before.output_flags),
            (after.local_flags, after.input_flags, after.output_flags),
            "the host terminal's settings were not restored"
        );
    });
}

/// Starts `sandboxd run` of `pod` on platform `p` with stdin, stdout and
/// stderr piped.
fn run_with_stdin_piped(dir: &TempDir, pod: &str, p: &str) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_sandboxd"))
        .args(["run", "--platform", p, pod])
        .env("SANDBOXD_STORE", store())
        .env("SANDBOXD_STATE_ROOT", dir.0.join("state"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn tty_stdin_goes_to_the_container_that_asks() {
    use std::io::Write;
    let dir = TempDir::new("stdin");
    let pod = write_pod(
        &dir,
        &[
            container("a", "read x; echo \"a:[$x]\"", ""),
            container("b", "read x; echo \"b:[$x]\"", ", \"stdin\": true"),
        ],
    );
    each_platform(|p| {
        let mut child = run_with_stdin_piped(&dir, &pod, p);
        child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{text} {err}");
        assert!(text.contains("[a] a:[]\n"), "{text}");
        assert!(text.contains("[b] b:[hello]\n"), "{text}");
    });
}

#[test]
fn tty_two_containers_asking_for_stdin_is_a_check_error() {
    let dir = TempDir::new("stdin2");
    let reader = ", \"stdin\": true";
    let pod = write_pod(
        &dir,
        &[
            container("a", "true", reader),
            container("b", "true", reader),
        ],
    );
    let out = sandboxd(&["check".into(), pod.clone()]);
    assert_eq!(out.status, 125);
    assert!(
        out.stderr
            .trim_end()
            .ends_with("containers.b.stdin: only one container may read stdin, and \"a\" does"),
        "{out:?}"
    );
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
}

#[test]
fn tty_exec_t_runs_on_a_new_terminal_and_returns_its_status() {
    each_platform(|p| {
        let dir = TempDir::new("exect");
        let root = dir.0.join("state");
        let pod = write_pod(&dir, &[container("app", "sleep 1000", "")]);
        let run = std::process::Command::new(env!("CARGO_BIN_EXE_sandboxd"))
            .args(["run", "-d", "--platform", p, &pod])
            .env("SANDBOXD_STORE", store())
            .env("SANDBOXD_STATE_ROOT", &root)
            .output()
            .unwrap();
        assert!(run.status.success(), "{run:?}");
        let id = String::from_utf8_lossy(&run.stdout).trim().to_string();
        let script = "tty; stty size; [ -t 0 ] && echo stdin-is-a-tty; read x; echo got:$x; exit 3";
        let mut term = HostTerminal::start(
            &["exec", "-t", &id, "--", "/bin/sh", "-c", script],
            &root,
            25,
            90,
        );
        let before = term.initial.clone();
        term.expect("stdin-is-a-tty");
        term.type_in(b"typed\r");
        let status = term.wait();
        let out = term.output();
        let _ = std::process::Command::new(env!("CARGO_BIN_EXE_sandboxd"))
            .args(["delete", "--force", &id])
            .env("SANDBOXD_STATE_ROOT", &root)
            .output();
        assert_eq!(status, 3, "{out:?}");
        assert!(out.starts_with("/dev/pts/0\r\n25 90\r\n"), "{out:?}");
        assert!(out.contains("got:typed\r\n"), "{out:?}");
        let after = term.termios();
        assert_eq!(before.local_flags, after.local_flags, "not restored");
    });
}

/// The id of the one pod under `root`, once `list` says it runs.
fn running_pod(root: &std::path::Path) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let list = std::process::Command::new(env!("CARGO_BIN_EXE_sandboxd"))
            .arg("list")
            .env("SANDBOXD_STATE_ROOT", root)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&list.stdout).into_owned();
        let running = text.lines().skip(1).find(|l| l.contains("running"));
        if let Some(id) = running.and_then(|l| l.split_whitespace().next()) {
            return id.to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no running pod: {text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn tty_terminated_launcher_and_exec_restore_the_terminal() {
    let dir = TempDir::new("ttykill");
    let root = dir.0.join("state");
    let script = "echo ready; sleep 100";
    let pod = write_pod(&dir, &[container("app", script, ", \"tty\": true")]);
    let mut run = HostTerminal::start(&["run", "--platform", "ptrace", &pod], &root, 20, 70);
    run.expect("ready");
    let id = running_pod(&root);
    let args = ["exec", "-t", &id, "--", "/bin/sh", "-c", script];
    let mut exec = HostTerminal::start(&args, &root, 20, 70);
    exec.expect("ready");
    for term in [&mut exec, &mut run] {
        assert_ne!(
            term.termios().local_flags,
            term.initial.local_flags,
            "raw meanwhile"
        );
        term.signal(libc::SIGTERM);
        let status = term.wait();
        assert_eq!(status, 143, "{:?}", term.output());
        assert_eq!(
            term.termios().local_flags,
            term.initial.local_flags,
            "restored"
        );
    }
}

#[test]
fn tty_a_read_of_stdin_that_gets_nothing_is_ended_by_a_signal() {
    use std::io::BufRead;
    let dir = TempDir::new("stdinsig");
    let pod = write_pod(
        &dir,
        &[container(
            "a",
            "timeout 1 cat; echo cat:$?",
            ", \"stdin\": true",
        )],
    );
    each_platform(|p| {
        let mut child = run_with_stdin_piped(&dir, &pod, p);
        // Our end of its stdin stays open and silent: only the signal
        // that timeout(1) sends can end cat's read.
        let stdin = child.stdin.take().unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines() {
                let _ = tx.send(line.unwrap_or_default());
            }
        });
        let line = rx.recv_timeout(std::time::Duration::from_secs(60));
        drop(stdin);
        let status = child.wait().unwrap();
        assert_eq!(
            line.as_deref(),
            Ok("cat:143"),
            "{p}: cat's read was not interrupted"
        );
        assert_eq!(status.code(), Some(0), "{p}");
    });
}
