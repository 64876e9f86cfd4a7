//! Security properties of a running pod: every role and every ptrace stub
//! runs under a seccomp filter; the release binary is static.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{image, repo, store, TempDir};

/// (pid, ppid, comm-ish argv[0]) of every process.
fn processes() -> Vec<(i32, i32, String)> {
    let mut out = vec![];
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let after = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
        let ppid = after
            .split(' ')
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let argv0 = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let argv0 = String::from_utf8_lossy(argv0.split(|&b| b == 0).next().unwrap_or_default())
            .into_owned();
        out.push((pid, ppid, argv0));
    }
    out
}

fn descendants(root: i32) -> Vec<(i32, String)> {
    let all = processes();
    let mut found = vec![];
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (pid, ppid, name) in &all {
            if *ppid == p {
                found.push((*pid, name.clone()));
                frontier.push(*pid);
            }
        }
    }
    found
}

fn seccomp_mode(pid: i32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("Seccomp:"))
        .unwrap_or("")
        .trim_start_matches("Seccomp:")
        .trim()
        .to_string()
}

/// Starts `sandboxd run --platform ptrace` on the pod `json` (written
/// into `dir`), stdout to /dev/null, without waiting for it.
fn spawn_on_ptrace(dir: &TempDir, json: &str) -> Child {
    let pod = dir.0.join("pod.json");
    std::fs::write(&pod, json).unwrap();
    Command::new(env!("CARGO_BIN_EXE_sandboxd"))
        .args(["run", "--platform", "ptrace", pod.to_str().unwrap()])
        .env("SANDBOXD_STORE", store())
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn running_pod_roles_and_stubs_are_under_seccomp() {
    let dir = TempDir::new("seccomp");
    let json = format!(
        "{{\"containers\": {{\"app\": {{\"image\": {:?}, \"command\": [\"/bin/sleep\", \"3\"]}}}}}}",
        image("busybox")
    );
    let mut child = spawn_on_ptrace(&dir, &json);
    let start = Instant::now();
    let mut seen = vec![];
    while start.elapsed() < Duration::from_secs(20) {
        seen = descendants(child.id() as i32);
        let roles = seen
            .iter()
            .filter(|(_, n)| n.contains("sandboxd-gofer") || n.contains("sandboxd-sandbox"))
            .count();
        // The stub of the sleeping guest is a child of the sandbox. Each
        // process installs its filter as the last step of its set-up:
        // wait for that too (one that never does fails below).
        let settled = seen.iter().all(|(pid, _)| seccomp_mode(*pid) == "2");
        if roles == 2 && seen.len() >= 3 && settled {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        seen.len() >= 3,
        "expected gofer, sandbox and a stub, saw {seen:?}"
    );
    for (pid, name) in &seen {
        assert_eq!(
            seccomp_mode(*pid),
            "2",
            "{name} (pid {pid}) is not under a seccomp filter"
        );
    }
    let status = child.wait().unwrap();
    assert!(status.success());
}

#[test]
fn release_binary_is_static() {
    let st = Command::new("cargo")
        .args(["build", "--release", "--quiet"])
        .current_dir(repo())
        .status()
        .unwrap();
    assert!(st.success());
    let bin = repo().join("target/x86_64-unknown-linux-gnu/release/sandboxd");
    let out = Command::new(repo().join("packaging/check-static.sh"))
        .arg(&bin)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Mount points (field 5) and their options (field 6) in a mountinfo.
fn mount_points(mountinfo: &str) -> Vec<(String, String)> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            Some((f.get(4)?.to_string(), f.get(5)?.to_string()))
        })
        .collect()
}

#[test]
fn running_pod_gofer_sees_only_its_image_and_bind_mounts() {
    let dir = TempDir::new("gofer-roots");
    std::fs::create_dir(dir.0.join("data")).unwrap();
    std::fs::write(dir.0.join("data/hello"), "hi").unwrap();
    std::fs::create_dir(dir.0.join("out")).unwrap();
    let json = format!(
        r#"{{"containers": {{"app": {{"image": {:?}, "command": ["/bin/sleep", "3"],
            "mounts": [{{"source": "./data", "target": "/data", "readonly": true}},
                       {{"type": "tmpfs", "target": "/scratch"}},
                       {{"source": "out", "target": "/out"}}]}}}}}}"#,
        image("busybox")
    );
    let mut child = spawn_on_ptrace(&dir, &json);
    let start = Instant::now();
    let mut gofer = None;
    while gofer.is_none() && start.elapsed() < Duration::from_secs(20) {
        gofer = descendants(child.id() as i32)
            .into_iter()
            // Set up (pivoted, mounts read-only) once it is under its
            // seccomp filter, which it installs last.
            .find(|(pid, n)| n.contains("sandboxd-gofer") && seccomp_mode(*pid) == "2")
            .map(|(pid, _)| pid);
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = gofer.expect("no gofer process appeared");
    let root = format!("/proc/{pid}/root");
    let mut names: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let hello = std::fs::read_to_string(format!("{root}/bind0/hello"));
    let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(names, ["bind0", "bind1", "image"]);
    assert_eq!(hello.unwrap(), "hi");
    let points = mount_points(&mountinfo);
    let opts = |at: &str| {
        points
            .iter()
            .find(|(p, _)| p == at)
            .map(|(_, o)| o.clone())
            .unwrap_or_else(|| panic!("no mount at {at}: {mountinfo}"))
    };
    assert_eq!(points.len(), 4, "{mountinfo}");
    assert!(opts("/").starts_with("ro,"), "{mountinfo}");
    assert!(opts("/image").starts_with("ro,"), "{mountinfo}");
    assert!(opts("/bind0").starts_with("ro,"), "{mountinfo}");
    assert!(opts("/bind1").starts_with("rw,"), "{mountinfo}");
}
