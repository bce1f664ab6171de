//! The sending half of the core: frames from streams to the link,
//! round-robin, gathered or written straight from a stream's pipe.

use std::io::{self, IoSlice};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use circuit_frame::{Encode, Frame, DATA_HEADER_LEN, INITIAL_CREDIT, MAX_PAYLOAD_LEN};
use circuit_stream::StreamError;

use super::{Core, Recv, StreamState};
use crate::counters::AtomicCounters;
use crate::ready::StreamWaker;

/// Data frames at least this large are written straight from their
/// stream's pipe to the link when the gather buffer is empty.
const DIRECT_MIN: usize = 8 * 1024;

/// A vectored write to the link, for [`Core::transmit_direct`].
pub(crate) type DirectWrite<'a, 'b> = &'a mut dyn FnMut(&[IoSlice<'_>]) -> Poll<io::Result<usize>>;

/// At most this many data frames of one stream go out in one direct
/// (vectored) write, when no other stream waits: 4 full frames are the
/// 256 KiB a gathered write takes.
const DIRECT_FRAMES: usize = 4;

/// What [`Core::transmit_direct`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DirectSent {
    /// Nothing went straight to the link: gather as usual.
    Nothing,
    /// The link took this many bytes of streams' frames.
    Wrote(usize),
    /// Frames were ready but the link took nothing.
    Blocked,
    /// Control frames (closes, link control) went into the gather buffer,
    /// and nothing else: write them alone, then data goes straight again.
    Control,
}

/// What one turn of a stream put out.
enum Sent {
    Nothing,
    Gathered,
    /// Bytes the link took, and frames sent (the rest of a frame the link
    /// took only part of is in the gather buffer).
    Direct(usize, u64),
    WouldBlock,
    /// Bytes are waiting and the stream has no credit for any of them.
    NoCredit,
}

impl Core {
    /// Appends frames to `out` until it holds `limit` bytes or no stream
    /// has data: refusals first, then at most one frame per ready stream per
    /// turn, round-robin.
    pub fn transmit(&mut self, out: &mut Vec<u8>, limit: usize) {
        self.transmit_control(out, limit);
        while out.len() < limit {
            let Some(waker) = self.ready.pop() else {
                break;
            };
            // Without a direct writer nothing can fail.
            let _ = self.transmit_one(&waker, out, None);
        }
    }

    /// Appends the control frames due to `out`: refusals and closes (until
    /// it holds `limit` bytes), then link control.
    fn transmit_control(&mut self, out: &mut Vec<u8>, limit: usize) {
        while out.len() < limit {
            let Some((id, epitaph)) = self.control.pop_front() else {
                break;
            };
            self.push_close(out, id, &epitaph);
        }
        if self.control_pending() {
            self.push_link_control(out);
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

    /// For the driver: sends large frames straight from their pipes to the
    /// link with `write` (a vectored write), sparing a copy into the
    /// gather buffer. With no other stream waiting, up to
    /// [`DIRECT_FRAMES`] frames of the one stream (and a short last frame
    /// with them), so that the link gets writes as large as gathered ones;
    /// with others waiting, the next frame of each of up to
    /// [`DIRECT_FRAMES`] streams in queue order, one per stream as their
    /// turns go. Small frames, close frames and whatever part of a frame
    /// `write` did not take go to `out`.
    pub(crate) fn transmit_direct(
        &mut self,
        out: &mut Vec<u8>,
        write: DirectWrite<'_, '_>,
    ) -> io::Result<DirectSent> {
        if self.hello_follows_data() {
            return Ok(DirectSent::Nothing);
        }
        if self.control_pending() {
            // Control frames go ahead of data, in a small write of their
            // own: gathering a whole write's data behind them would copy
            // it (a grant every half window would do so all along).
            let before = out.len();
            self.transmit_control(out, before + DIRECT_MIN);
            if out.len() > before {
                return Ok(DirectSent::Control);
            }
        }
        let Some(waker) = self.ready.pop() else {
            return Ok(DirectSent::Nothing);
        };
        if self.ready.is_empty() {
            // Alone: several frames of this stream in one write.
            return Ok(match self.transmit_one(&waker, out, Some(write))? {
                Sent::Direct(written, _) => DirectSent::Wrote(written),
                Sent::WouldBlock => DirectSent::Blocked,
                Sent::Gathered | Sent::Nothing | Sent::NoCredit => DirectSent::Nothing,
            });
        }
        // Others wait: one frame of each of the next streams, in queue
        // order, up to DIRECT_FRAMES of them, in one write.
        let mut turns = Vec::with_capacity(DIRECT_FRAMES);
        let mut leftover = None;
        let written = write_across(
            &self.streams,
            &self.ready,
            Across {
                waker: Arc::clone(&waker),
                prior: &[],
                above: &[],
                open_credit: self.credit.on_open(),
            },
            write,
            out,
            &mut turns,
            &mut leftover,
        );
        // Back in the queue in the order they went, each after its frame.
        let mut frames = 0;
        for (turn, sent) in turns.iter().rev() {
            self.ready.push_quiet(turn);
            if *sent > 0 {
                frames += 1;
                if let Some(st) = self.streams.get_mut(&turn.id) {
                    let first = !st.peer_knows;
                    st.peer_knows = true;
                    self.sent_data(turn.id, *sent, first);
                }
            }
        }
        AtomicCounters::add(&self.counters.frames_out, frames);
        // A stream whose next frame could not go straight takes its turn
        // the usual way, after the frames written.
        if let Some(stream) = leftover {
            self.transmit_one(&stream, out, None)?;
        }
        Ok(match written? {
            None => DirectSent::Nothing,
            Some(Poll::Ready(written)) => DirectSent::Wrote(written),
            Some(Poll::Pending) => DirectSent::Blocked,
        })
    }

    fn transmit_one(
        &mut self,
        waker: &Arc<StreamWaker>,
        out: &mut Vec<u8>,
        mut direct: Option<DirectWrite<'_, '_>>,
    ) -> io::Result<Sent> {
        let id = waker.id;
        let open_credit = self.credit.on_open();
        let Some(st) = self.streams.get_mut(&id) else {
            return Ok(Sent::Nothing);
        };
        let Some(source) = &st.source else {
            return Ok(Sent::Nothing);
        };
        // With no credit left the pipe is still polled: a close frame
        // spends none, and an empty pipe registers for its writer's bytes.
        let cap = Core::send_cap(st, open_credit).unwrap_or(usize::MAX);
        let first = !st.peer_knows;
        let mut taken = 0;
        let w = Waker::from(Arc::clone(waker));
        let mut cx = Context::from_waker(&w);
        // One stream alone may send several frames in one direct write:
        // fair turns only matter when others wait.
        let most = match direct.is_some() && self.ready.is_empty() {
            true => DIRECT_FRAMES,
            false => 1,
        };
        let polled = source.poll_read_with(&mut cx, 1, |buf| {
            let buf = buf.get(..buf.len().min(cap)).unwrap_or(buf);
            if buf.is_empty() {
                // Bytes and no credit for them: never a frame of 0 bytes,
                // which would read as a close.
                return (Ok(Sent::NoCredit), 0);
            }
            let (sent, n) = match direct
                .as_mut()
                .filter(|_| buf.len().min(MAX_PAYLOAD_LEN) >= DIRECT_MIN)
            {
                Some(write) => write_direct(id, buf, most, write, out),
                None => {
                    let n = buf.len().min(MAX_PAYLOAD_LEN);
                    let payload = buf.get(..n).unwrap_or(&[]);
                    // `n` is at most 65535 by the line above.
                    out.extend_from_slice(&Frame::data_header(id, n as u16));
                    out.extend_from_slice(payload);
                    (Ok(Sent::Gathered), n)
                }
            };
            taken = n;
            (sent, n)
        });
        match polled {
            Poll::Pending => Ok(Sent::Nothing),
            Poll::Ready(Ok(Ok(Sent::NoCredit))) => {
                // Out of the queue until a CREDIT for it comes.
                self.wait_for_credit(id);
                Ok(Sent::Nothing)
            }
            Poll::Ready(Ok(result)) => {
                // More may be waiting (or this frame was not taken): come
                // back after the others.
                self.ready.push_quiet(waker);
                let sent = result?;
                let frames = match sent {
                    Sent::WouldBlock | Sent::NoCredit => 0,
                    Sent::Direct(_, frames) => frames,
                    Sent::Nothing | Sent::Gathered => 1,
                };
                if frames > 0 {
                    st.peer_knows = true;
                    AtomicCounters::add(&self.counters.frames_out, frames);
                    self.sent_data(id, taken, first);
                    if direct.is_none() {
                        self.after_data_frame(out);
                    }
                }
                Ok(sent)
            }
            Poll::Ready(Err(err)) => {
                let source = st.source.take();
                // A stream cut by `close_streams` says so even when its
                // writer had closed cleanly: what it left unsent is gone.
                // A clean end may still carry an epitaph (a v0 clean close
                // a router forwards): it goes on unchanged.
                let epitaph = st.abort.take().unwrap_or_else(|| match err {
                    StreamError::Closed(reason) => reason
                        .or_else(|| source.and_then(|s| s.closed_reason()))
                        .unwrap_or_default(),
                    other => other.to_string(),
                });
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
}

/// One stream's place in [`write_across`].
struct Across<'p, 'q> {
    /// The stream whose next frame this level adds.
    waker: Arc<StreamWaker>,
    /// The headers and payloads of the frames before it.
    prior: &'q [IoSlice<'p>],
    /// Their streams.
    above: &'q [u32],
    /// Whether a stream's first frame now puts it under credit.
    open_credit: bool,
}

/// Writes the next frame of each of several streams in one vectored
/// write: this level's stream adds its frame to `prior`, then the next
/// stream in the ready queue adds its own, and so on, each holding its
/// pipe's bytes until the write is done; then each level counts what the
/// write took of its frame (the rest of a frame cut by the write goes to
/// `out`). A stream whose next frame is not a large one (or that has
/// none, or is closed) ends the descent as `leftover`, and the frames
/// before it go. `None` if no frame was written; every stream with a
/// frame in the write is in `turns`, with the payload bytes of its frame
/// that went (0: not sent).
fn write_across(
    streams: &std::collections::HashMap<u32, super::StreamState>,
    ready: &crate::ready::ReadyQueue,
    here: Across<'_, '_>,
    write: DirectWrite<'_, '_>,
    out: &mut Vec<u8>,
    turns: &mut Vec<(Arc<StreamWaker>, usize)>,
    leftover: &mut Option<Arc<StreamWaker>>,
) -> io::Result<Option<Poll<usize>>> {
    let Across {
        waker,
        prior,
        above,
        open_credit,
    } = here;
    let id = waker.id;
    let level = above.len();
    let at: usize = prior.iter().map(|s| s.len()).sum();
    let go = |write: DirectWrite<'_, '_>, slices: &[IoSlice<'_>]| match slices.is_empty() {
        true => Ok(None),
        false => match write(slices) {
            Poll::Ready(Ok(n)) => Ok(Some(Poll::Ready(n))),
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => Ok(Some(Poll::Pending)),
        },
    };
    if above.contains(&id) {
        // Queued again (by its writer) since it was taken: its pipe is
        // held above. Its turn there puts it back in the queue.
        return go(write, prior);
    }
    let Some((st, source)) = streams
        .get(&id)
        .and_then(|st| Some((st, st.source.as_ref()?)))
    else {
        *leftover = Some(waker);
        return go(write, prior);
    };
    let cap = Core::send_cap(st, open_credit).unwrap_or(usize::MAX);
    let w = Waker::from(Arc::clone(&waker));
    let mut cx = Context::from_waker(&w);
    let mut write = Some(write);
    let polled = source.poll_read_with(&mut cx, 1, |buf| {
        let n = buf.len().min(MAX_PAYLOAD_LEN).min(cap);
        if n < DIRECT_MIN {
            return (None, 0);
        }
        let Some(write) = write.take() else {
            return (None, 0);
        };
        let payload = buf.get(..n).unwrap_or(&[]);
        // `n` is at most 65535 by the line above.
        let header = Frame::data_header(id, n as u16);
        let mut slices = [IoSlice::new(&[]); 2 * DIRECT_FRAMES];
        let k = prior.len();
        slices[..k].copy_from_slice(prior);
        slices[k] = IoSlice::new(&header);
        slices[k + 1] = IoSlice::new(payload);
        let slices = &slices[..k + 2];
        let end = at + header.len() + n;
        let next = match level + 1 < DIRECT_FRAMES {
            true => ready.pop(),
            false => None,
        };
        let mut ids = [0; DIRECT_FRAMES];
        ids[..level].copy_from_slice(above);
        ids[level] = id;
        let ids = &ids[..=level];
        let written = match next {
            Some(next) => write_across(
                streams,
                ready,
                Across {
                    waker: next,
                    prior: slices,
                    above: ids,
                    open_credit,
                },
                write,
                out,
                turns,
                leftover,
            ),
            None => go(write, slices),
        };
        // What the write took of this level's frame.
        let sent = match written {
            Ok(Some(Poll::Ready(taken))) if taken >= end => true,
            // Cut by the write (or the first frame of a write that took
            // nothing): its rest goes next.
            Ok(Some(Poll::Ready(taken))) if taken > at || level == 0 => {
                match (taken - at).checked_sub(header.len()) {
                    Some(done) => out.extend_from_slice(payload.get(done..).unwrap_or(&[])),
                    None => {
                        out.extend_from_slice(header.get(taken - at..).unwrap_or(&[]));
                        out.extend_from_slice(payload);
                    }
                }
                true
            }
            _ => false,
        };
        let sent = if sent { n } else { 0 };
        turns.push((Arc::clone(&waker), sent));
        (Some(written), sent)
    });
    match polled {
        Poll::Ready(Ok(Some(written))) => written,
        // Pending, closed, or not a large frame: the stream waits.
        _ => {
            *leftover = Some(waker);
            match write {
                Some(write) => go(write, prior),
                None => Ok(None),
            }
        }
    }
}

/// Writes up to `most` data frames of stream `id` from `buf` (the front of
/// its pipe) in one vectored write, and a short frame after
/// [`DIRECT_FRAMES`] full ones if that ends `buf`; the part of a frame the write did not
/// take goes to `out`, to be sent before anything else. Returns what was
/// sent and the payload bytes consumed from `buf`.
fn write_direct(
    id: u32,
    buf: &[u8],
    most: usize,
    write: DirectWrite<'_, '_>,
    out: &mut Vec<u8>,
) -> (io::Result<Sent>, usize) {
    let mut headers = [[0; DATA_HEADER_LEN]; DIRECT_FRAMES + 1];
    let mut payloads: [&[u8]; DIRECT_FRAMES + 1] = [&[]; DIRECT_FRAMES + 1];
    let mut frames = 0;
    let mut rest = buf;
    let most = most.min(DIRECT_FRAMES);
    // A short last frame goes with full ones rather than in a write of its
    // own (a stream's full pipe is 4 full frames and 4 bytes, say).
    let tail = |frames: usize, rest: &[u8]| {
        most == DIRECT_FRAMES && frames == most && rest.len() < DIRECT_MIN
    };
    while !rest.is_empty() && (frames < most || tail(frames, rest)) {
        let (payload, after) = rest.split_at(rest.len().min(MAX_PAYLOAD_LEN));
        // At most 65535 by the line above.
        headers[frames] = Frame::data_header(id, payload.len() as u16);
        payloads[frames] = payload;
        rest = after;
        frames += 1;
    }
    let mut slices = [IoSlice::new(&[]); 2 * (DIRECT_FRAMES + 1)];
    for (i, (header, payload)) in headers.iter().zip(&payloads).take(frames).enumerate() {
        slices[2 * i] = IoSlice::new(header);
        slices[2 * i + 1] = IoSlice::new(payload);
    }
    let written = match write(&slices[..2 * frames]) {
        Poll::Ready(Ok(written)) => written,
        Poll::Ready(Err(e)) => return (Err(e), 0),
        Poll::Pending => return (Ok(Sent::WouldBlock), 0),
    };
    // Whole frames the write took, then the one it took part of, whose
    // rest must go out next (the first frame goes on whatever happened).
    let mut left = written;
    let mut consumed = 0;
    let mut sent = 0;
    for (header, payload) in headers.iter().zip(&payloads).take(frames) {
        let len = header.len() + payload.len();
        if left >= len {
            left -= len;
        } else if left > 0 || sent == 0 {
            match left.checked_sub(header.len()) {
                Some(taken) => out.extend_from_slice(payload.get(taken..).unwrap_or(&[])),
                None => {
                    out.extend_from_slice(header.get(left..).unwrap_or(&[]));
                    out.extend_from_slice(payload);
                }
            }
            left = 0;
        } else {
            break;
        }
        consumed += payload.len();
        sent += 1;
    }
    (Ok(Sent::Direct(written, sent)), consumed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes of `frames` frames of stream 7 cut from `buf`, as sent.
    fn encoded(buf: &[u8], frames: usize) -> Vec<u8> {
        let mut wire = Vec::new();
        for payload in buf.chunks(MAX_PAYLOAD_LEN).take(frames) {
            Frame::data(7, payload).unwrap().encode_to_vec(&mut wire);
        }
        wire
    }

    /// Runs `write_direct` on `buf` with a link that takes `take` bytes;
    /// returns the bytes the link took followed by `out`, the payload
    /// consumed and the frames counted.
    fn direct(buf: &[u8], most: usize, take: usize) -> (Vec<u8>, usize, u64) {
        let mut link = Vec::new();
        let mut write = |slices: &[IoSlice<'_>]| {
            let mut left = take;
            for slice in slices {
                let n = left.min(slice.len());
                link.extend_from_slice(&slice[..n]);
                left -= n;
            }
            Poll::Ready(Ok(take.min(slices.iter().map(|s| s.len()).sum())))
        };
        let mut out = Vec::new();
        let (sent, consumed) = write_direct(7, buf, most, &mut write, &mut out);
        let Ok(Sent::Direct(written, frames)) = sent else {
            panic!("not a direct write");
        };
        assert_eq!(written, link.len(), "what the write returned");
        link.extend_from_slice(&out);
        (link, consumed, frames)
    }

    #[test]
    fn whole_frames_then_the_rest_of_a_cut_one_and_nothing_after_it() {
        let buf: Vec<u8> = (0..5 * MAX_PAYLOAD_LEN + 100).map(|i| i as u8).collect();
        let frame = DATA_HEADER_LEN + MAX_PAYLOAD_LEN;
        // (bytes the link takes, frames that must end up sent).
        let cases = [
            (0, 1),
            (3, 1),
            (DATA_HEADER_LEN, 1),
            (DATA_HEADER_LEN + 10, 1),
            (frame, 1),
            (frame + 2, 2),
            (2 * frame, 2),
            (3 * frame + 100, 4),
            (4 * frame, 4),
        ];
        for (take, frames) in cases {
            let (wire, consumed, counted) = direct(&buf, DIRECT_FRAMES, take);
            assert_eq!(counted, frames as u64, "take {take}");
            assert_eq!(consumed, frames * MAX_PAYLOAD_LEN, "take {take}");
            assert_eq!(wire, encoded(&buf, frames), "take {take}");
        }
    }

    #[test]
    fn one_frame_when_others_wait_and_a_short_last_frame() {
        let buf: Vec<u8> = (0..MAX_PAYLOAD_LEN + 100).map(|i| i as u8).collect();
        let (wire, consumed, frames) = direct(&buf, 1, usize::MAX);
        assert_eq!((consumed, frames), (MAX_PAYLOAD_LEN, 1));
        assert_eq!(wire, encoded(&buf, 1));
        let (wire, consumed, frames) = direct(&buf, DIRECT_FRAMES, usize::MAX);
        assert_eq!((consumed, frames), (buf.len(), 2));
        assert_eq!(wire, encoded(&buf, 2));
    }

    #[test]
    fn a_short_last_frame_goes_with_four_full_ones_when_the_stream_is_alone() {
        // A full 256 KiB pipe: four full frames and 4 bytes.
        let buf: Vec<u8> = (0..4 * MAX_PAYLOAD_LEN + 4).map(|i| i as u8).collect();
        let (wire, consumed, frames) = direct(&buf, DIRECT_FRAMES, usize::MAX);
        assert_eq!((consumed, frames), (buf.len(), 5));
        assert_eq!(wire, encoded(&buf, 5));
        // With others waiting, one frame.
        let (_, consumed, frames) = direct(&buf, 1, usize::MAX);
        assert_eq!((consumed, frames), (MAX_PAYLOAD_LEN, 1));
        // A last frame large enough to go straight on its own waits its turn.
        let buf: Vec<u8> = (0..4 * MAX_PAYLOAD_LEN + DIRECT_MIN)
            .map(|i| i as u8)
            .collect();
        let (wire, consumed, frames) = direct(&buf, DIRECT_FRAMES, usize::MAX);
        assert_eq!((consumed, frames), (4 * MAX_PAYLOAD_LEN, 4));
        assert_eq!(wire, encoded(&buf, 4));
        // The short frame's header or payload cut by the write.
        let frame = DATA_HEADER_LEN + MAX_PAYLOAD_LEN;
        let buf: Vec<u8> = (0..4 * MAX_PAYLOAD_LEN + 4).map(|i| i as u8).collect();
        for take in [4 * frame + 2, 4 * frame + DATA_HEADER_LEN + 1] {
            let (wire, consumed, frames) = direct(&buf, DIRECT_FRAMES, take);
            assert_eq!((consumed, frames), (buf.len(), 5), "take {take}");
            assert_eq!(wire, encoded(&buf, 5), "take {take}");
        }
    }
}
