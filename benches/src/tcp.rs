//! Loopback TCP with `TCP_NODELAY` on, tokio sockets seen through
//! `tokio_util::compat` as futures-io, and the raw TCP echo that the mux
//! and node benches measure against: [`duplex_echo`], which reads while it
//! writes.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Mutex;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

use crate::echo::{buffered, BoxRead, BoxWrite};

/// Size of each buffer of a [`duplex_echo`]: as large as a relay's (see
/// [`relay`](crate::relay)), so that one read takes what the socket holds.
pub const ECHO_BUFFER: usize = 256 << 10;

/// Buffers of a [`duplex_echo`] connection: at most this many are read and
/// not yet written back (1 MiB in all).
pub const ECHO_BUFFERS: usize = 4;

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

/// Buffers of ended [`duplex_echo`] connections, for the next ones: a new
/// connection (W4 opens one per round) then costs no fresh 256 KiB
/// allocation. Holds at most [`STASH`] buffers.
static STASHED: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// The most buffers [`STASHED`] keeps (16 MiB).
const STASH: usize = 64;

/// An [`ECHO_BUFFER`]-byte buffer, from the stash if it has one.
fn take_buffer() -> Vec<u8> {
    let stashed = STASHED.lock().expect("stash").pop();
    stashed.unwrap_or_else(|| vec![0; ECHO_BUFFER])
}

/// Keeps `buf` for a later connection, unless the stash is full.
fn stash_buffer(buf: Vec<u8>) {
    let mut stash = STASHED.lock().expect("stash");
    if stash.len() < STASH {
        stash.push(buf);
    }
}

/// Echoes `s` full duplex, as an echo that uses its connection well does:
/// a reader task reads into buffers of [`ECHO_BUFFER`] bytes and hands
/// them over a queue to a writer (this future), which writes each back
/// with `write_all` and returns it to the reader for reuse; at most
/// [`ECHO_BUFFERS`] buffers exist, allocated as the reader first needs
/// them. So the connection is read while it is written, with a bounded
/// amount in between. At end of stream (or an error) the writer writes
/// what it holds, then shuts down its sending side. Call within the
/// runtime.
///
/// [`echo`](crate::echo::echo), which reads and writes in turn, is the serial echo: the raw
/// baseline of the benches before this one (`raw_serial` where a bench
/// still runs it).
pub async fn duplex_echo(s: TcpStream) {
    let (mut r, mut w) = s.into_split();
    let (full_tx, mut full_rx) = mpsc::channel::<(Vec<u8>, usize)>(ECHO_BUFFERS);
    let (free_tx, mut free_rx) = mpsc::channel::<Vec<u8>>(ECHO_BUFFERS);
    let reader = tokio::spawn(async move {
        let mut allocated = 0;
        loop {
            let mut buf = match free_rx.try_recv() {
                Ok(buf) => buf,
                Err(_) if allocated < ECHO_BUFFERS => {
                    allocated += 1;
                    take_buffer()
                }
                Err(_) => match free_rx.recv().await {
                    Some(buf) => buf,
                    None => return,
                },
            };
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    stash_buffer(buf);
                    free_rx.close();
                    while let Ok(buf) = free_rx.try_recv() {
                        stash_buffer(buf);
                    }
                    return;
                }
                Ok(n) => {
                    if full_tx.send((buf, n)).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    while let Some((buf, n)) = full_rx.recv().await {
        if w.write_all(&buf[..n]).await.is_err() {
            reader.abort();
            return;
        }
        // Back to the reader, or to the stash once the reader has ended.
        if let Err(e) = free_tx.try_send(buf) {
            stash_buffer(e.into_inner());
        }
    }
    let _ = w.shutdown().await;
}

/// Listens on loopback and echoes every connection it accepts
/// (`TCP_NODELAY` on) with [`duplex_echo`], in a task of its own; call
/// within the runtime. Returns the address and the handle that stops
/// accepting.
pub async fn echo_server() -> (SocketAddr, AbortHandle) {
    server(duplex_echo).await
}

/// Listens on loopback and runs `handle` on every connection it accepts
/// (`TCP_NODELAY` on), each in a task of its own; call within the
/// runtime. Returns the address and the handle that stops accepting.
pub async fn server<F, H>(handle: H) -> (SocketAddr, AbortHandle)
where
    H: FnMut(TcpStream) -> F + Send + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    server_at(SocketAddr::from(([127, 0, 0, 1], 0)), handle).await
}

/// [`server`] listening on `at`.
pub async fn server_at<F, H>(at: SocketAddr, mut handle: H) -> (SocketAddr, AbortHandle)
where
    H: FnMut(TcpStream) -> F + Send + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind(at).await.expect("bind");
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
    (buffered(r.compat()), Box::new(w.compat_write()))
}

#[cfg(test)]
mod tests {
    use futures::io::AsyncReadExt;

    use super::*;
    use crate::config::CHUNK;
    use crate::echo::{pattern, send, shift};

    /// The full-duplex echo gives back every byte in order, more than its
    /// buffers hold, and ends its stream once the client ends its own.
    #[test]
    fn duplex_echo_echoes_and_ends() {
        let rt = crate::runtime::runtime();
        rt.block_on(async {
            let (addr, accept) = echo_server().await;
            let total = 3 * ECHO_BUFFERS * ECHO_BUFFER + 12_345;
            let (mut r, w) = connect(addr).await;
            let sender = tokio::spawn(send(w, 7, total));
            let mut back = Vec::new();
            r.read_to_end(&mut back).await.expect("read to end");
            sender.await.expect("sender");
            assert_eq!(back.len(), total);
            for (off, chunk) in back.chunks(CHUNK).enumerate() {
                let start = shift(7);
                assert!(
                    chunk == &pattern()[start..start + chunk.len()],
                    "chunk {off}"
                );
            }
            accept.abort();
        });
    }
}
