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

    /// The bytes as [`Bytes`](crate::Bytes), still without a copy. Their
    /// room in the pipe they came from is given back now, as if they had
    /// been copied out; the storage goes back to the pool once the last
    /// clone of the `Bytes` is dropped.
    pub fn into_bytes(mut self) -> crate::Bytes {
        let n = self.len();
        if n > 0 {
            self.storage.pipe.release(n);
        }
        let detached = Detached {
            storage: Arc::clone(&self.storage),
            start: self.start,
            end: self.end,
        };
        // Nothing left for `drop` to give back.
        self.start = self.end;
        crate::Bytes::from_owner(detached)
    }
}

/// A chunk's bytes whose room in their pipe was given back.
struct Detached {
    storage: Arc<Held>,
    start: usize,
    end: usize,
}

impl AsRef<[u8]> for Detached {
    fn as_ref(&self) -> &[u8] {
        &self.storage.buf.as_slice()[self.start..self.end]
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

#[cfg(test)]
mod tests {
    use std::task::{Context, Poll};

    fn take(reader: &crate::Reader) -> super::Chunk {
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        match reader.poll_take(&mut cx) {
            Poll::Ready(Ok(chunk)) => chunk,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bytes_made_of_a_chunk_give_its_room_back_at_once_and_keep_its_storage() {
        let (reader, writer) = crate::stream_with_capacity(8);
        writer.try_write(b"abcdefgh").unwrap();
        let mut chunk = take(&reader);
        let at = chunk.as_ptr();
        assert!(writer.try_write(b"x").is_err(), "the chunk holds its room");
        // A piece gives back its own room only.
        let front = chunk.split_to(3).into_bytes();
        assert_eq!((&front[..], front.as_ptr()), (&b"abc"[..], at));
        writer.try_write(b"123").unwrap();
        assert!(writer.try_write(b"4").is_err());
        let rest = chunk.into_bytes();
        assert_eq!(&rest[..], b"defgh");
        assert_eq!(rest.as_ptr(), at.wrapping_add(3), "no copy");
        writer.try_write(b"45678").unwrap();
        // The bytes stay as they were while the pipe goes on.
        drop(reader);
        assert_eq!((&front[..], &rest[..]), (&b"abc"[..], &b"defgh"[..]));
    }
}
