//! /proc and /sys end to end: a C program's view of /proc against a native
//! run, busybox's ps, pidof and kill over a container's processes, zombies,
//! another container's processes, and the CPU count programs read.

mod common;

use common::{assert_runs_like, each_platform, image, native, run_pod_json, TestPod};

#[test]
fn proc_self_child_and_system_files_match_native() {
    let img = image("testprogs");
    for args in [&[][..], &["access"][..]] {
        let want = native(&img, "procfs", args);
        assert_eq!(want.status, 0, "native: {}", want.stdout);
        assert_runs_like(&img, "procfs", args, &want);
    }
}

/// The lines of a `ps -o pid,ppid,stat,args` listing as (pid, ppid, stat, args).
fn ps_rows(text: &str) -> Vec<(i32, i32, String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let pid = it.next()?.parse().ok()?;
            let ppid = it.next()?.parse().ok()?;
            let stat = it.next()?.to_string();
            Some((pid, ppid, stat, it.collect::<Vec<_>>().join(" ")))
        })
        .collect()
}

#[test]
fn proc_busybox_ps_pidof_and_kill_see_the_containers_processes() {
    let script = "sleep 30 & sleep 31 & sleep 0.3; ps -o pid,ppid,stat,args; \
                  echo pidof=$(pidof sleep); kill $(pidof sleep); wait; echo left=$(pidof sleep)";
    each_platform(|p| {
        let out = TestPod::new(&image("busybox"), &["/bin/sh", "-c", script])
            .platform(p)
            .run();
        assert_eq!(out.status, 0, "{out:?}");
        let rows = ps_rows(&out.stdout);
        let find = |pid: i32| rows.iter().find(|r| r.0 == pid).cloned();
        assert!(
            find(1).unwrap().3.starts_with("/.sandboxd-init"),
            "{rows:?}"
        );
        assert_eq!(find(2).unwrap().1, 1, "{rows:?}");
        assert_eq!(find(3).unwrap(), (3, 2, "S".into(), "sleep 30".into()));
        assert_eq!(find(4).unwrap(), (4, 2, "S".into(), "sleep 31".into()));
        // ps itself, running.
        assert!(rows.iter().any(|r| r.0 > 4 && r.2 == "R"), "{rows:?}");
        assert!(out.stdout.contains("pidof=4 3\n"), "{}", out.stdout);
        assert!(out.stdout.contains("left=\n"), "{}", out.stdout);
    });
}

#[test]
fn proc_zombie_shows_state_z_until_reaped() {
    // The inner shell forks `true` and becomes `sleep`, which never waits.
    let script = "sh -c 'true & exec sleep 2' & sleep 0.5; ps -o pid,ppid,stat,args; \
                  wait; echo reaped; ps -o pid,ppid,stat,args";
    each_platform(|p| {
        let out = TestPod::new(&image("busybox"), &["/bin/sh", "-c", script])
            .platform(p)
            .run();
        assert_eq!(out.status, 0, "{out:?}");
        let (before, after) = out.stdout.split_once("reaped\n").unwrap();
        let rows = ps_rows(before);
        let sleeper = rows.iter().find(|r| r.3 == "sleep 2").expect("sleep 2");
        let zombie = rows.iter().find(|r| r.2 == "Z").expect("a zombie");
        assert_eq!(zombie.1, sleeper.0, "{rows:?}");
        // Gone once pid 1 reaped it after its parent ended.
        assert!(ps_rows(after).iter().all(|r| r.2 != "Z"), "{after}");
    });
}

#[test]
fn proc_other_containers_processes_are_invisible() {
    let img = image("busybox");
    let lister = "sleep 0.5; for d in /proc/[0-9]*; do tr '\\\\0' ' ' < $d/cmdline; echo; done";
    let json = format!(
        "{{\"name\": \"procns\", \"containers\": {{\
         \"a\": {{\"image\": {img:?}, \"command\": [\"/bin/sh\", \"-c\", \"sleep 2.5 & {lister}; wait\"]}},\
         \"b\": {{\"image\": {img:?}, \"command\": [\"/bin/sh\", \"-c\", \"{lister}\"]}}}}}}"
    );
    let out = run_pod_json(&json);
    assert_eq!(out.status, 0, "{out:?}");
    let lines = |c: &str| -> Vec<String> {
        let prefix = format!("[{c}] ");
        out.stdout
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix).map(str::to_string))
            .collect()
    };
    assert!(lines("a").iter().any(|l| l == "sleep 2.5 "), "{out:?}");
    assert!(
        !lines("b").iter().any(|l| l.contains("sleep 2.5")),
        "{out:?}"
    );
}

#[test]
fn sysfs_and_proc_count_the_cpus_the_pod_gives() {
    let script = "cat /sys/devices/system/cpu/online; ls /sys/devices/system/cpu; nproc; nproc --all; \
                  python3 -c 'import os; print(os.cpu_count())'; grep -c ^processor /proc/cpuinfo; \
                  grep ' /sys ' /proc/mounts; echo 0 > /sys/devices/system/cpu/online || echo refused";
    each_platform(|p| {
        let out = TestPod::new(&image("debian"), &["/bin/sh", "-c", script])
            .resources("{\"cpus\": 3}")
            .platform(p)
            .run();
        assert_eq!(
            out.stdout,
            "0-2\ncpu0\ncpu1\ncpu2\nonline\npossible\npresent\n3\n3\n3\n3\n\
             sysfs /sys sysfs ro,nosuid,nodev,noexec,relatime 0 0\nrefused\n",
            "{}",
            out.stderr
        );
    });
}

/// Debian's procps reads /proc the way Linux lays it out: `ps aux` lists
/// the container's processes and `top -b` prints its summary and table
/// (with the terminal database the image now carries).
#[test]
fn proc_debian_procps_ps_and_top_work() {
    each_platform(|p| {
        let out = TestPod::new(
            &image("debian"),
            &["/bin/bash", "-c", "sleep 5 & ps aux; top -b -n 1; kill %1"],
        )
        .platform(p)
        .run();
        assert_eq!(out.status, 0, "{p}: {}", out.stderr);
        let ps_sleep = out
            .stdout
            .lines()
            .any(|l| l.starts_with("root") && l.ends_with("sleep 5"));
        assert!(ps_sleep, "{p}: {}", out.stdout);
        assert!(out.stdout.contains("\nTasks:"), "{p}: {}", out.stdout);
        assert!(out.stdout.contains("MiB Mem :"), "{p}: {}", out.stdout);
        let top_row = out
            .stdout
            .lines()
            .any(|l| l.trim_start().starts_with("PID USER"));
        assert!(top_row, "{p}: {}", out.stdout);
    });
}
