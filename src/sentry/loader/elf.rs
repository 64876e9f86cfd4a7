//! ELF64 header parsing for the loader. The input is untrusted (it comes
//! from the image), so every field is bounds-checked and nothing panics.

use crate::abi::{Errno, SysResult};

pub const ET_EXEC: u16 = 2;
pub const ET_DYN: u16 = 3;
pub const PT_LOAD: u32 = 1;
pub const PT_INTERP: u32 = 3;
pub const PT_PHDR: u32 = 6;
pub const PT_GNU_STACK: u32 = 0x6474_e551;
pub const PF_X: u32 = 1;
pub const PF_W: u32 = 2;
pub const PF_R: u32 = 4;

/// Size of one program header.
pub const PHDR_SIZE: usize = 56;
/// Most program headers accepted.
const MAX_PHDRS: usize = 128;

/// The parts of the ELF header the loader uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub kind: u16,
    pub entry: u64,
    pub phoff: u64,
    pub phnum: u16,
}

/// One program header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Phdr {
    pub kind: u32,
    pub flags: u32,
    pub offset: u64,
    pub vaddr: u64,
    pub filesz: u64,
    pub memsz: u64,
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

/// Parses the 64-byte ELF header: ENOEXEC for anything that is not a
/// little-endian x86-64 executable or shared object.
pub fn parse_header(b: &[u8]) -> SysResult<Header> {
    if b.len() < 64 || &b[0..4] != b"\x7fELF" {
        return Err(Errno::ENOEXEC);
    }
    // 64-bit, little-endian, version 1, x86-64.
    if b[4] != 2 || b[5] != 1 || b[6] != 1 || u16_at(b, 18) != 62 {
        return Err(Errno::ENOEXEC);
    }
    let kind = u16_at(b, 16);
    if kind != ET_EXEC && kind != ET_DYN {
        return Err(Errno::ENOEXEC);
    }
    let phentsize = u16_at(b, 54) as usize;
    let phnum = u16_at(b, 56);
    if phentsize != PHDR_SIZE || phnum == 0 || phnum as usize > MAX_PHDRS {
        return Err(Errno::ENOEXEC);
    }
    Ok(Header {
        kind,
        entry: u64_at(b, 24),
        phoff: u64_at(b, 32),
        phnum,
    })
}

/// Parses `phnum` program headers from `b`.
pub fn parse_phdrs(b: &[u8], phnum: u16) -> SysResult<Vec<Phdr>> {
    if b.len() < phnum as usize * PHDR_SIZE {
        return Err(Errno::ENOEXEC);
    }
    let phdrs: Vec<Phdr> = b
        .chunks_exact(PHDR_SIZE)
        .take(phnum as usize)
        .map(|p| Phdr {
            kind: u32_at(p, 0),
            flags: u32_at(p, 4),
            offset: u64_at(p, 8),
            vaddr: u64_at(p, 16),
            filesz: u64_at(p, 32),
            memsz: u64_at(p, 40),
        })
        .collect();
    for p in phdrs.iter().filter(|p| p.kind == PT_LOAD) {
        let bad_size = p.filesz > p.memsz || p.vaddr.checked_add(p.memsz).is_none();
        let misaligned = p.vaddr % 4096 != p.offset % 4096;
        if bad_size || misaligned || p.offset.checked_add(p.filesz).is_none() {
            return Err(Errno::ENOEXEC);
        }
    }
    if !phdrs.iter().any(|p| p.kind == PT_LOAD) {
        return Err(Errno::ENOEXEC);
    }
    Ok(phdrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(kind: u16, phnum: u16) -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[0..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[6] = 1;
        b[16..18].copy_from_slice(&kind.to_le_bytes());
        b[18..20].copy_from_slice(&62u16.to_le_bytes());
        b[24..32].copy_from_slice(&0x401000u64.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&phnum.to_le_bytes());
        b
    }

    #[test]
    fn parse_header_static_exec_ok() {
        let h = parse_header(&header(ET_EXEC, 2)).unwrap();
        assert_eq!((h.kind, h.entry, h.phnum), (ET_EXEC, 0x401000, 2));
    }

    #[test]
    fn parse_header_garbage_is_enoexec() {
        assert_eq!(parse_header(b"#!/bin/sh\n"), Err(Errno::ENOEXEC));
        let mut h = header(ET_EXEC, 2);
        h[18] = 3; // i386
        assert_eq!(parse_header(&h), Err(Errno::ENOEXEC));
        assert_eq!(parse_header(&header(1, 2)), Err(Errno::ENOEXEC));
    }

    #[test]
    fn parse_phdrs_inconsistent_segment_is_enoexec() {
        let mut p = vec![0u8; 56];
        p[0..4].copy_from_slice(&PT_LOAD.to_le_bytes());
        p[32..40].copy_from_slice(&100u64.to_le_bytes()); // filesz
        p[40..48].copy_from_slice(&10u64.to_le_bytes()); // memsz < filesz
        assert_eq!(parse_phdrs(&p, 1), Err(Errno::ENOEXEC));
        assert_eq!(parse_phdrs(&p[..10], 1), Err(Errno::ENOEXEC));
    }
}
