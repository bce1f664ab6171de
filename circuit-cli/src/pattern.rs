//! The bytes a bench or demo stream carries: pseudo-random, different per
//! stream and per offset, cheap to make and to check; and
//! [`round_trip`], which sends them to an echo and checks what returns.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use circuit_stream::{Bytes, Duplex};
use futures::future::Either;
use futures::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

use crate::error::CliError;

/// The period of the pattern: a prime above the largest chunk, so that no
/// two neighbouring chunks carry the same bytes.
const PERIOD: usize = 65_537;

/// The largest chunk [`Pattern::at`] returns.
pub const CHUNK: usize = 64 * 1024;

/// Two periods of pseudo-random bytes; any chunk of a stream is a slice.
#[derive(Debug)]
pub struct Pattern {
    bytes: Bytes,
}

impl Pattern {
    /// Makes the pattern (128 KiB).
    pub fn new() -> Pattern {
        let mut state: u32 = 0x9e37_79b9;
        let mut bytes: Vec<u8> = (0..PERIOD)
            .map(|_| {
                // xorshift32: cheap and never constant.
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state as u8
            })
            .collect();
        bytes.extend_from_within(..);
        Pattern {
            bytes: Bytes::from(bytes),
        }
    }

    /// The `len` bytes (at most [`CHUNK`]) stream `stream` carries from
    /// `offset` on.
    pub fn at(&self, stream: u32, offset: u64, len: usize) -> &[u8] {
        &self.bytes[Pattern::range(stream, offset, len)]
    }

    /// [`at`](Pattern::at) as shared bytes, to hand to a stream without a
    /// copy.
    pub fn bytes_at(&self, stream: u32, offset: u64, len: usize) -> Bytes {
        self.bytes.slice(Pattern::range(stream, offset, len))
    }

    fn range(stream: u32, offset: u64, len: usize) -> std::ops::Range<usize> {
        let start = ((offset + u64::from(stream) * 131) % PERIOD as u64) as usize;
        start..start + len.min(CHUNK)
    }

    /// Where `got`, read from `stream` at `offset`, first differs from the
    /// pattern, if anywhere.
    pub fn mismatch(&self, stream: u32, offset: u64, got: &[u8]) -> Option<u64> {
        let mut checked = 0;
        for chunk in got.chunks(CHUNK) {
            let want = self.at(stream, offset + checked as u64, chunk.len());
            if want != chunk {
                let at = want.iter().zip(chunk).position(|(a, b)| a != b);
                return Some(offset + (checked + at.unwrap_or(0)) as u64);
            }
            checked += chunk.len();
        }
        None
    }
}

/// How much a stream sends: a number of bytes, or until a moment.
#[derive(Debug, Clone, Copy)]
pub enum Limit {
    /// This many bytes.
    Bytes(u64),
    /// Whole chunks until this moment has passed.
    Until(tokio::time::Instant),
}

/// How far a sender may run ahead of the echo checked so far
/// (`circuit bench --lead`).
#[derive(Debug)]
struct Lead {
    /// The most bytes written and not yet echoed back and checked.
    bound: u64,
    /// Bytes echoed back and checked.
    echoed: AtomicU64,
    /// Signalled as `echoed` moves.
    moved: tokio::sync::Notify,
}

impl Lead {
    fn new(bound: u64) -> Lead {
        Lead {
            bound,
            echoed: AtomicU64::new(0),
            moved: tokio::sync::Notify::new(),
        }
    }

    /// Waits until `len` more bytes written at `offset` keep the sender
    /// within the bound, or nothing is outstanding (a write larger than the
    /// bound goes alone).
    async fn room(&self, offset: u64, len: usize) {
        loop {
            // Made before the check: a move in between leaves a permit.
            let moved = self.moved.notified();
            let ahead = offset.saturating_sub(self.echoed.load(Ordering::Acquire));
            if ahead == 0 || ahead + len as u64 <= self.bound {
                return;
            }
            moved.await;
        }
    }

    /// Records that the echo up to `offset` is checked.
    fn echoed(&self, offset: u64) {
        self.echoed.store(offset, Ordering::Release);
        self.moved.notify_one();
    }
}

/// Writes stream `id`'s pattern on `writer` in [`CHUNK`] writes up to
/// `limit` (each within `lead`, if given), then closes it; calls `sent(n)`
/// for each `n` written and returns the bytes written.
async fn send(
    writer: &mut circuit_stream::Writer,
    pattern: &Pattern,
    id: u32,
    limit: Limit,
    lead: Option<&Lead>,
    mut sent: impl FnMut(usize),
) -> Result<u64, CliError> {
    let mut offset = 0;
    loop {
        let len = match limit {
            Limit::Bytes(bytes) if offset >= bytes => break,
            Limit::Bytes(bytes) => (bytes - offset).min(CHUNK as u64) as usize,
            Limit::Until(end) if tokio::time::Instant::now() >= end => break,
            Limit::Until(_) => CHUNK,
        };
        if let Some(lead) = lead {
            lead.room(offset, len).await;
        }
        // Handed over, not copied: the link sends from the pattern itself.
        writer
            .write_bytes(pattern.bytes_at(id, offset, len))
            .await
            .map_err(|e| CliError::io(format!("stream {id}: write"))(e.into()))?;
        offset += len as u64;
        sent(len);
    }
    AsyncWriteExt::close(writer)
        .await
        .map_err(CliError::io(format!("stream {id}: close")))?;
    Ok(offset)
}

/// Writes `bytes` of stream `id`'s pattern on `stream` in [`CHUNK`]
/// writes, then closes its write half; meanwhile reads the echo until the
/// echo closes, checking every byte and calling `echoed(n)` for each `n`
/// checked. A read waits at most `timeout`. A wrong byte, or too many, is
/// [`CliError::Mismatch`]; an echo that ends short is an I/O error
/// (`UnexpectedEof`).
pub async fn round_trip(
    stream: Duplex,
    pattern: &Pattern,
    id: u32,
    bytes: u64,
    timeout: Duration,
    echoed: impl FnMut(usize),
) -> Result<(), CliError> {
    round_trip_limit(
        stream,
        pattern,
        id,
        Limit::Bytes(bytes),
        None,
        timeout,
        echoed,
    )
    .await
    .map(drop)
}

/// [`round_trip`] sending up to `limit`, and with `lead` never more than
/// that many bytes ahead of the echo checked so far (a write of [`CHUNK`]
/// goes alone if it is larger); returns the bytes echoed (all that were
/// sent).
pub async fn round_trip_limit(
    stream: Duplex,
    pattern: &Pattern,
    id: u32,
    limit: Limit,
    lead: Option<u64>,
    timeout: Duration,
    mut echoed: impl FnMut(usize),
) -> Result<u64, CliError> {
    let (mut reader, mut writer) = stream.into_split();
    // What the sender wrote in all, once it has closed (u64::MAX before,
    // with a time limit): an echo past it is too long.
    let total = AtomicU64::new(match limit {
        Limit::Bytes(bytes) => bytes,
        Limit::Until(_) => u64::MAX,
    });
    let lead = lead.map(Lead::new);
    let send = async {
        let sent = send(&mut writer, pattern, id, limit, lead.as_ref(), drop).await?;
        total.store(sent, Ordering::Relaxed);
        Ok::<_, CliError>(())
    };
    let check = async {
        let mut offset = 0;
        loop {
            // Checked where the stream holds them: no copy.
            let read = AsyncBufReadExt::fill_buf(&mut reader);
            let got = tokio::time::timeout(timeout, read)
                .await
                .map_err(|_| CliError::Timeout {
                    what: format!("the echo on stream {id}"),
                    waited: timeout,
                })?
                .map_err(CliError::io(format!("stream {id}: read")))?;
            if got.is_empty() {
                break;
            }
            // A chunk at a time, each consumed once checked: its room (the
            // peer's credit) goes back while the rest is checked.
            let got = &got[..got.len().min(CHUNK)];
            let n = got.len();
            let bytes = total.load(Ordering::Relaxed);
            if offset + n as u64 > bytes {
                return Err(CliError::Mismatch {
                    stream: id,
                    offset: bytes,
                });
            }
            if let Some(offset) = pattern.mismatch(id, offset, got) {
                return Err(CliError::Mismatch { stream: id, offset });
            }
            AsyncBufReadExt::consume_unpin(&mut reader, n);
            offset += n as u64;
            if let Some(lead) = &lead {
                lead.echoed(offset);
            }
            echoed(n);
        }
        // The echo closes after our close: the total is known by now.
        let bytes = total.load(Ordering::Relaxed);
        if offset < bytes {
            let context = format!("stream {id}: the echo ended at byte {offset} of {bytes}");
            return Err(CliError::io(context)(
                std::io::ErrorKind::UnexpectedEof.into(),
            ));
        }
        Ok(offset)
    };
    // A failed write waits for the reader: when the far node closed the
    // stream (shutting down, say), the reader has its epitaph, while the
    // writer only sees the link end after it.
    let (send, check) = (std::pin::pin!(send), std::pin::pin!(check));
    match futures::future::select(send, check).await {
        Either::Left((Ok(()), check)) => check.await,
        Either::Left((Err(write), check)) => Err(check.await.err().unwrap_or(write)),
        Either::Right((Ok(echoed), send)) => send.await.map(|()| echoed),
        Either::Right((Err(read), _)) => Err(read),
    }
}

/// Writes stream `id`'s pattern on `stream` up to `limit`, calling
/// `sent(n)` for each `n` written, then closes its write half and waits
/// (at most `timeout` per read) until the peer closes its side, reading
/// and dropping whatever it sends meanwhile. Returns the bytes sent.
pub async fn one_way(
    stream: Duplex,
    pattern: &Pattern,
    id: u32,
    limit: Limit,
    timeout: Duration,
    sent: impl FnMut(usize),
) -> Result<u64, CliError> {
    let (mut reader, mut writer) = stream.into_split();
    // Read until the peer closes; no bound while we still send (a discard
    // peer says nothing until then).
    let drain = async {
        let mut buf = vec![0; CHUNK];
        while AsyncReadExt::read(&mut reader, &mut buf)
            .await
            .map_err(CliError::io(format!("stream {id}: read")))?
            > 0
        {}
        Ok::<(), CliError>(())
    };
    let mut drain = std::pin::pin!(drain);
    let mut drained = false;
    let mut send = std::pin::pin!(send(&mut writer, pattern, id, limit, None, sent));
    let sent = loop {
        tokio::select! {
            result = &mut send => break result?,
            result = &mut drain, if !drained => {
                result?;
                drained = true;
            }
        }
    };
    if !drained {
        tokio::time::timeout(timeout, drain)
            .await
            .map_err(|_| CliError::Timeout {
                what: format!("the peer to close stream {id}"),
                waited: timeout,
            })??;
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_and_offsets_differ_and_check() {
        let p = Pattern::new();
        assert_ne!(p.at(0, 0, 64), p.at(1, 0, 64));
        assert_ne!(p.at(0, 0, 64), p.at(0, CHUNK as u64, 64));
        let chunk = p.at(3, 1000, CHUNK).to_vec();
        assert_eq!(p.mismatch(3, 1000, &chunk), None);
        let mut bad = chunk;
        bad[77] ^= 1;
        assert_eq!(p.mismatch(3, 1000, &bad), Some(1077));
    }

    #[test]
    fn a_lead_holds_the_sender_until_the_echo_catches_up() {
        use futures::FutureExt;
        let lead = Lead::new(128 * 1024);
        let chunk = CHUNK as u64;
        // Two chunks fit; a third waits until the first is echoed.
        assert!(lead.room(0, CHUNK).now_or_never().is_some());
        assert!(lead.room(chunk, CHUNK).now_or_never().is_some());
        let mut third = Box::pin(lead.room(2 * chunk, CHUNK));
        assert!((&mut third).now_or_never().is_none());
        lead.echoed(chunk - 1);
        assert!((&mut third).now_or_never().is_none());
        lead.echoed(chunk);
        assert!(third.now_or_never().is_some());
        // A write larger than the bound goes once nothing is outstanding.
        let small = Lead::new(1);
        assert!(small.room(0, CHUNK).now_or_never().is_some());
        assert!(small.room(chunk, CHUNK).now_or_never().is_none());
        small.echoed(chunk);
        assert!(small.room(chunk, CHUNK).now_or_never().is_some());
    }
}
