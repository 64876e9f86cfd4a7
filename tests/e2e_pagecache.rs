//! The page cache end to end: processes running one dynamic program share
//! the frames of its libraries, and mappings of a bind-mounted host file
//! agree with read(2) and write(2) inside the sandbox and reach the host
//! file, exactly as the same program sees them natively.

mod common;

use std::path::Path;

use common::{each_platform, image, TempDir, TestPod};

/// Guest memory (kB) each of 10 more sleeping dash-started `/bin/sleep`s
/// (dynamic: libc, ld.so) costs, from /proc/meminfo.
const PER_PROCESS: &str = "m() { sed -n 's/^MemFree: *\\([0-9]*\\) kB/\\1/p' /proc/meminfo; }; \
    /bin/sleep 4 & /bin/sleep 0.5; a=$(m); \
    for i in 1 2 3 4 5 6 7 8 9 10; do /bin/sleep 3 & done; /bin/sleep 1; \
    b=$(m); echo $(( (a - b) / 10 )); wait";

#[test]
fn pagecache_processes_of_a_dynamic_program_share_their_library_frames() {
    each_platform(|p| {
        let out = TestPod::new(&image("debian"), &["/bin/dash", "-c", PER_PROCESS])
            .platform(p)
            .run();
        assert_eq!(out.status, 0, "{out:?}");
        let kb: u64 = out.stdout.trim().parse().expect("a number of kB");
        // Each private copy of libc's, ld.so's and sleep's touched pages
        // cost about 1500 kB a process; shared, what is left is the
        // process's own data, stack and page tables (about 250 kB).
        assert!(kb < 700, "{kb} kB per process: library pages not shared");
        // What no sharing can take away: each process writes its stack,
        // its heap and the relocated data of sleep, libc and ld.so
        // (112 kB of Private_Dirty in a native sleep's smaps; measured
        // here 208 kB on ptrace, 256 kB with KVM's page tables).
        assert!(kb >= 64, "{kb} kB per process: too little to be measured");
    });
}

/// Runs /bin/mapfile on `file` in a pod that mounts its directory on /data.
fn mapfile_in_pod(dir: &TempDir, file: &Path, p: &str) -> common::Out {
    let json = serde_json::json!({
        "containers": {"app": {
            "image": image("testprogs"),
            "command": ["/bin/mapfile", "/data/f"],
            "mounts": [{"source": file.parent().unwrap(), "target": "/data"}],
        }}
    });
    common::run_pod(dir, &json, p)
}

/// What mapfile leaves in its file: "shared" at 0 and, on the second
/// page (zeros since it was truncated away and grown back), "exit"
/// (written through the shared mapping); "private" nowhere.
fn expected_file() -> Vec<u8> {
    let mut want = vec![b'.'; 4096];
    want[..6].copy_from_slice(b"shared");
    want.extend_from_slice(b"exit");
    want.resize(8192, 0);
    want
}

/// mapfile's native run on a host file; checks what it leaves there.
fn native_mapfile() -> common::Out {
    let dir = TempDir::new("mapfile-native");
    let file = dir.0.join("f");
    std::fs::write(&file, vec![b'.'; 8192]).unwrap();
    let want = common::native(&image("testprogs"), "mapfile", &[file.to_str().unwrap()]);
    assert_eq!(want.status, 0, "native: {want:?}");
    assert!(std::fs::read(&file).unwrap() == expected_file());
    want
}

#[test]
fn pagecache_bind_file_mappings_match_native_and_reach_the_host() {
    let want = native_mapfile();
    each_platform(|p| {
        let dir = TempDir::new("mapfile");
        let host = dir.0.join("data");
        std::fs::create_dir(&host).unwrap();
        let file = host.join("f");
        std::fs::write(&file, vec![b'.'; 8192]).unwrap();

        let got = mapfile_in_pod(&dir, &file, p);

        common::assert_same_run(&got, &want, p);
        assert!(
            std::fs::read(&file).unwrap() == expected_file(),
            "host file on {p}"
        );
    });
}

#[test]
fn pagecache_tmpfs_file_mappings_match_native() {
    let want = native_mapfile();
    let script = "head -c 8192 /dev/zero | tr '\\0' . >/tmp/f && /bin/mapfile /tmp/f";
    each_platform(|p| {
        let got = TestPod::new(&image("testprogs"), &["/bin/sh", "-c", script])
            .platform(p)
            .run();
        common::assert_same_run(&got, &want, p);
    });
}

#[test]
fn pagecache_image_file_mappings_follow_its_copy_up_as_overlayfs() {
    each_platform(|p| {
        let out = TestPod::new(&image("testprogs"), &["/bin/mapcopyup", "/data/hello.txt"])
            .platform(p)
            .run();
        assert_eq!(
            out.stdout,
            "before: hello\n\
             mapped before the copy-up: hello\n\
             mapped after, read-only fd: HELLO\n\
             mapped after, shared: HELLO\n\
             after another write: JELLO JELLO\n",
            "{}",
            out.stderr
        );
    });
}

/// Maps all of cc1 (33 MB) and touches every page, so its page cache
/// holds it; then, in another process, needs 100 MiB more.
const FILL_THEN_ALLOCATE: &str = "python3 -c \"import mmap; \
    f = open('/usr/lib/gcc/x86_64-linux-gnu/12/cc1', 'rb'); \
    m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ); \
    print('touched', sum(m[i] for i in range(0, len(m), 4096)) > 0)\"; \
    python3 -c \"x = b'x' * (100 << 20); print('allocated', len(x) >> 20)\"";

#[test]
fn pagecache_pages_nobody_maps_give_way_before_an_oom_kill() {
    each_platform(|p| {
        // 128 MiB: the cached 33 MB and the 100 MiB do not fit together.
        let out = TestPod::new(&image("debian"), &["/bin/dash", "-c", FILL_THEN_ALLOCATE])
            .resources("{\"memory\": 134217728}")
            .platform(p)
            .run();
        assert_eq!(
            (out.status, out.stdout.as_str()),
            (0, "touched True\nallocated 100\n"),
            "{}",
            out.stderr
        );
    });
}

/// /proc/meminfo reports the page cache: a dynamic program's libraries
/// are Cached, counted as available, and `free` reads it.
#[test]
fn meminfo_reports_the_page_cache() {
    each_platform(|p| {
        let out = TestPod::new(&image("debian"), &["/bin/dash", "-c", "cat /proc/meminfo"])
            .platform(p)
            .run();
        assert_eq!(out.status, 0, "{p}: {}", out.stderr);
        let field = |k: &str| -> u64 {
            let line = out.stdout.lines().find(|l| l.starts_with(k)).unwrap();
            line.split_whitespace().nth(1).unwrap().parse().unwrap()
        };
        let (free, cached, available) =
            (field("MemFree:"), field("Cached:"), field("MemAvailable:"));
        assert!(
            cached > 500,
            "{p}: libc and dash are cached: {}",
            out.stdout
        );
        assert_eq!(available, free + cached, "{p}: {}", out.stdout);
    });
}
