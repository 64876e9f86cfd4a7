//! epoll: an interest list of (descriptor, open file description) pairs
//! and a ready list.
//!
//! Each watched file gets a hook on its wait queue. When the file tells
//! of an event the item wants, the hook puts the item on the ready list
//! and wakes the epoll's own queue (its waiters, and epolls that watch
//! this one). `epoll_wait` walks the ready list and asks each file for its
//! readiness now: a level-triggered item that is still ready stays on the
//! list, an edge-triggered one leaves it until its next event, a
//! one-shot item is disabled until EPOLL_CTL_MOD. A file without a wait
//! queue (stdio) stays on the ready list and is asked at every wait.
//!
//! Items hold their file description weakly: once its last descriptor
//! closes, the item is gone (it is dropped the next time it is seen).
//!
//! Lock order: an epoll's state, then the state of the files it polls
//! (and of nested epolls, which cannot form a cycle: EPOLL_CTL_ADD
//! refuses one with ELOOP). Hooks run with no file lock held and release
//! the state before notifying the queue.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};

use super::file::{FileOps, OpenFile};
use super::poll::{POLLERR, POLLHUP, POLLIN, POLLRDNORM};
use super::waitq::{Listener, WaitQueue, Watch};
use crate::abi::types::Stat;
use crate::abi::{Errno, SysResult};

pub const EPOLLIN: u32 = 0x1;
pub const EPOLLOUT: u32 = 0x4;
pub const EPOLLERR: u32 = 0x8;
pub const EPOLLHUP: u32 = 0x10;
pub const EPOLLRDNORM: u32 = 0x40;
pub const EPOLLRDBAND: u32 = 0x80;
pub const EPOLLWRNORM: u32 = 0x100;
pub const EPOLLWRBAND: u32 = 0x200;
pub const EPOLLEXCLUSIVE: u32 = 1 << 28;
pub const EPOLLWAKEUP: u32 = 1 << 29;
pub const EPOLLONESHOT: u32 = 1 << 30;
pub const EPOLLET: u32 = 1 << 31;

/// The events EPOLLEXCLUSIVE may be combined with.
const EXCLUSIVE_OK: u32 = EPOLLIN
    | EPOLLOUT
    | EPOLLERR
    | EPOLLHUP
    | EPOLLRDNORM
    | EPOLLRDBAND
    | EPOLLWRNORM
    | EPOLLWRBAND
    | EPOLLWAKEUP
    | EPOLLET
    | EPOLLEXCLUSIVE;

/// Deepest chain of epolls watching epolls (Linux's EP_MAX_NESTS).
const MAX_NESTS: usize = 4;

/// An item's key: the descriptor and the open file description.
type Key = (i32, usize);

/// An epoll_ctl operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Add,
    Mod,
    Del,
}

struct Item {
    file: Weak<OpenFile>,
    /// Wanted events and flags (EPOLLET, EPOLLONESHOT, ...).
    events: u32,
    data: u64,
    /// On the ready list.
    ready: bool,
    /// A one-shot item that fired.
    disabled: bool,
    /// The file has no wait queue: it is asked at every wait.
    unqueued: bool,
    _hook: Option<(Arc<Hook>, Watch)>,
}

impl Item {
    fn mask(&self) -> u16 {
        (self.events & 0xffff) as u16 | POLLERR | POLLHUP
    }
}

#[derive(Default)]
struct State {
    items: HashMap<Key, Item>,
    ready: VecDeque<Key>,
}

impl State {
    fn make_ready(&mut self, key: Key) -> bool {
        match self.items.get_mut(&key) {
            Some(item) if !item.ready && !item.disabled => {
                item.ready = true;
                self.ready.push_back(key);
                true
            }
            _ => false,
        }
    }
}

/// An epoll instance.
pub struct Epoll {
    state: Mutex<State>,
    queue: Arc<WaitQueue>,
    ino: u64,
    me: Weak<Epoll>,
}

/// The hook an item puts on its file's wait queue.
struct Hook {
    epoll: Weak<Epoll>,
    key: Key,
}

impl Listener for Hook {
    fn notify(&self, events: u16) {
        if let Some(ep) = self.epoll.upgrade() {
            ep.file_event(self.key, events);
        }
    }
}

impl Epoll {
    pub fn new() -> Arc<Epoll> {
        Arc::new_cyclic(|me| Epoll {
            state: Mutex::new(State::default()),
            queue: WaitQueue::new(),
            ino: super::anon::next_ino(),
            me: me.clone(),
        })
    }

    /// The epoll behind an open file, if it is one.
    pub fn of(file: &OpenFile) -> Option<&Epoll> {
        file.ops.as_any().and_then(|a| a.downcast_ref::<Epoll>())
    }

    fn file_event(&self, key: Key, events: u16) {
        let woke = {
            let mut st = self.state.lock().unwrap();
            let wanted = st
                .items
                .get(&key)
                .is_some_and(|item| item.mask() & events != 0);
            // Told even when the item was already on the ready list: it
            // may sit there unready (polled by a nesting epoll, not
            // collected), and edge-triggered watchers want every event.
            if wanted {
                st.make_ready(key);
            }
            wanted
        };
        if woke {
            self.queue.notify(POLLIN | POLLRDNORM);
        }
    }

    /// epoll_ctl(2) on descriptor `fd` naming `file`, with the event mask
    /// and data of EPOLL_CTL_ADD / MOD.
    pub fn ctl(
        &self,
        op: Op,
        fd: i32,
        file: &Arc<OpenFile>,
        events: u32,
        data: u64,
    ) -> SysResult<()> {
        let key = (fd, Arc::as_ptr(file) as usize);
        if !file.ops.epollable() {
            return Err(Errno::EPERM);
        }
        let nested = Epoll::of(file);
        let exclusive = op != Op::Del && events & EPOLLEXCLUSIVE != 0;
        if exclusive && (op == Op::Mod || events & !EXCLUSIVE_OK != 0 || nested.is_some()) {
            return Err(Errno::EINVAL);
        }
        if let (Op::Add, Some(inner)) = (op, nested) {
            if std::ptr::eq(inner, self) || inner.reaches(self, 0)? {
                return Err(Errno::ELOOP);
            }
        }
        let mut st = self.state.lock().unwrap();
        let State { items, ready } = &mut *st;
        items.retain(|_, item| item.file.strong_count() > 0);
        ready.retain(|k| items.contains_key(k));
        match op {
            Op::Add if st.items.contains_key(&key) => return Err(Errno::EEXIST),
            Op::Mod | Op::Del if !st.items.contains_key(&key) => return Err(Errno::ENOENT),
            Op::Mod if st.items[&key].events & EPOLLEXCLUSIVE != 0 => return Err(Errno::EINVAL),
            Op::Del => {
                st.items.remove(&key);
                st.ready.retain(|k| *k != key);
                return Ok(());
            }
            _ => {}
        }
        st.ready.retain(|k| *k != key);
        let mut item = Item {
            file: Arc::downgrade(file),
            events,
            data,
            ready: false,
            disabled: false,
            unqueued: false,
            _hook: None,
        };
        match file.ops.waitq() {
            Some(q) => {
                let hook = Arc::new(Hook {
                    epoll: self.me.clone(),
                    key,
                });
                let weak = Arc::downgrade(&hook) as Weak<dyn Listener>;
                let watch = q.watch(weak, item.mask());
                item._hook = Some((hook, watch));
            }
            None => item.unqueued = true,
        }
        st.items.insert(key, item);
        // Ready or not, it is asked at the next wait.
        st.make_ready(key);
        drop(st);
        self.queue.notify(POLLIN | POLLRDNORM);
        Ok(())
    }

    /// Whether this epoll watches `target`, directly or through nested
    /// epolls; ELOOP past MAX_NESTS levels.
    fn reaches(&self, target: &Epoll, depth: usize) -> SysResult<bool> {
        if depth >= MAX_NESTS {
            return Err(Errno::ELOOP);
        }
        let files: Vec<Arc<OpenFile>> = {
            let st = self.state.lock().unwrap();
            st.items.values().filter_map(|i| i.file.upgrade()).collect()
        };
        for f in files {
            if let Some(inner) = Epoll::of(&f) {
                if std::ptr::eq(inner, target) || inner.reaches(target, depth + 1)? {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Takes up to `max` ready events as (events, data).
    pub fn collect(&self, max: usize) -> Vec<(u32, u64)> {
        let mut out = Vec::new();
        let mut st = self.state.lock().unwrap();
        let st = &mut *st;
        for _ in 0..st.ready.len() {
            if out.len() >= max {
                break;
            }
            let Some(key) = st.ready.pop_front() else {
                break;
            };
            let Some(item) = st.items.get_mut(&key) else {
                continue;
            };
            item.ready = false;
            let Some(file) = item.file.upgrade() else {
                st.items.remove(&key);
                continue;
            };
            if item.disabled {
                continue;
            }
            let revents = file.ops.poll(item.mask()) & item.mask();
            let keep = if revents == 0 {
                item.unqueued
            } else {
                out.push((revents as u32, item.data));
                if item.events & EPOLLONESHOT != 0 {
                    item.disabled = true;
                }
                !item.disabled && (item.events & EPOLLET == 0 || item.unqueued)
            };
            if keep {
                item.ready = true;
                st.ready.push_back(key);
            }
        }
        out
    }

    /// Whether some watched file has no wait queue (waits must then
    /// re-check it regularly).
    pub fn has_unqueued(&self) -> bool {
        let st = self.state.lock().unwrap();
        st.items.values().any(|i| i.unqueued && !i.disabled)
    }

    /// The queue to sleep on while waiting for events.
    pub fn queue(&self) -> &Arc<WaitQueue> {
        &self.queue
    }
}

impl FileOps for Epoll {
    fn stat(&self) -> SysResult<Stat> {
        Ok(super::anon::stat(self.ino))
    }

    fn seekable(&self) -> bool {
        false
    }

    fn poll(&self, want: u16) -> u16 {
        let st = self.state.lock().unwrap();
        let ready = st.ready.iter().any(|key| {
            let Some(item) = st.items.get(key) else {
                return false;
            };
            let file = item.file.upgrade();
            !item.disabled && file.is_some_and(|f| f.ops.poll(item.mask()) & item.mask() != 0)
        });
        if ready {
            want & (POLLIN | POLLRDNORM)
        } else {
            0
        }
    }

    fn waitq(&self) -> Option<Arc<WaitQueue>> {
        Some(self.queue.clone())
    }

    fn fd_target(&self) -> Option<Vec<u8>> {
        Some(super::anon::fd_target("eventpoll"))
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sentry::vfs::pipe::new_pipe;

    fn never() -> bool {
        false
    }

    fn pipe_files() -> (Arc<OpenFile>, Arc<OpenFile>) {
        let (r, w) = new_pipe(1, never);
        (
            OpenFile::new(r, libc::O_RDONLY as u32),
            OpenFile::new(w, libc::O_WRONLY as u32),
        )
    }

    #[test]
    fn epoll_level_triggered_reports_until_drained() {
        let ep = Epoll::new();
        let (r, w) = pipe_files();
        ep.ctl(Op::Add, 3, &r, EPOLLIN, 7).unwrap();
        assert!(ep.collect(8).is_empty());
        w.write(b"x").unwrap();
        assert_eq!(ep.collect(8), vec![(EPOLLIN, 7)]);
        assert_eq!(ep.collect(8), vec![(EPOLLIN, 7)]);
        r.read(&mut [0u8; 1]).unwrap();
        assert!(ep.collect(8).is_empty());
    }

    #[test]
    fn epoll_edge_triggered_reports_each_write_once() {
        let ep = Epoll::new();
        let (r, w) = pipe_files();
        ep.ctl(Op::Add, 3, &r, EPOLLIN | EPOLLET, 1).unwrap();
        w.write(b"x").unwrap();
        assert_eq!(ep.collect(8), vec![(EPOLLIN, 1)]);
        assert!(ep.collect(8).is_empty());
        w.write(b"y").unwrap();
        assert_eq!(ep.collect(8), vec![(EPOLLIN, 1)]);
    }

    #[test]
    fn epoll_oneshot_is_disabled_until_mod() {
        let ep = Epoll::new();
        let (r, w) = pipe_files();
        ep.ctl(Op::Add, 3, &r, EPOLLIN | EPOLLONESHOT, 1).unwrap();
        w.write(b"x").unwrap();
        assert_eq!(ep.collect(8).len(), 1);
        w.write(b"y").unwrap();
        assert!(ep.collect(8).is_empty());
        ep.ctl(Op::Mod, 3, &r, EPOLLIN | EPOLLONESHOT, 2).unwrap();
        assert_eq!(ep.collect(8), vec![(EPOLLIN, 2)]);
    }

    #[test]
    fn epoll_closed_description_leaves_the_interest_list() {
        let ep = Epoll::new();
        let (r, w) = pipe_files();
        ep.ctl(Op::Add, 4, &w, EPOLLOUT, 1).unwrap();
        drop(w);
        assert!(ep.collect(8).is_empty());
        assert!(ep.state.lock().unwrap().items.is_empty());
        drop(r);
    }

    #[test]
    fn epoll_watching_itself_through_another_is_eloop() {
        let a = OpenFile::new(Epoll::new(), libc::O_RDONLY as u32);
        let b = OpenFile::new(Epoll::new(), libc::O_RDONLY as u32);
        Epoll::of(&a)
            .unwrap()
            .ctl(Op::Add, 5, &b, EPOLLIN, 0)
            .unwrap();
        let r = Epoll::of(&b).unwrap().ctl(Op::Add, 4, &a, EPOLLIN, 0);
        assert_eq!(r, Err(Errno::ELOOP));
    }
}
