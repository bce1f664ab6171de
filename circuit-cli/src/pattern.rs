//! The bytes a bench or demo stream carries: pseudo-random, different per
//! stream and per offset, cheap to make and to check; and
//! [`round_trip`], which sends them to an echo and checks what returns.

use std::time::Duration;

use circuit_stream::Duplex;
use futures::{AsyncReadExt, AsyncWriteExt};

use crate::error::CliError;

/// The period of the pattern: a prime above the largest chunk, so that no
/// two neighbouring chunks carry the same bytes.
const PERIOD: usize = 65_537;

/// The largest chunk [`Pattern::at`] returns.
pub const CHUNK: usize = 64 * 1024;

/// Two periods of pseudo-random bytes; any chunk of a stream is a slice.
#[derive(Debug)]
pub struct Pattern {
    bytes: Vec<u8>,
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
        Pattern { bytes }
    }

    /// The `len` bytes (at most [`CHUNK`]) stream `stream` carries from
    /// `offset` on.
    pub fn at(&self, stream: u32, offset: u64, len: usize) -> &[u8] {
        let start = ((offset + u64::from(stream) * 131) % PERIOD as u64) as usize;
        &self.bytes[start..start + len.min(CHUNK)]
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
    mut echoed: impl FnMut(usize),
) -> Result<(), CliError> {
    let (mut reader, mut writer) = stream.into_split();
    let send = async {
        let mut offset = 0;
        while offset < bytes {
            let len = (bytes - offset).min(CHUNK as u64) as usize;
            AsyncWriteExt::write_all(&mut writer, pattern.at(id, offset, len))
                .await
                .map_err(CliError::io(format!("stream {id}: write")))?;
            offset += len as u64;
        }
        AsyncWriteExt::close(&mut writer)
            .await
            .map_err(CliError::io(format!("stream {id}: close")))
    };
    let check = async {
        let mut buf = vec![0; CHUNK];
        let mut offset = 0;
        loop {
            let read = AsyncReadExt::read(&mut reader, &mut buf);
            let n = tokio::time::timeout(timeout, read)
                .await
                .map_err(|_| CliError::Timeout {
                    what: format!("the echo on stream {id}"),
                    waited: timeout,
                })?
                .map_err(CliError::io(format!("stream {id}: read")))?;
            if n == 0 {
                break;
            }
            if offset + n as u64 > bytes {
                return Err(CliError::Mismatch {
                    stream: id,
                    offset: bytes,
                });
            }
            if let Some(offset) = pattern.mismatch(id, offset, &buf[..n]) {
                return Err(CliError::Mismatch { stream: id, offset });
            }
            offset += n as u64;
            echoed(n);
        }
        if offset < bytes {
            let context = format!("stream {id}: the echo ended at byte {offset} of {bytes}");
            return Err(CliError::io(context)(
                std::io::ErrorKind::UnexpectedEof.into(),
            ));
        }
        Ok(())
    };
    futures::try_join!(send, check).map(drop)
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
}
