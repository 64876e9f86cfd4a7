//! System V IPC syscalls: shmget/shmat/shmdt/shmctl, semget/semop/
//! semtimedop/semctl, msgget/msgsnd/msgrcv/msgctl. The objects and their
//! rules are in `kernel::ipc`; this decodes arguments and lays out the
//! structures of the x86-64 ABI.

use std::sync::{Arc, Mutex};

use crate::abi::{Errno, SysResult};
use crate::sentry::kernel::ipc::*;
use crate::sentry::kernel::Task;
use crate::sentry::mm::memory::page_up;
use crate::sentry::mm::{Backing, MapName, MapRequest, Placement, SharedObject};
use crate::sentry::platform::Prot;
use crate::sentry::vfs::poll::POLLIN;
use crate::sentry::vfs::waitq::block_current;

const IPC_RMID: u64 = 0;
const IPC_SET: u64 = 1;
const IPC_STAT: u64 = 2;
const IPC_INFO: u64 = 3;
/// Set by callers of the old ABI in the command: ignored on x86-64.
const IPC_64: u64 = 0x100;

const SHM_RDONLY: u64 = 0o10000;
const SHM_RND: u64 = 0o20000;
const SHM_REMAP: u64 = 0o40000;
const SHM_EXEC: u64 = 0o100000;
const SHMLBA: u64 = 4096;
const SHM_LOCK: u64 = 11;
const SHM_UNLOCK: u64 = 12;
const SHM_STAT: u64 = 13;
const SHM_INFO: u64 = 14;
const SHM_STAT_ANY: u64 = 15;

const GETPID: u64 = 11;
const GETVAL: u64 = 12;
const GETALL: u64 = 13;
const GETNCNT: u64 = 14;
const GETZCNT: u64 = 15;
const SETVAL: u64 = 16;
const SETALL: u64 = 17;
const SEM_STAT: u64 = 18;
const SEM_INFO: u64 = 19;
const SEM_STAT_ANY: u64 = 20;

const MSG_STAT: u64 = 11;
const MSG_INFO: u64 = 12;
const MSG_STAT_ANY: u64 = 13;
const MSG_NOERROR: u64 = 0o10000;
const MSG_EXCEPT: u64 = 0o20000;
const MSG_COPY: u64 = 0o40000;

/// CAP_IPC_LOCK and CAP_SYS_RESOURCE.
const CAP_IPC_LOCK: u32 = 14;
const CAP_SYS_RESOURCE: u32 = 24;

/// The access a get call's mode bits ask for (Linux folds the three
/// classes into one).
fn requested(flags: u64) -> u32 {
    let f = flags as u32 & 0o777;
    (f >> 6 | f >> 3 | f) & 7
}

fn check(perm: &Perm, c: &Caller, want: u32) -> SysResult<()> {
    if perm.allows(c, want) {
        Ok(())
    } else {
        Err(Errno::EACCES)
    }
}

fn check_owner(perm: &Perm, c: &Caller) -> SysResult<()> {
    if perm.owned_by(c) {
        Ok(())
    } else {
        Err(Errno::EPERM)
    }
}

/// The uid, gid and mode of an IPC_SET's struct ipc64_perm at `addr`.
fn read_set(t: &Task, addr: u64) -> SysResult<(u32, u32, u32)> {
    let mut b = [0u8; 24];
    t.mm.copy_in(addr, &mut b)?;
    let u = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    Ok((u(4), u(8), u(20) & 0xffff))
}

/// Little-endian fields appended in order.
#[derive(Default)]
struct Out(Vec<u8>);

impl Out {
    fn i32(mut self, v: i32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn i64(self, v: i64) -> Self {
        self.u64(v as u64)
    }
    fn bytes(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
}

// ---- shared memory ----

/// Implements shmget(2).
pub fn sys_shmget(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let (key, size, flags) = (a[0] as i32, a[1], a[2]);
    let c = Caller::of(t);
    let mem = t.k.memory.clone();
    let mut table = ipc().shm();
    let id = get_or_make(
        &mut table,
        key,
        flags,
        Segment::perm,
        |seg| {
            let st = seg.state.lock().unwrap();
            if size > st.size {
                return Err(Errno::EINVAL);
            }
            check(&st.perm, &c, requested(flags))
        },
        |seq| {
            if !(SHMMIN..=SHMMAX).contains(&size) {
                return Err(Errno::EINVAL);
            }
            let len = page_up(size).ok_or(Errno::EINVAL)?;
            Ok(Segment {
                object: SharedObject::new(mem.clone(), len),
                state: Mutex::new(SegState {
                    perm: Perm::new_for(key, flags as u32, &c, seq),
                    size,
                    atime: 0,
                    dtime: 0,
                    ctime: now(),
                    cpid: c.pid,
                    lpid: 0,
                }),
            })
        },
    )?;
    Ok(id as u64)
}

/// Implements shmat(2).
pub fn sys_shmat(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let (id, mut addr, flags) = (a[0] as i32, a[1], a[2]);
    let c = Caller::of(t);
    let seg = ipc().shm().get(id, Segment::perm)?;
    let rdonly = flags & SHM_RDONLY != 0;
    let mut want = if rdonly { 4 } else { 6 };
    if flags & SHM_EXEC != 0 {
        want |= 1;
    }
    check(&seg.perm(), &c, want)?;
    if addr % SHMLBA != 0 {
        if flags & SHM_RND == 0 {
            return Err(Errno::EINVAL);
        }
        addr -= addr % SHMLBA;
    }
    let placement = match (addr, flags & SHM_REMAP != 0) {
        (0, true) => return Err(Errno::EINVAL),
        (0, false) => Placement::Hint(0),
        (at, true) => Placement::Fixed(at),
        (at, false) => Placement::FixedNoReplace(at),
    };
    let size = seg.state.lock().unwrap().size;
    let prot = Prot {
        read: true,
        write: !rdonly,
        exec: flags & SHM_EXEC != 0,
    };
    let at =
        t.mm.lock()
            .mmap(MapRequest {
                placement,
                len: page_up(size).ok_or(Errno::EINVAL)?,
                prot,
                backing: Backing::Shared {
                    object: seg.object.clone(),
                    offset: 0,
                },
                may_write: !rdonly,
                grows_down: false,
                name: Some(Arc::new(MapName {
                    path: format!("/SYSV{:08x} (deleted)", seg.perm().key).into_bytes(),
                    dev: 0,
                    ino: id as u64,
                })),
            })
            .map_err(|e| if e == Errno::EEXIST { Errno::EINVAL } else { e })?;
    ipc().note_attached(&seg);
    let mut st = seg.state.lock().unwrap();
    st.atime = now();
    st.lpid = c.pid;
    Ok(at)
}

/// Implements shmdt(2): unmaps the segment attached at `addr` (every part
/// of it mapped from there on, as Linux does).
pub fn sys_shmdt(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let addr = a[0];
    if addr % SHMLBA != 0 {
        return Err(Errno::EINVAL);
    }
    let mut mm = t.mm.lock();
    let object = match mm.vma_at(addr) {
        Some((start, vma)) if start == addr => match vma.backing.shared() {
            Some((object, 0)) => object.clone(),
            _ => return Err(Errno::EINVAL),
        },
        _ => return Err(Errno::EINVAL),
    };
    let seg = ipc().segment_of(&object).ok_or(Errno::EINVAL)?;
    let size = seg.state.lock().unwrap().size;
    let end = addr.saturating_add(page_up(size).unwrap_or(u64::MAX));
    let parts: Vec<(u64, u64)> = mm
        .vmas()
        .filter(|(&s, v)| {
            s >= addr
                && s < end
                && v.backing
                    .shared()
                    .is_some_and(|(o, _)| Arc::ptr_eq(o, &object))
        })
        .map(|(&s, v)| (s, v.end.min(end)))
        .collect();
    for (s, e) in parts {
        mm.unmap(s, e - s)?;
    }
    drop(mm);
    let mut st = seg.state.lock().unwrap();
    st.dtime = now();
    st.lpid = t.pid;
    Ok(0)
}

fn shmid_ds(seg: &Segment) -> Vec<u8> {
    let st = seg.state.lock().unwrap();
    Out::default()
        .bytes(&st.perm.bytes())
        .u64(st.size)
        .i64(st.atime)
        .i64(st.dtime)
        .i64(st.ctime)
        .i32(st.cpid)
        .i32(st.lpid)
        .u64(seg.nattch())
        .u64(0)
        .u64(0)
        .0
}

/// Implements shmctl(2).
pub fn sys_shmctl(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let (id, cmd, buf) = (a[0] as i32, a[1] & !IPC_64, a[2]);
    let c = Caller::of(t);
    match cmd {
        IPC_INFO => {
            let table = ipc().shm();
            let pages = SHMMAX / 4096;
            let info = Out::default()
                .u64(SHMMAX)
                .u64(SHMMIN)
                .u64(SHMMNI)
                .u64(SHMMNI)
                .u64(pages)
                .u64(0)
                .u64(0)
                .u64(0)
                .u64(0);
            t.mm.copy_out(buf, &info.0)?;
            return Ok(table.highest() as u64);
        }
        SHM_INFO => {
            let table = ipc().shm();
            let mut total = 0;
            for i in 0..=table.highest() {
                if let Ok((_, s)) = table.at_index(i, Segment::perm) {
                    total += page_up(s.state.lock().unwrap().size).unwrap_or(0) / 4096;
                }
            }
            let info = Out::default()
                .i32(table.len() as i32)
                .i32(0)
                .u64(total)
                .u64(total)
                .u64(0)
                .u64(0)
                .u64(0);
            t.mm.copy_out(buf, &info.0)?;
            return Ok(table.highest() as u64);
        }
        SHM_STAT | SHM_STAT_ANY => {
            let (sid, seg) = ipc().shm().at_index(id, Segment::perm)?;
            if cmd == SHM_STAT {
                check(&seg.perm(), &c, 4)?;
            }
            t.mm.copy_out(buf, &shmid_ds(&seg))?;
            return Ok(sid as u64);
        }
        _ => {}
    }
    let mut table = ipc().shm();
    let seg = table.get(id, Segment::perm)?;
    match cmd {
        IPC_STAT => {
            check(&seg.perm(), &c, 4)?;
            drop(table);
            t.mm.copy_out(buf, &shmid_ds(&seg))?;
        }
        IPC_SET => {
            let (uid, gid, mode) = read_set(t, buf)?;
            let mut st = seg.state.lock().unwrap();
            check_owner(&st.perm, &c)?;
            st.perm.set(uid, gid, mode);
            st.ctime = now();
        }
        IPC_RMID => {
            check_owner(&seg.perm(), &c)?;
            table.remove(id);
        }
        SHM_LOCK | SHM_UNLOCK => {
            // Guest frames are never swapped out by the sentry: locking
            // changes nothing but is checked as Linux checks it.
            if !t.creds.has_cap(CAP_IPC_LOCK) {
                check_owner(&seg.perm(), &c)?;
            }
        }
        _ => return Err(Errno::EINVAL),
    }
    Ok(0)
}

// ---- semaphores ----

/// Implements semget(2).
pub fn sys_semget(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let (key, nsems, flags) = (a[0] as i32, a[1] as i32, a[2]);
    if nsems < 0 || nsems as u64 > SEMMSL {
        return Err(Errno::EINVAL);
    }
    let c = Caller::of(t);
    let mut table = ipc().sem();
    let id = get_or_make(
        &mut table,
        key,
        flags,
        SemSet::perm,
        |set| {
            let st = set.state.lock().unwrap();
            if nsems as usize > st.sems.len() {
                return Err(Errno::EINVAL);
            }
            check(&st.perm, &c, requested(flags))
        },
        |seq| {
            if nsems == 0 {
                return Err(Errno::EINVAL);
            }
            let n = nsems as usize;
            Ok(SemSet::new(SemState {
                perm: Perm::new_for(key, flags as u32, &c, seq),
                sems: vec![Sem::default(); n],
                otime: 0,
                ctime: now(),
                removed: false,
                ncnt: vec![0; n],
                zcnt: vec![0; n],
            }))
        },
    )?;
    Ok(id as u64)
}

/// Implements semtimedop(2).
pub fn sys_semtimedop(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let (id, sops, nsops, timeout) = (a[0] as i32, a[1], a[2], a[3]);
    if nsops == 0 {
        return Err(Errno::EINVAL);
    }
    if nsops > SEMOPM {
        return Err(Errno::E2BIG);
    }
    let mut raw = vec![0u8; nsops as usize * 6];
    t.mm.copy_in(sops, &mut raw)?;
    let ops: Vec<SemOp> = raw
        .chunks_exact(6)
        .map(|b| SemOp {
            num: u16::from_le_bytes([b[0], b[1]]),
            op: i16::from_le_bytes([b[2], b[3]]),
            flags: i16::from_le_bytes([b[4], b[5]]),
        })
        .collect();
    let deadline = super::time::read_timeout(t, timeout)?;
    let c = Caller::of(t);
    let set = ipc().sem().get(id, SemSet::perm)?;
    {
        let st = set.state.lock().unwrap();
        if ops.iter().any(|o| o.num as usize >= st.sems.len()) {
            return Err(Errno::EFBIG);
        }
        let alter = ops.iter().any(|o| o.op != 0);
        check(&st.perm, &c, if alter { 2 } else { 4 })?;
    }
    ipc().semop(id, process_key(t), &set, &ops, t.pid, deadline)?;
    Ok(0)
}

/// Implements semop(2).
pub fn sys_semop(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    sys_semtimedop(t, [a[0], a[1], a[2], 0, 0, 0])
}

/// The process, for SEM_UNDO records (pids repeat across the pid
/// namespaces that share the IPC namespace).
pub fn process_key(t: &Task) -> usize {
    Arc::as_ptr(&t.control.group) as usize
}

fn semid_ds(set: &SemSet) -> Vec<u8> {
    let st = set.state.lock().unwrap();
    Out::default()
        .bytes(&st.perm.bytes())
        .i64(st.otime)
        .u64(0)
        .i64(st.ctime)
        .u64(0)
        .u64(st.sems.len() as u64)
        .u64(0)
        .u64(0)
        .0
}

/// struct seminfo; `used` fills SEM_INFO's counts of sets and semaphores.
fn seminfo(used: Option<(i32, i32)>) -> Vec<u8> {
    let (usz, aem) = used.unwrap_or((20, SEMVMX));
    let mut out = Out::default();
    for v in [
        1_024_000_000,
        SEMMNI as i32,
        1_024_000_000,
        1_024_000_000,
        SEMMSL as i32,
        SEMOPM as i32,
        SEMOPM as i32,
        usz,
        SEMVMX,
        aem,
    ] {
        out = out.i32(v);
    }
    out.0
}

/// Implements semctl(2).
pub fn sys_semctl(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let (id, num, cmd, arg) = (a[0] as i32, a[1] as i32, a[2] & !IPC_64, a[3]);
    let c = Caller::of(t);
    match cmd {
        IPC_INFO | SEM_INFO => {
            let table = ipc().sem();
            let used = (cmd == SEM_INFO).then(|| {
                let sems: usize = (0..=table.highest())
                    .filter_map(|i| table.at_index(i, SemSet::perm).ok())
                    .map(|(_, s)| s.state.lock().unwrap().sems.len())
                    .sum();
                (table.len() as i32, sems as i32)
            });
            t.mm.copy_out(arg, &seminfo(used))?;
            return Ok(table.highest() as u64);
        }
        SEM_STAT | SEM_STAT_ANY => {
            let (sid, set) = ipc().sem().at_index(id, SemSet::perm)?;
            if cmd == SEM_STAT {
                check(&set.perm(), &c, 4)?;
            }
            t.mm.copy_out(arg, &semid_ds(&set))?;
            return Ok(sid as u64);
        }
        _ => {}
    }
    let mut table = ipc().sem();
    let set = table.get(id, SemSet::perm)?;
    if cmd == IPC_RMID {
        check_owner(&set.perm(), &c)?;
        table.remove(id);
        drop(table);
        set.state.lock().unwrap().removed = true;
        set.queue.notify(POLLIN);
        ipc().forget_undo(id, None);
        return Ok(0);
    }
    drop(table);
    let one = |st: &SemState| -> SysResult<usize> {
        if num < 0 || num as usize >= st.sems.len() {
            return Err(Errno::EINVAL);
        }
        Ok(num as usize)
    };
    match cmd {
        IPC_STAT => {
            check(&set.perm(), &c, 4)?;
            t.mm.copy_out(arg, &semid_ds(&set))?;
            Ok(0)
        }
        IPC_SET => {
            let (uid, gid, mode) = read_set(t, arg)?;
            let mut st = set.state.lock().unwrap();
            check_owner(&st.perm, &c)?;
            st.perm.set(uid, gid, mode);
            st.ctime = now();
            Ok(0)
        }
        GETVAL | GETPID | GETNCNT | GETZCNT => {
            let st = set.state.lock().unwrap();
            check(&st.perm, &c, 4)?;
            let n = one(&st)?;
            Ok(match cmd {
                GETVAL => st.sems[n].val as u64,
                GETPID => st.sems[n].pid as u64,
                GETNCNT => st.ncnt[n] as u64,
                _ => st.zcnt[n] as u64,
            })
        }
        GETALL => {
            let vals: Vec<u8> = {
                let st = set.state.lock().unwrap();
                check(&st.perm, &c, 4)?;
                st.sems
                    .iter()
                    .flat_map(|s| (s.val as u16).to_le_bytes())
                    .collect()
            };
            t.mm.copy_out(arg, &vals)?;
            Ok(0)
        }
        SETVAL => {
            let v = arg as i32;
            {
                let mut st = set.state.lock().unwrap();
                check(&st.perm, &c, 2)?;
                let n = one(&st)?;
                if !(0..=SEMVMX).contains(&v) {
                    return Err(Errno::ERANGE);
                }
                st.sems[n] = Sem { val: v, pid: t.pid };
                st.ctime = now();
            }
            ipc().forget_undo(id, Some(num as u16));
            set.queue.notify(POLLIN);
            Ok(0)
        }
        SETALL => {
            let n = set.state.lock().unwrap().sems.len();
            let mut raw = vec![0u8; n * 2];
            t.mm.copy_in(arg, &mut raw)?;
            let vals: Vec<i32> = raw
                .chunks_exact(2)
                .map(|b| u16::from_le_bytes([b[0], b[1]]) as i32)
                .collect();
            {
                let mut st = set.state.lock().unwrap();
                check(&st.perm, &c, 2)?;
                if vals.iter().any(|&v| v > SEMVMX) {
                    return Err(Errno::ERANGE);
                }
                for (s, v) in st.sems.iter_mut().zip(vals) {
                    *s = Sem { val: v, pid: t.pid };
                }
                st.ctime = now();
            }
            ipc().forget_undo(id, None);
            set.queue.notify(POLLIN);
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

// ---- message queues ----

/// Implements msgget(2).
pub fn sys_msgget(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let (key, flags) = (a[0] as i32, a[1]);
    let c = Caller::of(t);
    let mut table = ipc().msg();
    let id = get_or_make(
        &mut table,
        key,
        flags,
        MsgQueue::perm,
        |q| check(&q.perm(), &c, requested(flags)),
        |seq| {
            Ok(MsgQueue::new(MsgState {
                perm: Perm::new_for(key, flags as u32, &c, seq),
                msgs: Default::default(),
                bytes: 0,
                qbytes: MSGMNB,
                stime: 0,
                rtime: 0,
                ctime: now(),
                lspid: 0,
                lrpid: 0,
                removed: false,
            }))
        },
    )?;
    Ok(id as u64)
}

/// Implements msgsnd(2).
pub fn sys_msgsnd(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let (id, msgp, size, flags) = (a[0] as i32, a[1], a[2], a[3]);
    let c = Caller::of(t);
    let q = ipc().msg().get(id, MsgQueue::perm)?;
    if size > MSGMAX {
        return Err(Errno::EINVAL);
    }
    let mtype = t.mm.read_u64(msgp)? as i64;
    if mtype < 1 {
        return Err(Errno::EINVAL);
    }
    let mut text = vec![0u8; size as usize];
    t.mm.copy_in(msgp + 8, &mut text)?;
    check(&q.perm(), &c, 2)?;
    let mut msg = Some(Msg { mtype, text });
    block_current(&q.queue, POLLIN, || {
        let mut st = q.state.lock().unwrap();
        if st.removed {
            return Some(Err(Errno::EIDRM));
        }
        let fits = st.bytes + size <= st.qbytes && (st.msgs.len() as u64) < st.qbytes;
        if !fits {
            return (flags & IPC_NOWAIT != 0).then_some(Err(Errno::EAGAIN));
        }
        st.bytes += size;
        st.msgs.push_back(msg.take().expect("sent once"));
        st.stime = now();
        st.lspid = c.pid;
        Some(Ok(()))
    })?;
    q.queue.notify(POLLIN);
    Ok(0)
}

/// The index of the message msgrcv takes for `mtype`.
fn pick(msgs: &std::collections::VecDeque<Msg>, mtype: i64, except: bool) -> Option<usize> {
    match mtype {
        0 => (!msgs.is_empty()).then_some(0),
        m if m > 0 => msgs.iter().position(|x| (x.mtype == m) != except),
        m => {
            let limit = m.unsigned_abs() as i64;
            let mut best: Option<(usize, i64)> = None;
            for (i, x) in msgs.iter().enumerate() {
                if x.mtype <= limit && best.is_none_or(|(_, b)| x.mtype < b) {
                    best = Some((i, x.mtype));
                }
            }
            best.map(|(i, _)| i)
        }
    }
}

/// Implements msgrcv(2).
pub fn sys_msgrcv(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let (id, msgp, size, mtype, flags) = (a[0] as i32, a[1], a[2], a[3] as i64, a[4]);
    if (size as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    if flags & MSG_COPY != 0 {
        // Only for checkpoint/restore: kernels built without it answer so.
        return Err(Errno::ENOSYS);
    }
    let c = Caller::of(t);
    let q = ipc().msg().get(id, MsgQueue::perm)?;
    check(&q.perm(), &c, 4)?;
    let msg = block_current(&q.queue, POLLIN, || {
        let mut st = q.state.lock().unwrap();
        if st.removed {
            return Some(Err(Errno::EIDRM));
        }
        let Some(i) = pick(&st.msgs, mtype, flags & MSG_EXCEPT != 0) else {
            return (flags & IPC_NOWAIT != 0).then_some(Err(Errno::ENOMSG));
        };
        if st.msgs[i].text.len() as u64 > size && flags & MSG_NOERROR == 0 {
            return Some(Err(Errno::E2BIG));
        }
        let m = st.msgs.remove(i).expect("picked");
        st.bytes -= m.text.len() as u64;
        st.rtime = now();
        st.lrpid = c.pid;
        Some(Ok(m))
    })?;
    q.queue.notify(POLLIN);
    let n = msg.text.len().min(size as usize);
    t.mm.write_u64(msgp, msg.mtype as u64)?;
    t.mm.copy_out(msgp + 8, &msg.text[..n])?;
    Ok(n as u64)
}

fn msqid_ds(q: &MsgQueue) -> Vec<u8> {
    let st = q.state.lock().unwrap();
    Out::default()
        .bytes(&st.perm.bytes())
        .i64(st.stime)
        .i64(st.rtime)
        .i64(st.ctime)
        .u64(st.bytes)
        .u64(st.msgs.len() as u64)
        .u64(st.qbytes)
        .i32(st.lspid)
        .i32(st.lrpid)
        .u64(0)
        .u64(0)
        .0
}

/// Implements msgctl(2).
pub fn sys_msgctl(t: &mut Task, a: [u64; 6]) -> SysResult<u64> {
    let (id, cmd, buf) = (a[0] as i32, a[1] & !IPC_64, a[2]);
    let c = Caller::of(t);
    match cmd {
        IPC_INFO | MSG_INFO => {
            let table = ipc().msg();
            let (mut pool, mut map, mut tql) = (
                (MSGMNI * MSGMNB / 1024) as i32,
                MSGMNB as i32,
                MSGMNB as i32,
            );
            if cmd == MSG_INFO {
                let queues: Vec<_> = (0..=table.highest())
                    .filter_map(|i| table.at_index(i, MsgQueue::perm).ok())
                    .collect();
                pool = table.len() as i32;
                map = 0;
                tql = 0;
                for (_, q) in queues {
                    let st = q.state.lock().unwrap();
                    map += st.msgs.len() as i32;
                    tql += st.bytes as i32;
                }
            }
            let info = Out::default()
                .i32(pool)
                .i32(map)
                .i32(MSGMAX as i32)
                .i32(MSGMNB as i32)
                .i32(MSGMNI as i32)
                .i32(16)
                .i32(tql)
                .i32(0xffff);
            t.mm.copy_out(buf, &info.0)?;
            return Ok(table.highest() as u64);
        }
        MSG_STAT | MSG_STAT_ANY => {
            let (qid, q) = ipc().msg().at_index(id, MsgQueue::perm)?;
            if cmd == MSG_STAT {
                check(&q.perm(), &c, 4)?;
            }
            t.mm.copy_out(buf, &msqid_ds(&q))?;
            return Ok(qid as u64);
        }
        _ => {}
    }
    let mut table = ipc().msg();
    let q = table.get(id, MsgQueue::perm)?;
    match cmd {
        IPC_STAT => {
            check(&q.perm(), &c, 4)?;
            drop(table);
            t.mm.copy_out(buf, &msqid_ds(&q))?;
        }
        IPC_SET => {
            let (uid, gid, mode) = read_set(t, buf)?;
            let qbytes = t.mm.read_u64(buf + 88)?;
            let mut st = q.state.lock().unwrap();
            check_owner(&st.perm, &c)?;
            if qbytes > MSGMNB && !t.creds.has_cap(CAP_SYS_RESOURCE) {
                return Err(Errno::EPERM);
            }
            st.perm.set(uid, gid, mode);
            st.qbytes = qbytes;
            st.ctime = now();
            drop(st);
            q.queue.notify(POLLIN);
        }
        IPC_RMID => {
            check_owner(&q.perm(), &c)?;
            table.remove(id);
            q.state.lock().unwrap().removed = true;
            q.queue.notify(POLLIN);
        }
        _ => return Err(Errno::EINVAL),
    }
    Ok(0)
}
