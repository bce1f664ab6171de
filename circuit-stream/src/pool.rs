//! Storage reuse for pipes: a small process-wide store of the buffers of
//! rings that grew or were dropped, and of chunks that were done with,
//! handed to the next ring that needs one of the same size.
//!
//! Without it every new stream grows its pipes from nothing with fresh
//! zeroed allocations (page faults and page clearing in the kernel, or a
//! memset), and a link with many short streams spends more time there
//! than moving bytes. The store is shared by all threads: a mux's driver
//! drops the chunks it took from a stream's pipe on its own thread, while
//! the stream's writer grows the pipe again on another, so stores of one
//! thread each filled up on one side and ran dry on the other (256 streams
//! in one process spent 8 % of their time in memset and more in page
//! faults). Bounded: at most [`PER_SIZE`] buffers of each power-of-two
//! size up to [`MAX_SIZE`], and [`MAX_BYTES`] in all; anything else is
//! freed as before. Reused buffers hold stale bytes; a ring hands out only
//! bytes written since (its write callbacks get reserved space whose
//! contents are unspecified, as documented).

use std::sync::{Mutex, PoisonError};

/// Buffers larger than this are not kept.
pub(crate) const MAX_SIZE: usize = 4 << 20;
/// Buffers kept per size.
pub(crate) const PER_SIZE: usize = 32;
/// Bytes kept in all.
pub(crate) const MAX_BYTES: usize = 32 << 20;

/// Buffers by size, within the bounds above.
struct Store {
    /// Index `k`: buffers of `2^k` bytes.
    sizes: Vec<Vec<Vec<u8>>>,
    bytes: usize,
}

impl Store {
    const fn new() -> Store {
        Store {
            sizes: Vec::new(),
            bytes: 0,
        }
    }

    fn take(&mut self, size: usize) -> Option<Vec<u8>> {
        if !size.is_power_of_two() || size > MAX_SIZE {
            return None;
        }
        let buf = self.sizes.get_mut(size.trailing_zeros() as usize)?.pop()?;
        self.bytes -= buf.len();
        Some(buf)
    }

    /// Keeps `buf` if it fits the bounds; gives it back if not.
    fn give(&mut self, buf: Vec<u8>) -> Option<Vec<u8>> {
        let size = buf.len();
        if !size.is_power_of_two()
            || size > MAX_SIZE
            || buf.capacity() != size
            || self.bytes + size > MAX_BYTES
        {
            return Some(buf);
        }
        let k = size.trailing_zeros() as usize;
        if self.sizes.len() <= k {
            self.sizes.resize_with(k + 1, Vec::new);
        }
        if self.sizes[k].len() >= PER_SIZE {
            return Some(buf);
        }
        self.sizes[k].push(buf);
        self.bytes += size;
        None
    }
}

static STORE: Mutex<Store> = Mutex::new(Store::new());

/// A buffer of exactly `size` bytes (stale contents if reused, zeroes if
/// new).
pub(crate) fn take(size: usize) -> Vec<u8> {
    let reused = STORE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take(size);
    reused.unwrap_or_else(|| vec![0; size])
}

/// Keeps `buf` for a later [`take`] of its size, if there is room.
pub(crate) fn give(buf: Vec<u8>) {
    if buf.capacity() == 0 {
        return;
    }
    let refused = STORE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .give(buf);
    // Freed outside the lock.
    drop(refused);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_given_back_is_taken_again_and_the_store_stays_bounded() {
        let mut store = Store::new();
        let buf = vec![0; 1 << 16];
        let ptr = buf.as_ptr();
        assert!(store.give(buf).is_none());
        let again = store.take(1 << 16).unwrap();
        assert_eq!(again.as_ptr(), ptr, "the same storage comes back");
        assert_eq!(again.len(), 1 << 16);
        assert!(store.take(1 << 16).is_none());
        // Odd sizes and oversized buffers are not kept.
        assert!(store.give(vec![0; 3000]).is_some());
        assert!(store.give(vec![0; MAX_SIZE * 2]).is_some());
        assert_eq!(store.bytes, 0);
        // Never more than MAX_BYTES, nor PER_SIZE of one size.
        for _ in 0..64 {
            let _ = store.give(vec![0; MAX_SIZE]);
        }
        for _ in 0..64 {
            let _ = store.give(vec![0; 1024]);
        }
        assert!(store.bytes <= MAX_BYTES);
        assert!(store.sizes.iter().all(|v| v.len() <= PER_SIZE));
    }

    #[test]
    fn the_store_is_shared_by_threads() {
        // A size no other test uses.
        let size = MAX_SIZE / 2;
        let given = std::thread::spawn(move || {
            let buf = vec![7; size];
            let ptr = buf.as_ptr() as usize;
            give(buf);
            ptr
        })
        .join()
        .unwrap();
        let taken = take(size);
        assert_eq!(taken.as_ptr() as usize, given);
        give(taken);
    }
}
