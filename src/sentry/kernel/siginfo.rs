//! `siginfo_t`: what a handler (SA_SIGINFO), sigtimedwait and waitid learn
//! about a signal: who sent it and why. Pending signals keep theirs in a
//! queue beside the pending bit set (see `process::SigQueue`).

/// si_code values (include/uapi/asm-generic/siginfo.h).
pub const SI_USER: i32 = 0;
pub const SI_KERNEL: i32 = 0x80;
pub const SI_QUEUE: i32 = -1;
pub const SI_TIMER: i32 = -2;
pub const SI_TKILL: i32 = -6;

/// A raw x86-64 `siginfo_t` (128 bytes).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SigInfo(pub [u8; 128]);

impl std::fmt::Debug for SigInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigInfo(signo {}, code {})", self.signo(), self.code())
    }
}

impl SigInfo {
    /// Signal `sig` with `code` and nothing else.
    pub fn new(sig: i32, code: i32) -> SigInfo {
        let mut b = [0u8; 128];
        b[0..4].copy_from_slice(&sig.to_le_bytes());
        b[8..12].copy_from_slice(&code.to_le_bytes());
        SigInfo(b)
    }

    /// Sent by the kernel itself (SIGPIPE, SIGALRM, job control...).
    pub fn kernel(sig: i32) -> SigInfo {
        SigInfo::new(sig, SI_KERNEL)
    }

    /// Sent by process `pid` of user `uid` with kill(2) (`code` SI_USER),
    /// tkill/tgkill (SI_TKILL) or sigqueue (SI_QUEUE, with `value`).
    pub fn from_process(sig: i32, code: i32, pid: i32, uid: u32) -> SigInfo {
        let mut i = SigInfo::new(sig, code);
        i.put_i32(16, pid);
        i.put_u32(20, uid);
        i
    }

    /// SIGCHLD for child `pid`: `code` is CLD_EXITED, CLD_KILLED, ...;
    /// `status` the exit code or signal; CPU times in clock ticks.
    pub fn child(pid: i32, uid: u32, code: i32, status: i32, times: (u64, u64)) -> SigInfo {
        let mut i = SigInfo::from_process(libc::SIGCHLD, code, pid, uid);
        i.put_i32(24, status);
        i.0[32..40].copy_from_slice(&times.0.to_le_bytes());
        i.0[40..48].copy_from_slice(&times.1.to_le_bytes());
        i
    }

    /// A POSIX timer's expiry (SI_TIMER).
    pub fn timer(sig: i32, id: i32, overrun: i32, value: u64) -> SigInfo {
        let mut i = SigInfo::new(sig, SI_TIMER);
        i.put_i32(16, id);
        i.put_i32(20, overrun);
        i.0[24..32].copy_from_slice(&value.to_le_bytes());
        i
    }

    /// A fault at `addr` (SIGSEGV, SIGBUS, ...), with `code` (SEGV_MAPERR...).
    pub fn fault(sig: i32, code: i32, addr: u64) -> SigInfo {
        let mut i = SigInfo::new(sig, code);
        i.0[16..24].copy_from_slice(&addr.to_le_bytes());
        i
    }

    /// From raw guest bytes (rt_sigqueueinfo), with the signal number set.
    pub fn from_guest(sig: i32, raw: [u8; 128]) -> SigInfo {
        let mut i = SigInfo(raw);
        i.put_i32(0, sig);
        i
    }

    pub fn signo(&self) -> i32 {
        i32::from_le_bytes(self.0[0..4].try_into().unwrap())
    }

    pub fn code(&self) -> i32 {
        i32::from_le_bytes(self.0[8..12].try_into().unwrap())
    }

    fn put_i32(&mut self, off: usize, v: i32) {
        self.0[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }

    fn put_u32(&mut self, off: usize, v: u32) {
        self.0[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }
}
