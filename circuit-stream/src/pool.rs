//! Storage reuse for pipes: a small process-wide store of the blocks that
//! pipes were done with, handed to the next pipe that needs one of the same
//! size, the one given back last first (it is the likeliest to be in the
//! caches still).
//!
//! Without it every block would be a fresh allocation: page faults and page
//! clearing in the kernel, or a memset, and cold memory, and a link with
//! many streams would spend more time there than moving bytes. The store is
//! shared by all threads: a mux's driver drops the chunks it took from a
//! stream's pipe on its own thread, while the stream's writer takes new
//! blocks on another, so stores of one thread each would fill up on one side
//! and run dry on the other. Bounded: at most [`PER_SIZE`] buffers of each
//! size, at most [`MAX_SIZES`] sizes, none over [`MAX_SIZE`] bytes, and
//! [`MAX_BYTES`] in all; anything else is freed. Reused buffers hold stale
//! bytes; a pipe hands out only bytes written since (its write callbacks get
//! reserved space whose contents are unspecified, as documented).

use std::cell::RefCell;
use std::sync::{Mutex, PoisonError};

/// Buffers larger than this are not kept.
pub(crate) const MAX_SIZE: usize = 4 << 20;
/// Buffers kept per size: enough for a link of a few hundred busy streams,
/// each of which holds a block or two of the same size at once in its
/// pipes. Blocks go back and come out again in waves as the streams take
/// turns; with 64 a side, 256 streams echoing through one link in memory
/// missed on one 64 KiB take in three, and spent 7 % of their time
/// clearing fresh blocks (benches/README.md, "The block store").
pub(crate) const PER_SIZE: usize = 512;
/// Sizes kept at once.
pub(crate) const MAX_SIZES: usize = 16;
/// Bytes kept in all: what a process may hold unused after a burst, on
/// top of the blocks its pipes hold.
pub(crate) const MAX_BYTES: usize = 64 << 20;

/// Buffers by size, within the bounds above.
struct Store {
    /// Each size kept, with its buffers (never an empty list).
    sizes: Vec<(usize, Vec<Vec<u8>>)>,
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
        let i = self.sizes.iter().position(|(s, _)| *s == size)?;
        let list = &mut self.sizes[i].1;
        let buf = list.pop()?;
        if list.is_empty() {
            self.sizes.swap_remove(i);
        }
        self.bytes -= buf.len();
        Some(buf)
    }

    /// Keeps `buf` if it fits the bounds; gives it back if not.
    fn give(&mut self, buf: Vec<u8>) -> Option<Vec<u8>> {
        let size = buf.len();
        if size == 0 || size > MAX_SIZE || buf.capacity() != size || self.bytes + size > MAX_BYTES {
            return Some(buf);
        }
        let i = match self.sizes.iter().position(|(s, _)| *s == size) {
            Some(i) => i,
            None if self.sizes.len() < MAX_SIZES => {
                self.sizes.push((size, Vec::new()));
                self.sizes.len() - 1
            }
            None => return Some(buf),
        };
        let list = &mut self.sizes[i].1;
        if list.len() >= PER_SIZE {
            return Some(buf);
        }
        list.push(buf);
        self.bytes += size;
        None
    }
}

static STORE: Mutex<Store> = Mutex::new(Store::new());

/// Buffers kept by each thread before the shared store.
pub(crate) const PER_THREAD: usize = 8;
/// Larger buffers go straight to the shared store, so that a thread keeps
/// at most `PER_THREAD` times this.
pub(crate) const PER_THREAD_SIZE: usize = 128 << 10;

thread_local! {
    /// This thread's last buffers given back, the last one at the end: a
    /// thread that takes as many blocks as it gives back (a mux's driver,
    /// which drops the chunks it sent and fills blocks with what it
    /// receives; a task that writes one stream and reads another) goes
    /// without the shared store's lock. What overflows goes to the store,
    /// and so does all of it when the thread ends.
    static LOCAL: RefCell<Local> = const { RefCell::new(Local(Vec::new())) };
}

/// The buffers a thread keeps.
struct Local(Vec<Vec<u8>>);

impl Drop for Local {
    fn drop(&mut self) {
        let mut store = STORE.lock().unwrap_or_else(PoisonError::into_inner);
        for buf in self.0.drain(..) {
            drop(store.give(buf));
        }
    }
}

/// A buffer of exactly `size` bytes (stale contents if reused, zeroes if
/// new).
pub(crate) fn take(size: usize) -> Vec<u8> {
    let local = LOCAL
        .try_with(|local| {
            let mut local = local.try_borrow_mut().ok()?;
            let i = local.0.iter().rposition(|b| b.len() == size)?;
            Some(local.0.remove(i))
        })
        .ok()
        .flatten();
    if let Some(buf) = local {
        return buf;
    }
    let reused = STORE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take(size);
    reused.unwrap_or_else(|| vec![0; size])
}

/// Keeps `buf` for a later [`take`] of its size, if there is room.
pub(crate) fn give(buf: Vec<u8>) {
    // What the store would refuse is freed at once.
    if buf.capacity() == 0 || buf.len() > MAX_SIZE || buf.capacity() != buf.len() {
        return;
    }
    // This thread keeps it, and hands its oldest to the store if full.
    let mut buf = Some(buf);
    let spilled = LOCAL
        .try_with(|local| {
            if buf.as_ref()?.len() > PER_THREAD_SIZE {
                return None;
            }
            let mut local = local.try_borrow_mut().ok()?;
            local.0.push(buf.take()?);
            (local.0.len() > PER_THREAD).then(|| local.0.remove(0))
        })
        .ok()
        .flatten();
    let Some(buf) = buf.or(spilled) else {
        return;
    };
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
        // Oversized buffers are not kept.
        assert!(store.give(vec![0; MAX_SIZE * 2]).is_some());
        assert_eq!(store.bytes, 0);
        // The last given is the first taken.
        let first = vec![0; 3000];
        let second = vec![0; 3000];
        let second_ptr = second.as_ptr();
        assert!(store.give(first).is_none());
        assert!(store.give(second).is_none());
        let taken = store.take(3000).unwrap();
        assert_eq!(taken.as_ptr(), second_ptr);
        assert!(store.take(3000).is_some());
        assert!(
            store.sizes.is_empty(),
            "a size with no buffers is not listed"
        );
        // Never more than PER_SIZE of one size, nor MAX_SIZES sizes, nor
        // MAX_BYTES.
        let kept = (0..2 * PER_SIZE)
            .filter(|_| store.give(vec![0; 1024]).is_none())
            .count();
        assert_eq!(kept, PER_SIZE);
        let large = (0..2 * MAX_BYTES / MAX_SIZE)
            .filter(|_| store.give(vec![0; MAX_SIZE]).is_none())
            .count();
        assert!(large > 0 && large < 2 * MAX_BYTES / MAX_SIZE);
        // Small sizes fit in the bytes left until the sizes run out.
        for size in 1..=2 * MAX_SIZES {
            let _ = store.give(vec![0; size]);
        }
        assert_eq!(store.sizes.len(), MAX_SIZES);
        assert!(store.bytes <= MAX_BYTES);
        assert!(store.sizes.iter().all(|(_, v)| v.len() <= PER_SIZE));
        assert!(store.sizes.len() <= MAX_SIZES);
        assert_eq!(
            store.bytes,
            store.sizes.iter().map(|(s, v)| s * v.len()).sum::<usize>()
        );
    }

    #[test]
    fn a_thread_takes_back_what_it_gave_without_the_store() {
        // Sizes no other test uses.
        let small = 3333;
        let buf = vec![1; small];
        let ptr = buf.as_ptr();
        give(buf);
        let in_store = STORE.lock().unwrap().take(small);
        assert!(in_store.is_none(), "kept by the thread");
        let taken = take(small);
        assert_eq!(taken.as_ptr(), ptr);
        // A large one goes to the store at once.
        let large = PER_THREAD_SIZE + 1;
        give(vec![2; large]);
        let in_store = STORE.lock().unwrap().take(large);
        assert!(in_store.is_some());
        // The oldest of more than PER_THREAD goes to the store.
        let first = vec![3; 4444];
        let first_ptr = first.as_ptr();
        give(first);
        for _ in 0..PER_THREAD {
            give(vec![4; 5555]);
        }
        let spilled = STORE.lock().unwrap().take(4444).expect("spilled");
        assert_eq!(spilled.as_ptr(), first_ptr);
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
