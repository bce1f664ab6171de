//! The original's node and router traces (`testdata/vectors/` at the
//! repository root) replayed against this implementation: the recorded
//! bytes of the other side(s) are fed to our node over raw in-memory links
//! while our node performs the recorded node's script; what our node writes
//! must decode to the same messages, except where PROTOCOL.md mandates a
//! difference (asserted as the protocol says, with the reason).
//!
//! The folder is `$CIRCUIT_VECTORS` if set, else `testdata/vectors` in the
//! repository.

use std::collections::BTreeMap;
use std::path::PathBuf;

use circuit_frame::{
    Decode, Decoded, Encode, Frame, Identify, Name, NodeState, Quality, RoutingHeader,
};
use circuit_mux::Role as MuxRole;
use circuit_stream::{duplex_pair, Reader, Writer};
use futures::{AsyncReadExt, StreamExt};

use crate::support::*;

fn vectors_dir() -> PathBuf {
    match std::env::var_os("CIRCUIT_VECTORS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/vectors")),
    }
}

fn read_hex(file: &str) -> Vec<u8> {
    let path = vectors_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}); set CIRCUIT_VECTORS to the vectors folder",
            path.display()
        )
    });
    text.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("hex byte"))
        .collect()
}

/// A frame as (stream id, its encoded bytes).
fn frames(bytes: &[u8]) -> Vec<(u32, Vec<u8>)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        match Frame::decode(&bytes[pos..]).expect("valid frame") {
            Decoded::Complete { message, consumed } => {
                out.push((message.stream_id(), bytes[pos..pos + consumed].to_vec()));
                pos += consumed;
            }
            Decoded::Incomplete { .. } => panic!("truncated trace"),
        }
    }
    out
}

/// One direction of each stream: its bytes joined, and its close epitaph.
#[derive(Debug, Default, PartialEq, Eq)]
struct StreamLog {
    data: Vec<u8>,
    close: Option<String>,
}

fn reassemble(bytes: &[u8]) -> BTreeMap<u32, StreamLog> {
    let mut streams: BTreeMap<u32, StreamLog> = BTreeMap::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let Decoded::Complete { message, consumed } = Frame::decode(&bytes[pos..]).unwrap() else {
            panic!("our node wrote a truncated frame");
        };
        let log = streams.entry(message.stream_id()).or_default();
        match message {
            Frame::Data { payload, .. } => log.data.extend_from_slice(payload),
            Frame::Close { epitaph, .. } => {
                assert!(log.close.is_none(), "two closes on one stream");
                log.close = Some(String::from_utf8_lossy(epitaph).into_owned());
            }
        }
        pos += consumed;
    }
    streams
}

/// The control stream's messages: `Identify` then `NodeState`s.
fn control(data: &[u8]) -> (Identify, Vec<NodeState>) {
    let (identify, mut pos) = Identify::decode(data).unwrap().complete().unwrap();
    let mut states = Vec::new();
    while pos < data.len() {
        let (s, n) = NodeState::decode(&data[pos..]).unwrap().complete().unwrap();
        states.push(s);
        pos += n;
    }
    (identify, states)
}

/// A routed stream's opener direction: header, then the application bytes.
fn routed(data: &[u8]) -> (RoutingHeader, Vec<u8>) {
    let (h, n) = RoutingHeader::decode(data).unwrap().complete().unwrap();
    (h, data[n..].to_vec())
}

fn online(node: &str, quality: u8) -> NodeState {
    NodeState::Online {
        node: name(node),
        quality: q(quality),
    }
}

/// The test's end of a raw link.
struct Raw {
    reader: Reader,
    writer: Writer,
    got: Vec<u8>,
}

impl Raw {
    fn feed(&self, frames: &[(u32, Vec<u8>)], keep: impl Fn(u32) -> bool) {
        for (id, bytes) in frames {
            if keep(*id) {
                self.writer.try_write(bytes).expect("room in the pipe");
            }
        }
    }

    fn collect(&mut self) {
        while let Ok(Some(chunk)) = self.reader.try_read_with(1, |b| (b.to_vec(), b.len())) {
            self.got.extend(chunk);
        }
    }
}

fn raw_link(net: &Net, node: &circuit_node::Node, node_role: MuxRole) -> Raw {
    let (ours, theirs) = duplex_pair(1 << 20);
    net.spawn(node.link_io(ours, node_role, Quality::NETWORK))
        .forget();
    let (reader, writer) = theirs.into_split();
    Raw {
        reader,
        writer,
        got: Vec::new(),
    }
}

#[test]
fn node_trace_replayed_as_a() {
    let mut net = Net::new();
    let mut a = net.leaf("a");
    // a dials (client); the recorded b is the server.
    let mut b = raw_link(&net, &a.node, MuxRole::Client);
    let b_frames = frames(&read_hex("node.b_to_a.hex"));
    b.feed(&b_frames, |id| id == 1);
    let mut stream = net.run(async {
        assert_eq!(
            a.peers.next().await,
            Some(circuit_node::routing::RouteEvent::PeerReachable(name("b")))
        );
        let s = a.node.connect_to_peer("b").await.unwrap();
        let (reader, writer) = s.into_split();
        writer.write_all(b"hello").await.unwrap();
        writer.close("bye");
        reader
    });
    net.settle();
    b.feed(&b_frames, |id| id != 1);
    net.run(async {
        let mut buf = [0; 5];
        AsyncReadExt::read_exact(&mut stream, &mut buf)
            .await
            .unwrap();
        assert_eq!(&buf, b"hello");
        // b closed without an epitaph. The original reported it as
        // "b reported no epitaph"; this mux hands the peer's epitaph (none)
        // through unchanged, which futures-io reads as end of stream.
        let mut rest = Vec::new();
        AsyncReadExt::read_to_end(&mut stream, &mut rest)
            .await
            .unwrap();
        assert!(rest.is_empty());
    });
    net.settle();
    b.collect();

    let ours = reassemble(&b.got);
    let recorded = reassemble(&read_hex("node.a_to_b.hex"));
    // Byte for byte per stream: the same Identify and Online(a, SELF) then a
    // close with no epitaph on the control stream; the same routing header,
    // "hello" and close "bye" on stream 0.
    assert_eq!(ours, recorded);
    let (identify, states) = control(&ours[&1].data);
    assert_eq!(identify, Identify::new(name("test")));
    assert_eq!(states, vec![online("a", 0)]);
    let (header, payload) = routed(&ours[&0].data);
    assert_eq!(
        header,
        RoutingHeader {
            destination: name("b"),
            source: name("a")
        }
    );
    assert_eq!(payload, b"hello");
}

/// `frames` with the close of stream 0 given `epitaph` instead.
fn with_close_of_stream_0(frames: Vec<(u32, Vec<u8>)>, epitaph: &str) -> Vec<(u32, Vec<u8>)> {
    let mut replaced = 0;
    let frames = frames
        .into_iter()
        .map(|(id, bytes)| match Frame::decode(&bytes).unwrap() {
            Decoded::Complete {
                message: Frame::Close { stream_id: 0, .. },
                ..
            } => {
                replaced += 1;
                let close = Frame::close(0, epitaph);
                let mut bytes = vec![0; close.encoded_len()];
                close.encode(&mut bytes).unwrap();
                (id, bytes)
            }
            _ => (id, bytes),
        })
        .collect();
    assert_eq!(replaced, 1, "the trace closes stream 0 once");
    frames
}

/// The recorded a and b, their bytes fed to our router r as in the router
/// trace; what r wrote to a and to b, per stream.
fn replay_as_r(
    a_frames: &[(u32, Vec<u8>)],
    b_frames: &[(u32, Vec<u8>)],
) -> (BTreeMap<u32, StreamLog>, BTreeMap<u32, StreamLog>) {
    let mut net = Net::new();
    let mut r = net.router("r");
    // Link a<->r: a is client, r server. Link r<->b: r client, b server.
    let mut a = raw_link(&net, &r.node, MuxRole::Server);
    a.feed(a_frames, |id| id == 1);
    net.settle();
    let mut b = raw_link(&net, &r.node, MuxRole::Client);
    b.feed(b_frames, |id| id == 1);
    net.settle();
    net.tick();
    let mut reachable = r.drain_peer_events();
    reachable.sort_by(|x, y| x.node().cmp(y.node()));
    assert_eq!(reachable.len(), 2);
    // a's stream to b arrives at r and is forwarded; then b's echo.
    a.feed(a_frames, |id| id != 1);
    net.settle();
    b.feed(b_frames, |id| id != 1);
    net.settle();
    a.collect();
    b.collect();
    (reassemble(&a.got), reassemble(&b.got))
}

#[test]
fn router_trace_replayed_as_r() {
    let a_frames = frames(&read_hex("router.a_to_r.hex"));
    let b_frames = frames(&read_hex("router.b_to_r.hex"));
    let (to_a, to_b) = replay_as_r(&a_frames, &b_frames);
    let v0_to_a = reassemble(&read_hex("router.r_to_a.hex"));
    let v0_to_b = reassemble(&read_hex("router.r_to_b.hex"));

    // Control stream r -> a. v0 sent Identify, Online(r, 0), Online(b, 20),
    // Online(a, 20). Split horizon with poisoned reverse (PROTOCOL 2.3): a is
    // reached via a's own link, so a is never told about itself.
    let (v0_identify, v0_states) = control(&v0_to_a[&1].data);
    assert_eq!(
        v0_states,
        vec![online("r", 0), online("b", 20), online("a", 20)]
    );
    let (identify, states) = control(&to_a[&1].data);
    assert_eq!(identify, v0_identify);
    assert_eq!(states, vec![online("r", 0), online("b", 20)]);
    assert_eq!(
        to_a[&1].close, None,
        "a router keeps its control stream open"
    );

    // Control stream r -> b. v0 sent Online(a, 40) in its first dump (the
    // link quality counted twice, PROTOCOL 3) and later Online(b, 20) back
    // to b itself. We send Online(a, 20) and nothing about b.
    let (v0_identify, v0_states) = control(&v0_to_b[&1].data);
    assert_eq!(
        v0_states,
        vec![online("r", 0), online("a", 40), online("b", 20)]
    );
    let (identify, states) = control(&to_b[&1].data);
    assert_eq!(identify, v0_identify);
    assert_eq!(states, vec![online("r", 0), online("a", 20)]);

    // The forwarded stream r -> b: the routing header and "hello" byte for
    // byte (forwarded untouched). v0 rewrote the epitaph ("a reported:
    // bye"); we forward it unchanged (PROTOCOL 2.4).
    assert_eq!(to_b[&0].data, v0_to_b[&0].data);
    let (header, payload) = routed(&to_b[&0].data);
    assert_eq!(
        (header.destination.as_str(), header.source.as_str()),
        ("b", "a")
    );
    assert_eq!(payload, b"hello");
    assert_eq!(v0_to_b[&0].close.as_deref(), Some("a reported: bye"));
    assert_eq!(to_b[&0].close.as_deref(), Some("bye"));

    // The echo r -> a: "hello", then b's close without an epitaph, passed
    // on as is (v0: "b reported no epitaph").
    assert_eq!(to_a[&0].data, v0_to_a[&0].data);
    assert_eq!(v0_to_a[&0].close.as_deref(), Some("b reported no epitaph"));
    assert_eq!(to_a[&0].close.as_deref(), Some(""));
    let _ = Name::new("r").unwrap();
}

/// Our leaf node a, linked to the recorded router r (`r_frames`: r's bytes
/// to a), opens a stream to b, writes "hello" and closes it with "bye", as
/// in the router trace; then reads the stream to its end. Returns what the
/// read gave, the stream's epitaph (`closed_reason`), and what a wrote.
fn replay_as_a(
    r_frames: &[(u32, Vec<u8>)],
) -> (
    std::io::Result<Vec<u8>>,
    Option<String>,
    BTreeMap<u32, StreamLog>,
) {
    let mut net = Net::new();
    let mut a = net.leaf("a");
    // a dials (client); the recorded r is the server.
    let mut r = raw_link(&net, &a.node, MuxRole::Client);
    r.feed(r_frames, |id| id == 1);
    let mut stream = net.run(async {
        while let Some(event) = a.peers.next().await {
            if event == circuit_node::routing::RouteEvent::PeerReachable(name("b")) {
                break;
            }
        }
        let s = a.node.connect_to_peer("b").await.unwrap();
        let (reader, writer) = s.into_split();
        writer.write_all(b"hello").await.unwrap();
        writer.close("bye");
        reader
    });
    net.settle();
    r.feed(r_frames, |id| id != 1);
    let read = net.run(async {
        let mut got = Vec::new();
        AsyncReadExt::read_to_end(&mut stream, &mut got)
            .await
            .map(|_| got)
    });
    net.settle();
    r.collect();
    (read, stream.closed_reason(), reassemble(&r.got))
}

#[test]
fn router_trace_replayed_as_a_reads_the_v0_clean_close_as_end_of_file() {
    let r_frames = frames(&read_hex("router.r_to_a.hex"));
    let (read, epitaph, ours) = replay_as_a(&r_frames);
    // r closed a's stream with "b reported no epitaph": b closed cleanly
    // and r, running the original, rewrote it (PROTOCOL 2.4). A copy-style
    // consumer gets every byte, then a clean end; the text stays readable.
    assert_eq!(read.unwrap(), b"hello");
    assert_eq!(epitaph.as_deref(), Some("b reported no epitaph"));
    // And a wrote what the original a wrote.
    assert_eq!(ours, reassemble(&read_hex("router.a_to_r.hex")));
}

#[test]
fn a_v0_clean_close_through_several_v0_routers_is_end_of_file_too() {
    for epitaph in [
        "r reported: b reported no epitaph",
        "r2 reported: r1 reported: 127.0.0.1:7000 reported no epitaph",
    ] {
        let r_frames = with_close_of_stream_0(frames(&read_hex("router.r_to_a.hex")), epitaph);
        let (read, got_epitaph, _) = replay_as_a(&r_frames);
        assert_eq!(read.unwrap(), b"hello", "{epitaph:?}");
        assert_eq!(got_epitaph.as_deref(), Some(epitaph));
    }
}

#[test]
fn near_misses_of_a_v0_clean_close_end_reads_with_an_error() {
    for epitaph in [
        "b reported: bye",
        "connection closed (either by transport or b)",
        "reported no epitaph",
        "reported: b reported no epitaph",
        "b reported no epitaph!",
        "b reported no epitaph ",
    ] {
        let r_frames = with_close_of_stream_0(frames(&read_hex("router.r_to_a.hex")), epitaph);
        let (read, got_epitaph, _) = replay_as_a(&r_frames);
        let err = read.expect_err(epitaph);
        assert_eq!(
            err.kind(),
            std::io::ErrorKind::ConnectionAborted,
            "{epitaph:?}"
        );
        let inner = err.into_inner().unwrap();
        assert_eq!(
            inner.downcast_ref::<circuit_stream::StreamError>(),
            Some(&circuit_stream::StreamError::Closed(Some(epitaph.into())))
        );
        assert_eq!(got_epitaph.as_deref(), Some(epitaph));
    }
}

#[test]
fn our_router_forwards_a_v0_clean_close_unchanged() {
    // The router trace, with both closes of the forwarded stream in the
    // shape of a v0 clean close, as if a and b were behind v0 routers.
    let from_a = "q reported: a reported no epitaph";
    let from_b = "b reported no epitaph";
    let a_frames = with_close_of_stream_0(frames(&read_hex("router.a_to_r.hex")), from_a);
    let b_frames = with_close_of_stream_0(frames(&read_hex("router.b_to_r.hex")), from_b);
    let (to_a, to_b) = replay_as_r(&a_frames, &b_frames);
    let v0_to_a = reassemble(&read_hex("router.r_to_a.hex"));
    let v0_to_b = reassemble(&read_hex("router.r_to_b.hex"));
    assert_eq!(to_b[&0].data, v0_to_b[&0].data);
    assert_eq!(to_b[&0].close.as_deref(), Some(from_a));
    assert_eq!(to_a[&0].data, v0_to_a[&0].data);
    assert_eq!(to_a[&0].close.as_deref(), Some(from_b));
}
