//! The root overlay and the mount table end to end: real programs from
//! the debian image change the image tree everywhere, the same script
//! runs natively on an unpacked copy and must print the same; the image
//! in the store stays byte-for-byte the same.

mod common;

use std::path::Path;
use std::process::Command;

use common::{each_platform, image, store, unpack, TestPod};
use sha2::{Digest, Sha256};

const TREE_SH: &str = include_str!("overlay/tree.sh");
const TREE_PY: &str = include_str!("overlay/tree.py");

/// Runs `prog -c script` natively with R set to `root`.
fn native(prog: &str, script: &str, root: &Path) -> common::Out {
    let out = Command::new(prog)
        .args(["-c", script])
        .env("R", root)
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    common::Out {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

/// Runs `argv` in the debian image on platform `p`.
fn sandboxed(p: &str, argv: &[&str]) -> common::Out {
    TestPod::new(&image("debian"), argv)
        .env("PATH", "/usr/bin:/bin")
        .platform(p)
        .run()
}

#[test]
fn overlay_coreutils_tar_find_changes_match_native() {
    let root = unpack(&image("debian"));
    let want = native("/bin/bash", TREE_SH, &root.0);
    assert_eq!(want.status, 0, "native run: {want:?}");
    each_platform(|p| {
        let out = sandboxed(p, &["/bin/bash", "-c", TREE_SH]);
        assert_eq!(
            (out.status, &out.stdout),
            (0, &want.stdout),
            "{}",
            out.stderr
        );
    });
}

#[test]
fn overlay_python_replace_copytree_sqlite_match_native() {
    let root = unpack(&image("debian"));
    let want = native("/usr/bin/python3", TREE_PY, &root.0);
    assert_eq!(want.status, 0, "native run: {want:?}");
    each_platform(|p| {
        let out = sandboxed(p, &["/usr/bin/python3", "-B", "-c", TREE_PY]);
        assert_eq!(
            (out.status, &out.stdout),
            (0, &want.stdout),
            "{}",
            out.stderr
        );
    });
}

/// A digest of every entry under `dir`: names, types, modes, sizes,
/// times, symlink targets and file contents.
fn tree_digest(dir: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let mut h = Sha256::new();
    let mut stack = vec![dir.to_path_buf()];
    let mut count = 0;
    while let Some(d) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            let md = std::fs::symlink_metadata(&p).unwrap();
            h.update(p.to_string_lossy().as_bytes());
            h.update(format!(
                "{} {} {} {}",
                md.mode(),
                md.size(),
                md.mtime(),
                md.nlink()
            ));
            if md.file_type().is_symlink() {
                h.update(std::fs::read_link(&p).unwrap().to_string_lossy().as_bytes());
            } else if md.is_file() {
                h.update(std::fs::read(&p).unwrap());
            } else if md.is_dir() {
                stack.push(p);
            }
            count += 1;
        }
    }
    format!("{count} entries, {}", hex::encode(h.finalize()))
}

#[test]
fn overlay_changes_leave_the_image_in_the_store_unchanged() {
    let bundle = image("debian");
    let sha = hex::encode(Sha256::digest(std::fs::read(&bundle).unwrap()));
    let script = "echo x >> /etc/passwd && printf new > /usr/bin/bash && rm -r /usr/lib/python3.11/json \
                  && mv /usr/bin/cat /usr/bin/cat2 && chmod 700 /usr/bin/ls && touch -d @5 /etc/group \
                  && ln /usr/bin/env /etc/env2 && rm /usr/bin/cat2 && rmdir /data 2>/dev/null; \
                  rm /data/fruit && rmdir /data && echo changed";
    each_platform(|p| {
        // The first run unpacks the image into the store.
        let out = sandboxed(p, &["/bin/true"]);
        assert_eq!(out.status, 0, "{out:?}");
        let rootfs = store().join(&sha).join("rootfs");
        assert!(rootfs.is_dir(), "{} is not in the store", rootfs.display());
        let before = tree_digest(&rootfs);
        let out = sandboxed(p, &["/usr/bin/sh", "-c", script]);
        assert_eq!(
            (out.status, out.stdout.as_str()),
            (0, "changed\n"),
            "{}",
            out.stderr
        );
        assert_eq!(tree_digest(&rootfs), before);
        // And the next pod sees the image as it was.
        let out = sandboxed(
            p,
            &[
                "/usr/bin/sh",
                "-c",
                "ls /data && /usr/bin/cat /data/fruit | wc -l",
            ],
        );
        assert_eq!(out.stdout, "fruit\n4\n", "{}", out.stderr);
    });
}

#[test]
fn overlay_proc_mounts_statfs_and_default_etc() {
    let script = "cat /proc/mounts; stat -f -c '%T' / /tmp /dev/shm; [ \"$(cat /etc/hostname)\" = \"$(uname -n)\" ] && echo hostname-ok; \
                  grep -c localhost /etc/hosts; head -c1 /etc/resolv.conf; echo; \
                  touch /tmp/a && ln /tmp/a /b 2>&1 | grep -o 'Invalid cross-device link'";
    each_platform(|p| {
        let out = sandboxed(p, &["/bin/bash", "-c", script]);
        assert_eq!(out.status, 0, "{out:?}");
        assert_eq!(
            out.stdout,
            "overlay / overlay rw,relatime 0 0\n\
             dev /dev tmpfs rw,nosuid,relatime,mode=755 0 0\n\
             proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0\n\
             devpts /dev/pts devpts rw,nosuid,noexec,relatime,gid=5,mode=620,ptmxmode=666 0 0\n\
             tmpfs /tmp tmpfs rw,nosuid,nodev,relatime,size=262144k 0 0\n\
             tmpfs /dev/shm tmpfs rw,nosuid,nodev,relatime,size=65536k 0 0\n\
             sysfs /sys sysfs ro,nosuid,nodev,noexec,relatime 0 0\n\
             overlayfs\ntmpfs\ntmpfs\nhostname-ok\n2\n#\nInvalid cross-device link\n",
            "{}",
            out.stderr
        );
    });
}

#[test]
fn overlay_path_syscalls_match_native() {
    let img = image("testprogs");
    let want = common::native(&img, "pathcalls", &[]);
    assert_eq!(want.status, 0, "native run: {want:?}");
    // want.status is 0 (asserted above), so this asserts a 0 status too.
    common::assert_runs_like(&img, "pathcalls", &[], &want);
}
