//! Stream observers: told once per direction when the mux closes it, with
//! the cause and the epitaph, and never for a close nothing was passed to.

mod common;

use std::sync::{Arc, Mutex};
use std::task::Context;

use circuit_mux::{CloseCause, CloseDirection, Config, Core, Role, StreamClose, StreamObserver};
use circuit_stream::{Reader, Writer};
use common::{close, data};

type Log = Arc<Mutex<Vec<(u32, CloseDirection, CloseCause, Option<String>)>>>;

fn recorder() -> (Log, impl Fn() -> StreamObserver) {
    let log: Log = Arc::default();
    let make = {
        let log = Arc::clone(&log);
        move || {
            let log = Arc::clone(&log);
            StreamObserver::new(move |c: &StreamClose<'_>| {
                log.lock().unwrap().push((
                    c.stream_id,
                    c.direction,
                    c.cause,
                    c.epitaph.map(str::to_owned),
                ));
            })
        }
    };
    (log, make)
}

fn taken(log: &Log) -> Vec<(u32, CloseDirection, CloseCause, Option<String>)> {
    std::mem::take(&mut *log.lock().unwrap())
}

/// A stream to attach: the mux's ends, and ours (write to `to_mux`, read
/// from `from_mux`).
struct Pipes {
    source: Reader,
    sink: Writer,
    to_mux: Writer,
    from_mux: Reader,
}

fn pipes() -> Pipes {
    let (source, to_mux) = circuit_stream::stream();
    let (from_mux, sink) = circuit_stream::stream();
    Pipes {
        source,
        sink,
        to_mux,
        from_mux,
    }
}

fn feed(core: &mut Core, bytes: &[u8]) {
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    let progress = core.receive(bytes, &mut cx).unwrap();
    assert_eq!(progress.consumed, bytes.len());
}

#[test]
fn the_peers_close_frame_is_told_once_with_its_epitaph_unchanged() {
    let (log, observer) = recorder();
    let mut core = Core::new(Role::Client, Config::default());
    let p = pipes();
    let id = core.attach_observed(p.source, p.sink, observer()).unwrap();
    feed(&mut core, &[data(id, b"hi"), close(id, "bye")].concat());
    assert_eq!(
        taken(&log),
        [(
            id,
            CloseDirection::FromPeer,
            CloseCause::Peer,
            Some("bye".into())
        )]
    );
    assert_eq!(p.from_mux.closed_reason().as_deref(), Some("bye"));
    // Cutting the streams now tells of our direction only: the peer's was
    // told already.
    core.close_streams("cut");
    assert_eq!(
        taken(&log),
        [(
            id,
            CloseDirection::ToPeer,
            CloseCause::StreamsClosed,
            Some("cut".into())
        )]
    );
    core.close_all("link gone");
    assert_eq!(taken(&log), []);
    drop(p.to_mux);
}

#[test]
fn an_empty_epitaph_is_none() {
    let (log, observer) = recorder();
    let mut core = Core::new(Role::Client, Config::default());
    let p = pipes();
    let id = core.attach_observed(p.source, p.sink, observer()).unwrap();
    feed(&mut core, &close(id, ""));
    assert_eq!(
        taken(&log),
        [(id, CloseDirection::FromPeer, CloseCause::Peer, None)]
    );
    drop((p.to_mux, p.from_mux));
}

#[test]
fn close_streams_tells_both_directions_and_a_later_close_frame_nothing() {
    let (log, observer) = recorder();
    let mut core = Core::new(Role::Server, Config::default());
    let p = pipes();
    let id = core.attach_observed(p.source, p.sink, observer()).unwrap();
    core.close_streams("busy");
    let mut got = taken(&log);
    got.sort_by_key(|e| e.1 == CloseDirection::FromPeer);
    assert_eq!(
        got,
        [
            (
                id,
                CloseDirection::ToPeer,
                CloseCause::StreamsClosed,
                Some("busy".into())
            ),
            (
                id,
                CloseDirection::FromPeer,
                CloseCause::StreamsClosed,
                Some("busy".into())
            ),
        ]
    );
    feed(&mut core, &close(id, "late"));
    core.close_streams("again");
    core.close_all("link gone");
    assert_eq!(taken(&log), []);
    assert_eq!(p.from_mux.closed_reason().as_deref(), Some("busy"));
    drop(p.to_mux);
}

#[test]
fn the_end_of_the_link_is_told_for_open_sinks_only() {
    let (log, observer) = recorder();
    let mut core = Core::new(Role::Client, Config::default());
    let open = pipes();
    let open_id = core
        .attach_observed(open.source, open.sink, observer())
        .unwrap();
    // A stream whose reader is gone: nothing is passed on, nothing told.
    let gone = pipes();
    let gone_id = core
        .attach_observed(gone.source, gone.sink, observer())
        .unwrap();
    drop(gone.from_mux);
    // A stream without an observer is not a problem.
    let plain = pipes();
    core.attach(plain.source, plain.sink).unwrap();
    core.close_all("link to b closed");
    assert_eq!(
        taken(&log),
        [(
            open_id,
            CloseDirection::FromPeer,
            CloseCause::LinkEnded,
            Some("link to b closed".into())
        )]
    );
    assert_ne!(open_id, gone_id);
    drop((open.to_mux, gone.to_mux, plain.to_mux));
}

#[test]
fn an_observer_given_late_learns_how_the_peer_already_closed() {
    let (log, observer) = recorder();
    let mut core = Core::new(Role::Client, Config::default());
    // The server opens odd ids.
    feed(
        &mut core,
        &[data(1, b"a"), data(3, b"b"), close(1, "early")].concat(),
    );
    let (first, _first_w) = core.accept().unwrap().into_split();
    let second = core.accept().unwrap();
    assert_eq!(core.observe(1, observer()), Some(CloseCause::Peer));
    assert_eq!(first.closed_reason().as_deref(), Some("early"));
    assert_eq!(core.observe(3, observer()), None);
    feed(&mut core, &close(3, "later"));
    assert_eq!(
        taken(&log),
        [(
            3,
            CloseDirection::FromPeer,
            CloseCause::Peer,
            Some("later".into())
        )]
    );
    // A stream gone from the table: the peer closed it, or the link ended.
    drop((first, _first_w));
    let mut out = Vec::new();
    core.transmit(&mut out, 1 << 16);
    assert!(!core.is_open(1));
    assert_eq!(core.observe(1, observer()), Some(CloseCause::Peer));
    core.close_all("gone");
    assert_eq!(core.observe(3, observer()), Some(CloseCause::LinkEnded));
    assert_eq!(taken(&log), []);
    drop(second);
}
