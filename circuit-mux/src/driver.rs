//! The async driver: moves bytes between the link and the core.

use std::any::Any;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use circuit_frame::CLOSE_HEADER_LEN;
use futures::io::{AsyncRead, AsyncWrite};

use crate::core::Direct;
use crate::counters::AtomicCounters;
use crate::handle::Shared;
use crate::send::{Out, SendQueue};
use crate::MuxError;

/// Frames at most this long: the read buffer always has room for one.
const MAX_FRAME_LEN: usize = CLOSE_HEADER_LEN + u16::MAX as usize;
/// Payload bytes worth a read of their own straight into their stream.
const DIRECT_MIN: usize = 8 << 10;
/// Rounds of work before the driver yields to its executor.
const BUDGET: usize = 32;
/// The shortest payload handed to a link that is a pipe rather than
/// copied in. A handed payload keeps the block it was written into (up to
/// 64 KiB for a copied write) until the peer reads it, so a pipe link of
/// capacity C holds at most C / 16 KiB such blocks: four times C at most.
const HAND_MIN: usize = 16 << 10;
/// At most this many slices in one vectored write.
const MAX_SLICES: usize = 32;
/// A vectored write that took only its first slice, this short or
/// shorter, of several: the link may write one buffer per write.
const SMALL_SLICE: usize = 512;
/// Bytes gathered (copied into one buffer per write) after the first
/// such write; doubled each time a vectored write takes one buffer again,
/// up to [`GATHER_MAX`], and back to this once one takes more.
const GATHER_FIRST: usize = 1 << 20;
/// The most bytes gathered before a vectored write is tried again.
const GATHER_MAX: usize = 64 << 20;
/// A vectored write tried again after gathering starts with a copy of its
/// small first buffers and this much of the next: a link that writes one
/// buffer per write takes that, not a frame header alone.
const PROBE_COPY: usize = 4 << 10;

/// The future that runs a link: reads frames and delivers them to streams,
/// sends what streams write. Poll it or spawn it; nothing else runs the link.
///
/// It completes with `Ok(())` when the link ends cleanly (the peer closed it
/// at a frame boundary; every [`Mux`](crate::Mux) and
/// [`Incoming`](crate::Incoming) handle was dropped and every stream ended;
/// or [`Mux::close`](crate::Mux::close) was called and every close frame
/// was flushed: in the last two cases the driver closes the link itself
/// with `poll_close`, a socket's write half, then reads and drops what the
/// peer still sends until the peer closes its end, so that the socket is
/// never let go with bytes unread, which would send a TCP reset that can
/// destroy the close frames before the peer reads them; with a keep-alive
/// configured the whole close is bounded by its timeout), and with a
/// [`MuxError`] when the link fails or the peer breaks the protocol. Either
/// way every stream still open is closed with an epitaph that says why.
/// Dropping the driver closes every stream too.
#[must_use = "the link makes no progress unless the driver is polled"]
pub struct Driver<IO> {
    io: IO,
    shared: Arc<Shared>,
    rbuf: Vec<u8>,
    rstart: usize,
    rend: usize,
    /// Frames the core picked, not yet written.
    queue: SendQueue,
    /// For a gathered write: a copy of the queue's first unwritten bytes
    /// from `wpos` on.
    wbuf: Vec<u8>,
    wpos: usize,
    write_limit: usize,
    need_flush: bool,
    /// Bytes still to gather rather than write vectored: a vectored write
    /// took only a small first buffer (futures-io's default vectored
    /// write, tokio-util's compat has it, writes one buffer per write).
    gather_left: usize,
    /// What `gather_left` is set to the next time that happens.
    gather_next: usize,
    /// Gathering ended: the next vectored write is a probe.
    probing: bool,
    done: bool,
    /// The time this poll began, for the core to take with its next lock.
    now: Option<std::time::Instant>,
    /// The link's io is being closed: nothing more is written, and what is
    /// read is dropped until the peer's end.
    closing_io: bool,
    /// The link's io is closed (its write half, for a socket); reading
    /// it to the peer's end goes on.
    io_closed: bool,
    /// The keep-alive's settings and its interval's running timer.
    keep_alive: Option<(crate::config::KeepAlive, Option<Sleep>)>,
    /// What bounds a close: `Config::close_timeout`, else the keep-alive's
    /// timeout; and its timer, once a close began
    /// ([`Mux::close`](crate::Mux::close), or every handle dropped).
    close_bound: Option<(crate::config::Timeout, Option<Sleep>)>,
    span: tracing::Span,
    /// For a link that is a pipe of this process: the pipe, to hand data
    /// frames' payloads to and take them from without a copy.
    pipe: Option<PipeOf<IO>>,
    /// The rest of a payload being handed over, its header written.
    handing: Option<circuit_stream::Bytes>,
    /// Bytes taken out of the link's pipe and not yet handled: they come
    /// before anything still in the pipe.
    pending: Option<circuit_stream::Chunk>,
}

type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

/// How a driver reaches a link that is a pipe of this process.
type PipeOf<IO> = fn(&IO) -> Option<&circuit_stream::Duplex>;

impl<IO> std::fmt::Debug for Driver<IO> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("buffered_in", &(self.rend - self.rstart))
            .field("buffered_out", &self.queue.queued())
            .field("done", &self.done)
            .finish()
    }
}

impl<IO> Driver<IO> {
    pub(crate) fn new(io: IO, shared: Arc<Shared>) -> Self {
        let (read_buffer, write_limit, keep_alive, close_bound, span) = {
            let core = shared.lock();
            let config = core.config();
            let from_keep_alive = config.keep_alive.as_ref().map(|k| k.timeout.clone());
            (
                config.read_buffer,
                config.write_buffer,
                config.keep_alive.clone(),
                config.close_timeout.clone().or(from_keep_alive),
                shared.span.clone(),
            )
        };
        Driver {
            io,
            shared,
            rbuf: vec![0; read_buffer + MAX_FRAME_LEN],
            rstart: 0,
            rend: 0,
            queue: SendQueue::default(),
            wbuf: Vec::new(),
            wpos: 0,
            write_limit,
            need_flush: false,
            gather_left: 0,
            gather_next: GATHER_FIRST,
            probing: false,
            done: false,
            now: None,
            closing_io: false,
            io_closed: false,
            keep_alive: keep_alive.map(|k| (k, None)),
            close_bound: close_bound.map(|c| (c, None)),
            span,
            pipe: None,
            handing: None,
            pending: None,
        }
    }

    /// Hands data frames' payloads over without a copy if the link is a
    /// [`Duplex`](circuit_stream::Duplex): a pipe of this process.
    pub(crate) fn hand_over_to_pipes(&mut self)
    where
        IO: 'static,
    {
        if (&self.io as &dyn Any).is::<circuit_stream::Duplex>() {
            self.pipe = Some(|io| (io as &dyn Any).downcast_ref::<circuit_stream::Duplex>());
        }
    }

    /// Polls the keep-alive timer; each time it fires, one tick.
    fn poll_keep_alive(&mut self, cx: &mut Context<'_>) -> Result<(), MuxError> {
        let Some((settings, sleep)) = &mut self.keep_alive else {
            return Ok(());
        };
        loop {
            let timer =
                sleep.get_or_insert_with(|| settings.timeout.sleeper.sleep(settings.interval));
            if timer.as_mut().poll(cx).is_pending() {
                return Ok(());
            }
            *sleep = None;
            self.shared
                .lock()
                .keep_alive_tick(std::time::Instant::now(), settings.timeout.after)?;
        }
    }

    fn peer(&self) -> String {
        self.shared.lock().config().peer_name.clone()
    }

    fn io_error(&self, source: io::Error) -> MuxError {
        AtomicCounters::add(&self.shared.counters.errors, 1);
        MuxError::Io {
            peer: self.peer(),
            source,
        }
    }

    /// Ends every stream and reports `result`.
    fn finish(&mut self, result: Result<(), MuxError>) -> Poll<Result<(), MuxError>> {
        self.done = true;
        let epitaph = match &result {
            Ok(()) => {
                tracing::debug!("link closed");
                format!("link to {} closed", self.peer())
            }
            Err(e) => {
                tracing::warn!(error = %e, "link failed");
                e.to_string()
            }
        };
        // Who saw the link end, for a reader routers away.
        let local = self.shared.lock().config().local_name.clone();
        let epitaph = match local {
            Some(local) => format!("{local}: {epitaph}"),
            None => epitaph,
        };
        self.shared.lock().close_all(&epitaph);
        self.shared.driver_ended(result.is_ok());
        Poll::Ready(result)
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Driver<IO> {
    /// Delivers buffered input and reads more; `Ok(true)` on progress.
    fn pump_input(&mut self, cx: &mut Context<'_>) -> Result<Option<bool>, MuxError> {
        let (progress, hint) = {
            let mut core = self.shared.lock();
            if let Some(now) = self.now.take() {
                // Once per poll, under a lock taken anyway.
                core.set_now(now);
            }
            let input = self.rbuf.get(self.rstart..self.rend).unwrap_or(&[]);
            let progress = core.receive(input, cx)?;
            self.shared
                .counters
                .receive_buffered
                .store(core.receive_buffered() as u64, Ordering::Relaxed);
            let rest = input.get(progress.consumed..).unwrap_or(&[]);
            let hint = match rest.is_empty() || progress.blocked {
                true => None,
                false => core.read_hint(rest, DIRECT_MIN),
            };
            (progress, hint)
        };
        self.rstart += progress.consumed;
        if progress.blocked {
            return Ok(Some(progress.consumed > 0));
        }
        if self.rstart == self.rend {
            self.rstart = 0;
            self.rend = 0;
        } else if self.rbuf.len() - self.rend < MAX_FRAME_LEN {
            self.rbuf.copy_within(self.rstart..self.rend, 0);
            self.rend -= self.rstart;
            self.rstart = 0;
        }
        let mut end = self.rbuf.len();
        if let (Some(want), false) = (hint, self.rstart == self.rend) {
            end = end.min(self.rend + want.max(1));
        }
        if let (true, Some(pipe_of)) = (self.rstart == self.rend, self.pipe) {
            return self.pump_taken(cx, pipe_of, progress.consumed > 0);
        }
        if self.pending.is_some() {
            // Bytes taken out of the link come first.
            let copied = self.copy_pending(end - self.rend);
            return Ok(Some(copied > 0 || progress.consumed > 0));
        }
        if self.rstart == self.rend {
            match self.read_direct(cx) {
                Direct::NotNow(hint) => {
                    if let Some(want) = hint {
                        end = end.min(self.rend + want);
                    }
                }
                Direct::Pending => return Ok(Some(progress.consumed > 0)),
                Direct::Read { read: 0, .. } => return Ok(None),
                Direct::Read {
                    read,
                    next,
                    next_len,
                } => {
                    self.rbuf[..next_len].copy_from_slice(&next[..next_len]);
                    self.rend = next_len;
                    AtomicCounters::add(&self.shared.counters.bytes_in, read as u64);
                    return Ok(Some(true));
                }
                Direct::Failed(e) if e.kind() == io::ErrorKind::Interrupted => {
                    return Ok(Some(true))
                }
                Direct::Failed(e) => return Err(self.io_error(e)),
            }
        }
        let free = &mut self.rbuf[self.rend..end];
        match Pin::new(&mut self.io).poll_read(cx, free) {
            Poll::Ready(Ok(0)) => Ok(None),
            Poll::Ready(Ok(n)) => {
                self.rend += n;
                AtomicCounters::add(&self.shared.counters.bytes_in, n as u64);
                Ok(Some(true))
            }
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => Ok(Some(true)),
            Poll::Ready(Err(e)) => Err(self.io_error(e)),
            Poll::Pending => Ok(Some(progress.consumed > 0)),
        }
    }

    /// With the read buffer empty, for a link that is a pipe: takes the
    /// link's next block out (no copy) unless bytes taken before are left,
    /// and hands the payload in it to its stream as it is if the stream can
    /// take at least [`HAND_MIN`] bytes of it now; anything else goes into
    /// the read buffer (after large frames, only up to the next header, so
    /// that the next payload can be handed over).
    fn pump_taken(
        &mut self,
        cx: &mut Context<'_>,
        pipe_of: PipeOf<IO>,
        progressed: bool,
    ) -> Result<Option<bool>, MuxError> {
        if self.pending.is_none() {
            let Some(reader) = pipe_of(&self.io).map(circuit_stream::Duplex::reader) else {
                return Ok(Some(progressed));
            };
            match reader.poll_take(cx) {
                Poll::Ready(Ok(chunk)) => {
                    AtomicCounters::add(&self.shared.counters.bytes_in, chunk.len() as u64);
                    self.pending = Some(chunk);
                }
                // The end of the link, at a clean close of its writer.
                Poll::Ready(Err(circuit_stream::StreamError::Closed(None))) => return Ok(None),
                Poll::Ready(Err(e)) => {
                    let e = io::Error::new(io::ErrorKind::ConnectionAborted, e);
                    return Err(self.io_error(e));
                }
                Poll::Pending => return Ok(Some(progressed)),
            }
        }
        let Some(chunk) = self.pending.as_mut() else {
            return Ok(Some(progressed));
        };
        let mut core = self.shared.lock();
        let limit = match core.handed_room(HAND_MIN) {
            Ok(room) if chunk.len() >= HAND_MIN => {
                let bytes = chunk.split_to(room.min(chunk.len())).into_bytes();
                let rest = core.receive_handed(bytes, cx);
                drop(core);
                if chunk.is_empty() {
                    self.pending = None;
                }
                if let Some(rest) = rest {
                    // Not taken after all: through the read buffer, which
                    // is empty and holds a frame.
                    self.rbuf[self.rend..self.rend + rest.len()].copy_from_slice(&rest);
                    self.rend += rest.len();
                }
                return Ok(Some(true));
            }
            Ok(_) => usize::MAX,
            Err(hint) => hint.unwrap_or(usize::MAX).max(1),
        };
        drop(core);
        let copied = self.copy_pending(limit);
        Ok(Some(copied > 0 || progressed))
    }

    /// Copies up to `limit` bytes taken out of the link into the read
    /// buffer; returns how many.
    fn copy_pending(&mut self, limit: usize) -> usize {
        let Some(chunk) = self.pending.as_mut() else {
            return 0;
        };
        let n = chunk.len().min(limit).min(self.rbuf.len() - self.rend);
        let part = chunk.split_to(n);
        self.rbuf[self.rend..self.rend + n].copy_from_slice(&part);
        self.rend += n;
        if chunk.is_empty() {
            self.pending = None;
        }
        n
    }

    /// Reads payload bytes of the frame in progress from the link straight
    /// into its stream, if the core allows.
    fn read_direct(&mut self, cx: &mut Context<'_>) -> Direct {
        let io = &mut self.io;
        self.shared
            .lock()
            .receive_direct(DIRECT_MIN, |space| Pin::new(&mut *io).poll_read(cx, space))
    }

    /// Has the core pick frames into the send queue, then writes from it
    /// holding no lock; `Ok(true)` on progress.
    fn pump_output(&mut self, cx: &mut Context<'_>) -> Result<bool, MuxError> {
        // Grants go ahead of the data queued, so they are picked even
        // when the queue is full.
        if self.queue.queued() < self.write_limit || self.shared.ready.grants_waiting() {
            // What was copied to be written keeps its place.
            self.queue.pin(self.wbuf.len() - self.wpos);
            self.shared
                .lock()
                .transmit_queue(&mut self.queue, self.write_limit);
        }
        if let Some(pipe_of) = self.pipe {
            if let Some(progress) = self.hand_over(cx, pipe_of) {
                return progress;
            }
        }
        if self.queue.is_empty() {
            if self.need_flush {
                match Pin::new(&mut self.io).poll_flush(cx) {
                    Poll::Ready(Ok(())) => self.need_flush = false,
                    Poll::Ready(Err(e)) => return Err(self.io_error(e)),
                    Poll::Pending => {}
                }
            }
            return Ok(false);
        }
        let polled = match self.gather_left > 0 || self.wpos < self.wbuf.len() {
            true => self.write_gathered(cx),
            false => self.write_vectored(cx),
        };
        match polled {
            Poll::Ready(Ok(0)) => Err(self.io_error(io::ErrorKind::WriteZero.into())),
            Poll::Ready(Ok(n)) => {
                self.queue.advance(n);
                self.need_flush = true;
                AtomicCounters::add(&self.shared.counters.bytes_out, n as u64);
                Ok(true)
            }
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => Ok(true),
            Poll::Ready(Err(e)) => Err(self.io_error(e)),
            Poll::Pending => Ok(false),
        }
    }

    /// Hands the first data frame to a link that is a pipe of this
    /// process: its header copied, its payload moved into the pipe (no
    /// copy), once the pipe has room for the whole frame. `None` if the
    /// front of the queue is not such a frame, or is one shorter than
    /// [`HAND_MIN`] or larger than the pipe may hold: the queue's first
    /// bytes go the usual way. Else
    /// `Ok(true)` on progress, `Ok(false)` if the pipe has no room yet.
    fn hand_over(
        &mut self,
        cx: &mut Context<'_>,
        pipe_of: PipeOf<IO>,
    ) -> Option<Result<bool, MuxError>> {
        let writer = pipe_of(&self.io)?.writer();
        let mut took = false;
        if self.handing.is_none() {
            if self.wpos < self.wbuf.len() || self.gather_left > 0 {
                return None;
            }
            let len = self.queue.front_frame_len()?;
            if len < HAND_MIN || writer.capacity().is_some_and(|capacity| capacity < len) {
                return None;
            }
            match writer.poll_room(cx, len) {
                Poll::Pending => return Some(Ok(false)),
                Poll::Ready(Err(e)) => return Some(Err(self.io_error(e.into()))),
                Poll::Ready(Ok(())) => {}
            }
            let (header, payload) = self.queue.take_front_frame()?;
            // This driver is the pipe's only writer, and there was room.
            if let Err(e) = writer.try_write(&header) {
                let e = io::Error::new(io::ErrorKind::BrokenPipe, e);
                return Some(Err(self.io_error(e)));
            }
            AtomicCounters::add(&self.shared.counters.bytes_out, header.len() as u64);
            self.need_flush = true;
            self.handing = Some(payload.into_bytes());
            took = true;
        }
        let rest = self.handing.as_mut()?;
        Some(match writer.poll_write_bytes(cx, rest) {
            Poll::Ready(Ok(n)) => {
                if rest.is_empty() {
                    self.handing = None;
                }
                AtomicCounters::add(&self.shared.counters.bytes_out, n as u64);
                Ok(true)
            }
            Poll::Ready(Err(e)) => Err(self.io_error(e.into())),
            Poll::Pending => Ok(took),
        })
    }

    /// Writes the queue's first bytes straight from where they are: frame
    /// payloads from their pipes' storage.
    fn write_vectored(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut slices = [io::IoSlice::new(&[]); MAX_SLICES];
        let mut n = self.queue.slices(&mut slices);
        if self.pipe.is_some() {
            // A link that is a pipe: the next frame large enough to be
            // handed over is not copied in with the bytes before it.
            if let Some(before) = self.queue.bytes_before_frame_of(HAND_MIN) {
                let mut taken = 0;
                n = slices[..n]
                    .iter()
                    .take_while(|s| {
                        taken += s.len();
                        taken <= before
                    })
                    .count();
            }
        }
        // A probe after gathering: small first buffers and the start of
        // the next one go copied, as one buffer.
        let mut staged = 0;
        if self.probing && n > 1 && slices[0].len() <= SMALL_SLICE {
            let mut probe = std::mem::take(&mut self.wbuf);
            probe.clear();
            self.wpos = 0;
            self.queue
                .copy_front(&mut probe, slices[0].len() + PROBE_COPY);
            staged = probe.len();
            self.wbuf = probe;
            slices[0] = io::IoSlice::new(&self.wbuf);
            n = 1 + self.queue.slices_after(staged, &mut slices[1..]);
        }
        let slices = &slices[..n];
        let io = Pin::new(&mut self.io);
        let polled = match slices {
            [one] => io.poll_write(cx, one),
            _ => io.poll_write_vectored(cx, slices),
        };
        if let (Poll::Ready(Ok(took)), [first, ..]) = (&polled, slices) {
            let one_buffer = n > 1 && *took == first.len();
            if one_buffer && (first.len() <= SMALL_SLICE || staged > 0) {
                // Perhaps a link that writes one buffer per write: each
                // frame would go as its header alone, then its payload.
                // Gather the next bytes, and try again after them.
                tracing::debug!(
                    bytes = self.gather_next,
                    "a vectored write took only its first buffer: gathering"
                );
                self.gather_left = self.gather_next;
                self.gather_next = (self.gather_next * 2).min(GATHER_MAX);
            } else if n > 1 && *took > first.len() {
                self.gather_next = GATHER_FIRST;
            }
            // A write of one buffer tells nothing: the probe is the next.
            self.probing &= n == 1;
        }
        if staged > 0 {
            self.wbuf.clear();
        }
        polled
    }

    /// Writes a copy of the queue's first bytes in one buffer.
    fn write_gathered(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.wpos == self.wbuf.len() {
            self.wbuf.clear();
            self.wpos = 0;
            self.queue.copy_front(&mut self.wbuf, self.write_limit);
        }
        let polled = Pin::new(&mut self.io).poll_write(cx, &self.wbuf[self.wpos..]);
        if let Poll::Ready(Ok(n)) = polled {
            self.wpos = (self.wpos + n).min(self.wbuf.len());
            self.gather_left = self.gather_left.saturating_sub(n);
            if self.gather_left == 0 && self.wpos == self.wbuf.len() {
                self.probing = true;
            }
        }
        polled
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Future for Driver<IO> {
    type Output = Result<(), MuxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // A stream's reader (the other link's driver, for a forwarded
        // stream) is woken once per poll, not once per frame.
        circuit_stream::batch_wakes(|| self.as_mut().poll_rounds(cx))
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Driver<IO> {
    fn poll_rounds(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), MuxError>> {
        let this = &mut *self;
        let span = this.span.clone();
        let _entered = span.enter();
        if this.done {
            return Poll::Ready(Err(MuxError::LinkClosed));
        }
        this.shared.ready.register_driver(cx.waker());
        if this.closing_io {
            // No PINGs: nothing read now is looked at.
            return this.poll_close_io(cx);
        }
        this.now = Some(std::time::Instant::now());
        if this.shared.closing.load(Ordering::Acquire) || this.shared.is_abandoned() {
            if let Poll::Ready(ended) = this.poll_close_deadline(cx) {
                return Poll::Ready(ended);
            }
        } else if let Err(e) = this.poll_keep_alive(cx) {
            return this.finish(Err(e));
        }
        for _ in 0..BUDGET {
            let input = match this.pump_input(cx) {
                Ok(Some(progress)) => progress,
                Ok(None) if this.rstart < this.rend || this.shared.lock().partial_frame() > 0 => {
                    let err = MuxError::Truncated {
                        peer: this.peer(),
                        buffered: this.rend - this.rstart + this.shared.lock().partial_frame(),
                    };
                    return this.finish(Err(err));
                }
                Ok(None) => return this.finish(Ok(())),
                Err(e) => return this.finish(Err(e)),
            };
            let output = match this.pump_output(cx) {
                Ok(progress) => progress,
                Err(e) => return this.finish(Err(e)),
            };
            let idle = this.queue.is_empty() && this.handing.is_none() && !this.need_flush;
            let close = idle && {
                let gathered = this.shared.closing.load(Ordering::Acquire)
                    && this.shared.lock().close_gathered();
                gathered || this.shared.is_abandoned()
            };
            if close {
                // Every frame that had to go is written and flushed.
                tracing::debug!("closing the link");
                this.closing_io = true;
                return this.poll_close_io(cx);
            }
            if !input && !output {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Driver<IO> {
    /// Closes the link's io (a socket's write half: the peer reads its
    /// end), then reads and drops what the peer still sends until it closes
    /// its end too, then ends. A socket let go with bytes unread sends a
    /// TCP reset, and the peer's kernel drops what it had not yet handed
    /// over: the close frames just written, their epitaphs with them.
    fn poll_close_io(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), MuxError>> {
        if let Poll::Ready(ended) = self.poll_close_deadline(cx) {
            return Poll::Ready(ended);
        }
        if !self.io_closed {
            match Pin::new(&mut self.io).poll_close(cx) {
                Poll::Ready(Ok(())) => self.io_closed = true,
                Poll::Ready(Err(e)) => {
                    let e = self.io_error(e);
                    return self.finish(Err(e));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        for _ in 0..BUDGET {
            match Pin::new(&mut self.io).poll_read(cx, &mut self.rbuf) {
                Poll::Ready(Ok(0)) => return self.finish(Ok(())),
                Poll::Ready(Ok(n)) => {
                    AtomicCounters::add(&self.shared.counters.bytes_in, n as u64);
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => {
                    // Every frame went out and the link is closed this
                    // way; what the peer did after is not this end's
                    // failure.
                    tracing::debug!(error = %e, "the link failed after it was closed");
                    return self.finish(Ok(()));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl<IO> Driver<IO> {
    /// With a bound on closes, times a close that began: the first call
    /// starts its timer (and stops the keep-alive's), and the driver ends
    /// when it fires (`Pending` until then; without a bound, always).
    fn poll_close_deadline(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), MuxError>> {
        let Some((bound, timer)) = &mut self.close_bound else {
            return Poll::Pending;
        };
        let timer = timer.get_or_insert_with(|| {
            if let Some((_, interval)) = &mut self.keep_alive {
                *interval = None;
            }
            bound.sleeper.sleep(bound.after)
        });
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => self.close_timed_out(),
            Poll::Pending => Poll::Pending,
        }
    }

    /// The close's time bound passed: if the link's io
    /// is closed, every frame went out and only the peer's end is missing,
    /// which is the peer's business (`Ok`); if not, the link did not take
    /// the last frames or its close in time (an error).
    #[cold]
    fn close_timed_out(&mut self) -> Poll<Result<(), MuxError>> {
        if self.io_closed {
            tracing::debug!("the peer did not close its end in time; letting the link go");
            return self.finish(Ok(()));
        }
        let e = io::Error::new(
            io::ErrorKind::TimedOut,
            "the link took neither its last frames nor its close within the close's time bound",
        );
        let e = self.io_error(e);
        self.finish(Err(e))
    }
}

impl<IO> Drop for Driver<IO> {
    fn drop(&mut self) {
        if !self.done {
            let mut core = self.shared.lock();
            let config = core.config();
            let epitaph = format!("link to {} dropped", config.peer_name);
            let epitaph = match &config.local_name {
                Some(local) => format!("{local}: {epitaph}"),
                None => epitaph,
            };
            core.close_all(&epitaph);
            drop(core);
            self.shared.driver_ended(false);
        }
    }
}
