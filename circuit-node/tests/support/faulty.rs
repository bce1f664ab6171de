//! A fault-injecting link for tests: wraps any futures-io byte stream and,
//! from a seed, splits reads and writes down to single bytes, delays them
//! (returns `Pending` after waking itself a random number of times: no real
//! sleep), and cuts the link for good at a random byte.
//!
//! A cut makes every later read and write fail with `ConnectionReset`; the
//! mux driver on top then ends the link and drops this end, which closes
//! the wrapped stream, so the far end sees its link end too.

#![allow(dead_code)]

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::io::{AsyncRead, AsyncWrite};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Which faults a [`Faulty`] link injects.
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    /// Cut the link after a random number of bytes (both ways together)
    /// in `0..cut_within`; `None` never cuts.
    pub cut_within: Option<u64>,
    /// The largest read or write passed through at once (at least 1).
    pub max_chunk: usize,
    /// Chance in 256 that an operation yields first, and how many times at
    /// most it then yields in a row.
    pub delay_chance: u8,
    pub max_yields: u32,
}

impl Faults {
    /// One byte at a time, yielding often, never cut.
    pub fn slow() -> Faults {
        Faults {
            cut_within: None,
            max_chunk: 1,
            delay_chance: 64,
            max_yields: 4,
        }
    }

    /// Small random pieces, yielding sometimes, cut somewhere in the
    /// first `bytes`.
    pub fn cut_within(bytes: u64) -> Faults {
        Faults {
            cut_within: Some(bytes),
            max_chunk: 97,
            delay_chance: 32,
            max_yields: 3,
        }
    }
}

/// A byte stream with injected faults; see the module docs.
pub struct Faulty<IO> {
    io: IO,
    rng: StdRng,
    faults: Faults,
    /// Bytes still allowed before the cut.
    budget: Option<u64>,
    cut: bool,
    /// Yields owed before the next operation goes through.
    yields: u32,
}

impl<IO> Faulty<IO> {
    pub fn new(io: IO, seed: u64, faults: Faults) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let budget = faults.cut_within.map(|n| rng.random_range(0..n.max(1)));
        Faulty {
            io,
            rng,
            faults,
            budget,
            cut: false,
            yields: 0,
        }
    }

    /// Whether the link has been cut.
    pub fn is_cut(&self) -> bool {
        self.cut
    }

    /// `Some(pending or error)` if this operation must not go through now.
    fn interfere<T>(&mut self, cx: &mut Context<'_>) -> Option<Poll<io::Result<T>>> {
        if self.cut {
            return Some(Poll::Ready(Err(reset())));
        }
        if self.yields == 0 && self.rng.random::<u8>() < self.faults.delay_chance {
            self.yields = self.rng.random_range(1..=self.faults.max_yields.max(1));
        }
        if self.yields > 0 {
            self.yields -= 1;
            cx.waker().wake_by_ref();
            return Some(Poll::Pending);
        }
        None
    }

    /// How many of `len` bytes this operation may move.
    fn chunk(&mut self, len: usize) -> usize {
        let mut n = len.min(self.rng.random_range(1..=self.faults.max_chunk.max(1)));
        if let Some(budget) = self.budget {
            n = n.min(usize::try_from(budget).unwrap_or(usize::MAX));
        }
        n
    }

    /// Counts `n` bytes moved; cuts when the budget is spent.
    fn spend(&mut self, n: usize) {
        if let Some(budget) = self.budget.as_mut() {
            *budget = budget.saturating_sub(n as u64);
            if *budget == 0 {
                self.cut = true;
            }
        }
    }

    /// `true` (and the link cut) if no byte may move any more.
    fn exhausted(&mut self) -> bool {
        if self.budget == Some(0) {
            self.cut = true;
        }
        self.cut
    }
}

fn reset() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "faulty link cut")
}

impl<IO: AsyncRead + Unpin> AsyncRead for Faulty<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(p) = this.interfere(cx) {
            return p;
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if this.exhausted() {
            return Poll::Ready(Err(reset()));
        }
        let n = this.chunk(buf.len());
        match Pin::new(&mut this.io).poll_read(cx, &mut buf[..n]) {
            Poll::Ready(Ok(got)) => {
                this.spend(got);
                Poll::Ready(Ok(got))
            }
            other => other,
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Faulty<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(p) = this.interfere(cx) {
            return p;
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if this.exhausted() {
            return Poll::Ready(Err(reset()));
        }
        let n = this.chunk(buf.len());
        match Pin::new(&mut this.io).poll_write(cx, &buf[..n]) {
            Poll::Ready(Ok(put)) => {
                this.spend(put);
                Poll::Ready(Ok(put))
            }
            other => other,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(p) = this.interfere(cx) {
            return p;
        }
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.cut {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_close(cx)
    }
}
