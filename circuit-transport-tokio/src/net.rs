//! Links over tokio's TCP and Unix sockets and any tokio byte stream.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use circuit_frame::Quality;
use circuit_mux::Role;
use circuit_node::{Node, NodeError};
use futures::future::Either;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};
use tracing::Instrument;

use circuit_transport::socket::{log_end, resolved, tcp_quality};
use circuit_transport::{
    run_dialled, run_link, Address, Guard, LinkOptions, Shutdown, ShutdownReport, ToAddress,
    TransportError,
};

/// The byte stream under a dialled or accepted link.
#[cfg(unix)]
type SocketIo = Either<Compat<TcpStream>, Compat<tokio::net::UnixStream>>;
#[cfg(not(unix))]
type SocketIo = Either<Compat<TcpStream>, Compat<TcpStream>>;

fn sleep_until(at: Instant) -> impl Future<Output = ()> {
    tokio::time::sleep_until(at.into())
}

/// Runs a link over any tokio byte stream (a serial port, a pipe, a socket
/// made elsewhere) in `role` (`Server` for the end that accepted the
/// transport) with link quality `quality`. The future runs the whole link
/// and completes when it ends; see [`Node::link`]. Nothing is spawned.
pub fn link<IO>(
    node: &Node,
    io: IO,
    role: Role,
    quality: Quality,
) -> impl Future<Output = Result<(), NodeError>> + Send + 'static
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    node.link_io(io.compat(), role, quality)
}

/// Spawns a link over any tokio byte stream on the current runtime, in
/// `shutdown`'s group, and returns tokio's handle on its task. The task
/// ends with the link; after a graceful shutdown it ends with `Ok(())`.
pub fn spawn_link<IO>(
    node: &Node,
    io: IO,
    role: Role,
    quality: Quality,
    shutdown: &Shutdown,
) -> JoinHandle<Result<(), NodeError>>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut guard = shutdown.guard();
    let node = node.clone();
    let span = tracing::info_span!("transport", kind = "io", ?role);
    tokio::spawn(
        async move { run_link(node, io.compat(), role, quality, &mut guard, sleep_until).await }
            .instrument(span),
    )
}

/// Accepts links on a TCP or Unix socket, as the server end, until shut
/// down or dropped. Made by [`listen`] or [`listen_with`].
///
/// Each accepted link runs in its own task. Dropping the listener stops
/// accepting at once and leaves its links running; [`shutdown`](Self::shutdown)
/// stops accepting and closes its links gracefully.
#[derive(Debug)]
pub struct Listener {
    address: Address,
    group: Shutdown,
    accept: JoinHandle<()>,
}

impl Listener {
    /// The address it listens on, with the port the system chose for a
    /// TCP port 0.
    pub fn local_addr(&self) -> &Address {
        &self.address
    }

    /// The group of the listener and its links.
    pub fn shutdown_handle(&self) -> &Shutdown {
        &self.group
    }

    /// Stops accepting, lets its links drain for at most `grace`, then
    /// cuts the rest; resolves when all is closed.
    pub fn shutdown(&self, grace: Duration) -> impl Future<Output = ShutdownReport> + Send {
        self.group.shutdown(grace)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Listens on `addr` (`host:port` or `unix:PATH`) and links every
/// connection accepted there to `node`, as the server end. See
/// [`listen_with`].
pub async fn listen(node: &Node, addr: impl ToAddress) -> Result<Listener, TransportError> {
    listen_with(node, addr, LinkOptions::new()).await
}

/// Listens on `addr` with `options`. TCP links get `TCP_NODELAY`. A Unix
/// socket's file is removed when the listener stops; an existing file at
/// that path is [`TransportError::AddressInUse`].
pub async fn listen_with(
    node: &Node,
    addr: impl ToAddress,
    options: LinkOptions,
) -> Result<Listener, TransportError> {
    let address = addr.to_address()?;
    let group = options.group();
    let guard = group.listener_guard();
    let quality = options.get_quality();
    let (address, accept) = match &address {
        Address::Tcp(text) => {
            let addrs = resolve(&address, text).await?;
            let listener = TcpListener::bind(addrs.as_slice())
                .await
                .map_err(|source| TransportError::bind(&address, source))?;
            let local = listener
                .local_addr()
                .map_err(|source| TransportError::bind(&address, source))?;
            let span = tracing::info_span!("listener", address = %local);
            span.in_scope(|| tracing::info!("listening"));
            let task = accept_tcp(node.clone(), listener, quality, guard);
            (Address::from(local), tokio::spawn(task.instrument(span)))
        }
        #[cfg(unix)]
        Address::Unix(path) => {
            let listener = tokio::net::UnixListener::bind(path)
                .map_err(|source| TransportError::bind(&address, source))?;
            let span = tracing::info_span!("listener", address = %address);
            span.in_scope(|| tracing::info!("listening"));
            let task = accept_unix(node.clone(), listener, path.clone(), quality, guard);
            (address.clone(), tokio::spawn(task.instrument(span)))
        }
        _ => return Err(TransportError::unsupported(&address)),
    };
    Ok(Listener {
        address,
        group,
        accept,
    })
}

/// The socket addresses of a TCP address's host and port.
async fn resolve(address: &Address, text: &str) -> Result<Vec<SocketAddr>, TransportError> {
    resolved(
        address,
        tokio::net::lookup_host(text).await.map(Iterator::collect),
    )
}

async fn accept_tcp(node: Node, listener: TcpListener, quality: Option<Quality>, guard: Guard) {
    let group = guard.group().clone();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = group.draining() => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors and the like: the next accept may work.
                tracing::warn!(error = %e, "accept failed");
                tokio::task::yield_now().await;
                continue;
            }
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        let quality = quality.unwrap_or_else(|| tcp_quality(stream.peer_addr()));
        let mut link_guard = group.guard();
        let node = node.clone();
        let span = tracing::info_span!("tcp", %peer);
        tokio::spawn(
            async move {
                tracing::info!(quality = quality.get(), "accepted");
                let io = stream.compat();
                let result = run_link(
                    node,
                    io,
                    Role::Server,
                    quality,
                    &mut link_guard,
                    sleep_until,
                )
                .await;
                log_end(&result);
            }
            .instrument(span),
        );
    }
    tracing::info!("stopped listening");
}

#[cfg(unix)]
async fn accept_unix(
    node: Node,
    listener: tokio::net::UnixListener,
    path: std::path::PathBuf,
    quality: Option<Quality>,
    guard: Guard,
) {
    /// Removes the socket file however the accept loop ends.
    struct Unlink(std::path::PathBuf);
    impl Drop for Unlink {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _unlink = Unlink(path);
    let group = guard.group().clone();
    let quality = quality.unwrap_or(Quality::LOCAL_SOCKET);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = group.draining() => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::task::yield_now().await;
                continue;
            }
        };
        let mut link_guard = group.guard();
        let node = node.clone();
        let span = tracing::info_span!("unix");
        tokio::spawn(
            async move {
                tracing::info!("accepted");
                let io: SocketIo = Either::Right(stream.compat());
                let result = run_link(
                    node,
                    io,
                    Role::Server,
                    quality,
                    &mut link_guard,
                    sleep_until,
                )
                .await;
                log_end(&result);
            }
            .instrument(span),
        );
    }
    tracing::info!("stopped listening");
}

/// A link dialled by [`connect`] or [`connect_with`], running in its own
/// task (and dialled again after a drop, with a [`ReconnectPolicy`](crate::ReconnectPolicy)).
/// Dropping the handle leaves the link running.
#[derive(Debug)]
pub struct LinkHandle {
    address: Address,
    group: Shutdown,
    task: JoinHandle<Result<(), TransportError>>,
}

impl LinkHandle {
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

    /// Whether the link's task has ended (without a policy: the link ended).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits for the link's task to end: `Ok(())` after a clean close or a
    /// shutdown, the error otherwise (the last failed redial, with a
    /// policy that gave up).
    pub async fn join(self) -> Result<(), TransportError> {
        self.task.await.map_err(|e| TransportError::Task {
            reason: e.to_string(),
        })?
    }

    /// Tokio's handle on the link's task.
    pub fn into_task(self) -> JoinHandle<Result<(), TransportError>> {
        self.task
    }
}

/// Dials `addr` (`host:port` or `unix:PATH`) and runs a link to `node` over
/// it, as the client end, in a new task. Fails at once if the address is
/// bad or the first dial fails. See [`connect_with`].
pub async fn connect(node: &Node, addr: impl ToAddress) -> Result<LinkHandle, TransportError> {
    connect_with(node, addr, LinkOptions::new()).await
}

/// Dials `addr` with `options`: with a [`ReconnectPolicy`](crate::ReconnectPolicy), a link that
/// drops is dialled again (after the first dial succeeded).
pub async fn connect_with(
    node: &Node,
    addr: impl ToAddress,
    options: LinkOptions,
) -> Result<LinkHandle, TransportError> {
    let address = addr.to_address()?;
    let first = dial(address.clone(), options.get_quality()).await?;
    let group = options.group();
    let guard = group.guard();
    let quality = options.get_quality();
    let redial_address = address.clone();
    let redial = move || dial(redial_address.clone(), quality);
    let span = tracing::info_span!("transport", %address);
    let task = run_dialled(
        node.clone(),
        first,
        options.get_reconnect().cloned(),
        guard,
        redial,
        sleep_until,
    );
    Ok(LinkHandle {
        address,
        group,
        task: tokio::spawn(task.instrument(span)),
    })
}

async fn dial(
    address: Address,
    quality: Option<Quality>,
) -> Result<(SocketIo, Quality), TransportError> {
    let connect_error = |source| TransportError::connect(&address, source);
    match &address {
        Address::Tcp(text) => {
            let addrs = resolve(&address, text).await?;
            let stream = TcpStream::connect(addrs.as_slice())
                .await
                .map_err(connect_error)?;
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(error = %e, "TCP_NODELAY not set");
            }
            let quality = quality.unwrap_or_else(|| tcp_quality(stream.peer_addr()));
            tracing::info!(%address, quality = quality.get(), "connected");
            Ok((Either::Left(stream.compat()), quality))
        }
        #[cfg(unix)]
        Address::Unix(path) => {
            let stream = tokio::net::UnixStream::connect(path)
                .await
                .map_err(connect_error)?;
            tracing::info!(%address, "connected");
            Ok((
                Either::Right(stream.compat()),
                quality.unwrap_or(Quality::LOCAL_SOCKET),
            ))
        }
        _ => Err(TransportError::unsupported(&address)),
    }
}
