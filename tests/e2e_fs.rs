//! End-to-end: the file syscalls of issue 5 that programs use beyond
//! plain I/O (record lock release paths, inotify, splice and friends,
//! mount/umount inside the guest), each differential against native.

mod common;

use common::{each_platform, image, native, TestPod};

/// Runs `/bin/prog` natively and in the sandbox on every platform and
/// asserts the status and output agree.
fn differential(prog: &str) {
    let img = image("testprogs");
    let want = native(&img, prog, &[]);
    assert_eq!(want.status, 0, "{prog} natively: {}", want.stderr);
    each_platform(|p| {
        let got = TestPod::new(&img, &[&format!("/bin/{prog}")])
            .platform(p)
            .run();
        assert_eq!(
            (got.status, &got.stdout),
            (want.status, &want.stdout),
            "{prog} on {p}: {}",
            got.stderr
        );
    });
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
fn fs_inotify_events_flags_and_reads_match_native() {
    differential("inotify");
}
