//! Links over tokio's TCP and Unix sockets and any tokio byte stream.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use circuit_frame::Quality;
use circuit_mux::Role;
use circuit_node::{Node, NodeError};
use circuit_transport::net::{self, Runtime};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::io::FuturesIo;

use circuit_transport::{
    Address, LinkOptions, Shutdown, ShutdownReport, ToAddress, TransportError,
};

/// Tokio's sockets, clock and spawn, for the shared transport code.
struct Tokio;

impl Runtime for Tokio {
    type Tcp = FuturesIo<TcpStream>;
    type TcpListener = TcpListener;
    #[cfg(unix)]
    type Unix = FuturesIo<tokio::net::UnixStream>;
    #[cfg(unix)]
    type UnixListener = tokio::net::UnixListener;

    fn sleep_until(at: Instant) -> impl Future<Output = ()> + Send + 'static {
        tokio::time::sleep_until(at.into())
    }

    fn spawn(task: impl Future<Output = ()> + Send + 'static) {
        tokio::spawn(task);
    }

    async fn resolve(host_port: &str) -> io::Result<Vec<SocketAddr>> {
        tokio::net::lookup_host(host_port)
            .await
            .map(Iterator::collect)
    }

    async fn bind_tcp(addrs: &[SocketAddr]) -> io::Result<TcpListener> {
        TcpListener::bind(addrs).await
    }

    fn tcp_local_addr(listener: &TcpListener) -> io::Result<SocketAddr> {
        listener.local_addr()
    }

    async fn accept_tcp(listener: &TcpListener) -> io::Result<(Self::Tcp, SocketAddr)> {
        let (stream, peer) = listener.accept().await?;
        Ok((FuturesIo::new(stream), peer))
    }

    async fn connect_tcp(addrs: &[SocketAddr]) -> io::Result<Self::Tcp> {
        Ok(FuturesIo::new(TcpStream::connect(addrs).await?))
    }

    fn set_nodelay(stream: &Self::Tcp) -> io::Result<()> {
        stream.get_ref().set_nodelay(true)
    }

    fn peer_addr(stream: &Self::Tcp) -> io::Result<SocketAddr> {
        stream.get_ref().peer_addr()
    }

    #[cfg(unix)]
    fn bind_unix(path: &std::path::Path) -> io::Result<Self::UnixListener> {
        tokio::net::UnixListener::bind(path)
    }

    #[cfg(unix)]
    async fn accept_unix(listener: &Self::UnixListener) -> io::Result<Self::Unix> {
        Ok(FuturesIo::new(listener.accept().await?.0))
    }

    #[cfg(unix)]
    async fn connect_unix(path: &std::path::Path) -> io::Result<Self::Unix> {
        Ok(FuturesIo::new(tokio::net::UnixStream::connect(path).await?))
    }
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
    node.link_io(FuturesIo::new(io), role, quality)
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
    tokio::spawn(net::io_link::<Tokio, _>(
        node,
        FuturesIo::new(io),
        role,
        quality,
        shutdown,
    ))
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
    let started = net::listen::<Tokio>(node, addr.to_address()?, options).await?;
    Ok(Listener {
        address: started.address,
        group: started.group,
        accept: tokio::spawn(started.task),
    })
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
    let started = net::connect::<Tokio>(node, addr.to_address()?, options).await?;
    Ok(LinkHandle {
        address: started.address,
        group: started.group,
        task: tokio::spawn(started.task),
    })
}
