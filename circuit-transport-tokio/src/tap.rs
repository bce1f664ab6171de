//! A passive tap on a link's bytes: it follows the mux frames going each
//! way to know which streams are open on the wire, so that a link being
//! shut down can tell when it has drained, and can close what is left with
//! an epitaph after its mux is gone.
//!
//! The node layer owns the mux of a link and says nothing about its streams
//! (see "How a link drains" in the crate docs); the frames are simple enough (PROTOCOL 1) to be
//! followed here without touching them.
//!
//! The same file, word for word, is in circuit-transport-tokio and
//! circuit-transport-smol (besides doc-test imports): keep them together.

use std::collections::BTreeMap;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use circuit_frame::{Encode, Frame};
use futures::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

/// The control stream: the first stream the server end opens (PROTOCOL 2.1).
const CONTROL_STREAM: u32 = 1;

/// One end of a link's transport with its frames followed both ways.
/// Clones share the transport: the mux driver uses one, the link task
/// keeps another to close the link after the driver is gone.
pub(crate) struct Tap<IO> {
    shared: Arc<Mutex<TapState<IO>>>,
}

impl<IO> Clone for Tap<IO> {
    fn clone(&self) -> Self {
        Tap {
            shared: Arc::clone(&self.shared),
        }
    }
}

struct TapState<IO> {
    io: IO,
    incoming: FrameFollower,
    outgoing: FrameFollower,
    /// Streams that carried a frame and are not closed both ways.
    streams: BTreeMap<u32, Directions>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Directions {
    ours_closed: bool,
    theirs_closed: bool,
}

/// What the follower saw start: a data frame or a close frame for an id.
#[derive(Debug, Clone, Copy)]
enum Seen {
    Data(u32),
    Close(u32),
}

/// Follows frame boundaries in one direction of a link.
#[derive(Debug, Default)]
struct FrameFollower {
    header: [u8; 8],
    have: usize,
    /// Bytes of payload or epitaph still to skip.
    skip: usize,
}

impl FrameFollower {
    fn at_boundary(&self) -> bool {
        self.have == 0 && self.skip == 0
    }

    fn feed(&mut self, mut bytes: &[u8], seen: &mut impl FnMut(Seen)) {
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                self.skip -= n;
                bytes = &bytes[n..];
                continue;
            }
            // A data header is 6 bytes; a close header 8 (length 0, then the
            // epitaph length).
            let want = if self.have >= 6 && self.length() == 0 {
                8
            } else {
                6
            };
            let n = (want - self.have).min(bytes.len());
            self.header[self.have..self.have + n].copy_from_slice(&bytes[..n]);
            self.have += n;
            bytes = &bytes[n..];
            if self.have == 6 && self.length() > 0 {
                seen(Seen::Data(self.stream_id()));
                self.skip = usize::from(self.length());
                self.have = 0;
            } else if self.have == 8 {
                seen(Seen::Close(self.stream_id()));
                self.skip = usize::from(u16::from_le_bytes([self.header[6], self.header[7]]));
                self.have = 0;
            }
        }
    }

    fn stream_id(&self) -> u32 {
        u32::from_le_bytes([
            self.header[0],
            self.header[1],
            self.header[2],
            self.header[3],
        ])
    }

    fn length(&self) -> u16 {
        u16::from_le_bytes([self.header[4], self.header[5]])
    }
}

impl<IO> TapState<IO> {
    fn saw(&mut self, seen: Seen, ours: bool) {
        match seen {
            Seen::Data(id) => {
                self.streams.entry(id).or_default();
            }
            Seen::Close(id) => {
                // A close for an id never seen is a stream opened and closed
                // empty: nothing to track.
                let Some(dirs) = self.streams.get_mut(&id) else {
                    return;
                };
                if ours {
                    dirs.ours_closed = true;
                } else {
                    dirs.theirs_closed = true;
                }
                if dirs.ours_closed && dirs.theirs_closed {
                    self.streams.remove(&id);
                }
            }
        }
    }
}

fn lock<IO>(m: &Mutex<TapState<IO>>) -> MutexGuard<'_, TapState<IO>> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<IO> Tap<IO> {
    pub(crate) fn new(io: IO) -> Self {
        Tap {
            shared: Arc::new(Mutex::new(TapState {
                io,
                incoming: FrameFollower::default(),
                outgoing: FrameFollower::default(),
                streams: BTreeMap::new(),
            })),
        }
    }

    /// Streams other than the control stream open on the wire.
    pub(crate) fn open_streams(&self) -> usize {
        lock(&self.shared)
            .streams
            .keys()
            .filter(|&&id| id != CONTROL_STREAM)
            .count()
    }
}

impl<IO: AsyncWrite + Unpin> Tap<IO> {
    /// After the mux is gone: sends a close frame carrying `epitaph` on
    /// every stream whose outgoing direction is still open (when the last
    /// frame written was whole), then closes the transport. Returns how
    /// many streams were closed this way.
    pub(crate) async fn close_with(&self, epitaph: &str) -> io::Result<usize> {
        let (bytes, closed) = {
            let state = lock(&self.shared);
            let mut bytes = Vec::new();
            let mut closed = 0;
            if state.outgoing.at_boundary() {
                for (&id, dirs) in &state.streams {
                    if !dirs.ours_closed {
                        Frame::close(id, epitaph).encode_to_vec(&mut bytes);
                        if id != CONTROL_STREAM {
                            closed += 1;
                        }
                    }
                }
            }
            (bytes, closed)
        };
        let mut this = self.clone();
        this.write_all(&bytes).await?;
        this.close().await?;
        Ok(closed)
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Tap<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut guard = lock(&self.shared);
        let state = &mut *guard;
        let n = match Pin::new(&mut state.io).poll_read(cx, buf) {
            Poll::Ready(Ok(n)) => n,
            other => return other,
        };
        let mut seen = Vec::new();
        state
            .incoming
            .feed(buf.get(..n).unwrap_or(&[]), &mut |s| seen.push(s));
        for s in seen {
            state.saw(s, false);
        }
        Poll::Ready(Ok(n))
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Tap<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut guard = lock(&self.shared);
        let state = &mut *guard;
        let n = match Pin::new(&mut state.io).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => n,
            other => return other,
        };
        let mut seen = Vec::new();
        state
            .outgoing
            .feed(buf.get(..n).unwrap_or(&[]), &mut |s| seen.push(s));
        for s in seen {
            state.saw(s, true);
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut lock(&self.shared).io).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut lock(&self.shared).io).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn follow(bytes: &[u8], chunk: usize) -> Vec<String> {
        let mut follower = FrameFollower::default();
        let mut seen = Vec::new();
        for piece in bytes.chunks(chunk) {
            follower.feed(piece, &mut |s| seen.push(format!("{s:?}")));
        }
        assert!(follower.at_boundary());
        seen
    }

    #[test]
    fn frames_are_followed_whatever_the_read_sizes() {
        let mut wire = Vec::new();
        Frame::data(1, b"hello").unwrap().encode_to_vec(&mut wire);
        Frame::close(2, "bye").encode_to_vec(&mut wire);
        Frame::data(3, &[7; 300]).unwrap().encode_to_vec(&mut wire);
        Frame::close(1, "").encode_to_vec(&mut wire);
        let expected = ["Data(1)", "Close(2)", "Data(3)", "Close(1)"];
        for chunk in [1, 2, 5, 7, 64, wire.len()] {
            assert_eq!(follow(&wire, chunk), expected, "chunks of {chunk}");
        }
    }

    #[test]
    fn a_stream_closed_both_ways_is_forgotten_and_the_control_stream_not_counted() {
        let tap = Tap::new(futures::io::Cursor::new(Vec::<u8>::new()));
        let mut state = lock(&tap.shared);
        state.saw(Seen::Data(1), true);
        state.saw(Seen::Data(4), false);
        state.saw(Seen::Close(9), false);
        drop(state);
        assert_eq!(tap.open_streams(), 1);
        let mut state = lock(&tap.shared);
        state.saw(Seen::Close(4), false);
        state.saw(Seen::Close(4), true);
        drop(state);
        assert_eq!(tap.open_streams(), 0);
    }
}
