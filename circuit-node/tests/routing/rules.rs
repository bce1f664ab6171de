//! One test per rule of PROTOCOL 2.2 and 2.3, on a single core fed by hand.

use std::time::Duration;

use circuit_frame::Quality;
use circuit_node::routing::{LinkId, Role, RouteCore, RouteEvent, RoutingConfig};
use circuit_node::NodeError;

use crate::support::{ms, name, offline, online, q};

const L1: LinkId = LinkId(1);
const L2: LinkId = LinkId(2);
const L3: LinkId = LinkId(3);
const T0: Duration = Duration::ZERO;

fn core(role: Role, links: &[(LinkId, u8)]) -> RouteCore {
    core_with(role, RoutingConfig::default(), links)
}

fn core_with(role: Role, config: RoutingConfig, links: &[(LinkId, u8)]) -> RouteCore {
    let mut core = RouteCore::new(name("me"), role, config);
    for &(link, quality) in links {
        core.link_up(link, q(quality), T0).unwrap();
    }
    // Hand out the greetings so later polls show only updates.
    core.poll_advertisements(T0);
    core
}

/// The messages for `link` in one poll.
fn sent_on(core: &mut RouteCore, link: LinkId, now: Duration) -> Vec<circuit_frame::NodeState> {
    core.poll_advertisements(now)
        .into_iter()
        .find(|(l, _)| *l == link)
        .map(|(_, m)| m)
        .unwrap_or_default()
}

#[test]
fn online_over_link_adds_link_quality_once() {
    let mut r = core(Role::Router, &[(L1, 20), (L2, 5)]);
    r.receive(L1, online("a", 20), T0).unwrap();
    assert_eq!(r.best_route(&name("a")), Some((L1, q(40))));
    // What we tell the other neighbour is our own quality, 40, not 40 + 5:
    // the receiver adds its link.
    assert_eq!(sent_on(&mut r, L2, ms(100)), vec![online("a", 40)]);
}

#[test]
fn online_about_self_is_ignored() {
    let mut r = core(Role::Router, &[(L1, 20)]);
    r.receive(L1, online("me", 0), T0).unwrap();
    r.receive(L1, offline("me"), T0).unwrap();
    assert_eq!(r.best_route(&name("me")), None);
    assert_eq!(r.peer_table_len(), 0);
    assert!(r.drain_events().is_empty());
}

#[test]
fn online_replaces_the_route_via_the_same_link() {
    let mut r = core(Role::Leaf, &[(L1, 20)]);
    r.receive(L1, online("a", 20), T0).unwrap();
    r.receive(L1, online("a", 60), T0).unwrap();
    assert_eq!(r.routes(&name("a")), vec![(L1, q(80))]);
}

#[test]
fn offline_drops_the_route_via_that_link_only() {
    let mut r = core(Role::Leaf, &[(L1, 20), (L2, 20)]);
    r.receive(L1, online("a", 0), T0).unwrap();
    r.receive(L2, online("a", 10), T0).unwrap();
    r.receive(L2, offline("a"), T0).unwrap();
    assert_eq!(r.routes(&name("a")), vec![(L1, q(20))]);
    // Offline for a node never heard of changes nothing.
    r.receive(L1, offline("nobody"), T0).unwrap();
    assert_eq!(r.peer_table_len(), 1);
}

#[test]
fn link_down_drops_every_route_via_it() {
    let mut r = core(Role::Leaf, &[(L1, 20), (L2, 20)]);
    r.receive(L1, online("a", 0), T0).unwrap();
    r.receive(L1, online("b", 0), T0).unwrap();
    r.receive(L2, online("b", 5), T0).unwrap();
    r.drain_events();
    r.link_down(L1, T0).unwrap();
    assert_eq!(r.best_route(&name("a")), None);
    assert_eq!(r.best_route(&name("b")), Some((L2, q(25))));
    assert_eq!(
        r.drain_events(),
        vec![RouteEvent::PeerUnreachable(name("a"))]
    );
    assert!(matches!(
        r.link_down(L1, T0),
        Err(NodeError::UnknownLink { link: L1 })
    ));
}

#[test]
fn combined_quality_saturates_at_254() {
    let mut r = core(Role::Leaf, &[(L1, 200)]);
    r.receive(L1, online("a", 200), T0).unwrap();
    assert_eq!(r.best_route(&name("a")), Some((L1, Quality::WORST)));
}

#[test]
fn tie_broken_by_lowest_link() {
    let mut r = core(Role::Leaf, &[(L3, 20), (L2, 20), (L1, 20)]);
    r.receive(L3, online("a", 0), T0).unwrap();
    r.receive(L2, online("a", 0), T0).unwrap();
    assert_eq!(r.best_route(&name("a")), Some((L2, q(20))));
    r.receive(L1, online("a", 0), T0).unwrap();
    assert_eq!(r.best_route(&name("a")), Some((L1, q(20))));
}

#[test]
fn routes_list_alternatives_best_first() {
    let mut r = core(Role::Leaf, &[(L1, 20), (L2, 5), (L3, 1)]);
    r.receive(L1, online("a", 0), T0).unwrap();
    r.receive(L2, online("a", 30), T0).unwrap();
    r.receive(L3, online("a", 19), T0).unwrap();
    assert_eq!(
        r.routes(&name("a")),
        vec![(L1, q(20)), (L3, q(20)), (L2, q(35))]
    );
}

#[test]
fn forwarding_never_makes_a_u_turn() {
    let mut r = core(Role::Router, &[(L1, 20), (L2, 20)]);
    r.receive(L1, online("a", 0), T0).unwrap();
    r.receive(L2, online("a", 10), T0).unwrap();
    assert_eq!(r.best_route(&name("a")), Some((L1, q(20))));
    assert_eq!(r.best_route_excluding(&name("a"), L1), Some((L2, q(30))));
    assert_eq!(r.best_route_excluding(&name("a"), L2), Some((L1, q(20))));
    r.link_down(L2, T0).unwrap();
    assert_eq!(r.best_route_excluding(&name("a"), L1), None);
}

#[test]
fn incoming_stream_source_gets_an_unknown_route() {
    let mut r = core(Role::Router, &[(L1, 20), (L2, 20)]);
    r.note_incoming_stream_source(&name("x"), L1, T0).unwrap();
    assert_eq!(r.best_route(&name("x")), Some((L1, Quality::UNKNOWN)));
    assert_eq!(r.drain_events(), vec![RouteEvent::PeerReachable(name("x"))]);
    // Saturated: never advertised; and never used to forward others' streams.
    assert!(sent_on(&mut r, L2, ms(100)).is_empty());
    assert_eq!(r.best_route_excluding(&name("x"), L2), None);
    // A known route is left alone.
    r.receive(L2, online("a", 0), T0).unwrap();
    r.note_incoming_stream_source(&name("a"), L1, T0).unwrap();
    assert_eq!(r.routes(&name("a")), vec![(L2, q(20))]);
    // An advertisement replaces the stream-learned route.
    r.receive(L1, online("x", 0), T0).unwrap();
    assert_eq!(r.best_route(&name("x")), Some((L1, q(20))));
}

#[test]
fn first_message_is_online_self_then_the_dump_without_link_quality() {
    let mut r = RouteCore::new(name("r"), Role::Router, RoutingConfig::default());
    r.link_up(L1, Quality::NETWORK, T0).unwrap();
    assert_eq!(r.next_deadline(), Some(T0));
    assert_eq!(sent_on(&mut r, L1, T0), vec![online("r", 0)]);
    r.receive(L1, online("a", 0), T0).unwrap();
    // A new neighbour's first batch goes at once, even mid-interval.
    r.link_up(L2, Quality::USB, ms(10)).unwrap();
    let out = r.poll_advertisements(ms(10));
    assert_eq!(out, vec![(L2, vec![online("r", 0), online("a", 20)])]);
}

#[test]
fn leaf_sends_only_online_self() {
    let mut leaf = RouteCore::new(name("me"), Role::Leaf, RoutingConfig::default());
    leaf.link_up(L1, Quality::NETWORK, T0).unwrap();
    assert_eq!(sent_on(&mut leaf, L1, T0), vec![online("me", 0)]);
    leaf.receive(L1, online("a", 0), T0).unwrap();
    leaf.receive(L1, online("b", 20), T0).unwrap();
    assert_eq!(leaf.next_deadline(), None);
    assert!(leaf.poll_advertisements(ms(1000)).is_empty());
    assert_eq!(leaf.best_route(&name("b")), Some((L1, q(40))));
}

#[test]
fn poisoned_reverse_to_next_hop() {
    let mut r = core(Role::Router, &[(L1, 20), (L2, 20)]);
    r.receive(L2, online("a", 30), T0).unwrap();
    // a is reached via L2: L1 hears Online(a, 50), L2 (the next hop) nothing.
    let out = r.poll_advertisements(ms(100));
    assert_eq!(out, vec![(L1, vec![online("a", 50)])]);
    // The best route moves to L1: L1 is now the next hop and must be told
    // Offline(a); L2 now hears Online(a, 20).
    r.receive(L1, online("a", 0), ms(150)).unwrap();
    let out = r.poll_advertisements(ms(200));
    assert_eq!(
        out,
        vec![(L1, vec![offline("a")]), (L2, vec![online("a", 20)])]
    );
}

#[test]
fn infeasible_route_kept_aside() {
    let mut r = core(Role::Router, &[(L1, 20), (L2, 20)]);
    r.receive(L1, online("a", 0), T0).unwrap();
    // Feasible distance is now 20. A neighbour advertising a at 20 or more
    // could be routing through us: its route is kept aside.
    r.receive(L2, online("a", 20), T0).unwrap();
    let snap = r.snapshot();
    let a = snap.peer("a").unwrap();
    assert_eq!(a.feasible_distance, Some(q(20)));
    let aside = a.routes.iter().find(|route| route.link == L2).unwrap();
    assert!(!aside.feasible && !aside.best);
    assert_eq!(r.routes(&name("a")), vec![(L1, q(20))]);
    assert_eq!(r.best_route_excluding(&name("a"), L1), None);
    // One advertised strictly below the feasible distance is taken.
    r.receive(L2, online("a", 19), T0).unwrap();
    assert_eq!(r.routes(&name("a")), vec![(L1, q(20)), (L2, q(39))]);
}

#[test]
fn no_feasible_route_left_means_unreachable_and_offline_to_everyone() {
    let mut r = core(Role::Router, &[(L1, 20), (L2, 20), (L3, 20)]);
    r.receive(L1, online("a", 0), T0).unwrap();
    r.poll_advertisements(ms(100)); // L2, L3 told Online(a, 20)
    r.receive(L2, online("a", 40), ms(100)).unwrap(); // infeasible
    r.drain_events();
    r.link_down(L1, ms(150)).unwrap();
    assert_eq!(r.best_route(&name("a")), None);
    assert_eq!(
        r.drain_events(),
        vec![RouteEvent::PeerUnreachable(name("a"))]
    );
    let out = r.poll_advertisements(ms(200));
    assert_eq!(
        out,
        vec![(L2, vec![offline("a")]), (L3, vec![offline("a")])]
    );
    // Still in the table, held down with its feasible distance.
    let snap = r.snapshot();
    let a = snap.peer("a").unwrap();
    assert_eq!(
        a.hold_down_until,
        Some(ms(150) + RoutingConfig::default().hold_down())
    );
    assert_eq!(a.feasible_distance, Some(q(20)));
}

#[test]
fn hold_down_forgets_feasible_distance() {
    let mut r = core(Role::Router, &[(L1, 20), (L2, 20)]);
    r.receive(L1, online("a", 0), T0).unwrap();
    r.receive(L2, online("a", 40), T0).unwrap(); // infeasible, kept aside
    r.link_down(L1, ms(100)).unwrap();
    r.drain_events();
    let until = ms(100) + RoutingConfig::default().hold_down();
    assert!(
        r.next_deadline() <= Some(ms(100)),
        "the Offline round is due"
    );
    r.poll_advertisements(ms(100));
    assert_eq!(r.next_deadline(), Some(until));
    r.poll_advertisements(until - Duration::from_nanos(1));
    assert_eq!(r.best_route(&name("a")), None);
    // After the hold-down any route may be taken again.
    r.handle_timeout(until);
    assert_eq!(r.best_route(&name("a")), Some((L2, q(60))));
    assert_eq!(r.drain_events(), vec![RouteEvent::PeerReachable(name("a"))]);
    assert_eq!(
        r.snapshot().peer("a").unwrap().feasible_distance,
        Some(q(60))
    );
}

#[test]
fn feasible_route_during_hold_down_is_taken_at_once() {
    let mut r = core(Role::Router, &[(L1, 20), (L2, 20)]);
    r.receive(L1, online("a", 20), T0).unwrap(); // fd 40
    r.link_down(L1, T0).unwrap();
    assert!(r.snapshot().peer("a").unwrap().hold_down_until.is_some());
    r.receive(L2, online("a", 39), ms(10)).unwrap();
    assert_eq!(r.best_route(&name("a")), Some((L2, q(59))));
    let a = r.snapshot().peer("a").unwrap().clone();
    assert_eq!(a.hold_down_until, None);
    assert_eq!(a.feasible_distance, Some(q(40)), "fd only ever decreases");
    assert_eq!(r.next_deadline(), Some(T0), "only the round is pending");
}

#[test]
fn unreachable_peer_leaves_the_table() {
    // A leaf keeps no feasible distance: an unreachable node goes at once.
    let mut leaf = core(Role::Leaf, &[(L1, 20)]);
    leaf.receive(L1, online("a", 0), T0).unwrap();
    leaf.link_down(L1, T0).unwrap();
    assert_eq!(leaf.peer_table_len(), 0);
    // A router keeps it for the hold-down, then forgets it.
    let mut r = core(Role::Router, &[(L1, 20)]);
    r.receive(L1, online("a", 0), T0).unwrap();
    r.receive(L1, offline("a"), T0).unwrap();
    assert_eq!(r.peer_table_len(), 1);
    r.handle_timeout(RoutingConfig::default().hold_down());
    assert_eq!(r.peer_table_len(), 0);
    assert_eq!(
        r.next_deadline(),
        Some(T0),
        "the Offline round is still due"
    );
}

#[test]
fn saturated_route_is_not_advertised() {
    let mut r = core(Role::Router, &[(L1, 200), (L2, 20)]);
    r.receive(L1, online("a", 100), T0).unwrap();
    assert_eq!(r.best_route(&name("a")), Some((L1, Quality::WORST)));
    assert!(r.poll_advertisements(ms(100)).is_empty());
    // Reachable at 200 first, then saturated: advertised, then withdrawn.
    r.receive(L1, online("b", 0), ms(100)).unwrap();
    assert_eq!(sent_on(&mut r, L2, ms(200)), vec![online("b", 200)]);
    r.receive(L1, online("b", 60), ms(200)).unwrap();
    assert_eq!(sent_on(&mut r, L2, ms(300)), vec![offline("b")]);
    assert!(r.is_reachable(&name("b")), "still usable locally");
}

#[test]
fn burst_of_changes_costs_one_round() {
    let mut r = core(Role::Router, &[(L1, 20), (L2, 20)]);
    r.receive(L1, online("a", 0), T0).unwrap();
    assert_eq!(sent_on(&mut r, L2, T0), vec![online("a", 20)]);
    // Three changes within the next interval: nothing before it ends.
    r.receive(L1, online("b", 0), ms(10)).unwrap();
    r.receive(L1, online("c", 0), ms(20)).unwrap();
    r.receive(L1, online("a", 5), ms(30)).unwrap();
    assert_eq!(r.next_deadline(), Some(ms(100)));
    assert!(r.poll_advertisements(ms(99)).is_empty());
    assert_eq!(
        sent_on(&mut r, L2, ms(100)),
        vec![online("a", 25), online("b", 20), online("c", 20)]
    );
    assert_eq!(r.next_deadline(), None);
    // Undone changes cost nothing on the wire.
    r.receive(L1, online("a", 9), ms(150)).unwrap();
    r.receive(L1, online("a", 5), ms(160)).unwrap();
    assert!(r.poll_advertisements(ms(200)).is_empty());
}

#[test]
fn peer_table_is_bounded() {
    let mut config = RoutingConfig::default();
    config.max_peers = 3;
    let mut r = core_with(Role::Router, config, &[(L1, 20)]);
    for n in ["a", "b", "c"] {
        r.receive(L1, online(n, 0), T0).unwrap();
    }
    assert!(matches!(
        r.receive(L1, online("d", 0), T0),
        Err(NodeError::PeerTableFull { node, max: 3 }) if node == name("d")
    ));
    assert_eq!(
        r.note_incoming_stream_source(&name("e"), L1, T0)
            .map_err(|_| ()),
        Err(())
    );
    assert_eq!(r.peer_table_len(), 3);
    assert_eq!(r.counters().peer_table_full, 2);
    // Known names still update; a freed slot can be taken.
    r.receive(L1, online("a", 1), T0).unwrap();
    r.receive(L1, offline("b"), T0).unwrap();
    r.handle_timeout(RoutingConfig::default().hold_down());
    r.receive(L1, online("d", 0), T0).unwrap();
    assert!(r.is_reachable(&name("d")));
}

#[test]
fn peer_reachable_fires_once_until_unreachable() {
    let mut r = core(Role::Leaf, &[(L1, 20), (L2, 20)]);
    r.receive(L1, online("a", 0), T0).unwrap();
    r.receive(L2, online("a", 0), T0).unwrap();
    r.receive(L1, online("a", 3), T0).unwrap();
    assert_eq!(r.poll_event(), Some(RouteEvent::PeerReachable(name("a"))));
    assert_eq!(r.poll_event(), None);
    r.link_down(L1, T0).unwrap();
    assert_eq!(r.poll_event(), None);
    r.link_down(L2, T0).unwrap();
    assert_eq!(r.poll_event(), Some(RouteEvent::PeerUnreachable(name("a"))));
}

#[test]
fn misuse_of_link_ids_is_an_error_not_a_panic() {
    let mut r = core(Role::Router, &[(L1, 20)]);
    assert!(matches!(
        r.link_up(L1, q(1), T0),
        Err(NodeError::DuplicateLink { link: L1 })
    ));
    assert!(matches!(
        r.receive(L2, online("a", 0), T0),
        Err(NodeError::UnknownLink { link: L2 })
    ));
    assert!(matches!(
        r.note_incoming_stream_source(&name("a"), L2, T0),
        Err(NodeError::UnknownLink { link: L2 })
    ));
    assert_eq!(r.counters().unknown_link, 2);
}

#[test]
fn counters_count_control_messages_and_bytes() {
    let mut r = RouteCore::new(name("r"), Role::Router, RoutingConfig::default());
    r.link_up(L1, q(20), T0).unwrap();
    r.poll_advertisements(T0); // Online(r, 0): 1 + 1 + 1 bytes
    r.receive(L1, online("abc", 0), T0).unwrap(); // 1 + 1 + 3 bytes
    let c = r.link_counters(L1).unwrap();
    assert_eq!((c.messages_sent, c.bytes_sent), (1, 3));
    assert_eq!((c.messages_received, c.bytes_received), (1, 5));
    r.link_down(L1, T0).unwrap();
    assert_eq!(r.link_counters(L1), None);
    assert_eq!(r.counters().control, c, "totals outlive the link");
}

#[test]
fn snapshot_displays_the_table() {
    let mut r = core(Role::Router, &[(L1, 20), (L2, 20)]);
    r.receive(L1, online("a", 0), T0).unwrap();
    r.receive(L2, online("a", 30), T0).unwrap();
    let text = r.snapshot().to_string();
    assert!(text.contains("a via link#1 quality 20 fd 20"), "{text}");
    assert!(
        text.contains("! link#2 quality 50 (advertised 30)"),
        "{text}"
    );
}

#[test]
fn stream_learned_route_lapses_after_its_ttl_and_each_stream_renews_it() {
    let mut config = RoutingConfig::default();
    config.stream_route_ttl = ms(1000);
    let mut r = core_with(Role::Leaf, config, &[(L1, 20)]);
    r.note_incoming_stream_source(&name("client"), L1, T0)
        .unwrap();
    assert_eq!(
        r.drain_events(),
        vec![RouteEvent::PeerReachable(name("client"))]
    );
    assert_eq!(r.next_deadline(), Some(ms(1000)));
    // A second stream at 600 ms renews the route until 1600 ms.
    r.note_incoming_stream_source(&name("client"), L1, ms(600))
        .unwrap();
    r.handle_timeout(ms(1000));
    assert!(r.is_reachable(&name("client")));
    assert_eq!(r.next_deadline(), Some(ms(1600)));
    r.handle_timeout(ms(1600));
    assert!(!r.is_reachable(&name("client")));
    assert_eq!(
        r.drain_events(),
        vec![RouteEvent::PeerUnreachable(name("client"))]
    );
    assert_eq!(r.peer_table_len(), 0, "the peer table forgets it");
    assert_eq!(r.next_deadline(), None);
}

#[test]
fn an_advertisement_makes_a_stream_learned_route_permanent() {
    let mut config = RoutingConfig::default();
    config.stream_route_ttl = ms(1000);
    let mut r = core_with(Role::Leaf, config, &[(L1, 20)]);
    r.note_incoming_stream_source(&name("x"), L1, T0).unwrap();
    r.receive(L1, online("x", 0), ms(10)).unwrap();
    r.handle_timeout(ms(5000));
    assert_eq!(r.best_route(&name("x")), Some((L1, q(20))));
}

#[test]
fn a_full_peer_table_drops_stream_learned_nodes_before_refusing_routes() {
    let mut config = RoutingConfig::default();
    config.max_peers = 3;
    let mut r = core_with(Role::Router, config, &[(L1, 20)]);
    r.receive(L1, online("a", 0), T0).unwrap();
    r.note_incoming_stream_source(&name("s1"), L1, T0).unwrap();
    r.note_incoming_stream_source(&name("s2"), L1, ms(1))
        .unwrap();
    // A new advertised node takes the place of the oldest stream-learned one.
    r.receive(L1, online("b", 0), ms(2)).unwrap();
    assert!(r.is_reachable(&name("b")));
    assert!(!r.is_reachable(&name("s1")));
    assert!(r.is_reachable(&name("s2")));
    assert_eq!(r.peer_table_len(), 3);
}
