//! A ring of four routers with a leaf on one of them: when the leaf
//! leaves, every router drops it within a bounded number of intervals and
//! no routing loop ever forms (the v0 count-to-infinity case).

use circuit_frame::Quality;
use circuit_node::routing::{RouteEvent, RoutingConfig};

use crate::sim::{name, Sim, Walk};

/// Intervals after the leaf's link goes down by which every router has
/// dropped it: r0 drops it at once, and its Offline travels one hop per
/// interval to the farthest router, 2 hops away (`d` in the crate docs).
const DROP_BOUND: usize = 2;

/// r0 - r1 - r2 - r3 - r0, leaf on r0.
fn ring() -> (Sim, [usize; 4], usize) {
    let mut sim = Sim::new();
    let r = [
        sim.router("r0"),
        sim.router("r1"),
        sim.router("r2"),
        sim.router("r3"),
    ];
    for i in 0..4 {
        sim.connect(r[i], r[(i + 1) % 4], Quality::NETWORK);
    }
    let leaf = sim.leaf("leaf");
    sim.connect(leaf, r[0], Quality::NETWORK);
    (sim, r, leaf)
}

#[test]
fn ring_converges_to_shortest_routes() {
    let (mut sim, r, leaf) = ring();
    let rounds = sim.settle(20);
    println!("ring of 4 + leaf settled after {rounds} rounds");
    let leaf_name = name("leaf");
    let expected = [20, 40, 60, 40];
    for (i, &router) in r.iter().enumerate() {
        let (_, quality) = sim.nodes[router].best_route(&leaf_name).unwrap();
        assert_eq!(quality.get(), expected[i], "r{i} to the leaf");
        assert!(matches!(sim.walk(router, leaf), Walk::Arrived(_)));
    }
    // The leaf reaches every router through r0.
    for &router in &r {
        assert!(matches!(sim.walk(leaf, router), Walk::Arrived(_)));
    }
}

#[test]
fn leaf_leaving_a_ring_is_dropped_everywhere_without_a_loop() {
    let (mut sim, r, leaf) = ring();
    sim.settle(20);
    let leaf_name = name("leaf");
    sim.disconnect(leaf, r[0]);

    // Watch long past the hold-down, when stale routes could come back.
    let hold_down = RoutingConfig::default().hold_down_intervals as usize;
    let watch = DROP_BOUND + hold_down + 10;
    let mut dropped_at = [None; 4];
    for round in 1..=watch {
        sim.round();
        for (i, &router) in r.iter().enumerate() {
            if sim.nodes[router].best_route(&leaf_name).is_none() && dropped_at[i].is_none() {
                dropped_at[i] = Some(round);
            }
            if round >= DROP_BOUND {
                assert_eq!(
                    sim.nodes[router].best_route(&leaf_name),
                    None,
                    "r{i} still routes to the gone leaf {round} intervals later"
                );
            }
        }
        sim.assert_loop_free_towards(leaf, &format!("round {round}"));
    }
    println!("ring: intervals to drop the leaf per router: {dropped_at:?} (bound {DROP_BOUND})");
    let gone = RouteEvent::PeerUnreachable(leaf_name.clone());
    for &router in &r {
        assert_eq!(sim.count_events(router, &gone), 1);
        assert_eq!(sim.nodes[router].peer_table_len(), 4 - 1, "leaf forgotten");
        assert_eq!(sim.nodes[router].snapshot().peer("leaf"), None);
    }
    // The rest of the ring is untouched.
    for &a in &r {
        for &b in &r {
            assert!(matches!(sim.walk(a, b), Walk::Arrived(_)));
        }
    }
    // And no more control traffic once it is all over.
    sim.round();
    assert!(sim.last_round.is_empty());
}

#[test]
fn leaf_returning_after_hold_down_is_reachable_again() {
    let (mut sim, r, leaf) = ring();
    sim.settle(20);
    sim.disconnect(leaf, r[0]);
    sim.settle(20);
    sim.connect(leaf, r[2], Quality::USB);
    sim.settle(20);
    let leaf_name = name("leaf");
    let reachable = RouteEvent::PeerReachable(leaf_name.clone());
    for (i, &router) in r.iter().enumerate() {
        assert!(matches!(sim.walk(router, leaf), Walk::Arrived(_)), "r{i}");
        assert_eq!(sim.count_events(router, &reachable), 2, "r{i}");
    }
    assert_eq!(sim.nodes[r[0]].best_route(&leaf_name).unwrap().1.get(), 45);
}

#[test]
fn ring_link_failure_reroutes_the_long_way_round() {
    let (mut sim, r, leaf) = ring();
    sim.settle(20);
    sim.disconnect(r[0], r[1]);
    let mut rounds = 0;
    for round in 1..=20 {
        sim.round();
        sim.assert_loop_free_towards(leaf, &format!("round {round}"));
        if matches!(sim.walk(r[1], leaf), Walk::Arrived(_)) {
            rounds = round;
            break;
        }
    }
    println!("ring: r1 reaches the leaf the long way after {rounds} intervals");
    assert!(rounds > 0, "r1 never found the way round");
    sim.settle(20);
    assert_eq!(
        sim.nodes[r[1]].best_route(&name("leaf")).unwrap().1.get(),
        80
    );
}
