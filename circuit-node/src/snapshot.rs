//! A node's state for people and tests: its routing table and its links.

use std::fmt;

use circuit_frame::{Name, Quality};
use circuit_mux::Counters;

use crate::routing::{LinkId, RoutingSnapshot};

/// What [`Node::snapshot`](crate::Node::snapshot) returns: the routing
/// table (node -> routes with next-hop link and quality, counters) and
/// every link that is up. `Display` prints both as a table.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
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
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LinkInfo {
    /// The link's id in the routing table.
    pub link: LinkId,
    /// The node at the other end, from its first `NodeState`.
    pub peer: Name,
    /// The link's quality.
    pub quality: Quality,
    /// This end's role on the mux (`"client"` or `"server"` when
    /// serialized).
    #[cfg_attr(feature = "serde", serde(serialize_with = "ser::mux_role"))]
    pub role: circuit_mux::Role,
    /// The mux counters (bytes, frames, streams, errors). Serialized as an
    /// object with the same field names, `mode` as `"v0"` or `"credit"`
    /// and `rtt` as `rtt_us` (microseconds, or null while unknown).
    #[cfg_attr(feature = "serde", serde(serialize_with = "ser::counters"))]
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

/// How the mux's types, which have no `Serialize` of their own, are written.
#[cfg(feature = "serde")]
mod ser {
    use circuit_mux::{Counters, LinkMode, Role};
    use serde::ser::{SerializeStruct, Serializer};

    pub(super) fn mux_role<S: Serializer>(role: &Role, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match role {
            Role::Client => "client",
            Role::Server => "server",
        })
    }

    pub(super) fn counters<S: Serializer>(c: &Counters, s: S) -> Result<S::Ok, S::Error> {
        let mut out = s.serialize_struct("Counters", 14)?;
        out.serialize_field("bytes_in", &c.bytes_in)?;
        out.serialize_field("bytes_out", &c.bytes_out)?;
        out.serialize_field("frames_in", &c.frames_in)?;
        out.serialize_field("frames_out", &c.frames_out)?;
        out.serialize_field("streams_open", &c.streams_open)?;
        out.serialize_field("streams_opened", &c.streams_opened)?;
        out.serialize_field("streams_closed", &c.streams_closed)?;
        out.serialize_field("streams_refused", &c.streams_refused)?;
        out.serialize_field("errors", &c.errors)?;
        out.serialize_field("receive_buffered", &c.receive_buffered)?;
        let mode = match c.mode {
            LinkMode::V0 => "v0",
            LinkMode::Credit => "credit",
        };
        out.serialize_field("mode", mode)?;
        out.serialize_field("streams_waiting_for_credit", &c.streams_waiting_for_credit)?;
        out.serialize_field("bytes_granted", &c.bytes_granted)?;
        let rtt_us = c
            .rtt
            .map(|rtt| u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX));
        out.serialize_field("rtt_us", &rtt_us)?;
        out.end()
    }
}
