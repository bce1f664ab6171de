//! Helpers shared by the integration tests: the runtime-agnostic ones of
//! `circuit_transport::test_support`, a router on tokio's clock, the
//! pattern over tokio's io traits, and [`Tokio`] for the shared scenarios.
#![allow(dead_code, unused_imports)]

use std::future::Future;

use circuit_node::{IncomingStreams, Node, PeerEvents};
use circuit_transport::test_support::{self, router_on, BoxRead, BoxWrite};
pub use circuit_transport::test_support::{
    leaf, pattern, reachable, unreachable, wait_for, PROTOCOL, TEST_LIMIT,
};
use circuit_transport_tokio::{tokio_io, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

pub fn router(id: &str) -> (Node, PeerEvents, IncomingStreams) {
    router_on(id, TokioTimer::shared())
}

/// Writes `len` bytes of pattern `seed`, then shuts the direction down.
pub async fn send_pattern(w: impl AsyncWrite + Unpin, seed: u64, len: u64) {
    test_support::send_pattern(w.compat_write(), seed, len).await
}

/// Reads pattern `seed` to the end of the stream and checks it is exactly
/// `len` bytes long.
pub async fn check_pattern(r: impl AsyncRead + Unpin, seed: u64, len: u64) {
    test_support::check_pattern(r.compat(), seed, len).await
}

/// Runs `test` (a shared scenario), failing it if it takes longer than
/// [`TEST_LIMIT`].
pub async fn run<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_LIMIT, test)
        .await
        .expect("the test took too long")
}

/// Spawns `task` on tokio; the future returned gives its output.
pub fn spawn<T: Send + 'static>(
    task: impl Future<Output = T> + Send + 'static,
) -> impl Future<Output = T> {
    let task = tokio::spawn(task);
    async move { task.await.unwrap() }
}

/// A circuit stream's halves through tokio's io traits (`tokio_io`,
/// `tokio::io::split`), as futures-io again for the shared scenarios.
pub fn halves(stream: circuit_stream::Duplex, _dialled: bool) -> (BoxRead, BoxWrite) {
    let (read, write) = tokio::io::split(tokio_io(stream));
    (Box::new(read.compat()), Box::new(write.compat_write()))
}

circuit_transport::test_runtime!(
    Tokio,
    circuit_transport_tokio,
    TokioRuntime,
    "tokio",
    router,
    halves,
    spawn
);
