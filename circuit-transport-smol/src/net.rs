//! Links over smol's TCP and Unix sockets and any futures-io byte stream.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use circuit_frame::Quality;
use circuit_mux::Role;
use circuit_node::{Node, NodeError};
use futures::future::Either;
use futures::io::{AsyncRead, AsyncWrite};
use smol::net::{TcpListener, TcpStream};
use smol::Task;
use tracing::Instrument;

use circuit_transport::socket::{log_end, resolved, tcp_quality};
use circuit_transport::{
    run_dialled, run_link, Address, Guard, LinkOptions, Shutdown, ShutdownReport, ToAddress,
    TransportError,
};

/// The byte stream under a dialled link.
#[cfg(unix)]
type SocketIo = Either<TcpStream, smol::net::unix::UnixStream>;
#[cfg(not(unix))]
type SocketIo = Either<TcpStream, TcpStream>;

async fn sleep_until(at: Instant) {
    smol::Timer::at(at).await;
}

/// Runs a link over any futures-io byte stream (a serial port, a pipe, a
/// socket made elsewhere) in `role` (`Server` for the end that accepted the
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
    node.link_io(io, role, quality)
}

/// Spawns a link over any futures-io byte stream on smol's global
/// executor, in `shutdown`'s group, and returns smol's [`Task`] for it.
/// Dropping the task cancels it (and so closes the link); `detach` it to
/// let it run. It ends with the link; after a graceful shutdown with
/// `Ok(())`.
pub fn spawn_link<IO>(
    node: &Node,
    io: IO,
    role: Role,
    quality: Quality,
    shutdown: &Shutdown,
) -> Task<Result<(), NodeError>>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut guard = shutdown.guard();
    let node = node.clone();
    let span = tracing::info_span!("transport", kind = "io", ?role);
    smol::spawn(
        async move { run_link(node, io, role, quality, &mut guard, sleep_until).await }
            .instrument(span),
    )
}

/// Accepts links on a TCP or Unix socket, as the server end, until shut
/// down or dropped. Made by [`listen`] or [`listen_with`].
///
/// Each accepted link runs in its own task on smol's global executor.
/// Dropping the listener stops accepting at once and leaves its links
/// running; [`shutdown`](Self::shutdown) stops accepting and closes its
/// links gracefully.
#[derive(Debug)]
pub struct Listener {
    address: Address,
    group: Shutdown,
    /// Dropping it cancels the accept loop.
    _accept: Task<()>,
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
            (Address::from(local), smol::spawn(task.instrument(span)))
        }
        #[cfg(unix)]
        Address::Unix(path) => {
            let listener = smol::net::unix::UnixListener::bind(path)
                .map_err(|source| TransportError::bind(&address, source))?;
            let span = tracing::info_span!("listener", address = %address);
            span.in_scope(|| tracing::info!("listening"));
            let task = accept_unix(node.clone(), listener, path.clone(), quality, guard);
            (address.clone(), smol::spawn(task.instrument(span)))
        }
        _ => return Err(TransportError::unsupported(&address)),
    };
    Ok(Listener {
        address,
        group,
        _accept: accept,
    })
}

/// The socket addresses of a TCP address's host and port.
async fn resolve(address: &Address, text: &str) -> Result<Vec<SocketAddr>, TransportError> {
    resolved(address, smol::net::resolve(text).await)
}

/// The next accepted connection, or `None` once shutdown began.
async fn next_or_stop<T>(accept: impl Future<Output = T>, guard: &Guard) -> Option<T> {
    smol::future::or(async { Some(accept.await) }, async {
        guard.group().draining().await;
        None
    })
    .await
}

async fn accept_tcp(node: Node, listener: TcpListener, quality: Option<Quality>, guard: Guard) {
    let group = guard.group().clone();
    while let Some(accepted) = next_or_stop(listener.accept(), &guard).await {
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors and the like: the next accept may work.
                tracing::warn!(error = %e, "accept failed");
                smol::future::yield_now().await;
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
        smol::spawn(
            async move {
                tracing::info!(quality = quality.get(), "accepted");
                let result = run_link(
                    node,
                    stream,
                    Role::Server,
                    quality,
                    &mut link_guard,
                    sleep_until,
                )
                .await;
                log_end(&result);
            }
            .instrument(span),
        )
        .detach();
    }
    tracing::info!("stopped listening");
}

#[cfg(unix)]
async fn accept_unix(
    node: Node,
    listener: smol::net::unix::UnixListener,
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
    while let Some(accepted) = next_or_stop(listener.accept(), &guard).await {
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                smol::future::yield_now().await;
                continue;
            }
        };
        let mut link_guard = group.guard();
        let node = node.clone();
        let span = tracing::info_span!("unix");
        smol::spawn(
            async move {
                tracing::info!("accepted");
                let result = run_link(
                    node,
                    stream,
                    Role::Server,
                    quality,
                    &mut link_guard,
                    sleep_until,
                )
                .await;
                log_end(&result);
            }
            .instrument(span),
        )
        .detach();
    }
    tracing::info!("stopped listening");
}

/// A link dialled by [`connect`] or [`connect_with`], running in its own
/// task (and dialled again after a drop, with a [`ReconnectPolicy`](crate::ReconnectPolicy)).
/// Dropping the handle leaves the link running (its task is detached).
#[derive(Debug)]
pub struct LinkHandle {
    address: Address,
    group: Shutdown,
    task: Option<Task<Result<(), TransportError>>>,
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
        self.task.as_ref().is_none_or(Task::is_finished)
    }

    /// Waits for the link's task to end: `Ok(())` after a clean close or a
    /// shutdown, the error otherwise (the last failed redial, with a
    /// policy that gave up).
    pub async fn join(mut self) -> Result<(), TransportError> {
        match self.task.take() {
            Some(task) => task.await,
            None => Ok(()),
        }
    }

    /// Smol's task running the link. Dropping it cancels the link.
    pub fn into_task(mut self) -> Task<Result<(), TransportError>> {
        match self.task.take() {
            Some(task) => task,
            None => smol::spawn(async { Ok(()) }),
        }
    }
}

impl Drop for LinkHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.detach();
        }
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
        task: Some(smol::spawn(task.instrument(span))),
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
            Ok((Either::Left(stream), quality))
        }
        #[cfg(unix)]
        Address::Unix(path) => {
            let stream = smol::net::unix::UnixStream::connect(path)
                .await
                .map_err(connect_error)?;
            tracing::info!(%address, "connected");
            Ok((
                Either::Right(stream),
                quality.unwrap_or(Quality::LOCAL_SOCKET),
            ))
        }
        _ => Err(TransportError::unsupported(&address)),
    }
}
