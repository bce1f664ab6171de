//! Bounded in-process byte pipes: a [`Writer`] puts bytes in, a [`Reader`]
//! takes them out, in order, from another task.
//!
//! ```
//! use futures::executor::block_on;
//!
//! block_on(async {
//!     let (reader, writer) = circuit_stream::stream();
//!
//!     // Write in place: reserve 5 bytes, fill them.
//!     writer
//!         .write(5, |out| {
//!             out.copy_from_slice(b"hello");
//!             5
//!         })
//!         .await?;
//!     writer.close("done");
//!
//!     // Peek at least 2 bytes, consume only the first 2.
//!     let head = reader.read(2, |buf| (buf[..2].to_vec(), 2)).await?;
//!     assert_eq!(head, b"he");
//!     let rest = reader.read(1, |buf| (buf.to_vec(), buf.len())).await?;
//!     assert_eq!(rest, b"llo");
//!
//!     // The stream is drained: the reader now sees the writer's epitaph.
//!     let end = reader.read(1, |buf| ((), buf.len())).await;
//!     assert_eq!(end, Err(circuit_stream::StreamError::Closed(Some("done".into()))));
//!     Ok::<(), circuit_stream::StreamError>(())
//! })
//! .unwrap();
//! ```
//!
//! A pipe is the in-process form of one direction of a circuit stream, so
//! it has the stream's features:
//!
//! - **Reads with a minimum and a peek.** [`Reader::read`] waits for at least
//!   `min` bytes and shows the callback everything contiguous; the callback
//!   says how much it consumed. [`Reader::read_message`] reads one
//!   `circuit-frame` message; [`Reader::push_front`] puts bytes back.
//! - **Writes in place.** [`Writer::write`] reserves space and lets the
//!   callback fill it, so bytes are copied once on their way through.
//! - **Closing with an epitaph.** Either end can close with a reason that
//!   the other end reads as [`StreamError::Closed`]. Dropping an end closes
//!   without a reason. After the writer closes, the reader still reads
//!   what was buffered; after the reader closes, buffered bytes are dropped.
//!   [`Writer::close_clean_with`] ends the stream cleanly (reads see the
//!   end, not an error) yet keeps an epitaph for `closed_reason`.
//! - **Back-pressure.** A pipe holds at most [`DEFAULT_CAPACITY`] bytes
//!   unless made with [`stream_with_capacity`]; a write that would pass the
//!   bound waits for the reader. [`stream_unbounded`] has no bound.
//!   Storage is taken as data arrives, not up front, in blocks of up to
//!   64 KiB from a store that all pipes of the process share: a block read
//!   empty goes back there (a pipe keeps one full-size block while it
//!   carries bulk data), so a pipe holds about what it buffers, and the
//!   storage the next write goes into is the one some pipe has just read.
//! - **futures-io.** [`Reader`] is `AsyncRead + AsyncBufRead`, [`Writer`]
//!   is `AsyncWrite`, and [`Duplex`] joins a reader and a writer into one
//!   bidirectional stream ([`duplex_pair`] makes two connected ones).
//!   The inherent `read`, `write` and `close` take precedence over the
//!   `AsyncReadExt`/`AsyncWriteExt` methods of the same names: call those
//!   as `AsyncReadExt::read(&mut reader, buf)`.
//!
//! The crate uses no runtime: tasks wait on wakers, each end keeping only
//! its latest one, so a [`Reader`] or a [`Writer`] is meant for one task
//! at a time (share one behind a lock if need be). A task that feeds many
//! pipes in one poll can run it inside [`batch_wakes`], so that each task
//! waiting at the other ends is woken once when the poll ends.
//!
//! # Cooperative yielding
//!
//! The futures-io methods and the futures
//! ([`Writer::write`], [`Writer::write_all`], [`Reader::read`] and the
//! message forms) of one end yield after 128 polls in a row that found the
//! pipe ready: the next poll returns `Pending` having woken its task, and
//! does its work when polled again. A task that always finds room (or
//! bytes) thus still returns to its executor now and then, which lets the
//! task at the other end run meanwhile, as tokio's own pipes do with its
//! task budget. The `poll_*_with` and `try_*` calls never yield: their
//! caller runs its own loop. Nor does a [`Reader::read`] with a `min` of 0.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::sync::Arc;

mod chunk;
mod duplex;
mod error;
mod pool;
mod queue;
mod reader;
mod shared;
mod writer;

pub use bytes::Bytes;
pub use chunk::Chunk;
pub use duplex::{duplex_pair, Duplex};
pub use error::{StreamError, TryWriteError};
pub use reader::Reader;
pub use shared::batch_wakes;
pub use writer::Writer;

use shared::Shared;

/// The capacity of a pipe made by [`stream`]: 256 KiB, four of the largest
/// circuit data frames.
pub const DEFAULT_CAPACITY: usize = 256 * 1024;

/// A pipe bounded at [`DEFAULT_CAPACITY`] bytes.
pub fn stream() -> (Reader, Writer) {
    stream_with_capacity(DEFAULT_CAPACITY)
}

/// A pipe that holds at most `capacity` bytes; a capacity of 0 counts as 1.
/// A single write or a read's minimum can be at most `capacity` bytes.
pub fn stream_with_capacity(capacity: usize) -> (Reader, Writer) {
    pipe(Some(capacity.max(1)))
}

/// A pipe without a bound: writes never wait. Use it only where something
/// else bounds what is written.
pub fn stream_unbounded() -> (Reader, Writer) {
    pipe(None)
}

fn pipe(capacity: Option<usize>) -> (Reader, Writer) {
    let shared = Arc::new(Shared::new(capacity));
    (Reader::new(shared.clone()), Writer::new(shared))
}
