//! Tests of the overlay and the mount table against a real gofer on a
//! thread serving a temporary tree (read-only, as the image is).

use std::fs;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

use super::path::{resolve, resolve_parent, Follow};
use super::tmpfs::TmpInode;
use super::{GoferFs, Node};
use crate::abi::Errno;
use crate::gofer::{serve, GoferClient};
use crate::sentry::mm::memory::GuestMemory;

struct Fixture {
    dir: PathBuf,
    fs: GoferFs,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// An image with /etc/{a,b}, /usr/bin/tool (3 MiB), /usr/share/doc/x and
/// a symlink /bin -> usr/bin, under a fresh overlay with /tmp mounted.
fn fixture(name: &str) -> Fixture {
    let dir = std::env::temp_dir().join(format!("sandboxd-ovl-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("etc")).unwrap();
    fs::create_dir_all(dir.join("usr/bin")).unwrap();
    fs::create_dir_all(dir.join("usr/share/doc")).unwrap();
    fs::write(dir.join("etc/a"), b"alpha\n").unwrap();
    fs::write(dir.join("etc/b"), b"beta\n").unwrap();
    fs::write(dir.join("usr/share/doc/x"), b"x\n").unwrap();
    let big: Vec<u8> = (0..3 << 20).map(|i: u32| (i % 251) as u8).collect();
    fs::write(dir.join("usr/bin/tool"), &big).unwrap();
    std::os::unix::fs::symlink("usr/bin", dir.join("bin")).unwrap();
    let root: OwnedFd = fs::File::open(&dir).unwrap().into();
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .unwrap();
    let image = crate::gofer::Root {
        name: crate::proto::IMAGE_ROOT.into(),
        fd: root,
        readonly: true,
    };
    std::thread::spawn(move || serve(vec![image], b));
    let mem = Arc::new(GuestMemory::new(64 << 20, 64 << 20).unwrap());
    let fs = GoferFs::attach(GoferClient::new(a), mem, 32 << 20).unwrap();
    fs.mount_standard(1 << 20).unwrap();
    Fixture { dir, fs }
}

impl Fixture {
    fn get(&self, path: &str) -> Result<Arc<Node>, Errno> {
        let root = self.fs.root().clone();
        resolve(&self.fs, &root, &root, path.as_bytes(), Follow::No)
    }

    fn names(&self, path: &str) -> Vec<String> {
        let node = self.get(path).unwrap();
        let mut names: Vec<String> = self
            .fs
            .readdir(&node)
            .unwrap()
            .into_iter()
            .map(|e| String::from_utf8(e.2).unwrap())
            .collect();
        names.sort();
        names
    }

    fn read(&self, path: &str) -> Vec<u8> {
        let node = self.get(path).unwrap();
        let data = node.upper().and_then(|u| u.data().cloned());
        match data {
            Some(d) => {
                let mut buf = vec![0u8; d.size() as usize];
                d.read(0, &mut buf);
                buf
            }
            None => {
                let fd = self.fs.open(&node, libc::O_RDONLY).unwrap();
                let mut buf = vec![];
                std::io::Read::read_to_end(&mut fs::File::from(fd), &mut buf).unwrap();
                buf
            }
        }
    }

    fn new_file(&self, path: &str, text: &[u8]) -> Arc<Node> {
        let root = self.fs.root().clone();
        let (dir, name) = resolve_parent(&self.fs, &root, &root, path.as_bytes()).unwrap();
        let inode = TmpInode::new_file(0o644, 0, 0, &self.fs.mem, dir.mount.quota);
        inode.data().unwrap().write(0, text).unwrap();
        self.fs.create(&dir, &name, inode).unwrap()
    }
}

#[test]
fn overlay_copy_up_keeps_data_metadata_and_ino_and_image_unchanged() {
    let f = fixture("copyup");
    let tool = f.get("/usr/bin/tool").unwrap();
    let before = tool.current_stat();
    let up = f.fs.copy_up(&tool, true).unwrap();
    up.data().unwrap().write(0, b"XY").unwrap();
    let after = tool.current_stat();
    assert_eq!(
        (after.ino, after.mode, after.size),
        (before.ino, before.mode, 3 << 20)
    );
    assert_eq!(&f.read("/usr/bin/tool")[..4], &[b'X', b'Y', 2, 3]);
    let host = fs::read(f.dir.join("usr/bin/tool")).unwrap();
    assert_eq!(&host[..2], &[0, 1], "the image file must not change");
}

#[test]
fn overlay_unlink_of_image_file_leaves_a_whiteout() {
    let f = fixture("whiteout");
    let etc = f.get("/etc").unwrap();
    let a = f.get("/etc/a").unwrap();
    f.fs.remove(&etc, b"a", &a).unwrap();
    assert_eq!(f.get("/etc/a").err(), Some(Errno::ENOENT));
    assert_eq!(f.names("/etc"), ["b"]);
    assert!(f.dir.join("etc/a").exists());
    // A new file over the whiteout is a new file.
    f.new_file("/etc/a", b"new\n");
    assert_eq!(f.read("/etc/a"), b"new\n");
    assert_eq!(f.names("/etc"), ["a", "b"]);
}

#[test]
fn overlay_readdir_merges_without_duplicates() {
    let f = fixture("merge");
    f.new_file("/etc/c", b"c");
    let b = f.get("/etc/b").unwrap();
    f.fs.copy_up(&b, true).unwrap();
    assert_eq!(f.names("/etc"), ["a", "b", "c"]);
    assert_eq!(f.names("/"), ["bin", "dev", "etc", "proc", "tmp", "usr"]);
}

#[test]
fn overlay_rmdir_then_mkdir_is_opaque() {
    let f = fixture("opaque");
    let doc = f.get("/usr/share/doc").unwrap();
    let x = f.get("/usr/share/doc/x").unwrap();
    assert!(!f.fs.is_empty(&doc).unwrap());
    f.fs.remove(&doc, b"x", &x).unwrap();
    assert!(f.fs.is_empty(&doc).unwrap());
    let share = f.get("/usr/share").unwrap();
    f.fs.remove(&share, b"doc", &doc).unwrap();
    f.fs.create(&share, b"doc", TmpInode::new_dir(0o755, 0, 0))
        .unwrap();
    assert!(f.names("/usr/share/doc").is_empty());
    assert_eq!(f.get("/usr/share/doc/x").err(), Some(Errno::ENOENT));
}

#[test]
fn overlay_rename_of_image_dir_takes_its_entries_along() {
    let f = fixture("rename");
    let usr = f.get("/usr").unwrap();
    let share = f.get("/usr/share").unwrap();
    f.fs.rename((&usr, b"share"), (&usr, b"shared"), &share, None)
        .unwrap();
    assert_eq!(f.names("/usr"), ["bin", "shared"]);
    assert_eq!(f.read("/usr/shared/doc/x"), b"x\n");
    assert_eq!(f.get("/usr/share").err(), Some(Errno::ENOENT));
    assert_eq!(share.path(), b"/usr/shared");
}

#[test]
fn overlay_hard_link_shares_the_inode_and_counts_links() {
    let f = fixture("link");
    let a = f.get("/etc/a").unwrap();
    let etc = f.get("/etc").unwrap();
    let l = f.fs.link(&a, &etc, b"a2").unwrap();
    assert_eq!(l.current_stat().ino, a.current_stat().ino);
    assert_eq!(a.current_stat().nlink, 2);
    a.upper().unwrap().data().unwrap().write(0, b"A").unwrap();
    assert_eq!(f.read("/etc/a2"), b"Alpha\n");
    f.fs.remove(&etc, b"a", &a).unwrap();
    assert_eq!(l.current_stat().nlink, 1);
}

#[test]
fn overlay_create_over_an_existing_image_name_is_eexist() {
    let f = fixture("eexist");
    let etc = f.get("/etc").unwrap();
    let r = f.fs.create(&etc, b"a", TmpInode::new_dir(0o755, 0, 0));
    assert_eq!(r.err(), Some(Errno::EEXIST));
}

#[test]
fn mount_tmpfs_is_its_own_device_and_enospc_past_its_size() {
    let f = fixture("tmpfs");
    f.fs.mount_tmpfs(b"/scratch/deep", 64 << 10).unwrap();
    let m = f.get("/scratch/deep").unwrap();
    assert!(m.is_mount_root());
    assert_ne!(m.current_stat().dev, f.fs.root().current_stat().dev);
    assert_eq!(m.parent().unwrap().path(), b"/scratch");
    let file = f.new_file("/scratch/deep/f", b"");
    let data = file.upper().unwrap().data().unwrap().clone();
    assert_eq!(data.write(0, &vec![1u8; 64 << 10]), Ok(64 << 10));
    assert_eq!(data.write(64 << 10, b"x"), Err(Errno::ENOSPC));
    let (st, _) = f.fs.statfs(&m).unwrap();
    assert_eq!((st.kind, st.blocks, st.bfree), (0x0102_1994, 16, 0));
}

#[test]
fn mount_table_lists_every_mount_in_proc_mounts() {
    let f = fixture("mounts");
    f.fs.mount_tmpfs(b"/scratch", 1 << 20).unwrap();
    let text = String::from_utf8(f.fs.mounts_text()).unwrap();
    let targets: Vec<&str> = text.lines().map(|l| l.split(' ').nth(1).unwrap()).collect();
    assert_eq!(
        targets,
        ["/", "/dev", "/proc", "/dev/pts", "/tmp", "/dev/shm", "/scratch"]
    );
    assert!(text.contains("devpts /dev/pts devpts rw,nosuid,noexec"));
    assert!(text.starts_with("overlay / overlay rw"));
    assert!(text.contains("tmpfs /scratch tmpfs rw,nosuid,nodev,relatime,size=1024k"));
    let info = String::from_utf8(f.fs.mountinfo_text()).unwrap();
    assert_eq!(info.lines().count(), 7);
}

#[test]
fn default_etc_files_are_made_only_where_missing() {
    let f = fixture("etc");
    f.new_file("/etc/hosts", b"mine\n");
    f.fs.default_etc("pod").unwrap();
    assert_eq!(f.read("/etc/hosts"), b"mine\n");
    assert_eq!(f.read("/etc/hostname"), b"pod\n");
    assert!(String::from_utf8(f.read("/etc/resolv.conf"))
        .unwrap()
        .starts_with('#'));
}

#[test]
fn mount_dotdot_at_a_mount_root_goes_to_the_parent_mount() {
    let f = fixture("dotdot");
    let root = f.fs.root().clone();
    let tmp = f.get("/tmp").unwrap();
    let up = resolve(&f.fs, &root, &tmp, b"..", Follow::Yes).unwrap();
    assert!(Arc::ptr_eq(&up, &root));
    let etc = resolve(&f.fs, &root, &tmp, b"../bin/../../etc", Follow::Yes).unwrap();
    assert_eq!(etc.path(), b"/etc");
}
