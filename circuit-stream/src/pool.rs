//! Storage reuse for pipes: a small per-thread store of the buffers of
//! rings that grew or were dropped, handed to the next ring that needs one
//! of the same size.
//!
//! Without it every new stream grows its pipes from nothing with fresh
//! zeroed allocations (page faults and page clearing in the kernel, or a
//! memset), and a link with many short streams spends more time there
//! than moving bytes. Bounded per thread: at most [`PER_SIZE`] buffers of
//! each power-of-two size up to [`MAX_SIZE`], and [`MAX_BYTES`] in all;
//! anything else is freed as before. Reused buffers hold stale bytes; a
//! ring hands out only bytes written since (its write callbacks get
//! reserved space whose contents are unspecified, as documented).

use std::cell::RefCell;

/// Buffers larger than this are not kept.
pub(crate) const MAX_SIZE: usize = 4 << 20;
/// Buffers kept per size.
pub(crate) const PER_SIZE: usize = 8;
/// Bytes kept per thread, in all.
pub(crate) const MAX_BYTES: usize = 16 << 20;

#[derive(Default)]
struct Store {
    /// Index `k`: buffers of `2^k` bytes.
    sizes: Vec<Vec<Vec<u8>>>,
    bytes: usize,
}

thread_local! {
    static STORE: RefCell<Store> = RefCell::new(Store::default());
}

/// A buffer of exactly `size` bytes (stale contents if reused, zeroes if
/// new).
pub(crate) fn take(size: usize) -> Vec<u8> {
    if size.is_power_of_two() && size <= MAX_SIZE {
        let k = size.trailing_zeros() as usize;
        let reused = STORE
            .try_with(|store| {
                let mut store = store.borrow_mut();
                let buf = store.sizes.get_mut(k)?.pop()?;
                store.bytes -= buf.len();
                Some(buf)
            })
            .ok()
            .flatten();
        if let Some(buf) = reused {
            return buf;
        }
    }
    vec![0; size]
}

/// Keeps `buf` for a later [`take`] of its size, if there is room.
pub(crate) fn give(buf: Vec<u8>) {
    let size = buf.len();
    if !size.is_power_of_two() || size > MAX_SIZE || buf.capacity() != size {
        return;
    }
    let k = size.trailing_zeros() as usize;
    // A thread being torn down frees instead.
    let _ = STORE.try_with(|store| {
        let mut store = store.borrow_mut();
        if store.bytes + size > MAX_BYTES {
            return;
        }
        if store.sizes.len() <= k {
            store.sizes.resize_with(k + 1, Vec::new);
        }
        if store.sizes[k].len() < PER_SIZE {
            store.sizes[k].push(buf);
            store.bytes += size;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_given_back_is_taken_again_and_the_store_stays_bounded() {
        let buf = take(1 << 16);
        let ptr = buf.as_ptr();
        give(buf);
        let again = take(1 << 16);
        assert_eq!(again.as_ptr(), ptr, "the same storage comes back");
        assert_eq!(again.len(), 1 << 16);
        // Odd sizes and oversized buffers are not kept.
        give(vec![0; 3000]);
        give(vec![0; MAX_SIZE * 2]);
        STORE.with(|s| assert_eq!(s.borrow().bytes, 0));
        // Never more than MAX_BYTES, nor PER_SIZE of one size.
        for _ in 0..64 {
            give(vec![0; MAX_SIZE]);
        }
        for _ in 0..64 {
            give(vec![0; 1024]);
        }
        STORE.with(|s| {
            let s = s.borrow();
            assert!(s.bytes <= MAX_BYTES);
            assert!(s.sizes.iter().all(|v| v.len() <= PER_SIZE));
        });
    }
}
