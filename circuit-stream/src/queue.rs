//! The byte store behind a pipe: a queue of blocks that the pipe holds only
//! while they hold its bytes.
//!
//! Writes fill the last block and take a new one from the
//! [pool](crate::pool) when it is full; a copying write of 16 KiB or more
//! fills blocks of its own outside the pipe's lock and puts them in whole
//! ([`Filled`]). Reads empty the first block, and a block read empty goes
//! back to the pool at once. The pool hands out the
//! block given back last, so the storage a pipe writes into next is the
//! storage some pipe (this one, or another stream's) has just read from,
//! still in the caches. A pipe's storage is then about what it buffers: a
//! link with hundreds of streams moves their bytes through a few warm
//! blocks, where a storage of its own per pipe, sized to its peak and
//! written round and round, left each stream a working set of its own.
//!
//! Blocks hold at most [`BLOCK`] bytes, unless one write or one read asks
//! for more contiguous bytes than that. Copies into the pipe are split at
//! block ends; a write that must be contiguous (a callback filling the
//! space it is lent) gets a block of its own when the last one has not the
//! room, and the room left in the last one is not used. Storage is at most
//! about twice the bytes buffered, plus one block.
//!
//! The first block of a pipe is small ([`MIN_BLOCK`]) and a new block is
//! twice the last one, up to [`BLOCK`], so that a stream of small messages
//! holds little. A pipe read empty keeps its one block if it has the full
//! size, so that a pipe whose reader keeps up does not go to the pool at
//! each write, and gives a smaller one back, so that an idle stream costs
//! its structures alone.

use std::collections::VecDeque;
use std::ops::Range;

use bytes::Bytes;

/// The smallest block, so tiny writes do not take storage byte by byte.
/// Small, because a stream that carries a few bytes now and then holds a
/// block while they wait: 10,000 streams given a byte each at once hold
/// 10,000 blocks until their readers take the bytes.
pub(crate) const MIN_BLOCK: usize = 16;

/// The size of a full block: the payload of the largest data frame of the
/// circuit protocol, so that a block taken out of a mux's send pipe as a
/// [`Chunk`](crate::Chunk) goes out as one frame, not as a full one and a
/// sliver.
pub(crate) const BLOCK: usize = u16::MAX as usize;

/// The storage of a block: the pipe's own (from the pool, written into),
/// or bytes a writer handed over whole
/// ([`Writer::write_bytes`](crate::Writer::write_bytes)), which are
/// never written into.
#[derive(Debug)]
pub(crate) enum Storage {
    /// Storage from the pool, which goes back there.
    Own(Box<[u8]>),
    /// A writer's bytes (boxed, to keep a block and a reader small).
    Handed(Box<Bytes>),
}

impl Default for Storage {
    fn default() -> Storage {
        Storage::Own(Box::default())
    }
}

impl Storage {
    #[inline]
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Storage::Own(buf) => buf,
            Storage::Handed(bytes) => bytes,
        }
    }

    #[inline]
    fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// Gives storage of the pipe's own back to the pool.
    pub(crate) fn give_back(self) {
        if let Storage::Own(buf) = self {
            crate::pool::give(buf.into_vec());
        }
    }
}

/// One block: bytes `start..end` of `buf` are buffered.
#[derive(Debug)]
struct Block {
    buf: Storage,
    start: usize,
    end: usize,
}

impl Block {
    /// No block: the place of the first one in an empty queue (no
    /// allocation).
    fn none() -> Block {
        Block {
            buf: Storage::default(),
            start: 0,
            end: 0,
        }
    }

    fn new(size: usize) -> Block {
        Block {
            buf: Storage::Own(crate::pool::take(size).into_boxed_slice()),
            start: 0,
            end: 0,
        }
    }

    #[inline]
    fn len(&self) -> usize {
        self.end - self.start
    }

    #[inline]
    fn bytes(&self) -> &[u8] {
        &self.buf.as_slice()[self.start..self.end]
    }

    /// The free space after the bytes: none in handed bytes.
    #[inline]
    fn room(&self) -> usize {
        match &self.buf {
            Storage::Own(buf) => buf.len() - self.end,
            Storage::Handed(_) => 0,
        }
    }

    /// The free space after the bytes, to write into.
    #[inline]
    fn room_mut(&mut self) -> &mut [u8] {
        match &mut self.buf {
            Storage::Own(buf) => &mut buf[self.end..],
            Storage::Handed(_) => &mut [],
        }
    }

    /// The free space before the bytes, to put bytes back into.
    #[inline]
    fn room_before_mut(&mut self) -> &mut [u8] {
        match &mut self.buf {
            Storage::Own(buf) => &mut buf[..self.start],
            Storage::Handed(_) => &mut [],
        }
    }

    /// Storage of the pipe's own of at least the full size.
    #[inline]
    fn is_full_size(&self) -> bool {
        matches!(&self.buf, Storage::Own(buf) if buf.len() >= BLOCK)
    }

    #[inline]
    fn is_none(&self) -> bool {
        self.buf.len() == 0
    }

    fn give_back(self) {
        self.buf.give_back();
    }
}

/// A block a writer fills outside the pipe's lock, then puts in whole
/// ([`Queue::push_filled`]): `len` bytes of storage from the pool, in a
/// block sized as the queue's own are (a power of two from [`MIN_BLOCK`],
/// or [`BLOCK`], or above it in steps of 1 KiB), so storage stays within
/// about twice the bytes.
#[derive(Debug)]
pub(crate) struct Filled(Block);

impl Filled {
    /// Storage for `len` bytes (at least 1), to fill through
    /// [`bytes_mut`](Filled::bytes_mut).
    pub(crate) fn new(len: usize) -> Filled {
        let size = match len {
            // Above a block, in steps of 1 KiB: few sizes for the pool.
            len if len > BLOCK => len.next_multiple_of(1 << 10),
            len if len > BLOCK / 2 => BLOCK,
            len => len.next_power_of_two().max(MIN_BLOCK),
        };
        let mut block = Block::new(size);
        block.end = len;
        Filled(block)
    }

    /// The bytes it holds.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The `len` bytes to fill; they hold stale data until then.
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        let end = self.0.end;
        match &mut self.0.buf {
            Storage::Own(buf) => &mut buf[..end],
            Storage::Handed(_) => &mut [],
        }
    }

    /// Gives the storage back unused.
    pub(crate) fn give_back(self) {
        self.0.give_back();
    }
}

/// Buffered bytes of one pipe, in its blocks: the first one inline (most
/// pipes have one block or none, and need no allocation for the queue),
/// the others after it. Invariants: `len` is the sum of the blocks'
/// lengths; `first` is [`Block::none`] exactly when there is no block;
/// only the last block may be empty, and an empty last block has
/// `start == end == 0`.
#[derive(Debug)]
pub(crate) struct Queue {
    first: Block,
    rest: VecDeque<Block>,
    len: usize,
    /// The size of the last block [taken out](Queue::take_front) while it
    /// still had room and nothing was behind it; 0 once a block was made
    /// since. The next block starts at that size rather than growing again
    /// from the smallest: a reader that takes the block a writer of small
    /// pieces is filling would otherwise make it fill small blocks again
    /// and again (and read them a few KiB at a time).
    taken_size: usize,
}

impl Default for Queue {
    fn default() -> Queue {
        Queue {
            first: Block::none(),
            rest: VecDeque::new(),
            len: 0,
            taken_size: 0,
        }
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        self.clear();
    }
}

impl Queue {
    /// Bytes buffered.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Drops every buffered byte and gives the storage back.
    pub(crate) fn clear(&mut self) {
        while let Some(block) = self.pop_front() {
            block.give_back();
        }
        self.len = 0;
    }

    /// The first contiguous run of buffered bytes, at least `min` long.
    /// Copies bytes only if `min` spans a block's end. The caller checks
    /// `min <= self.len()`.
    #[inline]
    pub(crate) fn front(&mut self, min: usize) -> &[u8] {
        debug_assert!(min <= self.len);
        if self.first.len() < min {
            self.join_front(min);
        }
        self.first.bytes()
    }

    /// Bytes in the first block.
    #[inline]
    pub(crate) fn first_len(&self) -> usize {
        self.first.len()
    }

    /// Removes `n` bytes from the front. The caller checks that `n` is at
    /// most the length of the slice [`front`](Queue::front) returned.
    #[inline]
    pub(crate) fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.first.len());
        if n == 0 {
            return;
        }
        self.first.start += n;
        self.len -= n;
        if self.first.start == self.first.end {
            self.read_empty();
        }
    }

    /// Copies bytes from the front into `out`, across blocks, and removes
    /// them; returns how many: as many as fit, or all there are.
    pub(crate) fn copy_out(&mut self, out: &mut [u8]) -> usize {
        let mut n = 0;
        while n < out.len() && self.len > 0 {
            let front = self.first.bytes();
            let k = front.len().min(out.len() - n);
            out[n..n + k].copy_from_slice(&front[..k]);
            self.consume(k);
            n += k;
        }
        n
    }

    /// The first block was read empty: it goes, unless it is the last one
    /// and has the full size, which then starts over.
    fn read_empty(&mut self) {
        if self.rest.is_empty() && self.first.is_full_size() {
            self.first.start = 0;
            self.first.end = 0;
            return;
        }
        if let Some(block) = self.pop_front() {
            block.give_back();
        }
    }

    /// Reserves `len` contiguous bytes at the back, lets `f` fill a prefix of
    /// them and keeps that prefix. The reserved bytes hold stale data.
    ///
    /// # Panics
    ///
    /// If `f` claims to have filled more than `len` bytes.
    #[inline]
    pub(crate) fn write_with(&mut self, len: usize, f: impl FnOnce(&mut [u8]) -> usize) -> usize {
        let (last, fresh) = self.room_at_back(len, len);
        let filled = f(&mut last.room_mut()[..len]);
        assert!(
            filled <= len,
            "a write callback filled {filled} bytes of the {len} reserved"
        );
        last.end += filled;
        self.len += filled;
        if fresh && filled == 0 {
            // Nothing came: the block is not kept for it.
            self.drop_empty_last();
        }
        filled
    }

    /// Copies `bytes` in at the back, across as many blocks as they need.
    pub(crate) fn extend(&mut self, bytes: &[u8]) {
        self.extend_with(bytes.len(), |at, out| {
            out.copy_from_slice(&bytes[at..at + out.len()]);
        });
    }

    /// Copies `len` bytes in at the back, across as many blocks as they
    /// need: `copy(at, out)` fills `out` with the bytes from offset `at`.
    pub(crate) fn extend_with(&mut self, len: usize, copy: impl Fn(usize, &mut [u8])) {
        let mut at = 0;
        while at < len {
            let (last, _) = self.room_at_back(1, (len - at).min(BLOCK));
            let n = last.room().min(len - at);
            copy(at, &mut last.room_mut()[..n]);
            last.end += n;
            self.len += n;
            at += n;
        }
    }

    /// Puts a block filled outside the lock in at the back, as it is.
    pub(crate) fn push_filled(&mut self, filled: Filled) {
        let block = filled.0;
        if block.len() == 0 {
            block.give_back();
            return;
        }
        if self.last().is_some_and(|last| last.len() == 0) {
            self.drop_empty_last();
        }
        self.len += block.len();
        match self.first.is_none() {
            true => self.first = block,
            false => self.rest.push_back(block),
        }
    }

    /// Puts `bytes` before everything buffered.
    pub(crate) fn push_front(&mut self, bytes: &[u8]) {
        let k = bytes.len();
        if k == 0 {
            return;
        }
        if self.len == 0 {
            self.extend(bytes);
            return;
        }
        if self.first.room_before_mut().len() >= k {
            let at = self.first.start - k;
            self.first.room_before_mut()[at..].copy_from_slice(bytes);
            self.first.start = at;
        } else {
            let mut block = Block::new(Queue::size_for(k));
            block.room_mut()[..k].copy_from_slice(bytes);
            block.end = k;
            let second = std::mem::replace(&mut self.first, block);
            self.rest.push_front(second);
        }
        self.len += k;
    }

    /// Puts `bytes` in at the back as they are (no copy), in blocks of at
    /// most [`BLOCK`] bytes of about the same size.
    pub(crate) fn push_bytes(&mut self, mut bytes: Bytes) {
        if bytes.is_empty() {
            return;
        }
        if self.last().is_some_and(|last| last.len() == 0) {
            self.drop_empty_last();
        }
        let pieces = bytes.len().div_ceil(BLOCK);
        let piece = bytes.len().div_ceil(pieces);
        while !bytes.is_empty() {
            let part = bytes.split_to(piece.min(bytes.len()));
            self.len += part.len();
            let block = Block {
                end: part.len(),
                buf: Storage::Handed(Box::new(part)),
                start: 0,
            };
            match self.first.is_none() {
                true => self.first = block,
                false => self.rest.push_back(block),
            }
        }
    }

    /// Moves the first block out, with its storage (no copy), and returns
    /// where in it the bytes are. The caller checks `self.len() > 0`.
    pub(crate) fn take_front(&mut self) -> (Storage, Range<usize>) {
        debug_assert!(self.len > 0);
        let Some(first) = self.pop_front() else {
            return (Storage::default(), 0..0);
        };
        if self.first.is_none() && first.room() > 0 {
            self.taken_size = first.buf.len();
        }
        self.len -= first.len();
        (first.buf, first.start..first.end)
    }

    /// Makes the first block hold at least `min` bytes by copying the first
    /// blocks into one.
    #[cold]
    #[inline(never)]
    fn join_front(&mut self, min: usize) {
        let mut joined = Block::new(Queue::size_for(min));
        while joined.end < min {
            let Some(block) = self.pop_front() else {
                break;
            };
            let n = block.len();
            if joined.room() < n {
                let mut larger = Block::new(joined.end + n);
                larger.room_mut()[..joined.end].copy_from_slice(joined.bytes());
                larger.end = joined.end;
                std::mem::replace(&mut joined, larger).give_back();
            }
            joined.room_mut()[..n].copy_from_slice(block.bytes());
            joined.end += n;
            block.give_back();
        }
        match self.first.is_none() {
            true => self.first = joined,
            false => {
                let second = std::mem::replace(&mut self.first, joined);
                self.rest.push_front(second);
            }
        }
    }

    /// The size of a block for at least `len` bytes: the full size, or
    /// exactly `len` when that is more.
    fn size_for(len: usize) -> usize {
        len.max(BLOCK)
    }

    /// The size of the next block at the back, for a write of `len`
    /// contiguous bytes: twice the last block's (with no block, the size
    /// of one just taken out unfilled, see `taken_size`), from
    /// [`MIN_BLOCK`] up to [`BLOCK`], and at least `len`.
    fn next_size(&self, len: usize) -> usize {
        let last = self.last().map_or(self.taken_size / 2, |b| b.buf.len());
        let want = len.max(last.saturating_mul(2)).max(MIN_BLOCK);
        if want >= BLOCK {
            want.min(BLOCK).max(len)
        } else {
            want.next_power_of_two().min(BLOCK)
        }
    }

    fn last(&self) -> Option<&Block> {
        match self.rest.back() {
            Some(last) => Some(last),
            None => (!self.first.is_none()).then_some(&self.first),
        }
    }

    /// The last block, with at least `need` bytes of room: a new one (of
    /// [`next_size`](Queue::next_size) for a write of `want`) if the last
    /// has not the room. Says whether the block is new.
    fn room_at_back(&mut self, need: usize, want: usize) -> (&mut Block, bool) {
        let fresh = self.last().is_none_or(|last| last.room() < need);
        if fresh {
            let size = self.next_size(want);
            self.push_block(size);
        }
        // There is a block now: the first one if no other.
        let last = match self.rest.back_mut() {
            Some(last) => last,
            None => &mut self.first,
        };
        (last, fresh)
    }

    fn push_block(&mut self, size: usize) {
        if self.last().is_some_and(|last| last.len() == 0) {
            // An empty last block too small for the write: it goes.
            self.drop_empty_last();
        }
        self.taken_size = 0;
        let block = Block::new(size);
        match self.first.is_none() {
            true => self.first = block,
            false => self.rest.push_back(block),
        }
    }

    /// Takes the first block out; the next one, if any, becomes the first.
    fn pop_front(&mut self) -> Option<Block> {
        if self.first.is_none() {
            return None;
        }
        let next = self.rest.pop_front().unwrap_or(Block::none());
        if self.rest.is_empty() && next.is_none() {
            // An idle pipe holds no storage, not even the queue's.
            self.rest = VecDeque::new();
        }
        Some(std::mem::replace(&mut self.first, next))
    }

    fn drop_empty_last(&mut self) {
        let block = match self.rest.pop_back() {
            Some(block) => block,
            None => std::mem::replace(&mut self.first, Block::none()),
        };
        debug_assert_eq!(block.len(), 0);
        if !block.is_none() {
            block.give_back();
        }
        if self.first.is_none() {
            self.rest = VecDeque::new();
        }
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

    fn blocks(queue: &Queue) -> Vec<&Block> {
        if queue.first.is_none() {
            assert!(queue.rest.is_empty());
            return Vec::new();
        }
        std::iter::once(&queue.first).chain(&queue.rest).collect()
    }

    fn sizes(queue: &Queue) -> Vec<usize> {
        blocks(queue).iter().map(|b| b.buf.len()).collect()
    }

    fn check_invariants(queue: &Queue) {
        let blocks = blocks(queue);
        let sum: usize = blocks.iter().map(|b| b.len()).sum();
        assert_eq!(sum, queue.len);
        for (i, block) in blocks.iter().enumerate() {
            assert!(block.start <= block.end && block.end <= block.buf.len());
            if i + 1 < blocks.len() {
                assert!(block.len() > 0, "only the last block may be empty");
            } else if block.len() == 0 {
                assert_eq!((block.start, block.end), (0, 0));
                assert!(
                    block.buf.len() >= BLOCK,
                    "an empty small block is given back"
                );
            }
        }
        if blocks.is_empty() {
            assert_eq!(queue.rest.capacity(), 0, "an idle queue holds no storage");
        }
    }

    #[test]
    fn behaves_like_a_deque_under_random_operations() {
        let mut rng = Rng(7);
        let mut queue = Queue::default();
        let mut model = VecDeque::new();
        let mut next = 0u8;
        let mut fill = |n: usize, model: &mut VecDeque<u8>| -> Vec<u8> {
            let bytes: Vec<u8> = (0..n)
                .map(|_| {
                    next = next.wrapping_add(1);
                    next
                })
                .collect();
            model.extend(&bytes);
            bytes
        };
        for _ in 0..200_000 {
            // Sizes around the block size now and then.
            let scale = if rng.below(8) == 0 { 3 * BLOCK } else { 4096 };
            match rng.below(15) {
                0..=3 => {
                    let len = rng.below(scale);
                    let filled = rng.below(len + 1);
                    let bytes = fill(filled, &mut model);
                    let n = queue.write_with(len, |out| {
                        assert_eq!(out.len(), len);
                        out[..filled].copy_from_slice(&bytes);
                        filled
                    });
                    assert_eq!(n, filled);
                }
                4..=5 => {
                    let bytes = fill(rng.below(scale), &mut model);
                    queue.extend(&bytes);
                }
                12 => {
                    let bytes = fill(rng.below(scale), &mut model);
                    queue.push_bytes(Bytes::from(bytes));
                }
                13 => {
                    let bytes = fill(rng.below(scale.min(BLOCK)), &mut model);
                    let mut block = Filled::new(bytes.len());
                    block.bytes_mut().copy_from_slice(&bytes);
                    queue.push_filled(block);
                }
                6..=8 => {
                    let min = rng.below(model.len() + 1);
                    let front = queue.front(min);
                    assert!(front.len() >= min);
                    let take = rng.below(front.len() + 1);
                    for (i, b) in front[..take].iter().enumerate() {
                        assert_eq!(*b, model[i]);
                    }
                    queue.consume(take);
                    model.drain(..take);
                }
                14 => {
                    let mut out = vec![0; rng.below(scale)];
                    let n = queue.copy_out(&mut out);
                    assert_eq!(n, out.len().min(model.len()), "all that fits");
                    for (i, b) in out[..n].iter().enumerate() {
                        assert_eq!(*b, model[i]);
                    }
                    model.drain(..n);
                }
                9 => {
                    if queue.len() > 0 {
                        let (buf, range) = queue.take_front();
                        assert!(!range.is_empty());
                        for (i, b) in buf.as_slice()[range.clone()].iter().enumerate() {
                            assert_eq!(*b, model[i]);
                        }
                        model.drain(..range.len());
                    }
                }
                _ => {
                    let len = rng.below(64);
                    let bytes: Vec<u8> = (0..len).map(|i| i as u8 ^ 0xa5).collect();
                    queue.push_front(&bytes);
                    for b in bytes.iter().rev() {
                        model.push_front(*b);
                    }
                }
            }
            check_invariants(&queue);
            assert_eq!(queue.len(), model.len());
        }
    }

    #[test]
    fn a_block_filled_outside_holds_at_most_twice_its_bytes() {
        for (len, size) in [
            (1, MIN_BLOCK),
            (16 << 10, 16 << 10),
            (20 << 10, 32 << 10),
            (BLOCK / 2, 32 << 10),
            (BLOCK / 2 + 1, BLOCK),
            (BLOCK, BLOCK),
        ] {
            let mut block = Filled::new(len);
            assert_eq!(block.len(), len);
            assert_eq!(block.bytes_mut().len(), len);
            assert_eq!(block.0.buf.len(), size, "a block for {len} bytes");
            block.give_back();
        }
        // Put in after a partly written block, it follows it; an empty
        // last block goes first.
        let mut queue = Queue::default();
        queue.extend(b"ab");
        let mut block = Filled::new(3);
        block.bytes_mut().copy_from_slice(b"cde");
        queue.push_filled(block);
        queue.extend(b"f");
        assert_eq!(queue.len(), 6);
        assert_eq!(queue.front(6), b"abcdef");
        queue.consume(6);
        check_invariants(&queue);
    }

    #[test]
    fn a_read_spanning_blocks_is_made_contiguous() {
        let mut queue = Queue::default();
        queue.extend(&[1; 1000]);
        queue.extend(&[2; 100]);
        assert_eq!(
            sizes(&queue).len(),
            2,
            "the second write spans a block's end"
        );
        let front = queue.front(1050);
        assert!(front.len() >= 1050);
        assert_eq!(&front[..1000], &[1; 1000][..]);
        assert_eq!(&front[1000..1050], &[2; 50][..]);
        check_invariants(&queue);
    }

    #[test]
    fn blocks_grow_to_the_full_size_and_a_small_one_goes_back_when_read_empty() {
        let mut queue = Queue::default();
        queue.extend(b"abc");
        assert_eq!(
            sizes(&queue),
            [16],
            "a few bytes waiting hold a small block"
        );
        queue.consume(2);
        assert_eq!(sizes(&queue), [MIN_BLOCK], "kept while bytes remain");
        queue.consume(1);
        assert!(sizes(&queue).is_empty(), "an idle queue holds no storage");
        // Bulk bytes: blocks double up to the full size.
        queue.extend(&vec![7; 4 * BLOCK]);
        assert_eq!(sizes(&queue), [BLOCK; 4]);
        let mut queue = Queue::default();
        for _ in 0..8 {
            queue.extend(&[7; MIN_BLOCK]);
        }
        let m = MIN_BLOCK;
        assert_eq!(sizes(&queue), [m, 2 * m, 4 * m, 8 * m]);
        // A full-size last block read empty is kept for the next bytes.
        let mut queue = Queue::default();
        queue.extend(&vec![7; BLOCK]);
        queue.consume(BLOCK);
        assert_eq!(sizes(&queue), [BLOCK]);
        queue.extend(b"x");
        assert_eq!(queue.front(1), b"x");
    }

    #[test]
    fn a_contiguous_write_larger_than_a_block_gets_its_own() {
        let mut queue = Queue::default();
        queue.extend(b"head");
        let len = BLOCK + 5;
        let n = queue.write_with(len, |out| {
            assert_eq!(out.len(), len);
            out.fill(9);
            len
        });
        assert_eq!(n, len);
        assert_eq!(sizes(&queue), [MIN_BLOCK, len]);
        assert_eq!(queue.front(4), b"head");
        queue.consume(4);
        assert_eq!(queue.front(len).len(), len);
    }

    #[test]
    fn a_block_taken_out_unfilled_is_followed_by_one_of_its_size() {
        // Small writes grow blocks from 1 KiB; the reader takes the one
        // being filled: the next starts at that one's size, once.
        let mut queue = Queue::default();
        for _ in 0..40 {
            queue.extend(&[1; 1000]);
        }
        while sizes(&queue).len() > 1 {
            let _ = queue.take_front();
        }
        let (storage, range) = queue.take_front();
        let taken = storage.as_slice().len();
        assert!(taken > range.len(), "taken with room left");
        queue.extend(&[2; 1000]);
        assert_eq!(sizes(&queue), [taken]);
        // Then blocks double from there, as they do.
        queue.extend(&vec![3; taken]);
        assert_eq!(sizes(&queue), [taken, (2 * taken).min(BLOCK)]);
        // A full block taken out says nothing about the next.
        let mut queue = Queue::default();
        queue.extend(&vec![4; BLOCK]);
        let _ = queue.take_front();
        queue.extend(&[5; 100]);
        assert_eq!(sizes(&queue), [128]);
    }

    #[test]
    fn take_front_moves_the_first_block_out_without_a_copy() {
        let mut queue = Queue::default();
        queue.extend(b"0123456789");
        let ptr = queue.first.buf.as_slice().as_ptr();
        queue.consume(3);
        let (buf, range) = queue.take_front();
        assert_eq!(buf.as_slice().as_ptr(), ptr);
        assert_eq!(&buf.as_slice()[range], b"3456789");
        assert_eq!(queue.len(), 0);
        check_invariants(&queue);
    }

    #[test]
    fn handed_bytes_stay_where_they_are_in_pieces_of_about_one_size() {
        let mut queue = Queue::default();
        queue.extend(b"copied ");
        let bytes = Bytes::from(vec![5; BLOCK + 1]);
        let ptr = bytes.as_ptr();
        queue.push_bytes(bytes);
        assert_eq!(
            sizes(&queue),
            [MIN_BLOCK, BLOCK.div_ceil(2), BLOCK.div_ceil(2)]
        );
        // Later copies go into a block of the pipe's own after them.
        queue.extend(b" after");
        assert_eq!(queue.front(7), b"copied ");
        queue.consume(7);
        let (first, range) = queue.take_front();
        assert_eq!(first.as_slice()[range].as_ptr(), ptr, "not copied");
        // Bytes put back go before handed bytes, in a block of their own.
        queue.push_front(b"back");
        assert_eq!(queue.front(4), b"back");
        check_invariants(&queue);
    }

    #[test]
    fn a_write_that_brings_nothing_keeps_no_new_block() {
        let mut queue = Queue::default();
        assert_eq!(queue.write_with(100, |_| 0), 0);
        assert!(sizes(&queue).is_empty());
        check_invariants(&queue);
    }
}
