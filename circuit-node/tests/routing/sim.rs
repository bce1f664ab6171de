//! A tiny deterministic network of routing cores: each round advances a
//! virtual clock by one advertise interval, polls every core and delivers
//! what it wrote to the neighbour's `receive` at once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use circuit_frame::{Encode, NodeState, Quality};

pub use crate::support::*;
use circuit_node::routing::{LinkId, Role, RouteCore, RouteEvent, RoutingConfig};

/// Where following best routes from a node ends.
#[derive(Debug, PartialEq, Eq)]
pub enum Walk {
    /// Reached the destination after this many hops.
    Arrived(usize),
    /// Some node on the way has no route: the stream would be refused.
    Dropped,
    /// The walk came back to a node it had visited: a routing loop.
    Loop(Vec<usize>),
}

pub struct Sim {
    pub nodes: Vec<RouteCore>,
    /// (node, its link) -> (peer node, the peer's link).
    wires: BTreeMap<(usize, LinkId), (usize, LinkId)>,
    next_link: u64,
    pub now: Duration,
    pub interval: Duration,
    /// Every event each node emitted, in order.
    pub events: Vec<Vec<RouteEvent>>,
    /// Control bytes each node wrote, by `NodeState::encoded_len`.
    pub bytes_sent: Vec<u64>,
    /// Every message delivered in the last round: (from, to, message).
    pub last_round: Vec<(usize, usize, NodeState)>,
}

impl Sim {
    pub fn new() -> Self {
        Sim {
            nodes: Vec::new(),
            wires: BTreeMap::new(),
            next_link: 0,
            now: Duration::ZERO,
            interval: RoutingConfig::default().advertise_interval,
            events: Vec::new(),
            bytes_sent: Vec::new(),
            last_round: Vec::new(),
        }
    }

    pub fn add(&mut self, node: &str, role: Role) -> usize {
        self.nodes
            .push(RouteCore::new(name(node), role, RoutingConfig::default()));
        self.events.push(Vec::new());
        self.bytes_sent.push(0);
        self.nodes.len() - 1
    }

    pub fn router(&mut self, node: &str) -> usize {
        self.add(node, Role::Router)
    }

    pub fn leaf(&mut self, node: &str) -> usize {
        self.add(node, Role::Leaf)
    }

    /// Links `a` and `b` with one quality at both ends. Link ids are unique
    /// across the whole simulation, so a test can name them.
    pub fn connect(&mut self, a: usize, b: usize, quality: Quality) -> (LinkId, LinkId) {
        let la = LinkId(self.next_link);
        let lb = LinkId(self.next_link + 1);
        self.next_link += 2;
        self.nodes[a]
            .link_up(la, quality, self.now)
            .expect("fresh link");
        self.nodes[b]
            .link_up(lb, quality, self.now)
            .expect("fresh link");
        self.wires.insert((a, la), (b, lb));
        self.wires.insert((b, lb), (a, la));
        (la, lb)
    }

    /// Ends every link between `a` and `b`, at both ends.
    pub fn disconnect(&mut self, a: usize, b: usize) {
        let ends: Vec<((usize, LinkId), (usize, LinkId))> = self
            .wires
            .iter()
            .filter(|((n, _), (p, _))| *n == a && *p == b)
            .map(|(k, v)| (*k, *v))
            .collect();
        assert!(!ends.is_empty(), "{a} and {b} are not linked");
        for ((n, ln), (p, lp)) in ends {
            self.wires.remove(&(n, ln));
            self.wires.remove(&(p, lp));
            self.nodes[n].link_down(ln, self.now).expect("link is up");
            self.nodes[p].link_down(lp, self.now).expect("link is up");
        }
        self.collect_events();
    }

    /// The node at the other end of `node`'s link.
    pub fn across(&self, node: usize, link: LinkId) -> Option<usize> {
        self.wires.get(&(node, link)).map(|(peer, _)| *peer)
    }

    /// One advertise interval: advance the clock, poll every core, deliver
    /// everything written.
    pub fn round(&mut self) {
        self.now += self.interval;
        let mut outbox = Vec::new();
        for (i, node) in self.nodes.iter_mut().enumerate() {
            for (link, messages) in node.poll_advertisements(self.now) {
                for m in &messages {
                    self.bytes_sent[i] += m.encoded_len() as u64;
                }
                outbox.push((i, link, messages));
            }
        }
        self.last_round.clear();
        for (from, link, messages) in outbox {
            let Some(&(to, their_link)) = self.wires.get(&(from, link)) else {
                continue;
            };
            for m in messages {
                self.nodes[to]
                    .receive(their_link, m.clone(), self.now)
                    .expect("delivery to a live link");
                self.last_round.push((from, to, m));
            }
        }
        self.collect_events();
    }

    /// Runs rounds until one delivers nothing and nothing is pending; returns
    /// how many rounds delivered something.
    pub fn settle(&mut self, max_rounds: usize) -> usize {
        for i in 0..max_rounds {
            self.round();
            if self.last_round.is_empty() && self.nodes.iter().all(|n| n.next_deadline().is_none())
            {
                return i;
            }
        }
        panic!("no quiescence within {max_rounds} rounds");
    }

    fn collect_events(&mut self) {
        for (i, node) in self.nodes.iter_mut().enumerate() {
            self.events[i].extend(node.drain_events());
        }
    }

    /// Follows best-route next hops from `from` towards `to`.
    pub fn walk(&self, from: usize, to: usize) -> Walk {
        let dest = self.nodes[to].name().clone();
        let mut at = from;
        let mut seen = BTreeSet::from([from]);
        let mut path = vec![from];
        loop {
            if at == to {
                return Walk::Arrived(path.len() - 1);
            }
            let Some((link, _)) = self.nodes[at].best_route(&dest) else {
                return Walk::Dropped;
            };
            let Some(next) = self.across(at, link) else {
                return Walk::Dropped;
            };
            path.push(next);
            if !seen.insert(next) {
                return Walk::Loop(path);
            }
            at = next;
        }
    }

    /// Asserts that from every node, best routes to `to` never loop.
    pub fn assert_loop_free_towards(&self, to: usize, context: &str) {
        for from in 0..self.nodes.len() {
            if let Walk::Loop(path) = self.walk(from, to) {
                panic!("{context}: routing loop towards {to}: {path:?}");
            }
        }
    }

    pub fn count_events(&self, node: usize, event: &RouteEvent) -> usize {
        self.events[node].iter().filter(|e| *e == event).count()
    }
}
