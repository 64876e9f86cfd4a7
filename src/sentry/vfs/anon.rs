//! Anonymous files (eventfd, epoll, timerfd, signalfd): they live in no
//! directory, stat as mode 0600 files of no type on the anon-inode file
//! system, and show in /proc/self/fd as "anon_inode:[kind]".

use std::sync::atomic::{AtomicU64, Ordering};

use crate::abi::types::Stat;

/// The device number anonymous files report.
const ANON_DEV: u64 = 0xe;

/// A fresh inode number for an anonymous file.
pub fn next_ino() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0x20_0000);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The stat of anonymous file `ino`.
pub fn stat(ino: u64) -> Stat {
    Stat {
        dev: ANON_DEV,
        ino,
        mode: 0o600,
        nlink: 1,
        blksize: 4096,
        ..Default::default()
    }
}

/// What /proc/self/fd/N shows for an anonymous file of `kind`.
pub fn fd_target(kind: &str) -> Vec<u8> {
    format!("anon_inode:[{kind}]").into_bytes()
}
