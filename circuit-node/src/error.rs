//! The one error type of the node layer.

use circuit_frame::Name;

use crate::routing::LinkId;

/// Why a node-layer operation was refused.
///
/// Errors from the routing core never mean "close the link": each one says
/// that a single call (one control message, one new link) was ignored, and
/// the state is as it was before the call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
}
