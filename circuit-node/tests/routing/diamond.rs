//! The diamond a - r1 - b, a - r2 - b, with the path through r1 better:
//! traffic takes r1, moves to r2 when r1's link to b drops, and comes back
//! when it returns. Every node routes.

use circuit_frame::Quality;
use circuit_node::routing::RoutingConfig;

use crate::sim::{name, Sim, Walk};

struct Diamond {
    sim: Sim,
    a: usize,
    r1: usize,
    r2: usize,
    b: usize,
}

/// a-r1 and r1-b are USB (5), a-r2 and r2-b `via_r2` each.
fn diamond(via_r2: u8) -> Diamond {
    let mut sim = Sim::new();
    let a = sim.router("a");
    let r1 = sim.router("r1");
    let r2 = sim.router("r2");
    let b = sim.router("b");
    let slow = Quality::new(via_r2).unwrap();
    sim.connect(a, r1, Quality::USB);
    sim.connect(r1, b, Quality::USB);
    sim.connect(a, r2, slow);
    sim.connect(r2, b, slow);
    sim.settle(20);
    assert_eq!((r1, r2), (R1, R2));
    Diamond { sim, a, r1, r2, b }
}

/// The router after `from` on the way to `to`.
fn next_hop(sim: &Sim, from: usize, to: usize) -> Option<usize> {
    let (link, _) = sim.nodes[from].best_route(sim.nodes[to].name())?;
    sim.across(from, link)
}

/// Indices of the routers in the simulation, in the order `diamond` adds them.
const R1: usize = 1;
const R2: usize = 2;

/// Runs rounds until a's next hop to b is `want`; returns how many.
fn rounds_until_a_uses(d: &mut Diamond, want: usize, max: usize) -> usize {
    for round in 1..=max {
        d.sim.round();
        for to in [d.a, d.r1, d.r2, d.b] {
            d.sim
                .assert_loop_free_towards(to, &format!("round {round}"));
        }
        if next_hop(&d.sim, d.a, d.b) == Some(want) {
            return round;
        }
    }
    panic!("a still does not route via {want} after {max} intervals");
}

#[test]
fn diamond_prefers_the_better_router() {
    let d = diamond(20);
    assert_eq!(next_hop(&d.sim, d.a, d.b), Some(d.r1));
    assert_eq!(next_hop(&d.sim, d.b, d.a), Some(d.r1));
    assert_eq!(d.sim.nodes[d.a].best_route(&name("b")).unwrap().1.get(), 10);
    assert_eq!(d.sim.walk(d.a, d.b), Walk::Arrived(2));
}

/// Through r2 a is 20 from b's neighbour r2, not below its feasible
/// distance 10, so the switch waits for the hold-down: the bound is one
/// interval for r1's Offline plus the hold-down plus one round.
#[test]
fn diamond_reroutes_via_r2_after_hold_down_and_back_via_r1() {
    let mut d = diamond(20);
    d.sim.disconnect(d.r1, d.b);
    let bound = RoutingConfig::default().hold_down_intervals as usize + 2;
    let took = rounds_until_a_uses(&mut d, R2, bound);
    println!("diamond: a moved to r2 after {took} intervals (bound {bound})");
    assert_eq!(d.sim.nodes[d.a].best_route(&name("b")).unwrap().1.get(), 40);
    d.sim.settle(20);
    assert_eq!(d.sim.walk(d.b, d.a), Walk::Arrived(2));

    d.sim.connect(d.r1, d.b, Quality::USB);
    let back = rounds_until_a_uses(&mut d, R1, 3);
    println!("diamond: a moved back to r1 after {back} intervals");
    d.sim.settle(20);
    assert_eq!(d.sim.nodes[d.a].best_route(&name("b")).unwrap().1.get(), 10);
    assert_eq!(next_hop(&d.sim, d.b, d.a), Some(d.r1));
}

/// With r2's side cheap enough to pass the feasibility test (r2 reaches b at
/// 8, below a's feasible distance 10), a switches as soon as it hears of
/// the failure: one interval.
#[test]
fn diamond_switches_at_once_when_the_alternative_is_feasible() {
    let mut d = diamond(8);
    assert_eq!(next_hop(&d.sim, d.a, d.b), Some(d.r1));
    d.sim.disconnect(d.r1, d.b);
    let took = rounds_until_a_uses(&mut d, R2, 1);
    assert_eq!(took, 1);
    assert_eq!(d.sim.nodes[d.a].best_route(&name("b")).unwrap().1.get(), 16);
}

#[test]
fn diamond_loses_the_a_r1_link() {
    let mut d = diamond(20);
    d.sim.disconnect(d.a, d.r1);
    let bound = RoutingConfig::default().hold_down_intervals as usize + 2;
    let took = rounds_until_a_uses(&mut d, R2, bound);
    println!("diamond: after a-r1 fails a uses r2 after {took} intervals");
    d.sim.settle(20);
    assert_eq!(d.sim.walk(d.b, d.a), Walk::Arrived(2));
    assert_eq!(d.sim.walk(d.r1, d.a), Walk::Arrived(3));
}
