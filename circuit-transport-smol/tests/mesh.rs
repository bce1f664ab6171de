//! a - r - b over real sockets: 64 MiB each way through the router, every
//! byte checked.

mod common;

use std::time::Duration;

use circuit_transport_smol::{connect, listen, Address};
use common::*;
use futures::{AsyncReadExt, StreamExt};

const LEN: u64 = 64 << 20;

async fn through_a_router(address: Address) {
    let (r, _r_events, _r_incoming) = router("r");
    let (a, mut a_events, _a_incoming) = leaf("a");
    let (b, _b_events, mut b_incoming) = leaf("b");

    let listener = listen(&r, &address).await.unwrap();
    let a_link = connect(&a, listener.local_addr()).await.unwrap();
    let b_link = connect(&b, listener.local_addr()).await.unwrap();
    reachable(&mut a_events, "b").await;

    let a_stream = a.connect_to_peer("b").await.unwrap();
    let a_side = smol::spawn(async move {
        let (read, write) = a_stream.into_split();
        futures::join!(send_pattern(write, 1, LEN), check_pattern(read, 2, LEN));
    });
    let b_side = smol::spawn(async move {
        let incoming = b_incoming.next().await.expect("incoming streams ended");
        assert_eq!(incoming.source, "a");
        let (read, write) = incoming.stream.split();
        futures::join!(send_pattern(write, 2, LEN), check_pattern(read, 1, LEN));
    });
    a_side.await;
    b_side.await;

    let forwarded: u64 = r.snapshot().links.iter().map(|l| l.mux.bytes_in).sum();
    assert!(forwarded >= 2 * LEN, "the router moved {forwarded} bytes");

    let report = listener.shutdown(Duration::from_secs(10)).await;
    assert_eq!((report.drained, report.cut), (2, 0), "{report:?}");
    // Without a reconnect policy, the dialled links end with the router's.
    a_link.join().await.unwrap();
    b_link.join().await.unwrap();
}

#[test]
fn sixty_four_mib_each_way_through_a_router_over_loopback_tcp() {
    run(through_a_router("127.0.0.1:0".parse().unwrap()));
}

#[cfg(unix)]
#[test]
fn sixty_four_mib_each_way_through_a_router_over_a_unix_socket() {
    let path = std::env::temp_dir().join(format!("circuit-smol-mesh-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    run(through_a_router(Address::unix(&path)));
    assert!(!path.exists(), "the listener removes its socket file");
}

#[test]
fn a_loopback_link_is_a_local_socket_unless_told_otherwise() {
    use circuit_frame::Quality;
    use circuit_transport_smol::{connect_with, LinkOptions};
    run(async {
        let (server, _, _) = leaf("server");
        let (near, mut near_events, _) = leaf("near");
        let (far, mut far_events, _) = leaf("far");
        let listener = listen(&server, "127.0.0.1:0").await.unwrap();
        let _near = connect(&near, listener.local_addr()).await.unwrap();
        let options = LinkOptions::new().quality(Quality::NETWORK);
        let _far = connect_with(&far, listener.local_addr(), options)
            .await
            .unwrap();
        reachable(&mut near_events, "server").await;
        reachable(&mut far_events, "server").await;
        let quality =
            |node: &circuit_node::Node| node.snapshot().link_to("server").unwrap().quality;
        assert_eq!(quality(&near), Quality::LOCAL_SOCKET);
        assert_eq!(quality(&far), Quality::NETWORK);
    });
}
