//! The byte store behind a pipe: a ring that hands out contiguous slices.
//!
//! Data lives in at most two regions of one `Vec<u8>`, read in this order:
//!
//! ```text
//! [ B: 0..b_end | free | A: a_start..a_end | free ]
//! ```
//!
//! Writes append to A while there is room after it, then wrap and start B at
//! offset 0 (a "bip buffer"), so a write always gets one contiguous slice and
//! a read always sees one contiguous slice. When A is read empty, B becomes A.
//! Data is moved only when a write fits in neither free part, or when a read
//! asks for more contiguous bytes than A holds.
//!
//! The storage starts empty and grows on demand. Growth leaves room for twice
//! what is buffered, which keeps compaction rare: a pipe bounded at `C` bytes
//! settles at a storage of at most about `2 * C`. A storage of the smallest
//! size goes back (to the [pool](crate::pool)) as soon as the ring is read
//! empty, so that a pipe that carried only small messages and sits idle
//! holds no storage: an idle stream costs its structures alone. Larger
//! storages are kept, so that a pipe carrying bulk data does not give its
//! storage up each time its reader catches up.

use std::ops::Range;

/// The smallest storage allocated, so tiny writes do not grow it byte by byte.
const MIN_STORAGE: usize = 1024;

/// Buffered bytes of one pipe. Invariants: `a_start <= a_end <= buf.len()`;
/// if `b_end > 0` then A is non-empty and `b_end <= a_start`; an empty ring
/// has all three indices at 0.
#[derive(Debug, Default)]
pub(crate) struct Ring {
    buf: Vec<u8>,
    a_start: usize,
    a_end: usize,
    b_end: usize,
}

impl Drop for Ring {
    fn drop(&mut self) {
        crate::pool::give(std::mem::take(&mut self.buf));
    }
}

impl Ring {
    /// Bytes buffered.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.a_end - self.a_start + self.b_end
    }

    /// Drops every buffered byte and the storage.
    pub(crate) fn clear(&mut self) {
        *self = Ring::default();
    }

    /// The first contiguous run of buffered bytes, at least `min` long.
    /// Moves data only if `min` spans the wrap point. The caller checks
    /// `min <= self.len()`.
    #[inline]
    pub(crate) fn front(&mut self, min: usize) -> &[u8] {
        debug_assert!(min <= self.len());
        if self.a_end - self.a_start < min {
            self.join_b_to_a();
        }
        &self.buf[self.a_start..self.a_end]
    }

    /// Removes `n` bytes from the front. The caller checks that `n` is at
    /// most the length of the slice [`front`](Ring::front) returned.
    #[inline]
    pub(crate) fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.a_end - self.a_start);
        self.a_start += n;
        if self.a_start == self.a_end {
            self.a_start = 0;
            self.a_end = self.b_end;
            self.b_end = 0;
            if self.a_end == 0 && self.buf.len() == MIN_STORAGE {
                self.release();
            }
        }
    }

    /// Gives an empty ring's storage back to the pool.
    #[cold]
    #[inline(never)]
    fn release(&mut self) {
        debug_assert_eq!(self.len(), 0);
        crate::pool::give(std::mem::take(&mut self.buf));
    }

    /// Reserves `len` contiguous bytes at the back, lets `f` fill a prefix of
    /// them and keeps that prefix. The reserved bytes hold stale data.
    ///
    /// # Panics
    ///
    /// If `f` claims to have filled more than `len` bytes.
    #[inline]
    pub(crate) fn write_with(&mut self, len: usize, f: impl FnOnce(&mut [u8]) -> usize) -> usize {
        let (start, into_b) = self.reserve(len);
        let filled = f(&mut self.buf[start..start + len]);
        assert!(
            filled <= len,
            "a write callback filled {filled} bytes of the {len} reserved"
        );
        if into_b {
            self.b_end = start + filled;
        } else {
            self.a_end = start + filled;
        }
        filled
    }

    /// Puts `bytes` before everything buffered.
    pub(crate) fn push_front(&mut self, bytes: &[u8]) {
        let k = bytes.len();
        if k == 0 {
            return;
        }
        if self.len() == 0 {
            self.write_with(k, |out| {
                out.copy_from_slice(bytes);
                k
            });
            return;
        }
        if self.a_start - self.b_end >= k {
            self.a_start -= k;
            self.buf[self.a_start..self.a_start + k].copy_from_slice(bytes);
        } else {
            self.rebuild(self.len().saturating_add(k), bytes);
        }
    }

    /// Moves the first contiguous run out into `other`: the storages are
    /// swapped (no copy) when all buffered bytes are contiguous, the run is
    /// copied otherwise. Returns where in `other` the bytes are.
    pub(crate) fn take_front(&mut self, other: &mut Vec<u8>) -> Range<usize> {
        if self.b_end == 0 {
            std::mem::swap(&mut self.buf, other);
            let range = self.a_start..self.a_end;
            self.a_start = 0;
            self.a_end = 0;
            if self.buf.len() == MIN_STORAGE {
                self.release();
            }
            range
        } else {
            // Keep `other` at least as long as it was: its length is storage
            // the ring may get back by a later swap.
            let n = self.a_end - self.a_start;
            if other.len() < n {
                other.resize(n, 0);
            }
            other[..n].copy_from_slice(&self.buf[self.a_start..self.a_end]);
            self.consume(n);
            0..n
        }
    }

    /// Where `len` contiguous free bytes start, and whether they extend B.
    #[inline]
    fn reserve(&mut self, len: usize) -> (usize, bool) {
        if self.b_end > 0 {
            if self.a_start - self.b_end >= len {
                return (self.b_end, true);
            }
        } else {
            if self.buf.len() - self.a_end >= len {
                return (self.a_end, false);
            }
            if self.a_start >= len {
                return (0, true);
            }
        }
        self.make_room(len)
    }

    /// [`reserve`](Ring::reserve) when neither free part has `len` bytes:
    /// moves the data to the start, or into a larger storage.
    #[inline(never)]
    fn make_room(&mut self, len: usize) -> (usize, bool) {
        let needed = self.len().saturating_add(len);
        if needed.saturating_mul(2) <= self.buf.len() {
            self.compact();
        } else {
            self.rebuild(needed, &[]);
        }
        (self.a_end, false)
    }

    /// Makes A hold every buffered byte, moving as little as possible.
    fn join_b_to_a(&mut self) {
        if self.b_end == 0 {
            return;
        }
        if self.buf.len() - self.a_end >= self.b_end {
            self.buf.copy_within(0..self.b_end, self.a_end);
            self.a_end += self.b_end;
            self.b_end = 0;
        } else {
            self.compact();
        }
    }

    /// Moves every buffered byte, in order, to the start of the storage.
    fn compact(&mut self) {
        let len = self.len();
        if self.b_end == 0 {
            self.buf.copy_within(self.a_start..self.a_end, 0);
        } else {
            // [B | free | A] rotated left by a_start is [A | B | free].
            self.buf[..self.a_end].rotate_left(self.a_start);
        }
        self.a_start = 0;
        self.a_end = len;
        self.b_end = 0;
    }

    /// Replaces the storage with a larger one holding `prefix` then the
    /// buffered bytes, with room for `needed` bytes twice over.
    fn rebuild(&mut self, needed: usize, prefix: &[u8]) {
        let size = needed
            .saturating_mul(2)
            .max(MIN_STORAGE)
            .checked_next_power_of_two()
            .unwrap_or(usize::MAX);
        let mut buf = crate::pool::take(size);
        let mut end = 0;
        for part in [
            prefix,
            &self.buf[self.a_start..self.a_end],
            &self.buf[..self.b_end],
        ] {
            buf[end..end + part.len()].copy_from_slice(part);
            end += part.len();
        }
        *self = Ring {
            buf,
            a_start: 0,
            a_end: end,
            b_end: 0,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A tiny deterministic generator, enough to drive the model test.
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 33) as usize) % n.max(1)
        }
    }

    fn check_invariants(ring: &Ring) {
        assert!(ring.a_start <= ring.a_end && ring.a_end <= ring.buf.len());
        if ring.b_end > 0 {
            assert!(ring.a_start < ring.a_end && ring.b_end <= ring.a_start);
        }
        if ring.len() == 0 {
            assert_eq!((ring.a_start, ring.a_end, ring.b_end), (0, 0, 0));
        }
    }

    #[test]
    fn behaves_like_a_deque_under_random_operations() {
        let mut rng = Rng(7);
        let mut ring = Ring::default();
        let mut model = VecDeque::new();
        let mut next = 0u8;
        for _ in 0..200_000 {
            match rng.below(10) {
                0..=4 => {
                    // Keep the model bounded like a pipe of 4 KiB would.
                    let len = rng.below(4096 - model.len().min(4096) + 1);
                    let fill = rng.below(len + 1);
                    let filled = ring.write_with(len, |out| {
                        for b in &mut out[..fill] {
                            *b = next;
                            model.push_back(next);
                            next = next.wrapping_add(1);
                        }
                        fill
                    });
                    assert_eq!(filled, fill);
                }
                5..=8 => {
                    let min = rng.below(model.len() + 1);
                    let front = ring.front(min);
                    assert!(front.len() >= min);
                    let take = rng.below(front.len() + 1);
                    for (i, b) in front[..take].iter().enumerate() {
                        assert_eq!(*b, model[i]);
                    }
                    ring.consume(take);
                    model.drain(..take);
                }
                _ => {
                    let len = rng.below(64);
                    let bytes: Vec<u8> = (0..len).map(|i| i as u8 ^ 0xa5).collect();
                    ring.push_front(&bytes);
                    for b in bytes.iter().rev() {
                        model.push_front(*b);
                    }
                }
            }
            check_invariants(&ring);
            assert_eq!(ring.len(), model.len());
        }
    }

    #[test]
    fn a_read_spanning_the_wrap_point_is_made_contiguous() {
        let mut ring = Ring::default();
        for (byte, len) in [(1, 1024), (1, 1000)] {
            ring.write_with(len, |out| {
                out.fill(byte);
                len
            });
        }
        assert_eq!(ring.buf.len(), 2048);
        ring.front(2000);
        ring.consume(2000);
        // Does not fit after A, fits before it: wraps into B.
        ring.write_with(100, |out| {
            out.fill(2);
            100
        });
        assert!(ring.b_end > 0);
        let front = ring.front(124);
        assert_eq!(front.len(), 124);
        assert_eq!(&front[..24], &[1; 24]);
        assert_eq!(&front[24..], &[2; 100]);
    }

    #[test]
    fn a_small_storage_goes_back_when_read_empty_and_a_large_one_stays() {
        let mut ring = Ring::default();
        ring.write_with(3, |out| {
            out.copy_from_slice(b"abc");
            3
        });
        assert_eq!(ring.buf.len(), MIN_STORAGE);
        ring.consume(2);
        assert_eq!(ring.buf.len(), MIN_STORAGE, "kept while bytes remain");
        ring.consume(1);
        assert!(ring.buf.is_empty(), "an idle ring holds no storage");
        // And it grows again on the next write.
        ring.write_with(1, |out| {
            out[0] = b'd';
            1
        });
        assert_eq!(ring.front(1), b"d");
        ring.consume(1);
        assert!(ring.buf.is_empty());
        // A larger storage is kept for the next bytes.
        let len = 4 * MIN_STORAGE;
        ring.write_with(len, |out| {
            out.fill(7);
            len
        });
        let size = ring.buf.len();
        assert!(size > MIN_STORAGE);
        ring.consume(len);
        assert_eq!(ring.len(), 0);
        assert_eq!(ring.buf.len(), size);
    }

    #[test]
    fn take_front_swaps_storage_when_contiguous() {
        let mut ring = Ring::default();
        ring.write_with(10, |out| {
            out.copy_from_slice(b"0123456789");
            10
        });
        ring.consume(3);
        let mut other = Vec::new();
        let range = ring.take_front(&mut other);
        assert_eq!(&other[range], b"3456789");
        assert_eq!(ring.len(), 0);
    }
}
