//! Credential syscalls: the setuid/setgid families, supplementary groups,
//! and capget/capset. Changing ids needs CAP_SETUID/CAP_SETGID in the
//! effective set; uid changes adjust the capability sets as Linux does.

use crate::abi::{Errno, SysResult};
use crate::sentry::kernel::task::ALL_CAPS;
use crate::sentry::kernel::Task;

/// "Leave unchanged" in the set*id calls.
const KEEP: u32 = u32::MAX;
/// Most supplementary groups (NGROUPS_MAX).
const NGROUPS_MAX: u64 = 65536;

const CAP_SETGID: u32 = 6;
const CAP_SETUID: u32 = 7;

fn privileged(t: &Task) -> bool {
    t.creds.has_cap(CAP_SETGID)
}

/// Implements setuid(2).
pub fn sys_setuid(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let old = t.creds;
    let uid = a[0] as u32;
    if uid == KEEP {
        return Err(Errno::EINVAL);
    }
    let root = t.creds.has_cap(CAP_SETUID);
    let c = &mut t.creds;
    if root {
        (c.uid, c.euid, c.suid) = (uid, uid, uid);
    } else if uid == c.uid || uid == c.suid {
        c.euid = uid;
    } else {
        return Err(Errno::EPERM);
    }
    t.creds.uids_changed(old);
    Ok(0)
}

/// Implements setgid(2).
pub fn sys_setgid(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let gid = a[0] as u32;
    if gid == KEEP {
        return Err(Errno::EINVAL);
    }
    let root = privileged(t);
    let c = &mut t.creds;
    if root {
        (c.gid, c.egid, c.sgid) = (gid, gid, gid);
    } else if gid == c.gid || gid == c.sgid {
        c.egid = gid;
    } else {
        return Err(Errno::EPERM);
    }
    Ok(0)
}

/// The shared rule of setresuid/setresgid: unprivileged callers may only
/// pick among their current real, effective and saved ids.
fn set_res(root: bool, cur: (u32, u32, u32), new: (u32, u32, u32)) -> SysResult<(u32, u32, u32)> {
    let allowed = |v: u32| v == KEEP || root || v == cur.0 || v == cur.1 || v == cur.2;
    if !(allowed(new.0) && allowed(new.1) && allowed(new.2)) {
        return Err(Errno::EPERM);
    }
    let pick = |v: u32, old: u32| if v == KEEP { old } else { v };
    Ok((pick(new.0, cur.0), pick(new.1, cur.1), pick(new.2, cur.2)))
}

/// Implements setresuid(2).
pub fn sys_setresuid(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let old = t.creds;
    let c = t.creds;
    (t.creds.uid, t.creds.euid, t.creds.suid) = set_res(
        t.creds.has_cap(CAP_SETUID),
        (c.uid, c.euid, c.suid),
        (a[0] as u32, a[1] as u32, a[2] as u32),
    )?;
    t.creds.uids_changed(old);
    Ok(0)
}

/// Implements setresgid(2).
pub fn sys_setresgid(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let c = t.creds;
    (t.creds.gid, t.creds.egid, t.creds.sgid) = set_res(
        privileged(t),
        (c.gid, c.egid, c.sgid),
        (a[0] as u32, a[1] as u32, a[2] as u32),
    )?;
    Ok(0)
}

/// setreuid/setregid: the saved id follows the new effective one when the
/// real id is set or the effective one leaves the old real id.
fn set_re(root: bool, cur: (u32, u32, u32), r: u32, e: u32) -> SysResult<(u32, u32, u32)> {
    if !root && r != KEEP && r != cur.0 && r != cur.1 {
        return Err(Errno::EPERM);
    }
    if !root && e != KEEP && e != cur.0 && e != cur.1 && e != cur.2 {
        return Err(Errno::EPERM);
    }
    let nr = if r == KEEP { cur.0 } else { r };
    let ne = if e == KEEP { cur.1 } else { e };
    let ns = if r != KEEP || (e != KEEP && e != cur.0) {
        ne
    } else {
        cur.2
    };
    Ok((nr, ne, ns))
}

/// Implements setreuid(2).
pub fn sys_setreuid(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let old = t.creds;
    let c = t.creds;
    (t.creds.uid, t.creds.euid, t.creds.suid) = set_re(
        t.creds.has_cap(CAP_SETUID),
        (c.uid, c.euid, c.suid),
        a[0] as u32,
        a[1] as u32,
    )?;
    t.creds.uids_changed(old);
    Ok(0)
}

/// Implements setregid(2).
pub fn sys_setregid(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let c = t.creds;
    (t.creds.gid, t.creds.egid, t.creds.sgid) = set_re(
        privileged(t),
        (c.gid, c.egid, c.sgid),
        a[0] as u32,
        a[1] as u32,
    )?;
    Ok(0)
}

fn put_ids(t: &mut Task, addrs: [u64; 3], ids: [u32; 3]) -> SysResult<u64> {
    for (addr, id) in addrs.into_iter().zip(ids) {
        t.mm.write_u32(addr, id)?;
    }
    Ok(0)
}

/// Implements getresuid(2).
pub fn sys_getresuid(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let c = t.creds;
    put_ids(t, [a[0], a[1], a[2]], [c.uid, c.euid, c.suid])
}

/// Implements getresgid(2).
pub fn sys_getresgid(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let c = t.creds;
    put_ids(t, [a[0], a[1], a[2]], [c.gid, c.egid, c.sgid])
}

/// Implements setgroups(2).
pub fn sys_setgroups(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    if !privileged(t) {
        return Err(Errno::EPERM);
    }
    if a[0] > NGROUPS_MAX {
        return Err(Errno::EINVAL);
    }
    let mut raw = vec![0u8; a[0] as usize * 4];
    t.mm.copy_in(a[1], &mut raw)?;
    let mut groups: Vec<u32> = raw
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    groups.sort_unstable();
    groups.dedup();
    t.groups = groups;
    Ok(0)
}

/// Implements getgroups(2).
pub fn sys_getgroups(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let n = t.groups.len() as u64;
    if a[0] == 0 {
        return Ok(n);
    }
    if a[0] < n {
        return Err(Errno::EINVAL);
    }
    let raw: Vec<u8> = t.groups.iter().flat_map(|g| g.to_le_bytes()).collect();
    t.mm.copy_out(a[1], &raw)?;
    Ok(n)
}

/// Implements capget(2): uid 0 holds every capability, others none (no
const CAP_V1: u32 = 0x1998_0330;
const CAP_V2: u32 = 0x2007_1026;
const CAP_V3: u32 = 0x2008_0522;

/// Reads a capget/capset header: the number of 32-bit words per set, or
/// EINVAL (with the preferred version written back, as Linux does). The
/// pid must be 0 or the caller (ESRCH otherwise: other tasks' sets are
/// not kept here).
fn cap_header(t: &mut Task, hdr: u64) -> SysResult<usize> {
    let version = t.mm.read_u32(hdr)?;
    let words = match version {
        CAP_V1 => 1,
        CAP_V2 | CAP_V3 => 2,
        _ => {
            t.mm.write_u32(hdr, CAP_V3)?;
            return Err(Errno::EINVAL);
        }
    };
    let pid = t.mm.read_u32(hdr + 4)? as i32;
    if pid != 0 && pid != t.tid && pid != t.pid {
        return Err(Errno::ESRCH);
    }
    Ok(words)
}

/// Implements capget(2).
pub fn sys_capget(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let words = cap_header(t, a[0])?;
    if a[1] == 0 {
        return Ok(0);
    }
    let c = t.creds;
    let mut data = vec![];
    for w in 0..words {
        for set in [c.cap_eff, c.cap_perm, c.cap_inh] {
            data.extend_from_slice(&((set >> (32 * w)) as u32).to_le_bytes());
        }
    }
    t.mm.copy_out(a[1], &data)?;
    Ok(0)
}

/// Implements capset(2): the new permitted set may only shrink, the
/// effective set must lie in it, and the inheritable set may only gain
/// what is permitted.
pub fn sys_capset(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let words = cap_header(t, a[0])?;
    let mut raw = vec![0u8; words * 12];
    t.mm.copy_in(a[1], &mut raw)?;
    let mut sets = [0u64; 3];
    for w in 0..words {
        for (i, set) in sets.iter_mut().enumerate() {
            let at = w * 12 + i * 4;
            let v = u32::from_le_bytes(raw[at..at + 4].try_into().unwrap()) as u64;
            *set |= v << (32 * w);
        }
    }
    let [eff, perm, inh] = sets.map(|s| s & ALL_CAPS);
    let c = &mut t.creds;
    if perm & !c.cap_perm != 0 || eff & !perm != 0 || inh & !(c.cap_inh | c.cap_perm) != 0 {
        return Err(Errno::EPERM);
    }
    (c.cap_eff, c.cap_perm, c.cap_inh) = (eff, perm, inh);
    Ok(0)
}
