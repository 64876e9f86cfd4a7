//! Terminals: the sentry's ptys against Linux's, pods with `tty: true`
//! under a host terminal, stdin routing between containers, `exec -t`.

mod common;

use common::*;

#[test]
fn tty_pty_program_matches_its_native_run() {
    let img = image("testprogs");
    let want = native(&img, "pty", &[]);
    assert_eq!(want.status, 0, "native run failed: {}", want.stderr);
    each_platform(|p| {
        let got = TestPod::new(&img, &["/bin/pty"]).platform(p).run();
        assert_eq!(
            (got.status, got.stdout.lines().collect::<Vec<_>>()),
            (want.status, want.stdout.lines().collect::<Vec<_>>()),
            "pty on {p}: {}",
            got.stderr
        );
    });
}
