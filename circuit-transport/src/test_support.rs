//! The integration-test scenarios every runtime crate runs, written once
//! against [`TestRuntime`] (behind the `test-support` feature): nodes,
//! peer events, a verifiable byte pattern, and the shutdown, reconnect and
//! error scenarios. Each runtime crate implements [`TestRuntime`] with its
//! own `listen` / `connect` and runs every scenario in its own tests. The
//! scenarios where time passes (redialling, cutting at the deadline) run
//! the crate's runtime under a [`ManualRuntime`], whose clock moves only
//! when the test says so.
#![allow(missing_docs)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use circuit_node::routing::RouteEvent;
use circuit_node::timer::{ManualClock, Sleep, Timer};
use circuit_node::{IncomingStreams, Node, NodeConfig, PeerEvents};
use futures::channel::mpsc;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};

use crate::runtime::Runtime;
use crate::{net, Address, LinkOptions, ReconnectPolicy, Shutdown, ToAddress, TransportError};

/// Every test gives up after this long instead of hanging.
pub const TEST_LIMIT: Duration = Duration::from_secs(50);

pub const PROTOCOL: &str = "transport-test";

pub fn leaf(id: &str) -> (Node, PeerEvents, IncomingStreams) {
    Node::new(id, PROTOCOL, NodeConfig::leaf()).unwrap()
}

/// A router on `timer`.
pub fn router_on(
    id: &str,
    timer: std::sync::Arc<dyn Timer>,
) -> (Node, PeerEvents, IncomingStreams) {
    Node::new(id, PROTOCOL, NodeConfig::router(timer)).unwrap()
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

/// A Unix socket path of this test process for scenario `tag` of
/// runtime `R`, with no file there.
#[cfg(unix)]
pub fn socket_path<R: TestRuntime>(tag: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "circuit-{}-{tag}-{}.sock",
        R::NAME,
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    path
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

/// The read half of a stream, as futures-io.
pub type BoxRead = Box<dyn AsyncRead + Unpin + Send>;
/// The write half of a stream, as futures-io.
pub type BoxWrite = Box<dyn AsyncWrite + Unpin + Send>;

/// A runtime's sockets and spawn on a [`ManualClock`]: its time moves only
/// when the test advances [`clock`](Self::clock), and every sleep it makes
/// is reported to the [`Sleeps`] made with it, so that a test waits for the
/// transport to sleep (an event) before it moves the time.
///
/// It can also stall its TCP connects ([`stall_connects`](Self::stall_connects)):
/// a dial that never completes, as to an address that drops SYNs.
#[derive(Debug, Clone)]
pub struct ManualRuntime<R> {
    inner: R,
    clock: ManualClock,
    sleeps: mpsc::UnboundedSender<Duration>,
    stall: Arc<AtomicBool>,
    keepalives: Arc<std::sync::atomic::AtomicUsize>,
}

/// The deadlines of the sleeps a [`ManualRuntime`] made, in order.
#[derive(Debug)]
pub struct Sleeps(mpsc::UnboundedReceiver<Duration>);

impl Sleeps {
    /// The deadline of the next sleep made, once one is.
    pub async fn next(&mut self) -> Duration {
        self.0.next().await.expect("the runtime is gone")
    }
}

impl<R: Runtime> ManualRuntime<R> {
    /// `inner`'s sockets and spawn on a new manual clock at zero.
    pub fn new(inner: R) -> (Self, Sleeps) {
        let (sleeps, made) = mpsc::unbounded();
        let clock = ManualClock::new();
        (
            ManualRuntime {
                inner,
                clock,
                sleeps,
                stall: Arc::new(AtomicBool::new(false)),
                keepalives: Arc::default(),
            },
            Sleeps(made),
        )
    }

    /// The clock, to advance.
    pub fn clock(&self) -> &ManualClock {
        &self.clock
    }

    /// TCP sockets (of every clone) given keep-alive so far.
    pub fn keepalives_set(&self) -> usize {
        self.keepalives.load(Ordering::Relaxed)
    }

    /// From now on, TCP connects (of every clone) never complete.
    pub fn stall_connects(&self, stall: bool) {
        self.stall.store(stall, Ordering::Relaxed);
    }
}

impl<R: Runtime> Timer for ManualRuntime<R> {
    fn now(&self) -> Duration {
        self.clock.now()
    }

    fn sleep_until(&self, deadline: Duration) -> Sleep {
        let _ = self.sleeps.unbounded_send(deadline);
        self.clock.sleep_until(deadline)
    }
}

impl<R: Runtime> Runtime for ManualRuntime<R> {
    type JoinHandle<T: Send + 'static> = R::JoinHandle<T>;
    type JoinError = R::JoinError;
    type Tcp = R::Tcp;
    type TcpListener = R::TcpListener;
    #[cfg(unix)]
    type Unix = R::Unix;
    #[cfg(unix)]
    type UnixListener = R::UnixListener;

    fn spawn<T: Send + 'static>(
        &self,
        task: impl Future<Output = T> + Send + 'static,
    ) -> R::JoinHandle<T> {
        self.inner.spawn(task)
    }
    fn abort<T: Send + 'static>(&self, handle: &mut R::JoinHandle<T>) {
        self.inner.abort(handle)
    }
    fn is_finished<T: Send + 'static>(&self, handle: &R::JoinHandle<T>) -> bool {
        self.inner.is_finished(handle)
    }
    fn resolve(&self, host_port: &str) -> impl Future<Output = io::Result<Vec<SocketAddr>>> + Send {
        self.inner.resolve(host_port)
    }
    fn bind_tcp(
        &self,
        addrs: &[SocketAddr],
    ) -> impl Future<Output = io::Result<R::TcpListener>> + Send {
        self.inner.bind_tcp(addrs)
    }
    fn tcp_local_addr(&self, listener: &R::TcpListener) -> io::Result<SocketAddr> {
        self.inner.tcp_local_addr(listener)
    }
    fn accept_tcp(
        &self,
        listener: &R::TcpListener,
    ) -> impl Future<Output = io::Result<(R::Tcp, SocketAddr)>> + Send {
        self.inner.accept_tcp(listener)
    }
    fn connect_tcp(&self, addrs: &[SocketAddr]) -> impl Future<Output = io::Result<R::Tcp>> + Send {
        let stall = self.stall.load(Ordering::Relaxed);
        let connect = self.inner.connect_tcp(addrs);
        async move {
            if stall {
                std::future::pending::<()>().await;
            }
            connect.await
        }
    }
    fn set_nodelay(&self, stream: &R::Tcp) -> io::Result<()> {
        self.inner.set_nodelay(stream)
    }
    fn set_keepalive(&self, stream: &R::Tcp, keepalive: &crate::TcpKeepalive) -> io::Result<()> {
        self.keepalives.fetch_add(1, Ordering::Relaxed);
        self.inner.set_keepalive(stream, keepalive)
    }
    fn peer_addr(&self, stream: &R::Tcp) -> io::Result<SocketAddr> {
        self.inner.peer_addr(stream)
    }
    #[cfg(unix)]
    fn bind_unix(&self, path: &std::path::Path) -> io::Result<R::UnixListener> {
        self.inner.bind_unix(path)
    }
    #[cfg(unix)]
    fn accept_unix(
        &self,
        listener: &R::UnixListener,
    ) -> impl Future<Output = io::Result<R::Unix>> + Send {
        self.inner.accept_unix(listener)
    }
    #[cfg(unix)]
    fn connect_unix(
        &self,
        path: &std::path::Path,
    ) -> impl Future<Output = io::Result<R::Unix>> + Send {
        self.inner.connect_unix(path)
    }
    type Child = R::Child;
    fn spawn_child(&self, command: std::process::Command) -> io::Result<R::Child> {
        self.inner.spawn_child(command)
    }
}

/// What the scenarios need of a runtime crate: its public `listen`,
/// `connect` and handles, its runtime, its router timer, and a spawn.
pub trait TestRuntime: 'static {
    /// The crate's [`Runtime`].
    type Runtime: Runtime;
    /// The crate's `Listener`.
    type Listener: Send + std::fmt::Debug;
    /// The crate's `LinkHandle`.
    type Link: Send + std::fmt::Debug;
    /// Distinguishes the crate's socket files.
    const NAME: &'static str;

    /// A new one of the crate's runtime.
    fn runtime() -> Self::Runtime;
    /// A router on the crate's timer.
    fn router(id: &str) -> (Node, PeerEvents, IncomingStreams);
    fn listen(
        node: &Node,
        addr: impl ToAddress,
    ) -> impl Future<Output = Result<Self::Listener, TransportError>>;
    fn listen_with(
        node: &Node,
        addr: impl ToAddress,
        options: LinkOptions,
    ) -> impl Future<Output = Result<Self::Listener, TransportError>>;
    fn connect(
        node: &Node,
        addr: impl ToAddress,
    ) -> impl Future<Output = Result<Self::Link, TransportError>>;
    fn connect_with(
        node: &Node,
        addr: impl ToAddress,
        options: LinkOptions,
    ) -> impl Future<Output = Result<Self::Link, TransportError>>;
    /// `Listener::local_addr`.
    fn local_addr(listener: &Self::Listener) -> &Address;
    /// `Listener::shutdown_handle`.
    fn listener_group(listener: &Self::Listener) -> &Shutdown;
    /// `LinkHandle::shutdown_handle`.
    fn link_group(link: &Self::Link) -> &Shutdown;
    /// `LinkHandle::join`.
    fn join(link: Self::Link) -> impl Future<Output = Result<(), TransportError>>;
    /// Splits a circuit stream (the dialled end's, or the accepted end's)
    /// into halves the way the crate's users do, through its io traits.
    fn halves(stream: circuit_stream::Duplex, dialled: bool) -> (BoxRead, BoxWrite);
    /// Runs `task` in a task of its own; the future returned gives its
    /// output.
    fn spawn<T: Send + 'static>(
        task: impl Future<Output = T> + Send + 'static,
    ) -> impl Future<Output = T>;
}

/// The scenarios of graceful shutdown: listeners stop accepting, links
/// drain, what is left at the deadline is cut with an epitaph.
pub mod shutdown {
    use super::*;

    /// The listener runs on a manual clock that never moves: draining
    /// needs no time to pass.
    pub async fn a_link_stays_up_until_its_streams_drain_then_closes<R: TestRuntime>() {
        let (server, _, mut server_incoming) = leaf("server");
        let (client, mut client_events, _) = leaf("client");
        let (runtime, _sleeps) = ManualRuntime::new(R::runtime());
        let listener = net::listen_with(&runtime, &server, "127.0.0.1:0", LinkOptions::new())
            .await
            .unwrap();
        let address = listener.local_addr().clone();
        let link = R::connect(&client, &address).await.unwrap();
        reachable(&mut client_events, "server").await;

        let mut stream = client.connect_to_peer("server").await.unwrap();
        stream.write_all(b"part one;").await.unwrap();
        let mut incoming = server_incoming.next().await.unwrap().stream;
        let mut buf = [0; 9];
        incoming.read_exact(&mut buf).await.unwrap();

        // Shutdown begins with the stream open both ways: the link stays.
        let shutdown = R::spawn(listener.shutdown(Duration::from_secs(40)));
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
        assert_eq!(runtime.clock().now(), Duration::ZERO);
        // The listener has stopped: nothing accepts there any more.
        let refused = R::connect(&client, &address).await.unwrap_err();
        assert!(
            matches!(refused, TransportError::Connect { .. }),
            "{refused}"
        );
        R::join(link).await.unwrap();
    }

    /// The listener runs on a manual clock: the held stream is cut once
    /// the test moves the time to the deadline the link sleeps until.
    pub async fn streams_still_open_at_the_deadline_are_closed_with_an_epitaph<R: TestRuntime>() {
        let (server, _, mut server_incoming) = leaf("server");
        let (client, mut client_events, _) = leaf("client");
        let (runtime, mut sleeps) = ManualRuntime::new(R::runtime());
        // No handshake deadline: the only sleep is the drain's.
        let options = LinkOptions::new().handshake_timeout(None);
        let listener = net::listen_with(&runtime, &server, "127.0.0.1:0", options)
            .await
            .unwrap();
        let link = R::connect(&client, listener.local_addr()).await.unwrap();
        reachable(&mut client_events, "server").await;

        let mut stream = client.connect_to_peer("server").await.unwrap();
        stream.write_all(b"hold").await.unwrap();
        // The server holds the stream open and never answers.
        let held = server_incoming.next().await.unwrap();

        let grace = Duration::from_secs(30);
        runtime.clock().advance(Duration::from_secs(5));
        let shutdown = R::spawn(listener.shutdown(grace));
        // The server's end of the link drains: it sleeps until the grace
        // has passed on its clock, from when it saw the shutdown begin.
        let deadline = sleeps.next().await;
        assert_eq!(deadline, Duration::from_secs(5) + grace);
        runtime.clock().advance_to(deadline);
        let report = shutdown.await;
        assert_eq!((report.drained, report.cut), (0, 1), "{report:?}");

        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest).await;
        assert_eq!(
            stream.reader().closed_reason().as_deref(),
            Some("node server is shutting down")
        );
        R::join(link).await.unwrap();
        drop(held);
    }

    /// A peer still sending on every stream when the link is cut reads
    /// each stream's epitaph, then the end of the link: never a reset. (A
    /// socket closed with bytes unread sends a TCP reset, and the peer's
    /// kernel drops what it had not yet handed over, close frames too; the
    /// closing end half-closes and reads to the peer's end first.) The
    /// listener's clock is manual: the test moves it to the deadline once
    /// bytes come back on every stream. Ten rounds, each a new link.
    pub async fn a_peer_still_sending_when_its_link_is_cut_reads_epitaphs_not_a_reset<
        R: TestRuntime,
    >() {
        const STREAMS: usize = 4;
        /// Bytes echoed on a stream before it counts as under load.
        const LOADED: u64 = 256 * 1024;
        for round in 0..10 {
            let (server, _, mut server_incoming) = leaf("server");
            let (client, mut client_events, _) = leaf("client");
            let (runtime, mut sleeps) = ManualRuntime::new(R::runtime());
            // The only sleep on the manual clock is the shutdown's grace.
            let options = LinkOptions::new().handshake_timeout(None);
            let listener = net::listen_with(&runtime, &server, "127.0.0.1:0", options)
                .await
                .unwrap();
            let link = R::connect(&client, listener.local_addr()).await.unwrap();
            reachable(&mut client_events, "server").await;

            let (loaded_tx, mut loaded) = mpsc::unbounded();
            let mut clients = Vec::new();
            let mut echoes = Vec::new();
            for seed in 0..STREAMS as u64 {
                let stream = client.connect_to_peer("server").await.unwrap();
                let (mut reader, writer) = stream.into_split();
                // Writes until the stream or the link ends.
                let write = R::spawn(async move {
                    let mut chunk = vec![0; 16 * 1024];
                    let mut sent = 0;
                    loop {
                        pattern(seed, sent, &mut chunk);
                        if writer.write_all(&chunk).await.is_err() {
                            return;
                        }
                        sent += chunk.len() as u64;
                    }
                });
                // Reads until the stream ends; says when under load.
                let loaded_tx = loaded_tx.clone();
                let read = R::spawn(async move {
                    let mut buf = vec![0; 64 * 1024];
                    let mut got = 0u64;
                    let end = loop {
                        match AsyncReadExt::read(&mut reader, &mut buf).await {
                            Ok(0) => break None,
                            Ok(n) => {
                                let before = got;
                                got += n as u64;
                                if before < LOADED && got >= LOADED {
                                    let _ = loaded_tx.unbounded_send(());
                                }
                            }
                            Err(e) => break Some(e.to_string()),
                        }
                    };
                    (got, end, reader.closed_reason())
                });
                clients.push((write, read));
                let incoming = server_incoming.next().await.unwrap().stream;
                echoes.push(R::spawn(async move {
                    let (reader, mut writer) = incoming.into_split();
                    let _ = futures::io::copy(reader, &mut writer).await;
                }));
            }
            for _ in 0..STREAMS {
                loaded.next().await.unwrap();
            }

            // Every stream is busy both ways: the link is cut at once.
            let shutdown = R::spawn(listener.shutdown(Duration::from_secs(1)));
            let deadline = sleeps.next().await;
            runtime.clock().advance_to(deadline);
            let report = shutdown.await;
            assert_eq!((report.drained, report.cut), (0, 1), "{report:?}");

            for (seed, (write, read)) in clients.into_iter().enumerate() {
                write.await;
                let (got, end, reason) = read.await;
                assert!(got >= LOADED);
                assert_eq!(
                    reason.as_deref(),
                    Some("node server is shutting down"),
                    "round {round}, stream {seed} ended with {end:?}"
                );
            }
            let ended = R::join(link).await;
            assert!(
                ended.is_ok(),
                "round {round}: the client's link ended with {ended:?}"
            );
            for echo in echoes {
                echo.await;
            }
        }
    }

    pub async fn one_shutdown_closes_every_listener_and_link_of_its_group<R: TestRuntime>() {
        let shutdown = Shutdown::new();
        let options = LinkOptions::new().shutdown(&shutdown);
        let (r, _, _) = R::router("r");
        let (a, mut a_events, _) = leaf("a");
        let (b, mut b_events, _) = leaf("b");
        let listener = R::listen_with(&r, "127.0.0.1:0", options.clone())
            .await
            .unwrap();
        let a_link = R::connect_with(&a, R::local_addr(&listener), options.clone())
            .await
            .unwrap();
        let b_link = R::connect_with(&b, R::local_addr(&listener), options)
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
        assert!(R::listener_group(&listener).is_shutting_down());
        R::join(a_link).await.unwrap();
        R::join(b_link).await.unwrap();
        assert!(r.snapshot().links.is_empty());
    }

    /// Once a listener's shutdown resolves, its socket is released: the
    /// file of a Unix socket is gone and its path can be listened on again
    /// at once. Repeated, since the loop ends on another task.
    #[cfg(unix)]
    pub async fn a_unix_socket_is_released_when_shutdown_resolves<R: TestRuntime>() {
        let (node, _, _) = leaf("n");
        let path = socket_path::<R>("release");
        for round in 0..50 {
            let listener = R::listen(&node, Address::unix(&path)).await.unwrap();
            let report = R::listener_group(&listener)
                .shutdown(Duration::from_secs(10))
                .await;
            assert_eq!((report.drained, report.cut), (0, 0), "{report:?}");
            assert!(
                !path.exists(),
                "round {round}: the socket file is still there"
            );
        }
    }
}

/// The scenarios of reconnecting: a dialled link with a reconnect policy
/// comes back after the far end goes away and listens again on the same
/// port, and gives up after its attempts.
pub mod reconnect {
    use super::*;

    /// Options whose only sleeps on the runtime's clock are the waits
    /// between dials, with `policy`.
    pub fn redial_only(policy: &ReconnectPolicy) -> LinkOptions {
        LinkOptions::new()
            .reconnect(policy.clone())
            .connect_timeout(None)
            .handshake_timeout(None)
    }

    /// The dialled link runs on a manual clock: it dials again only once
    /// the test moves the time past the policy's first (jittered) delay.
    pub async fn a_dropped_link_is_dialled_again_when_the_server_returns<R: TestRuntime>() {
        let (r, _, _) = R::router("r");
        let (a, mut a_events, _) = leaf("a");
        let listener = R::listen(&r, "127.0.0.1:0").await.unwrap();
        let address = R::local_addr(&listener).clone();
        let policy = ReconnectPolicy::default()
            .initial(Duration::from_secs(1))
            .max(Duration::from_secs(20))
            .seed(11);
        let (runtime, mut sleeps) = ManualRuntime::new(R::runtime());
        let options = redial_only(&policy);
        let link = net::connect_with(&runtime, &a, &address, options)
            .await
            .unwrap();
        reachable(&mut a_events, "r").await;

        // The server goes away: the link drops, and the client waits the
        // policy's first delay on its clock.
        R::listener_group(&listener)
            .shutdown(Duration::from_secs(5))
            .await;
        drop(listener);
        unreachable(&mut a_events, "r").await;
        let wait = sleeps.next().await;
        assert_eq!(wait, policy.backoff().delay(0), "the seeded backoff's wait");
        assert!(policy.delay(0) / 2 <= wait && wait <= policy.delay(0));

        // It listens again on the same port; once the delay has passed the
        // client dials and finds it.
        let listener = R::listen(&r, &address).await.unwrap();
        runtime.clock().advance_to(wait);
        reachable(&mut a_events, "r").await;
        assert!(a.connect_to_peer("r").await.is_ok());

        let report = link.shutdown(Duration::from_secs(5)).await;
        assert_eq!(report.drained, 1, "{report:?}");
        link.join().await.unwrap();
        R::listener_group(&listener)
            .shutdown(Duration::from_secs(5))
            .await;
    }

    /// On a manual clock: the test moves the time through each wait of
    /// the backoff (about 1 s, 2 s, 4 s, jittered); the third failed
    /// redial gives up.
    pub async fn a_policy_gives_up_after_its_attempts<R: TestRuntime>() {
        let (r, _, _) = R::router("r");
        let (a, mut a_events, _) = leaf("a");
        let listener = R::listen(&r, "127.0.0.1:0").await.unwrap();
        let policy = ReconnectPolicy::default()
            .initial(Duration::from_secs(1))
            .max(Duration::from_secs(4))
            .max_attempts(Some(3))
            .seed(5);
        let (runtime, mut sleeps) = ManualRuntime::new(R::runtime());
        let options = redial_only(&policy);
        let link = net::connect_with(&runtime, &a, R::local_addr(&listener), options)
            .await
            .unwrap();
        reachable(&mut a_events, "r").await;
        R::listener_group(&listener)
            .shutdown(Duration::from_secs(5))
            .await;
        drop(listener);
        let mut backoff = policy.backoff();
        let mut total = Duration::ZERO;
        for failed in 0..3 {
            let wait = sleeps.next().await;
            let expected = backoff.delay(failed);
            assert_eq!(wait, runtime.clock().now() + expected);
            assert!(expected <= policy.delay(failed) && expected >= policy.delay(failed) / 2);
            total += expected;
            assert!(!link.is_finished(), "gave up after {failed} attempts");
            runtime.clock().advance_to(wait);
        }
        assert_eq!(runtime.clock().now(), total);
        let error = link.join().await.unwrap_err();
        assert!(matches!(error, TransportError::Connect { .. }), "{error}");
    }
}

/// A free port on loopback (nothing listens there once this returns).
pub fn free_port() -> SocketAddr {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap()
}

/// The scenarios of the first dial and of deadlines: a first dial retried
/// like a redial, a dial and a handshake that take too long, too many
/// handshakes at once.
pub mod deadlines {
    use super::*;
    use crate::Jitter;

    /// Nothing listens yet: with `retry_first_dial` the link is dialled
    /// again after the policy's wait instead of failing, and comes up once
    /// the server listens.
    pub async fn a_failed_first_dial_is_retried_when_asked<R: TestRuntime>() {
        let (r, _, _) = R::router("r");
        let (a, mut a_events, _) = leaf("a");
        let address = free_port();
        let policy = ReconnectPolicy::default()
            .initial(Duration::from_secs(2))
            .jitter(Jitter::Full)
            .seed(3);
        let (runtime, mut sleeps) = ManualRuntime::new(R::runtime());
        // Without retry_first_dial it fails at once, as before.
        let Err(error) =
            net::connect_with(&runtime, &a, address, reconnect::redial_only(&policy)).await
        else {
            panic!("the first dial did not fail");
        };
        assert!(matches!(error, TransportError::Connect { .. }), "{error}");

        let options = reconnect::redial_only(&policy).retry_first_dial(true);
        let link = net::connect_with(&runtime, &a, address, options)
            .await
            .unwrap();
        assert!(link.first_dial_failed().is_some());
        let wait = sleeps.next().await;
        assert_eq!(wait, policy.backoff().delay(0));
        assert!(!link.is_finished());
        let listener = R::listen(&r, address).await.unwrap();
        runtime.clock().advance_to(wait);
        reachable(&mut a_events, "r").await;
        link.shutdown(Duration::from_secs(5)).await;
        link.join().await.unwrap();
        R::listener_group(&listener)
            .shutdown(Duration::from_secs(5))
            .await;
    }

    /// A dial that never completes (an address that drops SYNs) fails
    /// once the connect timeout has passed on the runtime's clock.
    pub async fn a_dial_that_never_completes_fails_at_the_connect_timeout<R: TestRuntime>() {
        let (a, _, _) = leaf("a");
        let (runtime, mut sleeps) = ManualRuntime::new(R::runtime());
        runtime.stall_connects(true);
        let limit = Duration::from_secs(3);
        let options = LinkOptions::new().connect_timeout(Some(limit));
        let dial = net::connect_with(&runtime, &a, free_port(), options);
        let advance = async {
            let deadline = sleeps.next().await;
            assert_eq!(deadline, limit);
            runtime.clock().advance_to(deadline);
        };
        let (dialled, ()) = futures::join!(dial, advance);
        let Err(error) = dialled else {
            panic!("the stalled dial did not fail");
        };
        match &error {
            TransportError::Connect { source, .. } => {
                assert_eq!(source.kind(), io::ErrorKind::TimedOut, "{error}")
            }
            other => panic!("not a connect error: {other}"),
        }
        assert!(error.to_string().contains("no answer within 3s"), "{error}");
    }

    /// A raw TCP client of the listener: reads everything it is sent
    /// until the server closes the connection, on a thread of its own.
    pub struct RawClient {
        done: futures::channel::oneshot::Receiver<usize>,
        _socket: std::net::TcpStream,
    }

    impl RawClient {
        /// Connects to `address` and says nothing.
        pub fn connect(address: &Address) -> RawClient {
            let socket = std::net::TcpStream::connect(address.to_string()).unwrap();
            let mut reader = socket.try_clone().unwrap();
            let (tx, done) = futures::channel::oneshot::channel();
            std::thread::spawn(move || {
                let mut total = 0;
                let mut buf = [0; 4096];
                // End of stream or a reset: the server closed it.
                while let Ok(n @ 1..) = std::io::Read::read(&mut reader, &mut buf) {
                    total += n;
                }
                let _ = tx.send(total);
            });
            RawClient {
                done,
                _socket: socket,
            }
        }

        /// Whether the server has closed it yet.
        pub fn is_closed(&mut self) -> bool {
            !matches!(self.done.try_recv(), Ok(None))
        }

        /// Waits until the server closes it; the bytes it sent before.
        pub async fn closed(self) -> usize {
            self.done.await.expect("the reader thread ended")
        }
    }

    /// A client that connects and never speaks has its link dropped at
    /// the handshake deadline, measured on the runtime's clock.
    pub async fn a_client_that_never_speaks_is_closed_at_the_handshake_deadline<R: TestRuntime>() {
        let (server, _, _) = leaf("server");
        let (runtime, mut sleeps) = ManualRuntime::new(R::runtime());
        let limit = Duration::from_secs(5);
        let options = LinkOptions::new().handshake_timeout(Some(limit));
        let listener = net::listen_with(&runtime, &server, "127.0.0.1:0", options)
            .await
            .unwrap();
        let mut silent = RawClient::connect(listener.local_addr());
        let deadline = sleeps.next().await;
        assert_eq!(deadline, limit);
        assert!(!silent.is_closed(), "closed before its deadline");
        runtime.clock().advance_to(deadline);
        // The server spoke first (its Identify), then hung up.
        let sent = silent.closed().await;
        assert!(sent > 0, "the server said nothing");
        assert!(server.snapshot().links.is_empty());
    }

    /// With two handshakes under way, a third connection is closed at
    /// once, before a byte; once the two are dropped at their deadline a
    /// real node links.
    pub async fn connections_beyond_the_handshake_cap_are_closed_at_once<R: TestRuntime>() {
        let (server, _, _) = leaf("server");
        let (client, mut client_events, _) = leaf("client");
        let (runtime, mut sleeps) = ManualRuntime::new(R::runtime());
        let limit = Duration::from_secs(5);
        let options = LinkOptions::new()
            .handshake_timeout(Some(limit))
            .max_handshakes(2);
        let listener = net::listen_with(&runtime, &server, "127.0.0.1:0", options)
            .await
            .unwrap();
        let address = listener.local_addr().clone();
        let mut first = RawClient::connect(&address);
        let mut second = RawClient::connect(&address);
        // Both accepted: each link sleeps until its handshake deadline.
        assert_eq!(sleeps.next().await, limit);
        assert_eq!(sleeps.next().await, limit);
        let third = RawClient::connect(&address);
        assert_eq!(third.closed().await, 0, "the third was sent bytes");
        assert_eq!(listener.handshakes_refused(), 1);
        assert!(!first.is_closed() && !second.is_closed());

        runtime.clock().advance_to(limit);
        assert!(first.closed().await > 0);
        assert!(second.closed().await > 0);
        // Their slots are free again: a node that speaks links.
        let link = R::connect(&client, &address).await.unwrap();
        reachable(&mut client_events, "server").await;
        assert_eq!(listener.handshakes_refused(), 1);
        drop(link);
    }
}

/// TCP keep-alive reaches every TCP socket, dialled and accepted (the
/// runtime crates read it back from a socket in their unit tests).
pub mod keepalive {
    use super::*;

    pub async fn keepalive_is_set_on_dialled_and_accepted_sockets<R: TestRuntime>() {
        let (server, _, _) = leaf("server");
        let (client, mut client_events, _) = leaf("client");
        let (runtime, _sleeps) = ManualRuntime::new(R::runtime());
        let listener = net::listen_with(&runtime, &server, "127.0.0.1:0", LinkOptions::new())
            .await
            .unwrap();
        let link = net::connect_with(&runtime, &client, listener.local_addr(), LinkOptions::new())
            .await
            .unwrap();
        reachable(&mut client_events, "server").await;
        // Both ends of the link: the accepted socket's was set before its
        // link started, so before the client could be up.
        assert_eq!(runtime.keepalives_set(), 2);

        let (quiet, mut quiet_events, _) = leaf("quiet");
        let off = LinkOptions::new().tcp_keepalive(None);
        let listener_off = net::listen_with(&runtime, &server, "127.0.0.1:0", off.clone())
            .await
            .unwrap();
        let quiet_link = net::connect_with(&runtime, &quiet, listener_off.local_addr(), off)
            .await
            .unwrap();
        reachable(&mut quiet_events, "server").await;
        assert_eq!(runtime.keepalives_set(), 2, "set although turned off");
        drop((link, quiet_link));
    }
}

/// The scenarios of typed errors: what a command line gets wrong most
/// often.
pub mod errors {
    use super::*;

    pub async fn a_bad_address_is_refused_before_any_socket_is_made<R: TestRuntime>() {
        let (node, _, _) = leaf("n");
        for text in ["no-port", "host:99999", ":80", "::1:80", "unix:"] {
            let error = R::listen(&node, text).await.unwrap_err();
            assert!(
                matches!(error, TransportError::BadAddress { .. }),
                "{text}: {error}"
            );
            let error = R::connect(&node, text).await.unwrap_err();
            assert!(
                matches!(error, TransportError::BadAddress { .. }),
                "{text}: {error}"
            );
        }
    }

    pub async fn a_port_in_use_says_so<R: TestRuntime>() {
        let (node, _, _) = leaf("n");
        let first = R::listen(&node, "127.0.0.1:0").await.unwrap();
        let error = R::listen(&node, R::local_addr(&first)).await.unwrap_err();
        assert!(
            matches!(error, TransportError::AddressInUse { .. }),
            "{error}"
        );
        assert!(error.to_string().contains("already in use"), "{error}");
    }

    #[cfg(unix)]
    pub async fn a_unix_path_in_use_says_so<R: TestRuntime>() {
        let (node, _, _) = leaf("n");
        let path = socket_path::<R>("inuse");
        let first = R::listen(&node, Address::unix(&path)).await.unwrap();
        let error = R::listen(&node, Address::unix(&path)).await.unwrap_err();
        assert!(
            matches!(error, TransportError::AddressInUse { .. }),
            "{error}"
        );
        drop(first);
    }

    pub async fn nothing_listening_is_a_connect_error<R: TestRuntime>() {
        let (node, _, _) = leaf("n");
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap()
        };
        let error = R::connect(&node, port).await.unwrap_err();
        assert!(matches!(error, TransportError::Connect { .. }), "{error}");
    }

    pub async fn an_unknown_host_is_a_resolve_error<R: TestRuntime>() {
        let (node, _, _) = leaf("n");
        let error = R::connect(&node, "no-such-host.invalid:80")
            .await
            .unwrap_err();
        assert!(matches!(error, TransportError::Resolve { .. }), "{error}");
    }
}

/// The scenarios over real sockets: a - r - b with 64 MiB each way
/// through the router, every byte checked; the quality of a loopback link.
pub mod mesh {
    use super::*;

    const LEN: u64 = 64 << 20;

    pub async fn through_a_router<R: TestRuntime>(address: Address) {
        let (r, _r_events, _r_incoming) = R::router("r");
        let (a, mut a_events, _a_incoming) = leaf("a");
        let (b, _b_events, mut b_incoming) = leaf("b");

        let listener = R::listen(&r, &address).await.unwrap();
        let a_link = R::connect(&a, R::local_addr(&listener)).await.unwrap();
        let b_link = R::connect(&b, R::local_addr(&listener)).await.unwrap();
        reachable(&mut a_events, "b").await;

        let a_stream = a.connect_to_peer("b").await.unwrap();
        let a_side = R::spawn(async move {
            let (read, write) = R::halves(a_stream, true);
            futures::join!(send_pattern(write, 1, LEN), check_pattern(read, 2, LEN));
        });
        let b_side = R::spawn(async move {
            let incoming = b_incoming.next().await.expect("incoming streams ended");
            assert_eq!(incoming.source, "a");
            let (read, write) = R::halves(incoming.stream, false);
            futures::join!(send_pattern(write, 2, LEN), check_pattern(read, 1, LEN));
        });
        a_side.await;
        b_side.await;

        let forwarded: u64 = r.snapshot().links.iter().map(|l| l.mux.bytes_in).sum();
        assert!(forwarded >= 2 * LEN, "the router moved {forwarded} bytes");

        let report = R::listener_group(&listener)
            .shutdown(Duration::from_secs(10))
            .await;
        assert_eq!((report.drained, report.cut), (2, 0), "{report:?}");
        // Without a reconnect policy, the dialled links end with the router's.
        R::join(a_link).await.unwrap();
        R::join(b_link).await.unwrap();
    }

    pub async fn over_loopback_tcp<R: TestRuntime>() {
        through_a_router::<R>("127.0.0.1:0".parse().unwrap()).await
    }

    #[cfg(unix)]
    pub async fn over_a_unix_socket<R: TestRuntime>() {
        let path = socket_path::<R>("mesh");
        through_a_router::<R>(Address::unix(&path)).await;
        assert!(!path.exists(), "the listener removes its socket file");
    }

    pub async fn a_loopback_link_is_a_local_socket_unless_told_otherwise<R: TestRuntime>() {
        use circuit_frame::Quality;
        let (server, _, _) = leaf("server");
        let (near, mut near_events, _) = leaf("near");
        let (far, mut far_events, _) = leaf("far");
        let listener = R::listen(&server, "127.0.0.1:0").await.unwrap();
        let _near = R::connect(&near, R::local_addr(&listener)).await.unwrap();
        let options = LinkOptions::new().quality(Quality::NETWORK);
        let _far = R::connect_with(&far, R::local_addr(&listener), options)
            .await
            .unwrap();
        reachable(&mut near_events, "server").await;
        reachable(&mut far_events, "server").await;
        let quality = |node: &Node| node.snapshot().link_to("server").unwrap().quality;
        assert_eq!(quality(&near), Quality::LOCAL_SOCKET);
        assert_eq!(quality(&far), Quality::NETWORK);
    }
}

/// Implements [`TestRuntime`] on a new unit type `$name` for the runtime
/// crate `$krate` (its `listen`, `connect`, `Listener`, `LinkHandle`, and
/// its runtime type `$runtime`),
/// with `$router` making a router on the crate's timer, `$halves`
/// splitting a stream, and `$spawn`
/// spawning a task and giving a future of its output. `$label` tells the
/// crate's socket files apart.
#[macro_export]
macro_rules! test_runtime {
    (
        $name:ident,
        $krate:ident,
        $runtime:ident,
        $label:literal,
        $router:path,
        $halves:path,
        $spawn:path
    ) => {
        /// This crate's transport, for the shared scenarios.
        pub struct $name;

        impl $crate::test_support::TestRuntime for $name {
            type Runtime = $krate::$runtime;
            type Listener = $krate::Listener;
            type Link = $krate::LinkHandle;
            const NAME: &'static str = $label;

            fn runtime() -> $krate::$runtime {
                <$krate::$runtime>::default()
            }

            fn router(
                id: &str,
            ) -> (
                ::circuit_node::Node,
                ::circuit_node::PeerEvents,
                ::circuit_node::IncomingStreams,
            ) {
                $router(id)
            }

            async fn listen(
                node: &::circuit_node::Node,
                addr: impl $crate::ToAddress,
            ) -> Result<$krate::Listener, $crate::TransportError> {
                $krate::listen(node, addr).await
            }

            async fn listen_with(
                node: &::circuit_node::Node,
                addr: impl $crate::ToAddress,
                options: $crate::LinkOptions,
            ) -> Result<$krate::Listener, $crate::TransportError> {
                $krate::listen_with(node, addr, options).await
            }

            async fn connect(
                node: &::circuit_node::Node,
                addr: impl $crate::ToAddress,
            ) -> Result<$krate::LinkHandle, $crate::TransportError> {
                $krate::connect(node, addr).await
            }

            async fn connect_with(
                node: &::circuit_node::Node,
                addr: impl $crate::ToAddress,
                options: $crate::LinkOptions,
            ) -> Result<$krate::LinkHandle, $crate::TransportError> {
                $krate::connect_with(node, addr, options).await
            }

            fn local_addr(listener: &$krate::Listener) -> &$crate::Address {
                listener.local_addr()
            }

            fn listener_group(listener: &$krate::Listener) -> &$crate::Shutdown {
                listener.shutdown_handle()
            }

            fn link_group(link: &$krate::LinkHandle) -> &$crate::Shutdown {
                link.shutdown_handle()
            }

            async fn join(link: $krate::LinkHandle) -> Result<(), $crate::TransportError> {
                link.join().await
            }

            fn halves(
                stream: ::circuit_stream::Duplex,
                dialled: bool,
            ) -> (
                $crate::test_support::BoxRead,
                $crate::test_support::BoxWrite,
            ) {
                $halves(stream, dialled)
            }

            fn spawn<T: Send + 'static>(
                task: impl ::std::future::Future<Output = T> + Send + 'static,
            ) -> impl ::std::future::Future<Output = T> {
                $spawn(task)
            }
        }
    };
}
