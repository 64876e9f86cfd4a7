//! futex(2), set_robust_list's partner at thread exit lives in
//! `kernel::futex`.

use std::time::Instant;

use crate::abi::{Errno, SysResult};
use crate::sentry::kernel::futex;
use crate::sentry::kernel::Task;

const FUTEX_WAIT: u64 = 0;
const FUTEX_WAKE: u64 = 1;
const FUTEX_REQUEUE: u64 = 3;
const FUTEX_CMP_REQUEUE: u64 = 4;
const FUTEX_WAKE_OP: u64 = 5;
const FUTEX_WAIT_BITSET: u64 = 9;
const FUTEX_WAKE_BITSET: u64 = 10;
const FUTEX_PRIVATE_FLAG: u64 = 128;
const FUTEX_CLOCK_REALTIME: u64 = 256;

/// Reads the timeout of a wait: relative for FUTEX_WAIT, an absolute time
/// on CLOCK_MONOTONIC (or CLOCK_REALTIME) for FUTEX_WAIT_BITSET.
fn deadline(t: &Task, addr: u64, absolute: bool, realtime: bool) -> SysResult<Option<Instant>> {
    if addr == 0 {
        return Ok(None);
    }
    let ts = super::time::read_ts(t, addr)?;
    let now = Instant::now();
    if !absolute {
        return Ok(now.checked_add(ts));
    }
    // The remaining time to the absolute deadline, on its clock.
    let clock = if realtime {
        libc::CLOCK_REALTIME
    } else {
        libc::CLOCK_MONOTONIC
    };
    let clock_now = super::time::clock_now(clock)?;
    Ok(now.checked_add(ts.saturating_sub(clock_now)))
}

/// Implements futex(2): WAIT, WAKE, REQUEUE, CMP_REQUEUE, WAKE_OP and the
/// BITSET variants, private or not. PI futexes return ENOSYS.
pub fn sys_futex(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let [addr, op, val, timeout, addr2, val3] = a;
    let realtime = op & FUTEX_CLOCK_REALTIME != 0;
    let cmd = op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    if realtime && cmd != FUTEX_WAIT && cmd != FUTEX_WAIT_BITSET {
        return Err(Errno::ENOSYS);
    }
    let n = (val as u32).min(i32::MAX as u32) as usize;
    if addr % 4 != 0 {
        return Err(Errno::EINVAL);
    }
    let word = futex::Word {
        addr,
        private: op & FUTEX_PRIVATE_FLAG != 0,
    };
    match cmd {
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            let bitset = if cmd == FUTEX_WAIT {
                u32::MAX
            } else {
                val3 as u32
            };
            if bitset == 0 {
                return Err(Errno::EINVAL);
            }
            let deadline = deadline(t, timeout, cmd == FUTEX_WAIT_BITSET, realtime)?;
            futex::wait(&t.mm, &t.control, word, val as u32, bitset, deadline)?;
            Ok(0)
        }
        FUTEX_WAKE | FUTEX_WAKE_BITSET => {
            let bitset = if cmd == FUTEX_WAKE {
                u32::MAX
            } else {
                val3 as u32
            };
            if bitset == 0 {
                return Err(Errno::EINVAL);
            }
            let key = t.mm.futex_key(addr, word.private);
            Ok(futex::wake(key, n, bitset) as u64)
        }
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
            // The requeue count travels in the timeout argument.
            let requeue = (timeout as u32).min(i32::MAX as u32) as usize;
            if (val as i32) < 0 || (timeout as i32) < 0 || addr2 % 4 != 0 {
                return Err(Errno::EINVAL);
            }
            let expect = (cmd == FUTEX_CMP_REQUEUE).then_some(val3 as u32);
            futex::requeue(&t.mm, word, addr2, n, requeue, expect).map(|c| c as u64)
        }
        FUTEX_WAKE_OP => {
            let n2 = (timeout as u32).min(i32::MAX as u32) as usize;
            if addr2 % 4 != 0 {
                return Err(Errno::EINVAL);
            }
            futex::wake_op(&t.mm, word, addr2, n, n2, val3 as u32).map(|c| c as u64)
        }
        other => {
            let _ = t.unimplemented_option("futex", other);
            Err(Errno::ENOSYS)
        }
    }
}
