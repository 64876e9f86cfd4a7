//! Credential syscalls: the setuid/setgid families, supplementary groups,
//! and capget. "Privileged" means effective uid 0, which is what holding
//! CAP_SETUID/CAP_SETGID amounts to inside a container here.

use crate::abi::{Errno, SysResult};
use crate::sentry::kernel::Task;

/// "Leave unchanged" in the set*id calls.
const KEEP: u32 = u32::MAX;
/// Most supplementary groups (NGROUPS_MAX).
const NGROUPS_MAX: u64 = 65536;

fn privileged(t: &Task) -> bool {
    t.creds.euid == 0
}

/// Implements setuid(2).
pub fn sys_setuid(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let uid = a[0] as u32;
    if uid == KEEP {
        return Err(Errno::EINVAL);
    }
    let c = &mut t.creds;
    if c.euid == 0 {
        (c.uid, c.euid, c.suid) = (uid, uid, uid);
    } else if uid == c.uid || uid == c.suid {
        c.euid = uid;
    } else {
        return Err(Errno::EPERM);
    }
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
    let c = t.creds;
    (t.creds.uid, t.creds.euid, t.creds.suid) = set_res(
        privileged(t),
        (c.uid, c.euid, c.suid),
        (a[0] as u32, a[1] as u32, a[2] as u32),
    )?;
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
    let c = t.creds;
    (t.creds.uid, t.creds.euid, t.creds.suid) = set_re(
        privileged(t),
        (c.uid, c.euid, c.suid),
        a[0] as u32,
        a[1] as u32,
    )?;
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
/// file capabilities in the sandbox).
pub fn sys_capget(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    const V1: u32 = 0x1998_0330;
    const V2: u32 = 0x2007_1026;
    const V3: u32 = 0x2008_0522;
    let version = {
        let mut b = [0u8; 4];
        t.mm.copy_in(a[0], &mut b)?;
        u32::from_le_bytes(b)
    };
    let words = match version {
        V1 => 1,
        V2 | V3 => 2,
        _ => {
            t.mm.write_u32(a[0], V3)?;
            return Err(Errno::EINVAL);
        }
    };
    if a[1] == 0 {
        return Ok(0);
    }
    // CAP_LAST_CAP is 40: 41 capability bits.
    let all: u64 = (1 << 41) - 1;
    let caps = if t.creds.euid == 0 { all } else { 0 };
    let mut data = vec![];
    for w in 0..words {
        let part = (caps >> (32 * w)) as u32;
        for _ in 0..2 {
            data.extend_from_slice(&part.to_le_bytes()); // effective, permitted
        }
        data.extend_from_slice(&0u32.to_le_bytes()); // inheritable
    }
    t.mm.copy_out(a[1], &data)?;
    Ok(0)
}
