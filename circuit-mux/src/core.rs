//! The sans-IO heart of the mux: link bytes in, frames out, a table of
//! streams in between.
//!
//! [`Core::receive`] takes bytes read from the link and delivers them to
//! streams; [`Core::transmit`] gathers frames from streams that have bytes
//! to send. Neither touches the link or a clock; the async
//! [`Driver`](crate::Driver) does that.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{self, IoSlice};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use circuit_frame::{Decode, Decoded, Encode, Frame, MAX_PAYLOAD_LEN};
use circuit_stream::{Reader, StreamError, Writer};

use crate::counters::AtomicCounters;
use crate::ids::{IdSet, Role};
use crate::ready::{ReadyQueue, StreamWaker};
use crate::{AttachError, Config, MuxError, MuxStream};

/// The id PROTOCOL.md section 4 reserves for link control in credit mode.
/// It is never a user stream; in v0 mode receiving it means the two ends
/// disagree about the mode.
pub const RESERVED_STREAM_ID: u32 = u32::MAX;

/// Data frames at least this large are written straight from their
/// stream's pipe to the link when the gather buffer is empty.
const DIRECT_MIN: usize = 8 * 1024;

/// A vectored write to the link, for [`Core::transmit_direct`].
pub(crate) type DirectWrite<'a, 'b> = &'a mut dyn FnMut(&[IoSlice<'_>]) -> Poll<io::Result<usize>>;

/// What one turn of a stream put out.
enum Sent {
    Nothing,
    Gathered,
    Direct(usize),
    WouldBlock,
}

/// Frames of refusals waiting to be sent before input processing pauses.
const MAX_PENDING_CONTROL: usize = 1024;

/// The state of the peer-to-us direction of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recv {
    /// Deliver data to the sink.
    Open,
    /// The application dropped its reader: drop data silently.
    Discarding,
    /// The peer closed this direction.
    Closed,
}

#[derive(Debug)]
struct StreamState {
    recv: Recv,
    /// Where the peer's bytes go; `None` unless `recv == Open`.
    sink: Option<Writer>,
    /// Where our bytes come from; `None` once our direction is closed.
    source: Option<Reader>,
    /// The peer knows this id: it opened the stream or we sent data on it.
    peer_knows: bool,
    incoming: bool,
    waker: Arc<StreamWaker>,
}

/// An incoming stream, waiting for the application to accept it.
#[derive(Debug)]
pub(crate) struct Accepted {
    pub(crate) stream: MuxStream,
}

/// What [`Core::receive`] did with its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes of input used; the caller drops them and keeps the rest.
    pub consumed: usize,
    /// A stream or the link is at its receive limit (or refusals are
    /// waiting to be sent): read no more from the link until woken.
    pub blocked: bool,
}

/// The mux state machine.
#[derive(Debug)]
pub struct Core {
    role: Role,
    config: Config,
    next_local_id: Option<u32>,
    streams: HashMap<u32, StreamState>,
    /// Peer-parity ids whose stream is gone.
    peer_closed: IdSet,
    /// Peer-parity ids refused because of `max_incoming_streams`.
    refused: IdSet,
    incoming_open: usize,
    pub(crate) accept_queue: VecDeque<Accepted>,
    pub(crate) accept_waker: Option<Waker>,
    pub(crate) accepting: bool,
    /// Close frames not tied to a stream source (refusals).
    control: VecDeque<(u32, String)>,
    /// Bytes of the frame at the front of the input already delivered.
    delivered_in_frame: usize,
    /// Streams that may hold received bytes not yet read.
    dirty: HashSet<u32>,
    receive_buffered: usize,
    ready: Arc<ReadyQueue>,
    pub(crate) counters: Arc<AtomicCounters>,
    /// Set once the link ended: no new stream may open.
    pub(crate) ended: bool,
}

impl Core {
    /// A core for one end of a link, to drive by hand: feed it with
    /// [`receive`](Core::receive), drain it with [`transmit`](Core::transmit)
    /// and take incoming streams with [`accept`](Core::accept). (A [`Mux`](crate::Mux)
    /// builds its own core and runs it with its driver.)
    pub fn new(role: Role, config: Config) -> Self {
        Self::with_parts(
            role,
            config,
            Arc::new(ReadyQueue::default()),
            Arc::new(AtomicCounters::default()),
        )
    }

    pub(crate) fn with_parts(
        role: Role,
        config: Config,
        ready: Arc<ReadyQueue>,
        counters: Arc<AtomicCounters>,
    ) -> Self {
        Core {
            role,
            next_local_id: Some(role.first_id()),
            streams: HashMap::new(),
            peer_closed: IdSet::new(config.max_closed_id_ranges),
            refused: IdSet::new(config.max_closed_id_ranges),
            incoming_open: 0,
            accept_queue: VecDeque::new(),
            accept_waker: None,
            accepting: true,
            control: VecDeque::new(),
            delivered_in_frame: 0,
            dirty: HashSet::new(),
            receive_buffered: 0,
            ready,
            counters,
            ended: false,
            config,
        }
    }

    /// The next stream the peer opened, if any.
    pub fn accept(&mut self) -> Option<MuxStream> {
        self.accept_queue.pop_front().map(|a| a.stream)
    }

    /// The counters of this core now.
    pub fn counters(&self) -> crate::Counters {
        self.counters.snapshot()
    }

    /// This end's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Streams with at least one direction open.
    pub fn streams_open(&self) -> usize {
        self.streams.len()
    }

    /// Whether nothing is left to do: no stream open and no frame waiting.
    pub fn is_idle(&self) -> bool {
        self.streams.is_empty() && self.control.is_empty() && self.accept_queue.is_empty()
    }

    fn bad_id(&self, stream_id: u32, reason: &'static str) -> MuxError {
        AtomicCounters::add(&self.counters.errors, 1);
        tracing::warn!(stream = stream_id, reason, "protocol error");
        MuxError::BadStreamId {
            stream_id,
            peer: self.config.peer_name.clone(),
            reason,
        }
    }

    /// Opens a stream whose outgoing bytes come from `source` and whose
    /// incoming bytes go to `sink`. Nothing is sent until `source` has data.
    /// On failure the pipes come back in the error, untouched, so the
    /// caller can try another link.
    pub fn attach(&mut self, source: Reader, sink: Writer) -> Result<u32, AttachError> {
        let refuse = |error, source, sink| {
            Err(AttachError {
                error,
                source,
                sink,
            })
        };
        if self.ended {
            return refuse(MuxError::LinkClosed, source, sink);
        }
        let Some(id) = self.next_local_id else {
            return refuse(MuxError::IdsExhausted, source, sink);
        };
        self.next_local_id = id.checked_add(2).filter(|&n| n != RESERVED_STREAM_ID);
        let waker = StreamWaker::new(id, &self.ready);
        self.streams.insert(
            id,
            StreamState {
                recv: Recv::Open,
                sink: Some(sink),
                source: Some(source),
                peer_knows: false,
                incoming: false,
                waker: Arc::clone(&waker),
            },
        );
        self.count_opened();
        self.ready.push(&waker);
        Ok(id)
    }

    fn count_opened(&self) {
        AtomicCounters::add(&self.counters.streams_opened, 1);
        AtomicCounters::add(&self.counters.streams_open, 1);
    }

    /// Processes as many whole frames from the start of `input` as the
    /// receive limits allow. `cx` is woken when a blocked stream or the link
    /// has room again.
    pub fn receive(&mut self, input: &[u8], cx: &mut Context<'_>) -> Result<Progress, MuxError> {
        let mut consumed = 0;
        loop {
            if self.control.len() >= MAX_PENDING_CONTROL {
                return Ok(Progress {
                    consumed,
                    blocked: true,
                });
            }
            let rest = input.get(consumed..).unwrap_or(&[]);
            let (frame, len) = match Frame::decode(rest) {
                Ok(Decoded::Complete { message, consumed }) => (message, consumed),
                Ok(Decoded::Incomplete { .. }) => {
                    return Ok(Progress {
                        consumed,
                        blocked: false,
                    })
                }
                Err(source) => {
                    return Err(MuxError::Frame {
                        peer: self.config.peer_name.clone(),
                        source,
                    })
                }
            };
            if frame.stream_id() == RESERVED_STREAM_ID {
                AtomicCounters::add(&self.counters.errors, 1);
                return Err(MuxError::ModeMismatch {
                    peer: self.config.peer_name.clone(),
                });
            }
            let done = match frame {
                Frame::Data { stream_id, payload } => self.on_data(stream_id, payload, cx)?,
                Frame::Close { stream_id, epitaph } => {
                    // Counted first: the stream's reader may look at the
                    // counters as soon as it sees the close.
                    AtomicCounters::add(&self.counters.frames_in, 1);
                    self.on_close(stream_id, &String::from_utf8_lossy(epitaph))?;
                    consumed += len;
                    continue;
                }
            };
            if !done {
                return Ok(Progress {
                    consumed,
                    blocked: true,
                });
            }
            self.delivered_in_frame = 0;
            consumed += len;
            AtomicCounters::add(&self.counters.frames_in, 1);
        }
    }

    /// Handles a data frame; `false` when delivery must wait for room.
    fn on_data(&mut self, id: u32, payload: &[u8], cx: &mut Context<'_>) -> Result<bool, MuxError> {
        let recv = match self.streams.get(&id) {
            Some(st) => st.recv,
            None if self.role.opens(id) => {
                return Err(self.bad_id(id, self.own_id_reason(id)));
            }
            None if self.refused.contains(id) => return Ok(true),
            None if self.peer_closed.contains(id) => {
                return Err(self.bad_id(id, "data for a stream that is closed"));
            }
            None => {
                if !self.new_incoming(id) {
                    return Ok(true);
                }
                Recv::Open
            }
        };
        match recv {
            Recv::Open => self.deliver(id, payload, cx),
            Recv::Discarding => Ok(true),
            Recv::Closed => Err(self.bad_id(id, "data after the peer closed the stream")),
        }
    }

    fn own_id_reason(&self, id: u32) -> &'static str {
        match self.next_local_id {
            Some(next) if id >= next => "data or close for an id of our parity we never opened",
            None | Some(_) => "data or close for a stream of ours that is closed",
        }
    }

    /// Registers a stream the peer opened; `false` if it was refused.
    fn new_incoming(&mut self, id: u32) -> bool {
        if !self.accepting || self.incoming_open >= self.config.max_incoming_streams {
            self.refused.insert(id);
            AtomicCounters::add(&self.counters.streams_refused, 1);
            tracing::debug!(stream = id, "refused an incoming stream");
            let why = if self.accepting {
                "refused: too many incoming streams"
            } else {
                "refused: this end accepts no streams"
            };
            // Sent by the driver's next transmit, right after `receive`.
            self.control.push_back((id, why.to_owned()));
            return false;
        }
        let (sink_reader, sink) =
            circuit_stream::stream_with_capacity(self.config.stream_receive_limit);
        let (source, source_writer) =
            circuit_stream::stream_with_capacity(self.config.stream_send_buffer);
        let waker = StreamWaker::new(id, &self.ready);
        self.streams.insert(
            id,
            StreamState {
                recv: Recv::Open,
                sink: Some(sink),
                source: Some(source),
                peer_knows: true,
                incoming: true,
                waker: Arc::clone(&waker),
            },
        );
        self.incoming_open += 1;
        self.count_opened();
        // Called from `receive`: the driver transmits right after.
        self.ready.push_quiet(&waker);
        self.accept_queue.push_back(Accepted {
            stream: MuxStream::new(id, sink_reader, source_writer),
        });
        if let Some(w) = self.accept_waker.take() {
            w.wake();
        }
        true
    }

    /// Writes as much of `payload` as the stream and link limits allow.
    fn deliver(&mut self, id: u32, payload: &[u8], cx: &mut Context<'_>) -> Result<bool, MuxError> {
        if self.receive_buffered >= self.config.link_receive_limit && !self.link_has_room(cx) {
            return Ok(false);
        }
        let Some(st) = self.streams.get_mut(&id) else {
            return Ok(true);
        };
        let Some(sink) = &st.sink else {
            return Ok(true);
        };
        loop {
            let rest = payload.get(self.delivered_in_frame..).unwrap_or(&[]);
            if rest.is_empty() {
                return Ok(true);
            }
            match sink.poll_write_some(cx, rest) {
                Poll::Ready(Ok(n)) => {
                    self.delivered_in_frame += n;
                    self.receive_buffered += n;
                    self.dirty.insert(id);
                }
                Poll::Ready(Err(_)) => {
                    // The application dropped its reader: discard silently.
                    st.recv = Recv::Discarding;
                    st.sink = None;
                    return Ok(true);
                }
                Poll::Pending => return Ok(false),
            }
        }
    }

    /// Recounts the bytes waiting in streams; if the link is still at its
    /// limit, asks every stream holding bytes to wake `cx` as soon as its
    /// reader takes any. (Unbounded sinks, which never make a writer wait,
    /// are not counted.)
    fn link_has_room(&mut self, cx: &mut Context<'_>) -> bool {
        if self.count_receive_buffered() < self.config.link_receive_limit {
            return true;
        }
        for id in &self.dirty {
            let Some(sink) = self.streams.get(id).and_then(|st| st.sink.as_ref()) else {
                continue;
            };
            if let Some(capacity) = sink.capacity() {
                // Waiting for one byte more than is free now means waking
                // on the first byte the reader takes.
                let need = (capacity - sink.buffered().min(capacity) + 1).min(capacity);
                let _ = sink.poll_write_with(cx, need, |_| 0);
            }
        }
        // A reader may have drained between the count and the
        // registration: count once more so no wake-up is lost.
        self.count_receive_buffered() < self.config.link_receive_limit
    }

    fn count_receive_buffered(&mut self) -> usize {
        let streams = &self.streams;
        let mut total = 0;
        self.dirty.retain(|id| {
            let held = streams
                .get(id)
                .and_then(|st| st.sink.as_ref())
                .filter(|s| s.capacity().is_some())
                .map_or(0, |s| s.buffered());
            total += held;
            held > 0
        });
        self.receive_buffered = total;
        total
    }

    fn on_close(&mut self, id: u32, epitaph: &str) -> Result<(), MuxError> {
        match self.streams.get_mut(&id) {
            Some(st) => match st.recv {
                Recv::Open => {
                    let sink = st.sink.take();
                    st.recv = Recv::Closed;
                    // Count the stream closed before its reader can see it.
                    self.finish_if_done(id);
                    if let Some(sink) = sink {
                        sink.close(epitaph);
                    }
                    return Ok(());
                }
                Recv::Discarding => st.recv = Recv::Closed,
                Recv::Closed => return Err(self.bad_id(id, "close for a stream already closed")),
            },
            None if self.role.opens(id) => return Err(self.bad_id(id, self.own_id_reason(id))),
            None if self.refused.contains(id) => {}
            None if self.peer_closed.contains(id) => {
                return Err(self.bad_id(id, "close for a stream already closed"));
            }
            // A v0 peer would fail here; we take it as a stream opened and
            // closed without data: remember the id, surface nothing.
            None => {
                self.peer_closed.insert(id);
                return Ok(());
            }
        }
        self.finish_if_done(id);
        Ok(())
    }

    /// Removes a stream whose two directions are closed.
    fn finish_if_done(&mut self, id: u32) {
        let done = self
            .streams
            .get(&id)
            .is_some_and(|st| st.recv == Recv::Closed && st.source.is_none());
        if !done {
            return;
        }
        if let Some(st) = self.streams.remove(&id) {
            if st.incoming {
                self.incoming_open = self.incoming_open.saturating_sub(1);
                self.peer_closed.insert(id);
            }
            self.dirty.remove(&id);
            self.counters
                .streams_open
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            AtomicCounters::add(&self.counters.streams_closed, 1);
        }
    }

    /// Appends frames to `out` until it holds `limit` bytes or no stream
    /// has data: refusals first, then at most one frame per ready stream per
    /// turn, round-robin.
    pub fn transmit(&mut self, out: &mut Vec<u8>, limit: usize) {
        while out.len() < limit {
            let Some((id, epitaph)) = self.control.pop_front() else {
                break;
            };
            self.push_close(out, id, &epitaph);
        }
        while out.len() < limit {
            let Some(waker) = self.ready.pop() else {
                break;
            };
            // Without a direct writer nothing can fail.
            let _ = self.transmit_one(&waker, out, None);
        }
    }

    fn push_close(&self, out: &mut Vec<u8>, id: u32, epitaph: &str) {
        Frame::close(id, epitaph).encode_to_vec(out);
        AtomicCounters::add(&self.counters.frames_out, 1);
    }

    /// For the driver: sends the next ready stream's frame straight from
    /// its pipe to the link with `write` (a vectored write), sparing a copy
    /// into the gather buffer, when the frame is large. Small frames, close
    /// frames and whatever part of a frame `write` did not take go to
    /// `out`. Returns the bytes `write` took.
    pub(crate) fn transmit_direct(
        &mut self,
        out: &mut Vec<u8>,
        write: DirectWrite<'_, '_>,
    ) -> io::Result<usize> {
        if !self.control.is_empty() {
            return Ok(0);
        }
        let Some(waker) = self.ready.pop() else {
            return Ok(0);
        };
        match self.transmit_one(&waker, out, Some(write))? {
            Sent::Direct(n) => Ok(n),
            Sent::Gathered | Sent::Nothing | Sent::WouldBlock => Ok(0),
        }
    }

    fn transmit_one(
        &mut self,
        waker: &Arc<StreamWaker>,
        out: &mut Vec<u8>,
        mut direct: Option<DirectWrite<'_, '_>>,
    ) -> io::Result<Sent> {
        let id = waker.id;
        let Some(st) = self.streams.get_mut(&id) else {
            return Ok(Sent::Nothing);
        };
        let Some(source) = &st.source else {
            return Ok(Sent::Nothing);
        };
        let w = Waker::from(Arc::clone(waker));
        let mut cx = Context::from_waker(&w);
        let polled = source.poll_read_with(&mut cx, 1, |buf| {
            let n = buf.len().min(MAX_PAYLOAD_LEN);
            let payload = buf.get(..n).unwrap_or(&[]);
            // `n` is at most 65535 by the line above.
            let header = Frame::data_header(id, n as u16);
            match direct.as_mut().filter(|_| n >= DIRECT_MIN) {
                Some(write) => {
                    match write(&[IoSlice::new(&header), IoSlice::new(payload)]) {
                        Poll::Ready(Ok(written)) => {
                            // The rest of this frame must go before any other.
                            match written.checked_sub(header.len()) {
                                Some(sent) => {
                                    out.extend_from_slice(payload.get(sent..).unwrap_or(&[]))
                                }
                                None => {
                                    out.extend_from_slice(header.get(written..).unwrap_or(&[]));
                                    out.extend_from_slice(payload);
                                }
                            }
                            (Ok(Sent::Direct(written)), n)
                        }
                        Poll::Ready(Err(e)) => (Err(e), 0),
                        Poll::Pending => (Ok(Sent::WouldBlock), 0),
                    }
                }
                None => {
                    out.extend_from_slice(&header);
                    out.extend_from_slice(payload);
                    (Ok(Sent::Gathered), n)
                }
            }
        });
        match polled {
            Poll::Pending => Ok(Sent::Nothing),
            Poll::Ready(Ok(result)) => {
                // More may be waiting (or this frame was not taken): come
                // back after the others.
                self.ready.push_quiet(waker);
                let sent = result?;
                if !matches!(sent, Sent::WouldBlock) {
                    st.peer_knows = true;
                    AtomicCounters::add(&self.counters.frames_out, 1);
                }
                Ok(sent)
            }
            Poll::Ready(Err(err)) => {
                st.source = None;
                let epitaph = match err {
                    StreamError::Closed(reason) => reason.unwrap_or_default(),
                    other => other.to_string(),
                };
                if st.peer_knows {
                    self.push_close(out, id, &epitaph);
                } else {
                    // Never on the wire: the peer cannot know this stream,
                    // so nothing will ever arrive on it either.
                    st.recv = Recv::Closed;
                    let sink = st.sink.take();
                    self.finish_if_done(id);
                    if let Some(sink) = sink {
                        sink.close("stream closed before sending any data: the peer never saw it");
                    }
                    return Ok(Sent::Gathered);
                }
                self.finish_if_done(id);
                Ok(Sent::Gathered)
            }
        }
    }

    /// Whether stream `id` has a direction still open.
    pub fn is_open(&self, id: u32) -> bool {
        self.streams.contains_key(&id)
    }

    /// Closes every stream now, keeping the link: bytes not yet sent are
    /// dropped, each stream the peer knows gets a close frame carrying
    /// `epitaph`, and each local reader ends with `epitaph`. The peer's
    /// directions close when the peer closes them (or the link ends).
    pub fn close_streams(&mut self, epitaph: &str) {
        for st in self.streams.values_mut() {
            if let Some(source) = &st.source {
                source.close(epitaph);
                // The driver sends the close frame on its next turn.
                self.ready.push_quiet(&st.waker);
            }
            if let Some(sink) = &st.sink {
                sink.close(epitaph);
            }
        }
    }

    /// Ends every stream with `epitaph` (the link is gone).
    pub fn close_all(&mut self, epitaph: &str) {
        self.ended = true;
        self.ready.clear();
        for (_, st) in self.streams.drain() {
            if let Some(sink) = st.sink {
                sink.close(epitaph);
            }
            if let Some(source) = st.source {
                source.close(epitaph);
            }
            self.counters
                .streams_open
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            AtomicCounters::add(&self.counters.streams_closed, 1);
        }
        self.incoming_open = 0;
        self.dirty.clear();
        self.control.clear();
        if let Some(w) = self.accept_waker.take() {
            w.wake();
        }
    }

    /// Bytes received and not yet read, as last counted: an upper bound,
    /// recounted exactly whenever it reaches the link's receive limit.
    pub fn receive_buffered(&self) -> usize {
        self.receive_buffered
    }

    /// Ranges held to remember closed peer ids (bounded by config).
    pub fn closed_id_ranges(&self) -> usize {
        self.peer_closed.ranges() + self.refused.ranges()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipes() -> (Reader, Writer) {
        let (source, _w) = circuit_stream::stream();
        let (_r, sink) = circuit_stream::stream();
        (source, sink)
    }

    #[test]
    fn opening_past_the_last_id_is_an_error_not_a_wrap() {
        for (role, last) in [(Role::Client, u32::MAX - 1), (Role::Server, u32::MAX - 2)] {
            let mut core = Core::new(role, Config::default());
            core.next_local_id = Some(last - 2);
            let (s, k) = pipes();
            assert_eq!(core.attach(s, k).unwrap(), last - 2);
            let (s, k) = pipes();
            assert_eq!(core.attach(s, k).unwrap(), last);
            let (s, k) = pipes();
            let err = core.attach(s, k).unwrap_err();
            assert!(matches!(err.error, MuxError::IdsExhausted));
        }
    }

    #[test]
    fn the_reserved_link_control_id_ends_a_v0_link() {
        let mut core = Core::new(Role::Client, Config::default());
        let mut input = Vec::new();
        Frame::data(RESERVED_STREAM_ID, &[1, 0, 0, 0, 1, 0])
            .unwrap()
            .encode_to_vec(&mut input);
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        assert!(matches!(
            core.receive(&input, &mut cx),
            Err(MuxError::ModeMismatch { .. })
        ));
    }
}
