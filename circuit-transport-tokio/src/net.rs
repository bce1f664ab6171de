//! Links over tokio's TCP and Unix sockets and any tokio byte stream: the
//! shared [`circuit_transport::net`] code on [`TokioRuntime`].

use std::future::Future;

use circuit_frame::Quality;
use circuit_mux::Role;
use circuit_node::{Node, NodeError};
use circuit_transport::{net, LinkOptions, Shutdown, ToAddress, TransportError};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinHandle;

use crate::io::FuturesIo;
use crate::TokioRuntime;

/// Accepts links on a TCP or Unix socket on tokio, as the server end, until
/// shut down or dropped. Made by [`listen`] or [`listen_with`].
pub type Listener = net::Listener<TokioRuntime>;

/// A link dialled on tokio by [`connect`] or [`connect_with`], in its own
/// task; [`into_task`](net::LinkHandle::into_task) gives tokio's handle.
pub type LinkHandle = net::LinkHandle<TokioRuntime>;

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
    let io = FuturesIo::new(io);
    net::spawn_link(&TokioRuntime::new(), node, io, role, quality, shutdown)
}

/// Listens on `addr` (`host:port` or `unix:PATH`) and links every
/// connection accepted there to `node`, as the server end. See
/// [`listen_with`].
pub async fn listen(node: &Node, addr: impl ToAddress) -> Result<Listener, TransportError> {
    listen_with(node, addr, LinkOptions::new()).await
}

/// Listens on `addr` with `options`: see [`net::listen_with`].
pub async fn listen_with(
    node: &Node,
    addr: impl ToAddress,
    options: LinkOptions,
) -> Result<Listener, TransportError> {
    net::listen_with(&TokioRuntime::new(), node, addr, options).await
}

/// Dials `addr` (`host:port` or `unix:PATH`) and runs a link to `node` over
/// it, as the client end, in a new task. Fails at once if the address is
/// bad or the first dial fails. See [`connect_with`].
pub async fn connect(node: &Node, addr: impl ToAddress) -> Result<LinkHandle, TransportError> {
    connect_with(node, addr, LinkOptions::new()).await
}

/// Dials `addr` with `options`: see [`net::connect_with`].
pub async fn connect_with(
    node: &Node,
    addr: impl ToAddress,
    options: LinkOptions,
) -> Result<LinkHandle, TransportError> {
    net::connect_with(&TokioRuntime::new(), node, addr, options).await
}
