//! /proc and /sys end to end: a C program's view of /proc against a native
//! run, busybox's ps, pidof and kill over a container's processes, zombies,
//! another container's processes, and the CPU count programs read.

mod common;

use common::{assert_runs_like, each_platform, image, native, run_pod_json, sh_until, TestPod};

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
    // ps once both background jobs have exec'd sleep.
    let script = format!(
        "sleep 30 & a=$!; sleep 31 & b=$!; {}; ps -o pid,ppid,stat,args; \
         echo pidof=$(pidof sleep); kill $(pidof sleep); wait; echo left=$(pidof sleep)",
        sh_until("[ \"$(cat /proc/$a/comm /proc/$b/comm)\" = \"$(printf 'sleep\\nsleep')\" ]")
    );
    each_platform(|p| {
        let out = TestPod::new(&image("busybox"), &["/bin/sh", "-c", &script])
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
    // The inner shell forks `true` and becomes `sleep`, which never
    // waits: ps once it has and `true` is a zombie; then its parent is
    // killed, and pid 1 reaps it (in at most 10 s).
    let script = format!(
        "sh -c 'true & exec sleep 30' & s=$!; {}; ps -o pid,ppid,stat,args; \
         kill $s; wait; {}; echo reaped; ps -o pid,ppid,stat,args",
        sh_until("[ \"$(cat /proc/$s/comm)\" = sleep ] && ps -o stat | grep -q Z"),
        sh_until("! ps -o stat | grep -q Z")
    );
    each_platform(|p| {
        let out = TestPod::new(&image("busybox"), &["/bin/sh", "-c", &script])
            .platform(p)
            .run();
        assert_eq!(out.status, 0, "{out:?}");
        let (before, after) = out.stdout.split_once("reaped\n").unwrap();
        let rows = ps_rows(before);
        let sleeper = rows.iter().find(|r| r.3 == "sleep 30").expect("sleep 30");
        let zombie = rows.iter().find(|r| r.2 == "Z").expect("a zombie");
        assert_eq!(zombie.1, sleeper.0, "{rows:?}");
        // Gone once pid 1 reaped it after its parent ended.
        assert!(ps_rows(after).iter().all(|r| r.2 != "Z"), "{after}");
    });
}

#[test]
fn proc_other_containers_processes_are_invisible() {
    let img = image("busybox");
    let lister = "for d in /proc/[0-9]*; do tr '\\0' ' ' < $d/cmdline; echo; done";
    // b lists /proc while a's `sleep 30` runs: a says when it has
    // exec'd, and ends it once b has listed.
    let a = format!(
        "sleep 30 & s=$!; {}; touch /sync/up; {lister}; {}; kill $s; wait",
        sh_until("[ \"$(cat /proc/$s/comm)\" = sleep ]"),
        sh_until("[ -e /sync/listed ]")
    );
    let b = format!(
        "{}; {lister}; touch /sync/listed",
        sh_until("[ -e /sync/up ]")
    );
    let sync = serde_json::json!([{"volume": "sync", "target": "/sync"}]);
    let json = serde_json::json!({
        "name": "procns",
        "volumes": {"sync": {"type": "tmpfs"}},
        "containers": {
            "a": {"image": img, "mounts": sync, "command": ["/bin/sh", "-c", a]},
            "b": {"image": img, "mounts": sync, "command": ["/bin/sh", "-c", b]}
        }
    });
    let out = run_pod_json(&json.to_string());
    assert_eq!(out.status, 0, "{out:?}");
    let lines = |c: &str| -> Vec<String> {
        let prefix = format!("[{c}] ");
        out.stdout
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix).map(str::to_string))
            .collect()
    };
    assert!(lines("a").iter().any(|l| l == "sleep 30 "), "{out:?}");
    assert!(
        !lines("b").iter().any(|l| l.contains("sleep 30")),
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
    // ps and top once the background job has exec'd sleep.
    let script = format!(
        "sleep 5 & {}; ps aux; top -b -n 1; kill %1",
        sh_until("[ \"$(cat /proc/$!/comm)\" = sleep ]")
    );
    each_platform(|p| {
        let out = TestPod::new(&image("debian"), &["/bin/bash", "-c", &script])
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

/// A /proc/loadavg line as Linux writes it ("0.31 0.07 0.02 3/5 7\n"):
/// three averages with two decimals, running/total tasks, the last pid.
fn loadavg_fields(text: &str) -> ([f64; 3], (u32, u32), u32) {
    let fields: Vec<&str> = text.strip_suffix('\n').unwrap_or("").split(' ').collect();
    assert_eq!(fields.len(), 5, "not a loadavg line: {text:?}");
    let load = |f: &str| {
        let (int, frac) = f.split_once('.').unwrap_or(("", ""));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        assert!(
            digits(int) && digits(frac) && frac.len() == 2,
            "{f:?} in {text:?}"
        );
        f.parse::<f64>().unwrap()
    };
    let (running, total) = fields[3].split_once('/').expect("running/total");
    (
        [load(fields[0]), load(fields[1]), load(fields[2])],
        (running.parse().unwrap(), total.parse().unwrap()),
        fields[4].parse().unwrap(),
    )
}

/// The 1-minute load busybox `uptime` prints (from sysinfo(2)).
fn uptime_one_minute(line: &str) -> f64 {
    let (_, loads) = line.split_once("load average: ").expect("uptime line");
    loads.split(',').next().unwrap().trim().parse().unwrap()
}

/// Two busy loops for 11 s (two 5 s samples) lift the 1-minute load
/// above 0.3 (Linux's fixed-point averages give 0.31), the 5- and
/// 15-minute ones less; a pod whose tasks all sleep stays at 0. /proc/loadavg has
/// Linux's format, counts the pod's running and total tasks, and
/// sysinfo(2) (busybox `uptime`) gives the same load.
#[test]
fn proc_loadavg_follows_busy_tasks_and_agrees_with_sysinfo() {
    loadavg_fields(&std::fs::read_to_string("/proc/loadavg").unwrap());
    let busy = "while :; do :; done & while :; do :; done & sleep 11; cat /proc/loadavg; uptime; kill %1 %2";
    let idle = "sleep 5.5; cat /proc/loadavg; uptime";
    each_platform(|p| {
        // One guest CPU for the two loops: the one waiting for it is
        // runnable and counts as well (and the host's cores stay free for
        // the other tests).
        let run = |script, cpus| {
            TestPod::new(&image("busybox"), &["/bin/sh", "-c", script])
                .resources(&format!("{{\"cpus\": {cpus}}}"))
                .platform(p)
                .run()
        };
        let (busy, idle) = std::thread::scope(|s| {
            let busy = s.spawn(|| run(busy, 1));
            let idle = run(idle, 2);
            (busy.join().unwrap(), idle)
        });
        let mut seen = vec![];
        for out in [&busy, &idle] {
            assert_eq!(out.status, 0, "{p}: {out:?}");
            let (loadavg, uptime) = out.stdout.split_once('\n').expect("two lines");
            let (loads, counts, _) = loadavg_fields(&format!("{loadavg}\n"));
            // sysinfo's loads are not rounded: at most 0.01 below.
            let sys = uptime_one_minute(uptime);
            assert!(
                sys <= loads[0] && loads[0] - sys < 0.0101,
                "{p}: {loadavg} against {uptime}"
            );
            seen.push((loads, counts));
        }
        let ([one, five, fifteen], counts) = seen[0];
        assert!(
            one > 0.3 && five > 0.0 && five < one && fifteen < five,
            "{p}: busy {seen:?}"
        );
        // The two loops and cat run; init and sh wait too.
        assert_eq!(counts, (3, 5), "{p}: busy {seen:?}");
        // Every task of the idle pod sleeps at the 5 s sample: one
        // counted by mistake would read 0.08.
        let ([one, ..], counts) = seen[1];
        assert!(one < 0.05, "{p}: idle {seen:?}");
        assert_eq!(counts, (1, 3), "{p}: idle {seen:?}");
    });
}
