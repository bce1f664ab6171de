//! The wire traces recorded from the original implementation
//! (`testdata/vectors/` at the repository root) decode to exactly the
//! messages their session notes describe, and encoding those messages gives
//! back the same bytes.
//!
//! Each `*.X_to_Y.hex` is one direction of a link. It is parsed as a byte
//! stream of frames; the payload bytes of each mux stream are then joined
//! (frame boundaries are not significant) and decoded as the messages that
//! stream carries: the control stream holds `Identify` then `NodeState`s, a
//! routed stream holds a `RoutingHeader` (opener's direction only) then the
//! application's bytes.
//!
//! The folder is `$CIRCUIT_VECTORS` if set, else `testdata/vectors` in the
//! repository.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use circuit_frame::{
    is_v0_clean_close, Decode, Decoded, Encode, Frame, Identify, Name, NodeState, Quality,
    RoutingHeader,
};
use support::{decode_all, NetworkReader, OwnedFrame};

// ---------------------------------------------------------------------------
// Where the traces are, and how to read them.

fn vectors_dir() -> PathBuf {
    match std::env::var_os("CIRCUIT_VECTORS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/vectors")),
    }
}

fn read_vector(file: &str) -> String {
    let path = vectors_dir().join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}); set CIRCUIT_VECTORS to the vectors folder",
            path.display()
        )
    })
}

fn parse_hex(text: &str) -> Vec<u8> {
    text.split_whitespace()
        .map(|byte| u8::from_str_radix(byte, 16).unwrap_or_else(|_| panic!("bad hex {byte:?}")))
        .collect()
}

// ---------------------------------------------------------------------------
// What each trace must hold, copied from the annotations of *_session.txt.

/// One direction of a recorded link.
struct Trace {
    /// The hex file with the bytes.
    hex: &'static str,
    /// The session notes that describe it.
    session: &'static str,
    /// The title of its section in the notes, e.g. `a -> b`.
    direction: &'static str,
    /// Every frame, in order.
    frames: Vec<OwnedFrame>,
    /// Every mux stream that carried a frame, with what it carried.
    streams: Vec<Stream>,
}

struct Stream {
    id: u32,
    content: Content,
    /// `Some(epitaph)` if the writer closed its direction in the trace.
    closed: Option<&'static str>,
}

enum Content {
    /// A raw mux stream: just bytes.
    Bytes(&'static [u8]),
    /// A control stream: `Identify` then route updates.
    Control {
        identify: Identify,
        states: Vec<NodeState>,
    },
    /// A routed stream: the header (in the opener's direction), then the
    /// application's bytes.
    Routed {
        header: Option<RoutingHeader>,
        app: &'static [u8],
    },
}

fn name(s: &str) -> Name {
    Name::new(s).unwrap()
}

fn online(node: &str, quality: u8) -> NodeState {
    NodeState::Online {
        node: name(node),
        quality: Quality::new(quality).unwrap(),
    }
}

fn identify_test() -> Identify {
    Identify {
        version: 0,
        protocol: name("test"),
    }
}

fn route(destination: &str, source: &str) -> Option<RoutingHeader> {
    Some(RoutingHeader {
        destination: name(destination),
        source: name(source),
    })
}

fn data(stream_id: u32, payload: &[u8]) -> OwnedFrame {
    OwnedFrame::Data(stream_id, payload.to_vec())
}

fn close(stream_id: u32, epitaph: &str) -> OwnedFrame {
    OwnedFrame::Close(stream_id, epitaph.as_bytes().to_vec())
}

fn mux_a_to_b() -> Trace {
    Trace {
        hex: "mux.a_to_b.hex",
        session: "mux_session.txt",
        direction: "a -> b",
        frames: vec![data(0, b"hello from a"), close(0, "bye")],
        streams: vec![Stream {
            id: 0,
            content: Content::Bytes(b"hello from a"),
            closed: Some("bye"),
        }],
    }
}

fn mux_b_to_a() -> Trace {
    Trace {
        hex: "mux.b_to_a.hex",
        session: "mux_session.txt",
        direction: "b -> a",
        frames: vec![data(0, b"hi a"), data(1, b"hello from b"), close(0, "")],
        streams: vec![
            Stream {
                id: 0,
                content: Content::Bytes(b"hi a"),
                closed: Some(""),
            },
            Stream {
                id: 1,
                content: Content::Bytes(b"hello from b"),
                closed: None,
            },
        ],
    }
}

/// What a leaf that opens a stream to `b` writes: a's side of both the
/// node and the router traces (the routing header spans two frames).
fn leaf_a_writes(hex: &'static str, session: &'static str, direction: &'static str) -> Trace {
    Trace {
        hex,
        session,
        direction,
        frames: vec![
            data(1, b"\x00\x04test\x00\x01a"),
            close(1, ""),
            data(0, b"\x01b"),
            data(0, b"\x01a"),
            data(0, b"hello"),
            close(0, "bye"),
        ],
        streams: vec![
            Stream {
                id: 1,
                content: Content::Control {
                    identify: identify_test(),
                    states: vec![online("a", 0)],
                },
                closed: Some(""),
            },
            Stream {
                id: 0,
                content: Content::Routed {
                    header: route("b", "a"),
                    app: b"hello",
                },
                closed: Some("bye"),
            },
        ],
    }
}

/// What leaf `b` writes when it echoes a stream: b's side of both the node
/// and the router traces.
fn leaf_b_echoes(hex: &'static str, session: &'static str, direction: &'static str) -> Trace {
    Trace {
        hex,
        session,
        direction,
        frames: vec![
            data(1, b"\x00\x04test\x00\x01b"),
            close(1, ""),
            data(0, b"hello"),
            close(0, ""),
        ],
        streams: vec![
            Stream {
                id: 1,
                content: Content::Control {
                    identify: identify_test(),
                    states: vec![online("b", 0)],
                },
                closed: Some(""),
            },
            Stream {
                id: 0,
                content: Content::Routed {
                    header: None,
                    app: b"hello",
                },
                closed: Some(""),
            },
        ],
    }
}

fn node_a_to_b() -> Trace {
    leaf_a_writes("node.a_to_b.hex", "node_session.txt", "a -> b")
}

fn node_b_to_a() -> Trace {
    leaf_b_echoes("node.b_to_a.hex", "node_session.txt", "b -> a")
}

fn router_a_to_r() -> Trace {
    leaf_a_writes("router.a_to_r.hex", "router_session.txt", "a -> r")
}

fn router_b_to_r() -> Trace {
    leaf_b_echoes("router.b_to_r.hex", "router_session.txt", "b -> r")
}

fn router_r_to_a() -> Trace {
    Trace {
        hex: "router.r_to_a.hex",
        session: "router_session.txt",
        direction: "r -> a",
        frames: vec![
            data(1, b"\x00\x04test\x00\x01r"),
            data(1, b"\x14\x01b\x14\x01a"),
            data(0, b"hello"),
            close(0, "b reported no epitaph"),
        ],
        streams: vec![
            Stream {
                id: 1,
                content: Content::Control {
                    identify: identify_test(),
                    // A v0 router also advertises a's route back to a.
                    states: vec![online("r", 0), online("b", 20), online("a", 20)],
                },
                closed: None,
            },
            Stream {
                id: 0,
                content: Content::Routed {
                    header: None,
                    app: b"hello",
                },
                closed: Some("b reported no epitaph"),
            },
        ],
    }
}

fn router_r_to_b() -> Trace {
    Trace {
        hex: "router.r_to_b.hex",
        session: "router_session.txt",
        direction: "r -> b",
        frames: vec![
            data(1, b"\x00\x04test\x00\x01r\x28\x01a"),
            data(1, b"\x14\x01b"),
            data(0, b"\x01b\x01a"),
            data(0, b"hello"),
            close(0, "a reported: bye"),
        ],
        streams: vec![
            Stream {
                id: 1,
                content: Content::Control {
                    identify: identify_test(),
                    // The first dump adds the link quality (20 + 20 = 40),
                    // later updates do not (PROTOCOL.md section 3).
                    states: vec![online("r", 0), online("a", 40), online("b", 20)],
                },
                closed: None,
            },
            Stream {
                id: 0,
                content: Content::Routed {
                    header: route("b", "a"),
                    app: b"hello",
                },
                closed: Some("a reported: bye"),
            },
        ],
    }
}

fn all_traces() -> Vec<Trace> {
    vec![
        mux_a_to_b(),
        mux_b_to_a(),
        node_a_to_b(),
        node_b_to_a(),
        router_a_to_r(),
        router_b_to_r(),
        router_r_to_a(),
        router_r_to_b(),
    ]
}

// ---------------------------------------------------------------------------
// The checks.

/// Decodes the frames of a trace and returns them with their byte offsets.
fn frames_with_offsets(bytes: &[u8]) -> Vec<(usize, Frame<'_>)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        match Frame::decode(&bytes[pos..]).expect("a recorded frame decodes") {
            Decoded::Complete { message, consumed } => {
                out.push((pos, message));
                pos += consumed;
            }
            Decoded::Incomplete { needed } => {
                panic!("trace ends inside a frame at {pos}: {needed} bytes needed")
            }
        }
    }
    out
}

/// Decodes back-to-back messages of one type until `bytes` is used up.
fn decode_until_end<'a, T: Decode<'a>>(mut bytes: &'a [u8]) -> Vec<T> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        match T::decode(bytes).expect("a recorded message decodes") {
            Decoded::Complete { message, consumed } => {
                out.push(message);
                bytes = &bytes[consumed..];
            }
            Decoded::Incomplete { needed } => {
                panic!("stream ends inside a message: {needed} bytes needed")
            }
        }
    }
    out
}

fn encode(m: &impl Encode) -> Vec<u8> {
    let mut out = Vec::new();
    m.encode_to_vec(&mut out);
    out
}

/// What one mux stream carried in one direction.
#[derive(Default)]
struct Reassembled {
    payload: Vec<u8>,
    epitaph: Option<Vec<u8>>,
}

fn check(trace: Trace) {
    let hex = trace.hex;
    let bytes = parse_hex(&read_vector(hex));

    // 1. The link decodes to exactly the expected frames, whole or fed one
    //    byte at a time.
    let frames = frames_with_offsets(&bytes);
    let owned: Vec<OwnedFrame> = frames.iter().map(|(_, f)| (*f).into()).collect();
    assert_eq!(owned, trace.frames, "{hex}: frames");
    assert_eq!(decode_all(&bytes), trace.frames, "{hex}: frames");
    let mut reader = NetworkReader::default();
    for byte in &bytes {
        reader.feed(std::slice::from_ref(byte));
    }
    assert_eq!(
        reader.finish(),
        trace.frames,
        "{hex}: frames read byte by byte"
    );

    // 2. Each frame re-encodes to its own bytes, and the link to the file.
    let mut reencoded = Vec::new();
    for (offset, frame) in &frames {
        let one = encode(frame);
        assert_eq!(one.len(), frame.encoded_len());
        assert_eq!(
            &bytes[*offset..*offset + one.len()],
            &one[..],
            "{hex}: frame at @{offset}"
        );
        reencoded.extend_from_slice(&one);
    }
    assert_eq!(reencoded, bytes, "{hex}: whole link");

    // 3. Per stream, join the payloads and decode what the stream carries.
    let mut streams: BTreeMap<u32, Reassembled> = BTreeMap::new();
    for (offset, frame) in &frames {
        let stream = streams.entry(frame.stream_id()).or_default();
        assert!(
            stream.epitaph.is_none(),
            "{hex}: frame at @{offset} after its stream was closed"
        );
        match *frame {
            Frame::Data { payload, .. } => stream.payload.extend_from_slice(payload),
            Frame::Close { epitaph, .. } => stream.epitaph = Some(epitaph.to_vec()),
        }
    }
    let expected_ids: BTreeSet<u32> = trace.streams.iter().map(|s| s.id).collect();
    let seen_ids: BTreeSet<u32> = streams.keys().copied().collect();
    assert_eq!(seen_ids, expected_ids, "{hex}: stream ids");

    for expected in &trace.streams {
        let id = expected.id;
        let got = &streams[&id];
        assert_eq!(
            got.epitaph.as_deref(),
            expected.closed.map(str::as_bytes),
            "{hex}: stream {id} epitaph"
        );
        let payload = &got.payload[..];
        match &expected.content {
            Content::Bytes(want) => assert_eq!(payload, *want, "{hex}: stream {id} bytes"),
            Content::Control { identify, states } => {
                let (got_identify, used) = Identify::decode(payload)
                    .expect("Identify decodes")
                    .complete()
                    .expect("a whole Identify");
                assert_eq!(&got_identify, identify, "{hex}: stream {id} Identify");
                let got_states: Vec<NodeState> = decode_until_end(&payload[used..]);
                assert_eq!(&got_states, states, "{hex}: stream {id} NodeStates");

                let mut again = encode(&got_identify);
                for state in &got_states {
                    state.encode_to_vec(&mut again);
                }
                assert_eq!(again, payload, "{hex}: stream {id} re-encoded");
            }
            Content::Routed { header, app } => {
                let mut again = Vec::new();
                let rest = match header {
                    Some(want) => {
                        let (got_header, used) = RoutingHeader::decode(payload)
                            .expect("RoutingHeader decodes")
                            .complete()
                            .expect("a whole RoutingHeader");
                        assert_eq!(&got_header, want, "{hex}: stream {id} header");
                        got_header.encode_to_vec(&mut again);
                        // A router reads only the destination, as a Name.
                        let (destination, _) = Name::decode(payload).unwrap().complete().unwrap();
                        assert_eq!(destination, want.destination);
                        &payload[used..]
                    }
                    None => payload,
                };
                assert_eq!(rest, *app, "{hex}: stream {id} application bytes");
                again.extend_from_slice(rest);
                assert_eq!(again, payload, "{hex}: stream {id} re-encoded");
            }
        }
    }
}

#[test]
fn mux_trace_client_to_server() {
    check(mux_a_to_b());
}

#[test]
fn mux_trace_server_to_client() {
    check(mux_b_to_a());
}

#[test]
fn node_trace_leaf_a_opens_a_routed_stream_split_header() {
    check(node_a_to_b());
}

#[test]
fn node_trace_leaf_b_echoes() {
    check(node_b_to_a());
}

#[test]
fn router_trace_leaf_a_to_router() {
    check(router_a_to_r());
}

#[test]
fn router_trace_leaf_b_to_router() {
    check(router_b_to_r());
}

#[test]
fn router_trace_router_to_a_advertises_routes() {
    check(router_r_to_a());
}

#[test]
fn router_trace_router_to_b_forwards_the_header_in_one_frame() {
    check(router_r_to_b());
}

#[test]
fn only_the_v0_clean_close_of_the_traces_has_the_clean_shape() {
    // The epitaphs as recorded (what `check` holds the bytes to): r's
    // rewriting of b's clean close is the shape of PROTOCOL 2.4, r's
    // rewriting of a's "bye" and the plain epitaphs are not.
    let mut clean = Vec::new();
    for trace in all_traces() {
        for stream in &trace.streams {
            if let Some(epitaph) = stream.closed.filter(|e| is_v0_clean_close(e)) {
                clean.push((trace.direction, epitaph));
            }
        }
    }
    assert_eq!(clean, [("r -> a", "b reported no epitaph")]);
}

#[test]
fn every_hex_file_in_the_vectors_folder_is_checked() {
    let dir = vectors_dir();
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {} ({e})", dir.display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".hex"))
        .collect();
    let checked: BTreeSet<String> = all_traces().iter().map(|t| t.hex.to_owned()).collect();
    assert_eq!(on_disk, checked);
}

// ---------------------------------------------------------------------------
// The session notes themselves agree with the bytes.

/// A frame line of a session section: `#3 @23: DATA stream=0 (...) len=2`
/// and its `bytes:` line.
#[derive(Debug)]
struct NotedFrame {
    number: usize,
    offset: usize,
    kind: String,
    stream: u32,
    len: Option<usize>,
    bytes: Vec<u8>,
}

/// The section of `session` titled `== <direction>...: N bytes ==`: its
/// byte count and its frames.
fn noted_section(session: &str, direction: &str) -> (usize, Vec<NotedFrame>) {
    let mut section: Option<(usize, Vec<NotedFrame>)> = None;
    let mut in_section = false;
    for line in session.lines() {
        let trimmed = line.trim();
        if let Some(title) = trimmed
            .strip_prefix("== ")
            .and_then(|t| t.strip_suffix(" =="))
        {
            let (head, count) = title.split_once(": ").expect("title has ': N bytes'");
            let head = head.split(" (").next().unwrap();
            in_section = head == direction;
            if in_section {
                assert!(section.is_none(), "two sections for {direction}");
                let count = count.strip_suffix(" bytes").expect("'N bytes'");
                section = Some((count.parse().unwrap(), Vec::new()));
            }
            continue;
        }
        let Some((_, frames)) = section.as_mut().filter(|_| in_section) else {
            continue;
        };
        if let Some(rest) = trimmed.strip_prefix('#') {
            let (number, rest) = rest.split_once(" @").unwrap();
            let (offset, rest) = rest.split_once(": ").unwrap();
            let mut words = rest.split_whitespace();
            let kind = words.next().unwrap().to_owned();
            let mut stream = None;
            let mut len = None;
            for word in words {
                if let Some(v) = word.strip_prefix("stream=") {
                    stream = Some(v.parse().unwrap());
                }
                if let Some(v) = word.strip_prefix("len=") {
                    len = Some(v.parse().unwrap());
                }
            }
            frames.push(NotedFrame {
                number: number.parse().unwrap(),
                offset: offset.parse().unwrap(),
                kind,
                stream: stream.expect("stream="),
                len,
                bytes: Vec::new(),
            });
        } else if let Some(hex) = trimmed.strip_prefix("bytes:") {
            let frame = frames.last_mut().expect("bytes: after a frame line");
            frame.bytes = parse_hex(&hex.replace('|', " "));
        }
    }
    section.unwrap_or_else(|| panic!("no section {direction}"))
}

#[test]
fn session_notes_match_the_bytes_frame_by_frame() {
    for trace in all_traces() {
        let bytes = parse_hex(&read_vector(trace.hex));
        let session = read_vector(trace.session);
        let (count, noted) = noted_section(&session, trace.direction);
        let where_ = format!("{} section {}", trace.session, trace.direction);
        assert_eq!(count, bytes.len(), "{where_}: byte count");

        let frames = frames_with_offsets(&bytes);
        assert_eq!(noted.len(), frames.len(), "{where_}: frame count");
        for (i, (note, (offset, frame))) in noted.iter().zip(&frames).enumerate() {
            assert_eq!(note.number, i + 1, "{where_}: numbering");
            assert_eq!(note.offset, *offset, "{where_}: #{} offset", note.number);
            assert_eq!(note.stream, frame.stream_id(), "{where_}: #{}", note.number);
            match frame {
                Frame::Data { payload, .. } => {
                    assert_eq!(note.kind, "DATA", "{where_}: #{}", note.number);
                    assert_eq!(note.len, Some(payload.len()), "{where_}: #{}", note.number);
                }
                Frame::Close { .. } => {
                    assert_eq!(note.kind, "CLOSE", "{where_}: #{}", note.number);
                    assert_eq!(note.len, None, "{where_}: #{}", note.number);
                }
            }
            assert_eq!(
                note.bytes,
                &bytes[*offset..*offset + frame.encoded_len()],
                "{where_}: #{} bytes",
                note.number
            );
        }
    }
}
