//! Path resolution: walks a path from the process's root or working
//! directory, one component at a time, handling `.`, `..` (never above the
//! root), and symlinks (resolved here in the sentry, inside the guest's view;
//! never by the host).

use std::sync::Arc;

use super::dev::Synth;
use super::{GoferFs, Node};
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

/// Resolves `path` against `root` (for absolute paths and `..` clamping)
/// and `cwd` (for relative ones).
pub fn resolve(
    fs: &GoferFs,
    root: &Arc<Node>,
    cwd: &Arc<Node>,
    path: &[u8],
    follow: Follow,
) -> SysResult<Arc<Node>> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    if path.len() >= MAX_PATH {
        return Err(Errno::ENAMETOOLONG);
    }
    let mut budget = MAX_SYMLINKS;
    walk(fs, root, cwd, path, follow, &mut budget)
}

fn walk(
    fs: &GoferFs,
    root: &Arc<Node>,
    start: &Arc<Node>,
    path: &[u8],
    follow: Follow,
    budget: &mut u32,
) -> SysResult<Arc<Node>> {
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
                if !Arc::ptr_eq(&cur, root) {
                    cur = cur.parent().unwrap_or(cur);
                }
                continue;
            }
            name if name.len() > 255 => return Err(Errno::ENAMETOOLONG),
            _ => {}
        }
        let next = fs.lookup(&cur, comp)?;
        // /dev/fd/N is a magic link: following it ends at the node itself,
        // which opens the process's descriptor N.
        let magic = matches!(
            next.synth,
            Some(Synth::Fd(_) | Synth::ProcExe | Synth::ProcCwd)
        );
        if !magic && next.stat.is_symlink() && (!last || follow == Follow::Yes || trailing_slash) {
            if *budget == 0 {
                return Err(Errno::ELOOP);
            }
            *budget -= 1;
            let target = fs.readlink(&next)?;
            cur = walk(fs, root, &cur, &target, Follow::Yes, budget)?;
        } else {
            cur = next;
        }
    }
    if trailing_slash && !cur.stat.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    Ok(cur)
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
