//! Conformance suite of the gofer: a real server on a thread, a real
//! socketpair, real files in a temporary tree. The server gets three
//! roots: the read-only image "/" (`image/`), the writable `bind0`
//! (`rw/`) and the read-only `bind1` (`ro/`); `outside/` sits next to
//! them and must never be reached.

use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::PathBuf;

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

use super::{serve, GoferClient, Owner, Root, SetAttr};
use crate::abi::types::Stat;
use crate::abi::Errno;
use crate::proto::Fid;

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

impl Fixture {
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// Attaches `aname` and walks `path` (components separated by '/').
    fn walk(&self, aname: &str, path: &str) -> (Fid, Stat) {
        let mut at = self.client.attach_root(aname).unwrap();
        for c in path.split('/').filter(|c| !c.is_empty()) {
            at = self.client.walk(at.0, c.as_bytes()).unwrap();
        }
        at
    }

    /// The writable root's fid.
    fn rw(&self) -> Fid {
        self.client.attach_root("bind0").unwrap().0
    }

    /// Whether anything was created in `outside/` besides secret.txt.
    fn outside_untouched(&self) -> bool {
        let names: Vec<_> = fs::read_dir(self.path("outside")).unwrap().collect();
        let secret = fs::metadata(self.path("outside/secret.txt")).unwrap();
        names.len() == 1 && secret.len() == 6 && secret.mode() & 0o7777 == 0o600
    }
}

fn root_dir(path: &PathBuf) -> OwnedFd {
    fs::File::open(path).unwrap().into()
}

fn fixture(name: &str) -> Fixture {
    let dir = std::env::temp_dir().join(format!("sandboxd-gofer-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let image = dir.join("image");
    fs::create_dir_all(image.join("etc/big")).unwrap();
    fs::write(image.join("etc/hello.txt"), b"hello, world\n").unwrap();
    symlink("hello.txt", image.join("etc/link")).unwrap();
    symlink("/", image.join("etc/to_root")).unwrap();
    symlink("../../../../..", image.join("etc/up")).unwrap();
    fs::create_dir_all(dir.join("rw/sub")).unwrap();
    fs::write(dir.join("rw/file.txt"), b"data").unwrap();
    symlink(dir.join("outside"), dir.join("rw/out_abs")).unwrap();
    symlink("../outside", dir.join("rw/out_rel")).unwrap();
    symlink(dir.join("outside/secret.txt"), dir.join("rw/secret_link")).unwrap();
    fs::create_dir_all(dir.join("ro")).unwrap();
    fs::write(dir.join("ro/keep.txt"), b"keep").unwrap();
    fs::create_dir_all(dir.join("outside")).unwrap();
    fs::write(dir.join("outside/secret.txt"), b"secret").unwrap();
    fs::set_permissions(
        dir.join("outside/secret.txt"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let roots = vec![
        Root {
            name: "/".into(),
            fd: root_dir(&image),
            readonly: true,
        },
        Root {
            name: "bind0".into(),
            fd: root_dir(&dir.join("rw")),
            readonly: false,
        },
        Root {
            name: "bind1".into(),
            fd: root_dir(&dir.join("ro")),
            readonly: true,
        },
    ];
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .unwrap();
    let server = std::thread::spawn(move || serve(roots, b));
    Fixture {
        dir,
        client: GoferClient::new(a),
        server: Some(server),
    }
}

const ROOT: Owner = Owner { uid: 0, gid: 0 };

fn me() -> Owner {
    Owner {
        uid: nix::unistd::geteuid().as_raw(),
        gid: nix::unistd::getegid().as_raw(),
    }
}

// ---- reading ----

#[test]
fn gofer_walk_open_read_donated_fd() {
    let f = fixture("read");
    let (file, st) = f.walk("/", "etc/hello.txt");
    assert_eq!(st.size, 13);
    let fd = f.client.open(file, libc::O_RDONLY).unwrap();
    let mut buf = [0u8; 64];
    let n = nix::sys::uio::pread(&fd, &mut buf, 7).unwrap();
    assert_eq!(&buf[..n], b"world\n");
}

#[test]
fn gofer_attach_names_each_root_and_unknown_is_enoent() {
    let f = fixture("attach");
    let (_, st) = f.walk("bind1", "keep.txt");
    assert_eq!(st.size, 4);
    let (_, st) = f.walk("bind0", "file.txt");
    assert_eq!(st.size, 4);
    assert!(f.client.attach().unwrap().1.is_dir());
    for bad in ["bind2", "", "image", "/bind0"] {
        assert_eq!(
            f.client.attach_root(bad).unwrap_err(),
            Errno::ENOENT,
            "{bad}"
        );
    }
}

#[test]
fn gofer_symlinks_are_never_followed() {
    let f = fixture("links");
    let (etc, _) = f.walk("/", "etc");
    let (link, st) = f.client.walk(etc, b"to_root").unwrap();
    assert!(st.is_symlink());
    assert_eq!(f.client.readlink(link).unwrap(), b"/");
    assert_eq!(f.client.walk(link, b"etc").unwrap_err(), Errno::ENOTDIR);
    let (up, _) = f.client.walk(etc, b"up").unwrap();
    assert_eq!(f.client.open(up, libc::O_RDONLY).unwrap_err(), Errno::ENXIO);
}

#[test]
fn gofer_escaping_names_are_refused() {
    let f = fixture("names");
    let (root, _) = f.client.attach().unwrap();
    for bad in [&b".."[..], b".", b"", b"etc/hello.txt", b"/etc", b"a\0b"] {
        assert_eq!(
            f.client.walk(root, bad).unwrap_err(),
            Errno::EINVAL,
            "{bad:?}"
        );
    }
    let long = vec![b'a'; 256];
    assert_eq!(f.client.walk(root, &long).unwrap_err(), Errno::ENAMETOOLONG);
}

#[test]
fn gofer_readdir_pages_through_large_directories() {
    let f = fixture("readdir");
    for i in 0..3000 {
        let name = format!("image/etc/big/file-with-a-long-name-{i:05}");
        fs::write(f.path(&name), b"").unwrap();
    }
    let (big, _) = f.walk("/", "etc/big");
    let entries = f.client.readdir(big).unwrap();
    assert_eq!(entries.len(), 3000);
    let mut names: Vec<_> = entries.iter().map(|e| e.name.clone()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 3000);
}

#[test]
fn gofer_clunked_fid_is_ebadf() {
    let f = fixture("clunk");
    let (root, _) = f.client.attach().unwrap();
    let (etc, _) = f.client.walk(root, b"etc").unwrap();
    f.client.clunk(etc).unwrap();
    assert_eq!(f.client.stat(etc).unwrap_err(), Errno::EBADF);
    assert_eq!(f.client.walk(root, b"missing").unwrap_err(), Errno::ENOENT);
}

#[test]
fn gofer_garbage_request_ends_the_connection_without_panic() {
    let mut f = fixture("garbage");
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .unwrap();
    let root = Root {
        name: "/".into(),
        fd: root_dir(&f.dir),
        readonly: true,
    };
    let server = std::thread::spawn(move || serve(vec![root], b));
    super::socket::send(std::os::fd::AsFd::as_fd(&a), &[1, 2, 3, 4, 99, 0], None).unwrap();
    assert!(matches!(
        server.join().unwrap(),
        Err(super::GoferError::Malformed(6))
    ));
    drop(f.server.take());
}

// ---- writing ----

#[test]
fn gofer_create_donates_writable_fd_with_exact_mode() {
    let f = fixture("create");
    let root = f.rw();
    let (fid, st, fd) = f
        .client
        .create(root, b"new.txt", libc::O_RDWR, 0o640, me())
        .unwrap();
    assert!(st.is_reg());
    assert_eq!(st.mode & 0o7777, 0o640);
    nix::sys::uio::pwrite(&fd, b"written", 0).unwrap();
    assert_eq!(fs::read(f.path("rw/new.txt")).unwrap(), b"written");
    assert_eq!(f.client.stat(fid).unwrap().size, 7);
    let again = f.client.create(root, b"new.txt", libc::O_RDWR, 0o640, me());
    assert_eq!(again.unwrap_err(), Errno::EEXIST);
}

#[test]
fn gofer_create_gives_the_owner_asked_for() {
    let f = fixture("owner");
    let root = f.rw();
    let owner = Owner {
        uid: 1234,
        gid: 4321,
    };
    let (_, st, _) = f
        .client
        .create(root, b"theirs", libc::O_WRONLY, 0o600, owner)
        .unwrap();
    assert_eq!((st.uid, st.gid), (1234, 4321));
    let (_, st) = f.client.mkdir(root, b"dir", 0o2750, owner).unwrap();
    assert_eq!((st.uid, st.gid, st.mode & 0o7777), (1234, 4321, 0o2750));
    let meta = fs::metadata(f.path("rw/theirs")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (1234, 4321));
}

#[test]
fn gofer_setuid_and_setgid_files_are_refused() {
    let f = fixture("suid");
    let root = f.rw();
    for mode in [0o4755, 0o2755] {
        let r = f.client.create(root, b"x", libc::O_WRONLY, mode, ROOT);
        assert_eq!(r.unwrap_err(), Errno::EPERM, "{mode:o}");
    }
    assert_eq!(
        f.client.mkdir(root, b"d", 0o4755, ROOT).unwrap_err(),
        Errno::EPERM
    );
    let (file, _) = f.client.walk(root, b"file.txt").unwrap();
    let attr = SetAttr {
        mode: Some(0o4755),
        ..Default::default()
    };
    assert_eq!(f.client.setattr(file, &attr).unwrap_err(), Errno::EPERM);
    assert!(!f.path("rw/x").exists() && !f.path("rw/d").exists());
}

#[test]
fn gofer_mkdir_mknod_symlink_link_unlink() {
    let f = fixture("nodes");
    let root = f.rw();
    let (dir, st) = f.client.mkdir(root, b"d", 0o751, me()).unwrap();
    assert!(st.is_dir() && st.mode & 0o7777 == 0o751);
    let (_, st) = f
        .client
        .mknod(dir, b"fifo", libc::S_IFIFO | 0o600, me())
        .unwrap();
    assert_eq!(st.mode & libc::S_IFMT, libc::S_IFIFO);
    assert!(fs::metadata(f.path("rw/d/fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    let (_, st) = f
        .client
        .mknod(dir, b"plain", libc::S_IFREG | 0o644, me())
        .unwrap();
    assert!(st.is_reg());
    for kind in [libc::S_IFCHR, libc::S_IFBLK, libc::S_IFSOCK] {
        let r = f.client.mknod(dir, b"dev", kind | 0o600, me());
        assert_eq!(r.unwrap_err(), Errno::EPERM);
    }
    let (link, st) = f.client.symlink(dir, b"sl", b"../../x", me()).unwrap();
    assert!(st.is_symlink());
    assert_eq!(f.client.readlink(link).unwrap(), b"../../x");
    let (plain, _) = f.client.walk(dir, b"plain").unwrap();
    let (_, st) = f.client.link(root, b"hard", plain).unwrap();
    assert_eq!(st.nlink, 2);
    assert_eq!(f.client.unlink(root, b"d", 0).unwrap_err(), Errno::EISDIR);
    assert_eq!(
        f.client.unlink(root, b"d", libc::AT_REMOVEDIR).unwrap_err(),
        Errno::ENOTEMPTY
    );
    for name in [&b"fifo"[..], b"plain", b"sl"] {
        f.client.unlink(dir, name, 0).unwrap();
    }
    f.client.unlink(root, b"d", libc::AT_REMOVEDIR).unwrap();
    f.client.unlink(root, b"hard", 0).unwrap();
    assert!(!f.path("rw/d").exists() && !f.path("rw/hard").exists());
}

#[test]
fn gofer_rename_noreplace_exchange_and_fids_follow() {
    let f = fixture("rename");
    let root = f.rw();
    let (sub, _) = f.client.walk(root, b"sub").unwrap();
    let (file, _) = f.client.walk(root, b"file.txt").unwrap();
    f.client
        .rename(root, b"file.txt", sub, b"moved", 0)
        .unwrap();
    assert_eq!(fs::read(f.path("rw/sub/moved")).unwrap(), b"data");
    // The fid follows its file: opening it reopens the new name.
    let fd = f.client.open(file, libc::O_RDONLY).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(nix::sys::uio::pread(&fd, &mut buf, 0).unwrap(), 4);
    f.client
        .create(root, b"other", libc::O_WRONLY, 0o644, me())
        .unwrap();
    let noreplace = libc::RENAME_NOREPLACE;
    assert_eq!(
        f.client
            .rename(root, b"other", sub, b"moved", noreplace)
            .unwrap_err(),
        Errno::EEXIST
    );
    f.client
        .rename(root, b"other", sub, b"moved", libc::RENAME_EXCHANGE)
        .unwrap();
    assert_eq!(fs::read(f.path("rw/other")).unwrap(), b"data");
    assert_eq!(fs::read(f.path("rw/sub/moved")).unwrap(), b"");
    let fd = f.client.open(file, libc::O_RDONLY).unwrap();
    assert_eq!(nix::sys::uio::pread(&fd, &mut buf, 0).unwrap(), 4);
    let both = libc::RENAME_NOREPLACE | libc::RENAME_EXCHANGE;
    assert_eq!(
        f.client
            .rename(root, b"other", sub, b"x", both)
            .unwrap_err(),
        Errno::EINVAL
    );
}

#[test]
fn gofer_setattr_size_mode_owner_times() {
    let f = fixture("setattr");
    let (file, _) = f.walk("bind0", "file.txt");
    let attr = SetAttr {
        mode: Some(0o604),
        uid: Some(77),
        gid: Some(88),
        size: Some(2),
        atime: Some((1_000_000, 5)),
        mtime: Some((2_000_000, 7)),
    };
    let st = f.client.setattr(file, &attr).unwrap();
    assert_eq!(st.mode & 0o7777, 0o604);
    assert_eq!((st.uid, st.gid, st.size), (77, 88, 2));
    assert_eq!((st.atime, st.mtime), ((1_000_000, 5), (2_000_000, 7)));
    // UTIME_NOW sets the time, UTIME_OMIT (None) leaves it.
    let now = SetAttr {
        mtime: Some((0, libc::UTIME_NOW)),
        ..Default::default()
    };
    let st = f.client.setattr(file, &now).unwrap();
    assert!(st.mtime.0 > 2_000_000);
    assert_eq!(st.atime, (1_000_000, 5));
    // (Reading updates atime under relatime, so only now.)
    assert_eq!(fs::read(f.path("rw/file.txt")).unwrap(), b"da");
    let (sub, _) = f.walk("bind0", "sub");
    let grow = SetAttr {
        size: Some(1),
        ..Default::default()
    };
    assert_eq!(f.client.setattr(sub, &grow).unwrap_err(), Errno::EISDIR);
    f.client.fsync(file).unwrap();
    f.client.fsync(sub).unwrap();
}

#[test]
fn gofer_open_for_writing_truncates_and_appends() {
    let f = fixture("openw");
    let (file, _) = f.walk("bind0", "file.txt");
    let fd = f
        .client
        .open(file, libc::O_WRONLY | libc::O_APPEND)
        .unwrap();
    nix::unistd::write(&fd, b"+more").unwrap();
    assert_eq!(fs::read(f.path("rw/file.txt")).unwrap(), b"data+more");
    let fd = f.client.open(file, libc::O_RDWR | libc::O_TRUNC).unwrap();
    assert_eq!(fs::read(f.path("rw/file.txt")).unwrap(), b"");
    nix::sys::uio::pwrite(&fd, b"x", 0).unwrap();
    assert_eq!(fs::read(f.path("rw/file.txt")).unwrap(), b"x");
}

// ---- read-only roots ----

/// Every mutating request on the directory `dir` (with `file` in it).
fn every_mutation(f: &Fixture, dir: Fid, file: Fid) -> Vec<(&'static str, Errno)> {
    let c = &f.client;
    let attr = SetAttr {
        mode: Some(0o600),
        ..Default::default()
    };
    vec![
        (
            "create",
            c.create(dir, b"n", libc::O_WRONLY, 0o644, ROOT)
                .map(|_| ())
                .unwrap_err(),
        ),
        ("mkdir", c.mkdir(dir, b"n", 0o755, ROOT).unwrap_err()),
        (
            "mknod",
            c.mknod(dir, b"n", libc::S_IFIFO | 0o644, ROOT).unwrap_err(),
        ),
        ("symlink", c.symlink(dir, b"n", b"x", ROOT).unwrap_err()),
        ("link", c.link(dir, b"n", file).unwrap_err()),
        ("unlink", c.unlink(dir, b"n", 0).unwrap_err()),
        ("rename", c.rename(dir, b"a", dir, b"b", 0).unwrap_err()),
        ("setattr", c.setattr(file, &attr).unwrap_err()),
        ("open O_WRONLY", c.open(file, libc::O_WRONLY).unwrap_err()),
        ("open O_RDWR", c.open(file, libc::O_RDWR).unwrap_err()),
        (
            "open O_TRUNC",
            c.open(file, libc::O_RDONLY | libc::O_TRUNC).unwrap_err(),
        ),
    ]
}

#[test]
fn gofer_readonly_roots_refuse_every_change_with_erofs() {
    let f = fixture("ro");
    let (etc, _) = f.walk("/", "etc");
    let (hello, _) = f.client.walk(etc, b"hello.txt").unwrap();
    let (ro, _) = f.walk("bind1", "");
    let (keep, _) = f.client.walk(ro, b"keep.txt").unwrap();
    for (dir, file) in [(etc, hello), (ro, keep)] {
        for (op, e) in every_mutation(&f, dir, file) {
            assert_eq!(e, Errno::EROFS, "{op}");
        }
    }
    assert_eq!(fs::read(f.path("ro/keep.txt")).unwrap(), b"keep");
    assert_eq!(fs::read_dir(f.path("ro")).unwrap().count(), 1);
    assert_eq!(
        f.client.open(etc, libc::O_RDONLY).unwrap_err(),
        Errno::EISDIR
    );
}

// ---- escape attempts ----

#[test]
fn gofer_write_ops_refuse_escaping_names() {
    let f = fixture("wnames");
    let root = f.rw();
    let (file, _) = f.client.walk(root, b"file.txt").unwrap();
    let c = &f.client;
    for bad in [&b".."[..], b".", b"", b"sub/x", b"/x", b"a\0b"] {
        let errs = [
            c.create(root, bad, libc::O_WRONLY, 0o644, ROOT)
                .map(|_| ())
                .unwrap_err(),
            c.mkdir(root, bad, 0o755, ROOT).unwrap_err(),
            c.mknod(root, bad, 0o644, ROOT).unwrap_err(),
            c.symlink(root, bad, b"x", ROOT).unwrap_err(),
            c.link(root, bad, file).unwrap_err(),
            c.unlink(root, bad, 0).unwrap_err(),
            c.rename(root, bad, root, b"y", 0).unwrap_err(),
            c.rename(root, b"file.txt", root, bad, 0).unwrap_err(),
        ];
        for (i, e) in errs.iter().enumerate() {
            assert_eq!(*e, Errno::EINVAL, "{bad:?} op {i}");
        }
    }
    assert!(f.outside_untouched());
    assert!(f.path("rw/file.txt").exists());
}

#[test]
fn gofer_symlinks_out_of_the_root_are_never_followed_by_writes() {
    let f = fixture("wlinks");
    let root = f.rw();
    for link in [&b"out_abs"[..], b"out_rel"] {
        let (fid, st) = f.client.walk(root, link).unwrap();
        assert!(st.is_symlink());
        // Not a directory to create in, not a file to open.
        let r = f.client.create(fid, b"x", libc::O_WRONLY, 0o644, ROOT);
        assert_eq!(r.map(|_| ()).unwrap_err(), Errno::ENOTDIR);
        assert_eq!(
            f.client.mkdir(fid, b"x", 0o755, ROOT).unwrap_err(),
            Errno::ENOTDIR
        );
        assert_eq!(f.client.open(fid, libc::O_RDWR).unwrap_err(), Errno::ENXIO);
        // The name exists (as a link): exclusive creation never follows it.
        let r = f.client.create(root, link, libc::O_WRONLY, 0o644, ROOT);
        assert_eq!(r.map(|_| ()).unwrap_err(), Errno::EEXIST);
    }
    let (secret, _) = f.client.walk(root, b"secret_link").unwrap();
    let chmod = SetAttr {
        mode: Some(0o666),
        ..Default::default()
    };
    assert_eq!(
        f.client.setattr(secret, &chmod).unwrap_err(),
        Errno::EOPNOTSUPP
    );
    let truncate = SetAttr {
        size: Some(0),
        ..Default::default()
    };
    assert_eq!(
        f.client.setattr(secret, &truncate).unwrap_err(),
        Errno::EINVAL
    );
    // chown and times change the link itself.
    let chown = SetAttr {
        uid: Some(55),
        mtime: Some((3, 0)),
        ..Default::default()
    };
    let st = f.client.setattr(secret, &chown).unwrap();
    assert!(st.is_symlink() && st.uid == 55 && st.mtime == (3, 0));
    assert!(f.outside_untouched());
    let secret_meta = fs::metadata(f.path("outside/secret.txt")).unwrap();
    assert_ne!(secret_meta.uid(), 55);
}

#[test]
fn gofer_directory_swapped_for_symlink_after_walk_is_not_followed() {
    let f = fixture("race");
    let root = f.rw();
    let (sub, _) = f.client.walk(root, b"sub").unwrap();
    // Between the walk and the create, the host swaps the directory for a
    // symlink out of the root.
    fs::rename(f.path("rw/sub"), f.path("rw/sub2")).unwrap();
    symlink(f.path("outside"), f.path("rw/sub")).unwrap();
    f.client
        .create(sub, b"x", libc::O_WRONLY, 0o644, ROOT)
        .unwrap();
    f.client.mkdir(sub, b"d", 0o755, ROOT).unwrap();
    f.client.symlink(sub, b"l", b"/", ROOT).unwrap();
    f.client.rename(root, b"file.txt", sub, b"f", 0).unwrap();
    assert!(f.path("rw/sub2/x").is_file());
    assert!(f.path("rw/sub2/d").is_dir());
    assert!(f.path("rw/sub2/f").is_file());
    assert!(f.outside_untouched());
}

#[test]
fn gofer_hard_links_out_of_the_root_are_impossible() {
    let f = fixture("hardlinks");
    let root = f.rw();
    // A fid of another root (the image) cannot be linked in.
    let (hello, _) = f.walk("/", "etc/hello.txt");
    assert_eq!(f.client.link(root, b"h", hello).unwrap_err(), Errno::EXDEV);
    let (keep, _) = f.walk("bind1", "keep.txt");
    assert_eq!(f.client.link(root, b"h", keep).unwrap_err(), Errno::EXDEV);
    // A symlink to a file outside is linked as the symlink, never its target.
    let (secret, _) = f.client.walk(root, b"secret_link").unwrap();
    let (h, st) = f.client.link(root, b"h", secret).unwrap();
    assert!(st.is_symlink());
    assert_eq!(f.client.open(h, libc::O_RDONLY).unwrap_err(), Errno::ENXIO);
    let outside = fs::metadata(f.path("outside/secret.txt")).unwrap();
    assert_eq!(outside.nlink(), 1);
    // Directories cannot be hard-linked at all.
    let (sub, _) = f.client.walk(root, b"sub").unwrap();
    assert_eq!(f.client.link(root, b"d", sub).unwrap_err(), Errno::EPERM);
}

#[test]
fn gofer_rename_across_roots_is_exdev() {
    let f = fixture("xroot");
    let rw = f.rw();
    let (ro, _) = f.walk("bind1", "");
    let (image, _) = f.client.attach().unwrap();
    // A read-only side is EROFS first; two writable roots would be EXDEV.
    assert_eq!(
        f.client.rename(rw, b"file.txt", ro, b"x", 0).unwrap_err(),
        Errno::EROFS
    );
    assert_eq!(
        f.client.rename(image, b"etc", rw, b"x", 0).unwrap_err(),
        Errno::EROFS
    );
    assert!(f.path("rw/file.txt").exists());
}

#[test]
fn gofer_rename_between_two_writable_roots_is_exdev() {
    let dir = std::env::temp_dir().join(format!("sandboxd-gofer-tworw-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("a")).unwrap();
    fs::create_dir_all(dir.join("b")).unwrap();
    fs::write(dir.join("a/f"), b"f").unwrap();
    let roots = ["a", "b"]
        .iter()
        .enumerate()
        .map(|(i, n)| Root {
            name: format!("bind{i}"),
            fd: root_dir(&dir.join(n)),
            readonly: false,
        })
        .collect();
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .unwrap();
    std::thread::spawn(move || serve(roots, b));
    let c = GoferClient::new(a);
    let (ra, _) = c.attach_root("bind0").unwrap();
    let (rb, _) = c.attach_root("bind1").unwrap();
    let (file, _) = c.walk(ra, b"f").unwrap();
    assert_eq!(c.rename(ra, b"f", rb, b"f", 0).unwrap_err(), Errno::EXDEV);
    assert_eq!(c.link(rb, b"f", file).unwrap_err(), Errno::EXDEV);
    assert!(dir.join("a/f").exists() && !dir.join("b/f").exists());
    let _ = fs::remove_dir_all(&dir);
}
