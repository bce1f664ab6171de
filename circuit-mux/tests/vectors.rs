//! The original's raw mux session (`testdata/vectors/mux_session.txt`)
//! replayed against our client-side core, both ways.

mod common;

use std::path::PathBuf;
use std::task::Context;

use circuit_mux::{Config, Core, Role};
use common::{decode_all, Owned};
use futures::task::noop_waker_ref;

fn vector(file: &str) -> Vec<u8> {
    let dir = match std::env::var_os("CIRCUIT_VECTORS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/vectors")),
    };
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}); set CIRCUIT_VECTORS to the vectors folder",
            path.display()
        )
    });
    text.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

/// a (the client) opens a stream and writes "hello from a" before b's
/// bytes can refer to it.
fn client_with_stream_0() -> (Core, circuit_stream::Reader, circuit_stream::Writer) {
    let mut core = Core::new(Role::Client, Config::default().peer_name("b"));
    let (source, writer) = circuit_stream::stream();
    let (reader, sink) = circuit_stream::stream();
    assert_eq!(core.attach(source, sink).unwrap(), 0);
    (core, reader, writer)
}

#[test]
fn bytes_from_b_surface_the_streams_bytes_and_epitaphs_of_the_session() {
    let (mut core, stream0, _w) = client_with_stream_0();
    let input = vector("mux.b_to_a.hex");
    assert_eq!(input.len(), 36);
    // Fed one byte at a time, as a network might deliver them.
    let mut cx = Context::from_waker(noop_waker_ref());
    let mut buffered = Vec::new();
    for byte in input {
        buffered.push(byte);
        let progress = core.receive(&buffered, &mut cx).unwrap();
        buffered.drain(..progress.consumed);
    }
    assert!(buffered.is_empty());

    // Stream 0: "hi a", then b dropped its writer: closed, no epitaph.
    let got = stream0
        .try_read_with(0, |b| (b.to_vec(), b.len()))
        .unwrap()
        .unwrap();
    assert_eq!(got, b"hi a");
    assert!(stream0.is_closed());
    assert_eq!(stream0.closed_reason(), None);

    // Stream 1: opened by b with "hello from b", still open.
    let incoming = core.accept().expect("b opened stream 1");
    assert_eq!(incoming.id(), 1);
    let (reader1, _w1) = incoming.into_split();
    let got = reader1
        .try_read_with(0, |b| (b.to_vec(), b.len()))
        .unwrap()
        .unwrap();
    assert_eq!(got, b"hello from b");
    assert!(!reader1.is_closed());
    assert!(core.accept().is_none(), "exactly the session's streams");
}

#[test]
fn a_scripted_client_writes_the_frames_of_the_session() {
    let (mut core, _r, writer) = client_with_stream_0();
    writer.try_write(b"hello from a").unwrap();
    writer.close("bye");
    let mut out = Vec::new();
    core.transmit(&mut out, 1 << 20);
    let expected = vector("mux.a_to_b.hex");
    assert_eq!(
        decode_all(&out),
        vec![
            Owned::Data(0, b"hello from a".to_vec()),
            Owned::Close(0, "bye".to_owned())
        ]
    );
    assert_eq!(decode_all(&out), decode_all(&expected));
    // With the whole write buffered, even the frame boundaries match.
    assert_eq!(out, expected);
}
