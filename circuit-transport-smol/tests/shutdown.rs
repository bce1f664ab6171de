//! Graceful shutdown: listeners stop accepting, links drain, what is left
//! at the deadline is cut with an epitaph.

mod common;

use std::time::Duration;

use circuit_mux::Role;
use circuit_transport_smol::{
    connect, connect_with, listen, listen_with, spawn_link, LinkOptions, Shutdown, TransportError,
};
use common::*;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};

#[test]
fn a_link_stays_up_until_its_streams_drain_then_closes() {
    run(async {
        let (server, _, mut server_incoming) = leaf("server");
        let (client, mut client_events, _) = leaf("client");
        let listener = listen(&server, "127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().clone();
        let link = connect(&client, &address).await.unwrap();
        reachable(&mut client_events, "server").await;

        let mut stream = client.connect_to_peer("server").await.unwrap();
        stream.write_all(b"part one;").await.unwrap();
        let mut incoming = server_incoming.next().await.unwrap().stream;
        let mut buf = [0; 9];
        incoming.read_exact(&mut buf).await.unwrap();

        // Shutdown begins with the stream open both ways: the link stays.
        let shutdown = smol::spawn(listener.shutdown(Duration::from_secs(40)));
        stream.write_all(b"part two").await.unwrap();
        stream.close().await.unwrap();
        let mut rest = Vec::new();
        incoming.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"part two");
        incoming.write_all(b"done").await.unwrap();
        incoming.close().await.unwrap();
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).await.unwrap();
        assert_eq!(reply, b"done", "the reply crossed the draining link");

        let report = shutdown.await;
        assert_eq!((report.drained, report.cut), (1, 0), "{report:?}");
        // The listener has stopped: nothing accepts there any more.
        let refused = connect(&client, &address).await.unwrap_err();
        assert!(
            matches!(refused, TransportError::Connect { .. }),
            "{refused}"
        );
        link.join().await.unwrap();
    });
}

#[test]
fn streams_still_open_at_the_deadline_are_closed_with_an_epitaph() {
    run(async {
        let (server, _, mut server_incoming) = leaf("server");
        let (client, mut client_events, _) = leaf("client");
        let listener = listen(&server, "127.0.0.1:0").await.unwrap();
        let link = connect(&client, listener.local_addr()).await.unwrap();
        reachable(&mut client_events, "server").await;

        let mut stream = client.connect_to_peer("server").await.unwrap();
        stream.write_all(b"hold").await.unwrap();
        // The server holds the stream open and never answers.
        let held = server_incoming.next().await.unwrap();

        let report = listener.shutdown(Duration::from_millis(100)).await;
        assert_eq!((report.drained, report.cut), (0, 1), "{report:?}");

        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest).await;
        assert_eq!(
            stream.reader().closed_reason().as_deref(),
            Some("node server is shutting down")
        );
        link.join().await.unwrap();
        drop(held);
    });
}

#[test]
fn one_shutdown_closes_every_listener_and_link_of_its_group() {
    run(async {
        let shutdown = Shutdown::new();
        let options = LinkOptions::new().shutdown(&shutdown);
        let (r, _, _) = router("r");
        let (a, mut a_events, _) = leaf("a");
        let (b, mut b_events, _) = leaf("b");
        let listener = listen_with(&r, "127.0.0.1:0", options.clone())
            .await
            .unwrap();
        let a_link = connect_with(&a, listener.local_addr(), options.clone())
            .await
            .unwrap();
        let b_link = connect_with(&b, listener.local_addr(), options)
            .await
            .unwrap();
        reachable(&mut a_events, "b").await;
        reachable(&mut b_events, "a").await;

        let report = shutdown.shutdown(Duration::from_secs(40)).await;
        // Two links, each seen from both ends; the end that drains first
        // closes the link, the other may see it end before it looks.
        assert_eq!(
            (report.drained + report.ended, report.cut),
            (4, 0),
            "{report:?}"
        );
        assert!(report.drained >= 2, "{report:?}");
        assert!(listener.shutdown_handle().is_shutting_down());
        a_link.join().await.unwrap();
        b_link.join().await.unwrap();
        assert!(r.snapshot().links.is_empty());
    });
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
