//! Every row of the receiving-rules table of PROTOCOL.md section 1, one test
//! each, on the sans-IO core (no runtime).

mod common;

use std::task::Context;

use circuit_mux::{Config, Core, MuxError, Role};
use common::{close, data, decode_all, Owned};
use futures::task::noop_waker_ref;

fn client() -> Core {
    Core::new(Role::Client, Config::default().peer_name("b"))
}

/// Feeds `input` whole; returns the error if the link failed.
fn feed(core: &mut Core, input: &[u8]) -> Result<(), MuxError> {
    let mut cx = Context::from_waker(noop_waker_ref());
    let progress = core.receive(input, &mut cx)?;
    assert_eq!(progress.consumed, input.len(), "all input consumed");
    assert!(!progress.blocked);
    Ok(())
}

fn bad_id(result: Result<(), MuxError>) -> u32 {
    match result {
        Err(MuxError::BadStreamId { stream_id, .. }) => stream_id,
        other => panic!("expected BadStreamId, got {other:?}"),
    }
}

/// Every byte buffered now, across the pipe's blocks (a payload that came
/// in pieces may lie in more than one).
fn read_all_now(reader: &circuit_stream::Reader) -> Vec<u8> {
    let mut all = Vec::new();
    while let Ok(Some(bytes)) = reader.try_read_with(1, |buf| (buf.to_vec(), buf.len())) {
        all.extend(bytes);
    }
    all
}

#[test]
fn data_for_unknown_id_of_peer_parity_opens_a_stream() {
    let mut core = client();
    feed(&mut core, &data(1, b"first bytes")).unwrap();
    let stream = core.accept().expect("a new incoming stream");
    assert_eq!(stream.id(), 1);
    let (reader, _writer) = stream.into_split();
    assert_eq!(read_all_now(&reader), b"first bytes");
    assert!(core.accept().is_none());
}

#[test]
fn data_for_unknown_id_of_own_parity_is_fatal() {
    let mut core = client();
    assert_eq!(bad_id(feed(&mut core, &data(4, b"x"))), 4);
}

#[test]
fn data_for_an_open_incoming_direction_is_delivered() {
    let mut core = client();
    let mut input = data(3, b"one ");
    input.extend(data(3, b"two"));
    feed(&mut core, &input).unwrap();
    let (reader, _w) = core.accept().unwrap().into_split();
    assert_eq!(read_all_now(&reader), b"one two");
}

#[test]
fn data_after_the_local_reader_dropped_is_discarded_silently() {
    let mut core = client();
    feed(&mut core, &data(1, b"seen")).unwrap();
    let (reader, writer) = core.accept().unwrap().into_split();
    drop(reader);
    feed(&mut core, &data(1, b"nobody reads this")).unwrap();
    assert_eq!(
        core.streams_open(),
        1,
        "the stream stays: its writer is alive"
    );
    assert_eq!(core.counters().receive_buffered, 0);
    drop(writer);
}

#[test]
fn data_after_the_peer_closed_the_direction_is_fatal() {
    let mut core = client();
    let mut input = data(1, b"x");
    input.extend(close(1, ""));
    feed(&mut core, &input).unwrap();
    let _stream = core.accept().unwrap();
    assert_eq!(bad_id(feed(&mut core, &data(1, b"late"))), 1);
}

#[test]
fn data_for_a_fully_closed_stream_is_fatal() {
    let mut core = client();
    let mut input = data(1, b"x");
    input.extend(close(1, ""));
    feed(&mut core, &input).unwrap();
    drop(core.accept().unwrap());
    // Our side closes too (the application dropped the stream).
    let mut out = Vec::new();
    core.transmit(&mut out, 1 << 20);
    assert_eq!(decode_all(&out), vec![Owned::Close(1, String::new())]);
    assert_eq!(core.streams_open(), 0);
    assert_eq!(bad_id(feed(&mut core, &data(1, b"late"))), 1);
}

#[test]
fn close_for_an_open_direction_closes_it_and_keeps_the_epitaph() {
    let mut core = client();
    let mut input = data(1, b"last words");
    input.extend(close(1, "bye"));
    feed(&mut core, &input).unwrap();
    let (reader, _w) = core.accept().unwrap().into_split();
    assert_eq!(read_all_now(&reader), b"last words");
    assert!(reader.is_closed());
    assert_eq!(reader.closed_reason().as_deref(), Some("bye"));
}

#[test]
fn close_without_epitaph_reports_no_reason() {
    let mut core = client();
    let mut input = data(1, b"x");
    input.extend(close(1, ""));
    feed(&mut core, &input).unwrap();
    let (reader, _w) = core.accept().unwrap().into_split();
    assert!(reader.is_closed());
    assert_eq!(reader.closed_reason(), None);
}

#[test]
fn close_for_an_unknown_id_of_peer_parity_is_a_stream_opened_and_closed_empty() {
    // v0 fails the link here; we remember the id and surface nothing.
    let mut core = client();
    feed(&mut core, &close(5, "never mind")).unwrap();
    assert!(core.accept().is_none());
    assert_eq!(core.streams_open(), 0);
    // The id is now closed: data for it is fatal, as for any closed stream.
    assert_eq!(bad_id(feed(&mut core, &data(5, b"x"))), 5);
}

#[test]
fn close_for_an_already_closed_direction_is_fatal() {
    let mut core = client();
    let mut input = data(1, b"x");
    input.extend(close(1, ""));
    feed(&mut core, &input).unwrap();
    let _keep = core.accept().unwrap();
    assert_eq!(bad_id(feed(&mut core, &close(1, ""))), 1);
}

#[test]
fn close_for_a_fully_closed_peer_stream_is_fatal() {
    let mut core = client();
    feed(&mut core, &close(7, "")).unwrap();
    assert_eq!(bad_id(feed(&mut core, &close(7, ""))), 7);
}

#[test]
fn close_for_an_own_parity_id_never_opened_is_fatal() {
    let mut core = client();
    assert_eq!(bad_id(feed(&mut core, &close(0, ""))), 0);
}

#[test]
fn close_for_an_own_stream_that_is_closed_is_fatal() {
    let mut core = client();
    let (source, source_writer) = circuit_stream::stream();
    let (sink_reader, sink) = circuit_stream::stream();
    let id = core.attach(source, sink).unwrap();
    assert_eq!(id, 0);
    source_writer.try_write(b"hello").unwrap();
    drop(source_writer);
    let mut out = Vec::new();
    core.transmit(&mut out, 1 << 20);
    core.transmit(&mut out, 1 << 20);
    assert_eq!(
        decode_all(&out),
        vec![
            Owned::Data(0, b"hello".to_vec()),
            Owned::Close(0, String::new())
        ]
    );
    feed(&mut core, &close(0, "done")).unwrap();
    assert_eq!(sink_reader.closed_reason().as_deref(), Some("done"));
    assert_eq!(core.streams_open(), 0);
    assert_eq!(bad_id(feed(&mut core, &close(0, ""))), 0);
    assert_eq!(bad_id(feed(&mut core, &data(0, b"x"))), 0);
}

#[test]
fn a_data_frame_split_anywhere_arrives_whole_and_a_partial_close_waits() {
    let payload = b"split across reads";
    let frame = data(1, payload);
    let mut cx = Context::from_waker(noop_waker_ref());
    for cut in 0..frame.len() {
        let mut core = client();
        let p = core.receive(&frame[..cut], &mut cx).unwrap();
        assert!(!p.blocked);
        if cut < 6 {
            // Not even a header: nothing taken, nothing opened.
            assert_eq!(p.consumed, 0, "cut at {cut}");
            assert!(core.accept().is_none());
            assert_eq!(core.partial_frame(), 0);
            feed(&mut core, &frame).unwrap();
        } else {
            // A header opens the stream; the payload goes through as it comes.
            assert_eq!(p.consumed, cut, "cut at {cut}");
            assert_eq!(core.partial_frame(), cut);
            feed(&mut core, &frame[cut..]).unwrap();
        }
        assert_eq!(core.partial_frame(), 0);
        assert_eq!(core.counters().frames_in, 1);
        let (reader, _writer) = core.accept().expect("the stream").into_split();
        assert_eq!(read_all_now(&reader), payload, "cut at {cut}");
    }
    let mut core = client();
    feed(&mut core, &data(1, b"x")).unwrap();
    let closing = close(1, "bye");
    for cut in 0..closing.len() {
        let p = core.receive(&closing[..cut], &mut cx).unwrap();
        assert_eq!(p.consumed, 0, "a close frame is taken whole");
    }
    feed(&mut core, &closing).unwrap();
    let (reader, _writer) = core.accept().expect("the stream").into_split();
    assert_eq!(read_all_now(&reader), b"x");
    assert_eq!(reader.closed_reason().as_deref(), Some("bye"));
}

#[test]
fn close_streams_never_turns_dropped_bytes_into_a_clean_close() {
    // Regression (found by the soak): a stream whose writer had finished
    // cleanly, with bytes still unsent, was cut by close_streams; the bytes
    // were dropped and the close frame went out with no epitaph, so the far
    // reader saw a clean end of a truncated stream.
    let mut core = client();
    let (source, source_writer) = circuit_stream::stream();
    let (_sink_reader, sink) = circuit_stream::stream();
    let id = core.attach(source, sink).unwrap();
    source_writer.try_write(b"sent").unwrap();
    let mut out = Vec::new();
    core.transmit(&mut out, 1 << 20);
    assert_eq!(decode_all(&out), vec![Owned::Data(id, b"sent".to_vec())]);
    source_writer.try_write(b"never sent").unwrap();
    drop(source_writer);
    core.close_streams("link shutting down");
    out.clear();
    core.transmit(&mut out, 1 << 20);
    assert_eq!(
        decode_all(&out),
        vec![Owned::Close(id, "link shutting down".to_owned())]
    );
}

/// PROTOCOL 2.4: the epitaph a v0 router gives a clean close.
const V0_CLEAN: &str = "r2 reported: r1 reported: b reported no epitaph";

#[test]
fn a_v0_clean_close_reads_as_end_of_file_and_keeps_its_epitaph() {
    for epitaph in ["b reported no epitaph", V0_CLEAN] {
        let mut core = client();
        let mut input = data(1, b"every byte");
        input.extend(close(1, epitaph));
        feed(&mut core, &input).unwrap();
        let mut stream = core.accept().unwrap();
        let mut got = Vec::new();
        futures::executor::block_on(futures::AsyncReadExt::read_to_end(&mut stream, &mut got))
            .unwrap();
        assert_eq!(got, b"every byte");
        let (reader, _w) = stream.into_split();
        assert_eq!(reader.closed_reason().as_deref(), Some(epitaph));
        assert_eq!(
            reader.try_read_with(1, |_| ((), 0)),
            Err(circuit_stream::StreamError::Closed(None))
        );
    }
}

#[test]
fn near_misses_of_a_v0_clean_close_stay_errors() {
    for epitaph in [
        "b reported: bye",
        "connection closed (either by transport or b)",
        "reported no epitaph",
        "reported: b reported no epitaph",
        "b reported no epitaph!",
        "b reported no epitaph ",
    ] {
        let mut core = client();
        let mut input = data(1, b"x");
        input.extend(close(1, epitaph));
        feed(&mut core, &input).unwrap();
        let mut stream = core.accept().unwrap();
        let mut got = Vec::new();
        let err =
            futures::executor::block_on(futures::AsyncReadExt::read_to_end(&mut stream, &mut got))
                .unwrap_err();
        assert_eq!(got, b"x", "{epitaph:?}");
        assert_eq!(
            err.kind(),
            std::io::ErrorKind::ConnectionAborted,
            "{epitaph:?}"
        );
        let (reader, _w) = stream.into_split();
        assert_eq!(
            reader.try_read_with(1, |_| ((), 0)),
            Err(circuit_stream::StreamError::Closed(Some(epitaph.into())))
        );
    }
}

#[test]
fn a_v0_clean_close_spliced_onto_another_link_goes_on_unchanged() {
    // What a router does: the reader of one link's stream is the source of
    // a stream on another link.
    let mut inbound = client();
    let mut input = data(1, b"hello");
    input.extend(close(1, V0_CLEAN));
    feed(&mut inbound, &input).unwrap();
    let (reader, writer) = inbound.accept().unwrap().into_split();
    // Credit off: a server's HELLO after its first frame is not what this
    // test looks at.
    let mut outbound = Core::new(
        Role::Server,
        Config::default()
            .peer_name("c")
            .credit(circuit_mux::CreditMode::Off),
    );
    let id = outbound.attach(reader, writer).unwrap();
    let mut out = Vec::new();
    outbound.transmit(&mut out, 1 << 20);
    assert_eq!(
        decode_all(&out),
        vec![
            Owned::Data(id, b"hello".to_vec()),
            Owned::Close(id, V0_CLEAN.to_owned())
        ]
    );
}
