//! The writing end of a pipe.

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use circuit_frame::Encode;
use futures_io::AsyncWrite;

use crate::queue::{Filled, Queue, BLOCK};
use crate::shared::{epitaph, Inner, Shared, COPY_OUTSIDE_MIN};
use crate::{StreamError, TryWriteError};

/// Handed-over pieces shorter than this are copied: a block of their own
/// would cost more than the copy.
const HAND_OVER_MIN: usize = 4096;

/// A copy's last piece of at most this many bytes goes into the block
/// before it, so that a write of 64 KiB (one byte more than a block, and
/// the commonest large write) is one block, not a full one and a one-byte
/// one, which would cost its reader a read of its own.
const FOLD_MAX: usize = 1 << 10;

/// The bytes of the next block of a copy made outside the lock, with
/// `left` bytes left to copy: a full block, or all of them if that leaves
/// at most [`FOLD_MAX`] after a full block.
fn piece(left: usize) -> usize {
    match left <= BLOCK + FOLD_MAX {
        true => left,
        false => BLOCK,
    }
}

/// The writing end of a pipe made by [`stream`](crate::stream) and friends.
///
/// Writes reserve space and let a callback fill it in place, so data is
/// copied once on its way through the pipe. On a bounded pipe a write waits
/// until the reader has made room. Dropping the writer closes the pipe
/// without an epitaph; the reader still gets what is buffered.
///
/// A writer is meant for one task at a time: only the latest task to wait
/// on it is woken.
pub struct Writer {
    shared: Arc<Shared>,
}

impl Writer {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Writer { shared }
    }

    /// The pipe this writer writes into.
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Waits until `len` bytes of space are free, then calls `f` with
    /// exactly `len` bytes reserved at the end of the pipe (their contents
    /// are unspecified). `f` returns how many of them it filled, from the
    /// start; those become readable. Returns that count.
    ///
    /// Fails with [`StreamError::Closed`] once either end closed, and with
    /// [`StreamError::TooLarge`] if `len` is above the capacity.
    ///
    /// `f` runs under the pipe's lock: keep it short. Like the futures-io
    /// writes, this [yields](crate#cooperative-yielding) once after 128
    /// writes in a row that did not wait.
    ///
    /// # Panics
    ///
    /// If `f` claims to have filled more than `len` bytes.
    pub async fn write(
        &self,
        len: usize,
        f: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<usize, StreamError> {
        let mut f = Some(f);
        let budget = &self.shared.write_budget;
        poll_fn(|cx| budget.poll(cx, |cx| self.poll(Some(cx), len, &mut f))).await
    }

    /// The poll form of [`write`](Writer::write): `f` runs only when ready
    /// and is dropped unused on `Pending`.
    pub fn poll_write_with(
        &self,
        cx: &mut Context<'_>,
        len: usize,
        f: impl FnOnce(&mut [u8]) -> usize,
    ) -> Poll<Result<usize, StreamError>> {
        self.poll(Some(cx), len, &mut Some(f))
    }

    /// [`write`](Writer::write) without waiting: [`TryWriteError::Full`] if
    /// `len` bytes are not free right now.
    pub fn try_write_with(
        &self,
        len: usize,
        f: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<usize, TryWriteError> {
        match self.poll(None, len, &mut Some(f)) {
            Poll::Ready(Ok(n)) => Ok(n),
            Poll::Ready(Err(e)) => Err(try_error(e)),
            Poll::Pending => Err(TryWriteError::Full),
        }
    }

    /// Writes all of `bytes` now, or nothing: [`TryWriteError::Full`] if
    /// there is not room for all of them.
    pub fn try_write(&self, bytes: &[u8]) -> Result<(), TryWriteError> {
        self.try_write_with(bytes.len(), |out| {
            out.copy_from_slice(bytes);
            bytes.len()
        })
        .map(drop)
    }

    /// Writes as much of `bytes` as fits and returns how many; `Pending`
    /// until a worthwhile piece fits: all of a write of up to 16 KiB, else
    /// at least 16 KiB, but never more than half of what the pipe may hold
    /// (its capacity, or its write limit if lower). A writer ahead of its
    /// reader so puts in large pieces, not the sliver the reader last freed
    /// (TCP's silly window: a mux would send each sliver as a frame of its
    /// own). An empty `bytes` writes nothing and returns 0 at once (or the
    /// error of a closed pipe). A piece of 16 KiB or more is copied with the
    /// pipe's lock released, so that the reader can copy out meanwhile; it
    /// goes in whole.
    pub fn poll_write_some(
        &self,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<Result<usize, StreamError>> {
        self.poll_copy(cx, bytes.len(), |at, out| {
            out.copy_from_slice(&bytes[at..at + out.len()]);
        })
    }

    /// Copies in up to `len` bytes once a worthwhile piece fits, as
    /// [`poll_some`](Writer::poll_some) puts them: `copy(at, out)` fills
    /// `out` with the bytes from offset `at` of the write. A piece of at
    /// least [`COPY_OUTSIDE_MIN`] is copied with the lock released, into
    /// blocks of its own whose room it holds, then put in whole under the
    /// lock, so that the reader can copy out while the writer copies in.
    /// Either way the piece goes in at once or not at all.
    fn poll_copy(
        &self,
        cx: &mut Context<'_>,
        len: usize,
        copy: impl Fn(usize, &mut [u8]),
    ) -> Poll<Result<usize, StreamError>> {
        let (mut inner, n) = std::task::ready!(self.lock_some(cx, len))?;
        if n < COPY_OUTSIDE_MIN {
            inner.queue.extend_with(n, copy);
            Shared::done_writing(inner);
            return Poll::Ready(Ok(n));
        }
        inner.reserved += n;
        drop(inner);
        let fill = |at: usize| {
            let mut block = Filled::new(piece(n - at));
            copy(at, block.bytes_mut());
            block
        };
        let first = fill(0);
        // More than one block only for a write above 64 KiB.
        let mut more = Vec::new();
        let mut at = first.len();
        while at < n {
            let block = fill(at);
            at += block.len();
            more.push(block);
        }
        let mut inner = self.shared.lock();
        inner.reserved -= n;
        if let Some(end) = inner.end() {
            // Closed while the bytes were copied: they go nowhere.
            drop(inner);
            first.give_back();
            more.into_iter().for_each(Filled::give_back);
            return Poll::Ready(Err(end));
        }
        inner.queue.push_filled(first);
        for block in more {
            inner.queue.push_filled(block);
        }
        Shared::done_writing(inner);
        Poll::Ready(Ok(n))
    }

    /// Puts in up to `len` bytes once a worthwhile piece of them fits (see
    /// [`poll_write_some`](Writer::poll_write_some)): `put` gets the queue
    /// and how many fit, and puts that many in. Returns how many. With
    /// `len` 0, returns 0 at once (or the error of a closed pipe).
    fn poll_some(
        &self,
        cx: &mut Context<'_>,
        len: usize,
        put: impl FnOnce(&mut Queue, usize),
    ) -> Poll<Result<usize, StreamError>> {
        let (mut inner, n) = std::task::ready!(self.lock_some(cx, len))?;
        put(&mut inner.queue, n);
        Shared::done_writing(inner);
        Poll::Ready(Ok(n))
    }

    /// The locked state once a worthwhile piece of a write of up to `len`
    /// bytes fits (see [`poll_write_some`](Writer::poll_write_some)), and
    /// how many of them fit. With `len` 0, at once (or the error of a
    /// closed pipe).
    fn lock_some(
        &self,
        cx: &mut Context<'_>,
        len: usize,
    ) -> Poll<Result<(MutexGuard<'_, Inner>, usize), StreamError>> {
        let cx = (len > 0).then_some(cx);
        match self.shared.lock_to_write_some(cx.as_deref(), len) {
            Err(e) => Poll::Ready(Err(e)),
            Ok(None) => Poll::Pending,
            Ok(Some(inner)) => {
                let n = inner.free().min(len);
                Poll::Ready(Ok((inner, n)))
            }
        }
    }

    /// Writes all of `bytes`, waiting for room as often as needed. Bytes
    /// larger than the capacity go through in several pieces, so another
    /// writer's data could not interleave but a close can cut them short.
    /// Each piece counts for [yielding](crate#cooperative-yielding).
    pub async fn write_all(&self, mut bytes: &[u8]) -> Result<(), StreamError> {
        let budget = &self.shared.write_budget;
        while !bytes.is_empty() {
            let n = poll_fn(|cx| budget.poll(cx, |cx| self.poll_write_some(cx, bytes))).await?;
            bytes = &bytes[n..];
        }
        Ok(())
    }

    /// Hands over as much of `bytes` as fits (once a worthwhile piece
    /// fits, as for [`poll_write_some`](Writer::poll_write_some)) without
    /// copying it: the pipe keeps those bytes as they are (in pieces of at
    /// most 65,535 bytes), and the reader, or a mux sending them, reads
    /// them there. Returns how many bytes went, which are cut off the front
    /// of `bytes`. A piece shorter than
    /// 4 KiB is copied instead, as [`poll_write_some`](Writer::poll_write_some)
    /// does. An empty `bytes` writes nothing and returns 0 at once (or the
    /// error of a closed pipe).
    ///
    /// For bytes that are already in memory and stay there (a file's
    /// contents, a reply built once and sent to many), like quinn's
    /// `SendStream::write_chunk`.
    pub fn poll_write_bytes(
        &self,
        cx: &mut Context<'_>,
        bytes: &mut Bytes,
    ) -> Poll<Result<usize, StreamError>> {
        self.poll_some(cx, bytes.len(), |queue, n| {
            if n < HAND_OVER_MIN {
                queue.extend(&bytes[..n]);
                bytes::Buf::advance(bytes, n);
            } else {
                queue.push_bytes(bytes.split_to(n));
            }
        })
    }

    /// Hands over all of `bytes` without copying them, waiting for room as
    /// often as needed: [`write_all`](Writer::write_all) by
    /// [`poll_write_bytes`](Writer::poll_write_bytes).
    pub async fn write_bytes(&self, mut bytes: Bytes) -> Result<(), StreamError> {
        let budget = &self.shared.write_budget;
        while !bytes.is_empty() {
            poll_fn(|cx| budget.poll(cx, |cx| self.poll_write_bytes(cx, &mut bytes))).await?;
        }
        Ok(())
    }

    /// Encodes `message` straight into the pipe, whole.
    pub async fn write_message(&self, message: &impl Encode) -> Result<(), StreamError> {
        let len = message.encoded_len();
        self.write(len, |out| {
            message.encode_exact(out);
            len
        })
        .await
        .map(drop)
    }

    /// Ends the stream with an epitaph (an empty one counts as none). The
    /// reader reads what is buffered, then fails with
    /// [`StreamError::Closed`] carrying it. If the pipe is closed already,
    /// the first epitaph stays.
    pub fn close(&self, epitaph_: impl Into<String>) {
        self.shared.close(epitaph(epitaph_.into()), false);
    }

    /// Ends the stream without an epitaph; see [`close`](Writer::close).
    pub fn close_without_reason(&self) {
        self.shared.close(None, false);
    }

    /// Ends the stream cleanly, as [`close_without_reason`] does, but with
    /// an epitaph all the same (an empty one counts as none): the reader
    /// reads what is buffered, then the end of the stream
    /// ([`StreamError::Closed`]`(None)`, end of file through futures-io),
    /// while [`Reader::closed_reason`] at the reading end and
    /// [`closed_reason`] here give `epitaph`. If the pipe is closed already,
    /// the first close stays.
    ///
    /// For a close that ended well and carries a text to pass on: a mux
    /// closes this way a stream whose peer closed it with the epitaph a v0
    /// router gives a clean close
    /// ([`is_v0_clean_close`](circuit_frame::is_v0_clean_close)), so that
    /// the application reads end of file and a router forwards the text
    /// unchanged.
    ///
    /// [`close_without_reason`]: Writer::close_without_reason
    /// [`closed_reason`]: Writer::closed_reason
    /// [`Reader::closed_reason`]: crate::Reader::closed_reason
    pub fn close_clean_with(&self, epitaph_: impl Into<String>) {
        self.shared.close_clean(epitaph(epitaph_.into()));
    }

    /// Whether the pipe is closed, by either end: once the reader closed or
    /// dropped it, every write fails.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().closed.is_some()
    }

    /// The epitaph of a closed pipe, if it was given one (also after
    /// [`close_clean_with`](Writer::close_clean_with)).
    pub fn closed_reason(&self) -> Option<String> {
        self.shared.lock().closed.clone().flatten()
    }

    /// Waits until `need` bytes of space are free, reserving nothing (for
    /// a writer that only wants to know when the reader has taken bytes,
    /// such as a mux granting flow-control credit). `Ready(Ok(()))` at once
    /// if they are free now; fails like [`write`](Writer::write).
    pub fn poll_room(&self, cx: &mut Context<'_>, need: usize) -> Poll<Result<(), StreamError>> {
        match self.shared.lock_to_write(Some(cx), need) {
            Err(e) => Poll::Ready(Err(e)),
            Ok(None) => Poll::Pending,
            Ok(Some(_)) => Poll::Ready(Ok(())),
        }
    }

    /// Raises the bound of a bounded pipe to `capacity` if it is below it
    /// (it never lowers a bound, and an unbounded pipe stays unbounded),
    /// and wakes a writer waiting for the room this makes.
    pub fn grow_capacity(&self, capacity: usize) {
        self.shared.grow_capacity(capacity);
    }

    /// Removes the pipe's write limit for good
    /// ([`Reader::set_write_limit`](crate::Reader::set_write_limit)): the
    /// capacity alone bounds the pipe from now on, and later limits are
    /// ignored. A mux calls it on the pipe it writes a stream's incoming
    /// bytes into: that pipe's room is the flow-control window the mux
    /// grants, which no other owner may narrow (a router splices the send
    /// pipe of a stream of one link in as the receive pipe of another).
    pub fn lift_write_limit(&self) {
        self.shared.lift_write_limit();
    }

    /// Bytes written and not read yet, counting those the reader took out
    /// in [`Chunk`](crate::Chunk)s it still holds (they take room).
    pub fn buffered(&self) -> usize {
        let inner = self.shared.lock();
        inner.taken()
    }

    /// The bound on buffered bytes, `None` for an unbounded pipe.
    pub fn capacity(&self) -> Option<usize> {
        self.shared.lock().capacity
    }

    /// Whether the reader has waited for bytes (found fewer than it asked
    /// for, and parked) since the last call; clears the mark. A mux asks
    /// this before growing a stream's flow-control window: a reader that
    /// never waits is slower than the bytes come, and a larger window
    /// would only hold more of them.
    pub fn take_reader_waited(&self) -> bool {
        std::mem::take(&mut self.shared.lock().reader_waited)
    }

    fn poll<F: FnOnce(&mut [u8]) -> usize>(
        &self,
        cx: Option<&Context<'_>>,
        len: usize,
        f: &mut Option<F>,
    ) -> Poll<Result<usize, StreamError>> {
        match self.shared.lock_to_write(cx, len) {
            Err(e) => Poll::Ready(Err(e)),
            Ok(None) => Poll::Pending,
            Ok(Some(mut inner)) => match f.take() {
                Some(f) => {
                    let filled = inner.queue.write_with(len, f);
                    Shared::done_writing(inner);
                    Poll::Ready(Ok(filled))
                }
                // Only a future polled after completion gets here.
                None => Poll::Pending,
            },
        }
    }
}

/// Maps the errors of a write; only `Closed` and `TooLarge` reach a writer.
fn try_error(e: StreamError) -> TryWriteError {
    match e {
        StreamError::TooLarge {
            requested,
            capacity,
        } => TryWriteError::TooLarge {
            requested,
            capacity,
        },
        StreamError::Closed(epitaph) => TryWriteError::Closed(epitaph),
        // A write never decodes a message.
        StreamError::Protocol(_) => TryWriteError::Closed(None),
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.shared.close(None, false);
    }
}

impl fmt::Debug for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer")
            .field("buffered", &self.buffered())
            .field("capacity", &self.capacity())
            .field("closed", &self.shared.lock().closed)
            .finish()
    }
}

/// Writes go into the pipe as far as there is room, once a worthwhile
/// piece fits (see [`Writer::poll_write_some`]). `poll_flush` has
/// nothing to do; `poll_close` ends the stream without an epitaph. Writing
/// to a closed pipe is a `BrokenPipe` error carrying [`StreamError::Closed`].
///
/// After 128 writes in a row that did not wait, the next one yields: it
/// returns `Pending` having woken the task, so that the executor can run
/// the reader meanwhile (as tokio's budget makes its own pipes do).
impl AsyncWrite for Writer {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.shared.write_budget.yield_now(cx) {
            return Poll::Pending;
        }
        let poll = this.poll_write_some(cx, buf).map_err(io::Error::from);
        this.shared.write_budget.count(poll)
    }

    /// Writes as much of all of `bufs` as fits, in one piece (a mux writes
    /// a frame header and its payload this way); 16 KiB or more are
    /// copied with the lock released, as [`Writer::poll_write_some`]'s are.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.shared.write_budget.yield_now(cx) {
            return Poll::Pending;
        }
        let poll = this.write_vectored(cx, bufs);
        this.shared.write_budget.count(poll)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.close_without_reason();
        Poll::Ready(Ok(()))
    }
}

impl Writer {
    /// [`AsyncWrite::poll_write_vectored`] but for the yielding.
    fn write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let total = bufs
            .iter()
            .map(|b| b.len())
            .fold(0usize, usize::saturating_add);
        self.poll_copy(cx, total, |mut at, mut out| {
            for buf in bufs {
                if at >= buf.len() {
                    at -= buf.len();
                    continue;
                }
                let take = (buf.len() - at).min(out.len());
                out[..take].copy_from_slice(&buf[at..at + take]);
                out = &mut out[take..];
                at = 0;
                if out.is_empty() {
                    break;
                }
            }
        })
        .map_err(io::Error::from)
    }
}
