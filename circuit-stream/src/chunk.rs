//! Bytes moved out of a pipe without a copy: see [`Reader::poll_take`].
//!
//! [`Reader::poll_take`]: crate::Reader::poll_take

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use crate::queue::Storage;
use crate::shared::Shared;

/// Bytes taken out of a pipe by [`Reader::poll_take`](crate::Reader::poll_take),
/// in the storage they were written into (no copy).
///
/// They still count against the pipe's capacity until the chunk is
/// dropped: a writer gets room for them only once they are done with, so
/// taking bytes out does not raise the pipe's bound. A chunk can be cut
/// ([`split_to`](Chunk::split_to)); each piece gives its bytes' room back
/// when it is dropped, and the storage goes back to the pool pipes take
/// their blocks from when the last piece is.
pub struct Chunk {
    storage: Arc<Held>,
    start: usize,
    end: usize,
}

/// The storage a chunk and its pieces share, and the pipe it came from.
struct Held {
    buf: Storage,
    pipe: Arc<Shared>,
}

impl Drop for Held {
    fn drop(&mut self) {
        std::mem::take(&mut self.buf).give_back();
    }
}

impl Chunk {
    pub(crate) fn new(buf: Storage, start: usize, end: usize, pipe: Arc<Shared>) -> Chunk {
        debug_assert!(start <= end && end <= buf.as_slice().len());
        Chunk {
            storage: Arc::new(Held { buf, pipe }),
            start,
            end,
        }
    }

    /// Bytes in the chunk.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether the chunk holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Cuts off the first `at` bytes as a chunk of their own (sharing the
    /// storage); `self` keeps the rest.
    ///
    /// # Panics
    ///
    /// If `at` is more than [`len`](Chunk::len).
    pub fn split_to(&mut self, at: usize) -> Chunk {
        assert!(
            at <= self.len(),
            "split at {at} of a chunk of {}",
            self.len()
        );
        let front = Chunk {
            storage: Arc::clone(&self.storage),
            start: self.start,
            end: self.start + at,
        };
        self.start += at;
        front
    }
}

impl Deref for Chunk {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.storage.buf.as_slice()[self.start..self.end]
    }
}

impl AsRef<[u8]> for Chunk {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        let n = self.len();
        if n > 0 {
            self.storage.pipe.release(n);
        }
    }
}

impl fmt::Debug for Chunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chunk").field("len", &self.len()).finish()
    }
}
