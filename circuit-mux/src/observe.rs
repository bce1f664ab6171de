//! An optional per-stream observer: told when the mux closes a direction
//! of that stream, and why. A router uses it to say which hop closed a
//! stream it forwards (PROTOCOL.md section 2.4) without a task per stream.

use std::fmt;

use circuit_stream::Writer;

/// Which direction of a stream a [`StreamClose`] is about, seen from this
/// end of the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseDirection {
    /// The peer-to-us direction: the mux closed the stream's sink (the pipe
    /// the peer's bytes go to), passing the epitaph on to its reader.
    FromPeer,
    /// The us-to-peer direction: [`Mux::close_streams`](crate::Mux::close_streams)
    /// cut it; the peer gets a close frame carrying the epitaph if it knows
    /// the stream.
    ToPeer,
}

/// Why the mux closed a direction of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseCause {
    /// The peer's close frame for the stream arrived (only
    /// [`CloseDirection::FromPeer`]); the epitaph is the peer's, unchanged.
    Peer,
    /// The link ended with the stream open (only
    /// [`CloseDirection::FromPeer`]); the epitaph is the link's, the one
    /// every stream of the link ends with.
    LinkEnded,
    /// [`Mux::close_streams`](crate::Mux::close_streams) (or
    /// [`Core::close_streams`](crate::Core::close_streams)) cut the stream;
    /// the epitaph is the one it was given.
    StreamsClosed,
}

/// What a [`StreamObserver`] is told: one direction of one stream closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamClose<'a> {
    /// The stream's id on the link.
    pub stream_id: u32,
    /// Which direction closed.
    pub direction: CloseDirection,
    /// Why.
    pub cause: CloseCause,
    /// The epitaph the close carries (`None`: none, or an empty one).
    pub epitaph: Option<&'a str>,
}

/// A callback given to one stream by [`Mux::attach_observed`](crate::Mux::attach_observed)
/// or [`Mux::observe`](crate::Mux::observe).
///
/// It is called at most once per direction, at the moment the mux closes
/// that direction:
///
/// - [`CloseDirection::FromPeer`]: when the mux closes the stream's sink
///   with an epitaph, because the peer's close frame arrived
///   ([`CloseCause::Peer`]), the link ended ([`CloseCause::LinkEnded`]) or
///   the streams were cut ([`CloseCause::StreamsClosed`]). Not called if
///   the sink was closed or dropped by its reader first (nothing is passed
///   on then).
/// - [`CloseDirection::ToPeer`]: only when the streams are cut while this
///   end's direction is still open ([`CloseCause::StreamsClosed`]). A
///   direction that ends because its source ended is not reported: whoever
///   closed the source knows.
///
/// It runs under the mux's lock, on whatever thread drives the link or
/// cuts its streams: keep it short, and never call back into that mux
/// from it. It is dropped with the stream.
pub struct StreamObserver(Box<dyn FnMut(&StreamClose<'_>) + Send>);

impl StreamObserver {
    /// An observer that calls `f`.
    pub fn new(f: impl FnMut(&StreamClose<'_>) + Send + 'static) -> Self {
        StreamObserver(Box::new(f))
    }
}

impl fmt::Debug for StreamObserver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StreamObserver")
    }
}

/// A stream's observer and how its peer-to-us direction was closed by the
/// mux (kept so that an observer given late can be told).
#[derive(Debug, Default)]
pub(crate) struct Observed {
    observer: Option<StreamObserver>,
    /// Why the mux closed the sink, once it has.
    pub(crate) recv_closed: Option<CloseCause>,
    to_peer_told: bool,
}

impl Observed {
    pub(crate) fn new(observer: Option<StreamObserver>) -> Self {
        Observed {
            observer,
            ..Observed::default()
        }
    }

    pub(crate) fn set(&mut self, observer: StreamObserver) {
        self.observer = Some(observer);
    }

    /// The mux is closing the stream's `sink` with `epitaph` because of
    /// `cause` (call before closing it). First close only; the observer is
    /// told only if the sink is still open (else nothing is passed on). A
    /// stream without an observer pays no look at its sink.
    pub(crate) fn sink_closing(
        &mut self,
        id: u32,
        cause: CloseCause,
        epitaph: &str,
        sink: &Writer,
    ) {
        if self.recv_closed.is_some() {
            return;
        }
        self.recv_closed = Some(cause);
        if self.observer.is_some() && !sink.is_closed() {
            self.tell(id, CloseDirection::FromPeer, cause, epitaph);
        }
    }

    /// The streams were cut while this end's direction was open.
    pub(crate) fn source_cut(&mut self, id: u32, epitaph: &str) {
        if self.observer.is_none() || std::mem::replace(&mut self.to_peer_told, true) {
            return;
        }
        self.tell(
            id,
            CloseDirection::ToPeer,
            CloseCause::StreamsClosed,
            epitaph,
        );
    }

    fn tell(&mut self, id: u32, direction: CloseDirection, cause: CloseCause, epitaph: &str) {
        if let Some(observer) = self.observer.as_mut() {
            (observer.0)(&StreamClose {
                stream_id: id,
                direction,
                cause,
                epitaph: Some(epitaph).filter(|e| !e.is_empty()),
            });
        }
    }
}
