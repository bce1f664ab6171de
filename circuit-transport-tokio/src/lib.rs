//! Circuit nodes linked over tokio: TCP and Unix sockets, any tokio byte
//! stream, tokio's clock for the node's timer, and graceful shutdown.
//!
//! ```
//! use circuit_node::{routing::RouteEvent, Node, NodeConfig};
//! use circuit_transport_tokio::{connect, listen, tokio_io};
//! use futures::StreamExt;
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (server, _, mut incoming) = Node::new("server", "echo", NodeConfig::leaf())?;
//! let (client, mut peers, _) = Node::new("client", "echo", NodeConfig::leaf())?;
//!
//! // The server accepts links; the client dials one.
//! let listener = listen(&server, "127.0.0.1:0").await?;
//! let _link = connect(&client, listener.local_addr()).await?;
//!
//! // The server echoes every stream, with tokio's io traits.
//! tokio::spawn(async move {
//!     while let Some(stream) = incoming.next().await {
//!         let (mut read, mut write) = tokio::io::split(tokio_io(stream.stream));
//!         tokio::spawn(async move { tokio::io::copy(&mut read, &mut write).await });
//!     }
//! });
//!
//! let server_id = server.id().clone();
//! while peers.next().await != Some(RouteEvent::PeerReachable(server_id.clone())) {}
//! let mut stream = tokio_io(client.connect_to_peer("server").await?);
//! stream.write_all(b"hello").await?;
//! let mut echo = [0; 5];
//! stream.read_exact(&mut echo).await?;
//! assert_eq!(&echo, b"hello");
//!
//! // Stop accepting, let links drain for up to a second, close them.
//! listener.shutdown(std::time::Duration::from_secs(1)).await;
//! # Ok(())
//! # }
//! ```
//!
//! # What is here
//!
//! - [`listen`] / [`listen_with`]: a [`Listener`] accepting links on
//!   `host:port` or `unix:PATH` as the server end, each link in its own
//!   task. [`connect`] / [`connect_with`]: a [`LinkHandle`] on a dialled
//!   link (the client end), dialled again after a drop with a
//!   [`ReconnectPolicy`]. TCP links get `TCP_NODELAY` and keep-alive
//!   ([`TcpKeepalive`]); a link's quality is
//!   `LOCAL_SOCKET` over a Unix socket or loopback TCP and `NETWORK` over
//!   other TCP, unless [`LinkOptions::quality`] says otherwise.
//! - [`link`] (a future) and [`spawn_link`] (a task) over any tokio
//!   `AsyncRead + AsyncWrite`: serial ports, pipes, sockets made elsewhere.
//! - [`TokioRuntime`] (alias [`TokioTimer`]): tokio's clock, spawn and
//!   sockets as the one [`Runtime`](circuit_transport::runtime::Runtime)
//!   seam of the shared listening and dialling code, and the node's
//!   [`Timer`](circuit_node::timer::Timer) on the same clock, for routers.
//! - [`tokio_io`] / [`TokioDuplex`]: circuit streams with tokio's io traits
//!   (tokio-util's compat).
//! - [`splice`]: a circuit stream and a TCP connection joined both ways
//!   with no copy in user space (a tunnel's inner loop).
//! - [`FuturesIo`]: a tokio byte stream with futures-io's traits, vectored
//!   writes passed through (tokio-util's compat writes only their first
//!   buffer), for a [`Mux`](circuit_mux::Mux) you run yourself. The link
//!   functions here use it.
//! - [`Shutdown`]: graceful shutdown of a group of listeners and links.
//!   Listeners stop accepting; each link runs until every stream on it has
//!   closed both ways, or until the deadline, when every stream still open
//!   gets a close frame with the epitaph "node N is shutting down"; then
//!   the transport is closed. [`ShutdownReport`] says how many links
//!   drained and how many were cut.
//! - [`TransportError`]: a bad address, a port in use, a failed dial,
//!   a link that failed.
//!
//! # How a link drains
//!
//! The runtime-free part (addresses, options, reconnect policy, shutdown
//! groups, errors, and the drain itself) lives in [`circuit_transport`]
//! and is re-exported here. Each link runs with a node
//! [`LinkControl`](circuit_node::LinkControl): once shutdown begins, the
//! link waits until the control says no stream but the control stream is
//! open (a stream opened but never written counts too), or until the
//! deadline; then the control closes what is left with the epitaph, the
//! mux writes the close frames, and the transport is closed.
//!
//! Tracing: a span per listener and per link (address, peer), events for
//! listening, accepted / connected, and link down, besides the node's own.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod io;
mod net;
mod process;
mod runtime;
mod splice;

pub use circuit_transport::{
    Address, Backoff, Jitter, LinkOptions, ReconnectPolicy, Shutdown, ShutdownReport, TcpKeepalive,
    ToAddress, TransportError, DEFAULT_MAX_HANDSHAKES, DEFAULT_TIMEOUT,
};
pub use io::{tokio_io, FuturesIo, TokioDuplex};
pub use net::{connect, connect_with, link, listen, listen_with, spawn_link, LinkHandle, Listener};
pub use process::TokioChild;
pub use runtime::{TokioRuntime, TokioTimer};
pub use splice::splice;
