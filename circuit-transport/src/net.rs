//! Listening and dialling over TCP and Unix sockets, written once for
//! every runtime: the accept loop, the dial and redial loop, the spans and
//! events. A runtime crate implements [`Runtime`] (its sockets, its timer,
//! its spawn) and wraps what [`listen`] and [`connect`] return in its own
//! task handles.

use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::task::Poll;
use std::time::Instant;

use circuit_frame::Quality;
use circuit_mux::Role;
use circuit_node::{Node, NodeError};
use futures::future::{select, BoxFuture, Either};
use futures::io::{AsyncRead, AsyncWrite};
use futures::FutureExt;
use tracing::Instrument;

use crate::socket::{log_end, resolved, tcp_quality};
use crate::{run_dialled, run_link, Address, Guard, LinkOptions, Shutdown, TransportError};

/// The few things a runtime does for a transport: its sockets (as
/// futures-io byte streams), its timer and its spawn. Implemented by a
/// marker type in each runtime crate, in the spirit of quinn's `Runtime`.
pub trait Runtime: Send + Sync + 'static {
    /// A connected TCP stream.
    type Tcp: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// A bound TCP listener.
    type TcpListener: Send + Sync + 'static;
    /// A connected Unix stream.
    #[cfg(unix)]
    type Unix: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// A bound Unix listener.
    #[cfg(unix)]
    type UnixListener: Send + Sync + 'static;

    /// Resolves when the runtime's clock reaches `at`.
    fn sleep_until(at: Instant) -> impl Future<Output = ()> + Send + 'static;
    /// Runs `task` on its own, detached.
    fn spawn(task: impl Future<Output = ()> + Send + 'static);
    /// The socket addresses of `host:port`.
    fn resolve(host_port: &str) -> impl Future<Output = io::Result<Vec<SocketAddr>>> + Send;
    /// Binds a TCP listener to the first of `addrs` that works.
    fn bind_tcp(addrs: &[SocketAddr])
        -> impl Future<Output = io::Result<Self::TcpListener>> + Send;
    /// The address a TCP listener is bound to.
    fn tcp_local_addr(listener: &Self::TcpListener) -> io::Result<SocketAddr>;
    /// The next connection on a TCP listener, and its peer.
    fn accept_tcp(
        listener: &Self::TcpListener,
    ) -> impl Future<Output = io::Result<(Self::Tcp, SocketAddr)>> + Send;
    /// Connects to the first of `addrs` that answers.
    fn connect_tcp(addrs: &[SocketAddr]) -> impl Future<Output = io::Result<Self::Tcp>> + Send;
    /// Sets `TCP_NODELAY`.
    fn set_nodelay(stream: &Self::Tcp) -> io::Result<()>;
    /// The peer of a TCP stream.
    fn peer_addr(stream: &Self::Tcp) -> io::Result<SocketAddr>;
    /// Binds a Unix listener at `path`.
    #[cfg(unix)]
    fn bind_unix(path: &std::path::Path) -> io::Result<Self::UnixListener>;
    /// The next connection on a Unix listener.
    #[cfg(unix)]
    fn accept_unix(
        listener: &Self::UnixListener,
    ) -> impl Future<Output = io::Result<Self::Unix>> + Send;
    /// Connects to the Unix socket at `path`.
    #[cfg(unix)]
    fn connect_unix(path: &std::path::Path) -> impl Future<Output = io::Result<Self::Unix>> + Send;
}

/// The byte stream under a dialled link.
#[cfg(unix)]
pub type SocketIo<R> = Either<<R as Runtime>::Tcp, <R as Runtime>::Unix>;
/// The byte stream under a dialled link.
#[cfg(not(unix))]
pub type SocketIo<R> = Either<<R as Runtime>::Tcp, <R as Runtime>::Tcp>;

/// A listener or dialled link set up but not yet spawned: the runtime
/// crate spawns `task` and keeps its handle.
pub struct Started<T> {
    /// The address listened on (with the port the system chose) or dialled.
    pub address: Address,
    /// The group of the listener and its links, or of the dialled link.
    pub group: Shutdown,
    /// The accept loop or the link, in its span, ready to spawn.
    pub task: BoxFuture<'static, T>,
}

impl<T> std::fmt::Debug for Started<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Started")
            .field("address", &self.address)
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

/// A link over any byte stream in `shutdown`'s group, in its span, ready
/// to spawn: `spawn_link` of the runtime crates.
pub fn io_link<R, IO>(
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
    let span = tracing::info_span!("transport", kind = "io", ?role);
    async move { run_link(node, io, role, quality, &mut guard, R::sleep_until).await }
        .instrument(span)
}

/// Binds `address` and returns the accept loop, which links every
/// connection accepted to `node` as the server end, each in a task of its
/// own, until the group shuts down or the loop is dropped. TCP links get
/// `TCP_NODELAY`; a Unix socket's file is removed when the loop ends.
pub async fn listen<R: Runtime>(
    node: &Node,
    address: Address,
    options: LinkOptions,
) -> Result<Started<()>, TransportError> {
    let group = options.group();
    let guard = group.listener_guard();
    let quality = options.get_quality();
    let node = node.clone();
    let (address, span, task): (_, _, BoxFuture<'static, ()>) = match &address {
        Address::Tcp(text) => {
            let addrs = resolve::<R>(&address, text).await?;
            let listener = R::bind_tcp(&addrs)
                .await
                .map_err(|source| TransportError::bind(&address, source))?;
            let local = R::tcp_local_addr(&listener)
                .map_err(|source| TransportError::bind(&address, source))?;
            let span = tracing::info_span!("listener", address = %local);
            let task = async move {
                // Declared first, dropped last: the group sees the loop
                // stop only once the socket is closed.
                let guard = guard;
                let listener = listener;
                let bound = &listener;
                let accept = move || async move {
                    let (stream, peer) = R::accept_tcp(bound).await?;
                    if let Err(e) = R::set_nodelay(&stream) {
                        tracing::debug!(error = %e, "TCP_NODELAY not set");
                    }
                    let quality = quality.unwrap_or_else(|| tcp_quality(R::peer_addr(&stream)));
                    Ok((stream, quality, tracing::info_span!("tcp", %peer)))
                };
                accept_loop::<R, _, _, _>(node, &guard, accept).await;
                drop(listener);
                drop(guard);
            };
            (Address::from(local), span, task.boxed())
        }
        #[cfg(unix)]
        Address::Unix(path) => {
            let listener =
                R::bind_unix(path).map_err(|source| TransportError::bind(&address, source))?;
            let span = tracing::info_span!("listener", address = %address);
            let unlink = Unlink(path.clone());
            let quality = quality.unwrap_or(Quality::LOCAL_SOCKET);
            let task = async move {
                // Declared first, dropped last: the group sees the loop
                // stop only once the socket is closed and its file gone.
                let guard = guard;
                let unlink = unlink;
                let listener = listener;
                let bound = &listener;
                let accept = move || async move {
                    let stream = R::accept_unix(bound).await?;
                    Ok((stream, quality, tracing::info_span!("unix")))
                };
                accept_loop::<R, _, _, _>(node, &guard, accept).await;
                drop(listener);
                drop(unlink);
                drop(guard);
            };
            (address.clone(), span, task.boxed())
        }
        #[allow(unreachable_patterns)]
        _ => return Err(TransportError::unsupported(&address)),
    };
    span.in_scope(|| tracing::info!("listening"));
    Ok(Started {
        address,
        group,
        task: task.instrument(span).boxed(),
    })
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

/// Accepts with `accept` until the guard's group shuts down, running each
/// link accepted in a task of its own, in the span `accept` gave it. The
/// caller drops the guard once it has released the socket.
async fn accept_loop<R, A, F, IO>(node: Node, guard: &Guard, mut accept: A)
where
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
        let mut link_guard = group.guard();
        let node = node.clone();
        R::spawn(
            async move {
                tracing::info!(quality = quality.get(), "accepted");
                let result = run_link(
                    node,
                    io,
                    Role::Server,
                    quality,
                    &mut link_guard,
                    R::sleep_until,
                )
                .await;
                log_end(&result);
            }
            .instrument(span),
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
pub async fn connect<R: Runtime>(
    node: &Node,
    address: Address,
    options: LinkOptions,
) -> Result<Started<Result<(), TransportError>>, TransportError> {
    let quality = options.get_quality();
    let first = dial::<R>(address.clone(), quality).await?;
    let group = options.group();
    let guard = group.guard();
    let redial_address = address.clone();
    let redial = move || dial::<R>(redial_address.clone(), quality);
    let span = tracing::info_span!("transport", %address);
    let task = run_dialled(
        node.clone(),
        first,
        options.get_reconnect().cloned(),
        guard,
        redial,
        R::sleep_until,
    );
    Ok(Started {
        address,
        group,
        task: task.instrument(span).boxed(),
    })
}

/// The socket addresses of a TCP address's host and port.
async fn resolve<R: Runtime>(
    address: &Address,
    text: &str,
) -> Result<Vec<SocketAddr>, TransportError> {
    resolved(address, R::resolve(text).await)
}

async fn dial<R: Runtime>(
    address: Address,
    quality: Option<Quality>,
) -> Result<(SocketIo<R>, Quality), TransportError> {
    let connect_error = |source| TransportError::connect(&address, source);
    match &address {
        Address::Tcp(text) => {
            let addrs = resolve::<R>(&address, text).await?;
            let stream = R::connect_tcp(&addrs).await.map_err(connect_error)?;
            if let Err(e) = R::set_nodelay(&stream) {
                tracing::debug!(error = %e, "TCP_NODELAY not set");
            }
            let quality = quality.unwrap_or_else(|| tcp_quality(R::peer_addr(&stream)));
            tracing::info!(%address, quality = quality.get(), "connected");
            Ok((Either::Left(stream), quality))
        }
        #[cfg(unix)]
        Address::Unix(path) => {
            let stream = R::connect_unix(path).await.map_err(connect_error)?;
            tracing::info!(%address, "connected");
            Ok((
                Either::Right(stream),
                quality.unwrap_or(Quality::LOCAL_SOCKET),
            ))
        }
        #[allow(unreachable_patterns)]
        _ => Err(TransportError::unsupported(&address)),
    }
}
