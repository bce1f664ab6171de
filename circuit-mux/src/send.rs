//! The send queue: frames the core picked, their bytes moved out of the
//! streams' pipes, waiting for the driver to write them to the link.
//!
//! The core fills it under its lock ([`Core::transmit_queue`]); the driver
//! writes from it holding no lock, vectored, and drops what the link took.
//! Large data frames keep their payload in the storage it was written into
//! (a [`Chunk`] taken out of the stream's pipe); small frames and control
//! frames are copied into gathered runs of bytes between them.
//!
//! [`Core::transmit_queue`]: crate::Core

use std::collections::VecDeque;
use std::io::IoSlice;

use circuit_frame::DATA_HEADER_LEN;
use circuit_stream::Chunk;

/// Gathered runs of bytes kept for reuse once written.
const SPARE_RUNS: usize = 4;

/// One entry of the queue, in wire order.
#[derive(Debug)]
enum Entry {
    /// Frames encoded into one run of bytes.
    Bytes(Vec<u8>),
    /// A data frame: its header, and its payload still in its pipe's
    /// storage.
    Frame([u8; DATA_HEADER_LEN], Chunk),
}

impl Entry {
    fn len(&self) -> usize {
        match self {
            Entry::Bytes(bytes) => bytes.len(),
            Entry::Frame(header, payload) => header.len() + payload.len(),
        }
    }
}

/// Frames waiting to be written, in order; see the module docs.
#[derive(Debug, Default)]
pub(crate) struct SendQueue {
    entries: VecDeque<Entry>,
    /// Bytes of the front entry the link took already.
    written: usize,
    /// Unwritten bytes at the front the driver copied to write next:
    /// nothing goes ahead of them.
    pinned: usize,
    /// Unwritten bytes at the front that must go before any frame put
    /// [`ahead`](Out::ahead): up to our HELLO, which the peer must read
    /// before any other link-control message.
    floor: usize,
    /// Emptied runs of bytes, for the next ones.
    spare: Vec<Vec<u8>>,
}

/// Where the core puts the frames it picks: the driver's [`SendQueue`], or
/// a plain buffer for [`Core::transmit`](crate::Core::transmit).
pub(crate) trait Out {
    /// Bytes put in and not written yet.
    fn queued(&self) -> usize;
    /// The run of bytes at the end, for frames encoded in place.
    fn tail(&mut self) -> &mut Vec<u8>;
    /// Appends a data frame whose payload is moved in.
    fn frame(&mut self, header: [u8; DATA_HEADER_LEN], payload: Chunk);
    /// A run of bytes for frames that go ahead of the data queued: the
    /// first run between entries past what is pinned or behind the
    /// floor. Link control goes there, so that a grant does not wait
    /// behind a queue full of data. Whole frames only.
    fn ahead(&mut self) -> &mut Vec<u8> {
        self.tail()
    }
    /// Nothing put [`ahead`](Out::ahead) from now on goes before the
    /// bytes queued so far.
    fn floor_here(&mut self) {}
}

impl Out for Vec<u8> {
    fn queued(&self) -> usize {
        self.len()
    }

    fn tail(&mut self) -> &mut Vec<u8> {
        self
    }

    fn frame(&mut self, header: [u8; DATA_HEADER_LEN], payload: Chunk) {
        self.extend_from_slice(&header);
        self.extend_from_slice(&payload);
    }
}

impl Out for SendQueue {
    fn queued(&self) -> usize {
        self.entries.iter().map(Entry::len).sum::<usize>() - self.written
    }

    fn tail(&mut self) -> &mut Vec<u8> {
        let at = match self.entries.back() {
            Some(Entry::Bytes(_)) => self.entries.len() - 1,
            _ => self.entries.len(),
        };
        self.run_at(at)
    }

    fn frame(&mut self, header: [u8; DATA_HEADER_LEN], payload: Chunk) {
        self.entries.push_back(Entry::Frame(header, payload));
    }

    fn ahead(&mut self) -> &mut Vec<u8> {
        // The first entry that starts at or past the bytes to keep first.
        let keep = self.written + self.pinned.max(self.floor);
        let mut start = 0;
        let mut at = 0;
        while at < self.entries.len() && start < keep {
            start += self.entries[at].len();
            at += 1;
        }
        match at < self.entries.len() {
            true => self.run_at(at),
            false => self.tail(),
        }
    }

    fn floor_here(&mut self) {
        self.floor = self.queued();
    }
}

impl SendQueue {
    /// The run of bytes at entry `at` (at most one past the last): the
    /// entry there if it is one, else a new run put there.
    fn run_at(&mut self, at: usize) -> &mut Vec<u8> {
        if !matches!(self.entries.get(at), Some(Entry::Bytes(_))) {
            let run = self.spare.pop().unwrap_or_default();
            self.entries.insert(at, Entry::Bytes(run));
        }
        match &mut self.entries[at] {
            Entry::Bytes(run) => run,
            // Made a run of bytes just above if it was not one.
            Entry::Frame(..) => unreachable!("a run of bytes is at {at}"),
        }
    }

    /// The driver copied the first `n` unwritten bytes to write them:
    /// nothing may go ahead of them.
    pub(crate) fn pin(&mut self, n: usize) {
        self.pinned = n;
    }

    /// Whether every byte put in was written.
    pub(crate) fn is_empty(&self) -> bool {
        // A run of bytes may be left empty by a turn that encoded nothing.
        self.entries.iter().all(|e| e.len() == 0)
    }

    /// The unwritten bytes, in order, as up to `slices.len()` slices;
    /// returns how many were filled.
    pub(crate) fn slices<'a>(&'a self, slices: &mut [IoSlice<'a>]) -> usize {
        self.slices_after(0, slices)
    }

    /// [`slices`](SendQueue::slices) of the unwritten bytes after the
    /// first `skip`.
    pub(crate) fn slices_after<'a>(&'a self, skip: usize, slices: &mut [IoSlice<'a>]) -> usize {
        let mut filled = 0;
        let mut skip = self.written + skip;
        for entry in &self.entries {
            let parts: [&[u8]; 2] = match entry {
                Entry::Bytes(run) => [run, &[]],
                Entry::Frame(header, payload) => [header, payload],
            };
            for part in parts {
                let part = match skip.checked_sub(part.len()) {
                    Some(left) => {
                        skip = left;
                        continue;
                    }
                    None => &part[std::mem::take(&mut skip)..],
                };
                if part.is_empty() {
                    continue;
                }
                let Some(slot) = slices.get_mut(filled) else {
                    return filled;
                };
                *slot = IoSlice::new(part);
                filled += 1;
            }
        }
        filled
    }

    /// Copies up to `max` of the unwritten bytes, in order, to `out`.
    pub(crate) fn copy_front(&self, out: &mut Vec<u8>, max: usize) {
        let mut slices = [IoSlice::new(&[]); 64];
        let n = self.slices(&mut slices);
        for slice in &slices[..n] {
            let room = max.saturating_sub(out.len());
            if room == 0 {
                return;
            }
            out.extend_from_slice(&slice[..slice.len().min(room)]);
        }
    }

    /// The length of the first entry, header and payload, if it is a data
    /// frame none of which was written or copied to be written.
    pub(crate) fn front_frame_len(&mut self) -> Option<usize> {
        while self.written == 0 && self.entries.front().is_some_and(|e| e.len() == 0) {
            self.pop_front();
        }
        match self.entries.front() {
            Some(frame @ Entry::Frame(..)) if self.written == 0 && self.pinned == 0 => {
                Some(frame.len())
            }
            _ => None,
        }
    }

    /// The unwritten bytes before the first whole data frame of `large`
    /// bytes or more, if one is queued behind other bytes: for a link that
    /// is a pipe, such a frame is handed over, not copied in with them.
    pub(crate) fn bytes_before_frame_of(&self, large: usize) -> Option<usize> {
        let mut before = 0;
        for (i, entry) in self.entries.iter().enumerate() {
            let whole = i > 0 || self.written == 0;
            if whole && matches!(entry, Entry::Frame(..)) && entry.len() >= large {
                return (before > 0).then_some(before);
            }
            before += entry.len() - if i == 0 { self.written } else { 0 };
        }
        None
    }

    /// Moves out the first entry, a data frame ([`front_frame_len`]
    /// said so), to be handed to the link whole.
    ///
    /// [`front_frame_len`]: SendQueue::front_frame_len
    pub(crate) fn take_front_frame(&mut self) -> Option<([u8; DATA_HEADER_LEN], Chunk)> {
        self.front_frame_len()?;
        let Some(Entry::Frame(header, payload)) = self.entries.pop_front() else {
            return None;
        };
        self.floor = self.floor.saturating_sub(header.len() + payload.len());
        Some((header, payload))
    }

    /// Drops the first `n` unwritten bytes: the link took them. Payloads
    /// written whole give their room back to their pipes.
    pub(crate) fn advance(&mut self, mut n: usize) {
        self.pinned = self.pinned.saturating_sub(n);
        self.floor = self.floor.saturating_sub(n);
        while n > 0 {
            let Some(front) = self.entries.front() else {
                debug_assert!(false, "the link took more than was offered");
                return;
            };
            let left = front.len() - self.written;
            if n < left {
                self.written += n;
                return;
            }
            n -= left;
            self.written = 0;
            self.pop_front();
        }
        // Entries left empty (a run nothing was encoded into) go too.
        while self.entries.front().is_some_and(|e| e.len() == 0) && self.written == 0 {
            self.pop_front();
        }
    }

    fn pop_front(&mut self) {
        if let Some(Entry::Bytes(mut run)) = self.entries.pop_front() {
            if self.spare.len() < SPARE_RUNS && run.capacity() <= 1 << 20 {
                run.clear();
                self.spare.push(run);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(bytes: &[u8]) -> Chunk {
        let (reader, writer) = circuit_stream::stream();
        writer.try_write(bytes).unwrap();
        let mut cx = std::task::Context::from_waker(futures::task::noop_waker_ref());
        match reader.poll_take(&mut cx) {
            std::task::Poll::Ready(Ok(chunk)) => chunk,
            other => panic!("{other:?}"),
        }
    }

    fn unwritten(q: &SendQueue) -> Vec<u8> {
        let mut out = Vec::new();
        q.copy_front(&mut out, usize::MAX);
        out
    }

    /// A queue of a control run, then two data frames.
    fn queued() -> SendQueue {
        let mut q = SendQueue::default();
        q.tail().extend_from_slice(b"hi");
        q.frame(*b"HEAD_A", chunk(b"aaaa"));
        q.frame(*b"HEAD_B", chunk(b"bbbb"));
        q
    }

    #[test]
    fn frames_put_ahead_go_at_the_first_boundary_past_what_must_stay_first() {
        // Nothing to keep first: into the run at the front.
        let mut q = queued();
        q.ahead().extend_from_slice(b"G");
        assert_eq!(unwritten(&q), b"hiGHEAD_AaaaaHEAD_Bbbbb");
        // A floor at the end: behind everything.
        let mut q = queued();
        q.floor_here();
        q.ahead().extend_from_slice(b"G");
        q.ahead().extend_from_slice(b"g");
        assert_eq!(unwritten(&q), b"hiHEAD_AaaaaHEAD_BbbbbGg");
        // A floor after the first run (a HELLO in it): a run of their own
        // before the first data frame, and the next ones join it.
        let mut q = SendQueue::default();
        q.tail().extend_from_slice(b"hi");
        q.floor_here();
        q.frame(*b"HEAD_A", chunk(b"aaaa"));
        q.frame(*b"HEAD_B", chunk(b"bbbb"));
        q.ahead().extend_from_slice(b"G");
        q.ahead().extend_from_slice(b"g");
        assert_eq!(unwritten(&q), b"hiGgHEAD_AaaaaHEAD_Bbbbb");
        // A frame the link took in part, or the driver copied to write,
        // keeps its place.
        let mut q = queued();
        q.advance(4);
        q.ahead().extend_from_slice(b"G");
        assert_eq!(unwritten(&q), b"AD_AaaaaGHEAD_Bbbbb");
        let mut q = queued();
        q.pin(3);
        q.ahead().extend_from_slice(b"G");
        assert_eq!(unwritten(&q), b"hiHEAD_AaaaaGHEAD_Bbbbb");
        // What the link takes moves the pin and the floor with it.
        let mut q = queued();
        q.pin(12);
        q.advance(2);
        q.ahead().extend_from_slice(b"G");
        assert_eq!(unwritten(&q), b"HEAD_AaaaaGHEAD_Bbbbb");
        let mut q = queued();
        q.floor_here();
        q.advance(22);
        q.frame(*b"HEAD_C", chunk(b"cccc"));
        q.ahead().extend_from_slice(b"G");
        assert_eq!(unwritten(&q), b"GHEAD_Ccccc");
    }

    #[test]
    fn only_a_data_frame_at_the_front_none_of_it_written_is_taken_out_whole() {
        let mut q = queued();
        assert_eq!(q.front_frame_len(), None, "a run of bytes is first");
        q.advance(2);
        assert_eq!(q.front_frame_len(), Some(10));
        q.pin(3);
        assert_eq!(q.front_frame_len(), None, "copied to be written");
        assert!(q.take_front_frame().is_none());
        q.pin(0);
        q.advance(1);
        assert_eq!(q.front_frame_len(), None, "written in part");
        // Taken out, it moves the floor: what goes ahead still goes after
        // the bytes that must go first.
        let mut q = queued();
        q.advance(2);
        q.floor_here();
        let (header, payload) = q.take_front_frame().expect("a frame first");
        assert_eq!((&header, &*payload), (b"HEAD_A", &b"aaaa"[..]));
        q.ahead().extend_from_slice(b"G");
        assert_eq!(unwritten(&q), b"HEAD_BbbbbG");
        // A run left empty at the front is passed over.
        let mut q = SendQueue::default();
        q.tail();
        q.frame(*b"HEAD_C", chunk(b"cc"));
        assert_eq!(q.front_frame_len(), Some(8));
    }

    #[test]
    fn the_bytes_before_a_large_whole_frame_are_counted_from_what_is_unwritten() {
        // "hi", then frames of 10 bytes each.
        let q = queued();
        assert_eq!(q.bytes_before_frame_of(10), Some(2));
        assert_eq!(q.bytes_before_frame_of(11), None, "none that large");
        let mut q = queued();
        q.advance(1);
        assert_eq!(q.bytes_before_frame_of(10), Some(1));
        q.advance(1);
        assert_eq!(q.bytes_before_frame_of(10), None, "one at the front");
        q.advance(3);
        assert_eq!(
            q.bytes_before_frame_of(10),
            Some(7),
            "the rest of a frame written in part"
        );
    }

    #[test]
    fn what_a_write_took_goes_and_the_rest_stays_in_order() {
        let mut q = SendQueue::default();
        q.tail().extend_from_slice(b"ctl");
        q.frame(*b"HEADER", chunk(b"payload"));
        q.tail().extend_from_slice(b"small");
        let all = b"ctlHEADERpayloadsmall".to_vec();
        assert_eq!(q.queued(), all.len());
        assert_eq!(unwritten(&q), all);
        let mut slices = [IoSlice::new(&[]); 8];
        assert_eq!(q.slices(&mut slices), 4);
        // Every cut: the rest is what was not taken, and takes the slices
        // it needs.
        for cut in 0..=all.len() {
            let mut q = SendQueue::default();
            q.tail().extend_from_slice(b"ctl");
            q.frame(*b"HEADER", chunk(b"payload"));
            q.tail().extend_from_slice(b"small");
            q.advance(cut);
            assert_eq!(unwritten(&q), &all[cut..], "cut at {cut}");
            assert_eq!(q.queued(), all.len() - cut);
            assert_eq!(q.is_empty(), cut == all.len());
        }
        // Slices fill at most what they are given.
        let mut two = [IoSlice::new(&[]); 2];
        assert_eq!(q.slices(&mut two), 2);
        assert_eq!((&*two[0], &*two[1]), (&b"ctl"[..], &b"HEADER"[..]));
    }
}
