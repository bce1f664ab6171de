//! Links over smol's TCP and Unix sockets and any futures-io byte stream.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use circuit_frame::Quality;
use circuit_mux::Role;
use circuit_node::{Node, NodeError};
use circuit_transport::net::{self, Runtime};
use futures::io::{AsyncRead, AsyncWrite};
use smol::net::{TcpListener, TcpStream};
use smol::Task;

use circuit_transport::{
    Address, LinkOptions, Shutdown, ShutdownReport, ToAddress, TransportError,
};

/// Smol's sockets, timers and global executor, for the shared transport
/// code.
struct Smol;

impl Runtime for Smol {
    type Tcp = TcpStream;
    type TcpListener = TcpListener;
    #[cfg(unix)]
    type Unix = smol::net::unix::UnixStream;
    #[cfg(unix)]
    type UnixListener = smol::net::unix::UnixListener;

    async fn sleep_until(at: Instant) {
        smol::Timer::at(at).await;
    }

    fn spawn(task: impl Future<Output = ()> + Send + 'static) {
        smol::spawn(task).detach();
    }

    async fn resolve(host_port: &str) -> io::Result<Vec<SocketAddr>> {
        smol::net::resolve(host_port).await
    }

    async fn bind_tcp(addrs: &[SocketAddr]) -> io::Result<TcpListener> {
        TcpListener::bind(addrs).await
    }

    fn tcp_local_addr(listener: &TcpListener) -> io::Result<SocketAddr> {
        listener.local_addr()
    }

    async fn accept_tcp(listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
        listener.accept().await
    }

    async fn connect_tcp(addrs: &[SocketAddr]) -> io::Result<TcpStream> {
        TcpStream::connect(addrs).await
    }

    fn set_nodelay(stream: &TcpStream) -> io::Result<()> {
        stream.set_nodelay(true)
    }

    fn peer_addr(stream: &TcpStream) -> io::Result<SocketAddr> {
        stream.peer_addr()
    }

    #[cfg(unix)]
    fn bind_unix(path: &std::path::Path) -> io::Result<Self::UnixListener> {
        smol::net::unix::UnixListener::bind(path)
    }

    #[cfg(unix)]
    async fn accept_unix(listener: &Self::UnixListener) -> io::Result<Self::Unix> {
        Ok(listener.accept().await?.0)
    }

    #[cfg(unix)]
    async fn connect_unix(path: &std::path::Path) -> io::Result<Self::Unix> {
        smol::net::unix::UnixStream::connect(path).await
    }
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
    smol::spawn(net::io_link::<Smol, _>(node, io, role, quality, shutdown))
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
    let started = net::listen::<Smol>(node, addr.to_address()?, options).await?;
    Ok(Listener {
        address: started.address,
        group: started.group,
        _accept: smol::spawn(started.task),
    })
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
    let started = net::connect::<Smol>(node, addr.to_address()?, options).await?;
    Ok(LinkHandle {
        address: started.address,
        group: started.group,
        task: Some(smol::spawn(started.task)),
    })
}
