//! Bind mounts end to end: a guest shell reads and changes a host
//! directory mounted read-write, and the host sees exactly those changes
//! afterwards; a read-only bind refuses every change with EROFS and the
//! host directory stays as it was.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{each_platform, image, TempDir};

/// Runs `script` with busybox sh in a pod mounting `source` on /data.
fn run_with_bind(
    dir: &TempDir,
    source: &Path,
    readonly: bool,
    script: &str,
    p: &str,
) -> common::Out {
    let json = serde_json::json!({
        "containers": {"app": {
            "image": image("busybox"),
            "command": ["/bin/sh", "-c", script],
            "mounts": [{"source": source, "target": "/data", "readonly": readonly}],
        }}
    });
    common::run_pod(dir, &json, p)
}

/// Every entry under `dir` as "path type mode size [content]", sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let md = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            let mode = md.permissions().mode() & 0o7777;
            if md.is_dir() {
                out.push(format!("{rel} dir {mode:o}"));
                stack.push(p);
            } else if md.file_type().is_symlink() {
                let t = std::fs::read_link(&p).unwrap();
                out.push(format!("{rel} link {}", t.display()));
            } else {
                let text = std::fs::read_to_string(&p).unwrap();
                out.push(format!("{rel} file {mode:o} {text:?}"));
            }
        }
    }
    out.sort();
    out
}

/// A fresh host directory with a few files in it.
fn fill(root: &Path) {
    std::fs::create_dir_all(root.join("keep")).unwrap();
    std::fs::write(root.join("hello"), "hi\n").unwrap();
    std::fs::write(root.join("log"), "one\n").unwrap();
    std::fs::write(root.join("old"), "x").unwrap();
    std::fs::write(root.join("gone"), "bye").unwrap();
    std::fs::write(root.join("keep/inner"), "in").unwrap();
    for f in ["hello", "log", "old", "gone", "keep/inner"] {
        std::fs::set_permissions(root.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::set_permissions(root.join("keep"), std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn bind_read_write_changes_reach_the_host() {
    let script = "set -e; umask 022; cat /data/hello; cat /data/keep/inner; echo; \
                  echo new > /data/new; echo two >> /data/log; mkdir /data/dir; \
                  mv /data/old /data/dir/moved; rm /data/gone; chmod 600 /data/hello; \
                  ln -s hello /data/link; printf abcdef > /data/t; truncate -s 3 /data/t; \
                  cat /data/log /data/dir/moved /data/link; echo; \
                  stat -c '%a %s' /data/hello /data/new /data/t; ls /data; \
                  grep ' /data ' /proc/mounts; stat -f -c %t /data; \
                  ln /data/new /tmp/x 2>&1 | grep -o 'Invalid cross-device link'; \
                  rm /data/t; echo done";
    each_platform(|p| {
        let dir = TempDir::new("bind-rw");
        let data = dir.0.join("data");
        fill(&data);
        let out = run_with_bind(&dir, &data, false, script, p);
        assert_eq!(
            (out.status, out.stdout.as_str()),
            (
                0,
                "hi\nin\none\ntwo\nxhi\n\n600 3\n644 4\n644 3\n\
                 dir\nhello\nkeep\nlink\nlog\nnew\nt\n\
                 bind /data 9p rw,relatime 0 0\n1021997\n\
                 Invalid cross-device link\ndone\n"
            ),
            "{}",
            out.stderr
        );
        assert_eq!(
            listing(&data),
            [
                "dir dir 755",
                "dir/moved file 644 \"x\"",
                "hello file 600 \"hi\\n\"",
                "keep dir 755",
                "keep/inner file 644 \"in\"",
                "link link hello",
                "log file 644 \"one\\ntwo\\n\"",
                "new file 644 \"new\\n\"",
            ]
        );
    });
}

#[test]
fn bind_readonly_refuses_every_change() {
    let script = "cat /data/hello; echo x > /data/hello; echo x >> /data/log; touch /data/new; \
                  rm /data/gone; mkdir /data/d; mv /data/old /data/o2; chmod 600 /data/hello; \
                  ln -s a /data/l; cat /data/hello; stat -f -c %t /data; echo end";
    each_platform(|p| {
        let dir = TempDir::new("bind-ro");
        let data = dir.0.join("data");
        fill(&data);
        let before = listing(&data);
        let out = run_with_bind(&dir, &data, true, script, p);
        assert_eq!(out.stdout, "hi\nhi\n1021997\nend\n", "{}", out.stderr);
        assert_eq!(
            out.stderr.matches("Read-only file system").count(),
            8,
            "{}",
            out.stderr
        );
        assert_eq!(listing(&data), before);
    });
}

#[test]
fn bind_sees_changes_made_on_the_host_while_running() {
    // The guest looks at the tree, says so, waits for the host to change
    // it (replace a file, remove one, add one, chmod), then looks again.
    let script = "cat /data/hello; cat /data/gone; ls /data/keep; stat -c %a /data/log; \
                  touch /data/ready; while [ ! -e /data/go ]; do sleep 0.05; done; \
                  cat /data/hello; cat /data/gone 2>&1 | grep -o 'No such file'; ls /data/keep; \
                  stat -c %a /data/log; cat /data/keep/added";
    each_platform(|p| {
        let dir = TempDir::new("bind-host");
        let data = dir.0.join("data");
        fill(&data);
        let host = {
            let data = data.clone();
            std::thread::spawn(move || {
                let start = std::time::Instant::now();
                while !data.join("ready").exists() {
                    assert!(start.elapsed().as_secs() < 60, "the guest never got ready");
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                std::fs::write(data.join("hello.new"), "replaced\n").unwrap();
                std::fs::rename(data.join("hello.new"), data.join("hello")).unwrap();
                std::fs::remove_file(data.join("gone")).unwrap();
                std::fs::write(data.join("keep/added"), "added\n").unwrap();
                std::fs::set_permissions(data.join("log"), std::fs::Permissions::from_mode(0o640))
                    .unwrap();
                std::fs::write(data.join("go"), "").unwrap();
            })
        };
        let out = run_with_bind(&dir, &data, false, script, p);
        host.join().unwrap();
        assert_eq!(
            (out.status, out.stdout.as_str()),
            (
                0,
                "hi\nbyeinner\n644\nreplaced\nNo such file\nadded\ninner\n640\nadded\n"
            ),
            "{}",
            out.stderr
        );
    });
}
