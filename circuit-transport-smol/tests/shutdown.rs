//! Graceful shutdown: listeners stop accepting, links drain, what is left
//! at the deadline is cut with an epitaph.
//! The scenarios are in `circuit_transport::test_support::shutdown`.

mod common;

use std::time::Duration;

use circuit_mux::Role;
use circuit_transport::test_support::shutdown;
use circuit_transport_smol::{spawn_link, Shutdown};
use common::*;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};

#[test]
fn a_link_stays_up_until_its_streams_drain_then_closes() {
    run(shutdown::a_link_stays_up_until_its_streams_drain_then_closes::<Smol>());
}

#[test]
fn streams_still_open_at_the_deadline_are_closed_with_an_epitaph() {
    run(shutdown::streams_still_open_at_the_deadline_are_closed_with_an_epitaph::<Smol>());
}

#[test]
fn a_peer_still_sending_when_its_link_is_cut_reads_epitaphs_not_a_reset() {
    run(shutdown::a_peer_still_sending_when_its_link_is_cut_reads_epitaphs_not_a_reset::<Smol>());
}

#[test]
fn one_shutdown_closes_every_listener_and_link_of_its_group() {
    run(shutdown::one_shutdown_closes_every_listener_and_link_of_its_group::<Smol>());
}

#[cfg(unix)]
#[test]
fn a_unix_socket_is_released_when_shutdown_resolves() {
    run(shutdown::a_unix_socket_is_released_when_shutdown_resolves::<Smol>());
}

#[test]
fn spawn_link_runs_a_link_over_any_byte_stream() {
    run(async {
        let shutdown = Shutdown::new();
        let (a, mut a_events, _) = leaf("a");
        let (b, _, mut b_incoming) = leaf("b");
        // An in-process pipe stands for a serial line.
        let (a_io, b_io) = circuit_stream::duplex_pair(64 * 1024);
        let quality = circuit_frame::Quality::USB;
        let a_task = spawn_link(&a, a_io, Role::Client, quality, &shutdown);
        let b_task = spawn_link(&b, b_io, Role::Server, quality, &shutdown);
        reachable(&mut a_events, "b").await;
        assert_eq!(a.snapshot().route_to("b").map(|(_, q)| q), Some(quality));

        let mut stream = a.connect_to_peer("b").await.unwrap();
        stream.write_all(b"over the line").await.unwrap();
        stream.close().await.unwrap();
        let mut incoming = b_incoming.next().await.unwrap();
        let mut got = Vec::new();
        incoming.stream.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"over the line");
        drop((stream, incoming));

        let report = shutdown.shutdown(Duration::from_secs(40)).await;
        assert_eq!(
            (report.drained + report.ended, report.cut),
            (2, 0),
            "{report:?}"
        );
        a_task.await.unwrap();
        b_task.await.unwrap();
    });
}
