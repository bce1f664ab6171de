//! The reading end of a pipe.

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use circuit_frame::{Decode, Decoded, Encode, FrameError};
use futures_io::{AsyncBufRead, AsyncRead, AsyncWrite};

use crate::queue::Storage;
use crate::shared::{epitaph, Inner, Shared, COPY_OUTSIDE_MIN};
use crate::{Chunk, StreamError};

/// The reading end of a pipe made by [`stream`](crate::stream) and friends.
///
/// Reads wait for a minimum number of bytes and let a callback look at
/// everything buffered, consuming as much as it wants (possibly nothing, to
/// peek). Dropping the reader closes the pipe without an epitaph.
///
/// A reader is meant for one task at a time: only the latest task to wait
/// on it is woken.
pub struct Reader {
    shared: Arc<Shared>,
    /// Bytes taken out of the pipe by [`AsyncBufRead::poll_fill_buf`] and
    /// not consumed yet. The lock is only ever contended by misuse; the
    /// futures-io impls reach it without locking.
    local: Mutex<Local>,
}

/// `buf[pos..end]` is still to be read.
#[derive(Default)]
struct Local {
    buf: Storage,
    pos: usize,
    end: usize,
}

impl Local {
    /// Takes the pipe's first block in whole, with its bytes (no copy);
    /// they keep their room in the pipe until consumed. The block held
    /// before goes back to the pool. The caller checks that bytes are
    /// buffered.
    fn take_front(&mut self, mut inner: MutexGuard<'_, Inner>) {
        let (buf, range) = inner.queue.take_front();
        inner.lent += range.len();
        Shared::done_reading(inner);
        std::mem::replace(&mut self.buf, buf).give_back();
        self.pos = range.start;
        self.end = range.end;
    }

    /// Copies as much of what it holds as fits into `buf` and consumes it;
    /// returns how many bytes.
    fn read_into(&mut self, buf: &mut [u8], shared: &Shared) -> usize {
        let n = buf.len().min(self.end - self.pos);
        buf[..n].copy_from_slice(&self.buf.as_slice()[self.pos..self.pos + n]);
        self.consumed(n, shared);
        n
    }

    /// `n` bytes of the buffer were read: their room goes back to the pipe,
    /// and the block, once read through, to the pool (a reader that waits
    /// holds no storage).
    fn consumed(&mut self, n: usize, shared: &Shared) {
        if n == 0 {
            return;
        }
        self.pos += n;
        if self.pos == self.end {
            std::mem::take(&mut self.buf).give_back();
            self.pos = 0;
            self.end = 0;
        }
        shared.release(n);
    }
}

/// What one look at the buffer told [`Reader::read_message`].
enum Step<M> {
    Done(M),
    Need(usize),
    Bad(FrameError),
}

impl Reader {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Reader {
            shared,
            local: Mutex::new(Local::default()),
        }
    }

    /// Waits until at least `min` bytes are buffered, then calls `f` with all
    /// the contiguous buffered bytes (at least `min` of them). `f` returns a
    /// value and how many bytes it consumed; those bytes leave the pipe and
    /// the rest stay for the next read.
    ///
    /// If the writer closed and fewer than `min` bytes remain, fails with
    /// [`StreamError::Closed`] carrying its epitaph; the remaining bytes can
    /// still be read with a smaller `min`. Fails with
    /// [`StreamError::TooLarge`] if `min` is above the capacity. A `min` of 0
    /// never waits.
    ///
    /// `f` runs under the pipe's lock: keep it short. Like the futures-io
    /// reads, this [yields](crate#cooperative-yielding) once after 128
    /// reads in a row that did not wait (unless `min` is 0).
    ///
    /// # Panics
    ///
    /// If `f` claims to have consumed more bytes than it saw.
    pub async fn read<T>(
        &self,
        min: usize,
        f: impl FnOnce(&[u8]) -> (T, usize),
    ) -> Result<T, StreamError> {
        let mut f = Some(f);
        if min == 0 {
            return poll_fn(|cx| self.poll(Some(cx), 0, &mut f)).await;
        }
        let budget = &self.shared.read_budget;
        poll_fn(|cx| budget.poll(cx, |cx| self.poll(Some(cx), min, &mut f))).await
    }

    /// The poll form of [`read`](Reader::read): `f` runs only when ready and
    /// is dropped unused on `Pending`.
    pub fn poll_read_with<T>(
        &self,
        cx: &mut Context<'_>,
        min: usize,
        f: impl FnOnce(&[u8]) -> (T, usize),
    ) -> Poll<Result<T, StreamError>> {
        self.poll(Some(cx), min, &mut Some(f))
    }

    /// Waits until bytes are buffered, then moves the first contiguous run
    /// of them out of the pipe as a [`Chunk`], without copying them: the
    /// chunk is the block of storage they were written into (at most
    /// 65,535 bytes unless a single write was larger). The bytes keep
    /// taking room in the pipe until the chunk is dropped. Fails as
    /// [`read`](Reader::read) with a `min` of 1 does.
    ///
    /// Drop chunks without waiting for more bytes first: while the reader
    /// holds room in chunks, a writer waits for a worthwhile piece of room
    /// (see [`Writer::poll_write_some`](crate::Writer::poll_write_some)),
    /// so a reader that holds nearly all of it and waits for more bytes
    /// before it lets go may wait for ever.
    pub fn poll_take(&self, cx: &mut Context<'_>) -> Poll<Result<Chunk, StreamError>> {
        self.unread_local();
        match self.shared.lock_to_read(Some(cx), 1) {
            Err(e) => Poll::Ready(Err(e)),
            Ok(None) => Poll::Pending,
            Ok(Some(mut inner)) => {
                let (buf, range) = inner.queue.take_front();
                inner.lent += range.len();
                Shared::done_reading(inner);
                Poll::Ready(Ok(Chunk::new(
                    buf,
                    range.start,
                    range.end,
                    Arc::clone(&self.shared),
                )))
            }
        }
    }

    /// Writes everything this reader gives to `to` until the end of the
    /// stream, then flushes `to`; returns the bytes copied. The bytes are
    /// moved out of the pipe as [`Chunk`]s ([`poll_take`](Reader::poll_take),
    /// no copy) and written to `to` from where they lie, so the only copy is
    /// `to`'s own (none at all for a socket, whose kernel copies anyway).
    ///
    /// Unlike `futures::io::copy` (an 8 KiB buffer, two copies), the bytes
    /// keep their room in this pipe until `to` has taken them: a writer (or
    /// a mux granting flow-control credit) gets room back only as bytes
    /// move on, so a copy between two pipes holds no more than the two
    /// pipes' bounds.
    ///
    /// The end of the stream is `Ok`; a close with an epitaph is an error
    /// of kind `ConnectionAborted` carrying [`StreamError::Closed`], as for
    /// [`AsyncRead`]. `to` is not closed. Taking chunks
    /// [yields](crate#cooperative-yielding) as reads do.
    pub async fn copy_to<W: AsyncWrite + Unpin + ?Sized>(&self, to: &mut W) -> io::Result<u64> {
        let mut copied = 0;
        loop {
            let budget = &self.shared.read_budget;
            let mut chunk = match poll_fn(|cx| budget.poll(cx, |cx| self.poll_take(cx))).await {
                Ok(chunk) => chunk,
                Err(StreamError::Closed(None)) => break,
                Err(e) => return Err(end_or_error(e)),
            };
            while !chunk.is_empty() {
                let n = poll_fn(|cx| Pin::new(&mut *to).poll_write(cx, &chunk)).await?;
                if n == 0 {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                // Their room goes back now.
                drop(chunk.split_to(n));
                copied += n as u64;
            }
        }
        poll_fn(|cx| Pin::new(&mut *to).poll_flush(cx)).await?;
        Ok(copied)
    }

    /// [`read`](Reader::read) without waiting: `Ok(None)` if fewer than
    /// `min` bytes are buffered yet.
    pub fn try_read_with<T>(
        &self,
        min: usize,
        f: impl FnOnce(&[u8]) -> (T, usize),
    ) -> Result<Option<T>, StreamError> {
        match self.poll(None, min, &mut Some(f)) {
            Poll::Ready(result) => result.map(Some),
            Poll::Pending => Ok(None),
        }
    }

    /// Reads one message, waiting for as many bytes as its decoder asks for.
    ///
    /// Fails with [`StreamError::Protocol`] (consuming nothing) if the bytes
    /// are not such a message, and with [`StreamError::Closed`] if the writer
    /// closed before a whole message arrived.
    pub async fn read_message<M: for<'a> Decode<'a>>(&self) -> Result<M, StreamError> {
        let mut min = M::MIN_LEN.max(1);
        loop {
            let step = self
                .read(min, |buf| match M::decode(buf) {
                    Ok(Decoded::Complete { message, consumed }) => {
                        (Step::Done(message), consumed.min(buf.len()))
                    }
                    // A decoder that asks for no more than it had would loop.
                    Ok(Decoded::Incomplete { needed }) => {
                        (Step::Need(needed.max(buf.len() + 1)), 0)
                    }
                    Err(e) => (Step::Bad(e), 0),
                })
                .await?;
            match step {
                Step::Done(message) => return Ok(message),
                Step::Need(needed) => min = needed,
                Step::Bad(e) => return Err(StreamError::Protocol(e)),
            }
        }
    }

    /// Puts `bytes` before everything buffered, so the next read sees them
    /// first. May take the pipe past its capacity: it is meant for a protocol
    /// header read too early, not for data. Does nothing once the reader
    /// closed.
    pub fn push_front(&self, bytes: &[u8]) {
        self.unread_local();
        self.shared.push_front(bytes, 0);
    }

    /// Encodes `message` and [`push_front`](Reader::push_front)s it.
    pub fn push_front_message(&self, message: &impl Encode) {
        let mut bytes = Vec::with_capacity(message.encoded_len());
        message.encode_to_vec(&mut bytes);
        self.push_front(&bytes);
    }

    /// Closes the pipe with an epitaph (an empty one counts as none) and
    /// drops what is buffered: the writer's next write fails with
    /// [`StreamError::Closed`]. If the pipe is closed already, the first
    /// epitaph stays.
    pub fn close(&self, epitaph_: impl Into<String>) {
        self.close_with(epitaph(epitaph_.into()));
    }

    /// Closes the pipe without an epitaph; see [`close`](Reader::close).
    pub fn close_without_reason(&self) {
        self.close_with(None);
    }

    fn close_with(&self, epitaph: Option<String>) {
        *lock(&self.local) = Local::default();
        self.shared.close(epitaph, true);
    }

    /// Whether the pipe is closed, by either end. After the writer closed,
    /// data may still be buffered: read on until [`StreamError::Closed`].
    pub fn is_closed(&self) -> bool {
        self.shared.lock().closed.is_some()
    }

    /// The epitaph of a closed pipe, if it was given one. After a clean
    /// close with an epitaph
    /// ([`Writer::close_clean_with`](crate::Writer::close_clean_with))
    /// reads end with [`StreamError::Closed`]`(None)` and the epitaph is
    /// only here.
    pub fn closed_reason(&self) -> Option<String> {
        self.shared.lock().closed.clone().flatten()
    }

    /// Whether `writer` writes into this reader's pipe: the two ends of
    /// one pipe (a mux checks it when handed a stream's own ends back).
    ///
    /// ```
    /// let (reader, writer) = circuit_stream::stream();
    /// let (_, other) = circuit_stream::stream();
    /// assert!(reader.pairs_with(&writer));
    /// assert!(!reader.pairs_with(&other));
    /// ```
    pub fn pairs_with(&self, writer: &crate::Writer) -> bool {
        Arc::ptr_eq(&self.shared, writer.shared())
    }

    /// Bytes ready to be read.
    pub fn buffered(&self) -> usize {
        let local = lock(&self.local);
        local.end - local.pos + self.shared.lock().queue.len()
    }

    /// The bound on buffered bytes, `None` for an unbounded pipe.
    pub fn capacity(&self) -> Option<usize> {
        self.shared.lock().capacity
    }

    /// Lets the writer of a bounded pipe buffer only `limit` bytes (at
    /// least 1) before it waits, where the capacity alone let it buffer
    /// up to the capacity; a limit at or above the capacity leaves the
    /// capacity as the bound. The limit may be lowered and raised at any
    /// time; raising it wakes a writer waiting for the room it makes.
    ///
    /// The capacity stays what a single write may need: a write of more
    /// than the limit (and at most the capacity, as before) goes in whole
    /// once the pipe is empty, so messages that fit the capacity still
    /// fit. Bytes already buffered stay; the writer waits until the reader
    /// takes enough. An unbounded pipe ignores the limit.
    ///
    /// A mux sets it to share a link's send buffering among its streams.
    ///
    /// ```
    /// use circuit_stream::TryWriteError;
    ///
    /// let (reader, writer) = circuit_stream::stream_with_capacity(64);
    /// reader.set_write_limit(16);
    /// writer.try_write(&[7; 10]).unwrap();
    /// // 10 + 10 would pass the limit: the writer waits.
    /// assert!(matches!(writer.try_write(&[7; 10]), Err(TryWriteError::Full)));
    /// reader.set_write_limit(64);
    /// writer.try_write(&[7; 10]).unwrap();
    /// assert_eq!(writer.buffered(), 20);
    /// ```
    pub fn set_write_limit(&self, limit: usize) {
        self.shared.set_write_limit(limit);
    }

    fn poll<T, F: FnOnce(&[u8]) -> (T, usize)>(
        &self,
        cx: Option<&Context<'_>>,
        min: usize,
        f: &mut Option<F>,
    ) -> Poll<Result<T, StreamError>> {
        self.unread_local();
        match self.shared.lock_to_read(cx, min) {
            Err(e) => Poll::Ready(Err(e)),
            Ok(None) => Poll::Pending,
            Ok(Some(inner)) => match f.take() {
                Some(f) => Poll::Ready(Ok(read_locked(inner, min, f))),
                // Only a future polled after completion gets here.
                None => Poll::Pending,
            },
        }
    }

    /// Gives bytes held back by `poll_fill_buf` to the pipe again, so a read
    /// through `&self` sees them first.
    fn unread_local(&self) {
        let mut local = lock(&self.local);
        if local.pos < local.end {
            let unread = &local.buf.as_slice()[local.pos..local.end];
            self.shared.push_front(unread, unread.len());
            std::mem::take(&mut local.buf).give_back();
            local.pos = 0;
            local.end = 0;
        }
    }
}

fn lock(local: &Mutex<Local>) -> MutexGuard<'_, Local> {
    local.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read_locked<T>(
    mut inner: MutexGuard<'_, Inner>,
    min: usize,
    f: impl FnOnce(&[u8]) -> (T, usize),
) -> T {
    let front = inner.queue.front(min);
    let len = front.len();
    let (value, consumed) = f(front);
    assert!(
        consumed <= len,
        "a read callback consumed {consumed} of the {len} bytes it saw"
    );
    inner.queue.consume(consumed);
    Shared::done_reading(inner);
    value
}

/// For the futures-io traits: a close without an epitaph is the end of the
/// stream, a close with one is an error of kind `ConnectionAborted`.
fn end_or_error(e: StreamError) -> io::Error {
    match e {
        e @ StreamError::Closed(Some(_)) => io::Error::new(io::ErrorKind::ConnectionAborted, e),
        e => e.into(),
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.shared.close(None, true);
    }
}

impl fmt::Debug for Reader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader")
            .field("buffered", &self.buffered())
            .field("capacity", &self.capacity())
            .field("closed", &self.shared.lock().closed)
            .finish()
    }
}

/// Copies out of the pipe into the caller's buffer. A close without an
/// epitaph (or a clean one, [`Writer::close_clean_with`](crate::Writer::close_clean_with))
/// reads as end of file, a close with one as a `ConnectionAborted` error
/// carrying [`StreamError::Closed`].
///
/// Reads yield as writes do: after 128 reads from the pipe in a row that
/// did not wait, the next one returns `Pending` having woken the task.
impl AsyncRead for Reader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let local = this.local.get_mut().unwrap_or_else(PoisonError::into_inner);
        if local.pos < local.end {
            return Poll::Ready(Ok(local.read_into(buf, &this.shared)));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if this.shared.read_budget.yield_now(cx) {
            return Poll::Pending;
        }
        let poll = match this.shared.lock_to_read(Some(cx), 1) {
            Ok(Some(inner))
                if buf.len() >= COPY_OUTSIDE_MIN && inner.queue.first_len() >= COPY_OUTSIDE_MIN =>
            {
                // A large copy goes with the lock released: the first block
                // comes out whole, as for `poll_fill_buf`, so the writer can
                // copy in meanwhile.
                local.take_front(inner);
                Poll::Ready(Ok(local.read_into(buf, &this.shared)))
            }
            Ok(Some(mut inner)) => {
                // Everything that fits, across blocks: a writer of small
                // pieces fills small blocks after its reader took the one
                // it was filling, and a read a block would stop short.
                let n = inner.queue.copy_out(buf);
                Shared::done_reading(inner);
                Poll::Ready(Ok(n))
            }
            Ok(None) => Poll::Pending,
            Err(StreamError::Closed(None)) => Poll::Ready(Ok(0)),
            Err(e) => Poll::Ready(Err(end_or_error(e))),
        };
        this.shared.read_budget.count(poll)
    }
}

/// Buffered reading through a per-reader buffer. Filling it takes the
/// pipe's first block of storage out, with all the bytes in it (no copy);
/// the block filled before goes back to the pool. The
/// bytes taken keep their room in the pipe until they are consumed, so the
/// writer (or a mux granting flow-control credit) gets room back only as
/// the reader gets through them: a pipe's bound holds for a reader that
/// fills and holds. Reads through `&self` methods first put unconsumed
/// bytes of this buffer back into the pipe. Filling yields as
/// [`AsyncRead`] reads do.
impl AsyncBufRead for Reader {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        let local = this.local.get_mut().unwrap_or_else(PoisonError::into_inner);
        if local.pos == local.end {
            if this.shared.read_budget.yield_now(cx) {
                return Poll::Pending;
            }
            let locked = match this.shared.lock_to_read(Some(cx), 1) {
                Ok(Some(inner)) => Poll::Ready(Ok(inner)),
                Ok(None) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            };
            match this.shared.read_budget.count(locked) {
                Poll::Ready(Ok(inner)) => local.take_front(inner),
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(StreamError::Closed(None))) => return Poll::Ready(Ok(&[])),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(end_or_error(e))),
            }
        }
        Poll::Ready(Ok(&local.buf.as_slice()[local.pos..local.end]))
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        let this = self.get_mut();
        let local = this.local.get_mut().unwrap_or_else(PoisonError::into_inner);
        let n = amt.min(local.end - local.pos);
        local.consumed(n, &this.shared);
    }
}
