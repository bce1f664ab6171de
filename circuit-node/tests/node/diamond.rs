//! A diamond a - r1 - b and a - r2 - b, the path through r1 better: streams
//! take r1; when r1's link to b drops, open streams through r1 end with an
//! epitaph and new ones take r2; when it returns, new streams take r1.

use std::io::ErrorKind;

use circuit_frame::Quality;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};

use crate::support::*;

/// Streams r's current link to b carried, not counting its control stream.
fn streams_to_b(r: &TestNode) -> u64 {
    r.node
        .snapshot()
        .link_to("b")
        .map_or(0, |l| l.mux.streams_opened.saturating_sub(1))
}

/// Opens a stream a -> b and checks it carries bytes both ways.
fn round_trip(net: &mut Net, a: &TestNode, b: &mut TestNode) -> circuit_stream::Duplex {
    net.run(async {
        let mut s = a.node.connect_to_peer("b").await.unwrap();
        s.write_all(b"ping").await.unwrap();
        let mut at_b = b.incoming.next().await.unwrap();
        let mut buf = [0; 4];
        at_b.stream.read_exact(&mut buf).await.unwrap();
        at_b.stream.write_all(b"pong").await.unwrap();
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"pong");
        // Keep b's end open: the stream stays up until a link breaks it.
        std::mem::forget(at_b);
        s
    })
}

#[test]
fn diamond_fails_over_and_back() {
    let mut net = Net::new();
    let a = net.leaf("a");
    let mut b = net.leaf("b");
    let r1 = net.router("r1");
    let r2 = net.router("r2");
    let _a_r1 = net.link(&a.node, &r1.node, Quality::IN_PROCESS);
    let mut r1_b = net.link(&r1.node, &b.node, Quality::IN_PROCESS);
    let _a_r2 = net.link(&a.node, &r2.node, Quality::USB);
    let _r2_b = net.link(&r2.node, &b.node, Quality::USB);
    net.settle();
    net.tick();
    assert_eq!(
        a.node.snapshot().next_hop("b").map(|n| n.as_str()),
        Some("r1")
    );

    let mut through_r1 = round_trip(&mut net, &a, &mut b);
    assert_eq!((streams_to_b(&r1), streams_to_b(&r2)), (1, 0));

    // r1 loses its link to b: the open stream ends with an epitaph.
    r1_b.cut();
    net.settle();
    net.run(async {
        let mut buf = Vec::new();
        let err = through_r1.read_to_end(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionAborted, "{err}");
    });
    // Within one interval r1 tells a that b is gone; a switches to r2.
    net.tick();
    assert_eq!(
        a.node.snapshot().next_hop("b").map(|n| n.as_str()),
        Some("r2")
    );
    let _s = round_trip(&mut net, &a, &mut b);
    assert_eq!(streams_to_b(&r2), 1);

    // The link comes back: new streams take r1 again.
    let _r1_b_again = net.link(&r1.node, &b.node, Quality::IN_PROCESS);
    net.settle();
    net.tick();
    assert_eq!(
        a.node.snapshot().next_hop("b").map(|n| n.as_str()),
        Some("r1")
    );
    let _s = round_trip(&mut net, &a, &mut b);
    assert_eq!((streams_to_b(&r1), streams_to_b(&r2)), (1, 1));
}
