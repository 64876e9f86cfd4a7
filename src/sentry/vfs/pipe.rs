//! Pipes: a bounded byte buffer between a read end and a write end.
//! Readers block while it is empty and a writer exists; writers block
//! while it is full and a reader exists. A blocked task sleeps on the
//! pipe's wait queue (every change notifies it), so a signal wakes it
//! at once, as any other wait does.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::file::FileOps;
use super::poll::{POLLERR, POLLHUP, POLLIN, POLLOUT};
use super::waitq::{block_as_current, WaitQueue};
use crate::abi::types::{Stat, S_IFIFO};
use crate::abi::{Errno, SysResult};

/// Capacity of a new pipe (Linux's default: 16 pages).
pub const PIPE_BUF_SIZE: usize = 65536;
/// Largest capacity F_SETPIPE_SZ gives without CAP_SYS_RESOURCE
/// (/proc/sys/fs/pipe-max-size).
pub const PIPE_MAX_SIZE: usize = 1 << 20;
/// Writes up to this size are atomic (PIPE_BUF).
const PIPE_BUF: usize = 4096;

struct State {
    buf: VecDeque<u8>,
    /// Bytes the pipe holds at most (F_SETPIPE_SZ).
    cap: usize,
    readers: usize,
    writers: usize,
    /// Opens of each side so far (a FIFO's opener waits for the other
    /// side to have been opened, even if it closed again since).
    opens: [u64; 2],
}

struct Shared {
    state: Mutex<State>,
    /// Pollers, epoll instances and blocked tasks watching either end:
    /// told of every change.
    queue: Arc<WaitQueue>,
    ino: u64,
}

/// One end of a pipe.
pub struct PipeEnd {
    shared: Arc<Shared>,
    write: bool,
    /// A FIFO opened O_RDWR: both a reader and a writer.
    both: bool,
    /// Returns true when the calling task was killed while blocked.
    interrupted: fn() -> bool,
}

/// Creates a pipe: (read end, write end). `interrupted` tells a blocked
/// operation to give up with EINTR.
pub fn new_pipe(ino: u64, interrupted: fn() -> bool) -> (Arc<PipeEnd>, Arc<PipeEnd>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            buf: VecDeque::new(),
            cap: PIPE_BUF_SIZE,
            readers: 1,
            writers: 1,
            opens: [1, 1],
        }),
        queue: WaitQueue::new(),
        ino,
    });
    let r = Arc::new(PipeEnd {
        shared: shared.clone(),
        write: false,
        both: false,
        interrupted,
    });
    let w = Arc::new(PipeEnd {
        shared,
        write: true,
        both: false,
        interrupted,
    });
    (r, w)
}

impl PipeEnd {
    /// Reads without blocking when `nonblock`.
    pub fn read_mode(&self, buf: &mut [u8], nonblock: bool) -> SysResult<usize> {
        self.copy_out(buf, nonblock, true)
    }

    /// Copies what the pipe holds (up to `buf.len()`) without taking it
    /// (tee, and splice before it knows how much the other end took),
    /// waiting for data as a read does: 0 at end of file.
    pub fn peek_mode(&self, buf: &mut [u8], nonblock: bool) -> SysResult<usize> {
        self.copy_out(buf, nonblock, false)
    }

    /// Waits for data as a read does and copies it into `buf`, taking it
    /// out of the pipe under the same lock when `take` (so two readers
    /// never get the same bytes).
    fn copy_out(&self, buf: &mut [u8], nonblock: bool, take: bool) -> SysResult<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        wait_on(&self.shared, self.interrupted, || {
            let mut st = self.shared.state.lock().unwrap();
            if !st.buf.is_empty() {
                let n = buf.len().min(st.buf.len());
                for (i, b) in st.buf.range(..n).enumerate() {
                    buf[i] = *b;
                }
                if take {
                    st.buf.drain(..n);
                    drop(st);
                    self.shared.queue.notify(POLLOUT);
                }
                return Some(Ok(n));
            }
            if st.writers == 0 {
                return Some(Ok(0));
            }
            nonblock.then_some(Err(Errno::EAGAIN))
        })
    }

    /// Takes the first `n` bytes (at most what is there) out of the pipe.
    pub fn consume(&self, n: usize) {
        if n == 0 {
            return;
        }
        let mut st = self.shared.state.lock().unwrap();
        let n = n.min(st.buf.len());
        st.buf.drain(..n);
        drop(st);
        self.shared.queue.notify(POLLOUT);
    }

    /// Waits until the pipe has room (splice, tee and vmsplice fill only
    /// what fits); returns the room. EPIPE when no reader is left.
    pub fn wait_room(&self, nonblock: bool) -> SysResult<usize> {
        wait_on(&self.shared, self.interrupted, || {
            let st = self.shared.state.lock().unwrap();
            if st.readers == 0 {
                return Some(Err(Errno::EPIPE));
            }
            if st.buf.len() < st.cap {
                return Some(Ok(st.cap - st.buf.len()));
            }
            nonblock.then_some(Err(Errno::EAGAIN))
        })
    }

    /// Whether `other` is an end of the same pipe.
    pub fn same_pipe(&self, other: &PipeEnd) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// Writes without blocking when `nonblock`. EPIPE when no reader is
    /// left (the caller raises SIGPIPE).
    pub fn write_mode(&self, buf: &[u8], nonblock: bool) -> SysResult<usize> {
        let mut done = 0;
        let written = wait_on(&self.shared, self.interrupted, || {
            let mut st = self.shared.state.lock().unwrap();
            if st.readers == 0 {
                return Some(if done > 0 {
                    Ok(done)
                } else {
                    Err(Errno::EPIPE)
                });
            }
            let room = st.cap.saturating_sub(st.buf.len());
            let left = buf.len() - done;
            // Small writes go in whole or not at all.
            if room > 0 && (left > PIPE_BUF || room >= left) {
                let n = room.min(left);
                st.buf.extend(&buf[done..done + n]);
                done += n;
                // Readers may take what is there while this write waits
                // for the room the rest needs.
                drop(st);
                self.shared.queue.notify(POLLIN);
                if done == buf.len() {
                    return Some(Ok(done));
                }
            }
            match (nonblock, done) {
                (false, _) => None,
                (true, 0) => Some(Err(Errno::EAGAIN)),
                (true, _) => Some(Ok(done)),
            }
        });
        match written {
            Err(Errno::EINTR) if done > 0 => Ok(done),
            r => r,
        }
    }

    /// The capacity (F_GETPIPE_SZ).
    pub fn capacity(&self) -> usize {
        self.shared.state.lock().unwrap().cap
    }

    /// Sets the capacity (F_SETPIPE_SZ) to `want` rounded up to a power
    /// of two pages; returns it. EPERM past PIPE_MAX_SIZE unless
    /// `privileged`, EBUSY below what the pipe holds now.
    pub fn set_capacity(&self, want: u64, privileged: bool) -> SysResult<usize> {
        let pages = want.div_ceil(4096).max(1);
        let size = pages
            .checked_next_power_of_two()
            .and_then(|p| p.checked_mul(4096))
            .filter(|&s| s <= i32::MAX as u64)
            .ok_or(Errno::EINVAL)? as usize;
        if size > PIPE_MAX_SIZE && !privileged {
            return Err(Errno::EPERM);
        }
        let mut st = self.shared.state.lock().unwrap();
        if size < st.buf.len() {
            return Err(Errno::EBUSY);
        }
        st.cap = size;
        drop(st);
        self.shared.queue.notify(POLLOUT);
        Ok(size)
    }

    /// Bytes ready to read (FIONREAD).
    pub fn available(&self) -> usize {
        self.shared.state.lock().unwrap().buf.len()
    }

    pub fn is_write_end(&self) -> bool {
        self.write
    }
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        let mut st = self.shared.state.lock().unwrap();
        if self.write || self.both {
            st.writers -= 1;
        }
        if !self.write || self.both {
            st.readers -= 1;
        }
        drop(st);
        self.shared
            .queue
            .notify(POLLIN | POLLOUT | POLLHUP | POLLERR);
    }
}

impl FileOps for PipeEnd {
    fn read(&self, buf: &mut [u8], _off: u64) -> SysResult<usize> {
        self.read_mode(buf, false)
    }

    fn write(&self, buf: &[u8], _off: u64) -> SysResult<usize> {
        self.write_mode(buf, false)
    }

    fn stat(&self) -> SysResult<Stat> {
        Ok(Stat {
            mode: S_IFIFO | 0o600,
            nlink: 1,
            blksize: 4096,
            ino: self.shared.ino,
            dev: 0xc,
            ..Default::default()
        })
    }

    fn seekable(&self) -> bool {
        false
    }

    fn pipe(&self) -> Option<&PipeEnd> {
        Some(self)
    }

    fn waitq(&self) -> Option<Arc<WaitQueue>> {
        Some(self.shared.queue.clone())
    }

    fn fd_target(&self) -> Option<Vec<u8>> {
        Some(format!("pipe:[{}]", self.shared.ino).into_bytes())
    }

    fn poll(&self, want: u16) -> u16 {
        use super::poll::*;
        let st = self.shared.state.lock().unwrap();
        if self.both {
            let data = if st.buf.is_empty() {
                0
            } else {
                POLLIN | POLLRDNORM
            };
            let room = if st.buf.len() < st.cap {
                POLLOUT | POLLWRNORM
            } else {
                0
            };
            return (data | room) & want;
        }
        let ready = if self.write {
            let room = if st.buf.len() < st.cap {
                POLLOUT | POLLWRNORM
            } else {
                0
            };
            room | if st.readers == 0 { POLLERR } else { 0 }
        } else {
            let data = if st.buf.is_empty() {
                0
            } else {
                POLLIN | POLLRDNORM
            };
            data | if st.writers == 0 { POLLHUP } else { 0 }
        };
        ready & (want | POLLERR | POLLHUP)
    }
}

/// A named pipe (FIFO): the one pipe all its openers share.
pub struct Fifo {
    shared: Arc<Shared>,
}

impl Fifo {
    pub fn new() -> Arc<Fifo> {
        static NEXT_INO: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1 << 40);
        Arc::new(Fifo {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    buf: VecDeque::new(),
                    cap: PIPE_BUF_SIZE,
                    readers: 0,
                    writers: 0,
                    opens: [0, 0],
                }),
                queue: WaitQueue::new(),
                ino: NEXT_INO.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            }),
        })
    }

    /// Opens an end as fifo(7) says: a reader waits for a writer and a
    /// writer for a reader, unless `nonblock` (then a writer without a
    /// reader fails with ENXIO); O_RDWR (`read && write`) never waits.
    pub fn open(
        &self,
        read: bool,
        write: bool,
        nonblock: bool,
        interrupted: fn() -> bool,
    ) -> SysResult<Arc<PipeEnd>> {
        let mut st = self.shared.state.lock().unwrap();
        if write && !read && nonblock && st.readers == 0 {
            return Err(Errno::ENXIO);
        }
        // Whether the other side is open now (an opener of it may be
        // waiting for us), and its opens so far, under the same lock as
        // our own open: one that comes, writes and goes before we look
        // again must still count.
        let other = usize::from(read);
        let start = st.opens[other];
        let met = if read { st.writers } else { st.readers } > 0;
        if read {
            st.readers += 1;
            st.opens[0] += 1;
        }
        if write {
            st.writers += 1;
            st.opens[1] += 1;
        }
        let end = Arc::new(PipeEnd {
            shared: self.shared.clone(),
            write,
            both: read && write,
            interrupted,
        });
        drop(st);
        // An opened end changes what the other side's poll sees.
        self.shared.queue.notify(POLLIN | POLLOUT);
        if read == write || nonblock || met {
            return Ok(end);
        }
        // Wait until the other side is open, or was opened since ours.
        wait_on(&self.shared, interrupted, || {
            let st = self.shared.state.lock().unwrap();
            let open = if read { st.writers } else { st.readers } > 0;
            (open || st.opens[other] != start).then_some(Ok(()))
        })?;
        Ok(end)
    }
}

/// Blocks until `attempt` answers, trying again at each change of the
/// pipe; EINTR when `interrupted` says so (a signal or kill of the task,
/// which also wakes it).
fn wait_on<R>(
    shared: &Shared,
    interrupted: fn() -> bool,
    attempt: impl FnMut() -> Option<SysResult<R>>,
) -> SysResult<R> {
    block_as_current(&shared.queue, POLLIN | POLLOUT, interrupted, attempt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_reader_meets_a_waiting_writer_that_writes_and_goes_at_once() {
        for _ in 0..50 {
            let fifo = Fifo::new();
            let f = fifo.clone();
            let writer = std::thread::spawn(move || {
                let w = f.open(false, true, false, never).unwrap();
                w.write_mode(b"through-fifo\n", false).unwrap();
            });
            // The writer is open and waiting for a reader.
            while fifo.shared.state.lock().unwrap().writers == 0 {
                std::thread::yield_now();
            }
            let r = fifo.open(true, false, false, never).unwrap();
            let mut buf = [0u8; 32];
            let mut got = Vec::new();
            loop {
                let n = r.read_mode(&mut buf, false).unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            writer.join().unwrap();
            assert_eq!(got, b"through-fifo\n");
        }
    }

    fn never() -> bool {
        false
    }

    #[test]
    fn pipe_read_after_writer_closed_is_eof() {
        let (r, w) = new_pipe(1, never);
        assert_eq!(w.write_mode(b"abc", false).unwrap(), 3);
        drop(w);
        let mut buf = [0u8; 8];
        assert_eq!(r.read_mode(&mut buf, false).unwrap(), 3);
        assert_eq!(r.read_mode(&mut buf, false).unwrap(), 0);
    }

    #[test]
    fn pipe_write_without_reader_is_epipe() {
        let (r, w) = new_pipe(1, never);
        drop(r);
        assert_eq!(w.write_mode(b"x", false), Err(Errno::EPIPE));
    }

    #[test]
    fn pipe_full_nonblocking_write_is_eagain_and_reader_unblocks_writer() {
        let (r, w) = new_pipe(1, never);
        let big = vec![7u8; PIPE_BUF_SIZE];
        assert_eq!(w.write_mode(&big, true).unwrap(), PIPE_BUF_SIZE);
        assert_eq!(w.write_mode(b"x", true), Err(Errno::EAGAIN));
        let t = std::thread::spawn(move || w.write_mode(&[1u8; 10], false));
        let mut buf = vec![0u8; PIPE_BUF_SIZE];
        assert_eq!(r.read_mode(&mut buf, false).unwrap(), PIPE_BUF_SIZE);
        assert_eq!(t.join().unwrap().unwrap(), 10);
    }

    #[test]
    fn pipe_peek_leaves_the_data_and_consume_takes_it() {
        let (r, w) = new_pipe(1, never);
        w.write_mode(b"abcdef", false).unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(r.peek_mode(&mut buf, true).unwrap(), 4);
        assert_eq!(r.available(), 6);
        r.consume(2);
        assert_eq!(r.read_mode(&mut buf, true).unwrap(), 4);
        assert_eq!(&buf, b"cdef");
    }

    #[test]
    fn pipe_concurrent_readers_never_get_the_same_bytes() {
        let (r, w) = new_pipe(1, never);
        let total = 200_000u32;
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let r = r.clone();
                std::thread::spawn(move || {
                    let mut got = vec![];
                    let mut buf = [0u8; 4];
                    while r.read_mode(&mut buf, false).unwrap() == 4 {
                        got.push(u32::from_le_bytes(buf));
                    }
                    got
                })
            })
            .collect();
        for i in 0..total {
            w.write_mode(&i.to_le_bytes(), false).unwrap();
        }
        drop(w);
        let mut all: Vec<u32> = readers
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        all.sort_unstable();
        let dup = all.windows(2).find(|w| w[0] == w[1]);
        assert_eq!(dup, None, "a value read twice");
        assert_eq!(all.len(), total as usize);
    }

    #[test]
    fn pipe_wait_room_reports_room_and_epipe_without_readers() {
        let (r, w) = new_pipe(1, never);
        w.write_mode(&[0u8; 100], false).unwrap();
        assert_eq!(w.wait_room(true).unwrap(), PIPE_BUF_SIZE - 100);
        w.write_mode(&vec![0u8; PIPE_BUF_SIZE - 100], false)
            .unwrap();
        assert_eq!(w.wait_room(true), Err(Errno::EAGAIN));
        drop(r);
        assert_eq!(w.wait_room(true), Err(Errno::EPIPE));
    }
}
