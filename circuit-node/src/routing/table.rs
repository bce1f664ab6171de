//! The peer table: routes per node, route choice, feasibility and hold-down.

use std::collections::BTreeMap;
use std::time::Duration;

use circuit_frame::{Name, Quality};

use super::{LinkId, Role, RouteCore, RouteEvent};

/// A route to some node via one link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Route {
    /// The cost end to end: the neighbour's quality combined with the link's.
    pub(crate) quality: Quality,
    /// What the neighbour advertised (its own cost, before the link), or
    /// `None` for a route learned only from an incoming stream.
    pub(crate) advertised: Option<Quality>,
    /// When a route learned from a stream lapses (`None` for advertised
    /// routes).
    pub(crate) expires: Option<Duration>,
}

impl Route {
    /// The feasibility condition of PROTOCOL 2.3 (Babel, EIGRP): the
    /// neighbour's advertised quality must be strictly below the feasible
    /// distance. Without a feasible distance every route is feasible. A
    /// route learned from a stream was never advertised by anyone and is
    /// never advertised by us (it is saturated), so it cannot close a loop
    /// of advertisements and is always feasible.
    pub(crate) fn is_feasible(&self, feasible_distance: Option<Quality>) -> bool {
        match (self.advertised, feasible_distance) {
            (Some(advertised), Some(fd)) => advertised < fd,
            _ => true,
        }
    }
}

/// What the core knows about one other node.
#[derive(Debug, Default)]
pub(crate) struct Peer {
    /// At most one route per link, feasible or not.
    pub(crate) routes: BTreeMap<LinkId, Route>,
    /// The route in use: the feasible route of lowest quality, ties to the
    /// lowest link. `None` means unreachable.
    pub(crate) best: Option<(LinkId, Quality)>,
    /// The lowest quality this router has selected (and so advertised) for
    /// the node since it last became unreachable. Always `None` on a leaf,
    /// which advertises nothing and so cannot be part of a loop.
    pub(crate) feasible_distance: Option<Quality>,
    /// When the hold-down ends, while the node is unreachable but its
    /// feasible distance is still remembered.
    pub(crate) hold_down_until: Option<Duration>,
}

impl Peer {
    /// Feasible routes, best first: by quality, then by link.
    pub(crate) fn feasible_routes(&self) -> impl Iterator<Item = (LinkId, &Route)> + '_ {
        let fd = self.feasible_distance;
        let mut routes: Vec<(LinkId, &Route)> = self
            .routes
            .iter()
            .filter(|(_, route)| route.is_feasible(fd))
            .map(|(link, route)| (*link, route))
            .collect();
        routes.sort_by_key(|(link, route)| (route.quality, *link));
        routes.into_iter()
    }
}

impl RouteCore {
    /// The route this node uses to reach `node`: the feasible route of lowest
    /// quality, ties broken by the lowest [`LinkId`]. `None` when `node` is
    /// unreachable (or is this node: a stream to oneself needs no link).
    pub fn best_route(&self, node: &Name) -> Option<(LinkId, Quality)> {
        self.peers.get(node).and_then(|peer| peer.best)
    }

    /// The route a router forwards a stream for `node` over when it arrived
    /// on `arrived_on`: the best feasible route over any other link (no
    /// U-turns). Routes learned only from an incoming stream are not used
    /// for forwarding: nothing keeps them loop-free across routers.
    pub fn best_route_excluding(
        &self,
        node: &Name,
        arrived_on: LinkId,
    ) -> Option<(LinkId, Quality)> {
        self.forwarding_routes(node, arrived_on).into_iter().next()
    }

    /// Every feasible route to `node`, best first: the choices in order, so
    /// that when the chosen link dies while a stream waits the next one can
    /// be taken.
    pub fn routes(&self, node: &Name) -> Vec<(LinkId, Quality)> {
        self.peers
            .get(node)
            .map(|peer| {
                peer.feasible_routes()
                    .map(|(link, route)| (link, route.quality))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Like [`routes`](Self::routes), for forwarding a stream that arrived
    /// on `arrived_on`: that link and stream-learned routes are left out.
    pub fn forwarding_routes(&self, node: &Name, arrived_on: LinkId) -> Vec<(LinkId, Quality)> {
        self.peers
            .get(node)
            .map(|peer| {
                peer.feasible_routes()
                    .filter(|(link, route)| *link != arrived_on && route.advertised.is_some())
                    .map(|(link, route)| (link, route.quality))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether `node` has a feasible route now.
    pub fn is_reachable(&self, node: &Name) -> bool {
        self.best_route(node).is_some()
    }

    /// The reachable nodes, in name order.
    pub fn reachable_peers(&self) -> impl Iterator<Item = &Name> + '_ {
        self.peers
            .iter()
            .filter(|(_, peer)| peer.best.is_some())
            .map(|(name, _)| name)
    }

    /// How many entries the peer table holds: reachable nodes and nodes in
    /// hold-down. Never more than [`RoutingConfig::max_peers`](super::RoutingConfig::max_peers).
    pub fn peer_table_len(&self) -> usize {
        self.peers.len()
    }

    /// Ends every hold-down due at `now`: the feasible distance is
    /// forgotten, so routes kept aside may be used again; a node with no
    /// route left leaves the peer table. Also done by
    /// [`poll_advertisements`](Self::poll_advertisements).
    pub fn handle_timeout(&mut self, now: Duration) {
        self.expire_stream_routes(now);
        while let Some((until, _)) = self.hold_downs.first() {
            if *until > now {
                break;
            }
            let Some((_, name)) = self.hold_downs.pop_first() else {
                break;
            };
            if let Some(peer) = self.peers.get_mut(&name) {
                peer.hold_down_until = None;
                peer.feasible_distance = None;
            }
            self.reselect(&name, now);
        }
    }

    /// Chooses the route to `node` again after its routes or its feasible
    /// distance changed, and follows up: events, feasible distance,
    /// hold-down, removal from the table, a pending advertisement round.
    pub(crate) fn reselect(&mut self, node: &Name, now: Duration) {
        let router = self.role == Role::Router;
        let hold_down = self.config.hold_down();
        let Some(peer) = self.peers.get_mut(node) else {
            return;
        };
        let old = peer.best;
        let new = peer
            .feasible_routes()
            .next()
            .map(|(link, route)| (link, route.quality));
        peer.best = new;

        let mut event = None;
        let mut ended_hold_down = None;
        let mut started_hold_down = None;
        match new {
            Some((_, quality)) => {
                // Only what can be advertised lowers the feasible distance:
                // a saturated route is advertised as Offline.
                if router && !quality.is_worst() {
                    peer.feasible_distance = Some(match peer.feasible_distance {
                        Some(fd) => fd.min(quality),
                        None => quality,
                    });
                }
                ended_hold_down = peer.hold_down_until.take();
                if old.is_none() {
                    event = Some(RouteEvent::PeerReachable(node.clone()));
                }
            }
            None => {
                if old.is_some() {
                    event = Some(RouteEvent::PeerUnreachable(node.clone()));
                    if peer.feasible_distance.is_some() && peer.hold_down_until.is_none() {
                        let until = now.saturating_add(hold_down);
                        peer.hold_down_until = Some(until);
                        started_hold_down = Some(until);
                    }
                }
            }
        }
        // Unreachable and nothing to remember: leave the table (PROTOCOL 3,
        // bounded memory). Any routes still held would be infeasible ones,
        // which without a feasible distance cannot exist.
        let forget = peer.best.is_none() && peer.hold_down_until.is_none();

        if let Some(until) = ended_hold_down {
            self.hold_downs.remove(&(until, node.clone()));
        }
        if let Some(until) = started_hold_down {
            self.hold_downs.insert((until, node.clone()));
        }
        if forget {
            self.peers.remove(node);
        }
        match &event {
            Some(RouteEvent::PeerReachable(_)) => {
                self.counters.peers_reachable = self.counters.peers_reachable.saturating_add(1);
            }
            Some(RouteEvent::PeerUnreachable(_)) => {
                self.counters.peers_unreachable = self.counters.peers_unreachable.saturating_add(1);
            }
            None => {}
        }
        if let Some(event) = event {
            self.push_event(event);
        }
        if old != new {
            self.mark_changed(now);
        }
    }
}

impl RouteCore {
    /// Drops routes learned from streams whose time is up.
    pub(crate) fn expire_stream_routes(&mut self, now: Duration) {
        while let Some((until, _, _)) = self.stream_routes.first() {
            if *until > now {
                break;
            }
            let Some((until, node, link)) = self.stream_routes.pop_first() else {
                break;
            };
            // Only if the route is still the one that was set to lapse then
            // (a later stream may have renewed it).
            let lapsed =
                self.peers
                    .get_mut(&node)
                    .is_some_and(|peer| match peer.routes.get(&link) {
                        Some(route) if route.expires == Some(until) => {
                            peer.routes.remove(&link);
                            true
                        }
                        _ => false,
                    });
            if lapsed {
                self.reselect(&node, now);
            }
        }
    }

    /// Makes room in a full peer table by dropping the node known only
    /// from streams whose route lapses first. `false` if there is none.
    pub(crate) fn evict_stream_learned(&mut self, now: Duration) -> bool {
        let victim = self
            .stream_routes
            .iter()
            .find(|(until, node, link)| {
                self.peers.get(node).is_some_and(|peer| {
                    peer.routes.values().all(|r| r.advertised.is_none())
                        && peer
                            .routes
                            .get(link)
                            .is_some_and(|r| r.expires == Some(*until))
                })
            })
            .cloned();
        let Some(entry) = victim else {
            return false;
        };
        self.stream_routes.remove(&entry);
        let (_, node, _) = entry;
        if let Some(peer) = self.peers.get_mut(&node) {
            peer.routes.clear();
        }
        self.reselect(&node, now);
        // `reselect` removes a peer with no route and no hold-down.
        !self.peers.contains_key(&node)
    }
}
