//! inotify(7): watches on inodes and the queue of events each instance
//! reads, for changes made inside the sandbox.
//!
//! A watch is keyed by the inode's (st_dev, st_ino), so it follows the
//! file across hard links and renames, as Linux's per-inode marks do.
//! The VFS reports each operation once, where it happens (overlay.rs and
//! bind.rs for entries, `OpenFile` for reads, writes, opens and closes,
//! the attribute syscalls for setattr), through the functions at the end
//! of this file; those return at once while no watch exists anywhere.
//!
//! An event on a file also goes to a watch on its parent directory, with
//! the file's name (not across a mount root, whose parent is another file
//! system), the parent's first, as Linux orders them. Events go to the
//! end of an instance's queue unless identical to the last one there
//! (coalesced); a queue holding MAX_QUEUED_EVENTS takes one IN_Q_OVERFLOW
//! and nothing more until read.
//!
//! Lock order: the global watch table, then an instance's state. Wait
//! queues are told after both are released.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use super::file::FileOps;
use super::node::Node;
use super::poll::{POLLIN, POLLRDNORM};
use super::waitq::{block_current, WaitQueue};
use crate::abi::types::Stat;
use crate::abi::{Errno, SysResult};

pub const IN_ACCESS: u32 = 0x1;
pub const IN_MODIFY: u32 = 0x2;
pub const IN_ATTRIB: u32 = 0x4;
pub const IN_CLOSE_WRITE: u32 = 0x8;
pub const IN_CLOSE_NOWRITE: u32 = 0x10;
pub const IN_OPEN: u32 = 0x20;
pub const IN_MOVED_FROM: u32 = 0x40;
pub const IN_MOVED_TO: u32 = 0x80;
pub const IN_CREATE: u32 = 0x100;
pub const IN_DELETE: u32 = 0x200;
pub const IN_DELETE_SELF: u32 = 0x400;
pub const IN_MOVE_SELF: u32 = 0x800;
pub const IN_UNMOUNT: u32 = 0x2000;
pub const IN_Q_OVERFLOW: u32 = 0x4000;
pub const IN_IGNORED: u32 = 0x8000;
pub const IN_ONLYDIR: u32 = 0x0100_0000;
pub const IN_DONT_FOLLOW: u32 = 0x0200_0000;
pub const IN_EXCL_UNLINK: u32 = 0x0400_0000;
pub const IN_MASK_CREATE: u32 = 0x1000_0000;
pub const IN_MASK_ADD: u32 = 0x2000_0000;
pub const IN_ISDIR: u32 = 0x4000_0000;
pub const IN_ONESHOT: u32 = 0x8000_0000;
/// Every event a watch can ask for.
pub const IN_ALL_EVENTS: u32 = 0xfff;
/// Every bit inotify_add_watch accepts.
pub const ALL_INOTIFY_BITS: u32 = IN_ALL_EVENTS
    | IN_ONLYDIR
    | IN_DONT_FOLLOW
    | IN_EXCL_UNLINK
    | IN_MASK_CREATE
    | IN_MASK_ADD
    | IN_ISDIR
    | IN_ONESHOT;

/// Events queued per instance before IN_Q_OVERFLOW (Linux's default
/// /proc/sys/fs/inotify/max_queued_events).
pub const MAX_QUEUED_EVENTS: usize = 16384;
/// Size of `struct inotify_event` without its name.
const EVENT_HEADER: usize = 16;

/// An inode's identity: (st_dev, st_ino).
type Key = (u64, u64);

fn key_of(node: &Node) -> Key {
    let st = node.current_stat();
    (st.dev, st.ino)
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Event {
    wd: i32,
    mask: u32,
    cookie: u32,
    name: Vec<u8>,
}

impl Event {
    /// The name's room: NUL-terminated and padded to a multiple of the
    /// header's size (0 without a name).
    fn name_len(&self) -> usize {
        if self.name.is_empty() {
            0
        } else {
            (self.name.len() + 1).next_multiple_of(EVENT_HEADER)
        }
    }

    fn size(&self) -> usize {
        EVENT_HEADER + self.name_len()
    }

    /// `struct inotify_event` followed by the padded name.
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.wd.to_le_bytes());
        out.extend_from_slice(&self.mask.to_le_bytes());
        out.extend_from_slice(&self.cookie.to_le_bytes());
        out.extend_from_slice(&(self.name_len() as u32).to_le_bytes());
        let start = out.len();
        out.extend_from_slice(&self.name);
        out.resize(start + self.name_len(), 0);
    }
}

struct Watch {
    key: Key,
    /// Events asked for, with IN_ONESHOT and IN_EXCL_UNLINK.
    mask: u32,
    /// The inode is a directory (IN_UNMOUNT carries IN_ISDIR).
    dir: bool,
}

#[derive(Default)]
struct State {
    events: VecDeque<Event>,
    /// Bytes a read of every queued event takes (FIONREAD).
    bytes: usize,
    watches: HashMap<i32, Watch>,
    last_wd: i32,
}

impl State {
    /// Queues `ev` (see the module doc); true when it was queued.
    fn push(&mut self, ev: Event) -> bool {
        if self.events.len() >= MAX_QUEUED_EVENTS {
            if self.events.back().is_some_and(|e| e.mask == IN_Q_OVERFLOW) {
                return false;
            }
            let ev = Event {
                wd: -1,
                mask: IN_Q_OVERFLOW,
                cookie: 0,
                name: vec![],
            };
            self.bytes += ev.size();
            self.events.push_back(ev);
            return true;
        }
        if let Some(last) = self.events.back() {
            let same = (last.wd, last.mask, &last.name) == (ev.wd, ev.mask, &ev.name);
            if same && last.mask & IN_IGNORED == 0 {
                return false;
            }
        }
        self.bytes += ev.size();
        self.events.push_back(ev);
        true
    }

    /// Ends watch `wd`, queueing IN_IGNORED; returns its key.
    fn drop_watch(&mut self, wd: i32) -> Option<Key> {
        let w = self.watches.remove(&wd)?;
        self.push(Event {
            wd,
            mask: IN_IGNORED,
            cookie: 0,
            name: vec![],
        });
        Some(w.key)
    }
}

/// One inotify instance (the file inotify_init1 returns).
pub struct Inotify {
    me: Weak<Inotify>,
    state: Mutex<State>,
    queue: Arc<WaitQueue>,
    ino: u64,
}

/// Who watches an inode: (instance, watch descriptor).
type Watchers = Vec<(Weak<Inotify>, i32)>;

struct Table {
    by_key: HashMap<Key, Watchers>,
}

/// Watches in the table: the hooks' fast path when zero.
static WATCHES: AtomicUsize = AtomicUsize::new(0);

fn table() -> MutexGuard<'static, Table> {
    static T: OnceLock<Mutex<Table>> = OnceLock::new();
    T.get_or_init(|| {
        Mutex::new(Table {
            by_key: HashMap::new(),
        })
    })
    .lock()
    .unwrap()
}

impl Table {
    fn unlink(&mut self, key: Key, inst: &Weak<Inotify>, wd: i32) {
        if let Some(list) = self.by_key.get_mut(&key) {
            let before = list.len();
            list.retain(|(i, w)| !(Weak::ptr_eq(i, inst) && *w == wd));
            WATCHES.fetch_sub(before - list.len(), Ordering::Relaxed);
            if list.is_empty() {
                self.by_key.remove(&key);
            }
        }
    }
}

impl Inotify {
    pub fn new() -> Arc<Inotify> {
        Arc::new_cyclic(|me| Inotify {
            me: me.clone(),
            state: Mutex::new(State::default()),
            queue: WaitQueue::new(),
            ino: super::anon::next_ino(),
        })
    }

    /// inotify_add_watch(2) on `node` (already resolved and checked):
    /// the watch descriptor, new or of the inode's existing watch.
    pub fn add_watch(&self, node: &Node, mask: u32) -> SysResult<i32> {
        let key = key_of(node);
        let wanted = mask & (IN_ALL_EVENTS | IN_ONESHOT | IN_EXCL_UNLINK);
        let mut table = table();
        let mut st = self.state.lock().unwrap();
        if let Some((&wd, w)) = st.watches.iter_mut().find(|(_, w)| w.key == key) {
            if mask & IN_MASK_CREATE != 0 {
                return Err(Errno::EEXIST);
            }
            w.mask = if mask & IN_MASK_ADD != 0 {
                w.mask | wanted
            } else {
                wanted
            };
            return Ok(wd);
        }
        let wd = (st.last_wd + 1..)
            .find(|wd| !st.watches.contains_key(wd))
            .ok_or(Errno::ENOSPC)?;
        st.last_wd = wd;
        let dir = node.stat.is_dir();
        st.watches.insert(
            wd,
            Watch {
                key,
                mask: wanted,
                dir,
            },
        );
        table
            .by_key
            .entry(key)
            .or_default()
            .push((self.me.clone(), wd));
        WATCHES.fetch_add(1, Ordering::Relaxed);
        Ok(wd)
    }

    /// inotify_rm_watch(2): EINVAL for a descriptor not in use.
    pub fn rm_watch(&self, wd: i32) -> SysResult<()> {
        let mut table = table();
        let key = self
            .state
            .lock()
            .unwrap()
            .drop_watch(wd)
            .ok_or(Errno::EINVAL)?;
        table.unlink(key, &self.me, wd);
        drop(table);
        self.queue.notify(POLLIN | POLLRDNORM);
        Ok(())
    }

    /// Takes the whole events that fit in `room` bytes, encoded; EINVAL
    /// when even the first does not fit; None when there is none.
    fn take(&self, room: usize) -> Option<SysResult<Vec<u8>>> {
        let mut st = self.state.lock().unwrap();
        let first = st.events.front()?;
        if first.size() > room {
            return Some(Err(Errno::EINVAL));
        }
        let mut out = vec![];
        while let Some(ev) = st.events.front() {
            if out.len() + ev.size() > room {
                break;
            }
            let ev = st.events.pop_front().expect("just seen");
            st.bytes -= ev.size();
            ev.encode(&mut out);
        }
        Some(Ok(out))
    }

    /// Bytes queued (FIONREAD).
    pub fn pending_bytes(&self) -> usize {
        self.state.lock().unwrap().bytes
    }
}

impl Drop for Inotify {
    fn drop(&mut self) {
        let watches: Vec<(i32, Key)> = self
            .state
            .get_mut()
            .unwrap()
            .watches
            .iter()
            .map(|(&wd, w)| (wd, w.key))
            .collect();
        if watches.is_empty() {
            return;
        }
        let mut table = table();
        for (wd, key) in watches {
            table.unlink(key, &self.me, wd);
        }
    }
}

impl FileOps for Inotify {
    fn read_stream(&self, buf: &mut [u8], nonblock: bool) -> SysResult<usize> {
        let out = block_current(&self.queue, POLLIN, || match self.take(buf.len()) {
            Some(r) => Some(r),
            None if nonblock => Some(Err(Errno::EAGAIN)),
            None => None,
        })?;
        buf[..out.len()].copy_from_slice(&out);
        Ok(out.len())
    }

    fn stat(&self) -> SysResult<Stat> {
        Ok(super::anon::stat(self.ino))
    }

    fn seekable(&self) -> bool {
        false
    }

    fn poll(&self, want: u16) -> u16 {
        if self.state.lock().unwrap().events.is_empty() {
            0
        } else {
            want & (POLLIN | POLLRDNORM)
        }
    }

    fn waitq(&self) -> Option<Arc<WaitQueue>> {
        Some(self.queue.clone())
    }

    fn fd_target(&self) -> Option<Vec<u8>> {
        Some(super::anon::fd_target("inotify"))
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

/// One delivery: the watched inode, the event, the name it carries, and
/// for an event reported to a parent, the child (for IN_EXCL_UNLINK).
struct Delivery<'a> {
    key: Key,
    mask: u32,
    cookie: u32,
    name: &'a [u8],
    child_unlinked: &'a dyn Fn() -> bool,
}

/// Delivers `d` to every watch on its inode; with `ends`, the watches
/// end afterwards (the inode was deleted). Every instance reached goes
/// into `woken`, with whether it queued an event, to be woken and let go
/// after the table's lock.
fn deliver(table: &mut Table, d: &Delivery, ends: bool, woken: &mut Vec<(Arc<Inotify>, bool)>) {
    let Some(list) = table.by_key.get(&d.key).cloned() else {
        return;
    };
    for (weak, wd) in list {
        let Some(inst) = weak.upgrade() else {
            continue;
        };
        let mut st = inst.state.lock().unwrap();
        let Some(w) = st.watches.get(&wd) else {
            continue;
        };
        let wmask = w.mask;
        let unmount = d.mask & IN_UNMOUNT != 0;
        let wanted = unmount || wmask & d.mask & IN_ALL_EVENTS != 0;
        let mask = if unmount && w.dir {
            d.mask | IN_ISDIR
        } else {
            d.mask
        };
        let excluded = wmask & IN_EXCL_UNLINK != 0 && !d.name.is_empty() && (d.child_unlinked)();
        let mut queued = false;
        if wanted && !excluded {
            queued |= st.push(Event {
                wd,
                mask,
                cookie: d.cookie,
                name: d.name.to_vec(),
            });
        }
        let oneshot_fired = wanted && !excluded && wmask & IN_ONESHOT != 0;
        if ends || oneshot_fired {
            st.drop_watch(wd);
            queued = true;
            drop(st);
            table.unlink(d.key, &weak, wd);
        } else {
            drop(st);
        }
        // Kept past the table's lock even when nothing was queued: the
        // last reference to an instance must not go while the table is
        // held (its Drop takes the table).
        woken.push((inst, queued));
    }
}

/// Whether any watch exists (the hooks do nothing otherwise).
pub fn active() -> bool {
    WATCHES.load(Ordering::Relaxed) != 0
}

fn is_dir_bit(node: &Node) -> u32 {
    if node.stat.is_dir() {
        IN_ISDIR
    } else {
        0
    }
}

/// Tells the instances that queued events; drops the others' references
/// (outside the table's lock).
fn wake(woken: Vec<(Arc<Inotify>, bool)>) {
    for (inst, queued) in woken {
        if queued {
            inst.queue.notify(POLLIN | POLLRDNORM);
        }
    }
}

/// An event on `node` itself (open, access, modify, attrib, close),
/// reported to a watch on its parent directory first, with its name.
pub fn on_file(node: &Node, mask: u32) {
    if !active() || mask & IN_ALL_EVENTS == 0 {
        return;
    }
    let mask = mask | is_dir_bit(node);
    let mut woken = vec![];
    let mut table = table();
    let parent = node.parent().filter(|_| !node.is_mount_root());
    // Most files' directories are not watched: no name to copy then.
    let watched = parent.map(|p| (key_of(&p), p));
    if let Some((key, parent)) = watched.filter(|(key, _)| table.by_key.contains_key(key)) {
        let name = node.name();
        let unlinked = || {
            !parent
                .cached(&name)
                .flatten()
                .is_some_and(|c| std::ptr::eq(Arc::as_ptr(&c), node))
        };
        let d = Delivery {
            key,
            mask,
            cookie: 0,
            name: &name,
            child_unlinked: &unlinked,
        };
        deliver(&mut table, &d, false, &mut woken);
    }
    self_event(&mut table, node, mask, false, &mut woken);
    drop(table);
    wake(woken);
}

/// An event without a child to check (IN_EXCL_UNLINK does not apply).
fn send(
    table: &mut Table,
    (key, mask, cookie): (Key, u32, u32),
    name: &[u8],
    ends: bool,
    woken: &mut Vec<(Arc<Inotify>, bool)>,
) {
    let d = Delivery {
        key,
        mask,
        cookie,
        name,
        child_unlinked: &|| false,
    };
    deliver(table, &d, ends, woken);
}

/// An event for `node`'s own watches only; `ends` ends them (deleted).
/// Linux marks these (IN_MOVE_SELF, IN_DELETE_SELF, a link count's
/// IN_ATTRIB) without IN_ISDIR.
fn self_event(
    table: &mut Table,
    node: &Node,
    mask: u32,
    ends: bool,
    woken: &mut Vec<(Arc<Inotify>, bool)>,
) {
    send(table, (key_of(node), mask, 0), b"", ends, woken);
}

/// A change of `dir`'s entry `name` (whose inode is `child`).
fn entry_event(
    table: &mut Table,
    (dir, name, child): (&Node, &[u8], &Node),
    mask: u32,
    cookie: u32,
    woken: &mut Vec<(Arc<Inotify>, bool)>,
) {
    let mask = mask | is_dir_bit(child);
    send(table, (key_of(dir), mask, cookie), name, false, woken);
}

/// `name` was made in `dir` (creat, mkdir, mknod, symlink).
pub fn created(dir: &Node, name: &[u8], child: &Node) {
    if !active() {
        return;
    }
    let mut woken = vec![];
    entry_event(&mut table(), (dir, name, child), IN_CREATE, 0, &mut woken);
    wake(woken);
}

/// `name` in `dir` became another link of `child` (its link count
/// changed, then the entry appeared).
pub fn linked(dir: &Node, name: &[u8], child: &Node) {
    if !active() {
        return;
    }
    let mut woken = vec![];
    let mut table = table();
    self_event(&mut table, child, IN_ATTRIB, false, &mut woken);
    entry_event(&mut table, (dir, name, child), IN_CREATE, 0, &mut woken);
    drop(table);
    wake(woken);
}

/// `name` (which was `victim`) left `dir`; `gone` when that was the
/// inode's last link (its watches see IN_DELETE_SELF and end).
pub fn removed(dir: &Node, name: &[u8], victim: &Node, gone: bool) {
    if !active() {
        return;
    }
    let mut woken = vec![];
    let mut table = table();
    if !victim.stat.is_dir() {
        self_event(&mut table, victim, IN_ATTRIB, false, &mut woken);
    }
    if gone {
        self_event(&mut table, victim, IN_DELETE_SELF, true, &mut woken);
    }
    entry_event(&mut table, (dir, name, victim), IN_DELETE, 0, &mut woken);
    drop(table);
    wake(woken);
}

/// `node` moved from `odir`/`oname` to `ndir`/`nname`, over `target`
/// (with whether that was its last link).
pub fn renamed(
    (odir, oname): (&Node, &[u8]),
    (ndir, nname): (&Node, &[u8]),
    node: &Node,
    target: Option<(&Node, bool)>,
) {
    if !active() {
        return;
    }
    static COOKIE: AtomicU32 = AtomicU32::new(0);
    let cookie = COOKIE
        .fetch_add(1, Ordering::Relaxed)
        .wrapping_add(1)
        .max(1);
    let mut woken = vec![];
    let mut table = table();
    let t = &mut table;
    entry_event(t, (odir, oname, node), IN_MOVED_FROM, cookie, &mut woken);
    entry_event(t, (ndir, nname, node), IN_MOVED_TO, cookie, &mut woken);
    if let Some((victim, _)) = target {
        self_event(t, victim, IN_ATTRIB, false, &mut woken);
    }
    self_event(t, node, IN_MOVE_SELF, false, &mut woken);
    if let Some((victim, true)) = target {
        self_event(t, victim, IN_DELETE_SELF, true, &mut woken);
    }
    drop(table);
    wake(woken);
}

/// The file system of device `dev` went away (unmounted): every watch
/// on one of its inodes sees IN_UNMOUNT, then IN_IGNORED.
pub fn unmounted(dev: u64) {
    if !active() {
        return;
    }
    let mut woken = vec![];
    let mut table = table();
    let keys: Vec<Key> = table
        .by_key
        .keys()
        .filter(|k| k.0 == dev)
        .copied()
        .collect();
    for key in keys {
        send(&mut table, (key, IN_UNMOUNT, 0), b"", true, &mut woken);
    }
    drop(table);
    wake(woken);
}

/// The event mask a setattr makes (Linux's fsnotify_change): a size
/// change is a modification, both times or owner or mode an attribute
/// change, the access time alone an access, the modification time alone
/// a modification.
pub fn setattr_mask(attr: &crate::proto::SetAttr) -> u32 {
    let mut mask = 0;
    if attr.uid.is_some() || attr.gid.is_some() || attr.mode.is_some() {
        mask |= IN_ATTRIB;
    }
    if attr.size.is_some() {
        mask |= IN_MODIFY;
    }
    mask |= match (attr.atime.is_some(), attr.mtime.is_some()) {
        (true, true) => IN_ATTRIB,
        (true, false) => IN_ACCESS,
        (false, true) => IN_MODIFY,
        (false, false) => 0,
    };
    mask
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(wd: i32, mask: u32, name: &[u8]) -> Event {
        Event {
            wd,
            mask,
            cookie: 0,
            name: name.to_vec(),
        }
    }

    #[test]
    fn inotify_event_name_is_padded_to_sixteen_with_a_nul() {
        let mut out = vec![];
        ev(1, IN_CREATE, b"abc").encode(&mut out);
        assert_eq!(out.len(), 32);
        assert_eq!(&out[12..16], &16u32.to_le_bytes());
        assert_eq!(&out[16..20], b"abc\0");
        let mut out = vec![];
        ev(1, IN_CREATE, &[b'x'; 16]).encode(&mut out);
        assert_eq!(out.len(), 16 + 32);
    }

    #[test]
    fn inotify_identical_last_event_is_coalesced() {
        let mut st = State::default();
        assert!(st.push(ev(1, IN_MODIFY, b"f")));
        assert!(!st.push(ev(1, IN_MODIFY, b"f")));
        assert!(st.push(ev(1, IN_MODIFY, b"g")));
        assert!(st.push(ev(1, IN_MODIFY, b"f")));
        assert_eq!(st.events.len(), 3);
    }

    #[test]
    fn inotify_full_queue_takes_one_overflow() {
        let mut st = State::default();
        for i in 0..MAX_QUEUED_EVENTS {
            st.push(ev(1, IN_MODIFY, format!("{i}").as_bytes()));
        }
        assert!(st.push(ev(1, IN_ACCESS, b"x")));
        assert!(!st.push(ev(1, IN_OPEN, b"y")));
        assert_eq!(st.events.back().unwrap().mask, IN_Q_OVERFLOW);
        assert_eq!(st.events.len(), MAX_QUEUED_EVENTS + 1);
    }

    #[test]
    fn inotify_setattr_mask_follows_fsnotify_change() {
        let mut a = crate::proto::SetAttr {
            atime: Some((1, 0)),
            ..Default::default()
        };
        assert_eq!(setattr_mask(&a), IN_ACCESS);
        a.mtime = Some((1, 0));
        assert_eq!(setattr_mask(&a), IN_ATTRIB);
        let b = crate::proto::SetAttr {
            size: Some(0),
            ..Default::default()
        };
        assert_eq!(setattr_mask(&b), IN_MODIFY);
    }
}
