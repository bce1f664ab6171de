//! A link's byte stream over a blocking reader and writer (a serial port,
//! a character device, a pseudo-terminal), behind the `serial` feature:
//! each half runs on a thread of the `blocking` crate's pool, so a read
//! that waits never holds up a write, and no async runtime is involved.

use std::fmt;
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use blocking::Unblock;
use futures::io::{AsyncRead, AsyncWrite};

/// A blocking reader and writer as one futures-io byte stream, for a link
/// ([`spawn_link`](crate::net::spawn_link)): reads and writes run on
/// threads of their own, each half on its own, so a read that waits for
/// bytes never holds up a write.
///
/// A read that blocks for ever keeps its thread until it returns (after
/// the stream is dropped, its bytes are thrown away); a device opened with
/// a read timeout gives it back sooner.
pub struct BlockingIo {
    read: Unblock<Box<dyn Read + Send>>,
    write: Unblock<Box<dyn Write + Send>>,
    _guard: Option<Box<dyn Send>>,
}

impl BlockingIo {
    /// Reads from `read` and writes to `write` (two handles on one device,
    /// as `File::try_clone` gives).
    pub fn new(read: impl Read + Send + 'static, write: impl Write + Send + 'static) -> Self {
        BlockingIo {
            read: Unblock::new(Box::new(read)),
            write: Unblock::new(Box::new(write)),
            _guard: None,
        }
    }

    /// Keeps `guard` until the stream is dropped (its `Drop` may tell a
    /// reader to stop).
    pub fn with_guard(mut self, guard: impl Send + 'static) -> Self {
        self._guard = Some(Box::new(guard));
        self
    }
}

impl fmt::Debug for BlockingIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingIo").finish_non_exhaustive()
    }
}

impl AsyncRead for BlockingIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().read).poll_read(cx, buf)
    }
}

impl AsyncWrite for BlockingIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().write).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().write).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().write).poll_close(cx)
    }
}
