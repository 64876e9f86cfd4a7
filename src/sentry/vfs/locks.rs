//! Advisory file locks: flock(2) locks and fcntl(2) record locks, both the
//! POSIX kind (owned by a process) and the open-file-description kind
//! (F_OFD_*, owned by the description). Files are keyed by (dev, ino), so
//! every open of one file shares its locks.
//!
//! flock locks belong to an open file description and go when it closes
//! for the last time. POSIX record locks belong to a process and go when
//! it closes any descriptor of the file, or exits. OFD locks go with their
//! description. Record locks of both kinds conflict with each other; flock
//! locks live apart from them, as on Linux.
//!
//! Waits for a lock sleep on one condition variable that every change
//! signals, re-checking at least every 100 ms for a signal or kill. A
//! POSIX owner about to wait for an owner that (through a chain of
//! waiters) waits for it gets EDEADLK.
//!
//! Lock order: the table's mutex is a leaf.

use super::poll::POLLIN;
use super::waitq::{block_as_current, WaitQueue};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::abi::{Errno, SysResult};

/// A file's identity: (dev, ino).
pub type FileKey = (u64, u64);

/// Who holds a record lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Owner {
    /// A process (POSIX locks), by an id unique while it lives.
    Process(usize),
    /// An open file description (OFD locks).
    Description(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Read,
    Write,
}

/// End of a lock that reaches to the end of the file, however far.
pub const TO_EOF: u64 = u64::MAX;

/// One record lock over bytes `start..=end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordLock {
    pub owner: Owner,
    /// The owner's pid, for F_GETLK (-1 is reported for OFD locks).
    pub pid: i32,
    pub kind: Kind,
    pub start: u64,
    pub end: u64,
}

impl RecordLock {
    fn overlaps(&self, start: u64, end: u64) -> bool {
        self.start <= end && start <= self.end
    }
}

/// The record locks of one file. Invariant: an owner's locks never
/// overlap, and two of its locks of the same kind are never adjacent
/// (they are merged).
#[derive(Default, Debug)]
pub struct Records(Vec<RecordLock>);

impl Records {
    /// A lock of another owner that `kind` over `start..=end` conflicts
    /// with (read locks only conflict with write locks).
    pub fn conflict(&self, owner: Owner, kind: Kind, start: u64, end: u64) -> Option<RecordLock> {
        self.0
            .iter()
            .find(|l| {
                l.owner != owner
                    && l.overlaps(start, end)
                    && (kind == Kind::Write || l.kind == Kind::Write)
            })
            .copied()
    }

    /// Sets `owner`'s lock over `start..=end` to `kind` (None unlocks),
    /// splitting its locks that reach past the range and merging with its
    /// neighbours of the same kind.
    pub fn set(&mut self, owner: Owner, pid: i32, kind: Option<Kind>, start: u64, end: u64) {
        let mut kept = Vec::with_capacity(self.0.len() + 2);
        for l in self.0.drain(..) {
            if l.owner != owner || !l.overlaps(start, end) {
                kept.push(l);
                continue;
            }
            if l.start < start {
                kept.push(RecordLock {
                    end: start - 1,
                    ..l
                });
            }
            if l.end > end {
                kept.push(RecordLock {
                    start: end + 1,
                    ..l
                });
            }
        }
        if let Some(kind) = kind {
            let mut new = RecordLock {
                owner,
                pid,
                kind,
                start,
                end,
            };
            kept.retain(|l| {
                let touches = l.end.checked_add(1) == Some(new.start)
                    || new.end.checked_add(1) == Some(l.start);
                if l.owner == owner && l.kind == kind && touches {
                    new.start = new.start.min(l.start);
                    new.end = new.end.max(l.end);
                    false
                } else {
                    true
                }
            });
            kept.push(new);
        }
        kept.sort_by_key(|l| (l.start, l.end));
        self.0 = kept;
    }

    /// Drops every lock of `owner`; true when it had some.
    pub fn remove_owner(&mut self, owner: Owner) -> bool {
        let before = self.0.len();
        self.0.retain(|l| l.owner != owner);
        self.0.len() != before
    }

    pub fn locks(&self) -> &[RecordLock] {
        &self.0
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Default)]
struct FileLocks {
    records: Records,
    /// flock holders: (description, exclusive).
    flocks: Vec<(usize, bool)>,
}

#[derive(Default)]
struct Table {
    files: HashMap<FileKey, FileLocks>,
    /// POSIX owners blocked in F_SETLKW, and the owner they wait for.
    waiting: HashMap<Owner, Owner>,
}

impl Table {
    /// Whether `owner` waiting for `holder` closes a cycle of waiters.
    fn deadlocks(&self, owner: Owner, holder: Owner) -> bool {
        let mut at = holder;
        for _ in 0..=self.waiting.len() {
            if at == owner {
                return true;
            }
            match self.waiting.get(&at) {
                Some(&next) => at = next,
                None => return false,
            }
        }
        false
    }

    fn tidy(&mut self, key: FileKey) {
        if self
            .files
            .get(&key)
            .is_some_and(|f| f.records.is_empty() && f.flocks.is_empty())
        {
            self.files.remove(&key);
        }
    }
}

struct Global {
    table: Mutex<Table>,
    /// Told of every lock that goes (blocked requests try again).
    changed: Arc<WaitQueue>,
}

fn global() -> &'static Global {
    static G: OnceLock<Global> = OnceLock::new();
    G.get_or_init(|| Global {
        table: Mutex::new(Table::default()),
        changed: WaitQueue::new(),
    })
}

/// Something changed in the table: blocked requests try again.
fn changed() {
    global().changed.notify(POLLIN);
}

/// Blocks the calling task until `attempt` answers, trying again at each
/// change of the table; EINTR when `interrupted` (a signal, which also
/// wakes the task).
fn wait_on<R>(
    interrupted: &dyn Fn() -> bool,
    attempt: impl FnMut() -> Option<SysResult<R>>,
) -> SysResult<R> {
    block_as_current(&global().changed, POLLIN, interrupted, attempt)
}

/// How many record locks of process owners exist (close skips the table
/// when there are none).
static PROCESS_LOCKS: AtomicUsize = AtomicUsize::new(0);

fn lock() -> MutexGuard<'static, Table> {
    global().table.lock().unwrap()
}

fn recount(t: &Table) {
    let n = t
        .files
        .values()
        .flat_map(|f| f.records.locks())
        .filter(|l| matches!(l.owner, Owner::Process(_)))
        .count();
    PROCESS_LOCKS.store(n, Ordering::SeqCst);
}

/// What a record-lock request asks for.
#[derive(Clone, Copy, Debug)]
pub struct Request {
    pub owner: Owner,
    pub pid: i32,
    /// None unlocks.
    pub kind: Option<Kind>,
    pub start: u64,
    pub end: u64,
}

/// F_SETLK / F_SETLKW (and the OFD forms): EAGAIN on a conflict without
/// `wait`; with it, sleeps until the range is free (EINTR when
/// `interrupted`, EDEADLK when waiting would never end).
pub fn set_record(
    key: FileKey,
    req: Request,
    wait: bool,
    interrupted: &dyn Fn() -> bool,
) -> SysResult<()> {
    let waited = wait_on(interrupted, || {
        let mut t = lock();
        let f = t.files.entry(key).or_default();
        let conflict = req
            .kind
            .and_then(|k| f.records.conflict(req.owner, k, req.start, req.end));
        let Some(holder) = conflict else {
            f.records
                .set(req.owner, req.pid, req.kind, req.start, req.end);
            t.waiting.remove(&req.owner);
            t.tidy(key);
            recount(&t);
            drop(t);
            changed();
            return Some(Ok(()));
        };
        if !wait {
            t.tidy(key);
            return Some(Err(Errno::EAGAIN));
        }
        if matches!(req.owner, Owner::Process(_)) {
            if t.deadlocks(req.owner, holder.owner) {
                t.waiting.remove(&req.owner);
                return Some(Err(Errno::EDEADLK));
            }
            t.waiting.insert(req.owner, holder.owner);
        }
        None
    });
    if waited == Err(Errno::EINTR) {
        lock().waiting.remove(&req.owner);
    }
    waited
}

/// F_GETLK: the first lock that would conflict with `req`, if any.
pub fn get_record(key: FileKey, req: Request) -> Option<RecordLock> {
    let kind = req.kind?;
    let t = lock();
    t.files
        .get(&key)
        .and_then(|f| f.records.conflict(req.owner, kind, req.start, req.end))
}

/// flock(2): takes (`exclusive` or shared) or drops (None) the lock of
/// description `desc`. A held lock of the other mode is dropped first, so
/// a conversion is not atomic (as on Linux).
pub fn flock(
    key: FileKey,
    desc: usize,
    mode: Option<bool>,
    wait: bool,
    interrupted: &dyn Fn() -> bool,
) -> SysResult<()> {
    let mut t = lock();
    let f = t.files.entry(key).or_default();
    if let Some(i) = f.flocks.iter().position(|&(d, _)| d == desc) {
        if Some(f.flocks[i].1) == mode {
            return Ok(());
        }
        f.flocks.remove(i);
        drop(t);
        changed();
        t = lock();
    }
    let Some(exclusive) = mode else {
        t.tidy(key);
        return Ok(());
    };
    drop(t);
    let taken = wait_on(interrupted, || {
        let mut t = lock();
        let f = t.files.entry(key).or_default();
        let busy = f.flocks.iter().any(|&(_, ex)| ex || exclusive);
        if !busy {
            f.flocks.push((desc, exclusive));
            return Some(Ok(()));
        }
        if !wait {
            t.tidy(key);
            return Some(Err(Errno::EAGAIN));
        }
        None
    });
    if taken == Err(Errno::EINTR) {
        lock().tidy(key);
    }
    taken
}

/// A process closed a descriptor of file `key`: its POSIX locks on the
/// file go.
pub fn release_process_file(key: FileKey, process: usize) {
    if PROCESS_LOCKS.load(Ordering::SeqCst) == 0 {
        return;
    }
    let mut t = lock();
    let removed = t
        .files
        .get_mut(&key)
        .is_some_and(|f| f.records.remove_owner(Owner::Process(process)));
    if removed {
        t.tidy(key);
        recount(&t);
        drop(t);
        changed();
    }
}

/// A process ended: all its POSIX locks go.
pub fn release_process(process: usize) {
    if PROCESS_LOCKS.load(Ordering::SeqCst) == 0 {
        return;
    }
    release_all(Owner::Process(process), None);
}

/// An open file description closed for the last time: its OFD and flock
/// locks go.
pub fn release_description(desc: usize) {
    release_all(Owner::Description(desc), Some(desc));
}

fn release_all(owner: Owner, flock_desc: Option<usize>) {
    let mut t = lock();
    t.waiting.remove(&owner);
    for f in t.files.values_mut() {
        f.records.remove_owner(owner);
        if let Some(d) = flock_desc {
            f.flocks.retain(|&(x, _)| x != d);
        }
    }
    t.files
        .retain(|_, f| !(f.records.is_empty() && f.flocks.is_empty()));
    recount(&t);
    drop(t);
    changed();
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Owner = Owner::Process(1);
    const B: Owner = Owner::Process(2);

    fn ranges(r: &Records) -> Vec<(Owner, Kind, u64, u64)> {
        r.locks()
            .iter()
            .map(|l| (l.owner, l.kind, l.start, l.end))
            .collect()
    }

    #[test]
    fn records_unlock_in_the_middle_splits_the_lock() {
        let mut r = Records::default();
        r.set(A, 1, Some(Kind::Write), 0, 99);
        r.set(A, 1, None, 10, 19);
        assert_eq!(
            ranges(&r),
            vec![(A, Kind::Write, 0, 9), (A, Kind::Write, 20, 99)]
        );
    }

    #[test]
    fn records_adjacent_locks_of_one_kind_merge() {
        let mut r = Records::default();
        r.set(A, 1, Some(Kind::Read), 0, 9);
        r.set(A, 1, Some(Kind::Read), 20, 29);
        r.set(A, 1, Some(Kind::Read), 10, 19);
        assert_eq!(ranges(&r), vec![(A, Kind::Read, 0, 29)]);
    }

    #[test]
    fn records_other_kind_in_the_middle_replaces_that_part() {
        let mut r = Records::default();
        r.set(A, 1, Some(Kind::Read), 0, TO_EOF);
        r.set(A, 1, Some(Kind::Write), 5, 9);
        assert_eq!(
            ranges(&r),
            vec![
                (A, Kind::Read, 0, 4),
                (A, Kind::Write, 5, 9),
                (A, Kind::Read, 10, TO_EOF)
            ]
        );
    }

    #[test]
    fn records_read_locks_share_and_write_conflicts() {
        let mut r = Records::default();
        r.set(A, 1, Some(Kind::Read), 0, 9);
        assert_eq!(r.conflict(B, Kind::Read, 0, 9), None);
        assert_eq!(r.conflict(B, Kind::Write, 9, 20).map(|l| l.owner), Some(A));
        assert_eq!(r.conflict(B, Kind::Write, 10, 20), None);
        assert_eq!(r.conflict(A, Kind::Write, 0, 9), None);
    }

    #[test]
    fn records_remove_owner_keeps_the_others() {
        let mut r = Records::default();
        r.set(A, 1, Some(Kind::Read), 0, 9);
        r.set(B, 2, Some(Kind::Read), 5, 15);
        assert!(r.remove_owner(A));
        assert_eq!(ranges(&r), vec![(B, Kind::Read, 5, 15)]);
        assert!(!r.remove_owner(A));
    }

    #[test]
    fn table_two_process_cycle_is_a_deadlock() {
        let mut t = Table::default();
        t.waiting.insert(B, A);
        assert!(t.deadlocks(A, B));
        assert!(!t.deadlocks(B, Owner::Process(3)));
    }

    #[test]
    fn flock_exclusive_conflicts_until_released() {
        let key = (0xdead, 1);
        let never = || false;
        flock(key, 101, Some(true), false, &never).unwrap();
        assert_eq!(
            flock(key, 102, Some(false), false, &never),
            Err(Errno::EAGAIN)
        );
        release_description(101);
        flock(key, 102, Some(false), false, &never).unwrap();
        flock(key, 103, Some(false), false, &never).unwrap();
        release_description(102);
        release_description(103);
    }
}
