//! What a node tells its application: peers coming and going, and streams
//! that arrived for it.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use circuit_frame::Name;
use circuit_stream::Duplex;
use futures::channel::mpsc;
use futures::Stream;

use crate::node::NodeInner;
use crate::routing::RouteEvent;

/// Peers becoming reachable and unreachable, as a futures `Stream` of
/// [`RouteEvent`]s, oldest first. It never ends on its own.
///
/// The events wait in the node's routing core, bounded (twice the peer
/// table bound plus 1,024; past that, new events are dropped and counted in
/// the snapshot's `events_dropped`). Dropping this handle discards events
/// from then on.
pub struct PeerEvents {
    inner: Arc<NodeInner>,
}

impl PeerEvents {
    pub(crate) fn new(inner: Arc<NodeInner>) -> Self {
        PeerEvents { inner }
    }
}

impl Stream for PeerEvents {
    type Item = RouteEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<RouteEvent>> {
        let mut shared = self.inner.lock();
        match shared.core.poll_event() {
            Some(event) => Poll::Ready(Some(event)),
            None => {
                shared.peer_events_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Drop for PeerEvents {
    fn drop(&mut self) {
        let mut shared = self.inner.lock();
        shared.peer_events_open = false;
        shared.peer_events_waker = None;
        shared.core.drain_events();
    }
}

impl std::fmt::Debug for PeerEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerEvents")
            .field("node", &self.inner.id)
            .finish()
    }
}

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
/// [`PeerEvents`] and every link future dropped.
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
