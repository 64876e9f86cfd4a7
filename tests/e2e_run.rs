//! End-to-end: real pods from real images, on every platform.

mod common;

use common::{
    assert_runs_like, each_platform, image, matches_native, native, run_pod_json, sandboxd, unpack,
    TempDir, TestPod,
};

#[test]
fn run_static_hello_prints_and_exits_zero() {
    each_platform(|p| {
        let out = TestPod::new(&image("testprogs"), &["/bin/hello"])
            .platform(p)
            .run();
        assert_eq!(out.status, 0, "{out:?}");
        assert_eq!(out.stdout, "hello from a static program\n");
    });
}

#[test]
fn run_static_pie_hello_prints() {
    each_platform(|p| {
        let out = TestPod::new(&image("testprogs"), &["/bin/hello-pie"])
            .platform(p)
            .run();
        assert_eq!(
            (out.status, out.stdout.as_str()),
            (0, "hello from a static program\n"),
            "{out:?}"
        );
    });
}

#[test]
fn run_exit_code_is_the_containers() {
    each_platform(|p| {
        let out = TestPod::new(&image("testprogs"), &["/bin/exit_code", "7"])
            .platform(p)
            .run();
        assert_eq!(out.status, 7, "{out:?}");
    });
}

#[test]
fn run_segfault_is_status_139() {
    each_platform(|p| {
        let out = TestPod::new(&image("testprogs"), &["/bin/segv"])
            .platform(p)
            .run();
        assert_eq!(out.status, 139, "{out:?}");
    });
}

#[test]
fn run_process_over_the_memory_limit_is_killed_and_the_pod_goes_on() {
    each_platform(|p| {
        let out = TestPod::new(
            &image("testprogs"),
            &["/bin/sh", "-c", "/bin/memhog; echo status $?; echo after"],
        )
        .platform(p)
        .run();
        assert_eq!(out.status, 0, "{out:?}");
        assert_eq!(out.stdout, "status 137\nafter\n", "{out:?}");
        assert!(out.stderr.contains("out of guest memory"), "{out:?}");
    });
}

#[test]
fn run_command_gets_default_path_and_hostname_unless_the_pod_sets_them() {
    let out = TestPod::new(
        &image("busybox"),
        &["/bin/sh", "-c", "echo $PATH $HOSTNAME"],
    )
    .run();
    assert_eq!(
        out.stdout, "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin pod\n",
        "{out:?}"
    );
    let out = TestPod::new(&image("busybox"), &["/bin/sh", "-c", "echo $PATH"])
        .env("PATH", "/bin")
        .run();
    assert_eq!(out.stdout, "/bin\n", "{out:?}");
}

#[test]
fn run_debian_toolchain_builds_and_runs_in_tmp() {
    let script = r#"
set -e
cd /tmp
printf '#include <stdio.h>\nint main(void) { puts("compiled and ran"); return 0; }\n' >h.c
printf 'h2: h.c\n\tgcc -O2 -o h2 h.c\n' >Makefile
make -s && ./h2
perl -e 'print "perl ", 6 * 7, "\n"'
echo 'create table t(x); insert into t values (1), (2); select sum(x) from t;' | sqlite3
git init -q r && cd r && echo hi >f && git add f
git -c user.name=a -c user.email=a@b commit -qm one && git log --format=%s
"#;
    each_platform(|p| {
        let out = TestPod::new(&image("debian"), &["/bin/bash", "-c", script])
            .platform(p)
            .run();
        assert_eq!(
            (out.status, out.stdout.as_str()),
            (0, "compiled and ran\nperl 42\n3\none\n"),
            "{p}: {}",
            out.stderr
        );
    });
}

#[test]
fn run_resources_set_the_guest_memory_and_cpus() {
    each_platform(|p| {
        let out = TestPod::new(
            &image("testprogs"),
            &[
                "/bin/sh",
                "-c",
                "grep -c ^processor /proc/cpuinfo; grep MemTotal /proc/meminfo; /bin/memhog; echo status $?",
            ],
        )
        .resources(r#"{"memory": "64MiB", "cpus": 3}"#)
        .platform(p)
        .run();
        assert_eq!(
            out.stdout, "3\nMemTotal:          65536 kB\nstatus 137\n",
            "{p}: {out:?}"
        );
    });
}

#[test]
fn run_two_containers_prefix_their_output_and_the_first_failure_is_the_status() {
    let json = format!(
        r#"{{"containers": {{
            "a": {{"image": {bb:?}, "command": ["/bin/sh", "-c", "echo from a; sleep 0.2"]}},
            "b": {{"image": {tp:?}, "command": ["/bin/sh", "-c", "echo from b; exit 4"], "after": ["a"]}}}}}}"#,
        bb = image("busybox"),
        tp = image("testprogs"),
    );
    let out = run_pod_json(&json);
    assert_eq!(out.status, 4, "{out:?}");
    let mut lines: Vec<&str> = out.stdout.lines().collect();
    lines.sort();
    assert_eq!(lines, ["[a] from a", "[b] from b"], "{out:?}");
}

#[test]
fn run_containers_of_a_pod_share_their_hostname() {
    // b reads the names only once a has renamed the host (a file in a
    // shared volume says so).
    let sync = serde_json::json!([{"volume": "sync", "target": "/sync"}]);
    let json = serde_json::json!({
        "volumes": {"sync": {"type": "tmpfs"}},
        "containers": {
            "a": {"image": image("busybox"), "mounts": sync,
                "command": ["/bin/sh", "-c", "hostname renamed && touch /sync/renamed"]},
            "b": {"image": image("busybox"), "mounts": sync,
                "command": ["/bin/sh", "-c", format!(
                    "{}; hostname; cat /proc/sys/kernel/hostname; uname -n",
                    wait_for("/sync/renamed"))]}
        }
    });
    let out = run_pod_json(&json.to_string());
    assert_eq!(
        (out.status, out.stdout.as_str()),
        (0, "[b] renamed\n[b] renamed\n[b] renamed\n"),
        "{out:?}"
    );
}

#[test]
fn run_containers_of_a_pod_share_system_v_ipc() {
    // The sender sends once the receiver has made the queue (so the
    // message goes into the receiver's queue, where it already waits);
    // without a shared IPC namespace the wait fails in 10 s, and the
    // receiver's timeout ends the pod.
    let tp = image("testprogs");
    let json = serde_json::json!({
        "containers": {
            "recv": {"image": tp, "command": ["/bin/timeout", "30", "/bin/sysvipc", "recv", "4242"]},
            "send": {"image": tp,
                "command": ["/bin/sh", "-c", "sysvipc wait 4242 && sysvipc send 4242 across"]}
        }
    });
    let out = run_pod_json(&json.to_string());
    assert_eq!(
        (out.status, out.stdout.as_str()),
        (0, "[recv] got across\n"),
        "{out:?}"
    );
}

/// A shell loop that waits until `path` exists (see `common::sh_until`).
fn wait_for(path: &str) -> String {
    common::sh_until(&format!("[ -e {path} ]"))
}

/// The lines of a multi-container run's stdout that container `name`
/// printed, without the prefix.
fn lines_of<'a>(out: &'a common::Out, name: &str) -> Vec<&'a str> {
    let prefix = format!("[{name}] ");
    out.stdout
        .lines()
        .filter_map(|l| l.strip_prefix(prefix.as_str()))
        .collect()
}

#[test]
fn run_containers_share_a_memory_volume_charged_to_the_pod_and_nothing_is_left() {
    let dir = TempDir::new("vol");
    let tag = format!("vol-{}", std::process::id());
    let state = dir.0.join("state");
    // 8 MiB written into the volume are guest memory: MemFree (the
    // pod's, so give or take what the reader's loop holds meanwhile: up
    // to 2 MiB seen with the host loaded) drops by that much.
    let writer = "free() { awk '/^MemFree:/ {print $2}' /proc/meminfo; }; before=$(free); \
         dd if=/dev/zero of=/work/big bs=64k count=128 2>/dev/null; after=$(free); \
         echo charged $((before - after)) kB; echo payload >/work/f; mv /work/f /work/ready";
    let reader = format!(
        "{}; cat /in/ready; wc -c </in/big; echo x >/in/y || echo refused",
        wait_for("/in/ready")
    );
    let json = serde_json::json!({
        "name": "vol",
        "volumes": {"work": {"type": "tmpfs"}},
        "containers": {
            "writer": {"image": image("busybox"), "mounts": [{"volume": "work", "target": "/work"}],
                "command": ["/bin/sh", "-c", writer]},
            "reader": {"image": image("testprogs"),
                "mounts": [{"volume": "work", "target": "/in", "readonly": true}],
                "command": ["/bin/sh", "-c", reader]}
        }
    });
    let pod = dir.0.join("pod.json");
    std::fs::write(&pod, json.to_string()).unwrap();
    let env = [
        ("SANDBOXD_STATE_ROOT", state.as_os_str()),
        ("SANDBOXD_TEST_TAG", tag.as_ref()),
    ];
    let out = common::sandboxd_with(&["run".into(), pod.to_str().unwrap().into()], &env);
    assert_eq!(out.status, 0, "{out:?}");
    let charged: Vec<u64> = lines_of(&out, "writer")
        .iter()
        .filter_map(|l| {
            l.strip_prefix("charged ")?
                .strip_suffix(" kB")?
                .parse()
                .ok()
        })
        .collect();
    assert!(
        matches!(charged[..], [kb] if (8192 - 2048..8192 + 2048).contains(&kb)),
        "{out:?}"
    );
    // A container's stderr goes through the same prefixing as its stdout.
    assert_eq!(
        lines_of(&out, "reader"),
        [
            "payload",
            "8388608",
            "/bin/sh: can't create /in/y: Read-only file system",
            "refused"
        ],
        "{out:?}"
    );
    // Nothing of the pod outlives it: no process, no state entry.
    let start = std::time::Instant::now();
    while common::leftovers(&tag) > 0 && start.elapsed().as_secs() < 5 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(common::leftovers(&tag), 0, "processes outlived the pod");
    let entries: Vec<_> = std::fs::read_dir(&state)
        .expect("the pod's state root")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(entries.is_empty(), "state left: {entries:?}");
}

#[test]
fn run_busybox_sh_echo() {
    each_platform(|p| {
        let out = TestPod::new(&image("busybox"), &["/bin/sh", "-c", "echo hi"])
            .platform(p)
            .run();
        assert_eq!((out.status, out.stdout.as_str()), (0, "hi\n"), "{out:?}");
    });
}

#[test]
fn run_env_workdir_user_reach_the_program() {
    each_platform(|p| {
        let out = TestPod::new(&image("testprogs"), &["/bin/args_env", "NAME", "MISSING"])
            .env("NAME", "value with spaces")
            .workdir("/data")
            .user("1000:1000")
            .platform(p)
            .run();
        assert_eq!(out.status, 0, "{out:?}");
        assert!(
            out.stdout.contains("argv[1]=NAME env=value with spaces\n"),
            "{}",
            out.stdout
        );
        assert!(
            out.stdout.contains("argv[2]=MISSING env=(unset)\n"),
            "{}",
            out.stdout
        );
        assert!(
            out.stdout
                .contains("uid=1000 gid=1000 euid=1000 egid=1000\n"),
            "{}",
            out.stdout
        );
        assert!(out.stdout.contains("cwd=/data\n"), "{}", out.stdout);
        assert!(
            out.stdout.contains("pagesz=4096 random=yes\n"),
            "{}",
            out.stdout
        );
    });
}

#[test]
fn run_testprogs_match_their_native_runs() {
    let img = image("testprogs");
    for prog in [
        "fileio",
        "mmap",
        "timeprog",
        "random",
        "fork_wait",
        "signals",
        "pollprog",
        "timers",
        "sigwait",
        "creds",
        "mremap",
        "stopcont",
        "threads",
        "siginfo",
        "posixtimers",
        "prctlcaps",
        "avxsig",
        "vforkshare",
        "shm",
        "epoll",
        "events",
        "memfd",
        "locks",
        "sockets",
        "vecio",
        "sysvipc",
        "growsdown",
        "killperm",
        "schedpolicy",
    ] {
        matches_native(&img, prog, &[]);
    }
}

#[test]
fn run_missing_command_is_127_and_named() {
    each_platform(|p| {
        let out = TestPod::new(&image("busybox"), &["no-such-command"])
            .platform(p)
            .run();
        assert_eq!(out.status, 127, "{out:?}");
        assert!(out.stderr.contains("no-such-command"), "{}", out.stderr);
    });
}

#[test]
fn run_directory_as_command_is_126() {
    each_platform(|p| {
        let out = TestPod::new(&image("busybox"), &["/data"])
            .platform(p)
            .run();
        assert_eq!(out.status, 126, "{out:?}");
    });
}

#[test]
fn run_unimplemented_syscall_is_enosys_and_logged_once() {
    each_platform(|p| {
        let out = TestPod::new(&image("testprogs"), &["/bin/sh", "-c", "enosys; enosys"])
            .platform(p)
            .run();
        assert_eq!(
            out.stdout, "r=-1 errno=ENOSYS\nr=-1 errno=ENOSYS\n",
            "{out:?}"
        );
        assert_eq!(
            out.stderr.matches("io_uring_setup").count(),
            1,
            "{}",
            out.stderr
        );
    });
}

#[test]
fn run_strace_prints_syscalls_with_results() {
    each_platform(|p| {
        let out = TestPod::new(&image("testprogs"), &["/bin/hello"])
            .platform(p)
            .arg("--strace")
            .run();
        assert_eq!(out.status, 0);
        assert!(
            out.stderr
                .contains("write(1, \"hello from a static program\\n\", 28) = 28"),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains("exit_group(0) = ?"), "{}", out.stderr);
    });
}

#[test]
fn run_shell_pipelines_subshells_and_traps() {
    let script =
        "echo $(echo nested); sort /data/letters | tr a-z A-Z | head -2; (exit 4); echo sub=$?; \
                  seq 1 5000 | wc -l; yes | head -1; trap 'echo trapped' USR1; kill -USR1 $$; \
                  sleep 5 & kill $!; wait $!; echo killed=$?; echo x > /dev/null && echo done";
    each_platform(|p| {
        let out = TestPod::new(&image("busybox"), &["/bin/sh", "-c", script])
            .platform(p)
            .run();
        assert_eq!(out.status, 0, "{out:?}");
        assert_eq!(
            out.stdout, "nested\nA\nB\nsub=4\n5000\ny\ntrapped\nkilled=143\ndone\n",
            "{}",
            out.stderr
        );
    });
}

#[test]
fn run_guest_cannot_read_host_files_outside_its_image() {
    let dir = TempDir::new("host-secret");
    let secret = dir.0.join("host-secret.txt");
    std::fs::write(&secret, "the host's secret\n").unwrap();
    each_platform(|p| {
        let path = secret.to_str().unwrap();
        let out = TestPod::new(
            &image("busybox"),
            &["/bin/cat", path, "/proc/1/environ", "/etc/hostname"],
        )
        .platform(p)
        .run();
        assert_ne!(out.status, 0);
        assert!(!out.stdout.contains("secret"), "{}", out.stdout);
    });
}

#[test]
fn check_prints_evaluated_pod_and_rejects_unknown_fields() {
    let dir = TempDir::new("check");
    let good = dir.0.join("good.json");
    let img = image("busybox");
    std::fs::write(
        &good,
        format!(
            "{{\"containers\": {{\"app\": {{\"image\": {:?}, \"command\": [\"true\"]}}}}}}",
            img
        ),
    )
    .unwrap();
    let out = sandboxd(&["check".into(), good.to_str().unwrap().into()]);
    assert_eq!(out.status, 0, "{out:?}");
    assert!(out.stdout.contains("\"workdir\": \"/\""), "{}", out.stdout);
    let bad = dir.0.join("bad.json");
    std::fs::write(
        &bad,
        "{\"containers\": {\"app\": {\"image\": \"x\", \"comand\": [\"true\"]}}}",
    )
    .unwrap();
    let out = sandboxd(&["check".into(), bad.to_str().unwrap().into()]);
    assert_eq!(out.status, 125);
    assert!(
        out.stderr.contains("containers.app.comand: unknown field"),
        "{}",
        out.stderr
    );
}

#[test]
fn run_pinned_wrong_sha256_fails_before_running() {
    let img = image("busybox");
    let zeros = "0".repeat(64);
    let json = format!(
        "{{\"images\": {{\"bb\": {{\"path\": {img:?}, \"sha256\": \"{zeros}\"}}}}, \
         \"containers\": {{\"app\": {{\"image\": \"bb\", \"command\": [\"/bin/echo\", \"ran\"]}}}}}}"
    );
    let out = run_pod_json(&json);
    assert_eq!(out.status, 125, "{out:?}");
    assert!(out.stderr.contains("sha256"), "{}", out.stderr);
    assert!(!out.stdout.contains("ran"));
}

#[test]
fn run_image_with_escaping_entry_is_refused() {
    let dir = TempDir::new("evil");
    let tar = dir.0.join("evil.tar");
    let script = format!(
        "import tarfile, io\nt = tarfile.open({:?}, 'w')\ni = tarfile.TarInfo('../evil')\ni.size = 1\nt.addfile(i, io.BytesIO(b'x'))\nt.close()\n",
        tar.to_str().unwrap()
    );
    let st = std::process::Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .status()
        .unwrap();
    assert!(st.success());
    let out = TestPod::new(&tar, &["/bin/true"]).run();
    assert_eq!(out.status, 125, "{out:?}");
    assert!(out.stderr.contains("escapes"), "{}", out.stderr);
    // Nothing was written beside the store or the bundle.
    assert!(!dir.0.parent().unwrap().join("evil").exists());
    assert!(!common::store().join("evil").exists());
}

#[test]
fn run_mini_init_is_pid_1_and_passes_the_status_through() {
    each_platform(|p| {
        let script = "echo pid=$$ ppid=$PPID; exit 9";
        let out = TestPod::new(&image("busybox"), &["/bin/sh", "-c", script])
            .platform(p)
            .run();
        assert_eq!(
            (out.status, out.stdout.as_str()),
            (9, "pid=2 ppid=1\n"),
            "{out:?}"
        );
        let out = TestPod::new(&image("busybox"), &["/bin/sh", "-c", script])
            .init(false)
            .platform(p)
            .run();
        assert_eq!(
            (out.status, out.stdout.as_str()),
            (9, "pid=1 ppid=0\n"),
            "{out:?}"
        );
    });
}

#[test]
fn run_mini_init_reports_a_command_killed_by_a_signal() {
    each_platform(|p| {
        let out = TestPod::new(&image("busybox"), &["/bin/sh", "-c", "kill -TERM $$"])
            .platform(p)
            .run();
        assert_eq!(out.status, 143, "{out:?}");
    });
}

#[test]
fn run_dynamic_debian_programs_match_native() {
    // Dynamically linked bash, coreutils, sed, grep and gawk via ld.so.
    let script = "cd /data && ls -l fruit | cut -d' ' -f1,5; sort fruit | uniq -c | sort -rn | head -1; \
                  sed s/apple/APPLE/ fruit | grep -c APPLE; awk '{n += length($0)} END {print n}' fruit; \
                  for w in $(cat fruit); do printf '%s.' \"$w\"; done; echo; \
                  x=$(date +%Y); test \"$x\" -gt 2000 && echo year-ok; echo $((6 * 7)); \
                  mkdir /data 2>&1 | wc -l; mkdir /tmp/new && echo made; exit 3";
    let img = image("debian");
    let root = unpack(&img);
    let native = std::process::Command::new("bash")
        .arg("-c")
        .arg(
            script
                .replace("/data", &format!("{}/data", root.0.display()))
                .replace("/tmp/new", &format!("{}/tmp/new", root.0.display())),
        )
        .output()
        .unwrap();
    let want = String::from_utf8_lossy(&native.stdout).into_owned();
    assert_eq!(native.status.code(), Some(3));
    each_platform(|p| {
        let out = TestPod::new(&img, &["/bin/bash", "-c", script])
            .platform(p)
            .run();
        assert_eq!((out.status, &out.stdout), (3, &want), "{}", out.stderr);
    });
}

#[test]
fn run_busybox_echo_cat_ls_and_shell_status() {
    each_platform(|p| {
        let bb = image("busybox");
        let out = TestPod::new(&bb, &["/bin/cat", "/data/letters"])
            .platform(p)
            .run();
        assert_eq!(
            (out.status, out.stdout.as_str()),
            (0, "b\na\nc\n"),
            "{out:?}"
        );
        let out = TestPod::new(&bb, &["/bin/ls", "/data", "/etc"])
            .platform(p)
            .run();
        assert_eq!(
            out.stdout, "/data:\nletters\n\n/etc:\ngroup\nhostname\nhosts\npasswd\nresolv.conf\n",
            "{out:?}"
        );
        let out = TestPod::new(&bb, &["/bin/sh", "-c", "echo a; exit 3"])
            .platform(p)
            .run();
        assert_eq!((out.status, out.stdout.as_str()), (3, "a\n"), "{out:?}");
    });
}

#[test]
fn run_tmp_is_a_writable_memory_file_system_and_image_dirs_keep_their_permissions() {
    let script = "cd /tmp && echo hello > a && echo more >> a && cat a && mkdir -p d/e && mv a d/e/b && \
                  ls -R /tmp && ln -s d/e/b l && cat l && rm d/e/b l && rmdir d/e d && ls -A /tmp | wc -l && \
                  (echo x > /data/new) 2>/dev/null || echo image-dir-is-root-only";
    each_platform(|p| {
        let out = TestPod::new(&image("busybox"), &["/bin/sh", "-c", script])
            .user("1000:1000")
            .platform(p)
            .run();
        assert_eq!(out.status, 0, "{out:?}");
        assert_eq!(
            out.stdout,
            "hello\nmore\n/tmp:\nd\n\n/tmp/d:\ne\n\n/tmp/d/e:\nb\nhello\nmore\n0\nimage-dir-is-root-only\n",
            "{}",
            out.stderr
        );
    });
}

#[test]
fn run_python3_script_matches_native() {
    let script = r#"
import json, os, hashlib, subprocess
os.makedirs('/tmp/work/sub', exist_ok=True)
with open('/tmp/work/data.json', 'w') as f:
    json.dump({'fruit': open('/data/fruit').read().split()}, f)
os.rename('/tmp/work/data.json', '/tmp/work/sub/moved.json')
data = json.load(open('/tmp/work/sub/moved.json'))
print(sorted(set(data['fruit'])))
print(hashlib.sha256(b'sandboxd').hexdigest()[:16])
print(sorted(os.listdir('/tmp/work')), os.path.getsize('/tmp/work/sub/moved.json'))
out = subprocess.run(['sort', '/data/fruit'], capture_output=True, text=True).stdout
print(out.split())
print(sum(i * i for i in range(1000)))
"#;
    let img = image("debian");
    let root = unpack(&img);
    let native_script = script
        .replace("/data/", &format!("{}/data/", root.0.display()))
        .replace("/tmp/work", &format!("{}/tmp/work", root.0.display()));
    let native = std::process::Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(&native_script)
        .output()
        .unwrap();
    assert!(
        native.status.success(),
        "{}",
        String::from_utf8_lossy(&native.stderr)
    );
    let want = String::from_utf8_lossy(&native.stdout).into_owned();
    each_platform(|p| {
        let out = TestPod::new(&img, &["/usr/bin/python3", "-c", script])
            .platform(p)
            .run();
        assert_eq!((out.status, &out.stdout), (0, &want), "{}", out.stderr);
    });
}

#[test]
fn image_import_ls_rm_manage_the_store() {
    let dir = TempDir::new("image-cli");
    let store = dir.0.join("store").to_str().unwrap().to_string();
    let bb = image("busybox").to_str().unwrap().to_string();
    let args = |rest: &[&str]| {
        let mut v = vec!["image".to_string(), "--store".into(), store.clone()];
        v.extend(rest.iter().map(|s| s.to_string()));
        v
    };
    let out = sandboxd(&args(&["import", &bb]));
    assert_eq!(out.status, 0, "{out:?}");
    let digest = out.stdout.trim().to_string();
    assert_eq!(digest.len(), 64, "{}", out.stdout);
    let out = sandboxd(&args(&["ls"]));
    assert!(
        out.stdout.starts_with(&digest) && out.stdout.contains(&bb),
        "{}",
        out.stdout
    );
    let out = sandboxd(&args(&["import", "--sha256", &"0".repeat(64), &bb]));
    assert_eq!(out.status, 125);
    assert!(out.stderr.contains("sha256 mismatch"), "{}", out.stderr);
    assert_eq!(sandboxd(&args(&["rm", &digest])).status, 0);
    assert_eq!(sandboxd(&args(&["ls"])).stdout, "");
    assert_eq!(sandboxd(&args(&["rm", "../etc"])).status, 125);
}

#[test]
fn run_proc_self_and_system_files() {
    let script = "readlink /proc/self/exe; cat /proc/self/cmdline | tr '\\0' ' '; echo; cd /tmp && readlink /proc/self/cwd; \
                  grep -E '^(Pid|PPid|Uid):' /proc/self/status | wc -l; echo x | readlink /proc/self/fd/0 | cut -c1-5; \
                  test $(grep -c ^processor /proc/cpuinfo) = $(nproc) && echo cpus-ok; grep -q MemTotal /proc/meminfo && echo mem-ok";
    each_platform(|p| {
        let out = TestPod::new(&image("busybox"), &["/bin/sh", "-c", script])
            .platform(p)
            .run();
        assert_eq!(out.status, 0, "{out:?}");
        assert_eq!(
            out.stdout, "/bin/busybox\ncat /proc/self/cmdline \n/tmp\n3\npipe:\ncpus-ok\nmem-ok\n",
            "{}",
            out.stderr
        );
    });
}

#[test]
fn run_vdso_clocks_agree_with_the_syscalls_and_native() {
    let img = image("testprogs");
    let want = native(&img, "vdso", &[]);
    assert_eq!(want.status, 0, "native: {want:?}");
    assert!(!want.stdout.contains("=0"), "native: {}", want.stdout);
    assert_runs_like(&img, "vdso", &[], &want);
}

#[test]
fn run_vdso_clock_calls_make_no_syscalls() {
    // Through a shell, so the program is exec'd by a forked guest process.
    each_platform(|p| {
        let out = TestPod::new(
            &image("testprogs"),
            &["/bin/sh", "-c", "/bin/vdso loop 1000"],
        )
        .platform(p)
        .arg("--strace")
        .run();
        assert_eq!(
            (out.status, out.stdout.as_str()),
            (0, "looped\n"),
            "{out:?}"
        );
        assert!(out.stderr.contains("execve("), "{}", out.stderr);
        for call in ["] clock_gettime(", "] gettimeofday(", "] time("] {
            assert!(!out.stderr.contains(call), "{call} in:\n{}", out.stderr);
        }
    });
}

#[test]
fn run_proc_self_maps_shows_vvar_vdso_and_stack() {
    each_platform(|p| {
        let out = TestPod::new(&image("busybox"), &["/bin/sh", "-c", "cat /proc/self/maps"])
            .platform(p)
            .run();
        assert_eq!(out.status, 0, "{out:?}");
        let line = |name: &str| {
            out.stdout
                .lines()
                .find(|l| l.ends_with(name))
                .unwrap_or_else(|| panic!("no {name} in:\n{}", out.stdout))
                .to_string()
        };
        assert!(line("[vvar]").contains(" r--p "), "{}", out.stdout);
        assert!(line("[vdso]").contains(" r-xp "), "{}", out.stdout);
        assert!(line("[stack]").contains(" rw-p "), "{}", out.stdout);
        // The vvar page lies just below the image.
        let vvar_end = line("[vvar]").split(['-', ' ']).nth(1).unwrap().to_string();
        assert!(line("[vdso]").starts_with(&vvar_end), "{}", out.stdout);
    });
}

/// Real programs on unix sockets: asyncio's unix server and client (and
/// its socketpair self-pipe), a socketpair stream, and multiprocessing's
/// Manager (a server process reached over a named socket) and Pool.
#[test]
fn run_python_unix_sockets_match_native() {
    let script = r#"
import asyncio, socket, multiprocessing as mp
async def main():
    async def handle(r, w):
        w.write((await r.readline()).upper()); await w.drain(); w.close()
    srv = await asyncio.start_unix_server(handle, path='/tmp/a.sock')
    r, w = await asyncio.open_unix_connection('/tmp/a.sock')
    w.write(b'hello asyncio\n'); await w.drain()
    print((await r.readline()).decode().strip())
    w.close(); srv.close(); await srv.wait_closed()
asyncio.run(main())
a, b = socket.socketpair()
a.sendall(b'x' * 100000); a.close()
n = 0
while d := b.recv(65536):
    n += len(d)
print('socketpair bytes', n)
def sq(x): return x * x
if __name__ == '__main__':
    with mp.Manager() as m:
        d = m.dict(); d['k'] = 5; print('manager', d['k'])
    with mp.Pool(2) as p: print('pool', sum(p.map(sq, range(10))))
"#;
    each_platform(|p| {
        let out = TestPod::new(&image("debian"), &["/usr/bin/python3", "-c", script])
            .platform(p)
            .run();
        assert_eq!(
            (out.status, out.stdout.as_str()),
            (
                0,
                "HELLO ASYNCIO\nsocketpair bytes 100000\nmanager 5\npool 285\n"
            ),
            "{p}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("unimplemented"), "{p}: {}", out.stderr);
    });
}

/// A read or write of a regular file larger than the sentry's copy
/// buffer is not cut short (Linux does it whole); a pipe's is one call.
#[test]
fn run_large_file_reads_and_writes_are_whole() {
    let script = "import os\n\
        fd = os.open('/tmp/big', os.O_CREAT | os.O_RDWR)\n\
        print(os.write(fd, b'x' * (3 << 20) + b'y'))\n\
        print(os.pwrite(fd, b'z' * (5 << 20), 1))\n\
        os.lseek(fd, 0, 0)\n\
        d = os.read(fd, 8 << 20)\n\
        print(len(d), d[:2], d[-1:])\n\
        print(len(os.pread(fd, 6 << 20, 2)))\n";
    each_platform(|p| {
        let out = TestPod::new(&image("debian"), &["/usr/bin/python3", "-c", script])
            .platform(p)
            .run();
        assert_eq!(
            (out.status, out.stdout.as_str()),
            (0, "3145729\n5242880\n5242881 b'xz' b'z'\n5242879\n"),
            "{p}: {}",
            out.stderr
        );
    });
}

#[test]
fn run_one_volume_mounted_twice_is_read_only_only_where_asked() {
    let script = "touch /rw/x && echo rw-ok; touch /ro/y 2>/dev/null || echo ro-refused; \
        ls /ro; mount -o remount,rw /ro 2>/dev/null || echo still-locked; \
        grep -c ' /ro tmpfs ro,' /proc/mounts";
    let json = serde_json::json!({
        "volumes": {"v": {"type": "tmpfs"}},
        "containers": {"c": {"image": image("busybox"),
            "mounts": [{"volume": "v", "target": "/rw"},
                       {"volume": "v", "target": "/ro", "readonly": true}],
            "command": ["/bin/sh", "-c", script]}}
    });
    let out = run_pod_json(&json.to_string());
    assert_eq!(
        (out.status, out.stdout.as_str()),
        (0, "rw-ok\nro-refused\nx\nstill-locked\n1\n"),
        "{out:?}"
    );
}
