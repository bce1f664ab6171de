//! Helpers shared by the integration tests: the runtime-agnostic ones of
//! `circuit_transport::test_support`, a router on smol's timers, a bound
//! on every test, and [`Smol`] for the shared scenarios.
#![allow(dead_code, unused_imports)]

use std::future::Future;

use circuit_node::{IncomingStreams, Node, PeerEvents};
pub use circuit_transport::test_support::{
    check_pattern, leaf, pattern, reachable, send_pattern, unreachable, wait_for, PROTOCOL,
    TEST_LIMIT,
};
use circuit_transport::test_support::{router_on, BoxRead, BoxWrite};
use circuit_transport_smol::SmolTimer;

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

pub fn router(id: &str) -> (Node, PeerEvents, IncomingStreams) {
    router_on(id, SmolTimer::shared())
}

/// A circuit stream's halves: the dialled end's split natively, the
/// accepted end's with `futures::AsyncReadExt::split`.
pub fn halves(stream: circuit_stream::Duplex, dialled: bool) -> (BoxRead, BoxWrite) {
    if dialled {
        let (read, write) = stream.into_split();
        (Box::new(read), Box::new(write))
    } else {
        let (read, write) = futures::AsyncReadExt::split(stream);
        (Box::new(read), Box::new(write))
    }
}

circuit_transport::test_runtime!(
    Smol,
    circuit_transport_smol,
    SmolRuntime,
    "smol",
    router,
    halves,
    smol::spawn
);
