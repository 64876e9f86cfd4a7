//! Futexes: wait queues keyed by a guest address, what pthread mutexes,
//! condition variables, joins and glibc's locks sleep on.
//!
//! A key names the futex word (`Mm::futex_key`). A word in a private
//! mapping is named by its memory manager and address; one in a shared
//! mapping by the shared object and its offset there, so that processes
//! mapping the object at different addresses meet on it (process-shared
//! mutexes across fork), unless the guest said FUTEX_PRIVATE_FLAG, as
//! Linux does.
//!
//! The value check of a wait and the queueing happen under the table's
//! lock, which every wake takes too, so a wake that follows the guest's
//! store to the word is never lost. Lock order: the table, then a memory
//! manager; a waiter's own `Control::wake` lock is never held while the
//! table's is taken.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use super::process::Control;
use super::Task;
use crate::abi::{Errno, SysResult};
use crate::sentry::mm::{FutexKey as Key, Mm};

/// A futex word as the guest names it.
#[derive(Clone, Copy, Debug)]
pub struct Word {
    pub addr: u64,
    /// FUTEX_PRIVATE_FLAG: only this process uses the word.
    pub private: bool,
}

impl Word {
    fn key(&self, mm: &Mm) -> Key {
        mm.futex_key(self.addr, self.private)
    }
}

/// A thread asleep on a futex.
struct Waiter {
    woken: AtomicBool,
    bitset: u32,
    control: Arc<Control>,
}

impl Waiter {
    fn wake(&self) {
        self.woken.store(true, Ordering::SeqCst);
        let _guard = self.control.wake.0.lock().unwrap();
        self.control.wake.1.notify_all();
    }
}

type Table = HashMap<Key, Vec<Arc<Waiter>>>;

fn table() -> MutexGuard<'static, Table> {
    static TABLE: OnceLock<Mutex<Table>> = OnceLock::new();
    TABLE.get_or_init(Default::default).lock().unwrap()
}

/// Why a wait ended without a wake.
#[derive(Debug, PartialEq, Eq)]
pub enum WaitError {
    /// The word did not hold the expected value.
    Again,
    TimedOut,
    Interrupted,
    Fault,
}

impl From<WaitError> for Errno {
    fn from(e: WaitError) -> Errno {
        match e {
            WaitError::Again => Errno::EAGAIN,
            WaitError::TimedOut => Errno::ETIMEDOUT,
            WaitError::Interrupted => Errno::EINTR,
            WaitError::Fault => Errno::EFAULT,
        }
    }
}

/// FUTEX_WAIT(_BITSET): sleeps while `word` holds `val`, until a wake
/// matching `bitset`, the `deadline`, or a signal.
pub fn wait(
    mm: &Mm,
    control: &Arc<Control>,
    word: Word,
    val: u32,
    bitset: u32,
    deadline: Option<Instant>,
) -> Result<(), WaitError> {
    let key = word.key(mm);
    let waiter = Arc::new(Waiter {
        woken: AtomicBool::new(false),
        bitset,
        control: control.clone(),
    });
    {
        let mut t = table();
        let now = mm.read_u32(word.addr).map_err(|_| WaitError::Fault)?;
        if now != val {
            return Err(WaitError::Again);
        }
        t.entry(key).or_default().push(waiter.clone());
    }
    let (lock, cond) = &control.wake;
    // Asleep for the load average until this returns.
    let _blocked = crate::sentry::kernel::loadavg::blocked();
    let mut guard = lock.lock().unwrap();
    let why = loop {
        if waiter.woken.load(Ordering::SeqCst) {
            return Ok(());
        }
        if control.interrupted() {
            break WaitError::Interrupted;
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            break WaitError::TimedOut;
        }
        // The wake sets `woken` before it notifies, under this lock; the
        // bounded sleep is only for kills that do not notify.
        let slice = deadline.map_or(Duration::from_millis(100), |d| {
            (d - now).min(Duration::from_millis(100))
        });
        guard = cond.wait_timeout(guard, slice).unwrap().0;
    };
    drop(guard);
    let mut t = table();
    if let Some(q) = t.get_mut(&key) {
        q.retain(|w| !Arc::ptr_eq(w, &waiter));
        if q.is_empty() {
            t.remove(&key);
        }
    }
    // A wake that came in meanwhile counts: it took us off the queue.
    if waiter.woken.load(Ordering::SeqCst) {
        return Ok(());
    }
    Err(why)
}

/// Takes up to `n` waiters matching `bitset` off `q`.
fn take(q: &mut Vec<Arc<Waiter>>, n: usize, bitset: u32) -> Vec<Arc<Waiter>> {
    let mut out = Vec::new();
    q.retain(|w| {
        if out.len() < n && w.bitset & bitset != 0 {
            out.push(w.clone());
            false
        } else {
            true
        }
    });
    out
}

fn wake_locked(t: &mut Table, key: Key, n: usize, bitset: u32) -> Vec<Arc<Waiter>> {
    let Some(q) = t.get_mut(&key) else {
        return Vec::new();
    };
    let woken = take(q, n, bitset);
    if q.is_empty() {
        t.remove(&key);
    }
    woken
}

/// FUTEX_WAKE(_BITSET): wakes up to `n` waiters on `key`; returns how many.
pub fn wake(key: Key, n: usize, bitset: u32) -> usize {
    let woken = wake_locked(&mut table(), key, n, bitset);
    woken.iter().for_each(|w| w.wake());
    woken.len()
}

/// FUTEX_(CMP_)REQUEUE: wakes up to `n` waiters on `word` and moves up to
/// `requeue` others to the word at `to`. With `expect`, `word` must hold
/// it (EAGAIN otherwise). Returns woken + moved.
pub fn requeue(
    mm: &Mm,
    word: Word,
    to: u64,
    n: usize,
    requeue: usize,
    expect: Option<u32>,
) -> SysResult<usize> {
    let to = Word { addr: to, ..word };
    let (from, to) = (word.key(mm), to.key(mm));
    let mut t = table();
    if let Some(val) = expect {
        if mm.read_u32(word.addr)? != val {
            return Err(Errno::EAGAIN);
        }
    }
    let woken = wake_locked(&mut t, from, n, u32::MAX);
    let moved = wake_locked(&mut t, from, requeue, u32::MAX);
    let count = woken.len() + moved.len();
    if !moved.is_empty() {
        t.entry(to).or_default().extend(moved);
    }
    drop(t);
    woken.iter().for_each(|w| w.wake());
    Ok(count)
}

/// FUTEX_WAKE_OP: atomically applies the operation encoded in `op` to the
/// word at `addr2`, wakes up to `n` waiters on `word`, and up to `n2` on
/// the one at `addr2` if the old value passes the encoded comparison.
pub fn wake_op(mm: &Mm, word: Word, addr2: u64, n: usize, n2: usize, op: u32) -> SysResult<usize> {
    let kind = (op >> 28) & 7;
    let shift_arg = op & (8 << 28) != 0;
    let cmp = (op >> 24) & 15;
    let mut oparg = (op >> 12) & 0xfff;
    let cmparg = op & 0xfff;
    if shift_arg {
        if oparg > 31 {
            return Err(Errno::EINVAL);
        }
        oparg = 1 << oparg;
    }
    if kind > 4 || cmp > 5 {
        return Err(Errno::ENOSYS);
    }
    let word2 = Word {
        addr: addr2,
        ..word
    };
    let (key, key2) = (word.key(mm), word2.key(mm));
    let mut t = table();
    let old = mm.update_u32(addr2, |old| match kind {
        0 => oparg,                   // SET
        1 => old.wrapping_add(oparg), // ADD
        2 => old | oparg,             // OR
        3 => old & !oparg,            // ANDN
        _ => old ^ oparg,             // XOR
    })?;
    let passes = match cmp {
        0 => old == cmparg,
        1 => old != cmparg,
        2 => (old as i32) < cmparg as i32,
        3 => (old as i32) <= cmparg as i32,
        4 => (old as i32) > cmparg as i32,
        _ => (old as i32) >= cmparg as i32,
    };
    let mut woken = wake_locked(&mut t, key, n, u32::MAX);
    if passes {
        woken.extend(wake_locked(&mut t, key2, n2, u32::MAX));
    }
    drop(t);
    woken.iter().for_each(|w| w.wake());
    Ok(woken.len())
}

const FUTEX_WAITERS: u32 = 0x8000_0000;
const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
/// Most robust-list entries walked (Linux's ROBUST_LIST_LIMIT).
const ROBUST_LIST_LIMIT: usize = 2048;

/// A thread's end as futex users see it: locks it held on its robust list
/// are marked OWNER_DIED (and a waiter woken), and with CLONE_CHILD_CLEARTID
/// the tid word is zeroed and its waiters woken (pthread_join).
pub fn thread_exit(t: &mut Task) {
    if t.robust_list != 0 {
        walk_robust_list(t);
    }
    let addr = std::mem::take(&mut t.clear_child_tid);
    // Only other threads of the process are told, as Linux does. The
    // kernel's wakes are not private: the key of a word in shared memory
    // is the object's.
    if addr != 0 && t.mm.users() > 1 && t.mm.write_u32(addr, 0).is_ok() {
        wake(t.mm.futex_key(addr, false), 1, u32::MAX);
    }
}

fn walk_robust_list(t: &Task) {
    let head = t.robust_list;
    let read = |a: u64| t.mm.read_u64(a).ok();
    let (Some(mut entry), Some(offset), Some(pending)) =
        (read(head), read(head + 8), read(head + 16))
    else {
        return;
    };
    let offset = offset as i64;
    let mut seen = 0;
    while entry != head && seen < ROBUST_LIST_LIMIT {
        let next = read(entry);
        if entry != pending {
            owner_died(t, entry.wrapping_add_signed(offset));
        }
        match next {
            Some(n) => entry = n & !1,
            None => return,
        }
        seen += 1;
    }
    if pending != 0 {
        owner_died(t, (pending & !1).wrapping_add_signed(offset));
    }
}

/// Marks the robust futex at `addr` as left by a dead owner, if we own it.
fn owner_died(t: &Task, addr: u64) {
    let tid = t.tid as u32;
    let mark = |val: u32| {
        if val & FUTEX_TID_MASK == tid {
            (val & FUTEX_WAITERS) | FUTEX_OWNER_DIED
        } else {
            val
        }
    };
    match t.mm.update_u32(addr, mark) {
        Ok(val) if val & FUTEX_TID_MASK == tid && val & FUTEX_WAITERS != 0 => {
            wake(t.mm.futex_key(addr, false), 1, u32::MAX);
        }
        _ => {}
    }
}
