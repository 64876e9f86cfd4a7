//! Security properties of a running pod: every role and every ptrace stub
//! runs under a seccomp filter; the release binary is static.

mod common;

use std::process::{Command, Stdio};
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

#[test]
fn running_pod_roles_and_stubs_are_under_seccomp() {
    let dir = TempDir::new("seccomp");
    let pod = dir.0.join("pod.json");
    let json = format!(
        "{{\"containers\": {{\"app\": {{\"image\": {:?}, \"command\": [\"/bin/sleep\", \"3\"]}}}}}}",
        image("busybox")
    );
    std::fs::write(&pod, json).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sandboxd"))
        .args(["run", "--platform", "ptrace", pod.to_str().unwrap()])
        .env("SANDBOXD_STORE", store())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut seen = vec![];
    while start.elapsed() < Duration::from_secs(20) {
        seen = descendants(child.id() as i32);
        let roles = seen
            .iter()
            .filter(|(_, n)| n.contains("sandboxd-gofer") || n.contains("sandboxd-sandbox"))
            .count();
        // The stub of the sleeping guest is a child of the sandbox.
        if roles == 2 && seen.len() >= 3 {
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
