//! Capabilities: dropping the bounding and ambient sets and setting the
//! effective/permitted/inheritable sets to an explicit list.

use std::io;

/// CAP_CHOWN: change a file's owner and group at will.
pub const CAP_CHOWN: u32 = 0;
/// CAP_DAC_OVERRIDE: bypass file read/write/execute permission checks.
pub const CAP_DAC_OVERRIDE: u32 = 1;
/// CAP_DAC_READ_SEARCH: bypass read and directory search checks.
pub const CAP_DAC_READ_SEARCH: u32 = 2;
/// CAP_FOWNER: bypass the owner checks of chmod, utimes and the like.
pub const CAP_FOWNER: u32 = 3;

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Leaves this process with exactly `keep` in its effective and permitted
/// sets, nothing inheritable, an empty ambient set and an empty bounding
/// set (so not even an exec could regain anything).
pub fn restrict_to(keep: &[u32]) -> io::Result<()> {
    for cap in 0..=last_cap() {
        // SAFETY: PR_CAPBSET_DROP takes plain integers.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let clear = libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong;
    // SAFETY: PR_CAP_AMBIENT takes plain integers.
    if unsafe { libc::prctl(libc::PR_CAP_AMBIENT, clear, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    set(&mask(keep))
}

/// Bit masks (low word, high word) of `caps`.
fn mask(caps: &[u32]) -> [CapData; 2] {
    let mut data = [CapData::default(); 2];
    for &cap in caps {
        let word = &mut data[(cap / 32) as usize];
        word.effective |= 1 << (cap % 32);
        word.permitted |= 1 << (cap % 32);
    }
    data
}

fn set(data: &[CapData; 2]) -> io::Result<()> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    // SAFETY: capset reads one header and two data words (version 3), both
    // live locals with the kernel's layout.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The (effective, permitted) sets of this thread as 64-bit masks.
pub fn current() -> io::Result<(u64, u64)> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget fills one header and two data words, both live locals.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let join = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
    Ok((
        join(data[0].effective, data[1].effective),
        join(data[0].permitted, data[1].permitted),
    ))
}

/// The highest capability number this kernel knows, found without /proc
/// (which a role may already have given up).
fn last_cap() -> u32 {
    let mut cap = 40;
    // SAFETY: PR_CAPBSET_READ takes plain integers; it fails with EINVAL
    // for numbers past the last capability.
    while unsafe { libc::prctl(libc::PR_CAPBSET_READ, (cap + 1) as libc::c_ulong, 0, 0, 0) } >= 0 {
        cap += 1;
    }
    cap
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_high_capability_sets_second_word() {
        let data = mask(&[CAP_DAC_READ_SEARCH, 33]);
        assert_eq!(data[0].effective, 1 << 2);
        assert_eq!(data[1].permitted, 1 << 1);
        assert_eq!(data[0].inheritable, 0);
    }

    #[test]
    fn last_cap_matches_proc() {
        let text = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap").unwrap();
        assert_eq!(last_cap(), text.trim().parse::<u32>().unwrap());
    }
}
