//! Two pipes, one each way, as one bidirectional byte stream.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_io::{AsyncBufRead, AsyncRead, AsyncWrite};

use crate::{stream_with_capacity, Reader, Writer};

/// One end of a bidirectional in-process byte stream: a [`Reader`] for the
/// bytes coming in and a [`Writer`] for the bytes going out. It implements
/// the futures-io traits by delegating to them, and splits back into them.
#[derive(Debug)]
pub struct Duplex {
    reader: Reader,
    writer: Writer,
}

/// Two connected [`Duplex`] ends: what one writes, the other reads. Each
/// direction is a pipe bounded at `capacity` bytes (0 counts as 1).
pub fn duplex_pair(capacity: usize) -> (Duplex, Duplex) {
    let (a_reader, b_writer) = stream_with_capacity(capacity);
    let (b_reader, a_writer) = stream_with_capacity(capacity);
    (
        Duplex::from_parts(a_reader, a_writer),
        Duplex::from_parts(b_reader, b_writer),
    )
}

impl Duplex {
    /// Joins a reader and a writer, usually of two different pipes.
    pub fn from_parts(reader: Reader, writer: Writer) -> Self {
        Duplex { reader, writer }
    }

    /// Splits into the reader and the writer, to use them from two tasks.
    pub fn into_split(self) -> (Reader, Writer) {
        (self.reader, self.writer)
    }

    /// The incoming direction.
    pub fn reader(&self) -> &Reader {
        &self.reader
    }

    /// The outgoing direction.
    pub fn writer(&self) -> &Writer {
        &self.writer
    }
}

/// Delegates to [`Reader`]'s impl.
impl AsyncRead for Duplex {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().reader).poll_read(cx, buf)
    }
}

/// Delegates to [`Reader`]'s impl.
impl AsyncBufRead for Duplex {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        Pin::new(&mut self.get_mut().reader).poll_fill_buf(cx)
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        Pin::new(&mut self.get_mut().reader).consume(amt)
    }
}

/// Delegates to [`Writer`]'s impl: closing ends the outgoing direction only.
impl AsyncWrite for Duplex {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().writer).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().writer).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().writer).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().writer).poll_close(cx)
    }
}
