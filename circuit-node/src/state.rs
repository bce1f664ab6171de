//! What every handle of one node shares: its identity, its settings, and
//! its mutable state (routing core, links, waiters) behind the node's
//! lock, the outermost of the lock order (`crate::sync`). [`Node`],
//! [`PeerEvents`], the link futures and forwarding all work on it.
//!
//! [`Node`]: crate::Node
//! [`PeerEvents`]: crate::PeerEvents

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use circuit_frame::{Encode, Name, NodeState};
use futures::channel::mpsc;

use crate::events::IncomingStream;
use crate::link::port::{LinkPort, LinkSignal};
use crate::report::{Hop, Reports};
use crate::routing::{LinkId, Role, RouteCore, RouteEvent};
use crate::snapshot::{LinkInfo, NodeSnapshot};
use crate::sync::lock;
use crate::timer::Timer;
use crate::{NodeConfig, NodeError};

/// What every handle of one node shares. The fields set when the node is
/// made are read directly; its mutable state is reached only through the
/// methods here, each of which takes the node's lock once.
pub(crate) struct NodeInner {
    pub(crate) id: Name,
    pub(crate) protocol: Name,
    pub(crate) config: NodeConfig,
    pub(crate) timer: Arc<dyn Timer>,
    pub(crate) incoming_tx: mpsc::Sender<IncomingStream>,
    /// Reports on forwarded streams (their own lock: see `crate::sync`).
    pub(crate) reports: Arc<Reports>,
    shared: Mutex<Shared>,
}

/// The node's mutable state, behind one lock: the outermost of the
/// crate's lock order (`crate::sync`).
struct Shared {
    core: RouteCore,
    links: BTreeMap<LinkId, LinkEntry>,
    next_link: u64,
    /// The routing core's next deadline, as last seen by [`Shared::pump`].
    deadline: Option<Duration>,
    peer_events_waker: Option<Waker>,
    peer_events_open: bool,
    /// [`Node::wait_reachable`](crate::Node::wait_reachable) calls waiting
    /// for a routing change, by key; every [`Shared::pump`] wakes them all.
    reach_waiters: BTreeMap<u64, Waker>,
    next_reach_waiter: u64,
}

/// One link that finished its handshake.
pub(crate) struct LinkEntry {
    peer: Name,
    quality: circuit_frame::Quality,
    role: circuit_mux::Role,
    port: Arc<LinkPort>,
    signal: Arc<LinkSignal>,
    /// Control messages for this link not yet taken by its future.
    outbox: VecDeque<NodeState>,
    /// The handshake already wrote `Online(self, SELF)`: drop it from the
    /// routing core's first batch.
    skip_greeting: bool,
}

/// A link a stream may be forwarded onto: its id, its port, and the
/// neighbour at its other end when reports are wanted.
pub(crate) type NextHop = (LinkId, Arc<LinkPort>, Option<Name>);

impl LinkEntry {
    /// The link to `peer` whose handshake just finished (and wrote this
    /// node's greeting), with an empty outbox.
    pub(crate) fn new(
        peer: Name,
        quality: circuit_frame::Quality,
        role: circuit_mux::Role,
        port: Arc<LinkPort>,
        signal: Arc<LinkSignal>,
    ) -> Self {
        LinkEntry {
            peer,
            quality,
            role,
            port,
            signal,
            outbox: VecDeque::new(),
            skip_greeting: true,
        }
    }
}

impl NodeInner {
    /// A node with no links and no routes, delivering its incoming streams
    /// to `incoming_tx`.
    pub(crate) fn new(
        id: Name,
        protocol: Name,
        config: NodeConfig,
        incoming_tx: mpsc::Sender<IncomingStream>,
    ) -> Self {
        let core = RouteCore::new(id.clone(), config.role, config.routing.clone());
        let reports = Arc::new(Reports::new(id.clone(), config.forward_report_queue));
        NodeInner {
            reports,
            id,
            protocol,
            timer: Arc::clone(&config.timer),
            config,
            incoming_tx,
            shared: Mutex::new(Shared {
                core,
                links: BTreeMap::new(),
                next_link: 0,
                deadline: None,
                peer_events_waker: None,
                peer_events_open: true,
                reach_waiters: BTreeMap::new(),
                next_reach_waiter: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        lock(&self.shared)
    }

    pub(crate) fn now(&self) -> Duration {
        self.timer.now()
    }

    /// Stream `stream_id` of the link `link`, as a report names it.
    pub(crate) fn hop(&self, link: LinkId, stream_id: u32) -> Option<Hop> {
        let peer = self.lock().links.get(&link)?.peer.clone();
        Some(Hop {
            peer,
            link,
            stream_id,
        })
    }
}

impl NodeInner {
    /// The port of `link`, while the link is up.
    pub(crate) fn port(&self, link: LinkId) -> Option<Arc<LinkPort>> {
        let shared = self.lock();
        shared.links.get(&link).map(|entry| Arc::clone(&entry.port))
    }

    /// The ports of the links on routes to `peer`, best route first.
    pub(crate) fn route_ports(&self, peer: &Name) -> Vec<Arc<LinkPort>> {
        let shared = self.lock();
        shared
            .core
            .routes(peer)
            .into_iter()
            .filter_map(|(link, _)| shared.links.get(&link).map(|l| Arc::clone(&l.port)))
            .collect()
    }

    /// Whether `peer` is reachable now.
    pub(crate) fn is_reachable(&self, peer: &str) -> bool {
        self.lock()
            .core
            .reachable_peers()
            .any(|n| n.as_str() == peer)
    }

    /// The nodes reachable now, in name order.
    pub(crate) fn reachable_peers(&self) -> Vec<Name> {
        self.lock().core.reachable_peers().cloned().collect()
    }

    /// The routing table and every link's state, copied.
    pub(crate) fn snapshot(&self) -> NodeSnapshot {
        let shared = self.lock();
        let links = shared
            .links
            .iter()
            .map(|(&link, entry)| LinkInfo {
                link,
                peer: entry.peer.clone(),
                quality: entry.quality,
                role: entry.role,
                mux: entry.port.counters(),
            })
            .collect();
        NodeSnapshot {
            routing: shared.core.snapshot(),
            links,
            forward_reports_dropped: self.reports.dropped(),
        }
    }

    /// The next peer event, or `Pending` with `cx`'s waker kept for the
    /// next routing change.
    pub(crate) fn poll_peer_event(&self, cx: &mut Context<'_>) -> Poll<Option<RouteEvent>> {
        let mut shared = self.lock();
        match shared.core.poll_event() {
            Some(event) => Poll::Ready(Some(event)),
            None => {
                shared.peer_events_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// The peer events were dropped: discard them from now on.
    pub(crate) fn close_peer_events(&self) {
        let mut shared = self.lock();
        shared.peer_events_open = false;
        shared.peer_events_waker = None;
        shared.core.drain_events();
    }

    /// `Ready` once `peer` is reachable; until then `cx`'s waker waits for
    /// the next routing change under `key` (given one on the first wait,
    /// taken back when ready).
    pub(crate) fn poll_reachable(
        &self,
        peer: &Name,
        key: &mut Option<u64>,
        cx: &mut Context<'_>,
    ) -> Poll<()> {
        let mut shared = self.lock();
        if shared.core.is_reachable(peer) {
            if let Some(key) = key.take() {
                shared.reach_waiters.remove(&key);
            }
            return Poll::Ready(());
        }
        // `pump` empties the waiters when it wakes them: register again.
        let key = *key.get_or_insert_with(|| {
            let key = shared.next_reach_waiter;
            shared.next_reach_waiter = key.wrapping_add(1);
            key
        });
        shared.reach_waiters.insert(key, cx.waker().clone());
        Poll::Pending
    }

    /// A wait for reachability under `key` was dropped.
    pub(crate) fn forget_reach_waiter(&self, key: u64) {
        self.lock().reach_waiters.remove(&key);
    }

    /// Where a stream the peer on `link` opened, for `destination`, may go,
    /// read under one lock: the links to forward it onto, best first (none
    /// unless this node routes), naming their neighbours when `watch`;
    /// and, when `watch`, the stream as it came in (its id on `link` is
    /// `stream_id`) with `link`'s port.
    pub(crate) fn next_hops(
        &self,
        destination: &Name,
        link: LinkId,
        stream_id: u32,
        watch: bool,
    ) -> (Vec<NextHop>, Option<(Hop, Arc<LinkPort>)>) {
        let shared = self.lock();
        let ports: Vec<_> = if self.config.role == Role::Router {
            shared
                .core
                .forwarding_routes(destination, link)
                .into_iter()
                .filter_map(|(next, _)| {
                    let entry = shared.links.get(&next)?;
                    let peer = watch.then(|| entry.peer.clone());
                    Some((next, Arc::clone(&entry.port), peer))
                })
                .collect()
        } else {
            Vec::new()
        };
        let inbound = match watch {
            true => shared.links.get(&link).map(|entry| {
                let hop = Hop {
                    peer: entry.peer.clone(),
                    link,
                    stream_id,
                };
                (hop, Arc::clone(&entry.port))
            }),
            false => None,
        };
        (ports, inbound)
    }

    /// A stream from `source` came in on `link`: a route back to it, if
    /// there is none.
    pub(crate) fn note_source(&self, source: &Name, link: LinkId) {
        let now = self.now();
        let mut shared = self.lock();
        if let Err(e) = shared.core.note_incoming_stream_source(source, link, now) {
            // Under the target it had before this code moved here from
            // forward.rs, so that log filters keep working.
            tracing::debug!(
                target: "circuit_node::forward",
                %source,
                error = %e,
                "no route recorded for the stream's source"
            );
        }
        shared.pump(now);
    }

    /// Registers a link whose handshake is done (see [`Shared::add_link`]).
    pub(crate) fn add_link(&self, entry: LinkEntry, first: NodeState) -> Result<LinkId, NodeError> {
        let now = self.now();
        self.lock().add_link(entry, first, now)
    }

    /// Removes a link that ended: its routes go (PROTOCOL 2.2).
    pub(crate) fn remove_link(&self, link: LinkId) {
        let now = self.now();
        self.lock().remove_link(link, now);
    }

    /// Applies a batch of route updates the peer on `link` sent.
    pub(crate) fn receive(&self, link: LinkId, batch: Vec<NodeState>) {
        let now = self.now();
        let mut shared = self.lock();
        for message in batch {
            // Under the target these events had before this code moved
            // here from link/run.rs, so that log filters keep working.
            tracing::trace!(target: "circuit_node::link::run", ?message, "route update");
            if let Err(e) = shared.core.receive(link, message, now) {
                tracing::debug!(
                    target: "circuit_node::link::run",
                    error = %e,
                    "route update ignored"
                );
            }
        }
        shared.pump(now);
    }

    /// Takes the control messages queued for `link` and encodes them onto
    /// `out`.
    pub(crate) fn encode_outbox(&self, link: LinkId, out: &mut Vec<u8>) {
        let mut shared = self.lock();
        if let Some(entry) = shared.links.get_mut(&link) {
            for message in entry.outbox.drain(..) {
                message.encode_to_vec(out);
            }
        }
    }

    /// The routing core's next deadline, as last seen.
    pub(crate) fn deadline(&self) -> Option<Duration> {
        self.lock().deadline
    }

    /// Lets the routing core act now (its deadline passed): see
    /// [`Shared::pump`].
    pub(crate) fn pump(&self) {
        let now = self.now();
        self.lock().pump(now);
    }
}

impl Shared {
    /// Registers a link whose handshake is done: up in the routing core,
    /// the peer's first `NodeState` applied, the link's first batch queued.
    fn add_link(
        &mut self,
        entry: LinkEntry,
        first: NodeState,
        now: Duration,
    ) -> Result<LinkId, NodeError> {
        let link = LinkId(self.next_link);
        self.next_link = self.next_link.wrapping_add(1);
        self.core.link_up(link, entry.quality, now)?;
        self.links.insert(link, entry);
        if let Err(e) = self.core.receive(link, first, now) {
            // Under the target it had before this code moved here from
            // node.rs, so that log filters keep working.
            tracing::warn!(
                target: "circuit_node::node",
                %link,
                error = %e,
                "first route update ignored"
            );
        }
        self.pump(now);
        Ok(link)
    }

    /// Removes a link that ended: its routes go (PROTOCOL 2.2).
    fn remove_link(&mut self, link: LinkId, now: Duration) {
        if self.links.remove(&link).is_some() {
            let _ = self.core.link_down(link, now);
            self.pump(now);
        }
    }

    /// Takes what the routing core wants done after any change or when its
    /// deadline passed: route updates go to each link's outbox (waking its
    /// future), peer events wake the application, and every link re-arms
    /// its timer if the deadline moved.
    fn pump(&mut self, now: Duration) {
        let own = self.core.name().clone();
        let outbox_bound = self
            .core
            .config()
            .max_peers
            .saturating_mul(2)
            .saturating_add(1024);
        for (link, messages) in self.core.poll_advertisements(now) {
            let Some(entry) = self.links.get_mut(&link) else {
                continue;
            };
            let mut messages = messages.into_iter().peekable();
            if entry.skip_greeting {
                entry.skip_greeting = false;
                let is_greeting = matches!(
                    messages.peek(),
                    Some(NodeState::Online { node, quality }) if *node == own && quality.get() == 0
                );
                if is_greeting {
                    messages.next();
                }
            }
            entry.outbox.extend(messages);
            if entry.outbox.len() > outbox_bound {
                entry.outbox.clear();
                entry.signal.overflow.store(true, Ordering::Release);
            }
            entry.signal.outbox.store(true, Ordering::Release);
            entry.signal.waker.wake();
        }
        if self.peer_events_open {
            if let Some(waker) = self.peer_events_waker.take() {
                waker.wake();
            }
        } else {
            self.core.drain_events();
        }
        for (_, waker) in std::mem::take(&mut self.reach_waiters) {
            waker.wake();
        }
        let deadline = self.core.next_deadline();
        if deadline != self.deadline {
            self.deadline = deadline;
            for entry in self.links.values() {
                entry.signal.deadline.store(true, Ordering::Release);
                entry.signal.waker.wake();
            }
        }
    }
}
