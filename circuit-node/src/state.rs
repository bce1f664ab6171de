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
use std::task::Waker;
use std::time::Duration;

use circuit_frame::{Name, NodeState};
use futures::channel::mpsc;

use crate::events::IncomingStream;
use crate::link::port::{LinkPort, LinkSignal};
use crate::report::{Hop, Reports};
use crate::routing::{LinkId, RouteCore};
use crate::sync::lock;
use crate::timer::Timer;
use crate::{NodeConfig, NodeError};

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
    /// [`Node::wait_reachable`](crate::Node::wait_reachable) calls waiting
    /// for a routing change, by key; every [`Shared::pump`] wakes them all.
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

    pub(crate) fn lock(&self) -> MutexGuard<'_, Shared> {
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
