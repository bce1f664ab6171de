//! The receiving half of the core: frames from the link to streams, with
//! the receiving rules of PROTOCOL.md section 1 and the receive limits.

use std::sync::Arc;
use std::task::{Context, Poll};

use circuit_frame::{Decode, Decoded, Frame};

use super::{Accepted, Core, Progress, Recv, StreamState, MAX_PENDING_CONTROL, RESERVED_STREAM_ID};
use crate::counters::AtomicCounters;
use crate::observe::Observed;
use crate::ready::StreamWaker;
use crate::{CloseCause, MuxError, MuxStream};

impl Core {
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
                abort: None,
                observed: Observed::default(),
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
                    if let Some(sink) = &sink {
                        st.observed
                            .sink_closing(id, CloseCause::Peer, epitaph, sink);
                    }
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
}
