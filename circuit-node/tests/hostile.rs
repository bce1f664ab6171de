//! Hostile peers against a real node: the test plays the peer's end of the
//! link, writing bytes built with circuit-frame (and some no codec would
//! build). Each case ends in a typed error or a refused stream, never a
//! panic, and memory stays bounded.
//!
//! Covered elsewhere, so not repeated here: a version or protocol
//! mismatch, a stalled half routing header (`tests/node/basics.rs`), a
//! connection header shorter than 16 bytes (`tests/node/connection.rs`).

#[path = "node/support.rs"]
mod support;

use circuit_frame::{Encode, Identify, NodeState, Quality, RoutingHeader};
use circuit_mux::{Config, Mux, MuxError, Role as MuxRole};
use circuit_node::routing::RoutingConfig;
use circuit_node::{Node, NodeError};
use circuit_stream::{Reader, Writer};
use futures::future::RemoteHandle;
use futures::{AsyncReadExt, StreamExt};

use support::*;

/// Bytes of a `Name` whose content is not UTF-8.
const BAD_NAME: &[u8] = &[3, b'x', 0xff, 0xfe];

/// The test's end of a link to a node: a raw mux (the server, so it opens
/// the control stream) and the node's link future.
struct Hostile {
    mux: Mux,
    control_in: Reader,
    control_out: Writer,
    _driver: RemoteHandle<Result<(), MuxError>>,
    link: Option<RemoteHandle<Result<(), NodeError>>>,
}

impl Hostile {
    fn new(net: &Net, node: &Node) -> Hostile {
        let (node_io, peer_io) = circuit_stream::duplex_pair(1 << 16);
        let link = net.spawn(node.link_io(node_io, MuxRole::Client, Quality::NETWORK));
        let (mux, _incoming, driver) = Mux::new(peer_io, MuxRole::Server, Config::default());
        let (control_in, control_out) = mux.open().expect("a fresh mux opens").into_split();
        Hostile {
            mux,
            control_in,
            control_out,
            _driver: net.spawn(driver),
            link: Some(link),
        }
    }

    /// Sends a correct `Identify` and `Online(raw)`.
    async fn greet(&self) {
        let mut bytes = Vec::new();
        Identify::new(name("test")).encode_to_vec(&mut bytes);
        online("raw", Quality::SELF).encode_to_vec(&mut bytes);
        self.control_out.write_all(&bytes).await.unwrap();
    }

    /// Whether the node's link future has ended, and how.
    fn ended(&mut self) -> Option<Result<(), NodeError>> {
        let link = self.link.as_mut()?;
        let result = futures::FutureExt::now_or_never(link)?;
        self.link = None;
        Some(result)
    }
}

fn online(node: &str, quality: Quality) -> NodeState {
    NodeState::Online {
        node: name(node),
        quality,
    }
}

fn node_with_max_peers(net: &mut Net, max_peers: usize) -> TestNode {
    let mut routing = RoutingConfig::default();
    routing.max_peers = max_peers;
    net.routing = routing;
    net.leaf("a")
}

#[test]
fn thousands_of_announced_names_stop_at_max_peers_and_the_link_stays_up() {
    let mut net = Net::new();
    let mut a = node_with_max_peers(&mut net, 100);
    let mut raw = Hostile::new(&net, &a.node);
    net.run(raw.greet());
    net.settle();
    let mut flood = Vec::new();
    for i in 0..5000 {
        online(&format!("fake-{i}"), Quality::NETWORK).encode_to_vec(&mut flood);
    }
    net.run(raw.control_out.write_all(&flood)).unwrap();
    net.settle();
    a.drain_peer_events();

    let snap = a.node.snapshot();
    assert_eq!(snap.routing.peers.len(), 100, "the table is full, not past");
    assert_eq!(a.node.reachable_peers().len(), 100);
    assert!(a.node.is_reachable("raw"));
    assert!(
        snap.routing.counters.peer_table_full >= 4900,
        "refusals are counted: {}",
        snap.routing.counters.peer_table_full
    );
    assert!(raw.ended().is_none(), "the link stays up");
    assert_eq!(snap.links.len(), 1);

    // Withdrawing names makes room again.
    let mut withdraw = Vec::new();
    for i in 0..5000 {
        NodeState::Offline {
            node: name(&format!("fake-{i}")),
        }
        .encode_to_vec(&mut withdraw);
    }
    online("late", Quality::NETWORK).encode_to_vec(&mut withdraw);
    net.run(raw.control_out.write_all(&withdraw)).unwrap();
    net.settle();
    assert_eq!(a.node.reachable_peers(), vec![name("late"), name("raw")]);
}

#[test]
fn a_name_that_is_not_utf8_in_identify_ends_the_link_with_a_typed_error() {
    let mut net = Net::new();
    let a = net.leaf("a");
    let mut raw = Hostile::new(&net, &a.node);
    let mut bytes = vec![0];
    bytes.extend_from_slice(BAD_NAME);
    online("raw", Quality::SELF).encode_to_vec(&mut bytes);
    net.run(raw.control_out.write_all(&bytes)).unwrap();
    net.settle();
    let err = raw.ended().expect("the link ended").unwrap_err();
    assert!(
        matches!(&err, NodeError::Handshake { reason } if reason.contains("UTF-8")),
        "{err:?}"
    );
    assert!(a.node.snapshot().links.is_empty());
}

#[test]
fn a_name_that_is_not_utf8_in_the_first_node_state_ends_the_link() {
    let mut net = Net::new();
    let a = net.leaf("a");
    let mut raw = Hostile::new(&net, &a.node);
    let mut bytes = Vec::new();
    Identify::new(name("test")).encode_to_vec(&mut bytes);
    bytes.push(0);
    bytes.extend_from_slice(BAD_NAME);
    net.run(raw.control_out.write_all(&bytes)).unwrap();
    net.settle();
    let err = raw.ended().expect("the link ended").unwrap_err();
    assert!(
        matches!(&err, NodeError::Handshake { reason } if reason.contains("UTF-8")),
        "{err:?}"
    );
}

#[test]
fn a_name_that_is_not_utf8_in_a_later_node_state_ends_that_link_only() {
    let mut net = Net::new();
    let mut a = net.leaf("a");
    let b = net.leaf("b");
    let _ab = net.link(&a.node, &b.node, Quality::IN_PROCESS);
    let mut raw = Hostile::new(&net, &a.node);
    net.run(raw.greet());
    net.settle();
    assert!(a.node.is_reachable("raw"));
    let mut bytes = Vec::new();
    online("fine", Quality::NETWORK).encode_to_vec(&mut bytes);
    bytes.push(Quality::NETWORK.get());
    bytes.extend_from_slice(BAD_NAME);
    net.run(raw.control_out.write_all(&bytes)).unwrap();
    net.settle();
    let err = raw.ended().expect("the link ended").unwrap_err();
    assert!(
        matches!(&err, NodeError::Control { reason } if reason.contains("UTF-8")),
        "{err:?}"
    );
    // The routes over that link went with it; the other link is untouched.
    a.drain_peer_events();
    assert_eq!(a.node.reachable_peers(), vec![name("b")]);
    let mut s = net.run(a.node.connect_to_peer("b")).unwrap();
    net.run(futures::AsyncWriteExt::write_all(&mut s, b"still up"))
        .unwrap();
}

/// Opens a stream from the hostile peer with `header` and returns the
/// epitaph the node closed it with.
fn refused_header(net: &mut Net, raw: &Hostile, header: &[u8]) -> String {
    let (mut r, w) = raw.mux.open().unwrap().into_split();
    net.run(w.write_all(header)).unwrap();
    let err = net
        .run(AsyncReadExt::read_to_end(&mut r, &mut Vec::new()))
        .unwrap_err();
    err.to_string()
}

#[test]
fn a_name_that_is_not_utf8_in_a_routing_header_refuses_that_stream_only() {
    let mut net = Net::new();
    let mut a = net.leaf("a");
    let mut raw = Hostile::new(&net, &a.node);
    net.run(raw.greet());
    net.settle();

    // As the destination.
    let epitaph = refused_header(&mut net, &raw, &[BAD_NAME, b"\x03raw"].concat());
    assert!(epitaph.contains("malformed stream header"), "{epitaph}");
    // As the source of a stream for this node.
    let epitaph = refused_header(&mut net, &raw, &[b"\x01a", BAD_NAME].concat());
    assert!(epitaph.contains("malformed stream header"), "{epitaph}");

    // The link is up and a good stream after them is delivered.
    assert!(raw.ended().is_none());
    let (_r, w) = raw.mux.open().unwrap().into_split();
    let mut header = Vec::new();
    RoutingHeader {
        destination: name("a"),
        source: name("raw"),
    }
    .encode_to_vec(&mut header);
    header.extend_from_slice(b"hi");
    net.run(w.write_all(&header)).unwrap();
    let mut incoming = net.run(a.incoming.next()).unwrap();
    assert_eq!(incoming.source, "raw");
    let mut buf = [0; 2];
    net.run(incoming.stream.read_exact(&mut buf)).unwrap();
    assert_eq!(&buf, b"hi");
    // Nothing of the refused streams is left open on the link.
    net.settle();
    let link = a.node.snapshot().links[0].mux;
    assert!(link.streams_open <= 2, "{link:?}");
    drop(raw.control_in);
}

/// A peer that negotiates credit byte by byte and then sends past what the
/// node granted: that link ends with a flow-control error; the node's other
/// link and its streams go on.
#[test]
fn data_past_the_granted_credit_ends_that_link_only() {
    use circuit_frame::{Frame, LinkControl, LINK_CONTROL_ID};
    use futures::AsyncWriteExt;

    let mut net = Net::new();
    let a = net.leaf("a");
    let mut b = net.leaf("b");
    let _ab = net.link(&a.node, &b.node, Quality::LOCAL_SOCKET);
    net.settle();
    assert!(a.node.is_reachable("b"));

    // The hostile peer is the server: its control stream's first frame,
    // its HELLO, then a stream of 65,536 bytes and one more.
    let (node_io, mut peer_io) = circuit_stream::duplex_pair(1 << 20);
    let link = net.spawn(a.node.link_io(node_io, MuxRole::Client, Quality::NETWORK));
    let frame = |id: u32, payload: &[u8], out: &mut Vec<u8>| {
        Frame::data(id, payload).unwrap().encode_to_vec(out);
    };
    let mut bytes = Vec::new();
    let mut hello = Vec::new();
    Identify::new(name("test")).encode_to_vec(&mut hello);
    online("raw", Quality::SELF).encode_to_vec(&mut hello);
    frame(1, &hello, &mut bytes);
    let mut control = Vec::new();
    LinkControl::hello().encode_to_vec(&mut control);
    frame(LINK_CONTROL_ID, &control, &mut bytes);
    let mut stream = Vec::new();
    RoutingHeader {
        destination: name("a"),
        source: name("raw"),
    }
    .encode_to_vec(&mut stream);
    stream.resize(65_535, 0);
    frame(3, &stream, &mut bytes);
    frame(3, &[0], &mut bytes);
    // 65,536 bytes on stream 3: all of its initial credit.
    net.run(peer_io.write_all(&bytes)).unwrap();
    net.settle();
    let mut link = link;
    assert!(
        futures::FutureExt::now_or_never(&mut link).is_none(),
        "within credit so far, the link is up"
    );
    let mut past = Vec::new();
    frame(3, &[0], &mut past);
    net.run(peer_io.write_all(&past)).unwrap();
    net.settle();
    let ended = futures::FutureExt::now_or_never(link).expect("the hostile link ended");
    let err = ended.expect_err("with an error");
    assert!(
        err.to_string().contains("more than the 65536 granted"),
        "{err}"
    );

    // The other link is untouched: a stream from a to b goes through.
    assert!(a.node.is_reachable("b"));
    net.run(async {
        let mut s = a.node.connect_to_peer("b").await.unwrap();
        futures::AsyncWriteExt::write_all(&mut s, b"still here")
            .await
            .unwrap();
        let mut incoming = b.incoming.next().await.unwrap();
        let mut got = [0; 10];
        incoming.stream.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"still here");
    });
}
