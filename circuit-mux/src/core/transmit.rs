//! The sending half of the core: frames from streams to the link,
//! round-robin, their payloads moved out of the streams' pipes.

use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use circuit_frame::{Encode, Frame, INITIAL_CREDIT, MAX_PAYLOAD_LEN};
use circuit_stream::{Chunk, StreamError};

use super::{Core, Recv, StreamState};
use crate::counters::AtomicCounters;
use crate::ready::StreamWaker;
use crate::send::{Out, SendQueue};

/// Data frames at least this large keep their payload in the storage it
/// was written into, taken out of the pipe; smaller ones are copied.
const DIRECT_MIN: usize = 8 * 1024;

/// At most this many full data frames of one stream go in one turn, when
/// no other stream waits (and a short last frame with them): 4 full
/// frames are the 256 KiB of a full pipe.
const ALONE_FRAMES: usize = 4;

impl Core {
    /// Appends frames to `out` until it holds `limit` bytes or no stream
    /// has data: refusals first, then at most one frame per ready stream per
    /// turn, round-robin.
    pub fn transmit(&mut self, out: &mut Vec<u8>, limit: usize) {
        self.fill(out, limit);
    }

    /// For the driver: puts frames in `queue` until it holds `limit`
    /// bytes or no stream has data, as [`transmit`](Core::transmit) does,
    /// moving large payloads out of their pipes rather than copying them.
    pub(crate) fn transmit_queue(&mut self, queue: &mut SendQueue, limit: usize) {
        self.fill(queue, limit);
    }

    /// Control frames first, then turns of the ready streams: one frame
    /// each while several wait, up to [`ALONE_FRAMES`] (and a short last
    /// one) for a stream alone.
    fn fill<O: Out>(&mut self, out: &mut O, limit: usize) {
        self.transmit_control(out, limit);
        while out.queued() < limit {
            let Some(waker) = self.ready.pop() else {
                break;
            };
            // The server's first data frame goes alone: its HELLO follows.
            let most = match !self.hello_follows_data() && self.ready.is_empty() {
                true => ALONE_FRAMES,
                false => 1,
            };
            self.transmit_one(&waker, out, most);
        }
    }

    /// Appends the control frames due to `out`: refusals and closes (until
    /// it holds `limit` bytes), then link control.
    fn transmit_control<O: Out>(&mut self, out: &mut O, limit: usize) {
        while out.queued() < limit {
            let Some((id, epitaph)) = self.control.pop_front() else {
                break;
            };
            self.push_close(out.tail(), id, &epitaph);
        }
        if self.control_pending() {
            // Grants, PINGs and PONGs go ahead of queued data once our
            // HELLO is out; the HELLO itself keeps its place.
            if self.control_may_jump() {
                self.push_link_control(out.ahead());
            } else {
                self.push_link_control(out.tail());
                out.floor_here();
            }
        }
    }

    /// What a turn of stream `st` may send now: its credit, the protocol's
    /// initial credit for a first frame that follows our HELLO, or `None`
    /// for no limit.
    fn send_cap(st: &StreamState, open_credit: bool) -> Option<usize> {
        match &st.credit {
            Some(c) => Some(usize::try_from(c.send_credit()).unwrap_or(usize::MAX)),
            None if !st.peer_knows && open_credit => Some(INITIAL_CREDIT as usize),
            None => None,
        }
    }

    /// Counts `sent` payload bytes of stream `id` against its credit; the
    /// first frame of a stream of ours decides whether it is under credit.
    fn sent_data(&mut self, id: u32, sent: usize, first: bool) {
        match first {
            true => self.first_frame_sent(id, sent as u64),
            false => self.spend(id, sent as u64),
        }
    }

    fn push_close(&self, out: &mut Vec<u8>, id: u32, epitaph: &str) {
        Frame::close(id, epitaph).encode_to_vec(out);
        AtomicCounters::add(&self.counters.frames_out, 1);
    }

    /// One turn of stream `waker.id`: up to `most` data frames (bytes it
    /// took out of its pipe at an earlier turn first), or its close frame.
    /// A stream with bytes and no credit leaves the ready queue until a
    /// CREDIT for it comes; one that sent goes to the back of the queue.
    fn transmit_one<O: Out>(&mut self, waker: &Arc<StreamWaker>, out: &mut O, most: usize) {
        let id = waker.id;
        let open_credit = self.credit.on_open();
        let Some(st) = self.streams.get_mut(&id) else {
            return;
        };
        // With no credit left the pipe is still polled: a close frame
        // spends none, and an empty pipe registers for its writer's bytes.
        let cap = Core::send_cap(st, open_credit).unwrap_or(usize::MAX);
        let first = !st.peer_knows;
        let chunk = match st.held.take() {
            Some(held) => Ok(held),
            None => {
                let Some(source) = &st.source else {
                    return;
                };
                let w = Waker::from(Arc::clone(waker));
                let mut cx = Context::from_waker(&w);
                // A small front is copied at once; a large one is taken.
                let polled = source.poll_read_with(&mut cx, 1, |buf| {
                    let n = buf.len().min(cap).min(MAX_PAYLOAD_LEN);
                    if n == 0 {
                        // Bytes and no credit for them: never a frame of 0
                        // bytes, which would read as a close.
                        return (Turn::NoCredit, 0);
                    }
                    if buf.len() >= DIRECT_MIN && n >= DIRECT_MIN {
                        return (Turn::Take, 0);
                    }
                    push_data(out.tail(), id, &buf[..n]);
                    (Turn::Sent(n), n)
                });
                match polled {
                    Poll::Pending => return,
                    Poll::Ready(Ok(Turn::NoCredit)) => {
                        self.wait_for_credit(id);
                        return;
                    }
                    Poll::Ready(Ok(Turn::Sent(n))) => {
                        self.ready.push_quiet(waker);
                        self.sent_frames(id, 1, n, first, out);
                        return;
                    }
                    Poll::Ready(Ok(Turn::Take)) => match source.poll_take(&mut cx) {
                        Poll::Ready(Ok(chunk)) => Ok(chunk),
                        Poll::Ready(Err(e)) => Err(e),
                        // Bytes were there a moment ago: the writer's
                        // next ones queue the stream again.
                        Poll::Pending => return,
                    },
                    Poll::Ready(Err(e)) => Err(e),
                }
            }
        };
        let mut chunk = match chunk {
            Ok(chunk) => chunk,
            Err(err) => return self.source_ended(id, err, out),
        };
        if cap == 0 {
            // Out of the queue until a CREDIT for it comes.
            if let Some(st) = self.streams.get_mut(&id) {
                st.held = Some(chunk);
            }
            self.wait_for_credit(id);
            return;
        }
        let (frames, sent) = frame_chunk(id, &mut chunk, cap, most, out);
        if let Some(st) = self.streams.get_mut(&id) {
            st.held = Some(chunk).filter(|c| !c.is_empty());
        }
        // More may be waiting: come back after the others.
        self.ready.push_quiet(waker);
        self.sent_frames(id, frames, sent, first, out);
    }

    /// Counts `frames` data frames of stream `id` carrying `sent` payload
    /// bytes; the server's first one is followed by its HELLO.
    fn sent_frames<O: Out>(&mut self, id: u32, frames: u64, sent: usize, first: bool, out: &mut O) {
        if frames == 0 {
            return;
        }
        if let Some(st) = self.streams.get_mut(&id) {
            st.peer_knows = true;
        }
        AtomicCounters::add(&self.counters.frames_out, frames);
        self.sent_data(id, sent, first);
        if self.hello_follows_data() {
            self.after_data_frame(out.tail());
            out.floor_here();
        }
    }

    /// The stream's writer closed (or its pipe failed) and every byte it
    /// wrote went: its close frame, or nothing if the peer never saw it.
    fn source_ended<O: Out>(&mut self, id: u32, err: StreamError, out: &mut O) {
        let Some(st) = self.streams.get_mut(&id) else {
            return;
        };
        let source = st.source.take();
        st.held = None;
        // A stream cut by `close_streams` says so even when its writer had
        // closed cleanly: what it left unsent is gone. A clean end may
        // still carry an epitaph (a v0 clean close a router forwards): it
        // goes on unchanged.
        let epitaph = st.abort.take().unwrap_or_else(|| match err {
            StreamError::Closed(reason) => reason
                .or_else(|| source.and_then(|s| s.closed_reason()))
                .unwrap_or_default(),
            other => other.to_string(),
        });
        if st.peer_knows {
            self.push_close(out.tail(), id, &epitaph);
        } else {
            // Never on the wire: the peer cannot know this stream, so
            // nothing will ever arrive on it either.
            st.recv = Recv::Closed;
            let sink = st.sink.take();
            self.finish_if_done(id);
            if let Some(sink) = sink {
                sink.close("stream closed before sending any data: the peer never saw it");
            }
            return;
        }
        self.finish_if_done(id);
    }
}

/// What a look at a stream's pipe found.
enum Turn {
    /// Bytes and no credit.
    NoCredit,
    /// A small frame of this many bytes went out, copied.
    Sent(usize),
    /// Enough bytes for a large frame: take them out of the pipe.
    Take,
}

/// Encodes a data frame of stream `id` carrying `payload` into `out`.
fn push_data(out: &mut Vec<u8>, id: u32, payload: &[u8]) {
    // Callers cut payloads at MAX_PAYLOAD_LEN.
    out.extend_from_slice(&Frame::data_header(id, payload.len() as u16));
    out.extend_from_slice(payload);
}

/// Cuts up to `most` data frames of stream `id` off the front of `chunk`,
/// `cap` payload bytes in all at most, and a short last frame after
/// [`ALONE_FRAMES`] full ones if that ends the chunk; large payloads stay
/// in the chunk's storage, small ones are copied. Returns the frames and
/// the payload bytes they carry.
fn frame_chunk<O: Out>(
    id: u32,
    chunk: &mut Chunk,
    cap: usize,
    most: usize,
    out: &mut O,
) -> (u64, usize) {
    let mut frames = 0;
    let mut sent = 0;
    // A short last frame goes with full ones rather than in a turn of its
    // own (a stream's full pipe is 4 full frames and 4 bytes, say).
    let tail =
        |frames: usize, rest: usize| most == ALONE_FRAMES && frames == most && rest < DIRECT_MIN;
    while !chunk.is_empty()
        && sent < cap
        && (frames < most || tail(frames, chunk.len().min(cap - sent)))
    {
        let n = chunk.len().min(MAX_PAYLOAD_LEN).min(cap - sent);
        let payload = chunk.split_to(n);
        // `n` is at most 65535 by the line above.
        let header = Frame::data_header(id, n as u16);
        if n >= DIRECT_MIN {
            out.frame(header, payload);
        } else {
            let tail = out.tail();
            tail.extend_from_slice(&header);
            tail.extend_from_slice(&payload);
        }
        frames += 1;
        sent += n;
    }
    (frames as u64, sent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use circuit_frame::DATA_HEADER_LEN;

    /// A chunk of `len` patterned bytes, and the bytes.
    fn chunk(len: usize) -> (Chunk, Vec<u8>, circuit_stream::Writer) {
        let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let (reader, writer) = circuit_stream::stream_with_capacity(len);
        writer.try_write(&bytes).unwrap();
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        match reader.poll_take(&mut cx) {
            Poll::Ready(Ok(chunk)) => (chunk, bytes, writer),
            other => panic!("{other:?}"),
        }
    }

    /// The wire bytes of stream 7's frames cut from `buf` at `sizes`.
    fn encoded(buf: &[u8], sizes: &[usize]) -> Vec<u8> {
        let mut wire = Vec::new();
        let mut at = 0;
        for &n in sizes {
            Frame::data(7, &buf[at..at + n])
                .unwrap()
                .encode_to_vec(&mut wire);
            at += n;
        }
        wire
    }

    #[test]
    fn a_turn_cuts_frames_within_credit_and_the_rest_stays() {
        let full = MAX_PAYLOAD_LEN;
        // (bytes, cap, most) -> frame sizes.
        let cases: [(usize, usize, usize, &[usize]); 6] = [
            // A full pipe of a stream alone: 4 full frames and the short one.
            (
                4 * full + 4,
                usize::MAX,
                ALONE_FRAMES,
                &[full, full, full, full, 4],
            ),
            // With others waiting, one frame.
            (4 * full + 4, usize::MAX, 1, &[full]),
            // A last frame large enough to go on its own waits its turn.
            (
                4 * full + DIRECT_MIN,
                usize::MAX,
                ALONE_FRAMES,
                &[full, full, full, full],
            ),
            // Credit cuts the turn, never to a frame of 0 bytes.
            (3 * full, full + 10, ALONE_FRAMES, &[full, 10]),
            (3 * full, 100, 1, &[100]),
            (10, usize::MAX, ALONE_FRAMES, &[10]),
        ];
        for (len, cap, most, sizes) in cases {
            let (mut chunk, bytes, writer) = chunk(len);
            let mut out = Vec::new();
            let (frames, sent) = frame_chunk(7, &mut chunk, cap, most, &mut out);
            let total: usize = sizes.iter().sum();
            assert_eq!(
                (frames, sent),
                (sizes.len() as u64, total),
                "{len} {cap} {most}"
            );
            assert_eq!(out, encoded(&bytes, sizes), "{len} {cap} {most}");
            assert_eq!(&chunk[..], &bytes[total..], "the rest stays");
            // The frames' payloads gave their room back; the rest holds it.
            assert_eq!(writer.buffered(), len - total);
        }
    }

    #[test]
    fn large_payloads_stay_in_their_storage_and_small_ones_are_copied() {
        let (mut chunk, bytes, _writer) = chunk(MAX_PAYLOAD_LEN + 100);
        let mut queue = SendQueue::default();
        let (frames, _) = frame_chunk(7, &mut chunk, usize::MAX, ALONE_FRAMES, &mut queue);
        assert_eq!(frames, 2);
        let mut slices = [std::io::IoSlice::new(&[]); 8];
        let n = queue.slices(&mut slices);
        let lens: Vec<usize> = slices[..n].iter().map(|s| s.len()).collect();
        // Header and payload of the large frame, then the small frame
        // encoded whole.
        assert_eq!(
            lens,
            [DATA_HEADER_LEN, MAX_PAYLOAD_LEN, DATA_HEADER_LEN + 100]
        );
        let mut wire = Vec::new();
        queue.copy_front(&mut wire, usize::MAX);
        assert_eq!(wire, encoded(&bytes, &[MAX_PAYLOAD_LEN, 100]));
    }
}
