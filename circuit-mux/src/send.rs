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
        if !matches!(self.entries.back(), Some(Entry::Bytes(_))) {
            let run = self.spare.pop().unwrap_or_default();
            self.entries.push_back(Entry::Bytes(run));
        }
        match self.entries.back_mut() {
            Some(Entry::Bytes(run)) => run,
            // A run of bytes was just put at the back.
            _ => unreachable!(),
        }
    }

    fn frame(&mut self, header: [u8; DATA_HEADER_LEN], payload: Chunk) {
        self.entries.push_back(Entry::Frame(header, payload));
    }
}

impl SendQueue {
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

    /// Drops the first `n` unwritten bytes: the link took them. Payloads
    /// written whole give their room back to their pipes.
    pub(crate) fn advance(&mut self, mut n: usize) {
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
