//! Counters a user can read at any time.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};
use std::time::Duration;

/// How a link runs (PROTOCOL.md section 4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LinkMode {
    /// Plain v0 framing (so far: a server whose HELLO is not answered
    /// yet, or a client that has seen no HELLO, says `V0`).
    #[default]
    V0,
    /// Both HELLOs have crossed: streams opened since run under credit.
    Credit,
}

/// A snapshot of a mux's counters ([`Mux::counters`](crate::Mux::counters)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counters {
    /// Link bytes read.
    pub bytes_in: u64,
    /// Link bytes written.
    pub bytes_out: u64,
    /// Frames decoded.
    pub frames_in: u64,
    /// Frames encoded.
    pub frames_out: u64,
    /// Streams open now (either direction still open).
    pub streams_open: u64,
    /// Streams opened so far, by either end.
    pub streams_opened: u64,
    /// Streams fully closed so far.
    pub streams_closed: u64,
    /// Incoming streams refused because of `max_incoming_streams`.
    pub streams_refused: u64,
    /// Errors reported by the application for single streams, and fatal
    /// link errors.
    pub errors: u64,
    /// Application bytes received and not yet read, over all streams, as
    /// the mux last counted them: an upper bound, recounted exactly each
    /// time it reaches the link's receive limit (so it may read up to that
    /// limit while far fewer bytes wait). Each stream's own reader reports
    /// its exact figure (`Reader::buffered`).
    pub receive_buffered: u64,
    /// v0 or credit mode.
    pub mode: LinkMode,
    /// Streams under credit with bytes to send and no credit left, now.
    pub streams_waiting_for_credit: u64,
    /// Bytes granted to the peer by CREDIT messages so far (the 64 KiB
    /// each stream starts with not counted).
    pub bytes_granted: u64,
    /// The smoothed round-trip time measured with PING / PONG, once known.
    pub rtt: Option<Duration>,
}

#[derive(Debug, Default)]
pub(crate) struct AtomicCounters {
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) frames_in: AtomicU64,
    pub(crate) frames_out: AtomicU64,
    pub(crate) streams_open: AtomicU64,
    pub(crate) streams_opened: AtomicU64,
    pub(crate) streams_closed: AtomicU64,
    pub(crate) streams_refused: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) receive_buffered: AtomicU64,
    pub(crate) credit_mode: AtomicU8,
    pub(crate) streams_waiting_for_credit: AtomicU64,
    pub(crate) bytes_granted: AtomicU64,
    /// Microseconds, 0 while unknown.
    pub(crate) rtt_micros: AtomicU64,
}

impl AtomicCounters {
    pub(crate) fn add(field: &AtomicU64, n: u64) {
        field.fetch_add(n, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Counters {
        Counters {
            bytes_in: self.bytes_in.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            frames_in: self.frames_in.load(Relaxed),
            frames_out: self.frames_out.load(Relaxed),
            streams_open: self.streams_open.load(Relaxed),
            streams_opened: self.streams_opened.load(Relaxed),
            streams_closed: self.streams_closed.load(Relaxed),
            streams_refused: self.streams_refused.load(Relaxed),
            errors: self.errors.load(Relaxed),
            receive_buffered: self.receive_buffered.load(Relaxed),
            mode: match self.credit_mode.load(Relaxed) {
                0 => LinkMode::V0,
                _ => LinkMode::Credit,
            },
            streams_waiting_for_credit: self.streams_waiting_for_credit.load(Relaxed),
            bytes_granted: self.bytes_granted.load(Relaxed),
            rtt: match self.rtt_micros.load(Relaxed) {
                0 => None,
                us => Some(Duration::from_micros(us)),
            },
        }
    }
}
