//! What can go wrong on a pipe.

use std::io;

/// Why a read or a write on a pipe failed.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// The pipe is closed: the other end closed or dropped it, or this end
    /// closed it. Carries the epitaph, the reason given when closing, if any.
    /// `None` is the clean end of the stream, also after
    /// [`Writer::close_clean_with`](crate::Writer::close_clean_with), whose
    /// epitaph only `closed_reason` gives.
    #[error("stream closed{}", epitaph_suffix(.0))]
    Closed(Option<String>),
    /// [`Reader::read_message`](crate::Reader::read_message) found bytes that
    /// are not the message it expected.
    #[error("stream carried bytes that are not the expected message: {0}")]
    Protocol(#[from] circuit_frame::FrameError),
    /// A write of `requested` bytes, or a read of at least `requested` bytes,
    /// can never complete on a pipe bounded at `capacity` bytes.
    #[error("{requested} bytes can never fit a pipe of capacity {capacity}")]
    TooLarge {
        /// The size of the write, or the minimum of the read.
        requested: usize,
        /// The capacity of the pipe.
        capacity: usize,
    },
}

/// Why [`Writer::try_write`](crate::Writer::try_write) or
/// [`Writer::try_write_with`](crate::Writer::try_write_with) wrote nothing.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TryWriteError {
    /// Not enough free space right now; a later attempt may succeed.
    #[error("stream is full")]
    Full,
    /// The pipe is closed, with the epitaph if one was given.
    #[error("stream closed{}", epitaph_suffix(.0))]
    Closed(Option<String>),
    /// The write is larger than the capacity and can never succeed.
    #[error("{requested} bytes can never fit a pipe of capacity {capacity}")]
    TooLarge {
        /// The size of the write.
        requested: usize,
        /// The capacity of the pipe.
        capacity: usize,
    },
}

/// For the futures-io traits: a closed pipe is a broken pipe, a protocol
/// error is invalid data, an oversized request is invalid input.
impl From<StreamError> for io::Error {
    fn from(e: StreamError) -> Self {
        let kind = match e {
            StreamError::Closed(_) => io::ErrorKind::BrokenPipe,
            StreamError::Protocol(_) => io::ErrorKind::InvalidData,
            StreamError::TooLarge { .. } => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, e)
    }
}

fn epitaph_suffix(epitaph: &Option<String>) -> String {
    match epitaph {
        Some(epitaph) => format!(": {epitaph}"),
        None => String::new(),
    }
}
