//! The receiving half of the core: frames from the link to streams, with
//! the receiving rules of PROTOCOL.md section 1 and the receive limits.
//!
//! A data frame is taken as soon as its 6-byte header is in: the header is
//! checked against the rules at once and the payload is then delivered as
//! it arrives, so the caller never has to hold a whole frame (and the
//! driver can read a large payload from the link straight into the
//! stream's pipe, see [`Core::receive_direct`]). A close frame is taken
//! whole.

use std::io;
use std::sync::Arc;
use std::task::{Context, Poll};

use circuit_frame::{is_v0_clean_close, Decode, Decoded, Frame, DATA_HEADER_LEN};

use super::{
    Accepted, Core, InFrame, Progress, Recv, StreamState, MAX_PENDING_CONTROL, RESERVED_STREAM_ID,
};
use crate::counters::AtomicCounters;
use crate::observe::Observed;
use crate::ready::StreamWaker;
use crate::{CloseCause, MuxError, MuxStream};

/// What [`Core::receive_direct`] did.
#[derive(Debug)]
pub(crate) enum Direct {
    /// No direct read now: no payload in progress, too little of it left,
    /// or its stream cannot take bytes at once. Read into the read buffer
    /// instead, at most this many bytes if given (after large frames:
    /// what ends the frame in progress and the next header, so that the
    /// next payload can go straight to its stream).
    NotNow(Option<usize>),
    /// The link has nothing yet; the read registered the waker.
    Pending,
    /// The link's read returned `read` bytes (0: the link reached its
    /// end): the payload's went into the stream, and the `next` bytes that
    /// followed it (the start of the next frame's header) are for the
    /// caller's read buffer.
    Read {
        /// Bytes the link's read returned.
        read: usize,
        /// The bytes past the payload.
        next: [u8; DATA_HEADER_LEN],
        /// How many of `next` are bytes.
        next_len: usize,
    },
    /// The link's read failed.
    Failed(io::Error),
}

impl Core {
    /// Processes as much of `input` as the receive limits allow: whole
    /// close frames, and data frames as far as their bytes go (a data
    /// frame cut at the end of `input` continues in the next call). `cx` is
    /// woken when a blocked stream or the link has room again.
    pub fn receive(&mut self, input: &[u8], cx: &mut Context<'_>) -> Result<Progress, MuxError> {
        let mut consumed = 0;
        loop {
            let rest = input.get(consumed..).unwrap_or(&[]);
            if let Some(frame) = self.in_frame {
                if rest.is_empty() {
                    return Ok(Progress {
                        consumed,
                        blocked: false,
                    });
                }
                let take = frame.remaining.min(rest.len());
                let n = self.deliver(frame.id, &rest[..take], cx)?;
                consumed += n;
                if !self.payload_received(n) {
                    return Ok(Progress {
                        consumed,
                        blocked: n < take,
                    });
                }
                continue;
            }
            if self.control.len() >= MAX_PENDING_CONTROL {
                return Ok(Progress {
                    consumed,
                    blocked: true,
                });
            }
            let Some(&[a, b, c, d, l0, l1]) = rest.get(..DATA_HEADER_LEN) else {
                return Ok(Progress {
                    consumed,
                    blocked: false,
                });
            };
            let id = u32::from_le_bytes([a, b, c, d]);
            let len = usize::from(u16::from_le_bytes([l0, l1]));
            if id == RESERVED_STREAM_ID {
                // Taken whole: a control frame is at most 65,541 bytes,
                // which the driver's read buffer always has room for.
                match self.on_control_frame(rest, len)? {
                    Some(used) => {
                        consumed += used;
                        continue;
                    }
                    None => {
                        return Ok(Progress {
                            consumed,
                            blocked: false,
                        })
                    }
                }
            }
            self.check_peer_offer(len > 0)?;
            if len > 0 {
                self.last_data_len = [self.last_data_len[1], len];
                self.on_data(id)?;
                self.receive_credit(id, len)?;
                self.in_frame = Some(InFrame {
                    id,
                    len,
                    remaining: len,
                });
                consumed += DATA_HEADER_LEN;
                continue;
            }
            match Frame::decode(rest) {
                Ok(Decoded::Complete {
                    message: Frame::Close { stream_id, epitaph },
                    consumed: len,
                }) => {
                    // Counted first: the stream's reader may look at the
                    // counters as soon as it sees the close.
                    AtomicCounters::add(&self.counters.frames_in, 1);
                    self.on_close(stream_id, &String::from_utf8_lossy(epitaph))?;
                    consumed += len;
                }
                Ok(Decoded::Complete { .. } | Decoded::Incomplete { .. }) => {
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
            }
        }
    }

    /// A frame on the link-control stream whose 6-byte header starts
    /// `rest` (payload length `len`; 0 for a close frame): the bytes it
    /// took, or `None` if it has not all arrived.
    fn on_control_frame(&mut self, rest: &[u8], len: usize) -> Result<Option<usize>, MuxError> {
        if len == 0 {
            return match Frame::decode(rest) {
                Ok(Decoded::Complete { consumed, .. }) => {
                    AtomicCounters::add(&self.counters.frames_in, 1);
                    self.on_control_close()?;
                    Ok(Some(consumed))
                }
                Ok(Decoded::Incomplete { .. }) => Ok(None),
                Err(source) => Err(MuxError::Frame {
                    peer: self.config.peer_name.clone(),
                    source,
                }),
            };
        }
        if let Err(e) = self.control_data_allowed() {
            AtomicCounters::add(&self.counters.errors, 1);
            return Err(e);
        }
        let Some(payload) = rest.get(DATA_HEADER_LEN..DATA_HEADER_LEN + len) else {
            return Ok(None);
        };
        AtomicCounters::add(&self.counters.frames_in, 1);
        self.on_control_data(payload)?;
        Ok(Some(DATA_HEADER_LEN + len))
    }

    /// Bytes received so far of a data frame whose payload has not all
    /// arrived (its header included); 0 at a frame boundary. A link that
    /// ends now ends inside that frame.
    pub fn partial_frame(&self) -> usize {
        self.in_frame
            .map_or(0, |f| DATA_HEADER_LEN + f.len - f.remaining)
    }

    /// Notes `n` payload bytes of the frame in progress as received;
    /// `true` if that ended the frame.
    fn payload_received(&mut self, n: usize) -> bool {
        let Some(frame) = &mut self.in_frame else {
            return false;
        };
        frame.remaining -= n;
        if frame.remaining > 0 {
            return false;
        }
        let id = frame.id;
        self.in_frame = None;
        AtomicCounters::add(&self.counters.frames_in, 1);
        self.arm_grant(id);
        true
    }

    /// Reads the rest of the payload in progress from the link straight into
    /// its stream's pipe, when at least `min` bytes of it are left and the
    /// stream has room now. `read` gets the pipe's free space: room for the
    /// bytes left and the header of the next frame, if there is that much,
    /// so that one read of the link usually ends a frame and begins the
    /// next (the header bytes are handed back). Saves the copy through the
    /// read buffer; call it only when that buffer is empty.
    pub(crate) fn receive_direct(
        &mut self,
        min: usize,
        read: impl FnOnce(&mut [u8]) -> Poll<io::Result<usize>>,
    ) -> Direct {
        let Some((frame, credit, sink)) = self.payload_sink(min) else {
            return self.not_now(min);
        };
        let want = frame.remaining + DATA_HEADER_LEN;
        let len = match sink.capacity() {
            // With less room than that, payload only: the next header
            // would be cut, and a part of a header makes the next read
            // go through the read buffer.
            Some(capacity) => match capacity.saturating_sub(sink.buffered()) {
                room if room < want => room.min(frame.remaining),
                _ => want,
            },
            None => want,
        };
        if len < min {
            return self.not_now(min);
        }
        let mut outcome = Direct::Pending;
        let mut payload = 0;
        let written = sink.try_write_with(len, |space| match read(space) {
            Poll::Ready(Ok(n)) => {
                let n = n.min(space.len());
                payload = n.min(frame.remaining);
                let mut next = [0; DATA_HEADER_LEN];
                let next_len = n - payload;
                next[..next_len].copy_from_slice(&space[payload..n]);
                outcome = Direct::Read {
                    read: n,
                    next,
                    next_len,
                };
                payload
            }
            Poll::Ready(Err(e)) => {
                outcome = Direct::Failed(e);
                0
            }
            Poll::Pending => 0,
        });
        if written.is_err() {
            // Only the driver writes to the sink, so the room seen above is
            // still there: the reader is gone, and the normal path discards.
            return self.not_now(min);
        }
        if payload > 0 {
            self.payload_stored(frame.id, credit, payload);
        }
        outcome
    }

    /// The frame in progress, whether its stream is under credit, and the
    /// stream's pipe, if at least `min` bytes of its payload are left and
    /// may go straight into that pipe now (a v0 link below its limit).
    fn payload_sink(&self, min: usize) -> Option<(InFrame, bool, &circuit_stream::Writer)> {
        let frame = self.in_frame?;
        let credit = self.under_credit(frame.id);
        if frame.remaining < min
            || (!credit && self.receive_buffered >= self.config.link_receive_limit)
        {
            return None;
        }
        let sink = self.streams.get(&frame.id)?.sink.as_ref()?;
        Some((frame, credit, sink))
    }

    /// `n` payload bytes of the frame in progress went into stream `id`'s
    /// pipe: counted against a v0 link's limit, and received.
    fn payload_stored(&mut self, id: u32, credit: bool, n: usize) {
        if !credit {
            self.receive_buffered += n;
            self.dirty.insert(id);
        }
        self.payload_received(n);
    }

    /// How many payload bytes of the frame in progress its stream can take
    /// now, if at least `min`: what [`receive_handed`](Core::receive_handed)
    /// may be given. Otherwise the bytes of the link go through the read
    /// buffer, at most as many as the hint says (as for
    /// [`Direct::NotNow`]).
    pub(crate) fn handed_room(&self, min: usize) -> Result<usize, Option<usize>> {
        let room = self.payload_sink(min).map(|(frame, _, sink)| {
            let room = sink.capacity().map_or(usize::MAX, |capacity| {
                capacity.saturating_sub(sink.buffered())
            });
            room.min(frame.remaining)
        });
        match room {
            Some(n) if n >= min => Ok(n),
            _ => match self.not_now(min) {
                Direct::NotNow(hint) => Err(hint),
                _ => Err(None),
            },
        }
    }

    /// Puts payload bytes of the frame in progress into its stream's pipe
    /// as they are, without a copy: `bytes` came from a link that is a pipe
    /// of this process, and are at most what
    /// [`handed_room`](Core::handed_room) said. Returns what the stream
    /// did not take (nothing unless its room shrank, which only this
    /// driver's writes do), for the caller to pass through the read buffer.
    pub(crate) fn receive_handed(
        &mut self,
        mut bytes: circuit_stream::Bytes,
        cx: &mut Context<'_>,
    ) -> Option<circuit_stream::Bytes> {
        let Some(frame) = self.in_frame else {
            return Some(bytes);
        };
        let credit = self.under_credit(frame.id);
        let Some(st) = self.streams.get_mut(&frame.id) else {
            // Not a stream that takes bytes now: the read buffer's path
            // knows what to do with them.
            return Some(bytes);
        };
        let Some(sink) = st.sink.as_ref() else {
            return Some(bytes);
        };
        let len = bytes.len().min(frame.remaining);
        let mut rest = bytes.split_off(len);
        let mut taken = 0;
        let mut discarded = false;
        while !bytes.is_empty() {
            match sink.poll_write_bytes(cx, &mut bytes) {
                Poll::Ready(Ok(n)) => taken += n,
                Poll::Ready(Err(_)) => {
                    // The application dropped its reader: discard, as
                    // `deliver` does.
                    st.recv = Recv::Discarding;
                    st.sink = None;
                    discarded = true;
                    taken = len;
                    bytes.clear();
                    break;
                }
                Poll::Pending => break,
            }
        }
        if !bytes.is_empty() {
            // Not taken: back in front of the rest, for the read buffer.
            let mut back = bytes.to_vec();
            back.extend_from_slice(&rest);
            rest = back.into();
        }
        if discarded {
            self.payload_received(taken);
        } else if taken > 0 {
            self.payload_stored(frame.id, credit, taken);
        }
        (!rest.is_empty()).then_some(rest)
    }

    /// Whether one of the latest two data frames was at least `large` (one
    /// short frame among large ones changes nothing).
    fn recent_large(&self, large: usize) -> bool {
        self.last_data_len.iter().any(|&len| len >= large)
    }

    /// How much the next read of the link should ask for when `rest`, the
    /// input [`Core::receive`] left, begins a frame that has not all
    /// arrived: while recent data frames are at least `large`, the rest of
    /// that frame and the next header (a link-control frame between large
    /// data frames would otherwise pull the next data frame through the
    /// read buffer, when it could go straight to its stream). `None`: no
    /// limit.
    pub fn read_hint(&self, rest: &[u8], large: usize) -> Option<usize> {
        if self.in_frame.is_some() || !self.recent_large(large) {
            return None;
        }
        match rest.get(..DATA_HEADER_LEN) {
            // The rest of the header: a data frame's payload then goes
            // straight.
            None => Some(DATA_HEADER_LEN - rest.len()),
            Some(&[a, b, c, d, l0, l1])
                if u32::from_le_bytes([a, b, c, d]) == RESERVED_STREAM_ID =>
            {
                let len = usize::from(u16::from_le_bytes([l0, l1]));
                // A close frame's length is not in its header.
                (len > 0)
                    .then(|| (DATA_HEADER_LEN + len + DATA_HEADER_LEN).saturating_sub(rest.len()))
            }
            Some(_) => None,
        }
    }

    /// [`Direct::NotNow`], with how much the read of an empty read
    /// buffer should ask for: when one of the latest two data frames was at
    /// least `large` (one short frame among large ones changes nothing),
    /// only the rest of the frame in progress and the next header.
    fn not_now(&self, large: usize) -> Direct {
        let hint = self
            .recent_large(large)
            .then(|| self.in_frame.map_or(0, |f| f.remaining) + DATA_HEADER_LEN);
        Direct::NotNow(hint)
    }

    /// Checks the header of a data frame for stream `id` against the
    /// receiving rules, opening the stream if it is new.
    fn on_data(&mut self, id: u32) -> Result<(), MuxError> {
        let recv = match self.streams.get(&id) {
            Some(st) => st.recv,
            None if self.role.opens(id) => {
                return Err(self.bad_id(id, self.own_id_reason(id)));
            }
            None if self.refused.contains(id) => return Ok(()),
            None if self.peer_closed.contains(id) => {
                return Err(self.bad_id(id, "data for a stream that is closed"));
            }
            None => {
                self.new_incoming(id);
                return Ok(());
            }
        };
        match recv {
            Recv::Open | Recv::Discarding => Ok(()),
            Recv::Closed => Err(self.bad_id(id, "data after the peer closed the stream")),
        }
    }

    fn own_id_reason(&self, id: u32) -> &'static str {
        match self.next_local_id {
            Some(next) if id >= next => "data or close for an id of our parity we never opened",
            None | Some(_) => "data or close for a stream of ours that is closed",
        }
    }

    /// Registers a stream the peer opened, or refuses it.
    fn new_incoming(&mut self, id: u32) {
        if !self.accepting || self.incoming_open >= self.config.max_incoming_streams {
            self.refused.insert(id);
            AtomicCounters::add(&self.counters.streams_refused, 1);
            tracing::debug!(stream = id, "refused an incoming stream");
            let why = if self.closing {
                "refused: this end is closing the link"
            } else if self.accepting {
                "refused: too many incoming streams"
            } else {
                "refused: this end accepts no streams"
            };
            // Sent by the driver's next transmit, right after `receive`.
            self.control.push_back((id, why.to_owned()));
            return;
        }
        let credit = self.credit_for_incoming(id);
        let capacity = match credit {
            Some(_) => Core::credit_sink_capacity(),
            None => self.config.stream_receive_limit,
        };
        let (sink_reader, sink) = circuit_stream::stream_with_capacity(capacity);
        let (source, source_writer) =
            circuit_stream::stream_with_capacity(self.config.stream_send_buffer);
        let waker = StreamWaker::new(id, &self.ready);
        self.streams.insert(
            id,
            Box::new(StreamState {
                recv: Recv::Open,
                sink: Some(sink),
                source: Some(source),
                held: None,
                peer_knows: true,
                incoming: true,
                waker: Arc::clone(&waker),
                abort: None,
                observed: Observed::default(),
                credit,
                shares_send_buffer: true,
            }),
        );
        self.incoming_open += 1;
        self.count_opened();
        self.share_send_buffer(Some(id));
        // Called from `receive`: the driver transmits right after.
        self.ready.push_quiet(&waker);
        self.accept_queue.push_back(Accepted {
            stream: MuxStream::new(id, sink_reader, source_writer),
        });
        if let Some(w) = self.accept_waker.take() {
            w.wake();
        }
    }

    /// Writes as much of `payload` (bytes of the frame in progress for
    /// stream `id`) as the stream and link limits allow and returns how
    /// many it took; bytes for a stream that takes none (refused, or its
    /// reader dropped) are taken and dropped.
    fn deliver(
        &mut self,
        id: u32,
        payload: &[u8],
        cx: &mut Context<'_>,
    ) -> Result<usize, MuxError> {
        let Some(st) = self.streams.get_mut(&id) else {
            return Ok(payload.len());
        };
        if st.sink.is_none() {
            return Ok(payload.len());
        }
        let credit = st.credit.is_some();
        if !credit
            && self.receive_buffered >= self.config.link_receive_limit
            && !self.link_has_room(cx)
        {
            return Ok(0);
        }
        let Some(st) = self.streams.get_mut(&id) else {
            return Ok(payload.len());
        };
        let Some(sink) = &st.sink else {
            return Ok(payload.len());
        };
        let mut delivered = 0;
        while delivered < payload.len() {
            match sink.poll_write_some(cx, &payload[delivered..]) {
                Poll::Ready(Ok(n)) => {
                    delivered += n;
                    if !credit {
                        self.receive_buffered += n;
                        self.dirty.insert(id);
                    }
                }
                Poll::Ready(Err(_)) => {
                    // The application dropped its reader: discard silently.
                    st.recv = Recv::Discarding;
                    st.sink = None;
                    return Ok(payload.len());
                }
                Poll::Pending => break,
            }
        }
        Ok(delivered)
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
                    if let Some(sink) = &sink {
                        st.observed
                            .sink_closing(id, CloseCause::Peer, epitaph, sink);
                    }
                    // Count the stream closed before its reader can see it.
                    self.finish_if_done(id);
                    if let Some(sink) = sink {
                        // A clean end that passed v0 routers (PROTOCOL 2.4)
                        // reads as end of file; its text stays for whoever
                        // asks for it, or forwards it.
                        match is_v0_clean_close(epitaph) {
                            true => sink.close_clean_with(epitaph),
                            false => sink.close(epitaph),
                        }
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
}
