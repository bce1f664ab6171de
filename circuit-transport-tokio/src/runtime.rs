//! Tokio as a transport [`Runtime`]: its clock (the node's [`Timer`]), its
//! spawn, its sockets.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use circuit_node::timer::{Sleep, Timer};
use circuit_transport::runtime::Runtime;
use circuit_transport::TcpKeepalive;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinError, JoinHandle};
use tokio::time::Instant;

use crate::io::FuturesIo;
use crate::process::TokioChild;

/// Tokio's clock, spawn and sockets: the [`Runtime`] of this crate's
/// listeners and links, and the node's [`Timer`] (give
/// [`shared`](Self::shared) to
/// [`NodeConfig::router`](circuit_node::NodeConfig::router)). Its epoch is
/// the moment it was made; clones share it. It follows tokio's paused time
/// in tests (`tokio::time::pause`); its sleeps, spawns and sockets need a
/// tokio runtime when polled or called (making one does not).
///
/// ```
/// use circuit_node::{Node, NodeConfig};
/// use circuit_transport_tokio::TokioTimer;
///
/// let (router, _, _) = Node::new("r", "demo", NodeConfig::router(TokioTimer::shared())).unwrap();
/// # drop(router);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct TokioRuntime {
    epoch: Instant,
}

/// The node's timer on tokio's clock: the runtime is the timer.
pub type TokioTimer = TokioRuntime;

impl TokioRuntime {
    /// A runtime whose clock's epoch is now.
    pub fn new() -> Self {
        TokioRuntime {
            epoch: Instant::now(),
        }
    }

    /// A new one, as the timer of a [`NodeConfig`](circuit_node::NodeConfig).
    pub fn shared() -> Arc<dyn Timer> {
        Arc::new(TokioRuntime::new())
    }
}

impl Default for TokioRuntime {
    fn default() -> Self {
        TokioRuntime::new()
    }
}

/// The mux's keep-alive and close bound sleep on tokio's clock
/// ([`circuit_mux::Config::keep_alive`], [`circuit_mux::Config::close_timeout`]).
impl circuit_mux::Sleeper for TokioRuntime {
    fn sleep(
        &self,
        duration: Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(tokio::time::sleep(duration))
    }
}

impl Timer for TokioRuntime {
    fn now(&self) -> Duration {
        Instant::now().saturating_duration_since(self.epoch)
    }

    fn sleep_until(&self, deadline: Duration) -> Sleep {
        match self.epoch.checked_add(deadline) {
            // Made on first poll, so that creating one needs no runtime.
            Some(at) => Box::pin(async move { tokio::time::sleep_until(at).await }),
            None => Box::pin(std::future::pending()),
        }
    }
}

impl Runtime for TokioRuntime {
    type JoinHandle<T: Send + 'static> = JoinHandle<T>;
    type JoinError = JoinError;
    type Tcp = FuturesIo<TcpStream>;
    type TcpListener = TcpListener;
    #[cfg(unix)]
    type Unix = FuturesIo<tokio::net::UnixStream>;
    #[cfg(unix)]
    type UnixListener = tokio::net::UnixListener;

    fn spawn<T: Send + 'static>(
        &self,
        task: impl Future<Output = T> + Send + 'static,
    ) -> JoinHandle<T> {
        tokio::spawn(task)
    }

    fn abort<T: Send + 'static>(&self, handle: &mut JoinHandle<T>) {
        handle.abort();
    }

    fn is_finished<T: Send + 'static>(&self, handle: &JoinHandle<T>) -> bool {
        handle.is_finished()
    }

    async fn resolve(&self, host_port: &str) -> io::Result<Vec<SocketAddr>> {
        let addrs = tokio::net::lookup_host(host_port).await?;
        Ok(addrs.collect())
    }

    async fn bind_tcp(&self, addrs: &[SocketAddr]) -> io::Result<TcpListener> {
        TcpListener::bind(addrs).await
    }

    fn tcp_local_addr(&self, listener: &TcpListener) -> io::Result<SocketAddr> {
        listener.local_addr()
    }

    async fn accept_tcp(&self, listener: &TcpListener) -> io::Result<(Self::Tcp, SocketAddr)> {
        let (stream, peer) = listener.accept().await?;
        Ok((FuturesIo::new(stream), peer))
    }

    async fn connect_tcp(&self, addrs: &[SocketAddr]) -> io::Result<Self::Tcp> {
        Ok(FuturesIo::new(TcpStream::connect(addrs).await?))
    }

    fn set_nodelay(&self, stream: &Self::Tcp) -> io::Result<()> {
        stream.get_ref().set_nodelay(true)
    }

    fn set_keepalive(&self, stream: &Self::Tcp, keepalive: &TcpKeepalive) -> io::Result<()> {
        keepalive.apply_to(socket2::SockRef::from(stream.get_ref()))
    }

    fn peer_addr(&self, stream: &Self::Tcp) -> io::Result<SocketAddr> {
        stream.get_ref().peer_addr()
    }

    #[cfg(unix)]
    fn bind_unix(&self, path: &std::path::Path) -> io::Result<Self::UnixListener> {
        tokio::net::UnixListener::bind(path)
    }

    #[cfg(unix)]
    async fn accept_unix(&self, listener: &Self::UnixListener) -> io::Result<Self::Unix> {
        Ok(FuturesIo::new(listener.accept().await?.0))
    }

    #[cfg(unix)]
    async fn connect_unix(&self, path: &std::path::Path) -> io::Result<Self::Unix> {
        Ok(FuturesIo::new(tokio::net::UnixStream::connect(path).await?))
    }

    type Child = TokioChild;

    fn spawn_child(&self, command: std::process::Command) -> io::Result<TokioChild> {
        TokioChild::spawn(command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keep-alive as set, read back from the socket (on both ends of a
    /// loopback connection: one dialled, one accepted).
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn keepalive_is_set_on_the_socket() {
        let runtime = TokioRuntime::new();
        let listener = runtime
            .bind_tcp(&["127.0.0.1:0".parse().unwrap()])
            .await
            .unwrap();
        let addresses = [runtime.tcp_local_addr(&listener).unwrap()];
        let (dialled, accepted) = tokio::join!(runtime.connect_tcp(&addresses), async {
            runtime.accept_tcp(&listener).await.unwrap().0
        });
        let dialled = dialled.unwrap();
        let keepalive = TcpKeepalive {
            time: Duration::from_secs(37),
            interval: Duration::from_secs(11),
        };
        for stream in [&dialled, &accepted] {
            let socket = socket2::SockRef::from(stream.get_ref());
            assert!(!socket.keepalive().unwrap(), "off until set");
            runtime.set_keepalive(stream, &keepalive).unwrap();
            assert!(socket.keepalive().unwrap());
            assert_eq!(socket.tcp_keepalive_time().unwrap(), keepalive.time);
            assert_eq!(socket.tcp_keepalive_interval().unwrap(), keepalive.interval);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn sleeps_until_the_deadline_on_tokio_time() {
        let timer = TokioTimer::new();
        timer.sleep_until(Duration::from_secs(3600)).await;
        assert!(timer.now() >= Duration::from_secs(3600));
        // The end of time never comes, and does not overflow.
        let never = timer.sleep_until(Duration::MAX);
        assert!(tokio::time::timeout(Duration::from_secs(1), never)
            .await
            .is_err());
    }
}
