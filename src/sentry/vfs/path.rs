//! Path resolution: walks a path from the process's root or working
//! directory, one component at a time, handling `.`, `..` (never above the
//! root), and symlinks (resolved here in the sentry, inside the guest's view;
//! never by the host).

use std::sync::Arc;

use super::dev::Synth;
use super::gofer::GoferFs;
use super::node::Node;
use crate::abi::{Errno, SysResult};

/// Most symlinks followed in one resolution (Linux: 40).
pub const MAX_SYMLINKS: u32 = 40;
/// Longest path accepted (PATH_MAX, including the NUL).
pub const MAX_PATH: usize = 4096;

/// Whether a symlink in the last component is followed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    Yes,
    No,
}

/// Restrictions on a resolution (openat2's RESOLVE_* flags).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rules {
    /// RESOLVE_NO_XDEV: never cross a mount point (EXDEV).
    pub no_xdev: bool,
    /// RESOLVE_NO_MAGICLINKS: no /proc/self/fd/N-style links (ELOOP).
    pub no_magiclinks: bool,
    /// RESOLVE_NO_SYMLINKS: no symlinks at all (ELOOP).
    pub no_symlinks: bool,
    /// RESOLVE_BENEATH: never leave the start directory (EXDEV): no
    /// absolute paths or symlinks, no `..` above it.
    pub beneath: bool,
    /// RESOLVE_IN_ROOT: the start directory is the root (as chroot).
    pub in_root: bool,
    /// RESOLVE_CACHED: only from the dentry cache (EAGAIN otherwise).
    pub cached: bool,
}

impl Rules {
    /// The rules of openat2's `resolve` field; EINVAL for unknown bits
    /// and for BENEATH with IN_ROOT.
    pub fn from_resolve(bits: u64) -> SysResult<Rules> {
        if bits & !0x3f != 0 || bits & 0x18 == 0x18 {
            return Err(Errno::EINVAL);
        }
        Ok(Rules {
            no_xdev: bits & 0x01 != 0,
            no_magiclinks: bits & 0x02 != 0,
            no_symlinks: bits & 0x04 != 0,
            beneath: bits & 0x08 != 0,
            in_root: bits & 0x10 != 0,
            cached: bits & 0x20 != 0,
        })
    }
}

/// Resolves `path` against `root` (for absolute paths and `..` clamping)
/// and `cwd` (for relative ones).
pub fn resolve(
    fs: &GoferFs,
    root: &Arc<Node>,
    cwd: &Arc<Node>,
    path: &[u8],
    follow: Follow,
) -> SysResult<Arc<Node>> {
    resolve_with(fs, root, cwd, path, follow, Rules::default())
}

/// [`resolve`] under `rules`.
pub fn resolve_with(
    fs: &GoferFs,
    root: &Arc<Node>,
    cwd: &Arc<Node>,
    path: &[u8],
    follow: Follow,
    rules: Rules,
) -> SysResult<Arc<Node>> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    if path.len() >= MAX_PATH {
        return Err(Errno::ENAMETOOLONG);
    }
    let mut budget = MAX_SYMLINKS;
    let walker = Walker { fs, root, rules };
    walker.walk(cwd, path, follow, &mut budget)
}

struct Walker<'a> {
    fs: &'a GoferFs,
    root: &'a Arc<Node>,
    rules: Rules,
}

impl Walker<'_> {
    fn walk(
        &self,
        start: &Arc<Node>,
        path: &[u8],
        follow: Follow,
        budget: &mut u32,
    ) -> SysResult<Arc<Node>> {
        let (fs, root, rules) = (self.fs, self.root, self.rules);
        if rules.beneath && path.starts_with(b"/") {
            return Err(Errno::EXDEV);
        }
        let mut cur = if path.starts_with(b"/") {
            root.clone()
        } else {
            start.clone()
        };
        let trailing_slash = path.ends_with(b"/");
        let comps: Vec<&[u8]> = path
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty())
            .collect();
        for (i, comp) in comps.iter().enumerate() {
            let last = i + 1 == comps.len();
            if !cur.stat.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            match *comp {
                b"." => continue,
                b".." => {
                    if Arc::ptr_eq(&cur, root) {
                        if rules.beneath {
                            return Err(Errno::EXDEV);
                        }
                        continue;
                    }
                    let up = fs.parent_of(&cur).unwrap_or_else(|| cur.clone());
                    if rules.no_xdev && !Arc::ptr_eq(&up.mount, &cur.mount) {
                        return Err(Errno::EXDEV);
                    }
                    cur = up;
                    continue;
                }
                name if name.len() > 255 => return Err(Errno::ENAMETOOLONG),
                _ => {}
            }
            let next = fs.lookup(&cur, comp)?;
            if rules.no_xdev && !Arc::ptr_eq(&next.mount, &cur.mount) {
                return Err(Errno::EXDEV);
            }
            // /dev/fd/N is a magic link: following it ends at the node itself,
            // which opens the process's descriptor N.
            let magic = match next.synth {
                Some(Synth::Fd(_)) => true,
                Some(Synth::Proc(p)) => super::proc::is_magic(p),
                _ => false,
            };
            let follows = !last || follow == Follow::Yes || trailing_slash;
            if magic && follows && rules.no_magiclinks {
                return Err(Errno::ELOOP);
            }
            if !magic && next.stat.is_symlink() && follows {
                if *budget == 0 || rules.no_symlinks {
                    return Err(Errno::ELOOP);
                }
                *budget -= 1;
                let target = fs.readlink(&next)?;
                cur = self.walk(&cur, &target, Follow::Yes, budget)?;
            } else if let (true, Some(Synth::Proc(p))) = (magic && follows, next.synth) {
                // /proc/[pid]/{cwd,root,exe,fd/N} end at what they stand
                // for; a descriptor without a dentry (a pipe) at the link.
                cur = super::proc::follow(p)?.unwrap_or(next);
            } else {
                cur = next;
            }
        }
        if trailing_slash && !cur.stat.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        Ok(cur)
    }
}

/// Resolves all but the last component of `path`: returns the directory
/// and the last name (for creating, removing and renaming). The name is
/// never empty, "." or "..".
pub fn resolve_parent(
    fs: &GoferFs,
    root: &Arc<Node>,
    cwd: &Arc<Node>,
    path: &[u8],
) -> SysResult<(Arc<Node>, Vec<u8>)> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    if path.len() >= MAX_PATH {
        return Err(Errno::ENAMETOOLONG);
    }
    let trimmed = {
        let mut end = path.len();
        while end > 1 && path[end - 1] == b'/' {
            end -= 1;
        }
        &path[..end]
    };
    let (dir, name) = match trimmed.iter().rposition(|&b| b == b'/') {
        Some(i) => (
            if i == 0 { &b"/"[..] } else { &trimmed[..i] },
            &trimmed[i + 1..],
        ),
        None => (&b"."[..], trimmed),
    };
    if name.is_empty() || name == b"." || name == b".." {
        return Err(Errno::EINVAL);
    }
    if name.len() > 255 {
        return Err(Errno::ENAMETOOLONG);
    }
    let parent = resolve(fs, root, cwd, dir, Follow::Yes)?;
    if !parent.stat.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    Ok((parent, name.to_vec()))
}
