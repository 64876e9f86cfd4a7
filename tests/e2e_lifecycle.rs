//! End-to-end pod lifecycle: `run -d`, then the commands that drive a
//! running pod (list, exec, kill, wait, pause, resume, delete) through
//! its control socket. Each test has a state root of its own
//! (SANDBOXD_STATE_ROOT), so tests never see each other's pods or the
//! user's.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{image, store, Out, TempDir};

/// A state root, a pod file and the commands to drive it.
struct Lab {
    dir: TempDir,
    tag: String,
}

impl Lab {
    fn new(tag: &str) -> Lab {
        Lab {
            dir: TempDir::new(tag),
            tag: format!("lifecycle-{tag}-{}", std::process::id()),
        }
    }

    fn root(&self) -> PathBuf {
        self.dir.0.join("state")
    }

    /// Writes pod file `name` with one container `app` running `cmd`.
    fn pod(&self, name: &str, cmd: &[&str]) -> PathBuf {
        let cmd: Vec<String> = cmd
            .iter()
            .map(|c| serde_json::to_string(c).unwrap())
            .collect();
        let json = format!(
            "{{\"name\": {name:?}, \"containers\": {{\"app\": {{\"image\": {:?}, \"command\": [{}]}}}}}}",
            image("busybox"),
            cmd.join(", ")
        );
        let path = self.dir.0.join(format!("{name}.json"));
        std::fs::write(&path, json).unwrap();
        path
    }

    /// Runs `sandboxd ARGS` with this lab's state root; stdin /dev/null,
    /// with the common time limit.
    fn sandboxd(&self, args: &[&str]) -> Out {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let root = self.root();
        let env = [
            ("SANDBOXD_STATE_ROOT", root.as_os_str()),
            ("SANDBOXD_TEST_TAG", self.tag.as_ref()),
        ];
        common::sandboxd_with(&args, &env)
    }

    /// `run -d`; returns the pod id.
    fn start(&self, pod: &Path) -> String {
        let out = self.sandboxd(&["run", "-d", pod.to_str().unwrap()]);
        assert_eq!(out.status, 0, "run -d: {out:?}");
        let id = out.stdout.trim().to_string();
        assert_eq!(id.len(), 12, "{out:?}");
        id
    }

    fn log(&self, id: &str) -> String {
        std::fs::read_to_string(self.root().join(id).join("log")).unwrap_or_default()
    }

    /// Live processes started for this lab (the roles inherit SANDBOXD_*).
    fn leftovers(&self) -> usize {
        common::leftovers(&self.tag)
    }

    /// `sandboxd run` of a pod "fg" that prints "started" and sleeps;
    /// returns once it printed that (stdout and stderr piped).
    fn run_foreground(&self) -> std::process::Child {
        let pod = self.pod("fg", &["/bin/sh", "-c", "echo started; sleep 60"]);
        let mut child = Command::new(env!("CARGO_BIN_EXE_sandboxd"))
            .args(["run", pod.to_str().unwrap()])
            .env("SANDBOXD_STORE", store())
            .env("SANDBOXD_STATE_ROOT", self.root())
            .env("SANDBOXD_TEST_TAG", &self.tag)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 8];
        std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
        assert_eq!(&first, b"started\n");
        child
    }

    /// Waits (at most 5 s) until no process of this lab is left.
    fn assert_no_leftovers(&self) {
        let start = Instant::now();
        while self.leftovers() > 0 && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(self.leftovers(), 0, "processes outlived the pod");
    }
}

/// Polls `f` every 50 ms for at most 10 s.
fn eventually(what: &str, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

const LOOP: &[&str] = &[
    "/bin/sh",
    "-c",
    "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.05; done",
];

#[test]
fn run_detached_is_listed_running_and_exec_returns_output_and_status() {
    let lab = Lab::new("exec");
    let id = lab.start(&lab.pod("web", &["/bin/sleep", "60"]));
    let list = lab.sandboxd(&["list"]);
    let line = list.stdout.lines().find(|l| l.starts_with(&id));
    assert!(
        line.is_some_and(|l| l.contains(" web ") && l.contains(" running ")),
        "{list:?}"
    );
    let echo = lab.sandboxd(&["exec", &id, "--", "echo", "hi"]);
    assert_eq!((echo.status, echo.stdout.as_str()), (0, "hi\n"), "{echo:?}");
    let three = lab.sandboxd(&["exec", "web", "app", "--", "sh", "-c", "exit 3"]);
    assert_eq!(three.status, 3, "{three:?}");
    let missing = lab.sandboxd(&["exec", &id, "--", "no-such-command"]);
    assert_eq!(missing.status, 127, "{missing:?}");
    let ps = lab.sandboxd(&["ps", &id]);
    assert!(ps.stdout.contains("/bin/sleep 60"), "{ps:?}");
    let del = lab.sandboxd(&["delete", "--force", &id]);
    assert_eq!(del.status, 0, "{del:?}");
    lab.assert_no_leftovers();
}

#[test]
fn kill_stops_the_pod_and_wait_returns_its_status() {
    let lab = Lab::new("kill");
    let id = lab.start(&lab.pod("k", &["/bin/sleep", "60"]));
    let kill = lab.sandboxd(&["kill", &id, "KILL"]);
    assert_eq!(kill.status, 0, "{kill:?}");
    let wait = lab.sandboxd(&["wait", &id]);
    assert_eq!((wait.status, wait.stdout.trim()), (137, "137"), "{wait:?}");
    let list = lab.sandboxd(&["list"]);
    assert!(list.stdout.contains(" stopped "), "{list:?}");
    // Stopped pods refuse what needs a running one, in one line.
    let exec = lab.sandboxd(&["exec", &id, "--", "true"]);
    assert_eq!(exec.status, 125);
    assert_eq!(
        exec.stderr,
        format!("sandboxd: pod {id} is stopped: cannot exec in it\n")
    );
    let del = lab.sandboxd(&["delete", &id]);
    assert_eq!(del.status, 0, "{del:?}");
    assert!(!lab.root().join(&id).exists());
    lab.assert_no_leftovers();
}

#[test]
fn pause_stops_the_output_and_resume_restarts_it() {
    let lab = Lab::new("pause");
    let id = lab.start(&lab.pod("counter", LOOP));
    eventually("first output", || lab.log(&id).contains("tick 3"));
    let pause = lab.sandboxd(&["pause", &id]);
    assert_eq!(pause.status, 0, "{pause:?}");
    let list = lab.sandboxd(&["list"]);
    assert!(list.stdout.contains(" paused "), "{list:?}");
    let at_pause = lab.log(&id).len();
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(lab.log(&id).len(), at_pause, "output grew while paused");
    let again = lab.sandboxd(&["pause", &id]);
    assert_eq!(
        again.stderr,
        format!("sandboxd: pod {id} is paused: only a running pod can be paused\n")
    );
    assert_eq!(lab.sandboxd(&["resume", &id]).status, 0);
    eventually("output after resume", || lab.log(&id).len() > at_pause);
    let del = lab.sandboxd(&["delete", "-f", &id]);
    assert_eq!(del.status, 0, "{del:?}");
    lab.assert_no_leftovers();
}

#[test]
fn delete_running_pod_is_refused_without_force() {
    let lab = Lab::new("delete");
    let id = lab.start(&lab.pod("d", &["/bin/sleep", "60"]));
    let refused = lab.sandboxd(&["delete", &id]);
    assert_eq!(refused.status, 125);
    assert_eq!(
        refused.stderr,
        format!("sandboxd: pod {id} is running: stop it first, or delete --force\n")
    );
    assert!(lab.root().join(&id).join("meta.json").exists());
    let del = lab.sandboxd(&["delete", "--force", &id]);
    assert_eq!(del.status, 0, "{del:?}");
    assert!(!lab.root().join(&id).exists());
    lab.assert_no_leftovers();
}

#[test]
fn five_pods_in_parallel_leave_nothing_after_delete() {
    let lab = Lab::new("five");
    let pods: Vec<PathBuf> = (0..5)
        .map(|i| lab.pod(&format!("p{i}"), &["/bin/sleep", "60"]))
        .collect();
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = pods.iter().map(|p| s.spawn(|| lab.start(p))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let list = lab.sandboxd(&["list", "-q"]);
    let mut listed: Vec<&str> = list.stdout.lines().collect();
    listed.sort();
    let mut want: Vec<&str> = ids.iter().map(String::as_str).collect();
    want.sort();
    assert_eq!(listed, want);
    std::thread::scope(|s| {
        for id in &ids {
            s.spawn(|| {
                let out = lab.sandboxd(&["delete", "-f", id]);
                assert_eq!(out.status, 0, "{out:?}");
            });
        }
    });
    lab.assert_no_leftovers();
    let left: Vec<_> = std::fs::read_dir(lab.root()).unwrap().collect();
    assert!(left.is_empty(), "state left: {left:?}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(lab.dir.0.to_str().unwrap()), "{mounts}");
}

#[test]
fn unknown_pod_and_bad_arguments_are_one_line_errors() {
    let lab = Lab::new("errors");
    for args in [
        &["ps", "nope"][..],
        &["kill", "nope"],
        &["wait", "nope"],
        &["delete", "nope"],
        &["exec", "nope", "--", "true"],
    ] {
        let out = lab.sandboxd(args);
        assert_eq!(out.status, 125, "{args:?}: {out:?}");
        assert_eq!(
            out.stderr, "sandboxd: pod \"nope\" does not exist\n",
            "{args:?}"
        );
    }
    let bad_signal = lab.sandboxd(&["kill", "nope", "SIGNOPE"]);
    assert_eq!(bad_signal.stderr, "sandboxd: unknown signal \"SIGNOPE\"\n");
}

#[test]
fn killed_foreground_launcher_takes_the_pod_with_it() {
    let lab = Lab::new("fg-kill");
    let mut child = lab.run_foreground();
    // While it runs, the foreground pod is listed and reachable.
    let list = lab.sandboxd(&["list"]);
    assert!(list.stdout.contains(" fg "), "{list:?}");
    child.kill().unwrap();
    child.wait().unwrap();
    lab.assert_no_leftovers();
    // Its entry is stale: list drops it. A sandbox still tearing down its
    // VM has already lost its environment (so it is no leftover above) but
    // is not yet a zombie: it counts as live until it is one.
    eventually("the stale entry is dropped", || {
        lab.sandboxd(&["list", "-q"]).stdout.is_empty()
    });
    assert_eq!(std::fs::read_dir(lab.root()).unwrap().count(), 0);
}

#[test]
fn killed_monitor_takes_the_pod_with_it_and_state_says_stopped() {
    let lab = Lab::new("monitor");
    let id = lab.start(&lab.pod("m", &["/bin/sleep", "60"]));
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(lab.root().join(&id).join("meta.json")).unwrap())
            .unwrap();
    let monitor = meta["monitor"]["pid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitor),
        nix::sys::signal::SIGKILL,
    )
    .unwrap();
    lab.assert_no_leftovers();
    let list = lab.sandboxd(&["list"]);
    let line = list.stdout.lines().find(|l| l.starts_with(&id)).unwrap();
    assert!(line.contains(" stopped ") && line.ends_with('?'), "{line}");
    let wait = lab.sandboxd(&["wait", &id]);
    assert_eq!((wait.status, wait.stdout.trim()), (125, "unknown"));
    let del = lab.sandboxd(&["delete", &id]);
    assert_eq!(del.status, 0, "{del:?}");
}

#[test]
fn two_containers_log_with_prefixes() {
    let lab = Lab::new("prefix");
    let img = image("busybox");
    let json = format!(
        "{{\"name\": \"two\", \"containers\": {{\
         \"a\": {{\"image\": {img:?}, \"command\": [\"/bin/sh\", \"-c\", \"echo from-a; sleep 60\"]}},\
         \"b\": {{\"image\": {img:?}, \"command\": [\"/bin/sh\", \"-c\", \"echo from-b; sleep 60\"]}}}}}}"
    );
    let pod = lab.dir.0.join("two.json");
    std::fs::write(&pod, json).unwrap();
    let id = lab.start(&pod);
    eventually("both lines", || {
        let log = lab.log(&id);
        log.contains("[a] from-a\n") && log.contains("[b] from-b\n")
    });
    let only_b = lab.sandboxd(&["logs", &id, "b"]);
    assert_eq!(only_b.stdout, "from-b\n", "{only_b:?}");
    let stats = lab.sandboxd(&["stats", &id]);
    let v: serde_json::Value = serde_json::from_str(stats.stdout.trim()).unwrap();
    assert!(v["memory"]["used"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v["containers"].as_array().unwrap().len(), 2, "{v}");
    let del = lab.sandboxd(&["delete", "-f", &id]);
    assert_eq!(del.status, 0, "{del:?}");
    lab.assert_no_leftovers();
}

// ---- kill -9 of each role while a pod runs ----

impl Lab {
    fn meta(&self, id: &str) -> serde_json::Value {
        let text = std::fs::read(self.root().join(id).join("meta.json")).unwrap();
        serde_json::from_slice(&text).unwrap()
    }

    /// Writes pod file `name` with two busybox containers: `a` counts,
    /// `b` lists a directory of its image every 50 ms (so it uses its
    /// gofer), each line prefixed by the monitor; each ends (status 0)
    /// once its /tmp/stop exists.
    fn two_pod(&self, name: &str) -> PathBuf {
        let img = image("busybox");
        let a = r#"i=0; until [ -e /tmp/stop ]; do echo tick $i; i=$((i+1)); sleep 0.05; done"#;
        let b = r#"until [ -e /tmp/stop ]; do ls /bin/sh >/dev/null && echo ok; sleep 0.05; done"#;
        let json = format!(
            "{{\"name\": {name:?}, \"containers\": {{\
             \"a\": {{\"image\": {img:?}, \"command\": [\"/bin/sh\", \"-c\", {a:?}]}},\
             \"b\": {{\"image\": {img:?}, \"command\": [\"/bin/sh\", \"-c\", {b:?}]}}}}}}"
        );
        let path = self.dir.0.join(format!("{name}.json"));
        std::fs::write(&path, json).unwrap();
        path
    }
}

fn kill9(pid: i64) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::SIGKILL,
    )
    .unwrap();
}

#[test]
fn killed_gofer_destroys_its_container_and_the_other_keeps_running() {
    for (victim, survivor, line) in [(0, "b", "[b] ok\n"), (1, "a", "[a] tick ")] {
        let lab = Lab::new(&format!("gofer-{victim}"));
        let id = lab.start(&lab.two_pod("g"));
        let names = ["a", "b"];
        eventually("both containers run", || {
            let log = lab.log(&id);
            log.contains("[a] tick 1\n") && log.contains("[b] ok\n")
        });
        kill9(lab.meta(&id)["gofers"][victim]["pid"].as_i64().unwrap());
        let report = format!(
            "sandboxd: container {}: its gofer died (killed by SIGKILL); the container was destroyed\n",
            names[victim]
        );
        eventually("the report", || lab.log(&id).contains(&report));
        // The victim's processes are gone, the survivor's still run.
        eventually("the victim's processes are gone", || {
            let ps = lab.sandboxd(&["ps", &id]);
            let live = |l: &&str| l.starts_with(names[victim]) && !l.contains(" zombie ");
            ps.status == 0 && !ps.stdout.lines().any(|l| live(&l))
        });
        let after = lab.log(&id).len();
        eventually("the survivor keeps writing", || {
            lab.log(&id)[after..].contains(line)
        });
        let exec = lab.sandboxd(&["exec", &id, names[victim], "--", "true"]);
        assert_eq!(
            exec.stderr,
            format!(
                "sandboxd: container {} was destroyed: its gofer died\n",
                names[victim]
            )
        );
        let stop = lab.sandboxd(&["exec", &id, survivor, "--", "touch", "/tmp/stop"]);
        assert_eq!(stop.status, 0, "{stop:?}");
        // The survivor ended well; the pod's status says sandboxd failed
        // a container, and `events` shows why.
        let wait = lab.sandboxd(&["wait", &id]);
        assert_eq!(wait.stdout.trim(), "125", "{wait:?}");
        let events = lab.sandboxd(&["events", &id]);
        let lines: Vec<serde_json::Value> = events
            .stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{events:?}");
        assert_eq!(lines[0]["type"], "gofer-died", "{events:?}");
        assert_eq!(lines[0]["container"], names[victim]);
        assert_eq!(lines[0]["cause"], "killed by SIGKILL");
        assert_eq!(
            (&lines[1]["type"], &lines[1]["status"]),
            (&"exit".into(), &125.into())
        );
        let del = lab.sandboxd(&["delete", &id]);
        assert_eq!(del.status, 0, "{del:?}");
        assert_eq!(std::fs::read_dir(lab.root()).unwrap().count(), 0);
        lab.assert_no_leftovers();
    }
}

#[test]
fn killed_gofer_of_a_foreground_pod_ends_it_with_a_report() {
    let lab = Lab::new("fg-gofer");
    let child = lab.run_foreground();
    let id = lab.sandboxd(&["list", "-q"]).stdout.trim().to_string();
    kill9(lab.meta(&id)["gofers"][0]["pid"].as_i64().unwrap());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    // The guest may yet report its own failed file operations (EIO) on
    // the same stream before it is killed; sandboxd says one thing.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ours: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("sandboxd"))
        .collect();
    assert_eq!(
        ours,
        ["sandboxd: container app: its gofer died (killed by SIGKILL); the container was destroyed"],
        "{stderr}"
    );
    lab.assert_no_leftovers();
    assert_eq!(std::fs::read_dir(lab.root()).unwrap().count(), 0);
}

#[test]
fn killed_sandbox_stops_the_pod_and_its_gofers_exit() {
    let lab = Lab::new("sandbox-kill");
    let id = lab.start(&lab.two_pod("s"));
    eventually("the pod runs", || lab.log(&id).contains("[b] ok\n"));
    kill9(lab.meta(&id)["sandbox"]["pid"].as_i64().unwrap());
    let wait = lab.sandboxd(&["wait", &id]);
    assert_eq!((wait.status, wait.stdout.trim()), (125, "125"), "{wait:?}");
    assert!(
        lab.log(&id)
            .ends_with("sandboxd: sandbox died: killed by SIGKILL\n"),
        "{}",
        lab.log(&id)
    );
    let list = lab.sandboxd(&["list"]);
    assert!(list.stdout.contains(" stopped "), "{list:?}");
    // The gofers saw their sockets close and exited; nothing is left.
    lab.assert_no_leftovers();
    let del = lab.sandboxd(&["delete", &id]);
    assert_eq!(del.status, 0, "{del:?}");
    assert_eq!(std::fs::read_dir(lab.root()).unwrap().count(), 0);
}

// ---- a shared PID namespace ----

/// Parses `ps` output: (container, pid, state) per process.
fn ps_rows(out: &Out) -> Vec<(String, i32, String)> {
    out.stdout
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].to_string(), f[1].parse().unwrap(), f[3].to_string())
        })
        .collect()
}

#[test]
fn shared_pid_pod_keeps_ps_exec_and_kill_per_container() {
    let lab = Lab::new("sharedpid");
    let img = image("busybox");
    let json = format!(
        "{{\"name\": \"shp\", \"pid\": \"pod\", \"containers\": {{\
         \"a\": {{\"image\": {img:?}, \"command\": [\"/bin/sh\", \"-c\", \"sleep 60\"]}},\
         \"b\": {{\"image\": {img:?}, \"after\": [\"a\"], \"command\": [\"/bin/sh\", \"-c\", \"sleep 61\"]}}}}}}"
    );
    let pod = lab.dir.0.join("shp.json");
    std::fs::write(&pod, json).unwrap();
    let id = lab.start(&pod);
    let rows = || ps_rows(&lab.sandboxd(&["ps", &id]));
    eventually("both sleeps", || rows().len() == 4);
    // Each container's own processes, with pids of one namespace: all
    // distinct, one PID 1.
    let all = rows();
    let mut pids: Vec<i32> = all.iter().map(|r| r.1).collect();
    pids.sort();
    pids.dedup();
    assert_eq!(pids.len(), 4, "{all:?}");
    assert_eq!(all.iter().filter(|r| r.1 == 1).count(), 1, "{all:?}");
    for c in ["a", "b"] {
        assert_eq!(all.iter().filter(|r| r.0 == c).count(), 2, "{all:?}");
    }
    let b_pids: Vec<i32> = all.iter().filter(|r| r.0 == "b").map(|r| r.1).collect();
    // A process exec'd into a sees b's processes.
    let probe = format!("kill -0 {}", b_pids[1]);
    let exec = lab.sandboxd(&["exec", &id, "a", "--", "sh", "-c", &probe]);
    assert_eq!(exec.status, 0, "{exec:?}");
    let stats = lab.sandboxd(&["stats", &id]);
    let v: serde_json::Value = serde_json::from_str(stats.stdout.trim()).unwrap();
    assert_eq!(v["containers"][0]["processes"], 2, "{v}");
    assert_eq!(v["containers"][1]["processes"], 2, "{v}");
    // `kill -c b` ends b alone: its processes go, a's stay.
    let kill = lab.sandboxd(&["kill", "-c", "b", &id]);
    assert_eq!(kill.status, 0, "{kill:?}");
    eventually("b's processes are gone", || {
        rows().iter().all(|r| r.0 != "b" || r.2 == "zombie")
    });
    let live_a = rows()
        .iter()
        .filter(|r| r.0 == "a" && r.2 == "running")
        .count();
    assert_eq!(live_a, 2);
    let gone = lab.sandboxd(&["exec", &id, "a", "--", "kill", "-0", &b_pids[1].to_string()]);
    assert_ne!(gone.status, 0, "{gone:?}");
    let exec = lab.sandboxd(&["exec", &id, "b", "--", "true"]);
    assert_eq!(
        exec.stderr, "sandboxd: container b has exited\n",
        "{exec:?}"
    );
    let kill = lab.sandboxd(&["kill", "--all", &id, "KILL"]);
    assert_eq!(kill.status, 0, "{kill:?}");
    // a's status first (137), then b's (143 from its SIGTERM).
    let wait = lab.sandboxd(&["wait", &id]);
    assert_eq!(wait.stdout.trim(), "137", "{wait:?}");
    let del = lab.sandboxd(&["delete", &id]);
    assert_eq!(del.status, 0, "{del:?}");
    lab.assert_no_leftovers();
}
