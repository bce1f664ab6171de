//! The sans-IO routing core: PROTOCOL.md sections 2.2 and 2.3.
//!
//! A [`RouteCore`] holds one node's view of the mesh: its links, the routes
//! its neighbours advertised over them, which route it uses for each node,
//! and what each neighbour was last told. It does no I/O and never reads a
//! clock: the caller feeds it events with the current time (`link_up`,
//! `link_down`, `receive`, `note_incoming_stream_source`) and takes out
//! route updates to write ([`RouteCore::poll_advertisements`]), peer events
//! ([`RouteCore::poll_event`]) and the next time it needs to be polled
//! ([`RouteCore::next_deadline`]). Every call is deterministic.
//!
//! ```
//! use std::time::Duration;
//! use circuit_frame::{Name, NodeState, Quality};
//! use circuit_node::routing::{LinkId, Role, RouteCore, RouteEvent, RoutingConfig};
//!
//! let name = |s: &str| Name::new(s).unwrap();
//! let mut r = RouteCore::new(name("r"), Role::Router, RoutingConfig::default());
//! let t0 = Duration::ZERO;
//! r.link_up(LinkId(1), Quality::NETWORK, t0).unwrap();
//! r.link_up(LinkId(2), Quality::NETWORK, t0).unwrap();
//!
//! // The first message on each link is Online(self, SELF).
//! let out = r.poll_advertisements(t0);
//! assert_eq!(out[0].1[0], NodeState::Online { node: name("r"), quality: Quality::SELF });
//!
//! // Leaf "a" says hello on link 1: a is 20 away.
//! r.receive(LinkId(1), NodeState::Online { node: name("a"), quality: Quality::SELF }, t0)
//!     .unwrap();
//! assert_eq!(r.best_route(&name("a")), Some((LinkId(1), Quality::NETWORK)));
//! assert_eq!(r.poll_event(), Some(RouteEvent::PeerReachable(name("a"))));
//!
//! // Link 2 hears Online(a, 20) once the round is due; link 1 (the next hop) nothing.
//! let out = r.poll_advertisements(r.next_deadline().unwrap());
//! assert_eq!(out, vec![(LinkId(2), vec![NodeState::Online { node: name("a"), quality: Quality::NETWORK }])]);
//! ```
//!
//! # Loop prevention and convergence
//!
//! Routers send only the quality they reach a node at (the receiver adds its
//! link's quality, also in the first dump), poison the reverse route (the
//! next hop of the best route to `n` is never told `n` is online), accept a
//! route only if the neighbour's advertised quality is strictly below the
//! feasible distance, and treat a saturated route (quality 254) as
//! unreachable when advertising. Routes that fail the feasibility test are
//! kept aside, visible in [`RouteCore::snapshot`], and used only once the
//! hold-down has let the feasible distance be forgotten.
//!
//! Bounds, with one round of updates per advertise interval and each
//! round's messages delivered before the next (as in this crate's
//! simulation tests, `tests/routing/`):
//!
//! - a node that leaves is dropped by every router within `d` intervals
//!   (plus transit time), `d` being the largest hop count from the router it
//!   was attached to; its routes never loop meanwhile and do not come back
//!   after the hold-down (ring of 4 routers: 2 intervals, tested);
//! - a fresh connected mesh gives every node a route to every other within
//!   `diameter + 2` intervals, and then settles on the shortest routes
//!   (100 random routers, hop diameter 8: 8 intervals, tested);
//! - a switch to a route that fails the feasibility test waits for the
//!   hold-down (default 3 intervals) after the old route is lost.
//!
//! The price of feasibility without sequence numbers: a router keeps its
//! feasible distance for as long as the node stays reachable, so after a
//! failure it may keep a longer feasible route while a shorter one, whose
//! neighbour advertises a quality at or above that distance, stays aside.
//! Routes stay loop-free but are not always the shortest until the node
//! is next unreachable.
//!
//! Names are not authenticated (PROTOCOL 3): a neighbour can claim to reach
//! any node, at any quality. Link only to peers you trust with every name.

mod advertise;
mod config;
mod counters;
mod event;
pub(crate) mod link;
mod snapshot;
mod table;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use circuit_frame::{Encode, Name, NodeState, Quality};

pub use config::{Role, RoutingConfig};
pub use counters::{LinkCounters, RouterCounters};
pub use event::RouteEvent;
pub use link::LinkId;
pub use snapshot::{LinkSnapshot, PeerSnapshot, RouteSnapshot, RoutingSnapshot};

use crate::NodeError;
use counters::count;
use link::Link;
use table::{Peer, Route};

/// One node's routing state machine. See the [module docs](self).
#[derive(Debug)]
pub struct RouteCore {
    name: Name,
    role: Role,
    config: RoutingConfig,
    links: BTreeMap<LinkId, Link>,
    /// Every node this core holds routes or a feasible distance for; never
    /// this node itself; at most `config.max_peers` entries.
    peers: BTreeMap<Name, Peer>,
    /// Nodes in hold-down, by the time it ends.
    hold_downs: BTreeSet<(Duration, Name)>,
    /// Routes learned from streams, by the time they lapse (entries made
    /// stale by a renewal are skipped when they come up).
    stream_routes: BTreeSet<(Duration, Name, LinkId)>,
    events: VecDeque<RouteEvent>,
    /// When the oldest change not yet advertised happened (routers only).
    pending_since: Option<Duration>,
    /// When the last round of updates went out.
    last_round: Option<Duration>,
    counters: RouterCounters,
}

impl RouteCore {
    /// A core for node `name` with no links and no routes.
    pub fn new(name: Name, role: Role, config: RoutingConfig) -> Self {
        RouteCore {
            name,
            role,
            config,
            links: BTreeMap::new(),
            peers: BTreeMap::new(),
            hold_downs: BTreeSet::new(),
            stream_routes: BTreeSet::new(),
            events: VecDeque::new(),
            pending_since: None,
            last_round: None,
            counters: RouterCounters::default(),
        }
    }

    /// This node's id.
    pub fn name(&self) -> &Name {
        &self.name
    }

    /// Whether this node routes for others.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The configuration the core was made with.
    pub fn config(&self) -> &RoutingConfig {
        &self.config
    }

    /// A new link of the given quality is up (its handshake done). Its first
    /// message, `Online(self, SELF)` and for a router every route it can
    /// advertise, is due at once from
    /// [`poll_advertisements`](Self::poll_advertisements).
    pub fn link_up(
        &mut self,
        link: LinkId,
        quality: Quality,
        now: Duration,
    ) -> Result<(), NodeError> {
        if self.links.contains_key(&link) {
            return Err(NodeError::DuplicateLink { link });
        }
        self.links.insert(link, Link::new(quality, now));
        Ok(())
    }

    /// The link has ended: every route via it goes. Nodes left with no
    /// feasible route become unreachable.
    pub fn link_down(&mut self, link: LinkId, now: Duration) -> Result<(), NodeError> {
        if self.links.remove(&link).is_none() {
            self.counters.unknown_link = self.counters.unknown_link.saturating_add(1);
            return Err(NodeError::UnknownLink { link });
        }
        let affected: Vec<Name> = self
            .peers
            .iter()
            .filter(|(_, peer)| peer.routes.contains_key(&link))
            .map(|(name, _)| name.clone())
            .collect();
        for name in affected {
            if let Some(peer) = self.peers.get_mut(&name) {
                peer.routes.remove(&link);
            }
            self.reselect(&name, now);
        }
        Ok(())
    }

    /// The quality a link was brought up with, if it is up.
    pub fn link_quality(&self, link: LinkId) -> Option<Quality> {
        self.links.get(&link).map(|l| l.quality)
    }

    /// Applies one `NodeState` received on a link's control stream.
    ///
    /// `Online(n, q)` sets the route to `n` via `link` to `combine(q, L)`
    /// where `L` is the link's quality; `Offline(n)` drops it. A state about
    /// this node itself is ignored. An error means only this message was
    /// ignored (unknown link, or a new node while the peer table is full);
    /// the link stays up.
    pub fn receive(
        &mut self,
        link: LinkId,
        state: NodeState,
        now: Duration,
    ) -> Result<(), NodeError> {
        let Some(l) = self.links.get_mut(&link) else {
            self.counters.unknown_link = self.counters.unknown_link.saturating_add(1);
            return Err(NodeError::UnknownLink { link });
        };
        let len = state.encoded_len();
        count(
            &mut l.counters.messages_received,
            &mut l.counters.bytes_received,
            len,
        );
        let total = &mut self.counters.control;
        count(&mut total.messages_received, &mut total.bytes_received, len);
        let link_quality = l.quality;
        match state {
            NodeState::Online { node, .. } | NodeState::Offline { node } if node == self.name => {
                Ok(())
            }
            NodeState::Online { node, quality } => {
                let route = Route {
                    quality: quality.combine(link_quality),
                    advertised: Some(quality),
                    expires: None,
                };
                self.set_route(node, link, route, now)
            }
            NodeState::Offline { node } => {
                let removed = self
                    .peers
                    .get_mut(&node)
                    .is_some_and(|peer| peer.routes.remove(&link).is_some());
                if removed {
                    self.reselect(&node, now);
                }
                Ok(())
            }
        }
    }

    /// A stream for this node arrived on `link` from `source` (PROTOCOL
    /// 2.4). If `source` is not reachable and `link` holds no route to it,
    /// a route via `link` with [`Quality::UNKNOWN`] is recorded (and
    /// [`RouteEvent::PeerReachable`] fires). Such a route is never
    /// advertised (it is saturated) and never used to forward others'
    /// streams, only for this node's own streams to `source`. It lapses
    /// [`RoutingConfig::stream_route_ttl`] after the last stream from
    /// `source` on `link` (each one renews it), and gives way first when
    /// the peer table is full.
    pub fn note_incoming_stream_source(
        &mut self,
        source: &Name,
        link: LinkId,
        now: Duration,
    ) -> Result<(), NodeError> {
        if !self.links.contains_key(&link) {
            self.counters.unknown_link = self.counters.unknown_link.saturating_add(1);
            return Err(NodeError::UnknownLink { link });
        }
        if *source == self.name {
            return Ok(());
        }
        let expires = now.saturating_add(self.config.stream_route_ttl);
        if let Some(peer) = self.peers.get_mut(source) {
            match peer.routes.get_mut(&link) {
                // A stream renews a route that streams taught us.
                Some(route) if route.advertised.is_none() => {
                    if let Some(old) = route.expires.replace(expires) {
                        self.stream_routes.remove(&(old, source.clone(), link));
                    }
                    self.stream_routes.insert((expires, source.clone(), link));
                    return Ok(());
                }
                Some(_) => return Ok(()),
                None if peer.best.is_some() => return Ok(()),
                None => {}
            }
        }
        let route = Route {
            quality: Quality::UNKNOWN,
            advertised: None,
            expires: Some(expires),
        };
        self.set_route(source.clone(), link, route, now)?;
        self.stream_routes.insert((expires, source.clone(), link));
        Ok(())
    }

    /// Installs `route` to `node` via `link`, making a peer entry if the
    /// table has room.
    fn set_route(
        &mut self,
        node: Name,
        link: LinkId,
        route: Route,
        now: Duration,
    ) -> Result<(), NodeError> {
        if let Some(peer) = self.peers.get_mut(&node) {
            peer.routes.insert(link, route);
        } else {
            if self.peers.len() >= self.config.max_peers && !self.evict_stream_learned(now) {
                self.counters.peer_table_full = self.counters.peer_table_full.saturating_add(1);
                return Err(NodeError::PeerTableFull {
                    node,
                    max: self.config.max_peers,
                });
            }
            let mut peer = Peer::default();
            peer.routes.insert(link, route);
            self.peers.insert(node.clone(), peer);
        }
        self.reselect(&node, now);
        Ok(())
    }

    /// The next application event, oldest first.
    pub fn poll_event(&mut self) -> Option<RouteEvent> {
        self.events.pop_front()
    }

    /// Every pending application event, oldest first.
    pub fn drain_events(&mut self) -> Vec<RouteEvent> {
        self.events.drain(..).collect()
    }

    /// Counters for the whole core.
    pub fn counters(&self) -> RouterCounters {
        self.counters
    }

    /// Counters for one link, while it is up.
    pub fn link_counters(&self, link: LinkId) -> Option<LinkCounters> {
        self.links.get(&link).map(|l| l.counters)
    }

    /// Queues an event, dropping it (counted) if the application has let
    /// the queue reach its bound: twice the peer table bound plus 1024. One
    /// call emits at most one event per peer, so an application that drains
    /// after every call never loses one.
    fn push_event(&mut self, event: RouteEvent) {
        let bound = self.config.max_peers.saturating_mul(2).saturating_add(1024);
        if self.events.len() >= bound {
            self.counters.events_dropped = self.counters.events_dropped.saturating_add(1);
            return;
        }
        self.events.push_back(event);
    }

    /// Notes that what routers advertise may have changed.
    fn mark_changed(&mut self, now: Duration) {
        if self.role == Role::Router && self.pending_since.is_none() {
            self.pending_since = Some(now);
        }
    }
}
