//! The sending half of the core: frames from streams to the link,
//! round-robin, gathered or written straight from a stream's pipe.

use std::io::{self, IoSlice};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use circuit_frame::{Encode, Frame, MAX_PAYLOAD_LEN};
use circuit_stream::StreamError;

use super::{Core, Recv};
use crate::counters::AtomicCounters;
use crate::ready::StreamWaker;

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

impl Core {
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
                // A stream cut by `close_streams` says so even when its
                // writer had closed cleanly: what it left unsent is gone.
                let epitaph = st.abort.take().unwrap_or_else(|| match err {
                    StreamError::Closed(reason) => reason.unwrap_or_default(),
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
