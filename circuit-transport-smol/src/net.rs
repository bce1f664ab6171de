//! Links over smol's TCP and Unix sockets and any futures-io byte stream:
//! the shared [`circuit_transport::net`] code on [`SmolRuntime`].

use std::future::Future;

use circuit_frame::Quality;
use circuit_mux::Role;
use circuit_node::{Node, NodeError};
use circuit_transport::{net, LinkOptions, Shutdown, ToAddress, TransportError};
use futures::io::{AsyncRead, AsyncWrite};
use smol::Task;

use crate::SmolRuntime;

/// Accepts links on a TCP or Unix socket on smol's global executor, as the
/// server end, until shut down or dropped. Made by [`listen`] or
/// [`listen_with`].
pub type Listener = net::Listener<SmolRuntime>;

/// A link dialled on smol by [`connect`] or [`connect_with`], in its own
/// task; dropping the handle leaves the link running.
pub type LinkHandle = net::LinkHandle<SmolRuntime>;

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
    let runtime = SmolRuntime::new();
    smol::spawn(net::io_link(&runtime, node, io, role, quality, shutdown))
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
    net::listen_with(&SmolRuntime::new(), node, addr, options).await
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
    net::connect_with(&SmolRuntime::new(), node, addr, options).await
}
