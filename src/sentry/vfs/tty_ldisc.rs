//! The terminal line discipline (Linux's N_TTY), without threads or locks:
//! input from the pty master goes through [`Ldisc::receive`] (input
//! mapping, signal characters, canonical line editing, echo), the slave
//! reads what it produced; output from the slave goes through
//! [`Ldisc::output`] (OPOST mapping) to a queue the master reads.
//!
//! Canonical input is kept as complete lines (a line ended by VEOF keeps
//! no delimiter; an empty one is the end-of-file a read returns as 0)
//! plus the line being edited; non-canonical input is one byte queue.

use std::collections::VecDeque;

/// Kernel `struct termios` (TCGETS): flags, line, 19 control characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Termios {
    pub iflag: u32,
    pub oflag: u32,
    pub cflag: u32,
    pub lflag: u32,
    pub line: u8,
    pub cc: [u8; NCCS],
}

pub const NCCS: usize = 19;
/// Size of `struct termios` and of `struct termios2` (speeds appended).
pub const TERMIOS_SIZE: usize = 36;
pub const TERMIOS2_SIZE: usize = 44;

// c_iflag
pub const ISTRIP: u32 = 0o40;
pub const INLCR: u32 = 0o100;
pub const IGNCR: u32 = 0o200;
pub const ICRNL: u32 = 0o400;
pub const IXON: u32 = 0o2000;
pub const IXANY: u32 = 0o4000;
pub const IUTF8: u32 = 0o40000;
// c_oflag
pub const OPOST: u32 = 0o1;
pub const ONLCR: u32 = 0o4;
pub const OCRNL: u32 = 0o10;
pub const ONOCR: u32 = 0o20;
pub const ONLRET: u32 = 0o40;
pub const TABDLY: u32 = 0o14000;
pub const XTABS: u32 = 0o14000;
// c_cflag
const B38400: u32 = 0o17;
const CS8: u32 = 0o60;
const CREAD: u32 = 0o200;
// c_lflag
pub const ISIG: u32 = 0o1;
pub const ICANON: u32 = 0o2;
pub const ECHO: u32 = 0o10;
pub const ECHOE: u32 = 0o20;
pub const ECHOK: u32 = 0o40;
pub const ECHONL: u32 = 0o100;
pub const NOFLSH: u32 = 0o200;
pub const TOSTOP: u32 = 0o400;
pub const ECHOCTL: u32 = 0o1000;
pub const ECHOKE: u32 = 0o4000;
pub const IEXTEN: u32 = 0o100000;
// c_cc indexes
pub const VINTR: usize = 0;
pub const VQUIT: usize = 1;
pub const VERASE: usize = 2;
pub const VKILL: usize = 3;
pub const VEOF: usize = 4;
pub const VTIME: usize = 5;
pub const VMIN: usize = 6;
pub const VSTART: usize = 8;
pub const VSTOP: usize = 9;
pub const VSUSP: usize = 10;
pub const VEOL: usize = 11;
pub const VREPRINT: usize = 12;
pub const VWERASE: usize = 14;
pub const VLNEXT: usize = 15;
pub const VEOL2: usize = 16;

/// Input the line discipline holds at most (Linux's N_TTY_BUF_SIZE).
pub const INPUT_MAX: usize = 4096;
/// Output queued for the master at most before slave writes wait.
pub const OUTPUT_MAX: usize = 64 << 10;

impl Default for Termios {
    /// A new pty slave's settings (Linux's tty_std_termios for ptys).
    fn default() -> Termios {
        let mut cc = [0u8; NCCS];
        cc[..17].copy_from_slice(
            b"\x03\x1c\x7f\x15\x04\x00\x01\x00\x11\x13\x1a\x00\x12\x0f\x17\x16\x00",
        );
        Termios {
            iflag: ICRNL | IXON,
            oflag: OPOST | ONLCR,
            cflag: B38400 | CS8 | CREAD,
            lflag: ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN,
            line: 0,
            cc,
        }
    }
}

impl Termios {
    /// The guest's bytes: 36 (`termios`) or 44 (`termios2`).
    pub fn to_bytes(&self, size: usize) -> Vec<u8> {
        let mut b = Vec::with_capacity(size);
        for v in [self.iflag, self.oflag, self.cflag, self.lflag] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.push(self.line);
        b.extend_from_slice(&self.cc);
        if size == TERMIOS2_SIZE {
            // c_ispeed, c_ospeed: the speed the B38400 bits say.
            b.extend_from_slice(&38400u32.to_le_bytes());
            b.extend_from_slice(&38400u32.to_le_bytes());
        }
        b
    }

    pub fn from_bytes(b: &[u8]) -> Termios {
        let word = |i: usize| u32::from_le_bytes(b[i * 4..i * 4 + 4].try_into().unwrap());
        let mut cc = [0u8; NCCS];
        cc.copy_from_slice(&b[17..17 + NCCS]);
        Termios {
            iflag: word(0),
            oflag: word(1),
            cflag: word(2),
            lflag: word(3),
            line: b[16],
            cc,
        }
    }

    fn l(&self, f: u32) -> bool {
        self.lflag & f != 0
    }

    fn i(&self, f: u32) -> bool {
        self.iflag & f != 0
    }

    /// Whether `c` is control character `idx` (0 disables one).
    fn is(&self, c: u8, idx: usize) -> bool {
        self.cc[idx] != 0 && self.cc[idx] == c
    }

    pub fn canonical(&self) -> bool {
        self.l(ICANON)
    }
}

/// What receiving input asks the terminal to do besides queueing bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Send this signal to the foreground process group.
    Signal(i32),
}

/// The line discipline state of one terminal.
#[derive(Default)]
pub struct Ldisc {
    pub termios: Termios,
    /// Complete canonical lines, oldest first.
    lines: VecDeque<Vec<u8>>,
    /// The canonical line being edited.
    edit: Vec<u8>,
    /// Non-canonical input.
    raw: VecDeque<u8>,
    /// The next character is taken literally (VLNEXT).
    lnext: bool,
    /// Output for the master.
    pub out: VecDeque<u8>,
    /// The output column (for tabs, ONOCR and erasing).
    col: usize,
    /// The column the edited line started at.
    edit_col: usize,
    /// Output stopped (VSTOP, TCOOFF).
    pub stopped: bool,
}

fn is_ctrl(c: u8) -> bool {
    c < 0x20 || c == 0x7f
}

impl Ldisc {
    /// Bytes a read may take now: complete lines (canonical) or the queue.
    pub fn readable(&self) -> usize {
        if self.termios.canonical() {
            self.lines.iter().map(|l| l.len()).sum()
        } else {
            self.raw.len()
        }
    }

    /// Whether a canonical read would return now (a line, maybe empty).
    pub fn has_line(&self) -> bool {
        !self.lines.is_empty()
    }

    fn held(&self) -> usize {
        self.lines.iter().map(|l| l.len()).sum::<usize>() + self.edit.len() + self.raw.len()
    }

    /// Whether more input fits.
    pub fn input_room(&self) -> bool {
        self.held() < INPUT_MAX - 1
    }

    /// Takes one canonical line (or the part of it that fits): Some(n),
    /// n = 0 at end of file; None when no line is complete.
    pub fn read_line(&mut self, buf: &mut [u8]) -> Option<usize> {
        let line = self.lines.front_mut()?;
        let n = line.len().min(buf.len());
        buf[..n].copy_from_slice(&line[..n]);
        line.drain(..n);
        if line.is_empty() {
            self.lines.pop_front();
        }
        Some(n)
    }

    /// Takes up to `buf.len()` non-canonical bytes.
    pub fn read_raw(&mut self, buf: &mut [u8]) -> usize {
        let n = self.raw.len().min(buf.len());
        for (i, b) in self.raw.drain(..n).enumerate() {
            buf[i] = b;
        }
        n
    }

    /// Drops queued input (TCIFLUSH, signals without NOFLSH).
    pub fn flush_input(&mut self) {
        self.lines.clear();
        self.edit.clear();
        self.raw.clear();
        self.lnext = false;
    }

    /// New settings; leaving canonical mode makes the edited line
    /// readable, entering it makes pending bytes the edited line.
    pub fn set_termios(&mut self, t: Termios) {
        let was = self.termios.canonical();
        self.termios = t;
        if was && !t.canonical() {
            for l in self.lines.drain(..) {
                self.raw.extend(l);
            }
            self.raw.extend(self.edit.drain(..));
        } else if !was && t.canonical() {
            self.edit.extend(self.raw.drain(..));
        }
    }

    /// Receives input from the master; returns how many bytes were taken
    /// (fewer when the input is full) and the signals to send.
    pub fn receive(&mut self, input: &[u8]) -> (usize, Vec<Event>) {
        let mut events = Vec::new();
        let mut taken = 0;
        for &c in input {
            if !(self.input_room() || self.termios.canonical() && self.is_newline(c)) {
                if !self.termios.canonical() {
                    break;
                }
                // A full canonical line drops characters, as Linux does,
                // so that a newline can still end it.
                taken += 1;
                continue;
            }
            taken += 1;
            if let Some(e) = self.receive_one(c) {
                events.push(e);
            }
        }
        (taken, events)
    }

    fn is_newline(&self, c: u8) -> bool {
        let t = &self.termios;
        c == b'\n' || c == b'\r' && t.i(ICRNL) || t.is(c, VEOL) || t.is(c, VEOL2)
    }

    fn receive_one(&mut self, mut c: u8) -> Option<Event> {
        let t = self.termios;
        if t.i(ISTRIP) {
            c &= 0x7f;
        }
        if self.lnext {
            self.lnext = false;
            if t.l(ECHO) {
                self.echo_erase_cols(1);
            }
            self.put_input(c);
            return None;
        }
        if t.i(IXON) {
            if t.is(c, VSTOP) {
                self.stopped = true;
                return None;
            }
            if t.is(c, VSTART) {
                self.stopped = false;
                return None;
            }
            if t.i(IXANY) {
                self.stopped = false;
            }
        }
        if c == b'\r' {
            if t.i(IGNCR) {
                return None;
            }
            if t.i(ICRNL) {
                c = b'\n';
            }
        } else if c == b'\n' && t.i(INLCR) {
            c = b'\r';
        }
        if t.l(ISIG) {
            let sig = [
                (VINTR, libc::SIGINT),
                (VQUIT, libc::SIGQUIT),
                (VSUSP, libc::SIGTSTP),
            ]
            .into_iter()
            .find(|&(i, _)| t.is(c, i));
            if let Some((_, sig)) = sig {
                if !t.l(NOFLSH) {
                    self.flush_input();
                    self.out.clear();
                }
                if t.l(ECHO) {
                    self.echo_char(c);
                }
                return Some(Event::Signal(sig));
            }
        }
        if t.canonical() && self.edit_char(c) {
            return None;
        }
        self.put_input(c);
        None
    }

    /// Canonical editing characters; true when `c` was one.
    fn edit_char(&mut self, c: u8) -> bool {
        let t = self.termios;
        let ext = t.l(IEXTEN);
        if t.is(c, VERASE) {
            self.erase(Erase::Char);
        } else if ext && t.is(c, VWERASE) {
            self.erase(Erase::Word);
        } else if t.is(c, VKILL) {
            self.erase(Erase::Line);
        } else if t.is(c, VEOF) {
            let line = std::mem::take(&mut self.edit);
            self.lines.push_back(line);
        } else if ext && t.is(c, VLNEXT) {
            self.lnext = true;
            if t.l(ECHO) {
                self.echo(b"^\x08");
            }
        } else if ext && t.is(c, VREPRINT) {
            if t.l(ECHO) {
                self.echo_char(c);
                self.echo(b"\n");
                self.edit_col = self.col;
                let line = self.edit.clone();
                line.iter().for_each(|&b| self.echo_char(b));
            }
        } else {
            return false;
        }
        true
    }

    /// Queues an input character (ending a canonical line at a newline).
    fn put_input(&mut self, c: u8) {
        let t = self.termios;
        if !t.canonical() {
            self.raw.push_back(c);
            if t.l(ECHO) {
                self.echo_char(c);
            } else if c == b'\n' && t.l(ECHONL) {
                self.echo(b"\n");
            }
            return;
        }
        if self.edit.is_empty() {
            self.edit_col = self.col;
        }
        self.edit.push(c);
        let newline = c == b'\n' || t.is(c, VEOL) || t.is(c, VEOL2);
        if t.l(ECHO) || (c == b'\n' && t.l(ECHONL)) {
            self.echo_char(c);
        }
        if newline {
            let line = std::mem::take(&mut self.edit);
            self.lines.push_back(line);
        }
    }

    /// Erases the last character, word or the whole line being edited.
    fn erase(&mut self, kind: Erase) {
        let t = self.termios;
        if self.edit.is_empty() {
            return;
        }
        if kind == Erase::Line && (!t.l(ECHO) || !t.l(ECHOKE) || !t.l(ECHOE)) {
            self.edit.clear();
            if t.l(ECHO) {
                self.echo_char(t.cc[VKILL]);
                if t.l(ECHOK) {
                    self.echo(b"\n");
                }
            }
            return;
        }
        let mut seen_alnum = false;
        while let Some(&c) = self.edit.last() {
            if kind == Erase::Word {
                if c.is_ascii_alphanumeric() || c == b'_' {
                    seen_alnum = true;
                } else if seen_alnum {
                    break;
                }
            }
            let cols = self.width_of_last();
            self.edit.pop();
            // A UTF-8 character goes whole.
            if t.i(IUTF8) && (c & 0xc0) == 0x80 {
                while self.edit.last().is_some_and(|&b| b & 0xc0 == 0x80) {
                    self.edit.pop();
                }
                self.edit.pop();
            }
            if t.l(ECHO) {
                if t.l(ECHOE) {
                    self.echo_erase_cols(cols);
                } else {
                    self.echo_char(t.cc[VERASE]);
                }
            }
            if kind == Erase::Char {
                break;
            }
        }
    }

    /// Columns the last character of the edited line took when echoed.
    fn width_of_last(&self) -> usize {
        let t = self.termios;
        let mut col = self.edit_col;
        let mut last = 0;
        for &c in &self.edit {
            let before = col;
            col = match c {
                b'\t' => (col | 7) + 1,
                _ if is_ctrl(c) && t.l(ECHOCTL) => col + 2,
                _ if is_ctrl(c) => col,
                _ if t.i(IUTF8) && c & 0xc0 == 0x80 => col,
                _ => col + 1,
            };
            if !(t.i(IUTF8) && c & 0xc0 == 0x80) {
                last = col - before;
            }
        }
        last
    }

    /// Moves the cursor back over `cols` columns, blanking them.
    fn echo_erase_cols(&mut self, cols: usize) {
        for _ in 0..cols {
            self.echo(b"\x08 \x08");
        }
    }

    /// Echoes one input character (control characters as ^X with ECHOCTL).
    fn echo_char(&mut self, c: u8) {
        let t = self.termios;
        if is_ctrl(c) && c != b'\t' && c != b'\n' && t.l(ECHOCTL) {
            self.echo(&[b'^', c ^ 0x40]);
        } else {
            self.echo(&[c]);
        }
    }

    fn echo(&mut self, bytes: &[u8]) {
        // Echo is not held back by a full queue, only bounded.
        if self.out.len() < 2 * OUTPUT_MAX {
            self.output(bytes);
        }
    }

    /// Whether the slave may queue more output.
    pub fn output_room(&self) -> bool {
        self.out.len() < OUTPUT_MAX && !self.stopped
    }

    /// Queues slave output for the master with OPOST processing; returns
    /// how many input bytes were taken.
    pub fn output(&mut self, bytes: &[u8]) -> usize {
        let o = self.termios.oflag;
        if o & OPOST == 0 {
            self.out.extend(bytes);
            return bytes.len();
        }
        for &c in bytes {
            match c {
                b'\n' if o & ONLCR != 0 => {
                    self.out.extend(b"\r\n");
                    self.col = 0;
                }
                b'\n' => {
                    self.out.push_back(b'\n');
                    if o & ONLRET != 0 {
                        self.col = 0;
                    }
                }
                b'\r' if o & ONOCR != 0 && self.col == 0 => {}
                b'\r' if o & OCRNL != 0 => {
                    self.out.push_back(b'\n');
                    if o & ONLRET != 0 {
                        self.col = 0;
                    }
                }
                b'\r' => {
                    self.out.push_back(b'\r');
                    self.col = 0;
                }
                b'\t' => {
                    let next = (self.col | 7) + 1;
                    if o & TABDLY == XTABS {
                        self.out.extend(std::iter::repeat_n(b' ', next - self.col));
                    } else {
                        self.out.push_back(b'\t');
                    }
                    self.col = next;
                }
                0x08 => {
                    self.out.push_back(c);
                    self.col = self.col.saturating_sub(1);
                }
                _ => {
                    self.out.push_back(c);
                    let continuation = c & 0xc0 == 0x80;
                    if !is_ctrl(c) && !continuation {
                        self.col += 1;
                    }
                }
            }
        }
        bytes.len()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Erase {
    Char,
    Word,
    Line,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(ld: &mut Ldisc, s: &[u8]) -> Vec<Event> {
        let (n, ev) = ld.receive(s);
        assert_eq!(n, s.len());
        ev
    }

    fn line(ld: &mut Ldisc) -> Option<Vec<u8>> {
        let mut buf = [0u8; 256];
        ld.read_line(&mut buf).map(|n| buf[..n].to_vec())
    }

    fn echoed(ld: &mut Ldisc) -> Vec<u8> {
        ld.out.drain(..).collect()
    }

    #[test]
    fn ldisc_canonical_line_is_echoed_with_crlf() {
        let mut ld = Ldisc::default();
        typed(&mut ld, b"hi\r");
        assert_eq!(line(&mut ld), Some(b"hi\n".to_vec()));
        assert_eq!(echoed(&mut ld), b"hi\r\n");
        assert_eq!(line(&mut ld), None);
    }

    #[test]
    fn ldisc_erase_kill_and_werase_edit_the_line() {
        let mut ld = Ldisc::default();
        typed(&mut ld, b"abx\x7fc foo bar \x17baz\n");
        assert_eq!(line(&mut ld), Some(b"abc foo baz\n".to_vec()));
        typed(&mut ld, b"junk\x15ok\n");
        assert_eq!(line(&mut ld), Some(b"ok\n".to_vec()));
    }

    #[test]
    fn ldisc_erase_of_control_char_takes_two_columns() {
        let mut ld = Ldisc::default();
        typed(&mut ld, b"a\x01");
        echoed(&mut ld);
        typed(&mut ld, b"\x7f");
        assert_eq!(echoed(&mut ld), b"\x08 \x08\x08 \x08");
    }

    #[test]
    fn ldisc_eof_ends_line_without_delimiter_and_empty_is_zero() {
        let mut ld = Ldisc::default();
        typed(&mut ld, b"abc\x04\x04");
        assert_eq!(line(&mut ld), Some(b"abc".to_vec()));
        assert_eq!(line(&mut ld), Some(vec![]));
    }

    #[test]
    fn ldisc_intr_flushes_and_signals() {
        let mut ld = Ldisc::default();
        let ev = typed(&mut ld, b"partial\x03");
        assert_eq!(ev, vec![Event::Signal(libc::SIGINT)]);
        assert_eq!(ld.readable(), 0);
        assert_eq!(echoed(&mut ld), b"^C");
        typed(&mut ld, b"x\n");
        assert_eq!(line(&mut ld), Some(b"x\n".to_vec()));
    }

    #[test]
    fn ldisc_raw_mode_passes_bytes_unchanged() {
        let mut ld = Ldisc::default();
        let mut t = ld.termios;
        t.lflag &= !(ICANON | ECHO | ISIG);
        t.iflag &= !ICRNL;
        ld.set_termios(t);
        typed(&mut ld, b"a\x03\r");
        let mut buf = [0u8; 8];
        assert_eq!(ld.read_raw(&mut buf), 3);
        assert_eq!(&buf[..3], b"a\x03\r");
        assert!(ld.out.is_empty());
    }

    #[test]
    fn ldisc_leaving_canonical_mode_releases_edited_line() {
        let mut ld = Ldisc::default();
        typed(&mut ld, b"ab");
        let mut t = ld.termios;
        t.lflag &= !ICANON;
        ld.set_termios(t);
        assert_eq!(ld.readable(), 2);
    }

    #[test]
    fn ldisc_output_maps_newline_and_expands_tabs() {
        let mut ld = Ldisc::default();
        ld.termios.oflag |= XTABS;
        ld.output(b"a\tb\n");
        assert_eq!(echoed(&mut ld), b"a       b\r\n");
    }

    #[test]
    fn ldisc_termios_bytes_round_trip() {
        let t = Termios::default();
        let b = t.to_bytes(TERMIOS_SIZE);
        assert_eq!(b.len(), TERMIOS_SIZE);
        assert_eq!(Termios::from_bytes(&b), t);
        assert_eq!(t.lflag, 0o105073);
    }

    #[test]
    fn ldisc_full_canonical_line_still_takes_newline() {
        let mut ld = Ldisc::default();
        ld.termios.lflag &= !ECHO;
        let long = vec![b'x'; INPUT_MAX + 10];
        typed(&mut ld, &long);
        typed(&mut ld, b"\n");
        let mut buf = vec![0u8; INPUT_MAX * 2];
        let n = ld.read_line(&mut buf).unwrap();
        assert_eq!(buf[n - 1], b'\n');
        assert!(n <= INPUT_MAX);
    }
}
