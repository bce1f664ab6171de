//! The node: its identity, its routing core, its links, and routed streams
//! opened from it (PROTOCOL 2.4); the link futures it runs; its peer
//! events.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use circuit_frame::{Name, Quality, RoutingHeader};
use circuit_mux::{Driver, Incoming, Mux, Role as MuxRole};
use circuit_stream::{duplex_pair, Duplex, DEFAULT_CAPACITY};
use futures::channel::mpsc;
use futures::io::{AsyncRead, AsyncWrite};
use futures::{SinkExt, Stream};

use crate::events::{IncomingStream, IncomingStreams};
use crate::link;
use crate::link::control::{LinkControl, LinkSide};
use crate::link::port::LinkPort;
use crate::report::ForwardReports;
use crate::routing::{Role, RouteEvent};
use crate::snapshot::NodeSnapshot;
use crate::state::NodeInner;
use crate::{NodeConfig, NodeError};

/// A circuit node: an id, a protocol, links to other nodes and the routes
/// learned over them. Clone it freely: clones are handles on one node.
///
/// Made with [`Node::new`], which also returns the node's [`PeerEvents`]
/// and [`IncomingStreams`]. Links are added with [`Node::link`] (a ready
/// mux) or [`Node::link_io`] (any futures-io byte stream); each returns a
/// future that runs that link until it ends. Nothing is spawned: poll or
/// spawn the link futures on the executor you use.
#[derive(Clone)]
pub struct Node {
    pub(crate) inner: Arc<NodeInner>,
}

impl Node {
    /// A node with id `id` speaking application protocol `protocol`, set up
    /// by `config`. Returns the node, its peer events and its incoming
    /// streams. Fails if `id` or `protocol` is longer than 255 bytes.
    pub fn new(
        id: &str,
        protocol: &str,
        config: NodeConfig,
    ) -> Result<(Node, PeerEvents, IncomingStreams), NodeError> {
        let id = Name::new(id)?;
        let protocol = Name::new(protocol)?;
        let (incoming_tx, incoming_rx) = mpsc::channel(config.incoming_queue);
        let inner = Arc::new(NodeInner::new(id, protocol, config, incoming_tx));
        let events = PeerEvents::new(Arc::clone(&inner));
        Ok((Node { inner }, events, IncomingStreams::new(incoming_rx)))
    }

    /// This node's id.
    pub fn id(&self) -> &Name {
        &self.inner.id
    }

    /// The application protocol both ends of a link must share.
    pub fn protocol(&self) -> &Name {
        &self.inner.protocol
    }

    /// Whether this node routes for others.
    pub fn role(&self) -> Role {
        self.inner.config.role
    }

    /// Opens a routed stream to `peer` and returns it. The stream starts, in
    /// this direction, with `RoutingHeader { destination: peer, source: self }`
    /// (written here); the application's bytes follow.
    ///
    /// The best route is taken; if its link has just died the next one is.
    /// A stream to this node's own id is delivered to its own
    /// [`IncomingStreams`] without a link (and waits while that queue is
    /// full). Fails with [`NodeError::NoSuchPeer`] when no route is known.
    pub async fn connect_to_peer(&self, peer: &str) -> Result<Duplex, NodeError> {
        let peer = Name::new(peer)?;
        if peer == self.inner.id {
            return self.connect_to_self().await;
        }
        for port in self.inner.route_ports(&peer) {
            let Some(mux) = port.mux() else { continue };
            let stream = match mux.open() {
                Ok(stream) => stream,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "route unusable, trying the next");
                    continue;
                }
            };
            let (reader, writer) = stream.into_split();
            let header = RoutingHeader {
                destination: peer.clone(),
                source: self.inner.id.clone(),
            };
            writer.write_message(&header).await?;
            return Ok(Duplex::from_parts(reader, writer));
        }
        Err(NodeError::NoSuchPeer { peer })
    }

    async fn connect_to_self(&self) -> Result<Duplex, NodeError> {
        let (ours, theirs) = duplex_pair(DEFAULT_CAPACITY);
        let incoming = IncomingStream {
            source: self.inner.id.clone(),
            stream: theirs,
            origin: None,
        };
        let mut tx = self.inner.incoming_tx.clone();
        tx.send(incoming)
            .await
            .map_err(|_| NodeError::NotAccepting {
                node: self.inner.id.clone(),
            })?;
        Ok(ours)
    }

    /// Whether `peer` is reachable now.
    pub fn is_reachable(&self, peer: &str) -> bool {
        self.inner.is_reachable(peer)
    }

    /// The nodes reachable now, in name order.
    pub fn reachable_peers(&self) -> Vec<Name> {
        self.inner.reachable_peers()
    }

    /// A copy of the routing table and of every link's state, for tools,
    /// tests and a command line. Its `Display` is a table for people.
    pub fn snapshot(&self) -> NodeSnapshot {
        self.inner.snapshot()
    }

    /// Subscribes to this node's reports on the streams it forwards and
    /// refuses (PROTOCOL 2.4): for each direction of a forwarded stream
    /// that carries a close on, and for each refused stream, a
    /// [`ForwardEnd`](crate::ForwardEnd) saying which neighbour's close it
    /// was or why this node closed it, with the epitaph passed on
    /// unchanged. The same reports go to `tracing` as `DEBUG` events.
    ///
    /// Opt-in: with no subscription (and those events off) forwarding
    /// watches nothing. Streams forwarded while a subscription is open are
    /// reported; those spliced before are not (unless those events were on
    /// then). Opening a new subscription
    /// ends the previous one. Bounded: see [`ForwardReports`].
    pub fn forward_reports(&self) -> ForwardReports {
        self.inner.reports.subscribe()
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.inner.id)
            .field("protocol", &self.inner.protocol)
            .field("role", &self.inner.config.role)
            .finish()
    }
}

impl Node {
    /// Runs a link over a ready mux (the seed's
    /// `multi_stream_node_connection`), in the mux's role, with link
    /// quality `quality`.
    ///
    /// The returned future does everything the link needs and nothing runs
    /// without it: poll it or spawn it. It completes when the link ends:
    /// `Ok(())` when the transport closed cleanly, otherwise the error
    /// ([`NodeError::VersionMismatch`], [`NodeError::ProtocolMismatch`],
    /// [`NodeError::Handshake`], [`NodeError::Control`],
    /// [`NodeError::Mux`]). On a handshake error the mux and its transport
    /// are dropped at once. Dropping the future closes the link too.
    pub fn link<IO>(
        &self,
        mux: Mux,
        incoming: Incoming,
        driver: Driver<IO>,
        quality: Quality,
    ) -> impl Future<Output = Result<(), NodeError>> + Send + 'static
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let port = LinkPort::new(mux.clone());
        let (_, side) = LinkSide::new(Arc::clone(&port));
        self.run(port, mux, incoming, driver, quality, side)
    }

    /// Runs a link over any futures-io byte stream (the seed's
    /// `multi_stream_node_connection_to_async`): a mux is made on `io` in
    /// `role` (`Server` for the end that accepted the transport) with the
    /// node's [`NodeConfig::mux`](crate::NodeConfig::mux) settings. See
    /// [`link`](Self::link) for the future.
    pub fn link_io<IO>(
        &self,
        io: IO,
        role: MuxRole,
        quality: Quality,
    ) -> impl Future<Output = Result<(), NodeError>> + Send + 'static
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.link_io_with_control(io, role, quality).1
    }

    /// Runs a link over `io` as [`link_io`](Self::link_io) does, and
    /// returns a [`LinkControl`] on it beside its future: the link's open
    /// streams, a wait for them to drain, and a close with an epitaph
    /// ([`LinkControl::close`] makes the future return `Ok(())` once the
    /// close frames are flushed and the transport closed).
    pub fn link_io_with_control<IO>(
        &self,
        io: IO,
        role: MuxRole,
        quality: Quality,
    ) -> (
        LinkControl,
        impl Future<Output = Result<(), NodeError>> + Send + 'static,
    )
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mux, incoming, driver) = Mux::new(io, role, self.inner.config.mux.clone());
        let port = LinkPort::new(mux.clone());
        let (control, side) = LinkSide::new(Arc::clone(&port));
        (
            control,
            self.run(port, mux, incoming, driver, quality, side),
        )
    }

    fn run<IO>(
        &self,
        port: Arc<LinkPort>,
        mux: Mux,
        incoming: Incoming,
        driver: Driver<IO>,
        quality: Quality,
        side: LinkSide,
    ) -> impl Future<Output = Result<(), NodeError>> + Send + 'static
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let node = Arc::clone(&self.inner);
        link::run_in_span(node, port, mux, incoming, driver, quality, side)
    }
}

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
        self.inner.poll_peer_event(cx)
    }
}

impl Drop for PeerEvents {
    fn drop(&mut self) {
        self.inner.close_peer_events();
    }
}

impl std::fmt::Debug for PeerEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerEvents")
            .field("node", &self.inner.id)
            .finish()
    }
}
