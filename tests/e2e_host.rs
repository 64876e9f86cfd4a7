//! End-to-end behaviour toward the host: Ctrl-C, hosts without KVM, and
//! hostile guests that must not take the host down or leave anything behind.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{image, leftovers, store, TempDir, TestPod};

fn pod_file(dir: &TempDir, command: &[&str]) -> std::path::PathBuf {
    let pod = dir.0.join("pod.json");
    let cmd: Vec<String> = command
        .iter()
        .map(|c| serde_json::to_string(c).unwrap())
        .collect();
    let json = format!(
        "{{\"containers\": {{\"app\": {{\"image\": {:?}, \"command\": [{}]}}}}}}",
        image("busybox"),
        cmd.join(", ")
    );
    std::fs::write(&pod, json).unwrap();
    pod
}

#[test]
fn ctrl_c_stops_the_guest_returns_130_and_leaves_nothing() {
    let dir = TempDir::new("ctrl-c");
    // Unique to this test run, so runs in other checkouts do not count.
    let tag = format!("ctrl-c-{}", std::process::id());
    let pod = pod_file(
        &dir,
        &["/bin/sh", "-c", "echo started; sleep 30; echo not-reached"],
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_sandboxd"))
        .args(["run", pod.to_str().unwrap()])
        .env("SANDBOXD_STORE", store())
        .env("SANDBOXD_TEST_TAG", &tag)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut first = [0u8; 8];
    std::io::Read::read_exact(&mut out, &mut first).unwrap();
    assert_eq!(&first, b"started\n");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(leftovers(&tag), 0, "sandboxd processes outlived the run");
}

#[test]
fn auto_without_dev_kvm_runs_on_ptrace() {
    let dir = TempDir::new("no-kvm");
    let pod = pod_file(&dir, &["/bin/echo", "ran without kvm"]);
    // A mount namespace where /dev/kvm is /dev/null, as on a host without KVM.
    let script = format!(
        "mount --bind /dev/null /dev/kvm && SANDBOXD_STORE={} {} run {} && {} platforms",
        store().display(),
        env!("CARGO_BIN_EXE_sandboxd"),
        pod.display(),
        env!("CARGO_BIN_EXE_sandboxd")
    );
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("ran without kvm\n"), "{stdout}");
    assert!(
        stdout.contains("kvm      unavailable: /dev/kvm is not a usable KVM device"),
        "{stdout}"
    );
    assert!(stdout.contains("auto     -> ptrace"), "{stdout}");
}

#[test]
fn fork_bomb_is_contained_in_the_sandbox() {
    // The bomb may make forks fail inside the sandbox (EAGAIN at the
    // process limit, or when no vCPU can be had): that is allowed. The
    // pod must end, take its processes with it, and leave the host able
    // to run the next pod.
    let script =
        "b() { b | b & }; b; i=0; while [ $i -lt 200000 ]; do i=$((i + 1)); done; echo survived";
    for p in common::platforms() {
        let out = TestPod::new(&image("busybox"), &["/bin/sh", "-c", script])
            .platform(&p)
            .run();
        assert!(out.status == 0 || out.status == 2, "{p}: {out:?}");
        assert!(!out.stderr.contains("panicked"), "{p}: {}", out.stderr);
        let next = TestPod::new(&image("busybox"), &["/bin/echo", "next pod"])
            .platform(&p)
            .run();
        assert_eq!(
            (next.status, next.stdout.as_str()),
            (0, "next pod\n"),
            "{p}: {next:?}"
        );
    }
}
