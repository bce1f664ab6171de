//! The mux state machine driven by an arbitrary sequence of operations, in
//! the manner of quinn's streams target: open, write, close, drop a reader,
//! read, accept, peer data and closes (well formed or raw bytes), and
//! transmit with a byte limit.
//!
//! - Nothing panics; a fatal receive error is typed and ends the peer input.
//! - What the core transmits is well framed, never has data after a close
//!   or two closes for one id, and carries per stream exactly a prefix of
//!   the bytes the application wrote, in order.
//! - What each stream reads is a prefix of what the peer sent for it.
//! - Once the link ends (`close_all`), no stream is left open.
//!
//! The credit mode (PROTOCOL.md section 4) is off or auto; in auto the
//! harness may negotiate: as the server, a client core gets the server's
//! first data frame and HELLO first; as the client, a server core gets the
//! client's HELLO or the v0 answer once it has transmitted its HELLO. The
//! peer's data then runs under credit, and data past a stream's credit
//! ends the link with `FlowControl` naming exactly the bytes the core
//! granted (65,536 and its CREDITs on the wire) and more than that, at
//! most what the peer sent. Link-control frames the core sends are whole
//! messages.
#![no_main]

use std::collections::HashMap;
use std::task::Context;

use circuit_frame::INITIAL_CREDIT;
use circuit_frame::{Decode, Decoded, Encode, Frame};
use circuit_mux::{Config, Core, CreditMode, LinkMode, MuxError, Role};
use circuit_stream::{Reader, Writer};
use futures::task::noop_waker_ref;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

#[path = "../common/offered.rs"]
mod offered;
use offered::Offered;
#[path = "../common/control.rs"]
mod control;

const PIPE: usize = 4096;

#[derive(Debug)]
enum Op {
    Open,
    Write { stream: u8, len: u16 },
    Close { stream: u8, epitaph: bool },
    DropReader { stream: u8 },
    Read { stream: u8 },
    Accept,
    PeerData { id: u16, len: u16 },
    PeerClose { id: u16 },
    PeerRaw { bytes: Vec<u8> },
    Transmit { limit: u16 },
}

impl Op {
    fn parse(u: &mut Unstructured<'_>) -> Result<Op> {
        Ok(match u.int_in_range(0u8..=9)? {
            0 => Op::Open,
            1 => Op::Write {
                stream: u.arbitrary()?,
                len: u.arbitrary()?,
            },
            2 => Op::Close {
                stream: u.arbitrary()?,
                epitaph: u.arbitrary()?,
            },
            3 => Op::DropReader {
                stream: u.arbitrary()?,
            },
            4 => Op::Read {
                stream: u.arbitrary()?,
            },
            5 => Op::Accept,
            // Small ids, so the peer hits the streams that exist.
            6 => Op::PeerData {
                id: u.int_in_range(0..=40)?,
                len: u.arbitrary()?,
            },
            7 => Op::PeerClose {
                id: u.int_in_range(0..=40)?,
            },
            8 => {
                let len = u.int_in_range(0..=64)?;
                Op::PeerRaw {
                    bytes: u.bytes(len)?.to_vec(),
                }
            }
            _ => Op::Transmit {
                limit: u.arbitrary()?,
            },
        })
    }
}

/// One stream as the application holds it.
struct Local {
    id: u32,
    reader: Option<Reader>,
    writer: Option<Writer>,
    written: Vec<u8>,
    read: Vec<u8>,
}

impl Local {
    fn new(id: u32, reader: Reader, writer: Writer) -> Self {
        Local {
            id,
            reader: Some(reader),
            writer: Some(writer),
            written: Vec::new(),
            read: Vec::new(),
        }
    }

    fn drain(&mut self) {
        if let Some(r) = &self.reader {
            let read = &mut self.read;
            let _ = r.try_read_with(0, |b| {
                read.extend_from_slice(b);
                ((), b.len())
            });
        }
    }
}

fn pick(locals: &mut [Local], i: u8) -> Option<&mut Local> {
    let n = locals.len();
    if n == 0 {
        None
    } else {
        locals.get_mut(usize::from(i) % n)
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(server) = u.arbitrary::<bool>() else {
        return;
    };
    let role = if server { Role::Server } else { Role::Client };
    let Ok(credit) = u.arbitrary::<u8>() else {
        return;
    };
    let mode = match credit & 1 {
        0 => CreditMode::Off,
        _ => CreditMode::Auto,
    };
    let mut core = Core::new(
        role,
        Config::default()
            .stream_send_buffer(PIPE)
            .stream_receive_limit(PIPE)
            .link_receive_limit(4 * PIPE)
            .max_incoming_streams(8)
            .max_closed_id_ranges(8)
            .credit(mode),
    );
    let mut cx = Context::from_waker(noop_waker_ref());
    let mut locals: Vec<Local> = Vec::new();
    let mut wire = Vec::new();
    let mut peer_input: Vec<u8> = Vec::new();
    let mut offered = Offered::default();
    let mut dead = false;
    // The peer's answer to a server core's HELLO, once it is out: HELLO
    // (true) or v0 (false).
    let mut answer = None;
    if mode == CreditMode::Auto && credit & 2 != 0 {
        match role {
            Role::Client => {
                Frame::data(1, b"first")
                    .expect("a short frame")
                    .encode_to_vec(&mut peer_input);
                control::hello_frame(&mut peer_input);
            }
            Role::Server => answer = Some(credit & 4 == 0),
        }
    }
    // Payload bytes the peer sent per id.
    let mut peer_sent: HashMap<u32, u64> = HashMap::new();
    let mut raw = false;

    while !u.is_empty() {
        let Ok(op) = Op::parse(&mut u) else {
            break;
        };
        match op {
            Op::Open => {
                let (source, writer) = circuit_stream::stream_with_capacity(PIPE);
                let (reader, sink) = circuit_stream::stream_with_capacity(PIPE);
                if let Ok(id) = core.attach(source, sink) {
                    assert!(role.opens(id), "{id} is not of our parity");
                    locals.push(Local::new(id, reader, writer));
                }
            }
            Op::Write { stream, len } => {
                if let Some(l) = pick(&mut locals, stream) {
                    if let Some(w) = &l.writer {
                        let len = usize::from(len) % (PIPE + 100);
                        let start = l.written.len();
                        let bytes: Vec<u8> = (start..start + len)
                            .map(|i| (i as u8) ^ (l.id as u8).rotate_left(3))
                            .collect();
                        if w.try_write(&bytes).is_ok() {
                            l.written.extend_from_slice(&bytes);
                        }
                    }
                }
            }
            Op::Close { stream, epitaph } => {
                if let Some(l) = pick(&mut locals, stream) {
                    if let Some(w) = l.writer.take() {
                        if epitaph {
                            w.close("fuzz");
                        }
                    }
                }
            }
            Op::DropReader { stream } => {
                if let Some(l) = pick(&mut locals, stream) {
                    l.reader = None;
                }
            }
            Op::Read { stream } => {
                if let Some(l) = pick(&mut locals, stream) {
                    l.drain();
                }
            }
            Op::Accept => {
                while let Some(s) = core.accept() {
                    let id = s.id();
                    assert!(!role.opens(id), "accepted {id} of our own parity");
                    let (reader, writer) = s.into_split();
                    locals.push(Local::new(id, reader, writer));
                }
            }
            Op::PeerData { id, len } => {
                let payload: Vec<u8> = (0..usize::from(len).clamp(1, 9000))
                    .map(|i| i as u8 ^ id as u8)
                    .collect();
                if let Ok(f) = Frame::data(u32::from(id), &payload) {
                    f.encode_to_vec(&mut peer_input);
                    *peer_sent.entry(u32::from(id)).or_default() += payload.len() as u64;
                }
            }
            Op::PeerClose { id } => {
                Frame::close(u32::from(id), "peer").encode_to_vec(&mut peer_input)
            }
            Op::PeerRaw { bytes } => {
                raw |= !bytes.is_empty();
                peer_input.extend_from_slice(&bytes);
            }
            Op::Transmit { limit } => {
                let mut out = Vec::new();
                core.transmit(&mut out, usize::from(limit));
                assert!(control::well_framed(&out), "a transmit of whole frames");
                if answer.is_some() && control::has_hello(&out) {
                    match answer.take() {
                        Some(true) => control::hello_frame(&mut peer_input),
                        _ => peer_input.extend_from_slice(&control::V0_ANSWER),
                    }
                }
                wire.extend_from_slice(&out);
            }
        }
        if !dead && !peer_input.is_empty() {
            match core.receive(&peer_input, &mut cx) {
                Ok(p) => {
                    assert!(p.consumed <= peer_input.len());
                    offered.feed(&peer_input[..p.consumed]);
                    peer_input.drain(..p.consumed);
                }
                Err(e) => {
                    if let MuxError::FlowControl {
                        stream_id,
                        received,
                        granted,
                        ..
                    } = e
                    {
                        assert_ne!(mode, CreditMode::Off, "{e}");
                        assert!(received > granted, "{e}");
                        // Raw bytes may have carried data for it too.
                        if !raw {
                            let sent = peer_sent.get(&stream_id).copied().unwrap_or(0);
                            assert!(received <= sent, "{e}: the peer sent {sent}");
                        }
                        assert_eq!(
                            granted,
                            u64::from(INITIAL_CREDIT) + control::granted(&wire, stream_id),
                            "{e}: the core's CREDITs on the wire"
                        );
                    }
                    // Frames after the bad one were never delivered; keeping
                    // them in the record keeps the check a prefix check.
                    offered.feed(&peer_input);
                    dead = true;
                    peer_input.clear();
                }
            }
        }
        let c = core.counters();
        assert_eq!(c.streams_open, core.streams_open() as u64);
    }
    if !dead {
        offered.feed(&peer_input);
    }

    // Everything our streams wrote went out in order, per stream, with
    // nothing after a close frame.
    let mut out = Vec::new();
    core.transmit(&mut out, usize::MAX);
    assert!(control::well_framed(&out), "a transmit of whole frames");
    wire.extend_from_slice(&out);
    if mode == CreditMode::Off {
        assert_eq!(core.link_mode(), LinkMode::V0);
    }
    let mut sent: HashMap<u32, Vec<u8>> = HashMap::new();
    let mut closed: HashMap<u32, bool> = HashMap::new();
    let mut rest = &wire[..];
    while let Ok(Decoded::Complete { message, consumed }) = Frame::decode(rest) {
        match message {
            Frame::Data { stream_id, payload } => {
                assert!(
                    !closed.get(&stream_id).copied().unwrap_or(false),
                    "data after close on {stream_id}"
                );
                sent.entry(stream_id)
                    .or_default()
                    .extend_from_slice(payload);
            }
            Frame::Close { stream_id, .. } => {
                assert!(
                    !closed.insert(stream_id, true).unwrap_or(false),
                    "{stream_id} closed twice"
                );
            }
        }
        rest = &rest[consumed..];
    }
    assert!(rest.is_empty(), "our own output is well framed");
    for l in &mut locals {
        l.drain();
        let got = sent.get(&l.id).map(Vec::as_slice).unwrap_or(&[]);
        assert!(
            l.written.starts_with(got),
            "stream {} sent bytes it was not given",
            l.id
        );
        let offered = offered.sent.get(&l.id).map(Vec::as_slice).unwrap_or(&[]);
        assert!(
            offered.starts_with(&l.read),
            "stream {} read bytes the peer did not send",
            l.id
        );
    }
    core.close_all("end of fuzz input");
    assert_eq!(core.streams_open(), 0);
    assert_eq!(core.counters().streams_open, 0);
    // `close_all` leaves the ready queue as it was, and a queued stream's
    // waker holds the queue: a reference cycle that leaks (reported to the
    // mux's owner). Draining the queue here keeps LeakSanitizer useful for
    // any other leak.
    core.transmit(&mut Vec::new(), usize::MAX);
});
