//! What the routing core tells the application about peers.

use circuit_frame::Name;

/// A change in which nodes can be reached, drained with
/// [`RouteCore::poll_event`](super::RouteCore::poll_event).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RouteEvent {
    /// The node became reachable (it was not, or was never seen). This is
    /// the "new peer" of PROTOCOL 2.2.
    PeerReachable(Name),
    /// The node stopped being reachable: no feasible route is left. Its
    /// entry leaves the peer table (after the hold-down, for a router).
    PeerUnreachable(Name),
}

impl RouteEvent {
    /// The node the event is about.
    pub fn node(&self) -> &Name {
        match self {
            RouteEvent::PeerReachable(node) | RouteEvent::PeerUnreachable(node) => node,
        }
    }
}
