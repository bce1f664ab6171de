//! The one runtime seam of the transports, in the spirit of quinn's
//! `Runtime`: a runtime's clock (the node's [`Timer`], so that a node and
//! its links can share one clock), its spawn, and its sockets as
//! futures-io byte streams. Each runtime crate implements [`Runtime`] on a
//! small value (tokio's and smol's hold the epoch of their clock); the
//! listening, dialling, redialling and shutdown code in [`net`](crate::net)
//! is written once against it. A test wraps a runtime in one whose clock is
//! a [`ManualClock`](circuit_node::timer::ManualClock).

use std::fmt::{Debug, Display};
use std::future::Future;
use std::io;
use std::net::SocketAddr;

use circuit_node::timer::Timer;
use futures::io::{AsyncRead, AsyncWrite};

use crate::process::ChildProcess;
use crate::TcpKeepalive;

/// What a transport needs of an async runtime: its clock ([`Timer`], the
/// node's seam: `now` and `sleep_until` on [`Duration`](std::time::Duration)s
/// since the runtime's epoch), its spawn, and its sockets.
///
/// Generic rather than object safe: the socket types are associated types
/// so the bytes of a link reach the mux with no boxing and no dynamic
/// call, and [`JoinHandle`](Runtime::JoinHandle) keeps each runtime's own
/// task handle. The clock, the one part a node needs too, is the object
/// safe [`Timer`]: `Arc::new(runtime.clone())` is an `Arc<dyn Timer>`.
/// Clones share the clock (the same epoch).
pub trait Runtime: Timer + Clone + Debug {
    /// The handle of a task spawned by [`spawn`](Runtime::spawn), the same
    /// way on every runtime: awaiting it gives the task's output, or the
    /// [`JoinError`](Runtime::JoinError) that says why there is none (it
    /// panicked, or was aborted); dropping it detaches the task, which runs
    /// on; [`abort`](Runtime::abort) cancels it.
    type JoinHandle<T: Send + 'static>: Future<Output = Result<T, Self::JoinError>>
        + Send
        + Unpin
        + 'static;
    /// Why a task gave no output.
    type JoinError: Display + Debug + Send + 'static;
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

    /// Runs `task` in a task of its own. Dropping the handle detaches it.
    fn spawn<T: Send + 'static>(
        &self,
        task: impl Future<Output = T> + Send + 'static,
    ) -> Self::JoinHandle<T>;
    /// Cancels the task of `handle`; awaiting the handle afterwards gives
    /// an error unless the task had already finished.
    fn abort<T: Send + 'static>(&self, handle: &mut Self::JoinHandle<T>);
    /// Whether the task of `handle` has ended.
    fn is_finished<T: Send + 'static>(&self, handle: &Self::JoinHandle<T>) -> bool;
    /// The socket addresses of `host:port`.
    fn resolve(&self, host_port: &str) -> impl Future<Output = io::Result<Vec<SocketAddr>>> + Send;
    /// Binds a TCP listener to the first of `addrs` that works.
    fn bind_tcp(
        &self,
        addrs: &[SocketAddr],
    ) -> impl Future<Output = io::Result<Self::TcpListener>> + Send;
    /// The address a TCP listener is bound to.
    fn tcp_local_addr(&self, listener: &Self::TcpListener) -> io::Result<SocketAddr>;
    /// The next connection on a TCP listener, and its peer.
    fn accept_tcp(
        &self,
        listener: &Self::TcpListener,
    ) -> impl Future<Output = io::Result<(Self::Tcp, SocketAddr)>> + Send;
    /// Connects to the first of `addrs` that answers.
    fn connect_tcp(
        &self,
        addrs: &[SocketAddr],
    ) -> impl Future<Output = io::Result<Self::Tcp>> + Send;
    /// Sets `TCP_NODELAY`.
    fn set_nodelay(&self, stream: &Self::Tcp) -> io::Result<()>;
    /// Turns TCP keep-alive on with `keepalive`'s idle time and interval
    /// (the interval where the system lets it be set).
    fn set_keepalive(&self, stream: &Self::Tcp, keepalive: &TcpKeepalive) -> io::Result<()>;
    /// The peer of a TCP stream.
    fn peer_addr(&self, stream: &Self::Tcp) -> io::Result<SocketAddr>;
    /// Binds a Unix listener at `path`.
    #[cfg(unix)]
    fn bind_unix(&self, path: &std::path::Path) -> io::Result<Self::UnixListener>;
    /// The next connection on a Unix listener.
    #[cfg(unix)]
    fn accept_unix(
        &self,
        listener: &Self::UnixListener,
    ) -> impl Future<Output = io::Result<Self::Unix>> + Send;
    /// Connects to the Unix socket at `path`.
    #[cfg(unix)]
    fn connect_unix(
        &self,
        path: &std::path::Path,
    ) -> impl Future<Output = io::Result<Self::Unix>> + Send;
    /// A child process, for links over a command (`exec:CMD`).
    type Child: ChildProcess;

    /// Starts `command` (its stdin, stdout and stderr set to be piped).
    fn spawn_child(&self, command: std::process::Command) -> io::Result<Self::Child>;
}
