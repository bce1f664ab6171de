//! The node: its identity, its routing core, its links, and routed streams
//! opened from it (PROTOCOL 2.4).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::Duration;

use circuit_frame::{Name, NodeState, RoutingHeader};
use circuit_stream::{duplex_pair, Duplex, DEFAULT_CAPACITY};
use futures::channel::mpsc;
use futures::SinkExt;

use crate::events::{IncomingStream, IncomingStreams, PeerEvents};
use crate::link::{LinkPort, LinkSignal};
use crate::report::{ForwardReports, Reports};
use crate::routing::{LinkId, Role, RouteCore};
use crate::snapshot::{LinkInfo, NodeSnapshot};
use crate::sync::lock;
use crate::timer::Timer;
use crate::{NodeConfig, NodeError};

/// A circuit node: an id, a protocol, links to other nodes and the routes
/// learned over them. Clone it freely: clones are handles on one node.
///
/// Made with [`Node::new`], which also returns the node's [`PeerEvents`]
/// and [`IncomingStreams`]. Links are added with [`Node::link`] (a ready
/// mux) or [`Node::link_io`] (any futures-io byte stream); each returns a
/// future that runs that link until it ends. Nothing is spawned: poll or
/// spawn the link futures on the executor you use.
#[derive(Clone)]
pub struct Node {
    pub(crate) inner: Arc<NodeInner>,
}

/// What every handle of one node shares.
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
pub(crate) struct Shared {
    pub(crate) core: RouteCore,
    pub(crate) links: BTreeMap<LinkId, LinkEntry>,
    next_link: u64,
    /// The routing core's next deadline, as last seen by [`Shared::pump`].
    pub(crate) deadline: Option<Duration>,
    pub(crate) peer_events_waker: Option<Waker>,
    pub(crate) peer_events_open: bool,
    /// [`Node::wait_reachable`] calls waiting for a routing change, by key;
    /// every [`Shared::pump`] wakes them all.
    pub(crate) reach_waiters: BTreeMap<u64, Waker>,
    pub(crate) next_reach_waiter: u64,
}

/// One link that finished its handshake.
pub(crate) struct LinkEntry {
    pub(crate) peer: Name,
    pub(crate) quality: circuit_frame::Quality,
    pub(crate) role: circuit_mux::Role,
    pub(crate) port: Arc<LinkPort>,
    pub(crate) signal: Arc<LinkSignal>,
    /// Control messages for this link not yet taken by its future.
    pub(crate) outbox: VecDeque<NodeState>,
    /// The handshake already wrote `Online(self, SELF)`: drop it from the
    /// routing core's first batch.
    pub(crate) skip_greeting: bool,
}

impl Node {
    /// A node with id `id` speaking application protocol `protocol`, set up
    /// by `config`. Returns the node, its peer events and its incoming
    /// streams. Fails if `id` or `protocol` is longer than 255 bytes.
    pub fn new(
        id: &str,
        protocol: &str,
        config: NodeConfig,
    ) -> Result<(Node, PeerEvents, IncomingStreams), NodeError> {
        let id = Name::new(id)?;
        let protocol = Name::new(protocol)?;
        let (incoming_tx, incoming_rx) = mpsc::channel(config.incoming_queue);
        let core = RouteCore::new(id.clone(), config.role, config.routing.clone());
        let reports = Arc::new(Reports::new(id.clone(), config.forward_report_queue));
        let inner = Arc::new(NodeInner {
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
        });
        let events = PeerEvents::new(Arc::clone(&inner));
        Ok((Node { inner }, events, IncomingStreams::new(incoming_rx)))
    }

    /// This node's id.
    pub fn id(&self) -> &Name {
        &self.inner.id
    }

    /// The application protocol both ends of a link must share.
    pub fn protocol(&self) -> &Name {
        &self.inner.protocol
    }

    /// Whether this node routes for others.
    pub fn role(&self) -> Role {
        self.inner.config.role
    }

    /// Opens a routed stream to `peer` and returns it. The stream starts, in
    /// this direction, with `RoutingHeader { destination: peer, source: self }`
    /// (written here); the application's bytes follow.
    ///
    /// The best route is taken; if its link has just died the next one is.
    /// A stream to this node's own id is delivered to its own
    /// [`IncomingStreams`] without a link (and waits while that queue is
    /// full). Fails with [`NodeError::NoSuchPeer`] when no route is known.
    pub async fn connect_to_peer(&self, peer: &str) -> Result<Duplex, NodeError> {
        let peer = Name::new(peer)?;
        if peer == self.inner.id {
            return self.connect_to_self().await;
        }
        let ports: Vec<Arc<LinkPort>> = {
            let shared = self.inner.lock();
            shared
                .core
                .routes(&peer)
                .into_iter()
                .filter_map(|(link, _)| shared.links.get(&link).map(|l| Arc::clone(&l.port)))
                .collect()
        };
        for port in ports {
            let Some(mux) = port.mux() else { continue };
            let stream = match mux.open() {
                Ok(stream) => stream,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "route unusable, trying the next");
                    continue;
                }
            };
            let (reader, writer) = stream.into_split();
            let header = RoutingHeader {
                destination: peer.clone(),
                source: self.inner.id.clone(),
            };
            writer.write_message(&header).await?;
            return Ok(Duplex::from_parts(reader, writer));
        }
        Err(NodeError::NoSuchPeer { peer })
    }

    async fn connect_to_self(&self) -> Result<Duplex, NodeError> {
        let (ours, theirs) = duplex_pair(DEFAULT_CAPACITY);
        let incoming = IncomingStream {
            source: self.inner.id.clone(),
            stream: theirs,
        };
        let mut tx = self.inner.incoming_tx.clone();
        tx.send(incoming)
            .await
            .map_err(|_| NodeError::NotAccepting {
                node: self.inner.id.clone(),
            })?;
        Ok(ours)
    }

    /// Whether `peer` is reachable now.
    pub fn is_reachable(&self, peer: &str) -> bool {
        self.inner
            .lock()
            .core
            .reachable_peers()
            .any(|n| n.as_str() == peer)
    }

    /// The nodes reachable now, in name order.
    pub fn reachable_peers(&self) -> Vec<Name> {
        self.inner.lock().core.reachable_peers().cloned().collect()
    }

    /// A copy of the routing table and of every link's state, for tools,
    /// tests and a command line. Its `Display` is a table for people.
    pub fn snapshot(&self) -> NodeSnapshot {
        let shared = self.inner.lock();
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
            forward_reports_dropped: self.inner.reports.dropped(),
        }
    }

    /// Subscribes to this node's reports on the streams it forwards and
    /// refuses (PROTOCOL 2.4): for each direction of a forwarded stream
    /// that carries a close on, and for each refused stream, a
    /// [`ForwardEnd`](crate::ForwardEnd) saying which neighbour's close it
    /// was or why this node closed it, with the epitaph passed on
    /// unchanged. The same reports go to `tracing` as `DEBUG` events.
    ///
    /// Opt-in: with no subscription (and those events off) forwarding
    /// watches nothing. Streams forwarded while a subscription is open are
    /// reported; those spliced before are not (unless those events were on
    /// then). Opening a new subscription
    /// ends the previous one. Bounded: see [`ForwardReports`].
    pub fn forward_reports(&self) -> ForwardReports {
        self.inner.reports.subscribe()
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.inner.id)
            .field("protocol", &self.inner.protocol)
            .field("role", &self.inner.config.role)
            .finish()
    }
}

impl NodeInner {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Shared> {
        lock(&self.shared)
    }

    pub(crate) fn now(&self) -> Duration {
        self.timer.now()
    }

    /// Stream `stream_id` of the link `link`, as a report names it.
    pub(crate) fn hop(&self, link: LinkId, stream_id: u32) -> Option<crate::Hop> {
        let peer = self.lock().links.get(&link)?.peer.clone();
        Some(crate::Hop {
            peer,
            link,
            stream_id,
        })
    }
}

impl Shared {
    /// Registers a link whose handshake is done: up in the routing core,
    /// the peer's first `NodeState` applied, the link's first batch queued.
    pub(crate) fn add_link(
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
            tracing::warn!(%link, error = %e, "first route update ignored");
        }
        self.pump(now);
        Ok(link)
    }

    /// Removes a link that ended: its routes go (PROTOCOL 2.2).
    pub(crate) fn remove_link(&mut self, link: LinkId, now: Duration) {
        if self.links.remove(&link).is_some() {
            let _ = self.core.link_down(link, now);
            self.pump(now);
        }
    }

    /// Takes what the routing core wants done after any change or when its
    /// deadline passed: route updates go to each link's outbox (waking its
    /// future), peer events wake the application, and every link re-arms
    /// its timer if the deadline moved.
    pub(crate) fn pump(&mut self, now: Duration) {
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
