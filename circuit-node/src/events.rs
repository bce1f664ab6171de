//! Streams that arrived for a node, as its application receives them.
//! Plain types: the node's [`PeerEvents`](crate::PeerEvents) live with
//! the node, whose state they read.

use std::pin::Pin;
use std::task::{Context, Poll};

use circuit_frame::Name;
use circuit_stream::Duplex;
use futures::channel::mpsc;
use futures::Stream;

/// A routed stream that arrived for this node: its routing header has been
/// read; what follows is the opener's application bytes.
#[derive(Debug)]
pub struct IncomingStream {
    /// The node that opened it, as its routing header says (not
    /// authenticated: see the crate docs).
    pub source: Name,
    /// The stream: read what the source writes, write back to it.
    pub stream: Duplex,
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
