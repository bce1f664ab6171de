//! Forward reports (PROTOCOL 2.4): along a chain a - r1 - r2 - b, epitaphs
//! pass unchanged and each router says, as a typed value, which hop closed
//! each direction of the streams it forwards, or that it refused one.

use std::sync::Arc;

use circuit_frame::Quality;
use circuit_mux::Role as MuxRole;
use circuit_node::routing::LinkId;
use circuit_node::{
    ClosedBy, ForwardEnd, ForwardReports, LinkControl, LocalReason, NodeConfig, Toward,
};
use circuit_stream::Duplex;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};

use crate::support::*;

/// a - r1 - r2 - b, every route known; r2's link to b has a control.
struct Chain {
    net: Net,
    a: TestNode,
    r1: TestNode,
    r2: TestNode,
    b: TestNode,
    _a_r1: LinkHandles,
    _r1_r2: LinkHandles,
    r2_b: LinkHandles,
    r2_b_control: LinkControl,
}

fn chain_with(r1_config: impl FnOnce(NodeConfig) -> NodeConfig) -> Chain {
    let mut net = Net::new();
    let a = net.leaf("a");
    let r1 = net.make(
        "r1",
        r1_config(NodeConfig::router(Arc::new(net.clock.clone()))),
    );
    let r2 = net.router("r2");
    let b = net.leaf("b");
    let _a_r1 = net.link(&a.node, &r1.node, Quality::IN_PROCESS);
    let _r1_r2 = net.link(&r1.node, &r2.node, Quality::IN_PROCESS);
    let (r2_io, b_io) = circuit_stream::duplex_pair(net.pipe_capacity);
    let (r2_b_control, r2_link) =
        r2.node
            .link_io_with_control(r2_io, MuxRole::Client, Quality::IN_PROCESS);
    let r2_b = LinkHandles {
        a: Some(net.spawn(r2_link)),
        b: Some(net.spawn(b.node.link_io(b_io, MuxRole::Server, Quality::IN_PROCESS))),
    };
    net.settle();
    for _ in 0..3 {
        net.tick();
    }
    assert!(a.node.is_reachable("b") && b.node.is_reachable("a"));
    Chain {
        net,
        a,
        r1,
        r2,
        b,
        _a_r1,
        _r1_r2,
        r2_b,
        r2_b_control,
    }
}

fn chain() -> Chain {
    chain_with(|config| config)
}

/// Opens a stream a -> b carrying "hi": a's end and b's.
fn open(c: &mut Chain) -> (Duplex, Duplex) {
    let Chain { net, a, b, .. } = c;
    net.run(async {
        let mut s = a.node.connect_to_peer("b").await.unwrap();
        s.write_all(b"hi").await.unwrap();
        let mut at_b = b.incoming.next().await.unwrap();
        assert_eq!(at_b.source, "a");
        let mut buf = [0; 2];
        at_b.stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hi");
        (s, at_b.stream)
    })
}

/// Reads `s` to its end; returns the epitaph it ended with.
fn epitaph_read(net: &mut Net, s: &mut Duplex) -> Option<String> {
    net.run(async {
        let _ = s.read_to_end(&mut Vec::new()).await;
    });
    s.reader().closed_reason()
}

/// Every report waiting now.
fn drain(reports: &mut ForwardReports) -> Vec<ForwardEnd> {
    let mut out = Vec::new();
    while let Some(Some(end)) = reports.next().now_or_never_opt() {
        out.push(end);
    }
    out
}

/// The one report waiting now.
fn one(reports: &mut ForwardReports) -> ForwardEnd {
    let mut got = drain(reports);
    assert_eq!(got.len(), 1, "{got:#?}");
    got.remove(0)
}

fn link_to(node: &TestNode, peer: &str) -> LinkId {
    node.node.snapshot().link_to(peer).expect("link up").link
}

/// Checks the path of a report on a stream a -> b at router `at`, between
/// neighbours `from` and `to`.
fn assert_path(end: &ForwardEnd, at: &TestNode, from: &str, to: &str) {
    assert_eq!(end.at, at.id());
    assert_eq!(end.destination, Some(name("b")));
    assert_eq!(end.source, Some(name("a")));
    assert_eq!(end.inbound.peer, from);
    assert_eq!(end.inbound.link, link_to(at, from));
    let outbound = end.outbound.as_ref().expect("forwarded");
    assert_eq!(outbound.peer, to);
    assert_eq!(outbound.link, link_to(at, to));
}

#[test]
fn each_router_names_the_neighbour_whose_close_it_passed_on_unchanged() {
    let mut c = chain();
    let mut r1_reports = c.r1.node.forward_reports();
    let mut r2_reports = c.r2.node.forward_reports();
    let (mut at_a, mut at_b) = open(&mut c);

    // b closes its direction: a reads b's epitaph as b wrote it.
    at_b.writer().close("bye");
    assert_eq!(epitaph_read(&mut c.net, &mut at_a).as_deref(), Some("bye"));
    c.net.settle();
    let r2_end = one(&mut r2_reports);
    assert_path(&r2_end, &c.r2, "r1", "b");
    assert_eq!(r2_end.toward, Toward::Source);
    assert_eq!(r2_end.closed_by, ClosedBy::Neighbour(name("b")));
    assert_eq!(r2_end.epitaph.as_deref(), Some("bye"));
    let line = r2_end.to_string();
    assert!(line.starts_with("r2: stream a -> b (r1 #"), "{line}");
    assert!(
        line.ends_with(") closed towards the source by neighbour b: \"bye\""),
        "{line}"
    );
    let r1_end = one(&mut r1_reports);
    assert_path(&r1_end, &c.r1, "a", "r2");
    assert_eq!(r1_end.toward, Toward::Source);
    assert_eq!(r1_end.closed_by, ClosedBy::Neighbour(name("r2")));
    assert_eq!(r1_end.epitaph.as_deref(), Some("bye"));
    // One stream on the link r1 - r2: the id r1 gave it is the one r2 saw.
    assert_eq!(
        r1_end.outbound.as_ref().map(|h| h.stream_id),
        Some(r2_end.inbound.stream_id)
    );

    // Then a closes its own: the reports name the other neighbours.
    at_a.writer().close("done");
    assert_eq!(epitaph_read(&mut c.net, &mut at_b).as_deref(), Some("done"));
    c.net.settle();
    let r1_end = one(&mut r1_reports);
    assert_eq!(
        (r1_end.toward, r1_end.closed_by),
        (Toward::Destination, ClosedBy::Neighbour(name("a")))
    );
    assert_eq!(r1_end.epitaph.as_deref(), Some("done"));
    let r2_end = one(&mut r2_reports);
    assert_eq!(
        (r2_end.toward, r2_end.closed_by),
        (Toward::Destination, ClosedBy::Neighbour(name("r1")))
    );
    assert_eq!(r2_end.epitaph.as_deref(), Some("done"));
    assert_eq!(c.r1.node.snapshot().forward_reports_dropped, 0);
}

#[test]
fn a_close_without_an_epitaph_is_reported_as_none() {
    let mut c = chain();
    let mut r2_reports = c.r2.node.forward_reports();
    let (mut at_a, at_b) = open(&mut c);
    at_b.writer().close("");
    assert_eq!(epitaph_read(&mut c.net, &mut at_a), None);
    c.net.settle();
    let end = one(&mut r2_reports);
    assert_eq!(end.closed_by, ClosedBy::Neighbour(name("b")));
    assert_eq!(end.epitaph, None);
}

#[test]
fn a_stream_closed_before_the_router_read_its_header_is_reported_too() {
    let mut c = chain();
    let mut r1_reports = c.r1.node.forward_reports();
    let mut r2_reports = c.r2.node.forward_reports();
    // Header, bytes and close leave a in one go: r1 gets the close frame
    // in the same read as the stream's first bytes.
    let Chain { net, a, b, .. } = &mut c;
    let mut at_b = net.run(async {
        let s = a.node.connect_to_peer("b").await.unwrap();
        s.writer().try_write(b"x").unwrap();
        s.writer().close("short");
        b.incoming.next().await.unwrap().stream
    });
    let mut got = Vec::new();
    net.run(async {
        let _ = at_b.read_to_end(&mut got).await;
    });
    assert_eq!(got, b"x");
    assert_eq!(at_b.reader().closed_reason().as_deref(), Some("short"));
    net.settle();
    let r1_end = one(&mut r1_reports);
    assert_path(&r1_end, &c.r1, "a", "r2");
    assert_eq!(
        (r1_end.toward, r1_end.closed_by, r1_end.epitaph.as_deref()),
        (
            Toward::Destination,
            ClosedBy::Neighbour(name("a")),
            Some("short")
        )
    );
    let r2_end = one(&mut r2_reports);
    assert_eq!(
        (r2_end.toward, r2_end.closed_by, r2_end.epitaph.as_deref()),
        (
            Toward::Destination,
            ClosedBy::Neighbour(name("r1")),
            Some("short")
        )
    );
}

#[test]
fn a_cut_link_is_reported_by_the_router_on_it_and_its_epitaph_passed_on() {
    let mut c = chain();
    let mut r1_reports = c.r1.node.forward_reports();
    let mut r2_reports = c.r2.node.forward_reports();
    let (mut at_a, _at_b) = open(&mut c);
    let r2_to_b = link_to(&c.r2, "b");

    c.r2_b.cut();
    let epitaph = epitaph_read(&mut c.net, &mut at_a);
    // The epitaph names the hop that failed: r2's link to b, not a's own.
    assert_eq!(epitaph.as_deref(), Some("r2: link to b dropped"));
    c.net.settle();
    let r2_end = one(&mut r2_reports);
    assert_eq!(r2_end.toward, Toward::Source);
    assert_eq!(
        r2_end.closed_by,
        ClosedBy::ThisNode(LocalReason::LinkEnded {
            link: r2_to_b,
            peer: name("b")
        })
    );
    assert_eq!(r2_end.epitaph, epitaph, "r2's link epitaph, as a read it");
    assert_eq!(r2_end.destination, Some(name("b")));
    assert_eq!(r2_end.outbound.as_ref().map(|h| h.link), Some(r2_to_b));
    let r1_end = one(&mut r1_reports);
    assert_eq!(r1_end.toward, Toward::Source);
    assert_eq!(r1_end.closed_by, ClosedBy::Neighbour(name("r2")));
    assert_eq!(r1_end.epitaph, epitaph);
}

#[test]
fn streams_cut_by_link_control_are_reported_both_ways() {
    let mut c = chain();
    let mut r1_reports = c.r1.node.forward_reports();
    let mut r2_reports = c.r2.node.forward_reports();
    let (mut at_a, mut at_b) = open(&mut c);
    let r2_to_b = link_to(&c.r2, "b");

    c.r2_b_control.close_streams("r2 is busy");
    assert_eq!(
        epitaph_read(&mut c.net, &mut at_a).as_deref(),
        Some("r2 is busy")
    );
    assert_eq!(
        epitaph_read(&mut c.net, &mut at_b).as_deref(),
        Some("r2 is busy")
    );
    c.net.settle();
    let cut = ClosedBy::ThisNode(LocalReason::StreamsClosed {
        link: r2_to_b,
        peer: name("b"),
    });
    let mut ends = drain(&mut r2_reports);
    ends.sort_by_key(|e| e.toward == Toward::Source);
    let seen: Vec<_> = ends
        .iter()
        .map(|e| (e.toward, e.closed_by.clone(), e.epitaph.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [
            (Toward::Destination, cut.clone(), Some("r2 is busy")),
            (Toward::Source, cut, Some("r2 is busy")),
        ]
    );
    let r1_end = one(&mut r1_reports);
    assert_eq!(
        (r1_end.toward, r1_end.closed_by, r1_end.epitaph.as_deref()),
        (
            Toward::Source,
            ClosedBy::Neighbour(name("r2")),
            Some("r2 is busy")
        )
    );
}

#[test]
fn a_stream_refused_for_want_of_a_route_is_reported_where_it_was_refused() {
    let mut c = chain();
    let mut r1_reports = c.r1.node.forward_reports();
    let mut r2_reports = c.r2.node.forward_reports();
    // A leaf joins r2 so that r2 has just sent a round of updates: when it
    // loses b, r1 hears of it only at the next interval, so a stream
    // opened now still goes to r2, which refuses it.
    let other = c.net.leaf("other");
    let _other_r2 = c.net.link(&other.node, &c.r2.node, Quality::IN_PROCESS);
    c.net.settle();
    assert!(c.a.node.is_reachable("other"));
    c.r2_b.cut();
    c.net.settle();
    assert!(c.a.node.is_reachable("b"));
    let Chain { net, a, .. } = &mut c;
    let mut s = net.run(a.node.connect_to_peer("b")).unwrap();
    net.run(s.write_all(b"anyone?")).unwrap();
    let epitaph = epitaph_read(net, &mut s);
    assert_eq!(epitaph.as_deref(), Some("r2: no route to b"));
    net.settle();

    let refused = one(&mut r2_reports);
    assert_eq!(refused.at, "r2");
    assert_eq!(refused.closed_by, ClosedBy::ThisNode(LocalReason::NoRoute));
    assert_eq!(refused.toward, Toward::Source);
    assert_eq!(refused.epitaph, epitaph);
    assert_eq!(refused.destination, Some(name("b")));
    assert_eq!(refused.inbound.peer, "r1");
    assert_eq!(refused.outbound, None);
    let r1_end = one(&mut r1_reports);
    assert_eq!(r1_end.closed_by, ClosedBy::Neighbour(name("r2")));
    assert_eq!(r1_end.epitaph, epitaph);
}

#[test]
fn unread_reports_stay_within_their_bound_and_the_rest_are_counted() {
    let mut c = chain_with(|config| config.forward_report_queue(3));
    let mut r1_reports = c.r1.node.forward_reports();
    // Four streams, each closed both ways: eight reports at r1.
    for i in 0..4 {
        let (mut at_a, mut at_b) = open(&mut c);
        at_b.writer().close(format!("b {i}"));
        at_a.writer().close(format!("a {i}"));
        epitaph_read(&mut c.net, &mut at_a);
        epitaph_read(&mut c.net, &mut at_b);
    }
    c.net.settle();
    assert_eq!(c.r1.node.snapshot().forward_reports_dropped, 5);
    let kept = drain(&mut r1_reports);
    let epitaphs: Vec<_> = kept.iter().filter_map(|e| e.epitaph.as_deref()).collect();
    // The oldest are kept: both ends of the first stream, one of the
    // second (which end comes first depends on the hops it crossed).
    assert_eq!(epitaphs.len(), 3, "{epitaphs:?}");
    assert!(
        epitaphs.contains(&"a 0") && epitaphs.contains(&"b 0"),
        "{epitaphs:?}"
    );
    assert!(
        epitaphs.contains(&"a 1") || epitaphs.contains(&"b 1"),
        "{epitaphs:?}"
    );
    assert!(c
        .r1
        .node
        .snapshot()
        .to_string()
        .contains("5 forward reports dropped"));

    // Read, the queue takes reports again.
    let (mut at_a, at_b) = open(&mut c);
    at_b.writer().close("again");
    epitaph_read(&mut c.net, &mut at_a);
    c.net.settle();
    assert_eq!(one(&mut r1_reports).epitaph.as_deref(), Some("again"));
    assert_eq!(c.r1.node.snapshot().forward_reports_dropped, 5);
}

#[test]
fn without_a_subscription_nothing_is_watched_and_a_new_one_ends_the_old() {
    let mut c = chain();
    // Forwarded while no one listens: never reported, even once someone
    // does.
    let (mut at_a, at_b) = open(&mut c);
    let mut first = c.r1.node.forward_reports();
    at_b.writer().close("unwatched");
    epitaph_read(&mut c.net, &mut at_a);
    c.net.settle();
    assert!(drain(&mut first).is_empty());

    // A second subscription ends the first.
    let mut second = c.r1.node.forward_reports();
    assert_eq!(first.next().now_or_never_opt(), Some(None));
    let (mut at_a, at_b) = open(&mut c);
    at_b.writer().close("watched");
    epitaph_read(&mut c.net, &mut at_a);
    c.net.settle();
    assert_eq!(one(&mut second).epitaph.as_deref(), Some("watched"));

    // Dropped, it stops the reports: nothing is counted as dropped.
    drop(second);
    let (mut at_a, at_b) = open(&mut c);
    at_b.writer().close("after");
    epitaph_read(&mut c.net, &mut at_a);
    c.net.settle();
    assert_eq!(c.r1.node.snapshot().forward_reports_dropped, 0);
}
