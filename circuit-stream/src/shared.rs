//! The state both ends of a pipe share, behind one lock.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use crate::queue::Queue;
use crate::StreamError;

/// One pipe: its bytes, its bound, whether it is closed, and who waits,
/// behind the lock; beside it, the yielding budget of each end.
#[derive(Debug)]
pub(crate) struct Shared {
    inner: Mutex<Inner>,
    /// The writer's futures-io writes.
    pub(crate) write_budget: Budget,
    /// The reader's futures-io reads.
    pub(crate) read_budget: Budget,
}

/// A write that may go in part and is at least this long waits until at
/// least this much fits ([`Shared::lock_to_write_some`]).
const WRITE_SOME_MIN: usize = 16 << 10;

/// A copy into or out of a pipe of at least this many bytes is made with
/// the lock released (a writer's into blocks of its own, a reader's out of
/// the first block, taken out whole): the lock is taken twice, not once,
/// and the other end is not held up for the length of the copy.
pub(crate) const COPY_OUTSIDE_MIN: usize = 16 << 10;

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) queue: Queue,
    /// Bytes taken out by [`Reader::poll_take`](crate::Reader::poll_take)
    /// whose chunks are not dropped yet: they still take room.
    pub(crate) lent: usize,
    /// Room a writer holds for bytes it copies into blocks of its own
    /// outside the lock ([`Writer`](crate::Writer)'s large copying writes):
    /// taken like buffered bytes, not readable until they are put in.
    pub(crate) reserved: usize,
    /// `None` for an unbounded pipe.
    pub(crate) capacity: Option<usize>,
    /// A bounded pipe's write limit
    /// ([`Reader::set_write_limit`](crate::Reader::set_write_limit)), at
    /// most `capacity`: `usize::MAX` when none is set.
    limit: usize,
    /// [`Writer::lift_write_limit`](crate::Writer::lift_write_limit) was
    /// called: the limit stays `usize::MAX`.
    limit_lifted: bool,
    /// `Some(epitaph)` once either end closed; the first close wins.
    pub(crate) closed: Option<Option<String>>,
    /// The first close was clean though it has an epitaph
    /// ([`Writer::close_clean_with`](crate::Writer::close_clean_with)):
    /// reads and writes end as if it had none.
    clean: bool,
    /// The reader closed: nothing buffered will ever be read.
    reader_closed: bool,
    /// The reader waited for bytes since the writer last asked
    /// ([`Writer::take_reader_waited`](crate::Writer::take_reader_waited)).
    pub(crate) reader_waited: bool,
    /// The reader's task while it waits, and how many bytes it waits for.
    reader: Option<Waiter>,
    /// The writer's task while it waits, and how much free space it waits for.
    writer: Option<Waiter>,
}

#[derive(Debug)]
struct Waiter {
    waker: Waker,
    need: usize,
}

/// Parks a task: keeps only the latest waker of each end.
fn park(slot: &mut Option<Waiter>, cx: &Context<'_>, need: usize) {
    match slot {
        Some(w) if w.waker.will_wake(cx.waker()) => w.need = need,
        _ => {
            *slot = Some(Waiter {
                waker: cx.waker().clone(),
                need,
            })
        }
    }
}

thread_local! {
    /// Wake-ups held back by [`batch_wakes`] on this thread, if it runs.
    static HELD: RefCell<Option<Vec<Waker>>> = const { RefCell::new(None) };
}

/// Wakes a task outside the lock (dropping `None` is a no-op), or holds the
/// wake-up back until the [`batch_wakes`] running on this thread ends.
fn wake(waker: Option<Waker>) {
    let Some(waker) = waker else {
        return;
    };
    let now = HELD.with(|held| match held.borrow_mut().as_mut() {
        Some(held) => {
            if !held.iter().any(|w| w.will_wake(&waker)) {
                held.push(waker);
            }
            None
        }
        None => Some(waker),
    });
    if let Some(waker) = now {
        waker.wake();
    }
}

/// Runs `f`, holding back the wake-ups that pipes on this thread give
/// meanwhile (each task once) and giving them when `f` returns or unwinds.
/// Nested calls join the outermost one.
///
/// For a task that moves many chunks through pipes in one poll, such as a
/// mux driver: the task at the other end of a pipe is woken once, with all
/// the chunks there, rather than once per chunk, which on a multi-thread
/// executor may mean once per chunk on another thread. Bytes are not held
/// back, only the wake-ups: a reader that polls meanwhile sees every byte.
pub fn batch_wakes<T>(f: impl FnOnce() -> T) -> T {
    let nested = HELD.with(|held| {
        let mut held = held.borrow_mut();
        if held.is_some() {
            return true;
        }
        *held = Some(Vec::new());
        false
    });
    if nested {
        return f();
    }
    struct Give;
    impl Drop for Give {
        fn drop(&mut self) {
            let held = HELD.with(|held| held.borrow_mut().take());
            for waker in held.into_iter().flatten() {
                waker.wake();
            }
        }
    }
    let _give = Give;
    f()
}

/// How many polls in a row of one end's futures-io methods or futures may
/// find the pipe ready before the next one yields.
pub(crate) const YIELD_AFTER: u32 = 128;

/// Cooperative yielding for the futures-io face of one end and for its
/// futures (`Writer::write`, `Writer::write_all`, `Reader::read` and the
/// message forms), not for the `poll_*_with` and `try_*` calls: after
/// [`YIELD_AFTER`] polls in a row that were ready, the next returns `Pending`
/// having woken its task, which the executor polls again later.
///
/// Without it a writer that always finds room never returns to its
/// executor until the pipe is full. A multi-thread executor such as
/// tokio's runs a task woken from a worker on that same worker, next (its
/// LIFO slot, which other workers do not steal from): the reader the first
/// write woke then waits for the whole pipe to fill, so the two ends take
/// turns on one worker and the idle workers are woken and parked again
/// and again. tokio's own pipes yield the same way (its task budget of 128
/// operations), and `piper`'s at random, one write in 100.
///
/// Only the task of its end touches a budget, through `&mut` of that end,
/// so plain loads and stores do; it lives in [`Shared`] rather than in the
/// end to keep the ends small.
#[derive(Debug, Default)]
pub(crate) struct Budget(AtomicU32);

impl Budget {
    /// Whether this poll yields: `true` (the task woken, the count reset)
    /// once the count is spent.
    pub(crate) fn yield_now(&self, cx: &Context<'_>) -> bool {
        if self.0.load(Ordering::Relaxed) < YIELD_AFTER {
            return false;
        }
        self.0.store(0, Ordering::Relaxed);
        cx.waker().wake_by_ref();
        true
    }

    /// Runs `poll` unless this poll [yields](Budget::yield_now), and counts it.
    pub(crate) fn poll<T>(
        &self,
        cx: &mut Context<'_>,
        poll: impl FnOnce(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        if self.yield_now(cx) {
            return Poll::Pending;
        }
        self.count(poll(cx))
    }

    /// Counts a poll: a ready one adds one, a waiting one starts over.
    pub(crate) fn count<T>(&self, poll: Poll<T>) -> Poll<T> {
        let count = match poll {
            Poll::Ready(_) => self.0.load(Ordering::Relaxed) + 1,
            Poll::Pending => 0,
        };
        self.0.store(count, Ordering::Relaxed);
        poll
    }
}

/// An empty epitaph is no epitaph.
pub(crate) fn epitaph(reason: String) -> Option<String> {
    Some(reason).filter(|r| !r.is_empty())
}

impl Shared {
    pub(crate) fn new(capacity: Option<usize>) -> Self {
        let inner = Mutex::new(Inner {
            queue: Queue::default(),
            lent: 0,
            reserved: 0,
            capacity,
            limit: usize::MAX,
            limit_lifted: false,
            closed: None,
            clean: false,
            reader_closed: false,
            reader_waited: false,
            reader: None,
            writer: None,
        });
        Shared {
            inner,
            write_budget: Budget::default(),
            read_budget: Budget::default(),
        }
    }

    /// Locks the state. A panic in a user callback cannot leave the queue
    /// inconsistent (indices move only after the callback returns), so a
    /// poisoned lock is still usable.
    #[inline]
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The locked state once at least `min` bytes are buffered, for the
    /// caller to read from; hand it back to [`done_reading`](Shared::done_reading).
    ///
    /// `Err` if the pipe closed with fewer than `min` bytes left, or if `min`
    /// can never fit. `Ok(None)` if the caller must wait: with `cx`, the
    /// reader is then parked until enough bytes arrive or the pipe closes.
    #[inline]
    pub(crate) fn lock_to_read(
        &self,
        cx: Option<&Context<'_>>,
        min: usize,
    ) -> Result<Option<MutexGuard<'_, Inner>>, StreamError> {
        let inner = self.lock();
        if inner.queue.len() >= min {
            return Ok(Some(inner));
        }
        Shared::cannot_read_yet(inner, cx, min)
    }

    /// [`lock_to_read`](Shared::lock_to_read) when fewer than `min` bytes
    /// are buffered, out of line to keep the ready path short.
    #[cold]
    #[inline(never)]
    fn cannot_read_yet<'a>(
        mut inner: MutexGuard<'a, Inner>,
        cx: Option<&Context<'_>>,
        min: usize,
    ) -> Result<Option<MutexGuard<'a, Inner>>, StreamError> {
        if let Some(end) = inner.end() {
            return Err(end);
        }
        if let Some(capacity) = inner.capacity.filter(|&c| min > c) {
            return Err(StreamError::TooLarge {
                requested: min,
                capacity,
            });
        }
        if let Some(cx) = cx {
            inner.reader_waited = true;
            park(&mut inner.reader, cx, min);
            // A writer waiting for a worthwhile piece to fit puts in what
            // fits now (`Inner::reader_starved`): the bytes this reader
            // waits for may be no more than that.
            if inner.writer.is_some() {
                let waker = inner.writer_to_wake();
                drop(inner);
                wake(waker);
            }
        }
        Ok(None)
    }

    /// Unlocks after a read and wakes the writer if it now has the space it
    /// waits for.
    #[inline]
    pub(crate) fn done_reading(inner: MutexGuard<'_, Inner>) {
        if inner.writer.is_some() {
            Shared::wake_writer(inner);
        }
    }

    /// [`done_reading`](Shared::done_reading) with a writer waiting.
    #[inline(never)]
    fn wake_writer(mut inner: MutexGuard<'_, Inner>) {
        let waker = inner.writer_to_wake();
        drop(inner);
        wake(waker);
    }

    /// The locked state once `len` bytes of space are free, for the caller
    /// to write into; hand it back to [`done_writing`](Shared::done_writing).
    /// The same contract as [`lock_to_read`](Shared::lock_to_read) for the
    /// writing end: `Err` if closed or if `len` can never fit.
    #[inline]
    pub(crate) fn lock_to_write(
        &self,
        cx: Option<&Context<'_>>,
        len: usize,
    ) -> Result<Option<MutexGuard<'_, Inner>>, StreamError> {
        self.lock_for_room(cx, |_| len)
    }

    /// [`lock_to_write`](Shared::lock_to_write) for a write of up to `len`
    /// bytes that may go in part: it waits until a worthwhile part fits
    /// ([`Inner::some_need`]), not a single byte, so that a writer ahead of
    /// its reader puts in large pieces rather than whatever sliver the
    /// reader last freed (the silly window of TCP: a mux would send each
    /// sliver as a frame of its own).
    #[inline]
    pub(crate) fn lock_to_write_some(
        &self,
        cx: Option<&Context<'_>>,
        len: usize,
    ) -> Result<Option<MutexGuard<'_, Inner>>, StreamError> {
        self.lock_for_room(cx, |inner| inner.some_need(len))
    }

    /// Locks, and returns the state if the room `need` asks for is free.
    #[inline]
    fn lock_for_room(
        &self,
        cx: Option<&Context<'_>>,
        need: impl FnOnce(&Inner) -> usize,
    ) -> Result<Option<MutexGuard<'_, Inner>>, StreamError> {
        let inner = self.lock();
        let need = need(&inner);
        // What fits is never above the capacity.
        if inner.closed.is_none() && inner.fits(need) {
            return Ok(Some(inner));
        }
        Shared::cannot_write_yet(inner, cx, need)
    }

    /// [`lock_to_write`](Shared::lock_to_write) when the pipe is closed or
    /// short of room, out of line to keep the ready path short.
    #[cold]
    #[inline(never)]
    fn cannot_write_yet<'a>(
        mut inner: MutexGuard<'a, Inner>,
        cx: Option<&Context<'_>>,
        len: usize,
    ) -> Result<Option<MutexGuard<'a, Inner>>, StreamError> {
        if let Some(end) = inner.end() {
            return Err(end);
        }
        if let Some(capacity) = inner.capacity.filter(|&c| len > c) {
            return Err(StreamError::TooLarge {
                requested: len,
                capacity,
            });
        }
        // Open and `len` fits: there is not room for it yet.
        if let Some(cx) = cx {
            park(&mut inner.writer, cx, len);
        }
        Ok(None)
    }

    /// Unlocks after a write and wakes the reader if it now has the bytes it
    /// waits for.
    #[inline]
    pub(crate) fn done_writing(inner: MutexGuard<'_, Inner>) {
        if inner.reader.is_some() {
            Shared::wake_reader(inner);
        }
    }

    /// [`done_writing`](Shared::done_writing) with a reader waiting.
    #[inline(never)]
    fn wake_reader(mut inner: MutexGuard<'_, Inner>) {
        let waker = inner.reader_to_wake();
        drop(inner);
        wake(waker);
    }

    /// Changes what bounds the writer's room with `f` under the lock, then
    /// wakes the writer if that gives it the room it waits for.
    fn change_room(&self, f: impl FnOnce(&mut Inner)) {
        let mut inner = self.lock();
        f(&mut inner);
        let waker = inner.writer_to_wake();
        drop(inner);
        wake(waker);
    }

    /// Raises a bounded pipe's capacity to `capacity` (never lowers it).
    pub(crate) fn grow_capacity(&self, capacity: usize) {
        self.change_room(|inner| {
            if let Some(c) = &mut inner.capacity {
                *c = (*c).max(capacity);
            }
        });
    }

    /// Sets a bounded pipe's write limit (see
    /// [`Reader::set_write_limit`](crate::Reader::set_write_limit)), unless
    /// it was lifted.
    pub(crate) fn set_write_limit(&self, limit: usize) {
        self.change_room(|inner| {
            if !inner.limit_lifted {
                inner.limit = limit.max(1);
            }
        });
    }

    /// Removes the write limit for good (see
    /// [`Writer::lift_write_limit`](crate::Writer::lift_write_limit)).
    pub(crate) fn lift_write_limit(&self) {
        self.change_room(|inner| {
            inner.limit_lifted = true;
            inner.limit = usize::MAX;
        });
    }

    /// Gives back the room of `n` bytes of a dropped chunk.
    pub(crate) fn release(&self, n: usize) {
        self.change_room(|inner| inner.lent = inner.lent.saturating_sub(n));
    }

    /// Puts bytes before everything buffered, past the capacity if need be.
    /// Does nothing once the reader closed. `lent` of them were taken out
    /// with their room kept (`poll_fill_buf`): they take their room in the
    /// queue again instead.
    pub(crate) fn push_front(&self, bytes: &[u8], lent: usize) {
        let mut inner = self.lock();
        inner.lent = inner.lent.saturating_sub(lent);
        if inner.reader_closed {
            return;
        }
        inner.queue.push_front(bytes);
        Shared::done_writing(inner);
    }

    /// Closes the pipe unless it is closed already (the first epitaph stays),
    /// dropping what is buffered if the reader is the one closing. Wakes both
    /// ends.
    pub(crate) fn close(&self, epitaph: Option<String>, by_reader: bool) {
        self.close_as(epitaph, false, by_reader);
    }

    /// [`close`](Shared::close) by the writer, cleanly: reads end as if
    /// there were no epitaph, though it is kept.
    pub(crate) fn close_clean(&self, epitaph: Option<String>) {
        self.close_as(epitaph, true, false);
    }

    fn close_as(&self, epitaph: Option<String>, clean: bool, by_reader: bool) {
        let mut inner = self.lock();
        if inner.closed.is_none() {
            inner.closed = Some(epitaph);
            inner.clean = clean;
        }
        if by_reader {
            inner.queue.clear();
            inner.reader_closed = true;
        }
        let reader = inner.reader.take().map(|w| w.waker);
        let writer = inner.writer.take().map(|w| w.waker);
        drop(inner);
        wake(reader);
        wake(writer);
    }
}

impl Inner {
    /// Why reads and writes fail once the pipe is closed: its epitaph, or
    /// none after a clean close.
    pub(crate) fn end(&self) -> Option<StreamError> {
        let epitaph = self.closed.as_ref()?;
        Some(StreamError::Closed(match self.clean {
            true => None,
            false => epitaph.clone(),
        }))
    }

    /// Free space: room below the write limit (the capacity if none is
    /// set); everything for an unbounded pipe.
    #[inline]
    pub(crate) fn free(&self) -> usize {
        match self.capacity {
            Some(capacity) => capacity.min(self.limit).saturating_sub(self.taken()),
            None => usize::MAX,
        }
    }

    /// Whether a write of `len` bytes can go in now: there is room for it,
    /// or the pipe holds nothing and `len` is within the capacity (a write
    /// larger than the write limit goes in whole once the pipe is empty).
    #[inline]
    fn fits(&self, len: usize) -> bool {
        self.free() >= len || (self.taken() == 0 && self.capacity.is_some_and(|c| len <= c))
    }

    /// Room taken: bytes buffered, lent out in chunks, or being copied in.
    #[inline]
    pub(crate) fn taken(&self) -> usize {
        self.queue.len() + self.lent + self.reserved
    }

    /// The free space a write of up to `len` bytes that may go in part
    /// waits for: all of it if it is short, else [`WRITE_SOME_MIN`], but
    /// never more than half of what the pipe may hold (so it never waits
    /// for an empty pipe); one byte while the reader waits for bytes and
    /// holds none of the pipe's room (it may wait for fewer than that); 0
    /// for an empty write.
    #[inline]
    fn some_need(&self, len: usize) -> usize {
        if self.reader_starved() {
            return len.min(1);
        }
        let room = self.capacity.map_or(usize::MAX, |c| c.min(self.limit));
        len.min(WRITE_SOME_MIN).min((room / 2).max(1))
    }

    fn reader_to_wake(&mut self) -> Option<Waker> {
        match &self.reader {
            Some(w) if self.queue.len() >= w.need => self.reader.take().map(|w| w.waker),
            _ => None,
        }
    }

    /// The reader waits for bytes and holds none of the pipe's room:
    /// whatever fits may be what it waits for, so a writer puts in what
    /// fits rather than wait for a worthwhile piece. (A reader that holds
    /// room in chunks, as a mux does while their bytes go out, gives it
    /// back without more bytes: a writer waiting for a worthwhile piece
    /// then keeps the mux from sending slivers.)
    #[inline]
    fn reader_starved(&self) -> bool {
        self.reader.is_some() && self.lent == 0
    }

    fn writer_to_wake(&mut self) -> Option<Waker> {
        match &self.writer {
            Some(w) if self.fits(w.need) || (self.reader_starved() && self.free() > 0) => {
                self.writer.take().map(|w| w.waker)
            }
            _ => None,
        }
    }
}
