//! The original's test family: direct links, routers, handshakes.

use circuit_frame::{Identify, Name, NodeState, Quality, RoutingHeader};
use circuit_mux::{Config, Mux, Role as MuxRole};
use circuit_node::routing::RouteEvent;
use circuit_node::NodeError;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};

use crate::support::*;

#[test]
fn connect_to_a_nonexistent_peer_is_no_such_peer() {
    let mut net = Net::new();
    let a = net.leaf("a");
    let err = net.run(a.node.connect_to_peer("nobody")).unwrap_err();
    assert!(matches!(err, NodeError::NoSuchPeer { peer } if peer == "nobody"));
}

#[test]
fn two_nodes_direct() {
    // The seed's node_connect.
    let mut net = Net::new();
    let mut a = net.leaf("a");
    let mut b = net.leaf("b");
    let _link = net.link(&a.node, &b.node, Quality::IN_PROCESS);
    net.run(async {
        assert_eq!(
            a.peers.next().await,
            Some(RouteEvent::PeerReachable(name("b")))
        );
        assert_eq!(
            b.peers.next().await,
            Some(RouteEvent::PeerReachable(name("a")))
        );
        let mut s = a.node.connect_to_peer("b").await.unwrap();
        s.write_all(&[1, 2, 3, 4, 5, 6, 7, 8]).await.unwrap();
        let mut incoming = b.incoming.next().await.unwrap();
        assert_eq!(incoming.source, "a");
        let mut buf = [0; 8];
        incoming.stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, [1, 2, 3, 4, 5, 6, 7, 8]);
        incoming.stream.write_all(b"back").await.unwrap();
        let mut buf = [0; 4];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"back");
    });
}

#[test]
fn connecting_to_oneself_delivers_locally() {
    let mut net = Net::new();
    let mut a = net.leaf("a");
    net.run(async {
        let mut s = a.node.connect_to_peer("a").await.unwrap();
        s.write_all(b"me").await.unwrap();
        let mut incoming = a.incoming.next().await.unwrap();
        assert_eq!(incoming.source, "a");
        let mut buf = [0; 2];
        incoming.stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"me");
    });
}

#[test]
fn both_open_to_each_other_at_once() {
    let mut net = Net::new();
    let mut a = net.leaf("a");
    let mut b = net.leaf("b");
    let _link = net.link(&a.node, &b.node, Quality::IN_PROCESS);
    net.run(async {
        a.peers.next().await;
        b.peers.next().await;
        let (sa, sb) = futures::join!(a.node.connect_to_peer("b"), b.node.connect_to_peer("a"));
        let (mut sa, mut sb) = (sa.unwrap(), sb.unwrap());
        futures::join!(async { sa.write_all(b"from a").await.unwrap() }, async {
            sb.write_all(b"from b").await.unwrap()
        });
        let mut at_b = b.incoming.next().await.unwrap();
        let mut at_a = a.incoming.next().await.unwrap();
        assert_eq!((at_a.source.as_str(), at_b.source.as_str()), ("b", "a"));
        let mut buf = [0; 6];
        at_b.stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"from a");
        at_a.stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"from b");
    });
}

#[test]
fn a_router_b_each_sees_the_other_and_the_router() {
    let mut net = Net::new();
    let mut a = net.leaf("a");
    let mut b = net.leaf("b");
    let mut r = net.router("r");
    let _ar = net.link(&a.node, &r.node, Quality::NETWORK);
    let _rb = net.link(&r.node, &b.node, Quality::NETWORK);
    net.settle();
    net.tick();
    let mut seen_a: Vec<_> = a.drain_peer_events();
    let mut seen_b: Vec<_> = b.drain_peer_events();
    seen_a.sort_by(|x, y| x.node().cmp(y.node()));
    seen_b.sort_by(|x, y| x.node().cmp(y.node()));
    assert_eq!(
        seen_a,
        vec![
            RouteEvent::PeerReachable(name("b")),
            RouteEvent::PeerReachable(name("r"))
        ]
    );
    assert_eq!(
        seen_b,
        vec![
            RouteEvent::PeerReachable(name("a")),
            RouteEvent::PeerReachable(name("r"))
        ]
    );
    assert_eq!(r.drain_peer_events().len(), 2);
    let snap = a.node.snapshot();
    assert_eq!(snap.route_to("b").map(|(_, q)| q.get()), Some(40));
    net.run(async {
        let mut s = a.node.connect_to_peer("b").await.unwrap();
        s.write_all(b"hello").await.unwrap();
        let mut incoming = b.incoming.next().await.unwrap();
        assert_eq!(incoming.source, "a");
        let mut buf = [0; 5];
        incoming.stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hello");
        incoming.stream.write_all(b"olleh").await.unwrap();
        incoming.stream.close().await.unwrap();
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"olleh");
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    });
}

/// A raw mux end of a link, played by the test.
struct RawPeer {
    mux: Mux,
    incoming: circuit_mux::Incoming,
    driver: futures::future::RemoteHandle<Result<(), circuit_mux::MuxError>>,
}

fn raw_peer(net: &Net, node: &circuit_node::Node, role: MuxRole) -> (RawPeer, LinkHandles) {
    let (a_io, b_io) = circuit_stream::duplex_pair(1 << 16);
    let node_role = match role {
        MuxRole::Client => MuxRole::Server,
        MuxRole::Server => MuxRole::Client,
    };
    let handle = net.spawn(node.link_io(a_io, node_role, Quality::NETWORK));
    let (mux, incoming, driver) = Mux::new(b_io, role, Config::default());
    let driver = net.spawn(driver);
    (
        RawPeer {
            mux,
            incoming,
            driver,
        },
        LinkHandles {
            a: Some(handle),
            b: None,
        },
    )
}

#[test]
fn a_route_injected_by_hand() {
    // A hand-written peer announces itself, then opens a stream from a
    // node "ghost" it never advertised: the node records a route back to
    // ghost over that link (quality UNKNOWN) and can reply.
    let mut net = Net::new();
    let mut a = net.leaf("a");
    let (raw, _link) = raw_peer(&net, &a.node, MuxRole::Server);
    net.run(async {
        let control = raw.mux.open().unwrap();
        let (_cin, cout) = control.into_split();
        cout.write_message(&Identify::new(name("test")))
            .await
            .unwrap();
        cout.write_message(&NodeState::Online {
            node: name("raw"),
            quality: Quality::SELF,
        })
        .await
        .unwrap();
        assert_eq!(
            a.peers.next().await,
            Some(RouteEvent::PeerReachable(name("raw")))
        );
        assert!(matches!(
            a.node.connect_to_peer("ghost").await,
            Err(NodeError::NoSuchPeer { .. })
        ));
        let (_r, w) = raw.mux.open().unwrap().into_split();
        w.write_message(&RoutingHeader {
            destination: name("a"),
            source: name("ghost"),
        })
        .await
        .unwrap();
        w.write_all(b"boo").await.unwrap();
        let mut incoming = a.incoming.next().await.unwrap();
        assert_eq!(incoming.source, "ghost");
        assert_eq!(
            a.peers.next().await,
            Some(RouteEvent::PeerReachable(name("ghost")))
        );
        let snap = a.node.snapshot();
        assert_eq!(
            snap.route_to("ghost").map(|(_, q)| q),
            Some(Quality::UNKNOWN)
        );
        let mut buf = [0; 3];
        incoming.stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"boo");
        // The reply goes back over the same link, with a routing header.
        let mut reply = a.node.connect_to_peer("ghost").await.unwrap();
        reply.write_all(b"!").await.unwrap();
        let mut raw_incoming = raw.incoming;
        let mut s = raw_incoming.next().await.unwrap().into_stream();
        let mut got = [0; 1 + 5 + 1 + 1 + 1];
        s.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"\x05ghost\x01a!");
    });
    drop(raw.driver);
}

fn mismatch(identify: Identify) -> NodeError {
    let mut net = Net::new();
    let a = net.leaf("a");
    let (raw, mut link) = raw_peer(&net, &a.node, MuxRole::Server);
    let result = net.run(async {
        let (_cin, cout) = raw.mux.open().unwrap().into_split();
        let mut bytes = Vec::new();
        circuit_frame::Encode::encode_to_vec(&identify, &mut bytes);
        circuit_frame::Encode::encode_to_vec(
            &NodeState::Online {
                node: name("raw"),
                quality: Quality::SELF,
            },
            &mut bytes,
        );
        cout.write_all(&bytes).await.unwrap();
        link.a.take().unwrap().await
    });
    // The node dropped its end at once: the raw peer's link ends.
    let raw_end = net.run(raw.driver);
    assert!(raw_end.is_ok(), "raw side saw {raw_end:?}");
    result.unwrap_err()
}

#[test]
fn version_mismatch_is_typed_and_closes_the_link() {
    let err = mismatch(Identify {
        version: 1,
        protocol: name("test"),
    });
    assert!(
        matches!(err, NodeError::VersionMismatch { ours: 0, theirs: 1 }),
        "{err}"
    );
}

#[test]
fn protocol_mismatch_is_typed_and_closes_the_link() {
    let err = mismatch(Identify::new(name("other")));
    assert!(
        matches!(&err, NodeError::ProtocolMismatch { ours, theirs } if *ours == "test" && *theirs == "other"),
        "{err}"
    );
}

#[test]
fn names_longer_than_255_bytes_are_refused() {
    let long = "x".repeat(256);
    assert!(matches!(
        circuit_node::Node::new(&long, "test", circuit_node::NodeConfig::leaf()),
        Err(NodeError::InvalidName(_))
    ));
    let _ = Name::new("ok").unwrap();
}

#[test]
fn a_stalled_half_header_delays_only_its_own_stream() {
    let mut net = Net::new();
    let mut a = net.leaf("a");
    let (raw, _link) = raw_peer(&net, &a.node, MuxRole::Server);
    net.run(async {
        let (_cin, cout) = raw.mux.open().unwrap().into_split();
        cout.write_message(&Identify::new(name("test")))
            .await
            .unwrap();
        cout.write_message(&NodeState::Online {
            node: name("raw"),
            quality: Quality::SELF,
        })
        .await
        .unwrap();
        a.peers.next().await;
        // Half a routing header: a name of 5 bytes, 2 of them sent.
        let (_r1, stalled) = raw.mux.open().unwrap().into_split();
        stalled.write_all(&[5, b'g', b'h']).await.unwrap();
        // A whole stream after it is delivered all the same.
        let (_r2, w) = raw.mux.open().unwrap().into_split();
        w.write_message(&RoutingHeader {
            destination: name("a"),
            source: name("raw"),
        })
        .await
        .unwrap();
        let incoming = a.incoming.next().await.unwrap();
        assert_eq!(incoming.source, "raw");
        // A stream for a node a cannot reach is refused; the link stays up.
        let (mut refused, w3) = {
            let s = raw.mux.open().unwrap();
            s.into_split()
        };
        w3.write_message(&RoutingHeader {
            destination: name("elsewhere"),
            source: name("raw"),
        })
        .await
        .unwrap();
        let mut buf = Vec::new();
        let err = AsyncReadExt::read_to_end(&mut refused, &mut buf)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("a: no route to elsewhere"),
            "{err}"
        );
        assert!(a.node.is_reachable("raw"));
        drop(stalled);
    });
}

#[test]
fn a_peer_that_sends_its_identify_and_hangs_up_is_still_a_protocol_mismatch() {
    // The peer's Identify and the end of the link arrive in one read: the
    // node must read the Identify before concluding the link just closed.
    let mut net = Net::new();
    let a = net.leaf("a");
    let (ours, theirs) = circuit_stream::duplex_pair(1 << 16);
    let mut payload = Vec::new();
    circuit_frame::Encode::encode_to_vec(&Identify::new(name("other")), &mut payload);
    circuit_frame::Encode::encode_to_vec(
        &NodeState::Online {
            node: name("raw"),
            quality: Quality::SELF,
        },
        &mut payload,
    );
    let mut bytes = Vec::new();
    circuit_frame::Encode::encode_to_vec(
        &circuit_frame::Frame::data(1, &payload).unwrap(),
        &mut bytes,
    );
    let (_reader, writer) = theirs.into_split();
    writer.try_write(&bytes).unwrap();
    drop(writer);
    let err = net
        .run(a.node.link_io(ours, MuxRole::Client, Quality::IN_PROCESS))
        .unwrap_err();
    assert!(
        matches!(&err, NodeError::ProtocolMismatch { theirs, .. } if *theirs == "other"),
        "{err}"
    );
}

#[test]
fn an_incoming_stream_looped_back_echoes_through_a_router_then_closes() {
    let mut net = Net::new();
    let a = net.leaf("a");
    let mut b = net.leaf("b");
    let r = net.router("r");
    let _ar = net.link(&a.node, &r.node, Quality::LOCAL_SOCKET);
    let _rb = net.link(&r.node, &b.node, Quality::LOCAL_SOCKET);
    net.settle();
    assert!(a.node.is_reachable("b"));
    net.run(async {
        let s = a.node.connect_to_peer("b").await.unwrap();
        let (mut reader, mut writer) = s.into_split();
        AsyncWriteExt::write_all(&mut writer, b"before ")
            .await
            .unwrap();
        let incoming = b.incoming.next().await.unwrap();
        assert_eq!(incoming.source, "a");
        // Written by b before the loop back: it goes first.
        incoming
            .stream
            .writer()
            .write_all(b"b says ")
            .await
            .unwrap();
        incoming
            .loop_back()
            .expect("a stream from a link loops back");
        let sent: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 7 + i / 251) as u8).collect();
        let send = async {
            AsyncWriteExt::write_all(&mut writer, &sent).await.unwrap();
            AsyncWriteExt::close(&mut writer).await.unwrap();
        };
        let mut echo = Vec::new();
        let ((), read) = futures::join!(send, reader.read_to_end(&mut echo));
        read.expect("the echo ends cleanly after our close");
        assert_eq!(&echo[..14], b"b says before ");
        assert!(echo[14..] == sent[..], "the echo is what a sent");
    });
}

#[test]
fn a_stream_to_oneself_is_not_looped_back_but_given_back() {
    let mut net = Net::new();
    let mut a = net.leaf("a");
    net.run(async {
        let mut s = a.node.connect_to_peer("a").await.unwrap();
        s.write_all(b"me").await.unwrap();
        let incoming = a.incoming.next().await.unwrap();
        let mut back = incoming.loop_back().expect_err("no link to loop back in");
        let mut buf = [0; 2];
        back.stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"me");
    });
}
