//! End-to-end: the file syscalls of issue 5 that programs use beyond
//! plain I/O (record lock release paths, inotify, splice and friends,
//! mount/umount inside the guest), each differential against native.

mod common;

use common::{assert_runs_like, each_platform, image, native, TestPod};

/// Runs `/bin/prog` natively and in the sandbox on every platform and
/// asserts the status and output agree.
fn differential(prog: &str) {
    let img = image("testprogs");
    let want = native(&img, prog, &[]);
    assert_eq!(want.status, 0, "{prog} natively: {}", want.stderr);
    assert_runs_like(&img, prog, &[], &want);
}

#[test]
fn fs_record_locks_go_with_any_close_and_ofd_with_the_last() {
    differential("lockclose");
}

#[test]
fn fs_splice_tee_vmsplice_copy_file_range_match_native() {
    differential("splice");
}

#[test]
fn fs_holes_punch_tmpfile_and_descriptor_limits_match_native() {
    differential("fileedge");
}

#[test]
fn fs_device_nodes_open_the_sentry_devices_except_on_nodev_mounts() {
    let script = "mknod /mynull c 1 3 && echo gone > /mynull && head -c 4 /mynull | wc -c; \
        mknod /myzero c 1 5 && head -c 3 /myzero | od -An -tx1; \
        mknod /other c 42 0 && cat /other; echo other=$?; \
        mknod /blk b 8 1 && cat /blk; echo blk=$?; \
        mknod /tmp/null c 1 3 && echo x > /tmp/null; echo nodev=$?; \
        stat -c '%F %t:%T' /mynull";
    busybox_sh_expect(
        script,
        "0\n 00 00 00\nother=1\nblk=1\nnodev=1\ncharacter special file 1:3\n",
        &["No such device or address", "Permission denied"],
    );
}

#[test]
fn fs_inotify_events_flags_and_reads_match_native() {
    differential("inotify");
}

/// Runs a busybox shell script in a pod on every platform: its stdout
/// must be `want` and its stderr must say each of `errors`.
fn busybox_sh_expect(script: &str, want: &str, errors: &[&str]) {
    busybox_sh(script, |p, out| {
        assert_eq!(out.stdout, want, "{p}: {}", out.stderr);
        for e in errors {
            assert!(out.stderr.contains(e), "{p}: {}", out.stderr);
        }
    });
}

/// Runs a busybox shell script in a pod on every platform and hands
/// each platform's result to `check`.
fn busybox_sh(script: &str, check: impl Fn(&str, &common::Out)) {
    each_platform(|p| {
        let pod = TestPod::new(&image("busybox"), &["/bin/sh", "-c", script]).platform(p);
        check(p, &pod.run());
    });
}

#[test]
fn fs_mount_tmpfs_shows_in_proc_and_umount_restores_the_directory() {
    let script = "mkdir -p /mnt/a && echo under > /mnt/a/old && \
        mount -t tmpfs -o size=1m,mode=755 tmpfs /mnt/a && \
        grep /mnt/a /proc/mounts && grep -c ' /mnt/a ' /proc/self/mountinfo && \
        stat -c '%a' /mnt/a && ls /mnt/a && echo hi > /mnt/a/f && cat /mnt/a/f && \
        df -k /mnt/a | tail -1 | tr -s ' ' | cut -d' ' -f2 && \
        umount /mnt/a && cat /mnt/a/old && grep -c /mnt/a /proc/mounts";
    busybox_sh(script, |p, out| {
        assert_eq!(
            out.stdout,
            "tmpfs /mnt/a tmpfs rw,relatime,size=1024k,mode=755 0 0\n1\n755\nhi\n1024\nunder\n0\n",
            "{p}: {}",
            out.stderr
        );
    });
}

#[test]
fn fs_umount_busy_is_ebusy_and_detach_is_lazy() {
    let script = "mkdir -p /mnt/b && mount -t tmpfs t /mnt/b && echo x > /mnt/b/f && \
        (cd /mnt/b && umount /mnt/b; echo cwd=$?); \
        exec 3</mnt/b/f; umount /mnt/b; echo open=$?; \
        umount -l /mnt/b; echo lazy=$?; cat <&3; grep -c /mnt/b /proc/mounts; \
        umount /mnt/b; echo again=$?; umount /no/such; echo missing=$?";
    busybox_sh_expect(
        script,
        "cwd=1\nopen=1\nlazy=0\nx\n0\nagain=1\nmissing=1\n",
        &["Device or resource busy", "Invalid argument"],
    );
}

#[test]
fn fs_remount_read_only_refuses_writes_until_remounted_rw() {
    let script = "mkdir -p /mnt/c && mount -t tmpfs t /mnt/c && \
        mount -o remount,ro /mnt/c && grep /mnt/c /proc/mounts; touch /mnt/c/x; echo ro=$?; \
        mount -o remount,rw /mnt/c && touch /mnt/c/x; echo rw=$?; \
        mount -o remount,bind,ro /mnt/c; echo bindro=$?; touch /mnt/c/y; echo ro2=$?; \
        mount -t tmpfs -o noexec t /mnt/c && cp /bin/busybox /mnt/c/bb && /mnt/c/bb true; echo exec=$?";
    busybox_sh_expect(
        script,
        "t /mnt/c tmpfs ro,relatime 0 0\nro=1\nrw=0\nbindro=0\nro2=1\nexec=126\n",
        &["Read-only file system"],
    );
}

#[test]
fn fs_mount_other_types_and_bad_options_fail() {
    let script = "mkdir -p /mnt/d; mount -t proc proc /mnt/d; echo proc=$?; \
        mount -t tmpfs -o nosuchopt=1 t /mnt/d; echo opt=$?; \
        mount -t tmpfs t /mnt/d/missing; echo missing=$?; grep -c /mnt/d /proc/mounts";
    busybox_sh(script, |p, out| {
        assert_eq!(
            out.stdout, "proc=255\nopt=255\nmissing=255\n0\n",
            "{p}: {}",
            out.stderr
        );
        assert!(out.stderr.contains("No such device"), "{p}: {}", out.stderr);
    });
}

#[test]
fn fs_mount_and_umount_without_cap_sys_admin_are_eperm_as_native() {
    differential("mountperm");
}

#[test]
fn fs_umount_ends_inotify_watches_with_in_unmount() {
    // The expected output is the program's run on Linux in a private
    // mount namespace (it mounts, so it is not run natively here).
    let want =
        "mount: 0 \nwatch the root: 1 \numount: 0 \nwd=1 mask=0x40002000\nwd=1 mask=0x8000\n";
    each_platform(|p| {
        let out = TestPod::new(&image("testprogs"), &["/bin/umountwatch"])
            .platform(p)
            .run();
        assert_eq!(
            (out.status, out.stdout.as_str()),
            (0, want),
            "{p}: {}",
            out.stderr
        );
    });
}

/// Runs a busybox shell script on Linux: in a fresh copy of the busybox
/// image, chrooted, in a private mount namespace with /proc and a /tmp
/// of its own (what a container's pid 1 sees), so mounts it makes end
/// with it.
fn native_busybox_sh(script: &str) -> common::Out {
    let root = std::env::temp_dir().join(format!(
        "sandboxd-native-mnt-{}-{}",
        std::process::id(),
        script.len()
    ));
    std::fs::create_dir_all(&root).unwrap();
    let st = std::process::Command::new("tar")
        .arg("-xzf")
        .arg(image("busybox"))
        .arg("-C")
        .arg(&root)
        .status()
        .unwrap();
    assert!(st.success(), "unpacking busybox into {}", root.display());
    for d in ["proc", "tmp", "mnt"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let out = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(
            "mount -t proc proc \"$1/proc\" && mount -t tmpfs tmpfs \"$1/tmp\" && \
             exec chroot \"$1\" /bin/sh -c \"$0\"",
        )
        .arg(script)
        .arg(&root)
        .output()
        .expect("unshare(1) runs (util-linux, as root)");
    std::fs::remove_dir_all(&root).unwrap();
    common::Out {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

/// Runs `script` on Linux (see [`native_busybox_sh`]) and in a pod on
/// every platform: status, stdout and stderr must agree.
fn busybox_sh_like_linux(script: &str) {
    let want = native_busybox_sh(script);
    assert!(
        want.stdout.lines().count() > 5,
        "natively: {} {}",
        want.stdout,
        want.stderr
    );
    busybox_sh(script, |p, out| {
        assert_eq!(
            (out.status, &out.stdout, &out.stderr),
            (want.status, &want.stdout, &want.stderr),
            "{p}: sandbox (left) and Linux (right) differ"
        );
    });
}

#[test]
fn fs_bind_mounts_in_the_guest_share_files_and_keep_their_own_flags_as_linux() {
    busybox_sh_like_linux(
        "mkdir -p /mnt/a /mnt/b /mnt/t /mnt/u /mnt/m /mnt/n
        echo one > /mnt/a/f
        mount --bind /mnt/a /mnt/b
        mount -o remount,bind,ro /mnt/b; echo remount=$?
        touch /mnt/b/x; echo bind-ro=$?
        touch /mnt/a/y; echo source-rw=$?
        ls /mnt/b
        grep ' /mnt/b ' /proc/mounts | cut -d' ' -f2,4 | cut -d, -f1
        umount /mnt/b
        echo file > /mnt/ff; touch /mnt/gg
        mount --bind /mnt/ff /mnt/gg && cat /mnt/gg && echo more >> /mnt/gg && cat /mnt/ff
        rm /mnt/gg; echo rm-mountpoint=$?
        umount /mnt/gg; cat /mnt/gg | wc -c
        mount --bind /mnt/a /mnt/b
        mkdir /mnt/a/d1; echo in > /mnt/a/d1/x
        cd /mnt/b/d1 && pwd && cat x && cd .. && pwd
        mv /mnt/a/d1 /mnt/a/d2; ls /mnt/b; cat /mnt/b/d2/x
        rm /mnt/b/d2/x; ls /mnt/a/d2 | wc -l
        ln /mnt/b/f /mnt/b/hard; stat -c %h /mnt/a/f
        mv /mnt/b/hard /mnt/b/hard2; ls /mnt/a | tr '\\n' ' '; echo
        cd /mnt/b/d2 && mv /mnt/b/d2 /mnt/b/d3 && pwd -P && ls /mnt/a/d3 | wc -l; cd /
        [ $(stat -c %i /mnt/a/f) = $(stat -c %i /mnt/b/f) ] && echo same-inode
        mount -t tmpfs tm /mnt/t && echo data > /mnt/t/k && mount --bind /mnt/t /mnt/u
        umount /mnt/t; echo umount-source=$?; cat /mnt/u/k; ls /mnt/t | wc -l
        mkdir /mnt/n/p && mount --bind /proc /mnt/n/p && cat /mnt/n/p/self/comm && umount /mnt/n/p
        cd /mnt/b && umount /mnt/b; echo cwd-busy=$?; cd /
        umount /mnt/b; echo last=$?
        mount --bind /mnt/a/f /mnt/m; echo file-on-dir=$?
        mount --bind /nowhere /mnt/m; echo missing=$?
        grep -c ' /mnt/' /proc/mounts",
    );
}

#[test]
fn fs_rbind_and_move_carry_mounts_as_linux() {
    busybox_sh_like_linux(
        "mkdir -p /mnt/a/t /mnt/b /mnt/c /mnt/m
        echo under > /mnt/a/t/u
        mount -t tmpfs tt /mnt/a/t && echo in > /mnt/a/t/i
        mount --bind /mnt/a /mnt/b && ls /mnt/b/t
        mount --rbind /mnt/a /mnt/c && ls /mnt/c/t
        grep ' /mnt/' /proc/self/mountinfo | cut -d' ' -f5
        mkdir -p /mnt/a/t/s /mnt/s && mount --bind /mnt/a/t/s /mnt/s
        grep ' /mnt/s ' /proc/self/mountinfo | cut -d' ' -f4,5,9; umount /mnt/s
        echo new > /mnt/c/t/n; cat /mnt/a/t/n
        umount /mnt/c; echo umount-with-submount=$?
        umount /mnt/c/t && umount /mnt/c && echo both-gone
        mount --move /mnt/a/t /mnt/m; echo move=$?
        cat /mnt/m/i; ls /mnt/a/t
        grep ' /mnt/' /proc/self/mountinfo | cut -d' ' -f5
        mount --move /mnt/m /mnt/m; echo onto-itself=$?
        mount --move /mnt/a /mnt/b; echo not-a-mount=$?
        mkdir -p /mnt/m/deep; mount --move /mnt/b /mnt/m/deep; echo moved-bind=$?
        ls /mnt/m/deep; umount /mnt/m; echo parent-busy=$?
        umount /mnt/m/deep && umount /mnt/m && echo clean
        grep -c ' /mnt/' /proc/mounts",
    );
}

/// Extended attributes on tmpfs: the program works in /dev/shm natively
/// (tmpfs keeps user.* since Linux 6.6) and in /tmp in the sandbox.
#[test]
fn fs_xattrs_on_tmpfs_match_native() {
    let img = image("testprogs");
    let want = native(&img, "xattr", &["/dev/shm"]);
    assert_eq!(want.status, 0, "xattr natively: {}", want.stderr);
    assert!(
        want.stdout.contains("\nset: 0 \n"),
        "the host's /dev/shm keeps no user xattrs (Linux before 6.6?):\n{}",
        want.stdout
    );
    assert_runs_like(&img, "xattr", &["/tmp"], &want);
}

/// What only the sandbox shows: xattrs are charged to the mount's budget
/// and given back with the file, a read-only mount refuses changes, and
/// bind mounts and /proc keep none.
#[test]
fn fs_xattrs_budget_readonly_bind_and_proc() {
    let dir = common::TempDir::new("xattr");
    let host = dir.0.join("host");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("f"), "x").unwrap();
    each_platform(|p| {
        let json = serde_json::json!({
            "containers": {"app": {
                "image": image("testprogs"),
                "command": ["/bin/xattr", "edges"],
                "mounts": [
                    {"type": "tmpfs", "target": "/small", "size": "256KiB"},
                    {"source": host, "target": "/host"},
                ],
            }}
        });
        let out = common::run_pod(&dir, &json, p);
        assert_eq!(out.status, 0, "on {p}: {}", out.stderr);
        for line in [
            "budget: 3 values fit, then No space left on device",
            "budget: remove one: 0 ",
            "budget: set again: 0 ",
            "budget: freed with the file: 0 ",
            "ro: set before: 0 ",
            "ro: set: -1 Read-only file system",
            "ro: remove: -1 Read-only file system",
            "ro: get: -1 No data available",
            "ro: list: 0 ",
            "bind: get: -1 Operation not supported",
            "bind: set: -1 Operation not supported",
            "bind: list: -1 Operation not supported",
            "bind: remove: -1 Operation not supported",
            "proc: get: -1 Operation not supported",
            "proc: set: -1 Operation not supported",
            "proc: list: 0 ",
        ] {
            assert!(
                out.stdout.lines().any(|l| l == line),
                "on {p}: no {line:?} in\n{}",
                out.stdout
            );
        }
    });
}
