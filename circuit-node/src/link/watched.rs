//! A link's transport as the node sees it: the bytes pass untouched, and
//! the node learns whether everything the mux driver wrote has been
//! flushed, so that a link closed through its [`LinkControl`] ends only
//! once its epitaphs are on the wire.
//!
//! [`LinkControl`]: crate::LinkControl

use std::io::{self, IoSlice, IoSliceMut};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::io::{AsyncRead, AsyncWrite};

/// Whether the driver has written (or tried to write) since its last
/// completed flush.
#[derive(Debug, Default)]
pub(crate) struct WriteWatch {
    unflushed: AtomicBool,
}

impl WriteWatch {
    /// Nothing written waits in the transport: the last write was taken
    /// and flushed.
    pub(crate) fn is_flushed(&self) -> bool {
        !self.unflushed.load(Ordering::Acquire)
    }

    fn wrote<T>(&self, polled: &Poll<io::Result<T>>) {
        if matches!(polled, Poll::Pending | Poll::Ready(Ok(_))) {
            self.unflushed.store(true, Ordering::Release);
        }
    }
}

/// A transport with a [`WriteWatch`] on its writes.
#[derive(Debug)]
pub(crate) struct Watched<IO> {
    io: IO,
    watch: Arc<WriteWatch>,
}

impl<IO> Watched<IO> {
    pub(crate) fn new(io: IO) -> (Self, Arc<WriteWatch>) {
        let watch = Arc::new(WriteWatch::default());
        let watched = Watched {
            io,
            watch: Arc::clone(&watch),
        };
        (watched, watch)
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Watched<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }

    fn poll_read_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_read_vectored(cx, bufs)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Watched<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        self.watch.wrote(&polled);
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.watch.wrote(&polled);
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.io).poll_flush(cx);
        if let Poll::Ready(Ok(())) = polled {
            self.watch.unflushed.store(false, Ordering::Release);
        }
        polled
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_close(cx)
    }
}
