//! Route advertisement: what each neighbour is told, and when.

use std::collections::BTreeMap;
use std::time::Duration;

use circuit_frame::{Encode, Name, NodeState, Quality};

use super::counters::count;
use super::{LinkId, Role, RouteCore};

impl RouteCore {
    /// The `NodeState` messages to write now, per link.
    ///
    /// - A link's first batch is due as soon as it is up: `Online(self,
    ///   SELF)` first, then (routers only) every route the neighbour may be
    ///   told. A leaf never sends anything else.
    /// - After that a router sends each neighbour only the difference from
    ///   what it last told it, in rounds at most one
    ///   [`advertise_interval`](super::RoutingConfig::advertise_interval)
    ///   apart, so a burst of changes costs one round.
    /// - A neighbour is told `Online(n, q)` with `q` this node's own quality
    ///   to `n` (the receiver adds its link's quality), except that the next
    ///   hop of the route to `n` is told `Offline(n)` (poisoned reverse) and
    ///   a node only reachable at the saturated quality 254 is `Offline`.
    ///   "Offline" is sent only to a neighbour that was told `Online(n)`:
    ///   one never told holds no route to `n` via us anyway.
    ///
    /// Also ends due hold-downs ([`handle_timeout`](Self::handle_timeout)).
    /// Links with nothing to send are left out of the result.
    pub fn poll_advertisements(&mut self, now: Duration) -> Vec<(LinkId, Vec<NodeState>)> {
        self.handle_timeout(now);
        let router = self.role == Role::Router;
        let round_due = router && self.round_due_at().is_some_and(|due| due <= now);
        let any_new = self.links.values().any(|l| !l.greeted && l.up_at <= now);
        if !round_due && !any_new {
            return Vec::new();
        }

        // What any neighbour may be told: (node, quality, next hop).
        let advertisable: Vec<(&Name, Quality, LinkId)> = if router {
            self.peers
                .iter()
                .filter_map(|(name, peer)| {
                    let (link, quality) = peer.best?;
                    (!quality.is_worst()).then_some((name, quality, link))
                })
                .collect()
        } else {
            Vec::new()
        };

        let mut out = Vec::new();
        let total = &mut self.counters.control;
        for (&id, link) in self.links.iter_mut() {
            let desired = || -> BTreeMap<Name, Quality> {
                advertisable
                    .iter()
                    .filter(|(_, _, next_hop)| *next_hop != id)
                    .map(|(name, quality, _)| ((*name).clone(), *quality))
                    .collect()
            };
            let messages = if !link.greeted {
                if link.up_at > now {
                    continue;
                }
                link.greeted = true;
                let mut messages = vec![NodeState::Online {
                    node: self.name.clone(),
                    quality: Quality::SELF,
                }];
                if router {
                    let told = desired();
                    messages.extend(told.iter().map(|(node, quality)| NodeState::Online {
                        node: node.clone(),
                        quality: *quality,
                    }));
                    link.told = told;
                }
                messages
            } else if round_due {
                let told = desired();
                let messages = diff(&link.told, &told);
                link.told = told;
                messages
            } else {
                continue;
            };
            if messages.is_empty() {
                continue;
            }
            for message in &messages {
                let len = message.encoded_len();
                count(
                    &mut link.counters.messages_sent,
                    &mut link.counters.bytes_sent,
                    len,
                );
                count(&mut total.messages_sent, &mut total.bytes_sent, len);
            }
            out.push((id, messages));
        }
        if round_due {
            self.last_round = Some(now);
            self.pending_since = None;
        }
        out
    }

    /// The earliest time at which [`poll_advertisements`](Self::poll_advertisements)
    /// would hand out something or a hold-down ends; `None` if nothing is
    /// pending. A time at or before `now` means "poll now".
    ///
    /// The async driver sleeps until this deadline or until it changes the
    /// core itself (a link event or a received message), then polls and
    /// asks again: no polling loop is needed, since nothing but those calls
    /// and the passing of time changes the core.
    pub fn next_deadline(&self) -> Option<Duration> {
        let greeting = self
            .links
            .values()
            .filter(|l| !l.greeted)
            .map(|l| l.up_at)
            .min();
        let round = if self.role == Role::Router {
            self.round_due_at()
        } else {
            None
        };
        let hold_down = self.hold_downs.first().map(|(until, _)| *until);
        let lapse = self.stream_routes.first().map(|(until, _, _)| *until);
        [greeting, round, hold_down, lapse]
            .into_iter()
            .flatten()
            .min()
    }

    /// When the next round of updates may go, if a change is pending.
    fn round_due_at(&self) -> Option<Duration> {
        let pending = self.pending_since?;
        let earliest = match self.last_round {
            Some(last) => last.saturating_add(self.config.advertise_interval),
            None => pending,
        };
        Some(pending.max(earliest))
    }
}

/// The messages that turn a neighbour's view `told` into `desired`: every
/// changed or new `Online`, then an `Offline` for every node it must forget,
/// each in name order.
fn diff(told: &BTreeMap<Name, Quality>, desired: &BTreeMap<Name, Quality>) -> Vec<NodeState> {
    let online = desired
        .iter()
        .filter(|(node, quality)| told.get(*node) != Some(*quality))
        .map(|(node, quality)| NodeState::Online {
            node: node.clone(),
            quality: *quality,
        });
    let offline = told
        .keys()
        .filter(|node| !desired.contains_key(*node))
        .map(|node| NodeState::Offline { node: node.clone() });
    online.chain(offline).collect()
}
