//! Between tokio's io traits and futures-io's: circuit streams as tokio io,
//! and tokio byte streams as futures-io for a link.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use circuit_stream::Duplex;
use tokio::io::ReadBuf;
use tokio_util::compat::{Compat, FuturesAsyncReadCompatExt};

/// A circuit stream as tokio io: `tokio::io::AsyncRead + AsyncWrite`, so
/// `tokio::io::copy_bidirectional`, `BufReader` and codecs work on it.
/// `shutdown` closes this direction only (the peer reads end of stream);
/// `into_inner` gives the [`Duplex`] back.
pub type TokioDuplex = Compat<Duplex>;

/// Wraps a circuit stream (from
/// [`Node::connect_to_peer`](circuit_node::Node::connect_to_peer) or an
/// [`IncomingStream`](circuit_node::IncomingStream)) for tokio's io traits.
/// The same as `tokio_util::compat::FuturesAsyncReadCompatExt::compat`.
pub fn tokio_io(stream: Duplex) -> TokioDuplex {
    stream.compat()
}

/// A tokio byte stream with futures-io's traits, for a
/// [`Mux`](circuit_mux::Mux) or a node's link over it: what
/// `tokio_util::compat` does, with vectored writes passed through.
///
/// tokio-util's `Compat` writes only the first buffer of a vectored write.
/// A link's driver writes a large frame as its 6-byte header and its
/// payload straight from the stream's pipe in one vectored write; through
/// `Compat` that becomes a write of the header alone (a segment of its own
/// on a `TCP_NODELAY` socket) and a copy of the payload. The link
/// functions of this crate wrap their transports in this type; wrap a
/// tokio transport in it before handing it to
/// [`Mux::new`](circuit_mux::Mux::new) yourself.
#[derive(Debug)]
pub struct FuturesIo<T> {
    inner: T,
}

impl<T> FuturesIo<T> {
    /// Wraps `inner`.
    pub fn new(inner: T) -> Self {
        FuturesIo { inner }
    }

    /// The transport.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The transport, mutably.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// Gives the transport back.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T: tokio::io::AsyncRead + Unpin> futures::io::AsyncRead for FuturesIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut buf = ReadBuf::new(buf);
        match Pin::new(&mut self.inner).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(buf.filled().len())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> futures::io::AsyncWrite for FuturesIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::{AsyncReadExt, AsyncWriteExt};

    /// Records each write's length.
    #[derive(Default)]
    struct Recorder {
        writes: Vec<usize>,
        vectored: bool,
    }

    impl tokio::io::AsyncWrite for Recorder {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.writes.push(buf.len());
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let n = bufs.iter().map(|b| b.len()).sum();
            self.writes.push(n);
            Poll::Ready(Ok(n))
        }

        fn is_write_vectored(&self) -> bool {
            self.vectored
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn a_vectored_write_reaches_the_transport_whole() {
        futures::executor::block_on(async {
            let mut io = FuturesIo::new(Recorder {
                vectored: true,
                ..Recorder::default()
            });
            let header = [0u8; 6];
            let payload = [1u8; 1000];
            let n = io
                .write_vectored(&[IoSlice::new(&header), IoSlice::new(&payload)])
                .await
                .unwrap();
            assert_eq!(n, 1006);
            assert_eq!(io.get_ref().writes, [1006]);

            // What tokio-util's compat does with the same write.
            let mut compat =
                tokio_util::compat::TokioAsyncWriteCompatExt::compat_write(Recorder::default());
            let n = compat
                .write_vectored(&[IoSlice::new(&header), IoSlice::new(&payload)])
                .await
                .unwrap();
            assert_eq!(
                n, 6,
                "tokio-util's compat was expected to write the header alone"
            );
        });
    }

    #[tokio::test]
    async fn reads_writes_and_closes_pass_through() {
        let (a, b) = tokio::io::duplex(64);
        let (mut a, mut b) = (FuturesIo::new(a), FuturesIo::new(b));
        a.write_all(b"through").await.unwrap();
        a.close().await.unwrap();
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"through");
    }
}
