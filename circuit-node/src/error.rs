//! The one error type of the node layer.

use circuit_frame::{FrameError, Name};
use circuit_mux::MuxError;
use circuit_stream::StreamError;

use crate::routing::link::LinkId;

/// Why a node-layer operation failed or a link ended.
///
/// Errors from the routing core ([`UnknownLink`](Self::UnknownLink),
/// [`DuplicateLink`](Self::DuplicateLink), [`PeerTableFull`](Self::PeerTableFull))
/// never mean "close the link": each says that a single call was ignored.
/// A link future returns the handshake and link errors
/// ([`VersionMismatch`](Self::VersionMismatch),
/// [`ProtocolMismatch`](Self::ProtocolMismatch), [`Handshake`](Self::Handshake),
/// [`Control`](Self::Control), [`Mux`](Self::Mux)) when its link ends.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// A link id was used that is not up in the routing core.
    #[error("link {link} is not up")]
    UnknownLink {
        /// The link that was named.
        link: LinkId,
    },
    /// `link_up` was called twice with the same id.
    #[error("link {link} is already up")]
    DuplicateLink {
        /// The link that was named.
        link: LinkId,
    },
    /// A route to a new node was offered while the peer table was full; it
    /// was ignored (and counted) so memory stays bounded.
    #[error("peer table is full ({max} nodes): route to {node} ignored")]
    PeerTableFull {
        /// The node whose route was ignored.
        node: Name,
        /// The configured bound on the peer table.
        max: usize,
    },
    /// A node id or protocol string is not a valid `Name` (over 255 bytes).
    #[error("invalid name: {0}")]
    InvalidName(#[from] FrameError),
    /// `connect_to_peer` named a node this node has no route to.
    #[error("no route to peer {peer}")]
    NoSuchPeer {
        /// The node that was asked for.
        peer: Name,
    },
    /// [`Node::wait_reachable`](crate::Node::wait_reachable) gave up: the
    /// peer was not reachable by the deadline.
    #[error("peer {peer} not reachable within {waited:?}")]
    NotReachable {
        /// The node waited for.
        peer: Name,
        /// How long the wait lasted, on the node's timer.
        waited: std::time::Duration,
    },
    /// A stream arrived for a node this node cannot forward to; the stream
    /// was refused (reported through the link's mux), the link stays up.
    #[error("{node}: no route to {destination}")]
    NoRoute {
        /// The node that refused the stream.
        node: Name,
        /// The destination named in the stream's routing header.
        destination: Name,
    },
    /// The peer speaks another circuit protocol version. The link was closed.
    #[error("peer speaks circuit version {theirs}, this node {ours}")]
    VersionMismatch {
        /// This node's version.
        ours: u8,
        /// The version in the peer's `Identify`.
        theirs: u8,
    },
    /// The peer runs another application protocol. The link was closed.
    #[error("peer runs protocol {theirs:?}, this node {ours:?}")]
    ProtocolMismatch {
        /// This node's protocol.
        ours: Name,
        /// The protocol in the peer's `Identify`.
        theirs: Name,
    },
    /// The link handshake did not complete.
    #[error("link handshake failed: {reason}")]
    Handshake {
        /// What went wrong.
        reason: String,
    },
    /// The peer broke the control-stream protocol, or let its control
    /// stream back up past the bound. The link was closed.
    #[error("control stream: {reason}")]
    Control {
        /// What went wrong.
        reason: String,
    },
    /// A stream's header was malformed; that stream alone was dropped.
    #[error("malformed stream header: {reason}")]
    BadHeader {
        /// What went wrong.
        reason: String,
    },
    /// The node does not accept incoming streams (its `IncomingStreams`
    /// was dropped).
    #[error("node {node} accepts no streams")]
    NotAccepting {
        /// The node that refused.
        node: Name,
    },
    /// A connection to one's own node was asked for (PROTOCOL 2.5).
    #[error("a connection to one's own node is refused")]
    Loopback,
    /// A connection stream id of the wrong parity, or one already bound.
    #[error("connection stream id {stream_id}: {reason}")]
    BadStreamId {
        /// The id.
        stream_id: u64,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// The connection's stream will never arrive: the connection table was
    /// dropped or the stream was dropped as malformed.
    #[error("connection closed")]
    ConnectionClosed,
    /// The mux under a link failed.
    #[error(transparent)]
    Mux(#[from] MuxError),
    /// A stream (pipe) was closed or misused.
    #[error(transparent)]
    Stream(#[from] StreamError),
}
