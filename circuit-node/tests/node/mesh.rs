//! A 100-node random connected mesh of real routers, linked in process,
//! converges: every node reaches every other within `diameter + 2`
//! advertise intervals. Prints the rounds taken and the control bytes each
//! node sent.

use std::collections::{BTreeSet, VecDeque};
use std::time::Instant;

use circuit_frame::Quality;

use crate::support::*;

const NODES: usize = 100;
const EXTRA_LINKS: usize = 100;

/// xorshift64: a reproducible topology without extra dependencies.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: usize) -> usize {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x % n as u64) as usize
    }
}

fn topology(seed: u64) -> Vec<(usize, usize, u8)> {
    let mut rng = XorShift(seed);
    let qualities = [1, 2, 5, 20];
    let mut links = Vec::new();
    let mut linked = BTreeSet::new();
    for i in 1..NODES {
        let j = rng.below(i);
        links.push((i, j, qualities[rng.below(4)]));
        linked.insert((j, i));
    }
    while links.len() < NODES - 1 + EXTRA_LINKS {
        let (a, b) = (rng.below(NODES), rng.below(NODES));
        if a != b && linked.insert((a.min(b), a.max(b))) {
            links.push((a, b, qualities[rng.below(4)]));
        }
    }
    links
}

fn diameter(links: &[(usize, usize, u8)]) -> usize {
    let mut adjacency = vec![Vec::new(); NODES];
    for &(a, b, _) in links {
        adjacency[a].push(b);
        adjacency[b].push(a);
    }
    (0..NODES)
        .map(|from| {
            let mut hops = vec![usize::MAX; NODES];
            hops[from] = 0;
            let mut queue = VecDeque::from([from]);
            while let Some(n) = queue.pop_front() {
                for &m in &adjacency[n] {
                    if hops[m] == usize::MAX {
                        hops[m] = hops[n] + 1;
                        queue.push_back(m);
                    }
                }
            }
            hops.into_iter().max().unwrap_or(0)
        })
        .max()
        .unwrap_or(0)
}

#[test]
fn hundred_router_mesh_converges_within_diameter_plus_two_intervals() {
    let start = Instant::now();
    let mut net = Net::new();
    // Small buffers: 400 mux ends in one process.
    net.mux = circuit_mux::Config::default()
        .read_buffer(4096)
        .write_buffer(4096);
    net.pipe_capacity = 64 * 1024;
    let links = topology(0x5eed_cafe);
    let diameter = diameter(&links);
    let nodes: Vec<TestNode> = (0..NODES).map(|i| net.router(&format!("n{i}"))).collect();
    let _handles: Vec<LinkHandles> = links
        .iter()
        .map(|&(a, b, quality)| {
            net.link(
                &nodes[a].node,
                &nodes[b].node,
                Quality::new(quality).unwrap(),
            )
        })
        .collect();
    net.settle();
    let everyone = |nodes: &[TestNode]| {
        nodes
            .iter()
            .all(|n| n.node.reachable_peers().len() == NODES - 1)
    };
    let mut intervals = 0;
    while !everyone(&nodes) {
        assert!(
            intervals < diameter + 2,
            "not converged after {intervals} intervals (diameter {diameter})"
        );
        net.tick();
        intervals += 1;
    }
    // Let it settle on the shortest routes, then count control bytes.
    for _ in 0..3 {
        net.tick();
    }
    let bytes: Vec<u64> = nodes
        .iter()
        .map(|n| n.node.snapshot().routing.counters.control.bytes_sent)
        .collect();
    let total: u64 = bytes.iter().sum();
    println!(
        "mesh of {NODES} routers, {} links, hop diameter {diameter}: everyone reaches everyone \
         after {intervals} intervals (bound {}); control bytes sent per node: min {}, mean {}, \
         max {}; wall time {:.2} s",
        links.len(),
        diameter + 2,
        bytes.iter().min().unwrap(),
        total / NODES as u64,
        bytes.iter().max().unwrap(),
        start.elapsed().as_secs_f64()
    );
}
