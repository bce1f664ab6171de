//! Circuit streams as tokio io, and links over any tokio byte stream.

mod common;

use circuit_mux::Role;
use circuit_transport_tokio::{spawn_link, tokio_io, Shutdown};
use common::*;
use futures::StreamExt;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[tokio::test]
async fn copy_bidirectional_splices_a_circuit_stream_onto_a_tcp_socket() {
    tokio::time::timeout(TEST_LIMIT, async {
        // A plain TCP echo service.
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let echo_addr = echo.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = echo.accept().await.unwrap();
            let (mut read, mut write) = socket.split();
            tokio::io::copy(&mut read, &mut write).await.unwrap();
        });

        // Two nodes over an in-memory tokio pipe.
        let shutdown = Shutdown::new();
        let (gateway, _, mut gateway_incoming) = leaf("gateway");
        let (client, mut client_events, _) = leaf("client");
        let (g_io, c_io) = tokio::io::duplex(64 * 1024);
        let g_task = spawn_link(
            &gateway,
            g_io,
            Role::Server,
            circuit_frame::Quality::IN_PROCESS,
            &shutdown,
        );
        let c_task = spawn_link(
            &client,
            c_io,
            Role::Client,
            circuit_frame::Quality::IN_PROCESS,
            &shutdown,
        );
        reachable(&mut client_events, "gateway").await;

        // The gateway splices each incoming stream onto the echo service.
        let proxy = tokio::spawn(async move {
            let incoming = gateway_incoming.next().await.unwrap();
            let mut socket = tokio::net::TcpStream::connect(echo_addr).await.unwrap();
            let mut stream = tokio_io(incoming.stream);
            tokio::io::copy_bidirectional(&mut stream, &mut socket)
                .await
                .unwrap()
        });

        let mut stream = tokio_io(client.connect_to_peer("gateway").await.unwrap());
        stream.write_all(b"round trip").await.unwrap();
        stream.shutdown().await.unwrap();
        let mut echoed = Vec::new();
        stream.read_to_end(&mut echoed).await.unwrap();
        assert_eq!(echoed, b"round trip");
        assert_eq!(proxy.await.unwrap(), (10, 10));

        let report = shutdown.shutdown(Duration::from_secs(40)).await;
        // Both ends are in the group: the first to drain closes the link,
        // and the other may see it end before it looks.
        assert_eq!(
            (report.drained + report.ended, report.cut),
            (2, 0),
            "{report:?}"
        );
        assert!(report.drained >= 1, "{report:?}");
        g_task.await.unwrap().unwrap();
        c_task.await.unwrap().unwrap();
    })
    .await
    .unwrap();
}
