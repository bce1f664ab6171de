//! The connection layer (PROTOCOL 2.5): streams grouped into connections,
//! each with its own stream-id namespace.
//!
//! After the routing header every stream of this layer carries
//! `ConnectionHeader { conn_id, stream_id }`. [`ConnectionNode::connect_to_peer`]
//! picks a random `conn_id` and opens stream 0 at once; the connecting end
//! then allocates ids 2, 4, 6, ..., the accepting end 1, 3, 5, .... The
//! accepting end learns of the connection from its stream 0
//! ([`IncomingConnections`]); later streams are matched to their
//! connection by (source node, `conn_id`) and picked up with
//! [`Connection::bind_stream`].
//!
//! Malformed streams (fewer than 16 header bytes, an unknown `conn_id` with
//! a non-zero stream id, a stream id of the wrong parity, a duplicate) are
//! dropped with a `tracing` warning; nothing panics, the node goes on.
//!
//! Memory is bounded: a connection's table entry lives as long as a
//! [`Connection`] handle does (drop every clone to end it; its streams
//! still open keep working, new ones for it are refused); at most
//! [`MAX_UNBOUND_STREAMS`] streams wait for `bind_stream` per connection,
//! and at most [`MAX_HEADER_READS`] incoming streams have their header read
//! at once.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};

use circuit_frame::{ConnectionHeader, Decode, Decoded, Name};
use circuit_stream::{Duplex, StreamError};
use futures::channel::oneshot;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{Stream, StreamExt};

use crate::sync::lock;
use crate::{IncomingStream, IncomingStreams, Node, NodeError};

/// Streams of one connection that may wait for [`Connection::bind_stream`].
pub const MAX_UNBOUND_STREAMS: usize = 64;
/// Incoming streams whose connection header is read at once.
pub const MAX_HEADER_READS: usize = 256;

type Key = (Name, u64);

/// The connections of a [`ConnectionNode`], by peer and `conn_id`. Its
/// lock and each connection's `streams` are leaves of the lock order
/// (`crate::sync`).
#[derive(Default)]
struct Table {
    connections: HashMap<Key, Weak<ConnShared>>,
}

/// A node that speaks the connection layer. Clone it freely.
#[derive(Clone)]
pub struct ConnectionNode {
    node: Node,
    table: Arc<Mutex<Table>>,
}

struct ConnShared {
    node: Node,
    peer: Name,
    conn_id: u64,
    is_client: bool,
    next_id: AtomicU64,
    streams: Mutex<ConnStreams>,
    table: Weak<Mutex<Table>>,
}

#[derive(Default)]
struct ConnStreams {
    unbound: HashMap<u64, Duplex>,
    binding: HashMap<u64, oneshot::Sender<Duplex>>,
}

/// One connection between two nodes. Clone it freely; the connection ends
/// (for new streams) when every clone is dropped.
#[derive(Clone)]
pub struct Connection {
    shared: Arc<ConnShared>,
}

/// A connection another node opened to this one, with its stream 0.
#[derive(Debug)]
pub struct NewConnection {
    /// The connection.
    pub connection: Connection,
    /// Its stream 0, opened with it.
    pub stream: Duplex,
}

impl ConnectionNode {
    /// Puts the connection layer on `node`, taking its incoming streams.
    /// Poll the returned [`IncomingConnections`] for as long as the node
    /// runs: it reads the header of every incoming stream, so streams of
    /// existing connections reach `bind_stream` only while it is polled.
    pub fn new(node: Node, incoming: IncomingStreams) -> (ConnectionNode, IncomingConnections) {
        let table = Arc::new(Mutex::new(Table::default()));
        let accept = IncomingConnections {
            node: node.clone(),
            table: Arc::clone(&table),
            incoming: Some(incoming),
            headers: FuturesUnordered::new(),
        };
        (ConnectionNode { node, table }, accept)
    }

    /// The node underneath.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// How many connections the table holds (live handles only count once
    /// their dead entries are swept, which happens as handles drop).
    pub fn connections(&self) -> usize {
        lock(&self.table).connections.len()
    }

    /// Opens a connection to `peer`: a random `conn_id`, and stream 0 opened
    /// at once (which proves the peer reachable). Refuses this node's own id
    /// ([`NodeError::Loopback`]).
    pub async fn connect_to_peer(&self, peer: &str) -> Result<(Connection, Duplex), NodeError> {
        let peer = Name::new(peer)?;
        if peer == *self.node.id() {
            return Err(NodeError::Loopback);
        }
        let conn_id: u64 = fastrand::u64(..);
        let shared = Arc::new(ConnShared {
            node: self.node.clone(),
            peer: peer.clone(),
            conn_id,
            is_client: true,
            next_id: AtomicU64::new(2),
            streams: Mutex::new(ConnStreams::default()),
            table: Arc::downgrade(&self.table),
        });
        lock(&self.table)
            .connections
            .insert((peer, conn_id), Arc::downgrade(&shared));
        let connection = Connection { shared };
        let stream = connection.open(0).await?;
        Ok((connection, stream))
    }
}

impl Connection {
    /// The node at the other end.
    pub fn from(&self) -> &Name {
        &self.shared.peer
    }

    /// Whether this end opened the connection.
    pub fn is_client(&self) -> bool {
        self.shared.is_client
    }

    /// The connection's id, chosen by the connecting end.
    pub fn conn_id(&self) -> u64 {
        self.shared.conn_id
    }

    /// Opens a new stream of this connection and returns its id and the
    /// stream. Ids go 2, 4, 6, ... at the connecting end, 1, 3, 5, ... at
    /// the accepting end.
    pub async fn alloc_stream(&self) -> Result<(u64, Duplex), NodeError> {
        let id = self.shared.next_id.fetch_add(2, Ordering::Relaxed);
        Ok((id, self.open(id).await?))
    }

    /// Waits for the peer's stream `id` of this connection and returns it.
    /// `id` must be of the peer's parity (odd if this end connected, even
    /// and non-zero if it accepted) and not bound already.
    pub async fn bind_stream(&self, id: u64) -> Result<Duplex, NodeError> {
        if !self.shared.peer_allocates(id) {
            return Err(NodeError::BadStreamId {
                stream_id: id,
                reason: "not an id the peer allocates",
            });
        }
        let rx = {
            let mut streams = lock(&self.shared.streams);
            if let Some(stream) = streams.unbound.remove(&id) {
                return Ok(stream);
            }
            if streams.binding.contains_key(&id) {
                return Err(NodeError::BadStreamId {
                    stream_id: id,
                    reason: "already being bound",
                });
            }
            let (tx, rx) = oneshot::channel();
            streams.binding.insert(id, tx);
            rx
        };
        rx.await.map_err(|_| NodeError::ConnectionClosed)
    }

    async fn open(&self, id: u64) -> Result<Duplex, NodeError> {
        let stream = self
            .shared
            .node
            .connect_to_peer(self.shared.peer.as_str())
            .await?;
        let header = ConnectionHeader {
            conn_id: self.shared.conn_id,
            stream_id: id,
        };
        stream.writer().write_message(&header).await?;
        Ok(stream)
    }
}

impl ConnShared {
    fn peer_allocates(&self, id: u64) -> bool {
        let odd = id % 2 == 1;
        if self.is_client {
            odd
        } else {
            !odd && id != 0
        }
    }

    /// Hands a stream the peer opened to its binder, or keeps it.
    fn deliver(&self, id: u64, stream: Duplex) {
        if !self.peer_allocates(id) {
            tracing::warn!(conn_id = self.conn_id, stream_id = id, peer = %self.peer,
                "connection stream of the wrong parity dropped");
            return;
        }
        let mut streams = lock(&self.streams);
        if let Some(tx) = streams.binding.remove(&id) {
            if let Err(stream) = tx.send(stream) {
                streams.unbound.insert(id, stream);
            }
            return;
        }
        if streams.unbound.contains_key(&id) || streams.unbound.len() >= MAX_UNBOUND_STREAMS {
            tracing::warn!(conn_id = self.conn_id, stream_id = id, peer = %self.peer,
                "connection stream dropped: duplicate id or too many unbound streams");
            return;
        }
        streams.unbound.insert(id, stream);
    }
}

impl Drop for ConnShared {
    fn drop(&mut self) {
        if let Some(table) = self.table.upgrade() {
            let mut table = lock(&table);
            let key = (self.peer.clone(), self.conn_id);
            if table
                .connections
                .get(&key)
                .is_some_and(|w| w.strong_count() == 0)
            {
                table.connections.remove(&key);
            }
        }
    }
}

/// Connections other nodes opened to this one, as a futures `Stream` of
/// [`NewConnection`]s. Polling it also routes every later stream to its
/// connection. Ends when the node's incoming streams end.
pub struct IncomingConnections {
    node: Node,
    table: Arc<Mutex<Table>>,
    incoming: Option<IncomingStreams>,
    headers: FuturesUnordered<BoxFuture<'static, Option<(Name, ConnectionHeader, Duplex)>>>,
}

/// Reads the 16-byte connection header of an incoming stream.
async fn read_header(incoming: IncomingStream) -> Option<(Name, ConnectionHeader, Duplex)> {
    let IncomingStream { source, stream, .. } = incoming;
    let read = stream.reader().read(
        ConnectionHeader::LEN,
        |buf| match ConnectionHeader::decode(buf) {
            Ok(Decoded::Complete { message, consumed }) => (Some(message), consumed),
            _ => (None, 0),
        },
    );
    match read.await {
        Ok(Some(header)) => Some((source, header, stream)),
        Ok(None) => None,
        Err(StreamError::Closed(epitaph)) => {
            tracing::warn!(%source, ?epitaph,
                "stream closed before its 16-byte connection header: dropped");
            None
        }
        Err(e) => {
            tracing::warn!(%source, error = %e, "connection header unreadable: stream dropped");
            None
        }
    }
}

impl IncomingConnections {
    /// Routes one stream with a read header; `Some` for a new connection.
    fn dispatch(
        &self,
        source: Name,
        header: ConnectionHeader,
        stream: Duplex,
    ) -> Option<NewConnection> {
        let ConnectionHeader { conn_id, stream_id } = header;
        if source == *self.node.id() {
            tracing::warn!(conn_id, stream_id, "loopback connection stream refused");
            return None;
        }
        let key = (source.clone(), conn_id);
        let mut table = lock(&self.table);
        if let Some(existing) = table.connections.get(&key).and_then(Weak::upgrade) {
            drop(table);
            if stream_id == 0 {
                tracing::warn!(conn_id, %source, "second stream 0 for a connection dropped");
            } else {
                existing.deliver(stream_id, stream);
            }
            return None;
        }
        if stream_id != 0 {
            tracing::warn!(conn_id, stream_id, %source,
                "stream for an unknown connection dropped");
            return None;
        }
        let shared = Arc::new(ConnShared {
            node: self.node.clone(),
            peer: source,
            conn_id,
            is_client: false,
            next_id: AtomicU64::new(1),
            streams: Mutex::new(ConnStreams::default()),
            table: Arc::downgrade(&self.table),
        });
        table.connections.insert(key, Arc::downgrade(&shared));
        Some(NewConnection {
            connection: Connection { shared },
            stream,
        })
    }
}

impl Stream for IncomingConnections {
    type Item = NewConnection;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<NewConnection>> {
        let this = &mut *self;
        loop {
            while this.headers.len() < MAX_HEADER_READS {
                let Some(incoming) = this.incoming.as_mut() else {
                    break;
                };
                match incoming.poll_next_unpin(cx) {
                    Poll::Ready(Some(stream)) => this.headers.push(Box::pin(read_header(stream))),
                    Poll::Ready(None) => this.incoming = None,
                    Poll::Pending => break,
                }
            }
            match this.headers.poll_next_unpin(cx) {
                Poll::Ready(Some(Some((source, header, stream)))) => {
                    if let Some(new) = this.dispatch(source, header, stream) {
                        return Poll::Ready(Some(new));
                    }
                }
                Poll::Ready(Some(None)) => {}
                Poll::Ready(None) if this.incoming.is_none() => return Poll::Ready(None),
                Poll::Ready(None) | Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl std::fmt::Debug for ConnectionNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionNode")
            .field("node", &self.node)
            .field("connections", &self.connections())
            .finish()
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.shared.peer)
            .field("conn_id", &self.shared.conn_id)
            .field("is_client", &self.shared.is_client)
            .finish()
    }
}

impl std::fmt::Debug for IncomingConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncomingConnections")
            .field("headers_pending", &self.headers.len())
            .finish()
    }
}
