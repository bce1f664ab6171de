//! `MuxStream`: one stream of a link as a duplex byte stream.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use circuit_stream::{Duplex, Reader, Writer};
use futures::io::{AsyncBufRead, AsyncRead, AsyncWrite};

/// One stream of a link: read what the peer sends, write what it receives.
///
/// `MuxStream` implements futures-io `AsyncRead`, `AsyncBufRead` and
/// `AsyncWrite`. Closing the writing half (`poll_close`, or
/// [`Writer::close`] with an epitaph after [`into_split`](Self::into_split))
/// sends a close frame; the other direction stays open until the peer closes
/// it. Dropping both halves closes both directions. The reason the peer gave
/// for closing is [`Reader::closed_reason`]; reads end in end of file when
/// it is empty or a v0 clean close
/// ([`is_v0_clean_close`](circuit_frame::is_v0_clean_close)), in a
/// `ConnectionAborted` error otherwise.
#[derive(Debug)]
pub struct MuxStream {
    id: u32,
    duplex: Duplex,
}

impl MuxStream {
    pub(crate) fn new(id: u32, reader: Reader, writer: Writer) -> Self {
        MuxStream {
            id,
            duplex: Duplex::from_parts(reader, writer),
        }
    }

    /// The stream's id on the link.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The reading and writing halves, to use from different tasks or to
    /// splice into another link.
    pub fn into_split(self) -> (Reader, Writer) {
        self.duplex.into_split()
    }

    /// The underlying duplex pipe.
    pub fn into_duplex(self) -> Duplex {
        self.duplex
    }
}

impl AsyncRead for MuxStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.duplex).poll_read(cx, buf)
    }
}

impl AsyncBufRead for MuxStream {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        Pin::new(&mut self.get_mut().duplex).poll_fill_buf(cx)
    }

    fn consume(mut self: Pin<&mut Self>, amt: usize) {
        Pin::new(&mut self.duplex).consume(amt)
    }
}

impl AsyncWrite for MuxStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.duplex).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.duplex).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.duplex).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.duplex).poll_close(cx)
    }
}
