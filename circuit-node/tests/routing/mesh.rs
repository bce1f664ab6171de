//! A 100-node random connected mesh of routers converges within
//! `diameter + 2` intervals to loop-free shortest routes.

use std::collections::{BTreeSet, VecDeque};

use circuit_frame::Quality;

use crate::sim::{Sim, Walk};

/// xorshift64: enough randomness for a reproducible topology, no deps.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const NODES: usize = 100;
const EXTRA_LINKS: usize = 100;

struct Mesh {
    sim: Sim,
    /// Undirected links with their quality.
    links: Vec<(usize, usize, u8)>,
}

fn mesh(seed: u64) -> Mesh {
    let mut rng = XorShift(seed);
    let qualities = [1, 2, 5, 20];
    let mut sim = Sim::new();
    for i in 0..NODES {
        sim.router(&format!("n{i}"));
    }
    let mut links = Vec::new();
    let mut linked = BTreeSet::new();
    // A random spanning tree keeps it connected; extra links make cycles.
    for i in 1..NODES {
        let j = rng.below(i);
        links.push((i, j, qualities[rng.below(4)]));
        linked.insert((j, i));
    }
    while links.len() < NODES - 1 + EXTRA_LINKS {
        let (a, b) = (rng.below(NODES), rng.below(NODES));
        let key = (a.min(b), a.max(b));
        if a != b && linked.insert(key) {
            links.push((a, b, qualities[rng.below(4)]));
        }
    }
    for &(a, b, quality) in &links {
        sim.connect(a, b, Quality::new(quality).unwrap());
    }
    Mesh { sim, links }
}

/// Hop counts from `from` to every node (BFS).
fn hops_from(links: &[(usize, usize, u8)], from: usize) -> Vec<usize> {
    let mut hops = vec![usize::MAX; NODES];
    hops[from] = 0;
    let mut queue = VecDeque::from([from]);
    while let Some(n) = queue.pop_front() {
        for &(a, b, _) in links {
            let other = if a == n {
                b
            } else if b == n {
                a
            } else {
                continue;
            };
            if hops[other] == usize::MAX {
                hops[other] = hops[n] + 1;
                queue.push_back(other);
            }
        }
    }
    hops
}

/// Lowest path quality from `from` to every node (Bellman-Ford, capped at
/// 254 as `Quality::combine` does).
fn qualities_from(links: &[(usize, usize, u8)], from: usize) -> Vec<u32> {
    let mut best = vec![u32::MAX; NODES];
    best[from] = 0;
    for _ in 0..NODES {
        for &(a, b, q) in links {
            for (x, y) in [(a, b), (b, a)] {
                if best[x] != u32::MAX {
                    let via = (best[x] + u32::from(q)).min(254);
                    if via < best[y] {
                        best[y] = via;
                    }
                }
            }
        }
    }
    best
}

fn fully_reachable(sim: &Sim) -> bool {
    (0..NODES).all(|a| (0..NODES).all(|b| a == b || sim.nodes[a].is_reachable(sim.nodes[b].name())))
}

#[test]
fn random_mesh_of_100_converges_within_diameter_plus_two() {
    let mut m = mesh(0x5eed_c1c0_17ee_0001);
    let diameter = (0..NODES)
        .map(|n| *hops_from(&m.links, n).iter().max().unwrap())
        .max()
        .unwrap();
    let bound = diameter + 2;

    let mut reachable_at = None;
    for round in 1..=bound {
        m.sim.round();
        for to in 0..NODES {
            m.sim
                .assert_loop_free_towards(to, &format!("round {round}"));
        }
        if fully_reachable(&m.sim) {
            reachable_at = Some(round);
            break;
        }
    }
    let Some(reachable_at) = reachable_at else {
        panic!("not every node reaches every other within {bound} intervals");
    };
    let quiet_after = reachable_at + m.sim.settle(100);

    // The routes found are the shortest, and following them arrives.
    for a in 0..NODES {
        let best = qualities_from(&m.links, a);
        for (b, &shortest) in best.iter().enumerate() {
            if a == b {
                continue;
            }
            let (_, quality) = m.sim.nodes[a].best_route(m.sim.nodes[b].name()).unwrap();
            assert_eq!(u32::from(quality.get()), shortest, "n{a} to n{b}");
            assert!(matches!(m.sim.walk(a, b), Walk::Arrived(_)), "n{a} to n{b}");
        }
    }

    let mut bytes = m.sim.bytes_sent.clone();
    bytes.sort_unstable();
    let total: u64 = bytes.iter().sum();
    println!(
        "mesh: {NODES} routers, {} links, hop diameter {diameter}: every node reaches \
         every other after {reachable_at} intervals (bound {bound}), quiet after {quiet_after}",
        m.links.len()
    );
    println!(
        "mesh: control bytes sent per node: min {} median {} max {} mean {} (total {total})",
        bytes[0],
        bytes[NODES / 2],
        bytes[NODES - 1],
        total / NODES as u64
    );
}

#[test]
fn random_mesh_survives_losing_links_without_loops() {
    let mut m = mesh(0x0dd_ba11);
    m.sim.settle(100);
    let mut rng = XorShift(7);
    // Take down 20 links that are not part of the spanning tree (the extra
    // ones), so the mesh stays connected.
    for _ in 0..20 {
        let k = NODES - 1 + rng.below(m.links.len() - (NODES - 1));
        let (a, b, _) = m.links.remove(k);
        m.sim.disconnect(a, b);
        m.sim.round();
        for to in 0..NODES {
            m.sim.assert_loop_free_towards(to, "after a link failure");
        }
    }
    m.sim.settle(200);
    // Every node still reaches every other, loop-free. Routes need not be
    // the shortest any more: a router keeps its feasible distance while the
    // node stays reachable, so a shorter route whose neighbour advertises
    // at or above it stays aside (the price of feasibility without sequence
    // numbers, PROTOCOL 2.3). Count how often that happens.
    let mut longer = 0;
    let mut worst = 0;
    for a in 0..NODES {
        let best = qualities_from(&m.links, a);
        for (b, &shortest) in best.iter().enumerate() {
            if a != b {
                assert!(matches!(m.sim.walk(a, b), Walk::Arrived(_)), "n{a} to n{b}");
                let (_, quality) = m.sim.nodes[a].best_route(m.sim.nodes[b].name()).unwrap();
                let quality = u32::from(quality.get());
                assert!(quality >= shortest);
                if quality > shortest {
                    longer += 1;
                    worst = worst.max(quality - shortest);
                }
            }
        }
    }
    println!(
        "mesh after 20 link failures: {longer} of {} routes longer than the shortest \
         (by at most {worst})",
        NODES * (NODES - 1)
    );
}
