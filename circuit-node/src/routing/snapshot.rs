//! A copy of the routing table for tools, tests and a CLI.

use std::fmt;
use std::time::Duration;

use circuit_frame::{Name, Quality};

use super::{LinkCounters, LinkId, Role, RouteCore, RouterCounters};

/// The whole state of a [`RouteCore`] at one moment, detached from it.
/// Its `Display` is a table meant for people.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoutingSnapshot {
    /// This node.
    pub node: Name,
    /// Whether it routes.
    pub role: Role,
    /// Links that are up, by id.
    pub links: Vec<LinkSnapshot>,
    /// Every node in the peer table, by name.
    pub peers: Vec<PeerSnapshot>,
    /// Counters for the whole core.
    pub counters: RouterCounters,
}

/// One link in a [`RoutingSnapshot`].
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkSnapshot {
    /// The link.
    pub link: LinkId,
    /// Its quality.
    pub quality: Quality,
    /// How many nodes the neighbour was last told are online over it.
    pub told_online: usize,
    /// Its control traffic.
    pub counters: LinkCounters,
}

/// One node in a [`RoutingSnapshot`].
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerSnapshot {
    /// The node.
    pub node: Name,
    /// The route in use, if the node is reachable.
    pub best: Option<(LinkId, Quality)>,
    /// The feasible distance (routers only), while remembered.
    pub feasible_distance: Option<Quality>,
    /// When the hold-down ends, if the node is held down.
    pub hold_down_until: Option<Duration>,
    /// Every route, by link, feasible or kept aside.
    pub routes: Vec<RouteSnapshot>,
}

/// One route in a [`PeerSnapshot`].
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RouteSnapshot {
    /// The next hop.
    pub link: LinkId,
    /// The quality end to end (link included).
    pub quality: Quality,
    /// What the neighbour advertised; `None` for a route learned from an
    /// incoming stream.
    pub advertised: Option<Quality>,
    /// Whether it passes the feasibility test; an infeasible route is kept
    /// aside and not used.
    pub feasible: bool,
    /// Whether it is the route in use.
    pub best: bool,
}

impl RouteCore {
    /// A copy of the routing table and counters.
    pub fn snapshot(&self) -> RoutingSnapshot {
        RoutingSnapshot {
            node: self.name.clone(),
            role: self.role,
            links: self
                .links
                .iter()
                .map(|(&link, l)| LinkSnapshot {
                    link,
                    quality: l.quality,
                    told_online: l.told.len(),
                    counters: l.counters,
                })
                .collect(),
            peers: self
                .peers
                .iter()
                .map(|(node, peer)| PeerSnapshot {
                    node: node.clone(),
                    best: peer.best,
                    feasible_distance: peer.feasible_distance,
                    hold_down_until: peer.hold_down_until,
                    routes: peer
                        .routes
                        .iter()
                        .map(|(&link, route)| RouteSnapshot {
                            link,
                            quality: route.quality,
                            advertised: route.advertised,
                            feasible: route.is_feasible(peer.feasible_distance),
                            best: peer.best.map(|(l, _)| l) == Some(link),
                        })
                        .collect(),
                })
                .collect(),
            counters: self.counters,
        }
    }
}

impl RoutingSnapshot {
    /// The entry for `node`, if it is in the peer table.
    pub fn peer(&self, node: &str) -> Option<&PeerSnapshot> {
        self.peers.iter().find(|p| p.node == node)
    }
}

impl fmt::Display for RoutingSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "node {} ({:?})", self.node, self.role)?;
        for l in &self.links {
            writeln!(
                f,
                "  {} quality {} told {} online, sent {} msgs / {} B, received {} msgs / {} B",
                l.link,
                l.quality,
                l.told_online,
                l.counters.messages_sent,
                l.counters.bytes_sent,
                l.counters.messages_received,
                l.counters.bytes_received
            )?;
        }
        for p in &self.peers {
            write!(f, "  {}", p.node)?;
            match p.best {
                Some((link, quality)) => write!(f, " via {link} quality {quality}")?,
                None => write!(f, " unreachable")?,
            }
            if let Some(fd) = p.feasible_distance {
                write!(f, " fd {fd}")?;
            }
            if let Some(until) = p.hold_down_until {
                write!(f, " held down until {until:?}")?;
            }
            writeln!(f)?;
            for r in &p.routes {
                let mark = if r.best {
                    '*'
                } else if r.feasible {
                    ' '
                } else {
                    '!'
                };
                let advertised = match r.advertised {
                    Some(q) => q.to_string(),
                    None => "stream".to_owned(),
                };
                writeln!(
                    f,
                    "    {mark} {} quality {} (advertised {advertised})",
                    r.link, r.quality
                )?;
            }
        }
        Ok(())
    }
}
