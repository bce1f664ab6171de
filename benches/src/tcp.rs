//! Loopback TCP with `TCP_NODELAY` on, tokio sockets seen through
//! `tokio_util::compat` as futures-io.

use std::future::Future;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

use crate::echo::{echo, BoxRead, BoxWrite};

/// Two ends of a loopback TCP connection, `TCP_NODELAY` on; call within
/// the runtime.
pub async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let (client, server) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let (client, server) = (client.expect("connect"), server.expect("accept").0);
    client.set_nodelay(true).expect("nodelay");
    server.set_nodelay(true).expect("nodelay");
    (client, server)
}

/// Listens on loopback and echoes every connection it accepts
/// (`TCP_NODELAY` on) in a task of its own; call within the runtime.
/// Returns the address and the handle that stops accepting.
pub async fn echo_server() -> (SocketAddr, AbortHandle) {
    server(|s| echo(s.compat())).await
}

/// Listens on loopback and runs `handle` on every connection it accepts
/// (`TCP_NODELAY` on), each in a task of its own; call within the
/// runtime. Returns the address and the handle that stops accepting.
pub async fn server<F, H>(mut handle: H) -> (SocketAddr, AbortHandle)
where
    H: FnMut(TcpStream) -> F + Send + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let accept = tokio::spawn(async move {
        loop {
            let (s, _) = listener.accept().await.expect("accept");
            s.set_nodelay(true).expect("nodelay");
            tokio::spawn(handle(s));
        }
    });
    (addr, accept.abort_handle())
}

/// Connects to `addr` with `TCP_NODELAY` on, split in two halves.
pub async fn connect(addr: SocketAddr) -> (BoxRead, BoxWrite) {
    let s = TcpStream::connect(addr).await.expect("connect");
    s.set_nodelay(true).expect("nodelay");
    let (r, w) = s.into_split();
    (Box::new(r.compat()), Box::new(w.compat_write()))
}
