//! Traffic across a mesh whose links split, delay and cut (see
//! `support/faulty.rs`): every stream either delivers all its bytes, in
//! order, exactly once, or ends with an error epitaph. A stream never ends
//! cleanly with missing or wrong bytes. When every stream has ended, the
//! links hold no stream but their control stream, and once the links are
//! gone no node keeps a link or a route.

#[path = "support/faulty.rs"]
mod faulty;
#[path = "node/support.rs"]
mod support;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use circuit_frame::Quality;
use circuit_mux::Role as MuxRole;
use circuit_node::{Node, NodeError};
use futures::future::RemoteHandle;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use faulty::{Faults, Faulty};
use support::*;

/// Links `a` (client) and `b` (server), `a`'s end wrapped in faults.
fn faulty_link(net: &Net, a: &Node, b: &Node, seed: u64, faults: Faults) -> LinkHandles {
    let (a_io, b_io) = circuit_stream::duplex_pair(net.pipe_capacity);
    let a_io = Faulty::new(a_io, seed, faults);
    LinkHandles {
        a: Some(net.spawn(a.link_io(a_io, MuxRole::Client, Quality::NETWORK))),
        b: Some(net.spawn(b.link_io(b_io, MuxRole::Server, Quality::NETWORK))),
    }
}

/// The bytes of stream `index`: a header with the index, then a pattern.
fn payload(index: u32, len: usize) -> Vec<u8> {
    let mut bytes = index.to_le_bytes().to_vec();
    bytes.extend((0..len).map(|i| (i as u32).wrapping_mul(31).wrapping_add(index) as u8));
    bytes
}

#[derive(Default, Debug)]
struct Tally {
    /// Streams whose receiver read every byte and a clean end.
    delivered: usize,
    /// Streams whose receiver or sender saw an error (an epitaph).
    failed: usize,
    /// Streams that could not be opened (no route at that moment).
    not_opened: usize,
    /// Clean ends with wrong or missing bytes: must stay empty.
    mismatches: Vec<String>,
    /// Indexes delivered, to catch a stream delivered twice.
    seen: BTreeMap<u32, usize>,
}

impl Tally {
    /// Records how a receiver's stream ended; returns the answer for the
    /// sender: `k` when every byte arrived.
    fn record(
        &mut self,
        expected: &BTreeMap<u32, Vec<u8>>,
        result: std::io::Result<Vec<u8>>,
    ) -> &'static [u8] {
        let Ok(got) = result else {
            self.failed += 1;
            return b"x";
        };
        let index = got
            .get(..4)
            .map(|h| u32::from_le_bytes([h[0], h[1], h[2], h[3]]));
        match index.and_then(|i| expected.get(&i).map(|e| (i, e))) {
            Some((i, want)) if *want == got => {
                self.delivered += 1;
                *self.seen.entry(i).or_default() += 1;
                b"k"
            }
            _ => {
                self.mismatches.push(format!(
                    "clean end after {} bytes, index {index:?}",
                    got.len()
                ));
                b"x"
            }
        }
    }
}

/// Accepts streams on `node` and checks each against `expected`.
fn receiver(
    net: &Net,
    mut node: TestNode,
    expected: Rc<BTreeMap<u32, Vec<u8>>>,
    tally: Rc<RefCell<Tally>>,
) -> RemoteHandle<()> {
    let spawner = net.spawner.clone();
    net.spawn(async move {
        while let Some(incoming) = node.incoming.next().await {
            let expected = Rc::clone(&expected);
            let tally = Rc::clone(&tally);
            let check = async move {
                let mut stream = incoming.stream;
                let mut got = Vec::new();
                let result = stream.read_to_end(&mut got).await;
                let answer = tally.borrow_mut().record(&expected, result.map(|_| got));
                // Answer, so the sender knows how its stream ended.
                let _ = stream.write_all(answer).await;
                let _ = stream.close().await;
            };
            futures::task::LocalSpawnExt::spawn_local(&spawner, check).unwrap();
        }
    })
}

/// Sends `bytes` from `node` to `to`; `Ok(true)` if the receiver said it
/// got them all.
async fn send(node: Node, to: &'static str, bytes: Vec<u8>) -> Result<bool, NodeError> {
    let mut stream = node.connect_to_peer(to).await?;
    let result = async {
        stream.write_all(&bytes).await?;
        stream.close().await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    }
    .await;
    result
        .map(|answer| answer == b"k")
        .map_err(|e| NodeError::Handshake {
            reason: e.to_string(),
        })
}

/// Runs the mesh once; returns how many streams ended with an error.
fn mesh_run(seed: u64) -> usize {
    let mut net = Net::new();
    net.pipe_capacity = 8 * 1024;
    net.mux = circuit_mux::Config::default()
        .stream_receive_limit(16 * 1024)
        .stream_send_buffer(16 * 1024);
    let l1 = net.leaf("l1");
    let l2 = net.leaf("l2");
    let r1 = net.router("r1");
    let r2 = net.router("r2");
    let r3 = net.router("r3");
    // Two ways from l1 to l2: r1-r2 and r1-r3, each with a faulty hop,
    // and a cut somewhere on r1-r3 and on r2-r3.
    let mut links = [
        net.link(&l1.node, &r1.node, Quality::IN_PROCESS),
        faulty_link(&net, &r1.node, &r2.node, seed ^ 1, Faults::slow()),
        faulty_link(
            &net,
            &r1.node,
            &r3.node,
            seed ^ 2,
            Faults::cut_within(1_000_000),
        ),
        faulty_link(
            &net,
            &r2.node,
            &r3.node,
            seed ^ 3,
            Faults::cut_within(300_000),
        ),
        faulty_link(&net, &r2.node, &l2.node, seed ^ 4, Faults::slow()),
        net.link(&r3.node, &l2.node, Quality::IN_PROCESS),
    ];
    for _ in 0..10 {
        net.tick();
    }
    assert!(l1.node.is_reachable("l2"), "{}", l1.node.snapshot());

    let mut rng = StdRng::seed_from_u64(seed);
    let mut expected = BTreeMap::new();
    let mut plan = Vec::new();
    for index in 0..24u32 {
        let len = match rng.random_range(0..4) {
            0 => rng.random_range(0..16),
            1 => rng.random_range(0..4_000),
            _ => rng.random_range(0..60_000),
        };
        let bytes = payload(index, len);
        expected.insert(index, bytes.clone());
        plan.push((index, bytes));
    }
    let expected = Rc::new(expected);
    let tally = Rc::new(RefCell::new(Tally::default()));
    let l1_node = l1.node.clone();
    let l2_node = l2.node.clone();
    let _rx1 = receiver(&net, l1, Rc::clone(&expected), Rc::clone(&tally));
    let _rx2 = receiver(&net, l2, Rc::clone(&expected), Rc::clone(&tally));
    // Streams start in waves, a few per advertise interval, so that
    // later ones take the routes left after a cut.
    let mut plan = plan.into_iter().peekable();
    let mut running: Vec<(u32, RemoteHandle<Result<bool, NodeError>>)> = Vec::new();
    let mut results: BTreeMap<u32, Result<bool, NodeError>> = BTreeMap::new();
    for _ in 0..2_000 {
        for (index, bytes) in plan.by_ref().take(3) {
            let (node, to) = if index % 3 == 0 {
                (l2_node.clone(), "l1")
            } else {
                (l1_node.clone(), "l2")
            };
            running.push((index, net.spawn(send(node, to, bytes))));
        }
        net.settle();
        running.retain_mut(
            |(index, handle)| match futures::FutureExt::now_or_never(handle) {
                Some(result) => {
                    results.insert(*index, result);
                    false
                }
                None => true,
            },
        );
        if running.is_empty() && plan.peek().is_none() {
            break;
        }
        net.tick();
    }
    assert!(
        running.is_empty(),
        "seed {seed}: every stream ends, none hangs"
    );
    net.settle();
    tally.borrow_mut().not_opened = results
        .values()
        .filter(|r| matches!(r, Err(NodeError::NoSuchPeer { .. })))
        .count();
    let t = tally.borrow();
    assert!(t.mismatches.is_empty(), "seed {seed}: {:?}", t.mismatches);
    assert!(
        t.seen.values().all(|&n| n == 1),
        "seed {seed}: a stream delivered twice: {:?}",
        t.seen
    );
    // A sender told of success had its stream delivered, once.
    for (index, result) in &results {
        if let Ok(true) = result {
            assert_eq!(t.seen.get(index), Some(&1), "seed {seed}: stream {index}");
        }
    }
    assert!(t.delivered + t.failed <= 24, "seed {seed}: {t:?}");
    let sender_errors = results.values().filter(|r| r.is_err()).count();
    assert!(t.delivered > 0, "seed {seed}: nothing got through: {t:?}");
    eprintln!(
        "seed {seed}: {} delivered, {} failed at the receiver, {} senders saw an error, {} not opened",
        t.delivered,
        t.failed,
        sender_errors,
        t.not_opened
    );
    let failed = t.failed.max(sender_errors);

    // Nothing left behind: each link that is still up holds only its
    // control stream. (`receive_buffered` is an upper bound, counted
    // lazily, so it says nothing here.)
    for node in [&l1_node, &l2_node, &r1.node, &r2.node, &r3.node] {
        let snap = node.snapshot();
        for link in &snap.links {
            assert!(
                link.mux.streams_open == 1,
                "seed {seed}: {} to {}: {:?}",
                node.id(),
                link.peer,
                link.mux
            );
        }
    }
    for link in &mut links {
        link.cut();
    }
    net.settle();
    for _ in 0..5 {
        net.tick();
    }
    for node in [&l1_node, &l2_node, &r1.node, &r2.node, &r3.node] {
        let snap = node.snapshot();
        assert!(snap.links.is_empty(), "{snap}");
        // Entries in hold-down stay until the routing core next runs,
        // which needs a link; they hold no route.
        assert!(
            snap.routing
                .peers
                .iter()
                .all(|p| p.best.is_none() && p.routes.is_empty()),
            "{snap}"
        );
        assert!(node.reachable_peers().is_empty());
    }
    failed
}

#[test]
fn streams_across_faulty_links_deliver_everything_or_fail_loudly() {
    let failed: usize = (0..8).map(mesh_run).sum();
    assert!(failed > 0, "the cuts cut no stream: the test tests nothing");
}
