//! Loading a program into a fresh address space: ELF executables (static,
//! static-pie, and dynamic through PT_INTERP), `#!` scripts, and the
//! initial stack with argv, envp and the auxiliary vector.

pub mod elf;
mod stack;

use std::sync::Arc;

use crate::abi::{Errno, SysResult};
use crate::sentry::mm::memory::{page_down, page_up, PAGE_SIZE};
use crate::sentry::mm::{Backing, MemoryManager};
use crate::sentry::platform::Prot;
use crate::sentry::vdso::Vdso;
use crate::sentry::vfs::FileOps;
use elf::{Header, Phdr, PF_R, PF_W, PF_X, PT_INTERP, PT_LOAD, PT_PHDR};
pub use stack::{AuxInfo, STACK_SIZE};

/// Where a position-independent main program is loaded (Linux's
/// ELF_ET_DYN_BASE on x86-64).
const DYN_BASE: u64 = 0x5555_5555_4000;
/// Most nested `#!` interpreters (Linux: 4 levels of binfmt recursion).
const MAX_SHEBANG_DEPTH: usize = 4;
/// Longest `#!` line read.
const SHEBANG_MAX: usize = 256;

/// Opens an executable by guest path for the loader.
pub type Opener<'a> = &'a dyn Fn(&[u8]) -> SysResult<Arc<dyn FileOps>>;

/// A loaded program: where to start and with which stack.
#[derive(Debug)]
pub struct Loaded {
    pub entry: u64,
    pub sp: u64,
    pub layout: Layout,
}

/// Where the parts of a process image lie (/proc/[pid]/stat's addresses,
/// and where /proc/[pid]/environ is read from).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    pub start_code: u64,
    pub end_code: u64,
    pub start_data: u64,
    pub end_data: u64,
    pub start_brk: u64,
    /// The initial stack pointer (at argc).
    pub start_stack: u64,
    pub arg_start: u64,
    pub arg_end: u64,
    pub env_start: u64,
    pub env_end: u64,
}

/// The program to run and its arguments, after `#!` resolution.
struct Program {
    file: Arc<dyn FileOps>,
    argv: Vec<Vec<u8>>,
    head: Vec<u8>,
}

/// What the new process gets besides its program.
pub struct Setup<'a> {
    /// uid, euid, gid, egid for the auxiliary vector.
    pub ids: [u32; 4],
    /// The vDSO to map, if any.
    pub vdso: Option<&'a Vdso>,
    /// RLIMIT_STACK: how far stacks may grow.
    pub stack_limit: u64,
}

/// Loads the program at `path` into `mm` (which must be empty), maps the
/// vDSO and builds the initial stack.
pub fn load(
    mm: &mut MemoryManager,
    open: Opener,
    path: &[u8],
    argv: Vec<Vec<u8>>,
    envp: &[Vec<u8>],
    setup: Setup,
) -> SysResult<Loaded> {
    mm.stack_limit = setup.stack_limit;
    let prog = resolve_shebang(open, path, argv)?;
    let hdr = elf::parse_header(&prog.head)?;
    let phdrs = read_phdrs(prog.file.as_ref(), &hdr)?;
    let bias = if hdr.kind == elf::ET_DYN {
        DYN_BASE - page_down(min_vaddr(&phdrs))
    } else {
        0
    };
    let end = map_segments(mm, &prog.file, &phdrs, bias)?;
    mm.brk_start = end;
    mm.brk = end;
    let mut interp_base = 0;
    let mut entry = hdr.entry + bias;
    if let Some(ip) = phdrs.iter().find(|p| p.kind == PT_INTERP) {
        let (base, ientry) = load_interp(mm, open, prog.file.as_ref(), ip)?;
        interp_base = base;
        entry = ientry;
    }
    let vdso = setup.vdso.map(|v| v.map(mm)).transpose()?;
    let aux = AuxInfo {
        phdr: phdr_addr(&hdr, &phdrs, bias),
        phnum: hdr.phnum as u64,
        base: interp_base,
        entry: hdr.entry + bias,
        ids: setup.ids,
        execfn: path.to_vec(),
        vdso,
    };
    let (sp, strings) = stack::build(mm, &prog.argv, envp, &aux)?;
    let mut layout = image_layout(&phdrs, bias);
    layout.start_brk = end;
    layout.start_stack = sp;
    [
        layout.arg_start,
        layout.arg_end,
        layout.env_start,
        layout.env_end,
    ] = strings;
    Ok(Loaded { entry, sp, layout })
}

/// The code and data ranges of the main program: its executable and its
/// writable loaded segments.
fn image_layout(phdrs: &[Phdr], bias: u64) -> Layout {
    let mut l = Layout {
        start_code: u64::MAX,
        start_data: u64::MAX,
        ..Layout::default()
    };
    for p in phdrs.iter().filter(|p| p.kind == PT_LOAD) {
        let (start, end) = (p.vaddr + bias, p.vaddr + bias + p.filesz);
        if p.flags & PF_X != 0 {
            l.start_code = l.start_code.min(page_down(start));
            l.end_code = l.end_code.max(end);
        } else if p.flags & PF_W != 0 {
            l.start_data = l.start_data.min(start);
            l.end_data = l.end_data.max(end);
        }
    }
    l.start_code = l.start_code.min(l.end_code);
    l.start_data = l.start_data.min(l.end_data);
    l
}

/// Follows `#!` lines: the interpreter becomes the program, with the
/// script's path inserted into argv as Linux does.
fn resolve_shebang(open: Opener, path: &[u8], mut argv: Vec<Vec<u8>>) -> SysResult<Program> {
    let mut path = path.to_vec();
    for _ in 0..=MAX_SHEBANG_DEPTH {
        let file = open(&path)?;
        let mut head = vec![0u8; SHEBANG_MAX];
        let n = read_full(file.as_ref(), &mut head, 0)?;
        head.truncate(n);
        if !head.starts_with(b"#!") {
            return Ok(Program { file, argv, head });
        }
        let line = head[2..].split(|&b| b == b'\n').next().unwrap_or_default();
        let line = line.trim_ascii();
        let mut parts = line.splitn(2, |b| b.is_ascii_whitespace());
        let interp = parts
            .next()
            .filter(|i| !i.is_empty())
            .ok_or(Errno::ENOEXEC)?
            .to_vec();
        let mut new_argv = vec![interp.clone()];
        if let Some(arg) = parts
            .next()
            .map(|a| a.trim_ascii())
            .filter(|a| !a.is_empty())
        {
            new_argv.push(arg.to_vec());
        }
        new_argv.push(path.clone());
        new_argv.extend(argv.into_iter().skip(1));
        argv = new_argv;
        path = interp;
    }
    Err(Errno::ELOOP)
}

fn read_full(file: &dyn FileOps, buf: &mut [u8], off: u64) -> SysResult<usize> {
    let mut done = 0;
    while done < buf.len() {
        let n = file.read(&mut buf[done..], off + done as u64)?;
        if n == 0 {
            break;
        }
        done += n;
    }
    Ok(done)
}

fn read_phdrs(file: &dyn FileOps, hdr: &Header) -> SysResult<Vec<Phdr>> {
    let mut buf = vec![0u8; hdr.phnum as usize * elf::PHDR_SIZE];
    let n = read_full(file, &mut buf, hdr.phoff)?;
    elf::parse_phdrs(&buf[..n], hdr.phnum)
}

fn min_vaddr(phdrs: &[Phdr]) -> u64 {
    phdrs
        .iter()
        .filter(|p| p.kind == PT_LOAD)
        .map(|p| p.vaddr)
        .min()
        .unwrap_or(0)
}

fn phdr_addr(hdr: &Header, phdrs: &[Phdr], bias: u64) -> u64 {
    if let Some(p) = phdrs.iter().find(|p| p.kind == PT_PHDR) {
        return p.vaddr + bias;
    }
    phdrs
        .iter()
        .find(|p| p.kind == PT_LOAD && p.offset <= hdr.phoff && hdr.phoff < p.offset + p.filesz)
        .map(|p| p.vaddr + (hdr.phoff - p.offset) + bias)
        .unwrap_or(0)
}

fn prot_of(flags: u32) -> Prot {
    Prot {
        read: flags & PF_R != 0,
        write: flags & PF_W != 0,
        exec: flags & PF_X != 0,
    }
}

/// Maps every PT_LOAD segment at `bias`; returns the page-aligned end of
/// the highest one.
fn map_segments(
    mm: &mut MemoryManager,
    file: &Arc<dyn FileOps>,
    phdrs: &[Phdr],
    bias: u64,
) -> SysResult<u64> {
    // The file's page cache: every process running it shares its pages.
    let object = file.page_cache(mm.memory(), false).ok_or(Errno::EACCES)?;
    // What /proc/[pid]/maps calls the file's segments.
    let st = file.stat()?;
    let name = Arc::new(crate::sentry::mm::MapName {
        path: file.node().map(|n| n.path()).unwrap_or_default(),
        dev: st.dev,
        ino: st.ino,
    });
    let mut top = 0;
    for p in phdrs.iter().filter(|p| p.kind == PT_LOAD && p.memsz > 0) {
        let start = page_down(p.vaddr + bias);
        let file_end = p.vaddr + bias + p.filesz;
        let mem_end = page_up(p.vaddr + bias + p.memsz).ok_or(Errno::ENOEXEC)?;
        let file_map_end = if p.filesz > 0 {
            page_up(file_end).ok_or(Errno::ENOEXEC)?
        } else {
            start
        };
        let prot = prot_of(p.flags);
        if file_map_end > start {
            let zero_from = (p.memsz > p.filesz).then_some(file_end);
            let backing = Backing::File {
                object: object.clone(),
                offset: page_down(p.offset),
                zero_from,
            };
            mm.map(start, file_map_end - start, prot, backing)?;
            mm.name_range(start, file_map_end, &name);
        }
        if mem_end > file_map_end {
            mm.map(file_map_end, mem_end - file_map_end, prot, Backing::Anon)?;
        }
        top = top.max(mem_end);
    }
    Ok(top)
}

/// Loads the program interpreter named by PT_INTERP; returns its load base
/// and entry point.
fn load_interp(
    mm: &mut MemoryManager,
    open: Opener,
    file: &dyn FileOps,
    ip: &Phdr,
) -> SysResult<(u64, u64)> {
    if ip.filesz == 0 || ip.filesz > 4096 {
        return Err(Errno::ENOEXEC);
    }
    let mut name = vec![0u8; ip.filesz as usize];
    let n = read_full(file, &mut name, ip.offset)?;
    name.truncate(n);
    let name: Vec<u8> = name.split(|&b| b == 0).next().unwrap_or_default().to_vec();
    let ifile = open(&name)?;
    let mut head = vec![0u8; 64];
    read_full(ifile.as_ref(), &mut head, 0)?;
    let ihdr = elf::parse_header(&head)?;
    if ihdr.kind != elf::ET_DYN {
        return Err(Errno::ELIBBAD);
    }
    let iphdrs = read_phdrs(ifile.as_ref(), &ihdr)?;
    let lo = page_down(min_vaddr(&iphdrs));
    let hi = iphdrs
        .iter()
        .filter(|p| p.kind == PT_LOAD)
        .map(|p| p.vaddr + p.memsz)
        .max()
        .unwrap_or(0);
    let span = page_up(hi - lo).ok_or(Errno::ELIBBAD)? + PAGE_SIZE;
    let base = mm.find_free(span)?;
    let bias = base - lo;
    map_segments(mm, &ifile, &iphdrs, bias)?;
    mm.mmap_top = base;
    Ok((base, ihdr.entry + bias))
}
