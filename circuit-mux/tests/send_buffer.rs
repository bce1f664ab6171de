//! The link's send buffer shared among its streams
//! (`Config::link_send_buffer`), on the sans-IO core.

mod common;

use std::task::Context;

use circuit_mux::{Config, Core, Role};
use circuit_stream::Writer;
use common::{close, data};
use futures::task::noop_waker_ref;

const KIB: usize = 1024;

fn feed(core: &mut Core, input: &[u8]) -> circuit_mux::Progress {
    let mut cx = Context::from_waker(noop_waker_ref());
    core.receive(input, &mut cx).expect("no link error")
}

/// How many bytes `writer` takes, in 16 KiB writes and then single bytes,
/// before a write would wait.
fn room(writer: &Writer) -> usize {
    let mut n = 0;
    for step in [16 * KIB, 1] {
        while writer.try_write(&vec![7; step]).is_ok() {
            n += step;
        }
    }
    n
}

/// A client core with `n` streams the peer opened, accepted; its send
/// buffer is 1 MiB.
fn with_incoming(n: u32) -> (Core, Vec<circuit_mux::MuxStream>) {
    let config = Config::default().peer_name("b").link_send_buffer(1 << 20);
    let mut core = Core::new(Role::Client, config);
    let mut streams = Vec::new();
    for i in 0..n {
        feed(&mut core, &data(2 * i + 1, b"hi"));
        streams.push(core.accept().expect("accepted"));
    }
    (core, streams)
}

#[test]
fn each_stream_gets_a_share_of_the_link_send_buffer_as_streams_open_and_close() {
    // One stream has the whole per-stream buffer, 256 KiB.
    let (mut core, mut streams) = with_incoming(1);
    let first = streams.pop().unwrap();
    let (first_reader, first_writer) = first.into_split();
    assert_eq!(room(&first_writer), 256 * KIB);
    let mut out = Vec::new();
    core.transmit(&mut out, usize::MAX);

    // Sixteen streams: 1 MiB / 16 each, the first one included.
    let mut others = Vec::new();
    for i in 1..16 {
        feed(&mut core, &data(2 * i + 1, b"hi"));
        others.push(core.accept().expect("accepted").into_split());
    }
    for (_, writer) in &others {
        assert_eq!(room(writer), 64 * KIB);
    }
    assert_eq!(room(&first_writer), 64 * KIB);

    // Past sixteen the share stays at its 64 KiB floor.
    feed(&mut core, &data(33, b"hi"));
    let (extra_reader, extra) = core.accept().expect("accepted").into_split();
    assert_eq!(room(&extra), 64 * KIB);
    drop((extra_reader, extra));
    feed(&mut core, &close(33, ""));

    // Fifteen close both ways: the survivor has the buffer to itself again.
    for (i, (reader, writer)) in others.into_iter().enumerate() {
        feed(&mut core, &close(2 * i as u32 + 3, ""));
        drop(reader);
        writer.close_without_reason();
    }
    out.clear();
    core.transmit(&mut out, usize::MAX);
    assert_eq!(core.streams_open(), 1, "{:?}", core.counters());
    assert_eq!(room(&first_writer), 256 * KIB);
    drop(first_reader);
}

#[test]
fn by_default_sixteen_streams_keep_their_whole_buffer_and_sixty_four_share() {
    let mut core = Core::new(Role::Client, Config::default().peer_name("b"));
    let mut streams = Vec::new();
    for i in 0..64 {
        feed(&mut core, &data(2 * i + 1, b"hi"));
        streams.push(core.accept().expect("accepted").into_split());
        if i == 15 {
            assert_eq!(room(&streams[0].1), 256 * KIB, "16 streams: 4 MiB / 16");
        }
    }
    assert_eq!(room(&streams[1].1), 64 * KIB, "64 streams: 4 MiB / 64");
}

#[test]
fn a_stream_spliced_onto_another_link_keeps_that_links_receive_room() {
    // Link A has seventeen streams: each send pipe's share is 64 KiB.
    let (_a, streams) = with_incoming(17);
    let mut streams = streams.into_iter();
    let (to_b, from_b) = streams.next().unwrap().into_split();
    // A router splices stream 1 of link A onto link B: what arrives on A
    // goes out on B, what arrives on B goes into A's send pipe for it.
    let mut b = Core::new(
        Role::Client,
        Config::default()
            .peer_name("c")
            .credit(circuit_mux::CreditMode::Off),
    );
    let id = b.attach(to_b, from_b).expect("attached");
    let mut out = Vec::new();
    b.transmit(&mut out, usize::MAX);
    assert!(!out.is_empty(), "the spliced bytes go out on B");
    // B may take up to its receive limit, which is the pipe's capacity
    // (256 KiB), not A's share (64 KiB).
    for _ in 0..3 {
        let progress = feed(&mut b, &data(id, &[5; 60_000]));
        assert!(!progress.blocked, "B stopped reading at A's share");
    }
    drop(streams);
}
