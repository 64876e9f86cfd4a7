//! Extended attribute syscalls: the get, set, list and remove families,
//! each by path, by path without following a final symlink (l*) and by
//! descriptor (f*). Files in memory (tmpfs mounts, memory volumes, the
//! root overlay) keep `user.*`, `trusted.*` and `security.*` attributes
//! in their inode, as Linux's tmpfs does; an image file has none until it
//! is copied up, which a set does first.
//!
//! What is not kept: POSIX ACLs (`system.*`) and file capabilities
//! (setting `security.capability`) answer EOPNOTSUPP, as on a file system
//! without them; files of host bind mounts answer EOPNOTSUPP (the gofer
//! protocol has no xattr operations), and so do /proc, /sys and /dev.
//!
//! The checks follow Linux's fs/xattr.c in its order: the arguments
//! (flags, name, size) before the path walk, then the read-only mount,
//! then `xattr_permission` (the namespace's rules, then the file's mode),
//! then the namespace itself.

use std::sync::Arc;

use super::file::{lookup_at, path_arg, permitted, AT_FDCWD};
use crate::abi::types::Stat;
use crate::abi::{Errno, SysResult};
use crate::sentry::kernel::Task;
use crate::sentry::vfs::inotify;
use crate::sentry::vfs::{Follow, Node};

const XATTR_CREATE: u64 = 1;
const XATTR_REPLACE: u64 = 2;
/// Longest name (XATTR_NAME_MAX).
const NAME_MAX: usize = 255;
/// Largest value (XATTR_SIZE_MAX), and largest list (XATTR_LIST_MAX).
const SIZE_MAX: usize = 65536;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_SETFCAP: u32 = 31;
/// The file capabilities attribute, which exec here does not honour.
const CAPS_NAME: &[u8] = b"security.capability";

/// The namespace of an attribute name, from its prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Space {
    User,
    Trusted,
    Security,
    System,
    /// No known prefix.
    Unknown,
}

const PREFIXES: [(&[u8], Space); 4] = [
    (b"user.", Space::User),
    (b"trusted.", Space::Trusted),
    (b"security.", Space::Security),
    (b"system.", Space::System),
];

fn space(name: &[u8]) -> Space {
    PREFIXES
        .iter()
        .find(|(p, _)| name.starts_with(p))
        .map_or(Space::Unknown, |&(_, s)| s)
}

/// Linux's `xattr_resolve_name` for a memory inode: which names it keeps
/// (EOPNOTSUPP for the others; EINVAL for a bare prefix such as "user.").
fn kept(name: &[u8]) -> SysResult<()> {
    match space(name) {
        Space::Unknown | Space::System => Err(Errno::EOPNOTSUPP),
        _ if PREFIXES.iter().any(|(p, _)| name == *p) => Err(Errno::EINVAL),
        _ => Ok(()),
    }
}

/// The flags of a set: CREATE and REPLACE, others EINVAL.
fn set_flags(flags: u64) -> SysResult<(bool, bool)> {
    if flags & !(XATTR_CREATE | XATTR_REPLACE) != 0 {
        return Err(Errno::EINVAL);
    }
    Ok((flags & XATTR_CREATE != 0, flags & XATTR_REPLACE != 0))
}

/// A name as read from the guest: ERANGE when empty or too long.
fn check_name(name: SysResult<Vec<u8>>) -> SysResult<Vec<u8>> {
    match name {
        Ok(n) if n.is_empty() || n.len() > NAME_MAX => Err(Errno::ERANGE),
        Err(Errno::ENAMETOOLONG) => Err(Errno::ERANGE),
        other => other,
    }
}

/// Joins names into a listxattr buffer: each followed by a NUL.
fn name_list(names: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for n in names {
        out.extend_from_slice(n);
        out.push(0);
    }
    out
}

/// The answer for a buffer of `size` bytes (clamped to `SIZE_MAX`, as
/// Linux does) holding `data`: its length when `size` is 0, ERANGE when
/// it does not fit (E2BIG if even the largest buffer could not hold it).
fn fits(data: &[u8], size: u64) -> SysResult<usize> {
    let size = size.min(SIZE_MAX as u64) as usize;
    match size {
        0 => Ok(data.len()),
        s if data.len() > s && s == SIZE_MAX => Err(Errno::E2BIG),
        s if data.len() > s => Err(Errno::ERANGE),
        _ => Ok(data.len()),
    }
}

/// How a call names its file.
#[derive(Clone, Copy)]
enum Target {
    Path(u64, Follow),
    Fd(i32),
}

/// The file an xattr call works on: a dentry, or an open file without
/// one (a pipe, a socket), known only by its metadata.
enum Subject {
    Node(Arc<Node>),
    Nodeless(Stat),
}

impl Subject {
    fn stat(&self) -> Stat {
        match self {
            Subject::Node(n) => n.current_stat(),
            Subject::Nodeless(st) => *st,
        }
    }

    /// The dentry, when the file's attributes may be kept here: EOPNOTSUPP
    /// for nodeless files, bind mounts and the sentry's own files.
    fn keeper(&self) -> SysResult<&Arc<Node>> {
        match self {
            Subject::Node(n) if !n.mount.is_bind() && n.synth.is_none() => Ok(n),
            _ => Err(Errno::EOPNOTSUPP),
        }
    }
}

/// The file `target` names (an O_PATH descriptor is EBADF, as Linux).
fn subject(t: &mut Task, target: Target) -> SysResult<Subject> {
    match target {
        Target::Path(addr, follow) => {
            let path = path_arg(t, addr)?;
            Ok(Subject::Node(lookup_at(t, AT_FDCWD, &path, follow)?))
        }
        Target::Fd(fd) => {
            let file = t.fds.get(fd)?;
            if file.is_path() {
                return Err(Errno::EBADF);
            }
            match file.ops.node() {
                Some(n) => Ok(Subject::Node(n.clone())),
                None => Ok(Subject::Nodeless(file.ops.stat()?)),
            }
        }
    }
}

/// Reads the name argument at `addr`.
fn name_arg(t: &mut Task, addr: u64) -> SysResult<Vec<u8>> {
    check_name(t.mm.read_cstr(addr, NAME_MAX + 1))
}

/// Linux's `xattr_permission`: the namespace's rules, then the file's
/// mode (read for a get, write for a change).
fn permission(t: &Task, st: &Stat, name: &[u8], write: bool) -> SysResult<()> {
    let denied = if write { Errno::EPERM } else { Errno::ENODATA };
    match space(name) {
        Space::Security | Space::System => return Ok(()),
        Space::Trusted if !t.creds.has_cap(CAP_SYS_ADMIN) => return Err(denied),
        Space::Trusted => return Ok(()),
        Space::User if !st.is_reg() && !st.is_dir() => return Err(denied),
        Space::User if st.is_dir() && st.mode & 0o1000 != 0 && write => {
            let owner = st.uid == t.creds.euid || t.creds.has_cap(super::fs::CAP_FOWNER);
            if !owner {
                return Err(Errno::EPERM);
            }
        }
        _ => {}
    }
    if !permitted(t, st, if write { 2 } else { 4 }) {
        return Err(Errno::EACCES);
    }
    Ok(())
}

/// The security hook of a change (commoncap): `security.*` needs
/// CAP_SYS_ADMIN, file capabilities CAP_SETFCAP.
fn security_change(t: &Task, name: &[u8]) -> SysResult<()> {
    let cap = match name {
        CAPS_NAME => CAP_SETFCAP,
        n if space(n) == Space::Security => CAP_SYS_ADMIN,
        _ => return Ok(()),
    };
    if !t.creds.has_cap(cap) {
        return Err(Errno::EPERM);
    }
    Ok(())
}

/// The checks every change makes, in Linux's order, on a file that may
/// keep attributes; returns its dentry.
fn changeable<'a>(t: &Task, subject: &'a Subject, name: &[u8]) -> SysResult<&'a Arc<Node>> {
    if let Subject::Node(n) = subject {
        if n.synth.is_none() && !n.mount.writable() {
            return Err(Errno::EROFS);
        }
    }
    permission(t, &subject.stat(), name, true)?;
    security_change(t, name)?;
    let node = subject.keeper()?;
    kept(name)?;
    Ok(node)
}

/// Sets or removes attribute `name` of `node`, copying an image file up
/// first; a change is an IN_ATTRIB event.
fn change(
    t: &Task,
    node: &Arc<Node>,
    name: &[u8],
    value: Option<&[u8]>,
    flags: (bool, bool),
) -> SysResult<u64> {
    let inode = match node.upper() {
        Some(up) => up.clone(),
        // Nothing to remove from an image file: no copy-up for that.
        None if value.is_none() => return Err(Errno::ENODATA),
        None => t.fs.copy_up(node, true)?,
    };
    inode.set_xattr(name, value, flags, node.mount.quota)?;
    inotify::on_file(node, inotify::IN_ATTRIB);
    Ok(0)
}

/// setxattr(2) and its l/f forms.
fn set(t: &mut Task, target: Target, a: [u64; 6]) -> SysResult<u64> {
    let flags = set_flags(a[4])?;
    let name = name_arg(t, a[1])?;
    let size = a[3] as usize;
    if size > SIZE_MAX {
        return Err(Errno::E2BIG);
    }
    let mut value = vec![0u8; size];
    t.mm.copy_in(a[2], &mut value)?;
    let subject = subject(t, target)?;
    let node = changeable(t, &subject, &name)?;
    if name == CAPS_NAME {
        // Exec does not apply file capabilities here: not kept.
        return Err(Errno::EOPNOTSUPP);
    }
    change(t, node, &name, Some(&value), flags)
}

/// removexattr(2) and its l/f forms.
fn remove(t: &mut Task, target: Target, a: [u64; 6]) -> SysResult<u64> {
    let name = name_arg(t, a[1])?;
    let subject = subject(t, target)?;
    let node = changeable(t, &subject, &name)?;
    change(t, node, &name, None, (false, true))
}

/// getxattr(2) and its l/f forms.
fn get(t: &mut Task, target: Target, a: [u64; 6]) -> SysResult<u64> {
    let name = name_arg(t, a[1])?;
    let subject = subject(t, target)?;
    permission(t, &subject.stat(), &name, false)?;
    let node = subject.keeper()?;
    kept(&name)?;
    let value = node.upper().ok_or(Errno::ENODATA)?.xattr(&name)?;
    let n = fits(&value, a[3])?;
    if a[3] != 0 {
        t.mm.copy_out(a[2], &value)?;
    }
    Ok(n as u64)
}

/// listxattr(2) and its l/f forms: `trusted.*` names only for
/// CAP_SYS_ADMIN. No permission on the file is needed.
fn list(t: &mut Task, target: Target, a: [u64; 6]) -> SysResult<u64> {
    let subject = subject(t, target)?;
    let names = match &subject {
        Subject::Node(n) if n.mount.is_bind() => return Err(Errno::EOPNOTSUPP),
        Subject::Node(n) => n.upper().map(|up| up.xattr_names()).unwrap_or_default(),
        Subject::Nodeless(_) => vec![],
    };
    let trusted = t.creds.has_cap(CAP_SYS_ADMIN);
    let names: Vec<_> = names
        .into_iter()
        .filter(|n| trusted || space(n) != Space::Trusted)
        .collect();
    let data = name_list(&names);
    let n = fits(&data, a[2])?;
    if a[2] != 0 {
        t.mm.copy_out(a[1], &data)?;
    }
    Ok(n as u64)
}

/// Implements setxattr(2).
pub fn sys_setxattr(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    set(t, Target::Path(a[0], Follow::Yes), a)
}

/// Implements lsetxattr(2).
pub fn sys_lsetxattr(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    set(t, Target::Path(a[0], Follow::No), a)
}

/// Implements fsetxattr(2).
pub fn sys_fsetxattr(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    set(t, Target::Fd(a[0] as i32), a)
}

/// Implements getxattr(2).
pub fn sys_getxattr(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    get(t, Target::Path(a[0], Follow::Yes), a)
}

/// Implements lgetxattr(2).
pub fn sys_lgetxattr(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    get(t, Target::Path(a[0], Follow::No), a)
}

/// Implements fgetxattr(2).
pub fn sys_fgetxattr(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    get(t, Target::Fd(a[0] as i32), a)
}

/// Implements listxattr(2).
pub fn sys_listxattr(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    list(t, Target::Path(a[0], Follow::Yes), a)
}

/// Implements llistxattr(2).
pub fn sys_llistxattr(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    list(t, Target::Path(a[0], Follow::No), a)
}

/// Implements flistxattr(2).
pub fn sys_flistxattr(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    list(t, Target::Fd(a[0] as i32), a)
}

/// Implements removexattr(2).
pub fn sys_removexattr(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    remove(t, Target::Path(a[0], Follow::Yes), a)
}

/// Implements lremovexattr(2).
pub fn sys_lremovexattr(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    remove(t, Target::Path(a[0], Follow::No), a)
}

/// Implements fremovexattr(2).
pub fn sys_fremovexattr(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    remove(t, Target::Fd(a[0] as i32), a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_known_namespaces_ok() {
        for n in [&b"user.a"[..], b"trusted.b", b"security.c"] {
            assert_eq!(kept(n), Ok(()));
        }
    }

    #[test]
    fn kept_unknown_or_system_namespace_is_eopnotsupp() {
        for n in [
            &b"foo.bar"[..],
            b"user",
            b"system.posix_acl_access",
            b"USER.a",
        ] {
            assert_eq!(kept(n), Err(Errno::EOPNOTSUPP), "{n:?}");
        }
    }

    #[test]
    fn kept_bare_prefix_is_einval() {
        for n in [&b"user."[..], b"trusted.", b"security."] {
            assert_eq!(kept(n), Err(Errno::EINVAL));
        }
    }

    #[test]
    fn set_flags_create_replace_and_others_einval() {
        assert_eq!(set_flags(0), Ok((false, false)));
        assert_eq!(set_flags(1), Ok((true, false)));
        assert_eq!(set_flags(2), Ok((false, true)));
        assert_eq!(set_flags(3), Ok((true, true)));
        assert_eq!(set_flags(4), Err(Errno::EINVAL));
        assert_eq!(set_flags(1 << 32), Err(Errno::EINVAL));
    }

    #[test]
    fn check_name_empty_or_long_is_erange() {
        assert_eq!(check_name(Ok(vec![])), Err(Errno::ERANGE));
        assert_eq!(check_name(Ok(vec![b'a'; 256])), Err(Errno::ERANGE));
        assert_eq!(check_name(Err(Errno::ENAMETOOLONG)), Err(Errno::ERANGE));
        assert_eq!(check_name(Err(Errno::EFAULT)), Err(Errno::EFAULT));
        assert_eq!(check_name(Ok(vec![b'a'; 255])).map(|n| n.len()), Ok(255));
    }

    #[test]
    fn fits_size_zero_asks_for_length() {
        assert_eq!(fits(b"abc", 0), Ok(3));
        assert_eq!(fits(b"abc", 3), Ok(3));
        assert_eq!(fits(b"abc", 2), Err(Errno::ERANGE));
        assert_eq!(fits(&[0; 10], u64::MAX), Ok(10));
    }

    #[test]
    fn fits_past_the_largest_buffer_is_e2big() {
        let big = vec![0u8; SIZE_MAX + 1];
        assert_eq!(fits(&big, SIZE_MAX as u64), Err(Errno::E2BIG));
        assert_eq!(fits(&big, 100), Err(Errno::ERANGE));
    }

    #[test]
    fn name_list_nul_separates() {
        let names = vec![b"user.a".to_vec(), b"user.bc".to_vec()];
        assert_eq!(name_list(&names), b"user.a\0user.bc\0");
        assert_eq!(name_list(&[]), b"");
    }
}
