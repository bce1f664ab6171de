//! A circuit stream joined to a TCP connection with no copy in user space.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;

use circuit_stream::{Duplex, Reader, StreamError, Writer};
use tokio::io::AsyncWrite;
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio_util::compat::TokioAsyncWriteCompatExt;

/// The most one read from the TCP connection asks for: what one read from
/// a loopback socket usually holds.
const MOST: usize = 256 << 10;

/// The least room a read from the TCP connection waits for in the
/// stream's pipe (or the pipe's capacity, if smaller), so that a nearly
/// full pipe is not filled a few bytes at a time.
const LEAST: usize = 16 << 10;

/// Copies both ways between `stream` and `tcp` until both directions have
/// ended, as `tokio::io::copy_bidirectional` does, and returns the bytes
/// moved (stream to TCP, TCP to stream). Each direction ends at its end of
/// stream: the stream's end shuts down the TCP connection's sending side,
/// and the TCP connection's end closes the stream's writing half (the
/// peer reads end of stream). An error in either direction ends both.
///
/// No byte is copied in user space: the kernel reads from the TCP
/// connection straight into the stream's pipe, and writes to it straight
/// out of the pipe the stream's bytes arrived in ([`Reader::copy_to`]). A `tokio_io`
/// wrapper with `copy_bidirectional` copies every byte once more each way,
/// through its 8 KiB buffers.
///
/// ```no_run
/// # async fn f(node: circuit_node::Node) -> Result<(), Box<dyn std::error::Error>> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:9000").await?;
/// let (mut tcp, _) = listener.accept().await?;
/// let stream = node.connect_to_peer("web").await?;
/// let (sent, received) = circuit_transport_tokio::splice(stream, &mut tcp).await?;
/// # Ok(()) }
/// ```
pub async fn splice(stream: Duplex, tcp: &mut TcpStream) -> io::Result<(u64, u64)> {
    let (reader, writer) = stream.into_split();
    let (tcp_read, tcp_write) = tcp.split();
    futures::future::try_join(
        stream_to_tcp(reader, tcp_write),
        tcp_to_stream(tcp_read, writer),
    )
    .await
}

/// Writes what `reader` gives to `tcp` until its end, then shuts `tcp`'s
/// sending side down. The bytes keep their room in the stream's pipe until
/// the socket has taken them ([`Reader::copy_to`]), so a mux grants credit
/// for them only as they leave.
async fn stream_to_tcp(reader: Reader, tcp: WriteHalf<'_>) -> io::Result<u64> {
    let mut tcp = tcp.compat_write();
    let moved = reader.copy_to(&mut tcp).await?;
    let mut tcp = tcp.into_inner();
    poll_fn(|cx| Pin::new(&mut tcp).poll_shutdown(cx)).await?;
    Ok(moved)
}

/// Reads `tcp` into `writer`'s pipe until its end, then closes `writer`
/// (end of stream for the peer).
async fn tcp_to_stream(tcp: ReadHalf<'_>, writer: Writer) -> io::Result<u64> {
    let capacity = writer.capacity().unwrap_or(MOST);
    let mut moved = 0;
    loop {
        tcp.readable().await?;
        // Room for as much as the pipe has free now, at least LEAST: only
        // this task writes to the pipe, so its free room only grows.
        let free = capacity.saturating_sub(writer.buffered());
        let len = free.clamp(LEAST.min(capacity), MOST.min(capacity));
        let mut read = None;
        let written = writer
            .write(len, |buf| {
                let result = tcp.try_read(buf);
                let n = *result.as_ref().unwrap_or(&0);
                read = Some(result);
                n
            })
            .await
            .map_err(io::Error::from)?;
        match read {
            Some(Ok(0)) => break,
            Some(Ok(_)) => moved += written as u64,
            Some(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
            Some(Err(e)) => return Err(e),
            // The write ended without running the closure.
            None => return Err(io::Error::from(StreamError::Closed(None))),
        }
    }
    writer.close_without_reason();
    Ok(moved)
}
