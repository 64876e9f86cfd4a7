//! End-to-end pod composition and pod-level behaviour: `imports` and
//! `check`, background helper containers, `resources.cpus`, memory
//! volumes in the sentry.

mod common;

use std::path::{Path, PathBuf};

use common::{each_platform, image, sandboxd, Out, TempDir};

fn write(dir: &Path, name: &str, json: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, json).unwrap();
    path
}

fn run(platform: &str, pod: &Path) -> Out {
    sandboxd(&[
        "run".into(),
        "--platform".into(),
        platform.into(),
        pod.to_str().unwrap().into(),
    ])
}

/// Runs `pod` on every platform and expects `status` and `stdout`.
fn runs_everywhere_with(pod: &Path, status: i32, stdout: &str) {
    each_platform(|p| {
        let out = run(p, pod);
        assert_eq!(
            (out.status, out.stdout.as_str()),
            (status, stdout),
            "{p}: {out:?}"
        );
    });
}

fn check(pod: &Path) -> Out {
    sandboxd(&["check".into(), pod.to_str().unwrap().into()])
}

// ---- imports ----

/// A base in another directory (with its own relative bundle path), a
/// fragment, and a pod importing both and overriding some of it.
fn composed(dir: &Path) -> PathBuf {
    let lib = dir.join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::copy(image("busybox"), lib.join("bb.tar.gz")).unwrap();
    write(
        &lib,
        "base.json",
        r#"{"images": {"bb": {"path": "bb.tar.gz"}},
            "resources": {"memory": "128MiB", "cpus": 1},
            "containers": {"app": {"image": "bb", "command": ["/bin/false"],
                                   "env": {"A": "base", "B": "base"}}}}"#,
    );
    write(
        dir,
        "env.json",
        r#"{"containers": {"app": {"env": {"B": "fragment", "C": "fragment"}}}}"#,
    );
    write(
        dir,
        "top.pod.json",
        r#"{"imports": ["lib/base.json", "env.json"],
            "resources": {"memory": "256MiB"},
            "containers": {"app": {"command": ["/bin/sh", "-c", "echo $A $B $C"],
                                   "env": {"C": "top"}}}}"#,
    )
}

#[test]
fn check_imports_merge_deeply_later_wins_and_lists_replace() {
    let dir = TempDir::new("imports");
    let out = check(&composed(&dir.0));
    assert_eq!(out.status, 0, "{out:?}");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let lib = std::fs::canonicalize(dir.0.join("lib")).unwrap();
    assert_eq!(v["name"], "top");
    assert_eq!(
        v["images"]["bb"]["path"],
        lib.join("bb.tar.gz").to_str().unwrap()
    );
    assert_eq!(v["resources"]["memory"], 256 << 20);
    assert_eq!(v["resources"]["cpus"], 1);
    let app = &v["containers"]["app"];
    assert_eq!(
        app["env"],
        serde_json::json!({"A": "base", "B": "fragment", "C": "top"})
    );
    assert_eq!(
        app["command"],
        serde_json::json!(["/bin/sh", "-c", "echo $A $B $C"])
    );
    // Every default is filled in.
    assert_eq!(app["workdir"], "/");
    assert_eq!(app["init"], true);
    assert_eq!(app["background"], false);
    assert_eq!(app["user"], serde_json::json!({"uid": 0, "gid": 0}));
    assert_eq!(v["platform"], "auto");
    assert_eq!(v["volumes"], serde_json::json!({}));
}

#[test]
fn run_composed_pod_sees_the_merged_environment() {
    let dir = TempDir::new("imports-run");
    let pod = composed(&dir.0);
    runs_everywhere_with(&pod, 0, "base fragment top\n");
}

#[test]
fn check_import_cycle_is_a_one_line_error() {
    let dir = TempDir::new("imports-cycle");
    let d = std::fs::canonicalize(&dir.0).unwrap();
    write(&d, "a.json", r#"{"imports": ["b.json"]}"#);
    write(&d, "b.json", r#"{"imports": ["./a.json"]}"#);
    let out = check(&d.join("a.json"));
    let d = d.display();
    assert_eq!(out.status, 125);
    assert_eq!(
        out.stderr,
        format!(
            "sandboxd: {d}/b.json: imports[0]: import cycle: {d}/a.json -> {d}/b.json -> {d}/a.json\n"
        )
    );
}

#[test]
fn check_missing_import_is_a_one_line_error() {
    let dir = TempDir::new("imports-missing");
    let pod = write(&dir.0, "p.json", r#"{"imports": ["x.json", "nope.json"]}"#);
    write(&dir.0, "x.json", "{}");
    let out = check(&pod);
    let d = dir.0.display();
    assert_eq!(out.status, 125);
    assert_eq!(
        out.stderr,
        format!("sandboxd: {d}/p.json: imports[1]: {d}/nope.json: No such file or directory\n")
    );
}

#[test]
fn check_invalid_imported_file_names_that_file_and_path() {
    let dir = TempDir::new("imports-invalid");
    write(
        &dir.0,
        "frag.json",
        r#"{"containers": {"app": {"env": {"N": 1}}}}"#,
    );
    let pod = write(
        &dir.0,
        "p.json",
        &format!(
            r#"{{"imports": ["frag.json"], "containers": {{"app": {{"image": {:?}, "command": ["true"]}}}}}}"#,
            image("busybox")
        ),
    );
    let out = check(&pod);
    let d = dir.0.display();
    assert_eq!(out.status, 125);
    assert_eq!(
        out.stderr,
        format!("sandboxd: {d}/frag.json: containers.app.env.N: expected a string, got a number\n")
    );
    // A syntax error in an imported file names it and the position.
    write(&dir.0, "frag.json", "{\"containers\": [}");
    let out = check(&pod);
    assert_eq!(
        out.stderr,
        format!("sandboxd: {d}/frag.json: line 1 column 17: expected value\n")
    );
}

#[test]
fn check_imports_of_the_wrong_type_is_a_one_line_error() {
    let dir = TempDir::new("imports-type");
    let pod = write(&dir.0, "p.json", r#"{"imports": "base.json"}"#);
    let out = check(&pod);
    assert_eq!(
        out.stderr,
        format!(
            "sandboxd: {}/p.json: imports: expected an array of strings, got a string\n",
            dir.0.display()
        )
    );
}

// ---- background containers ----

/// Writes `dir/pod.json`: pod members `top` (raw JSON, may be empty)
/// and busybox containers `(name, extra fields as raw JSON, sh script)`.
fn busybox_pod(dir: &Path, top: &str, containers: &[(&str, &str, &str)]) -> PathBuf {
    let bb = image("busybox");
    let cs: Vec<String> = containers
        .iter()
        .map(|(name, extra, script)| {
            let sep = if extra.is_empty() { "" } else { ", " };
            format!(
                r#"{name:?}: {{"image": {bb:?}, "command": ["/bin/sh", "-c", {}]{sep}{extra}}}"#,
                serde_json::to_string(script).unwrap()
            )
        })
        .collect();
    let sep = if top.is_empty() { "" } else { ", " };
    let json = format!(r#"{{"containers": {{{}}}{sep}{top}}}"#, cs.join(", "));
    write(dir, "pod.json", &json)
}

#[test]
fn run_background_helpers_are_stopped_when_the_main_containers_end() {
    let dir = TempDir::new("background");
    let pod = busybox_pod(
        &dir.0,
        "",
        &[
            (
                "main",
                r#""after": ["helper", "stubborn"]"#,
                "sleep 0.3; echo main done; exit 3",
            ),
            (
                "helper",
                r#""background": true"#,
                "trap 'echo got TERM; exit 9' TERM; echo up; while true; do sleep 0.05; done",
            ),
            (
                "stubborn",
                r#""background": true"#,
                "trap '' TERM; echo up; while true; do sleep 0.05; done",
            ),
        ],
    );
    each_platform(|p| {
        let start = std::time::Instant::now();
        let out = run(p, &pod);
        let took = start.elapsed();
        // The main container's status, not the helpers' (9, 137).
        assert_eq!(out.status, 3, "{p}: {out:?}");
        let mut lines: Vec<&str> = out.stdout.lines().collect();
        lines.sort();
        assert_eq!(
            lines,
            [
                "[helper] got TERM",
                "[helper] up",
                "[main] main done",
                "[stubborn] up"
            ],
            "{p}: {out:?}"
        );
        // The stubborn one is killed after the grace period (2 s).
        assert!(took.as_secs_f64() > 2.0 && took.as_secs() < 10, "{took:?}");
    });
}

#[test]
fn run_background_helper_that_ends_early_does_not_end_the_pod() {
    let dir = TempDir::new("background-early");
    let pod = busybox_pod(
        &dir.0,
        "",
        &[
            ("main", "", "sleep 0.5; echo main done"),
            ("helper", r#""background": true"#, "exit 5"),
        ],
    );
    runs_everywhere_with(&pod, 0, "[main] main done\n");
}

#[test]
fn check_pod_of_only_background_containers_is_refused() {
    let dir = TempDir::new("background-only");
    let pod = busybox_pod(&dir.0, "", &[("h", r#""background": true"#, "true")]);
    let want = format!(
        "sandboxd: {}/pod.json: containers: every container is a background helper: at least one must not be\n",
        dir.0.display()
    );
    let out = check(&pod);
    assert_eq!((out.status, out.stderr.as_str()), (125, want.as_str()));
    let out = run("ptrace", &pod);
    assert_eq!((out.status, out.stderr.as_str()), (125, want.as_str()));
}

// ---- resources.cpus ----

/// Runs `cpuburn THREADS 200` in a pod with `cpus` CPUs; returns the CPU
/// counts line and how many CPUs the threads used at once on average.
fn cpuburn(platform: &str, cpus: u32, threads: u32) -> (String, f64) {
    let dir = TempDir::new("cpus");
    let pod = write(
        &dir.0,
        "pod.json",
        &format!(
            r#"{{"resources": {{"cpus": {cpus}}}, "containers": {{"app": {{"image": {:?},
                "command": ["/bin/cpuburn", "{threads}", "200"]}}}}}}"#,
            image("testprogs")
        ),
    );
    let out = run(platform, &pod);
    assert_eq!(out.status, 0, "{platform}: {out:?}");
    let mut lines = out.stdout.lines();
    let counts = lines.next().unwrap_or_default().to_string();
    let parallel = lines
        .next()
        .and_then(|l| l.strip_prefix("parallel "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{platform}: {out:?}"));
    (counts, parallel)
}

#[test]
fn run_cpus_is_the_count_the_guest_sees_and_uses() {
    each_platform(|p| {
        // Three busy threads on one CPU all finish (each is preempted
        // after its time slice) and never run at the same time.
        let (counts, parallel) = cpuburn(p, 1, 3);
        assert_eq!(counts, "affinity 1 nprocs 1 cpuinfo 1", "{p}");
        assert!(parallel <= 1.1, "{p}: {parallel} CPUs used at once");
        let (counts, _) = cpuburn(p, 2, 1);
        assert_eq!(counts, "affinity 2 nprocs 2 cpuinfo 2", "{p}");
    });
}

#[test]
fn run_one_cpu_is_not_held_by_a_thread_blocked_in_a_syscall() {
    // The shell blocks in wait4 while its child computes: with one CPU the
    // child still runs. And a reader blocked on a pipe lets the writer run.
    let dir = TempDir::new("cpus-block");
    let pod = busybox_pod(
        &dir.0,
        r#""resources": {"cpus": 1}"#,
        &[(
            "app",
            "",
            "(sleep 0.2; i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done; echo $i) | cat",
        )],
    );
    runs_everywhere_with(&pod, 0, "2000\n");
}

// ---- memory volumes ----

#[test]
fn run_memory_volume_is_one_sentry_tmpfs_shared_with_its_size_limit() {
    let dir = TempDir::new("volume-tmpfs");
    let writer = "mkdir /work/d; echo payload >/work/d/f; cd /work/d; pwd; cd ../..; pwd; \
        dd if=/dev/zero of=/work/big bs=64k count=32 2>/dev/null || echo full; \
        df -k /work | tail -1 | tr -s ' ' | cut -d' ' -f1,2; touch /work/ready";
    let reader = "while [ ! -e /mnt/in/ready ]; do sleep 0.05; done; cat /mnt/in/d/f; \
        cd /mnt/in/d && pwd && cd ../.. && pwd; echo x >/mnt/in/y || echo refused; \
        grep /mnt/in /proc/mounts";
    let pod = busybox_pod(
        &dir.0,
        r#""volumes": {"work": {"type": "tmpfs", "size": "1MiB"}}"#,
        &[
            (
                "a-writer",
                r#""mounts": [{"volume": "work", "target": "/work"}]"#,
                writer,
            ),
            (
                "b-reader",
                r#""after": ["a-writer"], "mounts": [{"volume": "work", "target": "/mnt/in", "readonly": true}]"#,
                reader,
            ),
        ],
    );
    each_platform(|p| {
        let out = run(p, &pod);
        assert_eq!(out.status, 0, "{p}: {out:?}");
        let mut w: Vec<&str> = out.stdout.lines().filter(|l| l.starts_with("[a")).collect();
        let r: Vec<&str> = out.stdout.lines().filter(|l| l.starts_with("[b")).collect();
        w.sort_unstable();
        assert_eq!(
            w,
            [
                "[a-writer] /",
                "[a-writer] /work/d",
                "[a-writer] full",
                "[a-writer] tmpfs 1024"
            ],
            "{p}: {out:?}"
        );
        // `..` at the volume's root leads into the reader's own tree.
        assert_eq!(
            r,
            [
                "[b-reader] payload",
                "[b-reader] /mnt/in/d",
                "[b-reader] /mnt",
                "[b-reader] /bin/sh: can't create /mnt/in/y: Read-only file system",
                "[b-reader] refused",
                "[b-reader] tmpfs /mnt/in tmpfs ro,nosuid,nodev,relatime,size=1024k 0 0"
            ],
            "{p}: {out:?}"
        );
    });
}

#[test]
fn run_memory_volume_counts_against_the_pod_memory() {
    // The volume may hold 1GiB, the pod has 64MiB: the writer is killed as
    // by the OOM killer once guest memory is gone, and removing the file
    // gives the memory back.
    let dir = TempDir::new("volume-memory");
    let pod = busybox_pod(
        &dir.0,
        r#""resources": {"memory": "64MiB"}, "volumes": {"work": {"size": "1GiB"}}"#,
        &[(
            "a",
            r#""mounts": [{"volume": "work", "target": "/work"}]"#,
            "dd if=/dev/zero of=/work/big bs=1M count=100 2>/dev/null; echo dd $?; \
             rm /work/big; dd if=/dev/zero of=/work/big bs=1M count=8 2>/dev/null; echo dd $?",
        )],
    );
    runs_everywhere_with(&pod, 0, "dd 137\ndd 0\n");
}

#[test]
fn check_volume_size_is_read_and_refused_where_it_does_not_belong() {
    let dir = TempDir::new("volume-size");
    let pod = busybox_pod(
        &dir.0,
        r#""volumes": {"work": {"size": "2MiB"}, "plain": {}}"#,
        &[("a", "", "true")],
    );
    let out = check(&pod);
    assert_eq!(out.status, 0, "{out:?}");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        v["volumes"],
        serde_json::json!({"plain": {"type": "tmpfs", "size": 64 << 20},
                           "work": {"type": "tmpfs", "size": 2 << 20}})
    );
    let pod = busybox_pod(
        &dir.0,
        r#""volumes": {"src": {"source": ".", "size": "2MiB"}}"#,
        &[("a", "", "true")],
    );
    let out = check(&pod);
    assert_eq!(
        out.stderr,
        format!(
            "sandboxd: {}/pod.json: volumes.src.size: not allowed in a bind volume\n",
            dir.0.display()
        )
    );
}

// ---- pid: "pod" (a shared PID namespace) ----

/// A pod of `a` and `b` (b starts after a) sharing volume /w, with
/// `"pid": mode`. `a` forks a few processes (so its pids are beyond
/// b's first ones), starts `sleep 2` and writes its pid; b kills that
/// pid. Each prints its shell's pid and parent pid.
fn pid_pod(dir: &Path, mode: &str) -> PathBuf {
    let a = "echo a $$ $PPID; for i in 1 2 3 4 5 6 7 8; do /bin/true; done; \
             sleep 2 & echo $! > /w/pid; wait $!; echo a sleep $?";
    let b = "echo b $$ $PPID; until [ -s /w/pid ]; do sleep 0.05; done; \
             kill $(cat /w/pid) 2>/dev/null; echo b kill $?";
    let mount = r#""mounts": [{"volume": "w", "target": "/w"}]"#;
    let b_extra = format!(r#"{mount}, "after": ["a"]"#);
    busybox_pod(
        dir,
        &format!(r#""pid": {mode:?}, "volumes": {{"w": {{}}}}"#),
        &[("a", mount, a), ("b", &b_extra, b)],
    )
}

/// The fields of the line of `out` starting with `prefix`.
fn fields<'a>(out: &'a Out, prefix: &str) -> Vec<&'a str> {
    let line = out.stdout.lines().find(|l| l.starts_with(prefix));
    let line = line.unwrap_or_else(|| panic!("no {prefix:?} line: {out:?}"));
    line.split_whitespace().collect()
}

/// The status of b's kill and of a's sleep.
fn kill_and_sleep(out: &Out) -> (&str, &str) {
    let last = |prefix| *fields(out, prefix).last().unwrap();
    (last("[b] b kill"), last("[a] a sleep"))
}

#[test]
fn run_shared_pid_namespace_lets_containers_signal_each_others_processes() {
    let dir = TempDir::new("pid-pod");
    let shared = pid_pod(&dir.0, "pod");
    each_platform(|p| {
        let out = run(p, &shared);
        assert_eq!(out.status, 0, "{p}: {out:?}");
        // b's kill reached a's sleep, by its pid: a's wait says SIGTERM.
        assert_eq!(kill_and_sleep(&out), ("0", "143"), "{p}: {out:?}");
        // One namespace: distinct pids, and only the first container's
        // init is PID 1 (b's init has an ordinary pid).
        let (a, b) = (fields(&out, "[a] a "), fields(&out, "[b] b "));
        assert_ne!(a[2], b[2], "{p}: {out:?}");
        assert_eq!(a[3], "1", "{p}: {out:?}");
        assert!(!["0", "1"].contains(&b[3]), "{p}: {out:?}");
    });
}

#[test]
fn run_pid_namespaces_are_per_container_by_default() {
    let dir = TempDir::new("pid-container");
    let own = pid_pod(&dir.0, "container");
    each_platform(|p| {
        let out = run(p, &own);
        assert_eq!(out.status, 0, "{p}: {out:?}");
        // a's sleep has no pid in b's namespace: ESRCH, and it sleeps on.
        assert_eq!(kill_and_sleep(&out), ("1", "0"), "{p}: {out:?}");
        // Each container's init is PID 1 of its own namespace.
        assert_eq!(fields(&out, "[a] a ")[3], "1", "{p}: {out:?}");
        assert_eq!(fields(&out, "[b] b ")[3], "1", "{p}: {out:?}");
    });
}

#[test]
fn run_shared_pid_container_end_kills_only_its_own_processes() {
    let dir = TempDir::new("pid-pod-end");
    // Whichever ends first (a holds PID 1, b does not), its left-behind
    // child dies with it; the other container's processes live on, and
    // the pod's status is the first non-zero one.
    for (a, b, status, want) in [
        (
            "(sleep 0.6; echo a orphan) & sleep 0.2; exit 3",
            "sleep 1; echo b alive",
            3,
            "[b] b alive\n",
        ),
        (
            "sleep 1; echo a alive",
            "(sleep 0.6; echo b orphan) & sleep 0.2; exit 4",
            4,
            "[a] a alive\n",
        ),
    ] {
        let pod = busybox_pod(
            &dir.0,
            r#""pid": "pod""#,
            &[("a", "", a), ("b", r#""after": ["a"]"#, b)],
        );
        runs_everywhere_with(&pod, status, want);
    }
}

#[test]
fn check_pid_defaults_to_container_and_refuses_other_values() {
    let dir = TempDir::new("pid-check");
    let pod = busybox_pod(&dir.0, "", &[("a", "", "true")]);
    let out = check(&pod);
    assert_eq!(out.status, 0, "{out:?}");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["pid"], "container");
    let pod = busybox_pod(&dir.0, r#""pid": "pod""#, &[("a", "", "true")]);
    let v: serde_json::Value = serde_json::from_str(&check(&pod).stdout).unwrap();
    assert_eq!(v["pid"], "pod");
    for (bad, why) in [
        (r#""host""#, r#"expected "container" or "pod", got "host""#),
        ("1", "expected a string, got a number"),
    ] {
        let pod = busybox_pod(&dir.0, &format!(r#""pid": {bad}"#), &[("a", "", "true")]);
        let out = check(&pod);
        let want = format!("sandboxd: {}/pod.json: pid: {why}\n", dir.0.display());
        assert_eq!((out.status, out.stderr.as_str()), (125, want.as_str()));
        let out = run("ptrace", &pod);
        assert_eq!((out.status, out.stderr.as_str()), (125, want.as_str()));
    }
}
