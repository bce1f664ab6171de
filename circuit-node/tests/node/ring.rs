//! A ring of 4 routers with a leaf on one: when the leaf leaves, every
//! router drops it within 2 advertise intervals, "unreachable" fires
//! everywhere, and a stream to it is refused, never forwarded in a loop.

use std::io::ErrorKind;

use circuit_frame::Quality;
use circuit_node::routing::RouteEvent;
use circuit_node::NodeError;
use futures::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

/// The bound this test asserts: the leaf hangs off r0, the farthest router
/// (r2) is 2 hops away, and each hop costs at most one interval.
const DROP_BOUND_INTERVALS: usize = 2;

#[test]
fn leaf_leaving_a_ring_is_dropped_everywhere_without_loops() {
    let mut net = Net::new();
    let mut routers: Vec<TestNode> = (0..4).map(|i| net.router(&format!("r{i}"))).collect();
    let leaf = net.leaf("leaf");
    let mut ring = Vec::new();
    for i in 0..4 {
        let j = (i + 1) % 4;
        ring.push(net.link(&routers[i].node, &routers[j].node, Quality::NETWORK));
    }
    let mut leaf_link = net.link(&leaf.node, &routers[0].node, Quality::NETWORK);
    net.settle();
    for _ in 0..4 {
        net.tick();
    }
    for r in &mut routers {
        assert!(
            r.node.is_reachable("leaf"),
            "{} has no route to leaf",
            r.id()
        );
        r.drain_peer_events();
    }

    // Another leaf joins r2 now, so that every router has just sent a
    // round of updates: the next one is rate-limited to one interval later.
    let other = net.leaf("other");
    let _other_link = net.link(&other.node, &routers[2].node, Quality::NETWORK);
    net.settle();
    for r in &mut routers {
        assert!(
            r.node.is_reachable("other"),
            "{} has no route to other",
            r.id()
        );
        r.drain_peer_events();
    }

    // The leaf leaves.
    leaf_link.cut();
    net.settle();
    assert!(!routers[0].node.is_reachable("leaf"), "r0 drops it at once");
    assert!(
        routers[2].node.is_reachable("leaf"),
        "r2 cannot know yet: r0's update waits for the next interval"
    );

    // A stream opened now by r2, which still believes in a route, is
    // carried towards r0 and refused there, with an epitaph naming leaf.
    let opened_before: u64 = total_streams_opened(&routers);
    let mut stream = net.run(routers[2].node.connect_to_peer("leaf")).unwrap();
    net.run(async {
        stream.write_all(b"anyone?").await.unwrap();
        let mut buf = Vec::new();
        let err = stream.read_to_end(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionAborted);
        assert!(err.to_string().contains("r0: no route to leaf"), "{err}");
    });
    // Each link counts a stream at both ends: at most 2 hops, 4 counts.
    let carried = total_streams_opened(&routers) - opened_before;
    assert!(
        carried <= 4,
        "the stream crossed {carried} link ends: a loop"
    );

    let mut intervals = 0;
    while routers.iter().any(|r| r.node.is_reachable("leaf")) {
        assert!(
            intervals < DROP_BOUND_INTERVALS,
            "still reachable after {intervals} intervals"
        );
        net.tick();
        intervals += 1;
    }
    println!("ring of 4: every router dropped the leaf within {intervals} intervals");
    for r in &mut routers {
        let events = r.drain_peer_events();
        assert!(
            events.contains(&RouteEvent::PeerUnreachable(name("leaf"))),
            "{}: {events:?}",
            r.id()
        );
    }
    // It stays gone after the hold-down, and a new stream is refused.
    for _ in 0..5 {
        net.tick();
    }
    for r in &routers {
        assert!(!r.node.is_reachable("leaf"), "{} brought leaf back", r.id());
    }
    assert!(matches!(
        net.run(routers[2].node.connect_to_peer("leaf")),
        Err(NodeError::NoSuchPeer { .. })
    ));
    drop(ring);
}

fn total_streams_opened(routers: &[TestNode]) -> u64 {
    routers
        .iter()
        .flat_map(|r| r.node.snapshot().links)
        .map(|l| l.mux.streams_opened)
        .sum()
}
