//! The initial process stack: argc, argv, envp, the auxiliary vector, and
//! the strings and random bytes they point to, laid out as Linux's
//! `create_elf_tables` does.

use crate::abi::SysResult;
use crate::sentry::mm::{Backing, MapRequest, MemoryManager, Placement, USER_TOP};
use crate::sentry::platform::Prot;

/// Size of the main thread's stack mapping (RLIMIT_STACK default).
pub const STACK_SIZE: u64 = 8 << 20;

const AT_NULL: u64 = 0;
const AT_PHDR: u64 = 3;
const AT_PHENT: u64 = 4;
const AT_PHNUM: u64 = 5;
const AT_PAGESZ: u64 = 6;
const AT_BASE: u64 = 7;
const AT_FLAGS: u64 = 8;
const AT_ENTRY: u64 = 9;
const AT_UID: u64 = 11;
const AT_EUID: u64 = 12;
const AT_GID: u64 = 13;
const AT_EGID: u64 = 14;
const AT_PLATFORM: u64 = 15;
const AT_HWCAP: u64 = 16;
const AT_CLKTCK: u64 = 17;
const AT_SECURE: u64 = 23;
const AT_RANDOM: u64 = 25;
const AT_HWCAP2: u64 = 26;
const AT_EXECFN: u64 = 31;
const AT_SYSINFO_EHDR: u64 = 33;

/// What the auxiliary vector describes.
pub struct AuxInfo {
    pub phdr: u64,
    pub phnum: u64,
    /// Load base of the interpreter, 0 without one.
    pub base: u64,
    /// Entry of the main program (not the interpreter).
    pub entry: u64,
    /// uid, euid, gid, egid.
    pub ids: [u32; 4],
    pub execfn: Vec<u8>,
    /// Where the vDSO is mapped, if it is.
    pub vdso: Option<u64>,
}

/// Maps the stack and writes the initial frame; returns the stack pointer
/// and where the argument and environment strings lie (arg_start,
/// arg_end, env_start, env_end).
pub fn build(
    mm: &mut MemoryManager,
    argv: &[Vec<u8>],
    envp: &[Vec<u8>],
    aux: &AuxInfo,
) -> SysResult<(u64, [u64; 4])> {
    let top = USER_TOP;
    let rw = Prot {
        read: true,
        write: true,
        exec: false,
    };
    // Grows down past its first 8 MiB when RLIMIT_STACK allows.
    mm.mmap(MapRequest {
        placement: Placement::Fixed(top - STACK_SIZE),
        len: STACK_SIZE,
        prot: rw,
        backing: Backing::Anon,
        may_write: true,
        grows_down: true,
        name: None,
    })?;
    mm.mmap_top = mm.mmap_top.min(top - STACK_SIZE - (256 << 20));

    let mut sp = top - 8;
    let mut push_bytes = |mm: &mut MemoryManager, bytes: &[u8]| -> SysResult<u64> {
        sp -= bytes.len() as u64;
        mm.copy_out(sp, bytes)?;
        Ok(sp)
    };
    let with_nul = |s: &[u8]| [s, b"\0"].concat();
    let execfn = push_bytes(mm, &with_nul(&aux.execfn))?;
    let env_end = execfn;
    let mut env_ptrs = vec![];
    for e in envp.iter().rev() {
        env_ptrs.push(push_bytes(mm, &with_nul(e))?);
    }
    env_ptrs.reverse();
    let mut arg_ptrs = vec![];
    for a in argv.iter().rev() {
        arg_ptrs.push(push_bytes(mm, &with_nul(a))?);
    }
    arg_ptrs.reverse();
    let env_start = env_ptrs.first().copied().unwrap_or(env_end);
    let arg_start = arg_ptrs.first().copied().unwrap_or(env_start);
    let strings = [arg_start, env_start, env_start, env_end];
    let platform = push_bytes(mm, b"x86_64\0")?;
    let mut random = [0u8; 16];
    getrandom(&mut random);
    let random = push_bytes(mm, &random)?;

    let [uid, euid, gid, egid] = aux.ids.map(u64::from);
    let mut auxv: Vec<(u64, u64)> = aux.vdso.map(|v| (AT_SYSINFO_EHDR, v)).into_iter().collect();
    auxv.extend([
        (AT_PHDR, aux.phdr),
        (AT_PHENT, 56),
        (AT_PHNUM, aux.phnum),
        (AT_PAGESZ, 4096),
        (AT_BASE, aux.base),
        (AT_FLAGS, 0),
        (AT_ENTRY, aux.entry),
        (AT_UID, uid),
        (AT_EUID, euid),
        (AT_GID, gid),
        (AT_EGID, egid),
        (AT_SECURE, 0),
        (AT_RANDOM, random),
        (AT_HWCAP, hwcap()),
        (AT_HWCAP2, 0),
        (AT_CLKTCK, 100),
        (AT_PLATFORM, platform),
        (AT_EXECFN, execfn),
    ]);
    let mut words: Vec<u64> = vec![argv.len() as u64];
    words.extend(&arg_ptrs);
    words.push(0);
    words.extend(&env_ptrs);
    words.push(0);
    for (k, v) in auxv {
        words.extend([k, v]);
    }
    words.extend([AT_NULL, 0]);
    let mut sp = (sp & !15) - words.len() as u64 * 8;
    sp &= !15;
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    mm.copy_out(sp, &bytes)?;
    Ok((sp, strings))
}

fn getrandom(buf: &mut [u8]) {
    // SAFETY: getrandom writes at most `buf.len()` bytes into `buf`.
    unsafe { libc::getrandom(buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
}

/// CPUID leaf 1 EDX, as Linux reports in AT_HWCAP.
fn hwcap() -> u64 {
    std::arch::x86_64::__cpuid(1).edx as u64
}
