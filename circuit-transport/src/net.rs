//! Listening and dialling over TCP and Unix sockets, written once for
//! every [`Runtime`]: the accept loop, the dial and redial loop, the spans
//! and events, and the [`Listener`] and [`LinkHandle`] on what runs. A
//! runtime crate passes its runtime value and re-exports these with its
//! runtime filled in.

use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use circuit_frame::Quality;
use circuit_mux::Role;
use circuit_node::{Node, NodeError};
use futures::future::{select, BoxFuture, Either};
use futures::io::{AsyncRead, AsyncWrite};
use futures::FutureExt;
use tracing::Instrument;

use crate::drive::{run_link_inner, HandshakeSlot};
use crate::runtime::Runtime;
use crate::socket::{resolved, tcp_quality};
use crate::{
    run_dialled, run_link, Address, Dialling, Guard, LinkOptions, Shutdown, ShutdownReport,
    TcpKeepalive, ToAddress, TransportError,
};

/// The byte stream under a dialled link.
#[cfg(unix)]
pub type SocketIo<R> = Either<<R as Runtime>::Tcp, <R as Runtime>::Unix>;
/// The byte stream under a dialled link.
#[cfg(not(unix))]
pub type SocketIo<R> = Either<<R as Runtime>::Tcp, <R as Runtime>::Tcp>;

/// The byte stream under a link over a command or a serial device.
pub type DeviceIo = Box<dyn ByteStream>;

/// A byte stream a link can ride on, as a trait object.
pub trait ByteStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> ByteStream for T {}

/// The byte stream under a dialled link: a socket, or a command or a
/// serial device.
pub type DialledIo<R> = Either<SocketIo<R>, DeviceIo>;

/// Accepts links on a TCP or Unix socket, as the server end, until shut
/// down or dropped. Made by [`listen_with`].
///
/// Each accepted link runs in its own task. Dropping the listener stops
/// accepting at once and leaves its links running;
/// [`shutdown`](Self::shutdown) stops accepting and closes its links
/// gracefully.
#[derive(Debug)]
pub struct Listener<R: Runtime> {
    runtime: R,
    address: Address,
    group: Shutdown,
    refused: Arc<AtomicU64>,
    accept: R::JoinHandle<()>,
}

impl<R: Runtime> Listener<R> {
    /// The address it listens on, with the port the system chose for a
    /// TCP port 0.
    pub fn local_addr(&self) -> &Address {
        &self.address
    }

    /// The group of the listener and its links.
    pub fn shutdown_handle(&self) -> &Shutdown {
        &self.group
    }

    /// Connections closed as soon as accepted because
    /// [`max_handshakes`](LinkOptions::max_handshakes) links were in their
    /// handshake already.
    pub fn handshakes_refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Stops accepting, lets its links drain for at most `grace`, then
    /// cuts the rest; resolves when all is closed.
    pub fn shutdown(&self, grace: Duration) -> impl Future<Output = ShutdownReport> + Send {
        self.group.shutdown(grace)
    }
}

impl<R: Runtime> Drop for Listener<R> {
    fn drop(&mut self) {
        self.runtime.abort(&mut self.accept);
    }
}

/// A link dialled by [`connect_with`], running in its own task (and
/// dialled again after a drop, with a
/// [`ReconnectPolicy`](crate::ReconnectPolicy)). Dropping the handle leaves
/// the link running.
#[derive(Debug)]
pub struct LinkHandle<R: Runtime> {
    runtime: R,
    address: Address,
    group: Shutdown,
    first_failed: Option<String>,
    task: R::JoinHandle<Result<(), TransportError>>,
}

impl<R: Runtime> LinkHandle<R> {
    /// The address dialled.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// The link's group.
    pub fn shutdown_handle(&self) -> &Shutdown {
        &self.group
    }

    /// Stops dialling again, lets the link drain for at most `grace`, then
    /// cuts it; resolves when it is closed.
    pub fn shutdown(&self, grace: Duration) -> impl Future<Output = ShutdownReport> + Send {
        self.group.shutdown(grace)
    }

    /// Why the first dial failed, when it did and the link is being dialled
    /// again ([`retry_first_dial`](LinkOptions::retry_first_dial)); `None`
    /// when the first dial connected.
    pub fn first_dial_failed(&self) -> Option<&str> {
        self.first_failed.as_deref()
    }

    /// Whether the link's task has ended (without a policy: the link ended).
    pub fn is_finished(&self) -> bool {
        self.runtime.is_finished(&self.task)
    }

    /// Waits for the link's task to end: `Ok(())` after a clean close or a
    /// shutdown, the error otherwise (the last failed redial, with a
    /// policy that gave up).
    pub async fn join(self) -> Result<(), TransportError> {
        self.task.await.map_err(|e| TransportError::Task {
            reason: e.to_string(),
        })?
    }

    /// The runtime's handle on the link's task.
    pub fn into_task(self) -> R::JoinHandle<Result<(), TransportError>> {
        self.task
    }
}

/// Listens on `addr` (`host:port` or `unix:PATH`) with `options` on
/// `runtime`, and links every connection accepted there to `node`, as the
/// server end, each in a task of its own, until the group shuts down or the
/// listener is dropped. TCP links get `TCP_NODELAY`. A Unix socket's file
/// is removed when the listener stops; an existing file at that path is
/// [`TransportError::AddressInUse`]. Each link's handshake is bounded by
/// [`handshake_timeout`](LinkOptions::handshake_timeout), and at most
/// [`max_handshakes`](LinkOptions::max_handshakes) are under way at once:
/// a connection beyond them is closed as soon as accepted.
pub async fn listen_with<R: Runtime>(
    runtime: &R,
    node: &Node,
    addr: impl ToAddress,
    options: LinkOptions,
) -> Result<Listener<R>, TransportError> {
    let refused = Arc::new(AtomicU64::new(0));
    let (address, group, task) = listen(
        runtime,
        node,
        addr.to_address()?,
        options,
        Arc::clone(&refused),
    )
    .await?;
    Ok(Listener {
        runtime: runtime.clone(),
        address,
        group,
        refused,
        accept: runtime.spawn(task),
    })
}

/// Dials `addr` (`host:port`, `unix:PATH`, `exec:CMD` or
/// `serial:PATH?baud=N`) with `options` on `runtime` and runs a link to
/// `node` over it, as the client end, in a new task. Fails at once if the
/// address is bad or the first dial fails (for a command: it did not
/// start, or it exited before it wrote a byte; see
/// [`process`](crate::process)), unless
/// [`retry_first_dial`](LinkOptions::retry_first_dial). With a
/// [`ReconnectPolicy`](crate::ReconnectPolicy), a link that drops is
/// dialled again. Each dial is bounded by
/// [`connect_timeout`](LinkOptions::connect_timeout), each handshake by
/// [`handshake_timeout`](LinkOptions::handshake_timeout).
pub async fn connect_with<R: Runtime>(
    runtime: &R,
    node: &Node,
    addr: impl ToAddress,
    options: LinkOptions,
) -> Result<LinkHandle<R>, TransportError> {
    let ((address, group, task), first_failed) =
        connect(runtime, node, addr.to_address()?, options).await?;
    Ok(LinkHandle {
        runtime: runtime.clone(),
        address,
        group,
        first_failed,
        task: runtime.spawn(task),
    })
}

/// Spawns a link over any futures-io byte stream on `runtime`, in
/// `shutdown`'s group. The task ends with the link; after a graceful
/// shutdown it ends with `Ok(())`.
pub fn spawn_link<R, IO>(
    runtime: &R,
    node: &Node,
    io: IO,
    role: Role,
    quality: Quality,
    shutdown: &Shutdown,
) -> R::JoinHandle<Result<(), NodeError>>
where
    R: Runtime,
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    runtime.spawn(io_link(runtime, node, io, role, quality, shutdown))
}

/// A link over any byte stream in `shutdown`'s group, in its span, ready
/// to spawn (what [`spawn_link`] spawns).
pub fn io_link<R, IO>(
    runtime: &R,
    node: &Node,
    io: IO,
    role: Role,
    quality: Quality,
    shutdown: &Shutdown,
) -> impl Future<Output = Result<(), NodeError>> + Send + 'static
where
    R: Runtime,
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut guard = shutdown.guard();
    let node = node.clone();
    let runtime = runtime.clone();
    let span = tracing::info_span!("transport", kind = "io", ?role);
    async move { run_link(node, io, role, quality, &mut guard, &runtime).await }.instrument(span)
}

/// A listener or dialled link set up but not yet spawned: the address
/// (with the port the system chose), its group, and the task in its span.
type Started<T> = (Address, Shutdown, BoxFuture<'static, T>);

/// Binds `address` and returns the accept loop, which links every
/// connection accepted to `node` as the server end, each in a task of its
/// own, until the group shuts down or the loop is dropped. TCP links get
/// `TCP_NODELAY`; a Unix socket's file is removed when the loop ends.
async fn listen<R: Runtime>(
    runtime: &R,
    node: &Node,
    address: Address,
    options: LinkOptions,
    refused: Arc<AtomicU64>,
) -> Result<Started<()>, TransportError> {
    let rt = runtime.clone();
    let group = options.group();
    let guard = group.listener_guard();
    let quality = options.get_quality();
    let node = node.clone();
    let keepalive = options.get_tcp_keepalive();
    let limits = Limits {
        handshake: options.get_handshake_timeout(),
        max: options.get_max_handshakes(),
        shaking: Arc::new(AtomicUsize::new(0)),
        refused,
    };
    let (address, span, task): (_, _, BoxFuture<'static, ()>) = match &address {
        Address::Tcp(text) => {
            let addrs = resolve(runtime, &address, text).await?;
            let listener = runtime
                .bind_tcp(&addrs)
                .await
                .map_err(|source| TransportError::bind(&address, source))?;
            let local = runtime
                .tcp_local_addr(&listener)
                .map_err(|source| TransportError::bind(&address, source))?;
            let span = tracing::info_span!("listener", address = %local);
            let task = async move {
                // Declared first, dropped last: the group sees the loop
                // stop only once the socket is closed.
                let guard = guard;
                let listener = listener;
                let (bound, rt) = (&listener, &rt);
                let accept = move || async move {
                    let (stream, peer) = rt.accept_tcp(bound).await?;
                    set_options(rt, &stream, keepalive);
                    let quality = quality.unwrap_or_else(|| tcp_quality(rt.peer_addr(&stream)));
                    Ok((stream, quality, tracing::info_span!("tcp", %peer)))
                };
                accept_loop(rt, node, &guard, limits, accept).await;
                drop(listener);
                drop(guard);
            };
            (Address::from(local), span, task.boxed())
        }
        #[cfg(unix)]
        Address::Unix(path) => {
            let listener = runtime
                .bind_unix(path)
                .map_err(|source| TransportError::bind(&address, source))?;
            let span = tracing::info_span!("listener", address = %address);
            let unlink = Unlink(path.clone());
            let quality = quality.unwrap_or(Quality::LOCAL_SOCKET);
            let task = async move {
                // Declared first, dropped last: the group sees the loop
                // stop only once the socket is closed and its file gone.
                let guard = guard;
                let unlink = unlink;
                let listener = listener;
                let (bound, rt) = (&listener, &rt);
                let accept = move || async move {
                    let stream = rt.accept_unix(bound).await?;
                    Ok((stream, quality, tracing::info_span!("unix")))
                };
                accept_loop(rt, node, &guard, limits, accept).await;
                drop(listener);
                drop(unlink);
                drop(guard);
            };
            (address.clone(), span, task.boxed())
        }
        Address::Exec(_) | Address::Serial { .. } => {
            return Err(TransportError::BadAddress {
                address: address.to_string(),
                reason: "a command or a serial device can be dialled, not listened on".into(),
            })
        }
        #[allow(unreachable_patterns)]
        _ => return Err(TransportError::unsupported(&address)),
    };
    span.in_scope(|| tracing::info!("listening"));
    Ok((address, group, task.instrument(span).boxed()))
}

/// Removes a Unix socket's file however the accept loop ends.
#[cfg(unix)]
struct Unlink(std::path::PathBuf);

#[cfg(unix)]
impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The bounds of an accept loop's handshakes.
struct Limits {
    handshake: Option<Duration>,
    max: usize,
    /// Links in their handshake now.
    shaking: Arc<AtomicUsize>,
    /// Connections closed at once for want of a slot.
    refused: Arc<AtomicU64>,
}

/// Accepts with `accept` until the guard's group shuts down, running each
/// link accepted in a task of its own, in the span `accept` gave it, with
/// its handshake bounded by `limits`. The caller drops the guard once it
/// has released the socket.
async fn accept_loop<R, A, F, IO>(
    runtime: &R,
    node: Node,
    guard: &Guard,
    limits: Limits,
    mut accept: A,
) where
    R: Runtime,
    A: FnMut() -> F,
    F: Future<Output = io::Result<(IO, Quality, tracing::Span)>>,
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let group = guard.group().clone();
    loop {
        let accepted = match select(pin!(accept()), pin!(group.draining())).await {
            Either::Left((accepted, _)) => accepted,
            Either::Right(_) => break,
        };
        let (io, quality, span) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors and the like: the next accept may work.
                tracing::warn!(error = %e, "accept failed");
                yield_now().await;
                continue;
            }
        };
        let Some(slot) = HandshakeSlot::take(&limits.shaking, limits.max) else {
            // Counted and logged, then closed at once: no task, no
            // buffers. (A client that sees the close finds both done.)
            let refused = limits.refused.fetch_add(1, Ordering::Relaxed) + 1;
            span.in_scope(|| {
                tracing::warn!(
                    max = limits.max,
                    refused,
                    "too many links in their handshake; connection closed"
                )
            });
            drop(io);
            continue;
        };
        let mut link_guard = group.guard();
        let node = node.clone();
        let rt = runtime.clone();
        let handshake = limits.handshake;
        // Detached: the link runs on its own, under the group.
        drop(
            runtime.spawn(
                async move {
                    tracing::debug!(quality = quality.get(), "accepted");
                    let result = run_link_inner(
                        node,
                        io,
                        Role::Server,
                        quality,
                        handshake,
                        Some(slot),
                        &mut link_guard,
                        &rt,
                    )
                    .await;
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "link ended");
                    }
                }
                .instrument(span),
            ),
        );
    }
    tracing::info!("stopped listening");
}

/// Lets the other tasks run once.
async fn yield_now() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

/// Dials `address` and returns the link over it, as the client end, to
/// spawn: with a [`ReconnectPolicy`](crate::ReconnectPolicy) in `options`
/// it is dialled again after a drop. Fails at once if the first dial
/// fails.
async fn connect<R: Runtime>(
    runtime: &R,
    node: &Node,
    address: Address,
    options: LinkOptions,
) -> Result<(Started<Result<(), TransportError>>, Option<String>), TransportError> {
    let how = Dial {
        quality: options.get_quality(),
        timeout: options.get_connect_timeout(),
        keepalive: options.get_tcp_keepalive(),
    };
    let policy = options.get_reconnect().cloned();
    let first = dial(runtime.clone(), address.clone(), how).await;
    let first_failed = first.as_ref().err().map(ToString::to_string);
    let first = match first {
        Ok(first) => Ok(first),
        // Dialled again in the task, as after a drop.
        Err(e @ (TransportError::Connect { .. } | TransportError::Resolve { .. }))
            if policy.is_some() && options.get_retry_first_dial() =>
        {
            Err(e)
        }
        Err(e) => return Err(e),
    };
    let group = options.group();
    let guard = group.guard();
    let (rt, redial_address) = (runtime.clone(), address.clone());
    let redial = move || dial(rt.clone(), redial_address.clone(), how);
    let span = tracing::info_span!("transport", %address);
    let dialling = Dialling {
        handshake: options.get_handshake_timeout(),
        policy,
    };
    let task = run_dialled(
        node.clone(),
        first,
        dialling,
        guard,
        redial,
        runtime.clone(),
    );
    Ok((
        (address, group, task.instrument(span).boxed()),
        first_failed,
    ))
}

/// The socket addresses of a TCP address's host and port.
async fn resolve<R: Runtime>(
    runtime: &R,
    address: &Address,
    text: &str,
) -> Result<Vec<SocketAddr>, TransportError> {
    resolved(address, runtime.resolve(text).await)
}

/// Sets what every TCP socket gets: `TCP_NODELAY`, and keep-alive if
/// asked for. A socket where one cannot be set is used as it is.
fn set_options<R: Runtime>(runtime: &R, stream: &R::Tcp, keepalive: Option<TcpKeepalive>) {
    if let Err(e) = runtime.set_nodelay(stream) {
        tracing::debug!(error = %e, "TCP_NODELAY not set");
    }
    if let Some(keepalive) = keepalive {
        if let Err(e) = runtime.set_keepalive(stream, &keepalive) {
            tracing::debug!(error = %e, "TCP keep-alive not set");
        }
    }
}

/// How to dial: the link's quality (`None`: from the socket), the bound on
/// the dial, the keep-alive.
#[derive(Debug, Clone, Copy)]
struct Dial {
    quality: Option<Quality>,
    timeout: Option<Duration>,
    keepalive: Option<TcpKeepalive>,
}

/// Dials `address`, resolving and connecting within the timeout on the
/// runtime's clock.
async fn dial<R: Runtime>(
    runtime: R,
    address: Address,
    how: Dial,
) -> Result<(DialledIo<R>, Quality), TransportError> {
    let Some(limit) = how.timeout else {
        return dial_now(&runtime, &address, how).await;
    };
    let deadline = runtime.sleep_until(runtime.now().saturating_add(limit));
    match select(pin!(dial_now(&runtime, &address, how)), deadline).await {
        Either::Left((dialled, _)) => dialled,
        Either::Right(_) => Err(TransportError::connect(
            &address,
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no answer within {limit:?}"),
            ),
        )),
    }
}

async fn dial_now<R: Runtime>(
    runtime: &R,
    address: &Address,
    how: Dial,
) -> Result<(DialledIo<R>, Quality), TransportError> {
    let quality = how.quality;
    let connect_error = |source| TransportError::connect(address, source);
    match address {
        Address::Tcp(text) => {
            let addrs = resolve(runtime, address, text).await?;
            let stream = runtime.connect_tcp(&addrs).await.map_err(connect_error)?;
            set_options(runtime, &stream, how.keepalive);
            let quality = quality.unwrap_or_else(|| tcp_quality(runtime.peer_addr(&stream)));
            tracing::debug!(%address, quality = quality.get(), "connected");
            Ok((Either::Left(Either::Left(stream)), quality))
        }
        #[cfg(unix)]
        Address::Unix(path) => {
            let stream = runtime.connect_unix(path).await.map_err(connect_error)?;
            tracing::debug!(%address, "connected");
            Ok((
                Either::Left(Either::Right(stream)),
                quality.unwrap_or(Quality::LOCAL_SOCKET),
            ))
        }
        Address::Exec(command) => {
            let io = crate::process::dial_exec(runtime, command).await?;
            let quality = quality.unwrap_or(Quality::NETWORK);
            tracing::debug!(%address, id = ?io.id(), quality = quality.get(), "connected");
            Ok((Either::Right(Box::new(io) as DeviceIo), quality))
        }
        Address::Serial { path, baud } => {
            let io = crate::serial::open(address, path, *baud)?;
            let quality = quality.unwrap_or(Quality::USB);
            tracing::debug!(%address, quality = quality.get(), "connected");
            Ok((Either::Right(io), quality))
        }
        #[allow(unreachable_patterns)]
        _ => Err(TransportError::unsupported(address)),
    }
}
