//! Smol as a transport [`Runtime`]: its timers (the node's [`Timer`]), its
//! global executor, its sockets.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use circuit_node::timer::{Sleep, Timer};
use circuit_transport::runtime::Runtime;
use circuit_transport::TcpKeepalive;
use smol::net::{TcpListener, TcpStream};

use crate::process::SmolChild;

/// Smol's timers, global executor and sockets: the [`Runtime`] of this
/// crate's listeners and links, and the node's [`Timer`] (give
/// [`shared`](Self::shared) to
/// [`NodeConfig::router`](circuit_node::NodeConfig::router)). Its epoch is
/// the moment it was made; clones share it. Its sleeps need no executor:
/// async-io's reactor thread fires them.
///
/// ```
/// use circuit_node::{Node, NodeConfig};
/// use circuit_transport_smol::SmolTimer;
///
/// let (router, _, _) = Node::new("r", "demo", NodeConfig::router(SmolTimer::shared())).unwrap();
/// # drop(router);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct SmolRuntime {
    epoch: Instant,
}

/// The node's timer on smol's timers: the runtime is the timer.
pub type SmolTimer = SmolRuntime;

impl SmolRuntime {
    /// A runtime whose clock's epoch is now.
    pub fn new() -> Self {
        SmolRuntime {
            epoch: Instant::now(),
        }
    }

    /// A new one, as the timer of a [`NodeConfig`](circuit_node::NodeConfig).
    pub fn shared() -> Arc<dyn Timer> {
        Arc::new(SmolRuntime::new())
    }
}

impl Default for SmolRuntime {
    fn default() -> Self {
        SmolRuntime::new()
    }
}

/// The mux's keep-alive and close bound sleep on smol's clock
/// ([`circuit_mux::Config::keep_alive`], [`circuit_mux::Config::close_timeout`]).
impl circuit_mux::Sleeper for SmolRuntime {
    fn sleep(
        &self,
        duration: Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(async move {
            smol::Timer::after(duration).await;
        })
    }
}

impl Timer for SmolRuntime {
    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    fn sleep_until(&self, deadline: Duration) -> Sleep {
        let timer = match self.epoch.checked_add(deadline) {
            Some(at) => smol::Timer::at(at),
            None => smol::Timer::never(),
        };
        Box::pin(async move {
            timer.await;
        })
    }
}

/// A smol [`Task`](smol::Task) that, like every runtime's
/// [`JoinHandle`](Runtime::JoinHandle), detaches its task when dropped
/// (smol's own cancels it).
#[derive(Debug)]
pub struct SmolTask<T>(Option<smol::Task<T>>);

/// The task of a [`SmolTask`] was aborted before it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aborted;

impl fmt::Display for Aborted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the task was aborted")
    }
}

impl<T> Future for SmolTask<T> {
    type Output = Result<T, Aborted>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.0.as_mut() {
            Some(task) => Pin::new(task).poll(cx).map(Ok),
            None => Poll::Ready(Err(Aborted)),
        }
    }
}

impl<T> Drop for SmolTask<T> {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.detach();
        }
    }
}

impl Runtime for SmolRuntime {
    type JoinHandle<T: Send + 'static> = SmolTask<T>;
    type JoinError = Aborted;
    type Tcp = TcpStream;
    type TcpListener = TcpListener;
    #[cfg(unix)]
    type Unix = smol::net::unix::UnixStream;
    #[cfg(unix)]
    type UnixListener = smol::net::unix::UnixListener;

    fn spawn<T: Send + 'static>(
        &self,
        task: impl Future<Output = T> + Send + 'static,
    ) -> SmolTask<T> {
        SmolTask(Some(smol::spawn(task)))
    }

    fn abort<T: Send + 'static>(&self, handle: &mut SmolTask<T>) {
        // Dropping smol's task cancels it.
        drop(handle.0.take());
    }

    fn is_finished<T: Send + 'static>(&self, handle: &SmolTask<T>) -> bool {
        handle.0.as_ref().is_none_or(smol::Task::is_finished)
    }

    async fn resolve(&self, host_port: &str) -> io::Result<Vec<SocketAddr>> {
        smol::net::resolve(host_port).await
    }

    async fn bind_tcp(&self, addrs: &[SocketAddr]) -> io::Result<TcpListener> {
        TcpListener::bind(addrs).await
    }

    fn tcp_local_addr(&self, listener: &TcpListener) -> io::Result<SocketAddr> {
        listener.local_addr()
    }

    async fn accept_tcp(&self, listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
        listener.accept().await
    }

    async fn connect_tcp(&self, addrs: &[SocketAddr]) -> io::Result<TcpStream> {
        TcpStream::connect(addrs).await
    }

    fn set_nodelay(&self, stream: &TcpStream) -> io::Result<()> {
        stream.set_nodelay(true)
    }

    fn set_keepalive(&self, stream: &TcpStream, keepalive: &TcpKeepalive) -> io::Result<()> {
        keepalive.apply_to(socket2::SockRef::from(stream))
    }

    fn peer_addr(&self, stream: &TcpStream) -> io::Result<SocketAddr> {
        stream.peer_addr()
    }

    #[cfg(unix)]
    fn bind_unix(&self, path: &std::path::Path) -> io::Result<Self::UnixListener> {
        smol::net::unix::UnixListener::bind(path)
    }

    #[cfg(unix)]
    async fn accept_unix(&self, listener: &Self::UnixListener) -> io::Result<Self::Unix> {
        Ok(listener.accept().await?.0)
    }

    #[cfg(unix)]
    async fn connect_unix(&self, path: &std::path::Path) -> io::Result<Self::Unix> {
        smol::net::unix::UnixStream::connect(path).await
    }

    type Child = SmolChild;

    fn spawn_child(&self, command: std::process::Command) -> io::Result<SmolChild> {
        SmolChild::spawn(command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keep-alive as set, read back from the socket (on both ends of a
    /// loopback connection: one dialled, one accepted).
    #[cfg(target_os = "linux")]
    #[test]
    fn keepalive_is_set_on_the_socket() {
        smol::block_on(async {
            let runtime = SmolRuntime::new();
            let listener = runtime
                .bind_tcp(&["127.0.0.1:0".parse().unwrap()])
                .await
                .unwrap();
            let addresses = [runtime.tcp_local_addr(&listener).unwrap()];
            let (dialled, accepted) = futures::join!(runtime.connect_tcp(&addresses), async {
                runtime.accept_tcp(&listener).await.unwrap().0
            });
            let dialled = dialled.unwrap();
            let keepalive = TcpKeepalive {
                time: Duration::from_secs(37),
                interval: Duration::from_secs(11),
            };
            for stream in [&dialled, &accepted] {
                let socket = socket2::SockRef::from(stream);
                assert!(!socket.keepalive().unwrap(), "off until set");
                runtime.set_keepalive(stream, &keepalive).unwrap();
                assert!(socket.keepalive().unwrap());
                assert_eq!(socket.tcp_keepalive_time().unwrap(), keepalive.time);
                assert_eq!(socket.tcp_keepalive_interval().unwrap(), keepalive.interval);
            }
        });
    }

    #[test]
    fn sleeps_until_the_deadline() {
        let timer = SmolTimer::new();
        smol::block_on(timer.sleep_until(Duration::from_millis(20)));
        assert!(timer.now() >= Duration::from_millis(20));
        // The end of time never comes, and does not overflow.
        let never = timer.sleep_until(Duration::MAX);
        let first = smol::block_on(smol::future::or(
            async {
                never.await;
                "never"
            },
            async {
                smol::Timer::after(Duration::from_millis(10)).await;
                "timeout"
            },
        ));
        assert_eq!(first, "timeout");
    }

    #[test]
    fn a_dropped_handle_detaches_and_an_aborted_one_cancels() {
        let runtime = SmolRuntime::new();
        let (done, finished) = futures::channel::oneshot::channel();
        drop(runtime.spawn(async move { done.send(()).unwrap() }));
        smol::block_on(finished).unwrap();

        let mut never = runtime.spawn(std::future::pending::<()>());
        runtime.abort(&mut never);
        assert!(runtime.is_finished(&never));
        assert_eq!(smol::block_on(never), Err(Aborted));
    }
}
