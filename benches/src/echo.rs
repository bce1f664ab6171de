//! Echoed streams: the echo server, the byte pattern streams carry and
//! check, and the workloads built from them.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use futures::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader,
};

use crate::config::CHUNK;

/// The reading half of a stream, whatever carries it, read where its
/// bytes lie: a circuit stream's reader lends the bytes in its pipe (no
/// copy); any other stream is read through a [`BufReader`] of `CHUNK`
/// bytes ([`buffered`]), one copy into it as a plain read into a buffer
/// would make.
pub type BoxRead = Box<dyn AsyncBufRead + Send + Unpin>;

/// `r` behind a [`BufReader`] of `CHUNK` bytes, as a [`BoxRead`].
pub fn buffered(r: impl AsyncRead + Send + Unpin + 'static) -> BoxRead {
    Box::new(BufReader::with_capacity(CHUNK, r))
}
/// The writing half of a stream, whatever carries it.
pub type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// Something that opens streams whose far end echoes them back.
pub trait Open: Send + Sync {
    /// Opens a stream, split in two halves.
    fn open(&self) -> impl Future<Output = (BoxRead, BoxWrite)> + Send;
}

impl<T: Open> Open for Arc<T> {
    fn open(&self) -> impl Future<Output = (BoxRead, BoxWrite)> + Send {
        T::open(self)
    }
}

/// The far end: writes back what it reads, in reads of up to `CHUNK`
/// bytes, until end of stream, then closes its writing half. It reads and
/// writes in turn (serial), which suits a mux's stream, whose pipes buffer
/// while it writes. A raw TCP connection echoed this way is read only
/// between writes: the raw TCP baseline is
/// [`duplex_echo`](crate::tcp::duplex_echo), and this one over TCP is the
/// old baseline (`raw_serial`).
pub async fn echo<S: AsyncRead + AsyncWrite + Unpin>(mut s: S) {
    let mut buf = vec![0; CHUNK];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if s.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
    let _ = s.close().await;
}

/// Twice `CHUNK` bytes of a pattern of period `CHUNK` without shorter
/// period: stream `seed` carries byte `(offset + shift(seed)) % CHUNK`.
pub fn pattern() -> &'static [u8] {
    static PATTERN: OnceLock<Vec<u8>> = OnceLock::new();
    PATTERN.get_or_init(|| {
        (0..2 * CHUNK)
            .map(|i| {
                let x = ((i % CHUNK) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                (x >> 56) as u8 ^ (x >> 23) as u8
            })
            .collect()
    })
}

/// Where in the pattern stream `seed` starts; 0 for stream 0.
pub fn shift(seed: usize) -> usize {
    seed.wrapping_mul(4099) % CHUNK
}

/// Writes `total` bytes of stream `seed` in `CHUNK` writes, then closes.
pub async fn send(mut w: BoxWrite, seed: usize, total: usize) {
    let pattern = pattern();
    let mut off = 0;
    while off < total {
        let start = (off + shift(seed)) % CHUNK;
        let n = (total - off).min(CHUNK);
        w.write_all(&pattern[start..start + n])
            .await
            .expect("write");
        off += n;
    }
    w.close().await.expect("close");
}

/// Reads `total` bytes of stream `seed` and checks every one, where it
/// lies ([`BoxRead`]), `CHUNK` bytes at a time: each is consumed once
/// checked, so its room goes back (and a circuit stream's credit with it)
/// while the rest is checked.
pub async fn receive(mut r: BoxRead, seed: usize, total: usize) {
    let pattern = pattern();
    let mut off = 0;
    while off < total {
        let got = r.fill_buf().await.expect("read");
        assert!(
            !got.is_empty(),
            "stream {seed} ended at {off} of {total} bytes"
        );
        let n = got.len().min(CHUNK);
        assert!(off + n <= total, "stream {seed}: more than {total} bytes");
        let start = (off + shift(seed)) % CHUNK;
        assert!(
            got[..n] == pattern[start..start + n],
            "stream {seed}: wrong bytes at offset {off}"
        );
        r.consume_unpin(n);
        off += n;
    }
}

/// `streams` streams at once, each echoing `each` bytes: every stream is
/// opened in turn, its writer and reader run as two tasks; returns when
/// all are done.
pub async fn bulk(to: &impl Open, streams: usize, each: usize) {
    let mut tasks = Vec::with_capacity(2 * streams);
    for seed in 0..streams {
        let (r, w) = to.open().await;
        tasks.push(tokio::spawn(send(w, seed, each)));
        tasks.push(tokio::spawn(receive(r, seed, each)));
    }
    for t in tasks {
        t.await.expect("stream task");
    }
}

/// Opens a stream, echoes one byte, drops the stream.
pub async fn ping(to: &impl Open) {
    let (mut r, mut w) = to.open().await;
    w.write_all(b"?").await.expect("write");
    w.flush().await.expect("flush");
    let mut byte = [0];
    r.read_exact(&mut byte).await.expect("read");
    assert_eq!(&byte, b"?");
}
