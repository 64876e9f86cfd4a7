//! System V IPC: shared memory segments, semaphore sets and message
//! queues, in one IPC namespace per sandbox (the containers of a pod share
//! it, as they share UTS).
//!
//! Each kind has a table from id to object; an object carries its
//! `Perm` (key, owner, creator, mode) and its own lock. Ids are
//! `index + 32768 * sequence` as on Linux, so a removed id is not reused at
//! once. A segment's memory is a `SharedObject` mapped by shmat; IPC_RMID
//! takes it out of the table and its frames go with the last mapping.
//! Blocked semop and msgsnd/msgrcv calls sleep on the object's wait queue;
//! every change notifies it, and removal wakes them with EIDRM.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};
use std::time::Instant;

use crate::abi::{Errno, SysResult};
use crate::sentry::mm::SharedObject;
use crate::sentry::vfs::poll::POLLIN;
use crate::sentry::vfs::waitq::{block_current, WaitQueue};

pub const IPC_PRIVATE: i32 = 0;
pub const IPC_CREAT: u64 = 0o1000;
pub const IPC_EXCL: u64 = 0o2000;
pub const IPC_NOWAIT: u64 = 0o4000;

/// Linux's default limits (ipc/util.h, include/uapi/linux/{shm,sem,msg}.h).
pub const SHMMIN: u64 = 1;
pub const SHMMAX: u64 = u64::MAX - (1 << 24);
pub const SHMMNI: u64 = 4096;
pub const SEMMSL: u64 = 32000;
pub const SEMMNI: u64 = 32000;
pub const SEMOPM: u64 = 500;
pub const SEMVMX: i32 = 32767;
pub const MSGMAX: u64 = 8192;
pub const MSGMNB: u64 = 16384;
pub const MSGMNI: u64 = 32000;
const SEQ_MULTIPLIER: i32 = 32768;

/// CAP_IPC_OWNER: bypasses the permission checks.
const CAP_IPC_OWNER: u32 = 15;

/// Who asks: for permission checks and the records of who did what.
#[derive(Clone)]
pub struct Caller {
    pub pid: i32,
    pub euid: u32,
    pub egid: u32,
    pub groups: Vec<u32>,
    pub ipc_owner: bool,
    /// CAP_SYS_ADMIN: may change or remove objects of others.
    pub sys_admin: bool,
}

impl Caller {
    pub fn of(t: &super::Task) -> Caller {
        Caller {
            pid: t.pid,
            euid: t.creds.euid,
            egid: t.creds.egid,
            groups: t.groups.clone(),
            ipc_owner: t.creds.has_cap(CAP_IPC_OWNER),
            sys_admin: t.creds.has_cap(21),
        }
    }
}

/// The permissions of an object (struct ipc64_perm).
#[derive(Clone, Copy, Debug)]
pub struct Perm {
    pub key: i32,
    pub uid: u32,
    pub gid: u32,
    pub cuid: u32,
    pub cgid: u32,
    pub mode: u32,
    pub seq: u16,
}

impl Perm {
    /// The permissions of a new object made by `c` with get-call `mode`.
    pub fn new_for(key: i32, mode: u32, c: &Caller, seq: u16) -> Perm {
        Perm {
            key,
            uid: c.euid,
            gid: c.egid,
            cuid: c.euid,
            cgid: c.egid,
            mode: mode & 0o777,
            seq,
        }
    }

    /// Whether `c` may do `want` (4 read, 2 write, as the mode bits).
    pub fn allows(&self, c: &Caller, want: u32) -> bool {
        if c.ipc_owner {
            return true;
        }
        let bits = if c.euid == self.uid || c.euid == self.cuid {
            self.mode >> 6
        } else if c.egid == self.gid || c.egid == self.cgid || c.groups.contains(&self.gid) {
            self.mode >> 3
        } else {
            self.mode
        };
        bits & want == want
    }

    /// Whether `c` may change or remove the object (IPC_SET, IPC_RMID).
    pub fn owned_by(&self, c: &Caller) -> bool {
        c.sys_admin || c.euid == self.uid || c.euid == self.cuid
    }

    /// IPC_SET: owner, group and the low 9 mode bits.
    pub fn set(&mut self, uid: u32, gid: u32, mode: u32) {
        self.uid = uid;
        self.gid = gid;
        self.mode = (self.mode & !0o777) | (mode & 0o777);
    }

    /// struct ipc64_perm, 48 bytes.
    pub fn bytes(&self) -> [u8; 48] {
        let mut b = [0u8; 48];
        b[0..4].copy_from_slice(&self.key.to_le_bytes());
        b[4..8].copy_from_slice(&self.uid.to_le_bytes());
        b[8..12].copy_from_slice(&self.gid.to_le_bytes());
        b[12..16].copy_from_slice(&self.cuid.to_le_bytes());
        b[16..20].copy_from_slice(&self.cgid.to_le_bytes());
        b[20..24].copy_from_slice(&self.mode.to_le_bytes());
        b[24..26].copy_from_slice(&self.seq.to_le_bytes());
        b
    }
}

/// Seconds since the epoch, for the *_time fields.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// One kind's objects by index, and the sequence that makes ids.
pub struct Table<T> {
    slots: BTreeMap<i32, Arc<T>>,
    seq: u16,
    max: u64,
}

impl<T> Table<T> {
    const fn new(max: u64) -> Table<T> {
        Table {
            slots: BTreeMap::new(),
            seq: 0,
            max,
        }
    }

    /// The object of `id`: EINVAL when there is none (or it was removed).
    pub fn get(&self, id: i32, perm: impl Fn(&T) -> Perm) -> SysResult<Arc<T>> {
        if id < 0 {
            return Err(Errno::EINVAL);
        }
        let obj = self
            .slots
            .get(&(id % SEQ_MULTIPLIER))
            .ok_or(Errno::EINVAL)?;
        if perm(obj).seq as i32 != id / SEQ_MULTIPLIER {
            return Err(Errno::EINVAL);
        }
        Ok(obj.clone())
    }

    /// The object whose key is `key`.
    fn find(&self, key: i32, perm: impl Fn(&T) -> Perm) -> Option<(i32, Arc<T>)> {
        self.slots.iter().find_map(|(&idx, o)| {
            let p = perm(o);
            (p.key == key).then(|| (idx + SEQ_MULTIPLIER * p.seq as i32, o.clone()))
        })
    }

    /// Adds the object `make` builds with its sequence number; its id.
    fn add(&mut self, make: impl FnOnce(u16) -> SysResult<T>) -> SysResult<i32> {
        if self.slots.len() as u64 >= self.max {
            return Err(Errno::ENOSPC);
        }
        let idx = (0..).find(|i| !self.slots.contains_key(i)).unwrap();
        let seq = self.seq;
        let obj = make(seq)?;
        self.seq = (self.seq + 1) % (i32::MAX / SEQ_MULTIPLIER) as u16;
        self.slots.insert(idx, Arc::new(obj));
        Ok(idx + SEQ_MULTIPLIER * seq as i32)
    }

    pub fn remove(&mut self, id: i32) {
        self.slots.remove(&(id % SEQ_MULTIPLIER));
    }

    /// The highest index in use (IPC_INFO's answer), 0 when none.
    pub fn highest(&self) -> i32 {
        self.slots.keys().next_back().copied().unwrap_or(0)
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The object at index `idx` and its id (SHM_STAT and friends).
    pub fn at_index(&self, idx: i32, perm: impl Fn(&T) -> Perm) -> SysResult<(i32, Arc<T>)> {
        let o = self.slots.get(&idx).ok_or(Errno::EINVAL)?;
        Ok((idx + SEQ_MULTIPLIER * perm(o).seq as i32, o.clone()))
    }
}

/// Finds the object for `key` or makes one (the get calls' shared rules):
/// IPC_PRIVATE always makes one; IPC_CREAT|IPC_EXCL fails on an existing
/// key with EEXIST; no IPC_CREAT fails on a missing one with ENOENT.
/// `check` vets an existing object (size, permissions).
pub fn get_or_make<T>(
    table: &mut Table<T>,
    key: i32,
    flags: u64,
    perm: impl Fn(&T) -> Perm,
    check: impl FnOnce(&T) -> SysResult<()>,
    make: impl FnOnce(u16) -> SysResult<T>,
) -> SysResult<i32> {
    if key != IPC_PRIVATE {
        if let Some((id, obj)) = table.find(key, &perm) {
            if flags & IPC_CREAT != 0 && flags & IPC_EXCL != 0 {
                return Err(Errno::EEXIST);
            }
            check(&obj)?;
            return Ok(id);
        }
        if flags & IPC_CREAT == 0 {
            return Err(Errno::ENOENT);
        }
    }
    table.add(make)
}

// ---- shared memory ----

pub struct Segment {
    pub state: Mutex<SegState>,
    pub object: Arc<SharedObject>,
}

pub struct SegState {
    pub perm: Perm,
    pub size: u64,
    pub atime: i64,
    pub dtime: i64,
    pub ctime: i64,
    pub cpid: i32,
    pub lpid: i32,
}

impl Segment {
    pub fn perm(&self) -> Perm {
        self.state.lock().unwrap().perm
    }

    /// Mappings of the segment now (shm_nattch): the object's holders
    /// less the segment's own reference.
    pub fn nattch(&self) -> u64 {
        (Arc::strong_count(&self.object) as u64).saturating_sub(1)
    }
}

// ---- semaphores ----

#[derive(Clone, Copy, Default)]
pub struct Sem {
    pub val: i32,
    /// Last process to change it (GETPID).
    pub pid: i32,
}

/// A semaphore set or message queue: its state, and the queue its
/// blocked callers sleep on.
pub struct Waitable<S> {
    pub state: Mutex<S>,
    pub queue: Arc<WaitQueue>,
}

/// State that carries an object's permissions.
pub trait HasPerm {
    fn perm(&self) -> Perm;
}

impl<S: HasPerm> Waitable<S> {
    pub fn new(state: S) -> Waitable<S> {
        Waitable {
            state: Mutex::new(state),
            queue: WaitQueue::new(),
        }
    }

    pub fn perm(&self) -> Perm {
        self.state.lock().unwrap().perm()
    }
}

pub type SemSet = Waitable<SemState>;
pub type MsgQueue = Waitable<MsgState>;

pub struct SemState {
    pub perm: Perm,
    pub sems: Vec<Sem>,
    pub otime: i64,
    pub ctime: i64,
    pub removed: bool,
    /// Waiters for a value to grow (GETNCNT) and to reach zero (GETZCNT),
    /// per semaphore.
    pub ncnt: Vec<u32>,
    pub zcnt: Vec<u32>,
}

impl HasPerm for SemState {
    fn perm(&self) -> Perm {
        self.perm
    }
}

/// One operation of semop (struct sembuf).
#[derive(Clone, Copy, Debug)]
pub struct SemOp {
    pub num: u16,
    pub op: i16,
    pub flags: i16,
}

pub const SEM_UNDO: i16 = 0x1000;

/// Adjustments to apply when a process exits (SEM_UNDO), by (set id,
/// semaphore) per process (keyed by the process's identity, not its pid:
/// containers with their own pid namespaces share the IPC namespace).
type Undo = HashMap<usize, HashMap<(i32, u16), i32>>;

// ---- message queues ----

pub struct Msg {
    pub mtype: i64,
    pub text: Vec<u8>,
}

pub struct MsgState {
    pub perm: Perm,
    pub msgs: VecDeque<Msg>,
    pub bytes: u64,
    pub qbytes: u64,
    pub stime: i64,
    pub rtime: i64,
    pub ctime: i64,
    pub lspid: i32,
    pub lrpid: i32,
    pub removed: bool,
}

impl HasPerm for MsgState {
    fn perm(&self) -> Perm {
        self.perm
    }
}

/// The IPC namespace.
pub struct Ipc {
    pub shm: Mutex<Table<Segment>>,
    pub sem: Mutex<Table<SemSet>>,
    pub msg: Mutex<Table<MsgQueue>>,
    undo: Mutex<Undo>,
    /// Every segment still mapped somewhere, removed or not (shmdt finds
    /// its segment by the object of the mapping).
    attached: Mutex<Vec<Weak<Segment>>>,
}

static IPC: LazyLock<Ipc> = LazyLock::new(|| Ipc {
    shm: Mutex::new(Table::new(SHMMNI)),
    sem: Mutex::new(Table::new(SEMMNI)),
    msg: Mutex::new(Table::new(MSGMNI)),
    undo: Mutex::default(),
    attached: Mutex::default(),
});

/// The sandbox's IPC namespace.
pub fn ipc() -> &'static Ipc {
    &IPC
}

impl Ipc {
    pub fn shm(&self) -> MutexGuard<'_, Table<Segment>> {
        self.shm.lock().unwrap()
    }

    pub fn sem(&self) -> MutexGuard<'_, Table<SemSet>> {
        self.sem.lock().unwrap()
    }

    pub fn msg(&self) -> MutexGuard<'_, Table<MsgQueue>> {
        self.msg.lock().unwrap()
    }

    /// Remembers that `seg` is mapped (see `attached`).
    pub fn note_attached(&self, seg: &Arc<Segment>) {
        let mut a = self.attached.lock().unwrap();
        a.retain(|w| w.strong_count() > 0);
        if !a.iter().any(|w| w.as_ptr() == Arc::as_ptr(seg)) {
            a.push(Arc::downgrade(seg));
        }
    }

    /// The segment whose memory is `object`.
    pub fn segment_of(&self, object: &Arc<SharedObject>) -> Option<Arc<Segment>> {
        let a = self.attached.lock().unwrap();
        a.iter()
            .filter_map(Weak::upgrade)
            .find(|s| Arc::ptr_eq(&s.object, object))
    }

    /// semop/semtimedop: applies all of `ops` at once, or none and waits
    /// until they can be (EAGAIN with IPC_NOWAIT or at `deadline`).
    #[allow(clippy::too_many_arguments)]
    pub fn semop(
        &self,
        id: i32,
        process: usize,
        set: &Arc<SemSet>,
        ops: &[SemOp],
        pid: i32,
        deadline: Option<Instant>,
    ) -> SysResult<()> {
        let nowait = ops.iter().any(|o| o.flags as u64 & IPC_NOWAIT != 0);
        let mut counted: Option<(usize, bool)> = None;
        let r = block_current(&set.queue, POLLIN, || {
            let mut st = set.state.lock().unwrap();
            if st.removed {
                return Some(Err(Errno::EIDRM));
            }
            if let Some((n, zero)) = counted.take() {
                let c = if zero {
                    &mut st.zcnt[n]
                } else {
                    &mut st.ncnt[n]
                };
                *c = c.saturating_sub(1);
            }
            match try_ops(&mut st.sems, ops, pid) {
                Ok(()) => {
                    st.otime = now();
                    Some(Ok(()))
                }
                Err(Blocked::Error(e)) => Some(Err(e)),
                Err(Blocked::On(n, zero)) => {
                    if nowait || deadline.is_some_and(|d| Instant::now() >= d) {
                        return Some(Err(Errno::EAGAIN));
                    }
                    let c = if zero {
                        &mut st.zcnt[n]
                    } else {
                        &mut st.ncnt[n]
                    };
                    *c += 1;
                    counted = Some((n, zero));
                    None
                }
            }
        });
        if let Some((n, zero)) = counted {
            let mut st = set.state.lock().unwrap();
            if !st.removed {
                let c = if zero {
                    &mut st.zcnt[n]
                } else {
                    &mut st.ncnt[n]
                };
                *c = c.saturating_sub(1);
            }
        }
        r?;
        // Record what exit must undo.
        let undo_ops: Vec<_> = ops.iter().filter(|o| o.flags & SEM_UNDO != 0).collect();
        if !undo_ops.is_empty() {
            let mut undo = self.undo.lock().unwrap();
            let mine = undo.entry(process).or_default();
            for o in undo_ops {
                *mine.entry((id, o.num)).or_default() -= o.op as i32;
            }
        }
        set.queue.notify(POLLIN);
        Ok(())
    }

    /// Forgets the undo records of set `id` (removed, or values set).
    pub fn forget_undo(&self, id: i32, num: Option<u16>) {
        let mut undo = self.undo.lock().unwrap();
        for adj in undo.values_mut() {
            adj.retain(|&(i, n), _| i != id || num.is_some_and(|m| m != n));
        }
    }

    /// A process exits: its SEM_UNDO adjustments are applied (each value
    /// kept within 0..=SEMVMX, as Linux clamps them).
    pub fn process_exit(&self, process: usize, pid: i32) {
        let Some(adj) = self.undo.lock().unwrap().remove(&process) else {
            return;
        };
        let table = self.sem();
        for ((id, num), delta) in adj {
            let Ok(set) = table.get(id, SemSet::perm) else {
                continue;
            };
            {
                let mut st = set.state.lock().unwrap();
                if let Some(s) = st.sems.get_mut(num as usize) {
                    s.val = (s.val + delta).clamp(0, SEMVMX);
                    s.pid = pid;
                }
            }
            set.queue.notify(POLLIN);
        }
    }
}

enum Blocked {
    /// Must wait: for semaphore n to grow (false) or reach zero (true).
    On(usize, bool),
    Error(Errno),
}

/// Applies `ops` to a copy of `sems` and keeps it only if all succeed.
fn try_ops(sems: &mut [Sem], ops: &[SemOp], pid: i32) -> Result<(), Blocked> {
    let mut next: Vec<Sem> = sems.to_vec();
    for o in ops {
        let s = next
            .get_mut(o.num as usize)
            .ok_or(Blocked::Error(Errno::EFBIG))?;
        match o.op {
            0 if s.val != 0 => return Err(Blocked::On(o.num as usize, true)),
            0 => {}
            op => {
                let v = s.val + op as i32;
                if v < 0 {
                    return Err(Blocked::On(o.num as usize, false));
                }
                if v > SEMVMX {
                    return Err(Blocked::Error(Errno::ERANGE));
                }
                s.val = v;
            }
        }
    }
    for o in ops {
        next[o.num as usize].pid = pid;
    }
    sems.copy_from_slice(&next);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sems(vals: &[i32]) -> Vec<Sem> {
        vals.iter().map(|&val| Sem { val, pid: 0 }).collect()
    }

    fn op(num: u16, op: i16) -> SemOp {
        SemOp { num, op, flags: 0 }
    }

    #[test]
    fn ipc_semops_apply_all_or_none() {
        let mut s = sems(&[1, 0]);
        assert!(try_ops(&mut s, &[op(0, -1), op(1, 2)], 7).is_ok());
        assert_eq!((s[0].val, s[1].val, s[1].pid), (0, 2, 7));
        // The second would go below zero: the first is not applied either.
        assert!(matches!(
            try_ops(&mut s, &[op(1, -1), op(0, -1)], 8),
            Err(Blocked::On(0, false))
        ));
        assert_eq!((s[0].val, s[1].val), (0, 2));
        assert!(matches!(
            try_ops(&mut s, &[op(1, 0)], 8),
            Err(Blocked::On(1, true))
        ));
        assert!(matches!(
            try_ops(&mut s, &[op(0, i16::MAX), op(0, 1)], 8),
            Err(Blocked::Error(Errno::ERANGE))
        ));
    }

    #[test]
    fn ipc_ids_carry_a_sequence_and_keys_are_found() {
        let mut t: Table<Mutex<Perm>> = Table::new(4);
        let c = Caller {
            pid: 1,
            euid: 0,
            egid: 0,
            groups: vec![],
            ipc_owner: false,
            sys_admin: false,
        };
        let perm = |m: &Mutex<Perm>| *m.lock().unwrap();
        let a = get_or_make(
            &mut t,
            42,
            IPC_CREAT,
            perm,
            |_| Ok(()),
            |seq| Ok(Mutex::new(Perm::new_for(42, 0o600, &c, seq))),
        )
        .unwrap();
        let again = get_or_make(&mut t, 42, 0, perm, |_| Ok(()), |_| unreachable!()).unwrap();
        assert_eq!(a, again);
        assert_eq!(
            get_or_make(
                &mut t,
                42,
                IPC_CREAT | IPC_EXCL,
                perm,
                |_| Ok(()),
                |_| unreachable!()
            ),
            Err(Errno::EEXIST)
        );
        assert_eq!(
            get_or_make(&mut t, 43, 0, perm, |_| Ok(()), |_| unreachable!()),
            Err(Errno::ENOENT)
        );
        t.remove(a);
        assert_eq!(t.get(a, perm).err(), Some(Errno::EINVAL));
        let b = get_or_make(
            &mut t,
            42,
            IPC_CREAT,
            perm,
            |_| Ok(()),
            |seq| Ok(Mutex::new(Perm::new_for(42, 0o600, &c, seq))),
        )
        .unwrap();
        assert_ne!(a, b, "a new object gets a new id");
        let failed = get_or_make(
            &mut t,
            IPC_PRIVATE,
            0,
            perm,
            |_| Ok(()),
            |_| Err(Errno::ENOMEM),
        );
        assert_eq!(failed, Err(Errno::ENOMEM));
        assert_eq!(t.len(), 1);
    }
}
