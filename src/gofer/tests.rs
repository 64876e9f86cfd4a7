//! Conformance suite of the gofer: a real server on a thread, a real
//! socketpair, real files in a temporary tree.

use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::fs::symlink;
use std::path::PathBuf;

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

use super::{serve, GoferClient};
use crate::abi::Errno;

struct Fixture {
    dir: PathBuf,
    client: GoferClient,
    server: Option<std::thread::JoinHandle<Result<(), super::GoferError>>>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn fixture(name: &str, readonly: bool) -> Fixture {
    let dir = std::env::temp_dir().join(format!("sandboxd-gofer-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("etc/big")).unwrap();
    fs::write(dir.join("etc/hello.txt"), b"hello, world\n").unwrap();
    symlink("hello.txt", dir.join("etc/link")).unwrap();
    symlink("/", dir.join("etc/to_root")).unwrap();
    symlink("../../../../..", dir.join("etc/up")).unwrap();
    for i in 0..3000 {
        fs::write(
            dir.join(format!("etc/big/file-with-a-long-name-{i:05}")),
            b"",
        )
        .unwrap();
    }
    let root: OwnedFd = fs::File::open(&dir).unwrap().into();
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .unwrap();
    let server = std::thread::spawn(move || serve(root, b, readonly));
    Fixture {
        dir,
        client: GoferClient::new(a),
        server: Some(server),
    }
}

#[test]
fn gofer_walk_open_read_donated_fd() {
    let f = fixture("read", true);
    let (root, st) = f.client.attach().unwrap();
    assert!(st.is_dir());
    let (etc, _) = f.client.walk(root, b"etc").unwrap();
    let (file, st) = f.client.walk(etc, b"hello.txt").unwrap();
    assert_eq!(st.size, 13);
    let fd = f.client.open(file, libc::O_RDONLY).unwrap();
    let mut buf = [0u8; 64];
    let n = nix::sys::uio::pread(&fd, &mut buf, 7).unwrap();
    assert_eq!(&buf[..n], b"world\n");
}

#[test]
fn gofer_symlinks_are_never_followed() {
    let f = fixture("links", true);
    let (root, _) = f.client.attach().unwrap();
    let (etc, _) = f.client.walk(root, b"etc").unwrap();
    let (link, st) = f.client.walk(etc, b"to_root").unwrap();
    assert!(st.is_symlink());
    assert_eq!(f.client.readlink(link).unwrap(), b"/");
    assert_eq!(f.client.walk(link, b"etc").unwrap_err(), Errno::ENOTDIR);
    let (up, _) = f.client.walk(etc, b"up").unwrap();
    assert_eq!(f.client.open(up, libc::O_RDONLY).unwrap_err(), Errno::ENXIO);
}

#[test]
fn gofer_escaping_names_are_refused() {
    let f = fixture("names", true);
    let (root, _) = f.client.attach().unwrap();
    for bad in [&b".."[..], b".", b"", b"etc/hello.txt", b"/etc", b"a\0b"] {
        assert_eq!(
            f.client.walk(root, bad).unwrap_err(),
            Errno::EINVAL,
            "{bad:?}"
        );
    }
}

#[test]
fn gofer_readdir_pages_through_large_directories() {
    let f = fixture("readdir", true);
    let (root, _) = f.client.attach().unwrap();
    let (etc, _) = f.client.walk(root, b"etc").unwrap();
    let (big, _) = f.client.walk(etc, b"big").unwrap();
    let entries = f.client.readdir(big).unwrap();
    assert_eq!(entries.len(), 3000);
    let mut names: Vec<_> = entries.iter().map(|e| e.name.clone()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 3000);
}

#[test]
fn gofer_readonly_export_refuses_writes() {
    let f = fixture("ro", true);
    let (root, _) = f.client.attach().unwrap();
    let (etc, _) = f.client.walk(root, b"etc").unwrap();
    let (file, _) = f.client.walk(etc, b"hello.txt").unwrap();
    assert_eq!(f.client.open(file, libc::O_RDWR).unwrap_err(), Errno::EROFS);
    assert_eq!(
        f.client.open(etc, libc::O_RDONLY).unwrap_err(),
        Errno::EISDIR
    );
}

#[test]
fn gofer_clunked_fid_is_ebadf() {
    let f = fixture("clunk", true);
    let (root, _) = f.client.attach().unwrap();
    let (etc, _) = f.client.walk(root, b"etc").unwrap();
    f.client.clunk(etc).unwrap();
    assert_eq!(f.client.stat(etc).unwrap_err(), Errno::EBADF);
    assert_eq!(f.client.walk(root, b"missing").unwrap_err(), Errno::ENOENT);
}

#[test]
fn gofer_garbage_request_ends_the_connection_without_panic() {
    let mut f = fixture("garbage", true);
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .unwrap();
    let root: OwnedFd = fs::File::open(&f.dir).unwrap().into();
    let server = std::thread::spawn(move || serve(root, b, true));
    super::socket::send(std::os::fd::AsFd::as_fd(&a), &[1, 2, 3, 4, 99, 0], None).unwrap();
    assert!(matches!(
        server.join().unwrap(),
        Err(super::GoferError::Malformed(6))
    ));
    drop(f.server.take());
}
