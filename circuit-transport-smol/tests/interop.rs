//! A tokio node and a smol node linked over TCP, each end in either role,
//! opening streams both ways.

mod common;

use circuit_node::{IncomingStreams, Node, PeerEvents};
use circuit_transport_tokio::tokio_io;
use common::*;
use futures::{AsyncReadExt, StreamExt};
use std::time::Duration;

const LEN: u64 = 4 << 20;

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// Once linked: the smol node opens a stream the tokio node echoes (with
/// tokio io), and the tokio node opens one the smol node answers.
async fn streams_both_ways(
    rt: &tokio::runtime::Runtime,
    (t, mut t_events, mut t_incoming): (Node, PeerEvents, IncomingStreams),
    (s, mut s_events, mut s_incoming): (Node, PeerEvents, IncomingStreams),
) {
    reachable(&mut s_events, "tokio-node").await;
    rt.spawn(async move {
        reachable(&mut t_events, "smol-node").await;
        t_events
    })
    .await
    .unwrap();

    // smol -> tokio: the tokio node echoes.
    let echo = rt.spawn(async move {
        let incoming = t_incoming.next().await.unwrap();
        assert_eq!(incoming.source, "smol-node");
        let (mut read, mut write) = tokio::io::split(tokio_io(incoming.stream));
        let copied = tokio::io::copy(&mut read, &mut write).await.unwrap();
        tokio::io::AsyncWriteExt::shutdown(&mut write)
            .await
            .unwrap();
        copied
    });
    let (read, write) = s.connect_to_peer("tokio-node").await.unwrap().split();
    futures::join!(send_pattern(write, 3, LEN), check_pattern(read, 3, LEN));
    assert_eq!(echo.await.unwrap(), LEN);

    // tokio -> smol: the smol node answers with another pattern.
    let opener = rt.spawn(async move {
        let (read, write) = t.connect_to_peer("smol-node").await.unwrap().split();
        futures::join!(send_pattern(write, 5, LEN), check_pattern(read, 6, LEN));
    });
    let incoming = s_incoming.next().await.unwrap();
    assert_eq!(incoming.source, "tokio-node");
    let (read, write) = incoming.stream.split();
    futures::join!(check_pattern(read, 5, LEN), send_pattern(write, 6, LEN));
    opener.await.unwrap();
}

#[test]
fn a_smol_node_dials_a_tokio_node() {
    let rt = tokio_runtime();
    let t = Node::new("tokio-node", PROTOCOL, circuit_node::NodeConfig::leaf()).unwrap();
    let s = leaf("smol-node");
    let listener = {
        let node = t.0.clone();
        rt.block_on(circuit_transport_tokio::listen(&node, "127.0.0.1:0"))
            .unwrap()
    };
    run(async {
        let link = circuit_transport_smol::connect(&s.0, listener.local_addr().to_string())
            .await
            .unwrap();
        streams_both_ways(&rt, t, s).await;
        let report = rt
            .spawn(listener.shutdown(Duration::from_secs(10)))
            .await
            .unwrap();
        assert_eq!((report.drained, report.cut), (1, 0), "{report:?}");
        link.join().await.unwrap();
    });
}

#[test]
fn a_tokio_node_dials_a_smol_node() {
    let rt = tokio_runtime();
    let t = Node::new("tokio-node", PROTOCOL, circuit_node::NodeConfig::leaf()).unwrap();
    let s = leaf("smol-node");
    run(async {
        let listener = circuit_transport_smol::listen(&s.0, "127.0.0.1:0")
            .await
            .unwrap();
        let address = listener.local_addr().to_string();
        let node = t.0.clone();
        let link = rt
            .spawn(async move { circuit_transport_tokio::connect(&node, address).await })
            .await
            .unwrap()
            .unwrap();
        streams_both_ways(&rt, t, s).await;
        let report = listener.shutdown(Duration::from_secs(10)).await;
        assert_eq!((report.drained, report.cut), (1, 0), "{report:?}");
        rt.spawn(link.join()).await.unwrap().unwrap();
    });
}
