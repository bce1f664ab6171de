//! The mux receive path fed arbitrary peer bytes, in pieces, at either
//! role, with small limits so full streams and refusals happen often.
//!
//! - Nothing panics; a fatal error is a typed `MuxError` and ends the input.
//! - Every byte an accepted stream reads is a byte the peer sent for that
//!   stream, in order (checked against the frames the core consumed).
//! - The application's buffered bytes stay within the link limit plus one
//!   frame; open streams never exceed the configured bound.
//! - After the link ends (`close_all`), no stream is left open.
//!
//! The second byte picks the credit mode (PROTOCOL.md section 4), off or
//! auto, and whether the harness negotiates first: a client core gets the
//! server's first data frame and HELLO ahead of the input; a server core
//! opens a stream, transmits its HELLO, and gets the client's HELLO or the
//! v0 answer. Then credit limits the peer's arbitrary bytes: data past a
//! stream's credit must end the link with `FlowControl` (never in off
//! mode), and every link-control frame the core sends is whole messages.
#![no_main]

use std::collections::HashMap;
use std::task::Context;

use circuit_frame::{Encode, Frame, MAX_PAYLOAD_LEN};
use circuit_mux::{Config, Core, CreditMode, LinkMode, MuxError, Role};
use circuit_stream::{Reader, Writer};
use futures::task::noop_waker_ref;
use libfuzzer_sys::fuzz_target;

#[path = "../common/offered.rs"]
mod offered;
use offered::Offered;
#[path = "../common/control.rs"]
mod control;
use control::well_framed;

const LINK_LIMIT: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let Some((&credit, rest)) = rest.split_first() else {
        return;
    };
    let mode = match credit & 1 {
        0 => CreditMode::Off,
        _ => CreditMode::Auto,
    };
    let role = if control & 1 == 0 {
        Role::Client
    } else {
        Role::Server
    };
    let max_incoming = 1 + usize::from((control >> 1) & 7);
    let config = Config::default()
        .stream_receive_limit(1 + usize::from(control >> 4) * 4096)
        .link_receive_limit(LINK_LIMIT)
        .max_incoming_streams(max_incoming)
        .max_closed_id_ranges(4)
        .credit(mode);
    let mut core = Core::new(role, config);
    let mut cx = Context::from_waker(noop_waker_ref());
    let mut buffered: Vec<u8> = Vec::new();
    // A stream of ours (a server's, to send its HELLO after its data).
    let mut own = None;
    if mode == CreditMode::Auto && credit & 2 != 0 {
        match role {
            Role::Client => {
                Frame::data(1, b"first")
                    .expect("a short frame")
                    .encode_to_vec(&mut buffered);
                control::hello_frame(&mut buffered);
            }
            Role::Server => {
                let (source, writer) = circuit_stream::stream();
                let (reader, sink) = circuit_stream::stream();
                writer.try_write(b"first").expect("room");
                core.attach(source, sink).expect("an id");
                own = Some((reader, writer));
                let mut out = Vec::new();
                core.transmit(&mut out, usize::MAX);
                assert!(control::has_hello(&out), "no HELLO after the first frame");
                match credit & 4 {
                    0 => control::hello_frame(&mut buffered),
                    _ => buffered.extend_from_slice(&control::V0_ANSWER),
                }
            }
        }
    }
    let own_streams = usize::from(own.is_some());
    let mut accepted: Vec<(u32, Reader, Writer)> = Vec::new();
    // What the peer sent per stream (frames the core consumed), and what
    // each accepted stream read.
    let mut offered = Offered::default();
    let mut read: HashMap<u32, Vec<u8>> = HashMap::new();
    let mut out = Vec::new();
    for chunk in rest.chunks(1 + usize::from(control >> 5) * 37) {
        buffered.extend_from_slice(chunk);
        match core.receive(&buffered, &mut cx) {
            Ok(progress) => {
                assert!(progress.consumed <= buffered.len());
                offered.feed(&buffered[..progress.consumed]);
                buffered.drain(..progress.consumed);
            }
            Err(e) => {
                if mode == CreditMode::Off {
                    assert!(
                        !matches!(
                            e,
                            MuxError::FlowControl { .. } | MuxError::CreditRequired { .. }
                        ),
                        "{e} with credit off"
                    );
                }
                if let MuxError::FlowControl {
                    received, granted, ..
                } = e
                {
                    assert!(received > granted, "{e}");
                }
                break;
            }
        }
        while let Some(stream) = core.accept() {
            // Keep some streams, drop others: both paths must hold.
            if stream.id() % 3 == 0 {
                drop(stream);
            } else {
                let id = stream.id();
                let (reader, writer) = stream.into_split();
                accepted.push((id, reader, writer));
            }
        }
        assert!(core.streams_open() <= max_incoming + own_streams);
        assert!(core.receive_buffered() <= LINK_LIMIT + MAX_PAYLOAD_LEN);
        // Drain every other stream so some stay full.
        for (i, (id, reader, _)) in accepted.iter().enumerate() {
            if (i + usize::from(control)) % 2 == 0 {
                drain(*id, reader, &mut read);
            }
        }
        out.clear();
        core.transmit(&mut out, 1 << 20);
        assert!(well_framed(&out));
        let c = core.counters();
        assert!(c.streams_open <= c.streams_opened);
        assert_eq!(c.streams_open, core.streams_open() as u64);
    }
    // The bytes left unconsumed were offered too (after an error this may
    // add frames never delivered: the check stays a prefix).
    offered.feed(&buffered);
    for (id, reader, _) in &accepted {
        drain(*id, reader, &mut read);
    }
    for (id, got) in &read {
        let sent = offered.sent.get(id).map(Vec::as_slice).unwrap_or(&[]);
        assert!(
            sent.starts_with(got),
            "stream {id} read {} bytes that the peer did not send in that order",
            got.len()
        );
    }
    if mode == CreditMode::Off {
        assert_eq!(core.link_mode(), LinkMode::V0);
    }
    core.close_all("end of fuzz input");
    assert_eq!(core.streams_open(), 0);
    assert_eq!(core.counters().streams_open, 0);
    // `close_all` leaves the ready queue as it was, and a queued stream's
    // waker holds the queue: a reference cycle that leaks (reported to the
    // mux's owner). Draining the queue here keeps LeakSanitizer useful for
    // any other leak.
    out.clear();
    core.transmit(&mut out, usize::MAX);
    assert!(out.is_empty(), "a closed core sends nothing");
    for (_, reader, _) in &accepted {
        // Buffered bytes stay readable; the end is a close, never a hang.
        while let Ok(Some(n)) = reader.try_read_with(0, |b| (b.len(), b.len())) {
            if n == 0 {
                break;
            }
        }
        assert!(reader.try_read_with(1, |b| ((), b.len())).is_err());
    }
});

fn drain(id: u32, reader: &Reader, read: &mut HashMap<u32, Vec<u8>>) {
    let _ = reader.try_read_with(0, |b| {
        read.entry(id).or_default().extend_from_slice(b);
        ((), b.len())
    });
}
