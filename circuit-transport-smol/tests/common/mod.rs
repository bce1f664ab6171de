//! Helpers shared by the integration tests: nodes, peer events, a
//! verifiable byte pattern, and a bound on every test.
#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use circuit_node::routing::RouteEvent;
use circuit_node::{IncomingStreams, Node, NodeConfig, PeerEvents};
use circuit_transport_smol::SmolTimer;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};

/// Every test gives up after this long instead of hanging.
pub const TEST_LIMIT: Duration = Duration::from_secs(50);

pub const PROTOCOL: &str = "transport-test";

/// Runs `test` on smol, failing it if it takes longer than [`TEST_LIMIT`].
pub fn run<T>(test: impl Future<Output = T>) -> T {
    smol::block_on(async {
        smol::future::or(async { Some(test.await) }, async {
            smol::Timer::after(TEST_LIMIT).await;
            None
        })
        .await
        .expect("the test took too long")
    })
}

pub fn leaf(id: &str) -> (Node, PeerEvents, IncomingStreams) {
    Node::new(id, PROTOCOL, NodeConfig::leaf()).unwrap()
}

pub fn router(id: &str) -> (Node, PeerEvents, IncomingStreams) {
    Node::new(id, PROTOCOL, NodeConfig::router(SmolTimer::shared())).unwrap()
}

/// Waits for `event` on `events`, skipping others.
pub async fn wait_for(events: &mut PeerEvents, event: RouteEvent) {
    while let Some(seen) = events.next().await {
        if seen == event {
            return;
        }
    }
    panic!("peer events ended before {event:?}");
}

pub async fn reachable(events: &mut PeerEvents, peer: &str) {
    wait_for(events, RouteEvent::PeerReachable(peer.parse().unwrap())).await
}

pub async fn unreachable(events: &mut PeerEvents, peer: &str) {
    wait_for(events, RouteEvent::PeerUnreachable(peer.parse().unwrap())).await
}

/// The pattern's bytes from `offset` on: a hash of the seed and the
/// position, so a lost, repeated or reordered chunk never matches.
pub fn pattern(seed: u64, offset: u64, buf: &mut [u8]) {
    for (i, byte) in buf.iter_mut().enumerate() {
        let at = offset + i as u64;
        let mut x = (at / 8) ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^= x >> 31;
        *byte = (x >> (8 * (at % 8))) as u8;
    }
}

/// Writes `len` bytes of pattern `seed`, then closes the direction.
pub async fn send_pattern(mut w: impl AsyncWrite + Unpin, seed: u64, len: u64) {
    let mut buf = vec![0; 64 * 1024];
    let mut sent = 0;
    while sent < len {
        let n = buf.len().min((len - sent) as usize);
        pattern(seed, sent, &mut buf[..n]);
        w.write_all(&buf[..n]).await.unwrap();
        sent += n as u64;
    }
    w.close().await.unwrap();
}

/// Reads pattern `seed` to the end of the stream and checks it is exactly
/// `len` bytes long.
pub async fn check_pattern(mut r: impl AsyncRead + Unpin, seed: u64, len: u64) {
    let mut buf = vec![0; 64 * 1024];
    let mut want = vec![0; 64 * 1024];
    let mut got = 0u64;
    loop {
        let n = r.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        pattern(seed, got, &mut want[..n]);
        assert!(
            buf[..n] == want[..n],
            "pattern {seed} differs near byte {got}"
        );
        got += n as u64;
        assert!(got <= len, "more than {len} bytes");
    }
    assert_eq!(got, len, "stream ended early");
}
