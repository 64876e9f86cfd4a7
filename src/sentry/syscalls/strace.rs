//! `--strace`: one line per guest syscall on stderr, strace-style:
//! `[pid 1] write(1, "hi\n", 3) = 3`.

use std::io::Write;

use crate::abi::{sysno, SysResult};
use crate::sentry::kernel::Task;

/// Longest string or buffer shown.
const SHOW_MAX: usize = 64;

/// Formats the call before it runs (arguments are read before the handler
/// may change guest memory).
pub fn enter(t: &mut Task, n: u64, fmt: Option<&str>, a: [u64; 6]) -> String {
    let name = sysno::name(n)
        .map(str::to_string)
        .unwrap_or_else(|| format!("syscall_{n}"));
    let fmt = fmt.unwrap_or("xxxxxx");
    let args: Vec<String> = fmt
        .chars()
        .enumerate()
        .map(|(i, c)| arg(t, c, a, i))
        .collect();
    format!("[pid {}] {name}({})", t.pid, args.join(", "))
}

fn arg(t: &mut Task, c: char, a: [u64; 6], i: usize) -> String {
    let v = a[i];
    match c {
        'i' | 'f' => (v as i64 as i32 as i64).to_string(),
        'u' => v.to_string(),
        'o' => format!("{v:#o}"),
        'p' => match t.mm.read_cstr(v, 4096) {
            Ok(s) => quote(&s),
            Err(_) => format!("{v:#x}"),
        },
        'b' => {
            let len = (a.get(i + 1).copied().unwrap_or(0) as usize).min(SHOW_MAX);
            let mut buf = vec![0u8; len];
            match t.mm.copy_in(v, &mut buf) {
                Ok(()) => {
                    quote(&buf)
                        + if a[i + 1] as usize > SHOW_MAX {
                            "..."
                        } else {
                            ""
                        }
                }
                Err(_) => format!("{v:#x}"),
            }
        }
        _ => format!("{v:#x}"),
    }
}

/// Quotes bytes the way strace does.
fn quote(b: &[u8]) -> String {
    let mut s = String::from("\"");
    for &c in b.iter().take(SHOW_MAX) {
        match c {
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s.push('"');
    if b.len() > SHOW_MAX {
        s.push_str("...");
    }
    s
}

/// Prints the finished call with its result.
pub fn exit(t: &Task, call: String, res: &SysResult<u64>) {
    let line = match res {
        _ if t.exit.is_some() => format!("{call} = ?\n"),
        Ok(v) if *v > 0xffff => format!("{call} = {v:#x}\n"),
        Ok(v) => format!("{call} = {v}\n"),
        Err(e) => format!("{call} = -1 {} ({})\n", e.name(), errno_text(e.0)),
    };
    let _ = std::io::stderr().write_all(line.as_bytes());
}

fn errno_text(e: i32) -> String {
    std::io::Error::from_raw_os_error(e)
        .to_string()
        .split(" (os error")
        .next()
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quote_escapes_like_strace() {
        assert_eq!(quote(b"hi\n"), "\"hi\\n\"");
        assert_eq!(quote(&[0u8, b'"']), "\"\\x00\\\"\"");
    }
}
