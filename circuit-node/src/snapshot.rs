//! A node's state for people and tests: its routing table and its links.

use std::fmt;

use circuit_frame::{Name, Quality};
use circuit_mux::Counters;

use crate::routing::{LinkId, RoutingSnapshot};

/// What [`Node::snapshot`](crate::Node::snapshot) returns: the routing
/// table (node -> routes with next-hop link and quality, counters) and
/// every link that is up. `Display` prints both as a table.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NodeSnapshot {
    /// The routing core's state.
    pub routing: RoutingSnapshot,
    /// The links that finished their handshake and have not ended, by id.
    pub links: Vec<LinkInfo>,
    /// [`ForwardEnd`](crate::ForwardEnd) reports dropped because the
    /// [`Node::forward_reports`](crate::Node::forward_reports) subscription
    /// had its queue full (since the node was made).
    pub forward_reports_dropped: u64,
}

/// One link in a [`NodeSnapshot`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LinkInfo {
    /// The link's id in the routing table.
    pub link: LinkId,
    /// The node at the other end, from its first `NodeState`.
    pub peer: Name,
    /// The link's quality.
    pub quality: Quality,
    /// This end's role on the mux.
    pub role: circuit_mux::Role,
    /// The mux counters (bytes, frames, streams, errors).
    pub mux: Counters,
}

impl NodeSnapshot {
    /// The link to `peer`, if one is up (the lowest id if several).
    pub fn link_to(&self, peer: &str) -> Option<&LinkInfo> {
        self.links.iter().find(|l| l.peer == peer)
    }

    /// The next hop and quality of the route in use to `node`.
    pub fn route_to(&self, node: &str) -> Option<(LinkId, Quality)> {
        self.routing.peer(node).and_then(|p| p.best)
    }

    /// The neighbour a stream to `node` goes to first.
    pub fn next_hop(&self, node: &str) -> Option<&Name> {
        let (link, _) = self.route_to(node)?;
        self.links.iter().find(|l| l.link == link).map(|l| &l.peer)
    }
}

impl fmt::Display for NodeSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.routing)?;
        for l in &self.links {
            writeln!(
                f,
                "  {} to {} ({:?}, quality {}): {} B in / {} B out, {} streams open, {} opened, {} errors",
                l.link,
                l.peer,
                l.role,
                l.quality,
                l.mux.bytes_in,
                l.mux.bytes_out,
                l.mux.streams_open,
                l.mux.streams_opened,
                l.mux.errors
            )?;
            match l.mux.mode {
                circuit_mux::LinkMode::V0 => writeln!(f, "    v0 mode (no credit)")?,
                circuit_mux::LinkMode::Credit => writeln!(
                    f,
                    "    credit mode: {} streams waiting for credit, {} B granted, round trip {}",
                    l.mux.streams_waiting_for_credit,
                    l.mux.bytes_granted,
                    l.mux
                        .rtt
                        .map_or_else(|| "unknown".to_owned(), |rtt| format!("{rtt:?}")),
                )?,
            }
        }
        if self.forward_reports_dropped > 0 {
            writeln!(
                f,
                "  {} forward reports dropped",
                self.forward_reports_dropped
            )?;
        }
        Ok(())
    }
}
