//! What a routing core is configured with: its role and its limits.

use std::time::Duration;

/// Whether a node forwards streams and advertises routes for others.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Advertises every node it reaches to every neighbour (PROTOCOL 2.3)
    /// and forwards streams between links.
    Router,
    /// Sends only its own `Online(self, SELF)` on each link, then nothing
    /// (the async layer then closes its direction of the control stream).
    Leaf,
}

/// The tunables of a [`RouteCore`](super::RouteCore).
///
/// Start from [`RoutingConfig::default`] and change what you need:
///
/// ```
/// use std::time::Duration;
/// use circuit_node::routing::RoutingConfig;
///
/// let mut config = RoutingConfig::default();
/// config.advertise_interval = Duration::from_millis(250);
/// assert_eq!(config.hold_down(), Duration::from_millis(750));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoutingConfig {
    /// The shortest time between two rounds of route updates (after the
    /// first dump to a new neighbour, which goes at once). Default 100 ms,
    /// as in the original's tests.
    pub advertise_interval: Duration,
    /// How many advertise intervals a router keeps the feasible distance of
    /// a node that became unreachable before forgetting it (PROTOCOL 2.3).
    /// Default 3. Must cover the time an `Offline` takes to reach the
    /// neighbours (one interval plus transit), or stale routes could be
    /// accepted again.
    pub hold_down_intervals: u32,
    /// The most nodes the peer table holds, reachable or held down. When it
    /// is full, a node known only from an incoming stream makes room; past
    /// that a route to a new node is ignored and counted. Default 10,000.
    pub max_peers: usize,
    /// How long a route learned only from an incoming stream (PROTOCOL
    /// 2.4, quality UNKNOWN) lasts after the last stream from that node,
    /// unless an advertisement confirms the node. Default 60 s. (A node
    /// whose timer never advances, such as a leaf with no timer, keeps such
    /// routes until the table needs the room.)
    pub stream_route_ttl: Duration,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            advertise_interval: Duration::from_millis(100),
            hold_down_intervals: 3,
            max_peers: 10_000,
            stream_route_ttl: Duration::from_secs(60),
        }
    }
}

impl RoutingConfig {
    /// The hold-down time: `hold_down_intervals` advertise intervals,
    /// saturating at [`Duration::MAX`].
    pub fn hold_down(&self) -> Duration {
        self.advertise_interval
            .checked_mul(self.hold_down_intervals)
            .unwrap_or(Duration::MAX)
    }
}
