//! Streams that arrived for a node, as its application receives them.
//! Plain types: the node's [`PeerEvents`](crate::PeerEvents) live with
//! the node, whose state they read.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use circuit_frame::Name;
use circuit_stream::Duplex;
use futures::channel::mpsc;
use futures::Stream;

use crate::link::port::LinkPort;

/// A routed stream that arrived for this node: its routing header has been
/// read; what follows is the opener's application bytes.
#[derive(Debug)]
pub struct IncomingStream {
    /// The node that opened it, as its routing header says (not
    /// authenticated: see the crate docs).
    pub source: Name,
    /// The stream: read what the source writes, write back to it.
    pub stream: Duplex,
    /// The link it came in on and its id there; `None` for a stream this
    /// node opened to itself.
    pub(crate) origin: Option<(Arc<LinkPort>, u32)>,
}

impl IncomingStream {
    /// Echoes the stream inside the link it came in on, from now on: every
    /// byte the source sends goes back to it straight from where it
    /// arrived, with no task and no copy, and the stream closes after the
    /// source closes its side and the last byte went back (see
    /// `circuit_mux::Mux::loop_back`). Bytes already written on the stream
    /// go first, then those not yet read, in order.
    ///
    /// Gives the stream back when that cannot be done, to be echoed by
    /// copying: a stream this node opened to itself (no link), or one whose
    /// link has ended or whose source has closed its side already.
    pub fn loop_back(self) -> Result<(), IncomingStream> {
        let Some((port, id)) = self.origin else {
            return Err(self);
        };
        let (reader, writer) = self.stream.into_split();
        port.loop_back(id, reader, writer)
            .map_err(|(reader, writer)| IncomingStream {
                source: self.source,
                stream: Duplex::from_parts(reader, writer),
                origin: Some((port, id)),
            })
    }
}

/// Streams other nodes opened to this one, as a futures `Stream`. It ends
/// when the node is gone: every [`Node`](crate::Node) handle, its
/// [`PeerEvents`](crate::PeerEvents) and every link future dropped.
///
/// Bounded: at most [`NodeConfig::incoming_queue`](crate::NodeConfig::incoming_queue)
/// streams (plus one per link delivering) wait here; beyond that each new
/// stream waits at its own link, delaying no other stream. Dropping this
/// handle makes the node refuse incoming streams with an epitaph.
#[derive(Debug)]
pub struct IncomingStreams {
    rx: mpsc::Receiver<IncomingStream>,
}

impl IncomingStreams {
    pub(crate) fn new(rx: mpsc::Receiver<IncomingStream>) -> Self {
        IncomingStreams { rx }
    }
}

impl Stream for IncomingStreams {
    type Item = IncomingStream;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<IncomingStream>> {
        Pin::new(&mut self.rx).poll_next(cx)
    }
}
