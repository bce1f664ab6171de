//! The sans-IO heart of the mux: link bytes in, frames out, a table of
//! streams in between.
//!
//! [`Core::receive`] takes bytes read from the link and delivers them to
//! streams; [`Core::transmit`] gathers frames from streams that have bytes
//! to send. Neither touches the link or a clock; the async
//! [`Driver`](crate::Driver) does that.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::task::Waker;

use circuit_stream::{Reader, Writer};

use crate::counters::AtomicCounters;
use crate::ids::{IdSet, Role};
use crate::observe::Observed;
use crate::ready::{ReadyQueue, StreamWaker};
use crate::{AttachError, CloseCause, Config, MuxError, MuxStream, StreamObserver};

/// The id PROTOCOL.md section 4 reserves for link control in credit mode.
/// It is never a user stream; in v0 mode receiving it means the two ends
/// disagree about the mode.
pub const RESERVED_STREAM_ID: u32 = u32::MAX;

/// The smallest share of `Config::link_send_buffer` a stream's send pipe
/// gets (unless `stream_send_buffer` is smaller).
const MIN_SEND_SHARE: usize = 64 << 10;

/// Frames of refusals waiting to be sent before input processing pauses.
const MAX_PENDING_CONTROL: usize = 1024;

mod credit;
mod receive;
pub(crate) use receive::Direct;
mod transmit;

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
    /// Bytes taken out of `source` at a turn that could not send them all
    /// (one frame per turn, or credit): they go first at the next turn.
    held: Option<circuit_stream::Chunk>,
    /// The peer knows this id: it opened the stream or we sent data on it.
    peer_knows: bool,
    incoming: bool,
    waker: Arc<StreamWaker>,
    /// Set by [`Core::close_streams`]: the epitaph our close frame must
    /// carry even if the stream's writer had closed cleanly, since the
    /// bytes it left unsent were dropped.
    abort: Option<String>,
    /// The stream's observer, if it was given one, and how the mux closed
    /// its sink.
    observed: Observed,
    /// Its credit both ways, if it is under credit (PROTOCOL.md section 4).
    credit: Option<credit::StreamCredit>,
    /// The mux made `source` for the application's writes, so it sets its
    /// write limit to the stream's share of the link's send buffering
    /// (`Config::link_send_buffer`). A spliced source (a router's onward
    /// stream) is another link's receive pipe and keeps its own bound.
    shares_send_buffer: bool,
}

/// A data frame whose header has been received and whose payload has not
/// all arrived yet.
#[derive(Debug, Clone, Copy)]
struct InFrame {
    id: u32,
    len: usize,
    remaining: usize,
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
    /// Boxed: an entry in the table's buckets is then a pointer, so the
    /// buckets a large table keeps free cost 8 bytes each, not a whole
    /// state (10,000 idle streams: about 100 bytes less per stream).
    streams: HashMap<u32, Box<StreamState>>,
    /// The write limit of the send pipes the mux made: see
    /// [`Core::send_share_for`].
    send_share: usize,
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
    /// The data frame whose payload is arriving.
    in_frame: Option<InFrame>,
    /// The payload lengths of the latest two data frame headers.
    last_data_len: [usize; 2],
    /// Streams that may hold received bytes not yet read.
    dirty: HashSet<u32>,
    receive_buffered: usize,
    ready: Arc<ReadyQueue>,
    pub(crate) counters: Arc<AtomicCounters>,
    /// Set once the link ended: no new stream may open.
    pub(crate) ended: bool,
    /// Set by [`Core::close`]: no new stream may open, the peer's new
    /// streams are refused, and the link closes once every close frame
    /// went out.
    pub(crate) closing: bool,
    /// Credit negotiation and the link's side of credit.
    credit: credit::LinkCredit,
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
            send_share: config.stream_send_buffer,
            peer_closed: IdSet::new(config.max_closed_id_ranges),
            refused: IdSet::new(config.max_closed_id_ranges),
            incoming_open: 0,
            accept_queue: VecDeque::new(),
            accept_waker: None,
            accepting: true,
            control: VecDeque::new(),
            in_frame: None,
            last_data_len: [0; 2],
            dirty: HashSet::new(),
            receive_buffered: 0,
            ready,
            counters,
            ended: false,
            closing: false,
            credit: credit::LinkCredit::new(config.credit),
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

    /// Names the peer from now on, in errors and epitaphs (see
    /// [`Config::peer_name`]): for a peer whose name is learned on the
    /// link itself.
    pub fn set_peer_name(&mut self, name: impl Into<String>) {
        self.config.peer_name = name.into();
    }

    /// Names this end from now on, in the epitaphs of a link's end (see
    /// [`Config::local_name`]).
    pub fn set_local_name(&mut self, name: impl Into<String>) {
        self.config.local_name = Some(name.into());
    }

    /// Streams with at least one direction open.
    pub fn streams_open(&self) -> usize {
        self.streams.len()
    }

    /// Whether nothing is left to do: no stream open and no frame waiting.
    pub fn is_idle(&self) -> bool {
        self.streams.is_empty() && !self.control_pending() && self.accept_queue.is_empty()
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
        self.attach_with(source, sink, None, false)
    }

    /// [`attach`](Core::attach) for a `source` the mux made for the
    /// application's writes (see [`Config::link_send_buffer`]).
    pub(crate) fn attach_sending(
        &mut self,
        source: Reader,
        sink: Writer,
    ) -> Result<u32, AttachError> {
        self.attach_with(source, sink, None, true)
    }

    /// [`attach`](Core::attach), with `observer` told when the mux closes a
    /// direction of the stream (see [`StreamObserver`]). On failure the
    /// observer is dropped, never called.
    pub fn attach_observed(
        &mut self,
        source: Reader,
        sink: Writer,
        observer: StreamObserver,
    ) -> Result<u32, AttachError> {
        self.attach_with(source, sink, Some(observer), false)
    }

    fn attach_with(
        &mut self,
        source: Reader,
        sink: Writer,
        observer: Option<StreamObserver>,
        shares_send_buffer: bool,
    ) -> Result<u32, AttachError> {
        let refuse = |error, source, sink| {
            Err(AttachError {
                error,
                source,
                sink,
            })
        };
        if self.ended || self.closing {
            return refuse(MuxError::LinkClosed, source, sink);
        }
        let Some(id) = self.next_local_id else {
            return refuse(MuxError::IdsExhausted, source, sink);
        };
        self.next_local_id = id.checked_add(2).filter(|&n| n != RESERVED_STREAM_ID);
        // Its room is this link's to manage (a spliced sink may be the send
        // pipe of another link's stream, which that link would limit).
        sink.lift_write_limit();
        let waker = StreamWaker::new(id, &self.ready);
        self.streams.insert(
            id,
            Box::new(StreamState {
                recv: Recv::Open,
                sink: Some(sink),
                source: Some(source),
                held: None,
                peer_knows: false,
                incoming: false,
                waker: Arc::clone(&waker),
                abort: None,
                observed: Observed::new(observer),
                credit: None,
                shares_send_buffer,
            }),
        );
        self.count_opened();
        self.share_send_buffer(Some(id));
        self.ready.push(&waker);
        Ok(id)
    }

    /// Gives stream `id` (one the peer opened, say) an observer from now
    /// on, replacing any it had (see [`StreamObserver`]).
    ///
    /// Returns how the peer-to-us direction had already been closed by the
    /// mux, if it had: the observer is not told of that close (the
    /// epitaph is what the stream's reader reads). `None` means the
    /// observer will be told of it, unless the reader drops the stream
    /// first. For a stream no longer in the table (both directions closed,
    /// or the link ended) the observer is dropped and the answer is
    /// [`CloseCause::LinkEnded`] once the link has ended, otherwise
    /// [`CloseCause::Peer`] (a cut by [`close_streams`](Core::close_streams)
    /// is not remembered past the stream's end).
    pub fn observe(&mut self, id: u32, observer: StreamObserver) -> Option<CloseCause> {
        match self.streams.get_mut(&id) {
            Some(st) => {
                st.observed.set(observer);
                st.observed.recv_closed
            }
            None if self.ended => Some(CloseCause::LinkEnded),
            None => Some(CloseCause::Peer),
        }
    }

    /// Sends back, from now on, what the peer sends on stream `id`, inside
    /// the link: the stream then sends straight out of the pipe the peer's
    /// bytes arrive in, with no task and no copy (an echo service).
    /// `reader` and `writer` are the stream's own ends (its
    /// [`MuxStream`]'s), which the mux retires. Bytes written on `writer`
    /// and not sent yet go first, then every byte of the peer's that
    /// `reader` had not read, in order. The stream's credit works as for a
    /// router's splice: the peer gets room back as its bytes go back out.
    /// When the peer closes its direction, ours closes once the last byte
    /// is sent back, with the peer's epitaph if it gave one.
    ///
    /// The ends come back untouched if they are not stream `id`'s on this
    /// link, or if either direction of it is closed already.
    pub fn loop_back(
        &mut self,
        id: u32,
        reader: Reader,
        writer: Writer,
    ) -> Result<(), (Reader, Writer)> {
        let Some(st) = self.streams.get_mut(&id) else {
            return Err((reader, writer));
        };
        let written = match st.source.take() {
            Some(source)
                if st.recv == Recv::Open
                    && st.sink.as_ref().is_some_and(|s| reader.pairs_with(s))
                    && source.pairs_with(&writer)
                    && !source.is_closed() =>
            {
                source
            }
            other => {
                st.source = other;
                return Err((reader, writer));
            }
        };
        // The writer is ours now: nothing more comes into its pipe.
        let mut unsent = Vec::new();
        while let Ok(Some(_)) = written.try_read_with(1, |bytes| {
            unsent.extend_from_slice(bytes);
            ((), bytes.len())
        }) {}
        if !unsent.is_empty() {
            // Room for them on top of the window, so the peer's bytes
            // still always fit.
            if let (Some(sink), Some(capacity)) = (&st.sink, reader.capacity()) {
                sink.grow_capacity(capacity.saturating_add(unsent.len()));
            }
            reader.push_front(&unsent);
        }
        st.source = Some(reader);
        st.shares_send_buffer = false;
        self.ready.push(&st.waker);
        drop((written, writer));
        Ok(())
    }

    /// The write limit of each send pipe the mux made when `streams` are
    /// open: the link's send buffer shared out, at least the smaller of
    /// 64 KiB and `stream_send_buffer`, at most `stream_send_buffer`. The
    /// count is rounded up to a power of two, so the share changes only
    /// when the count crosses one, and only while the share is above its
    /// floor (up to 33 streams with the defaults): updating every stream
    /// then costs O(1) per open or close, amortised, however many are open.
    fn send_share_for(&self, streams: usize) -> usize {
        let most = self.config.stream_send_buffer;
        let floor = MIN_SEND_SHARE.min(most);
        let streams = streams
            .max(1)
            .checked_next_power_of_two()
            .unwrap_or(usize::MAX);
        (self.config.link_send_buffer / streams).clamp(floor, most)
    }

    /// Sets the send pipes' write limits after the count of open streams
    /// changed: every such pipe's when the share changed, else only that
    /// of `new`, the stream just opened.
    fn share_send_buffer(&mut self, new: Option<u32>) {
        let share = self.send_share_for(self.streams.len());
        fn sharing(st: &StreamState) -> Option<&Reader> {
            st.source.as_ref().filter(|_| st.shares_send_buffer)
        }
        if share != self.send_share {
            self.send_share = share;
            for source in self.streams.values().filter_map(|st| sharing(st)) {
                source.set_write_limit(share);
            }
        } else if let Some(source) = new
            .and_then(|id| self.streams.get(&id))
            .and_then(|st| sharing(st))
        {
            source.set_write_limit(share);
        }
    }

    fn count_opened(&self) {
        AtomicCounters::add(&self.counters.streams_opened, 1);
        AtomicCounters::add(&self.counters.streams_open, 1);
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
            self.drop_credit(st.credit);
            self.counters
                .streams_open
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            AtomicCounters::add(&self.counters.streams_closed, 1);
            self.share_send_buffer(None);
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
        for (&id, st) in self.streams.iter_mut() {
            if let Some(source) = &st.source {
                source.close(epitaph);
                st.held = None;
                st.abort = Some(epitaph.to_owned());
                // The driver sends the close frame on its next turn.
                self.ready.push_quiet(&st.waker);
                st.observed.source_cut(id, epitaph);
            }
            if let Some(sink) = &st.sink {
                st.observed
                    .sink_closing(id, CloseCause::StreamsClosed, epitaph, sink);
                sink.close(epitaph);
            }
        }
    }

    /// Starts closing the link (yamux's `Connection::poll_close`): no new
    /// stream may open from now on ([`attach`](Core::attach) fails with
    /// [`MuxError::LinkClosed`]), the peer's new streams are refused, and
    /// every stream is closed with `epitaph` as
    /// [`close_streams`](Core::close_streams) does (unsent bytes are
    /// dropped). Once [`close_gathered`](Core::close_gathered) says so and
    /// what [`transmit`](Core::transmit) gave is written and flushed, the
    /// link may be closed. A second close does nothing: the first epitaph
    /// wins.
    pub fn close(&mut self, epitaph: &str) {
        if self.closing || self.ended {
            return;
        }
        self.closing = true;
        self.accepting = false;
        self.close_streams(epitaph);
        if let Some(w) = self.accept_waker.take() {
            w.wake();
        }
    }

    /// Whether [`close`](Core::close) was called.
    pub fn is_closing(&self) -> bool {
        self.closing
    }

    /// After [`close`](Core::close): whether every stream's close frame has
    /// been gathered by [`transmit`](Core::transmit), so that the link may
    /// be closed once that output is written. Frames for the peer's
    /// directions are not waited for; link-control frames still queued
    /// (grants, PONGs, refusals of streams the peer opened meanwhile) are
    /// dropped with the link.
    pub fn close_gathered(&self) -> bool {
        self.closing && self.streams.values().all(|st| st.source.is_none())
    }

    /// Ends every stream with `epitaph` (the link is gone).
    pub fn close_all(&mut self, epitaph: &str) {
        self.ended = true;
        self.ready.clear();
        for (id, mut st) in self.streams.drain() {
            if let Some(sink) = st.sink {
                st.observed
                    .sink_closing(id, CloseCause::LinkEnded, epitaph, &sink);
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
        self.credit.clear_output();
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
    use std::task::Context;

    use circuit_frame::{Encode, Frame};

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
        // A server configured off: a client never speaks first there.
        let mut core = Core::new(
            Role::Server,
            Config::default().credit(crate::CreditMode::Off),
        );
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
