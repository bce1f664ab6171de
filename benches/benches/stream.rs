//! `circuit-stream`: throughput of one in-process pipe.
//!
//! 256 MiB go from a writer task to a reader task on a 2-worker tokio
//! runtime, through a pipe of 256 KiB, in writes of 64 KiB and of 1 KiB;
//! the reader reads into a 64 KiB buffer. Beside `circuit-stream`, the same
//! run measures `tokio::io::duplex` and `piper::pipe` of the same capacity,
//! so the figure that matters is the ratio.
//!
//! Functions of the `stream` group, each with the write size as parameter:
//! - `circuit`: `Writer` / `Reader` through futures-io (`write_all`, `read`).
//! - `circuit_in_place`: `Writer::write` filling reserved space and
//!   `Reader::read` copying out of the pipe: the native callback API.
//! - `circuit_handed`: `Writer::write_bytes` handing over `Bytes` (shared
//!   slices of one buffer, no copy into the pipe; pieces under 4 KiB are
//!   copied all the same) and the futures-io reader.
//! - `tokio_duplex`, `piper`: the baselines, through their own io traits.
//!
//! Run: `cargo bench -p circuit-benches --bench stream`
//! (smoke test: append `-- --test`).

use std::future::Future;
use std::hint::black_box;
use std::io;
use std::time::Duration;

use circuit_benches::runtime::plain_runtime as runtime;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tokio::runtime::Runtime;

/// Bytes moved per iteration.
const TOTAL: usize = 256 << 20;
/// The capacity of every pipe, circuit-stream's default.
const CAPACITY: usize = circuit_stream::DEFAULT_CAPACITY;
/// The reader's buffer.
const READ_BUF: usize = 64 << 10;

/// Runs a writer and a reader as two tasks and waits for both; the reader
/// returns how many bytes it got.
fn run<W, R>(rt: &Runtime, writer: W, reader: R)
where
    W: Future<Output = ()> + Send + 'static,
    R: Future<Output = usize> + Send + 'static,
{
    rt.block_on(async {
        let w = tokio::spawn(writer);
        let r = tokio::spawn(reader);
        w.await.expect("writer task");
        assert_eq!(r.await.expect("reader task"), TOTAL);
    });
}

/// The writing half of a pipe, through the io traits it speaks.
trait Sink: Send + 'static {
    /// Writes all of `data`.
    fn write_all<'a>(
        &'a mut self,
        data: &'a [u8],
    ) -> impl Future<Output = io::Result<()>> + Send + 'a;
    /// Ends the stream: futures-io `close`, tokio `shutdown`.
    fn close(&mut self) -> impl Future<Output = io::Result<()>> + Send;
}

/// The reading half of a pipe, through the io traits it speaks.
trait Source: Send + 'static {
    /// Reads what is there into `buf`; 0 at the end of the stream.
    fn read<'a>(
        &'a mut self,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a;
}

/// A pipe half used through futures-io (`AsyncWriteExt`, `AsyncReadExt`).
struct Futures<T>(T);

/// A pipe half used through tokio's io traits.
struct Tokio<T>(T);

/// `Sink` and `Source` for `$wrapper`, through the io traits of `$io`
/// (`futures` or `tokio`); `$close` ends a stream.
macro_rules! halves_through {
    ($wrapper:ident, $io:ident, $close:ident) => {
        impl<T: $io::io::AsyncWrite + Unpin + Send + 'static> Sink for $wrapper<T> {
            fn write_all<'a>(
                &'a mut self,
                data: &'a [u8],
            ) -> impl Future<Output = io::Result<()>> + Send + 'a {
                $io::io::AsyncWriteExt::write_all(&mut self.0, data)
            }

            fn close(&mut self) -> impl Future<Output = io::Result<()>> + Send {
                $io::io::AsyncWriteExt::$close(&mut self.0)
            }
        }

        impl<T: $io::io::AsyncRead + Unpin + Send + 'static> Source for $wrapper<T> {
            fn read<'a>(
                &'a mut self,
                buf: &'a mut [u8],
            ) -> impl Future<Output = io::Result<usize>> + Send + 'a {
                $io::io::AsyncReadExt::read(&mut self.0, buf)
            }
        }
    };
}

halves_through!(Futures, futures, close);
halves_through!(Tokio, tokio, shutdown);

/// Through one pipe: a writer task writes `TOTAL` bytes in writes of
/// `chunk` bytes, then ends the stream; a reader task reads into a
/// `READ_BUF` buffer until the end. Both use the pipe's own io traits.
fn through(rt: &Runtime, reader: impl Source, writer: impl Sink, chunk: usize) {
    let data = vec![0x5a; chunk];
    run(
        rt,
        async move {
            let mut writer = writer;
            for _ in 0..TOTAL / chunk {
                writer.write_all(&data).await.expect("write");
            }
            writer.close().await.expect("close");
        },
        read_all(reader),
    );
}

/// Reads into a `READ_BUF` buffer until the end; returns the bytes read.
async fn read_all(mut reader: impl Source) -> usize {
    let mut buf = vec![0; READ_BUF];
    let mut total = 0;
    loop {
        let n = reader.read(&mut buf).await.expect("read");
        if n == 0 {
            return total;
        }
        total += black_box(&buf[..n]).len();
    }
}

fn circuit(rt: &Runtime, chunk: usize) {
    let (reader, writer) = circuit_stream::stream_with_capacity(CAPACITY);
    through(rt, Futures(reader), Futures(writer), chunk);
}

fn circuit_in_place(rt: &Runtime, chunk: usize) {
    let (reader, writer) = circuit_stream::stream_with_capacity(CAPACITY);
    let data = vec![0x5a; chunk];
    run(
        rt,
        async move {
            for _ in 0..TOTAL / chunk {
                writer
                    .write(chunk, |out| {
                        out.copy_from_slice(&data);
                        chunk
                    })
                    .await
                    .expect("write");
            }
        },
        async move {
            let mut buf = vec![0; READ_BUF];
            let mut total = 0;
            while let Ok(n) = reader
                .read(1, |seen| {
                    let n = seen.len().min(buf.len());
                    buf[..n].copy_from_slice(&seen[..n]);
                    (n, n)
                })
                .await
            {
                total += black_box(&buf[..n]).len();
            }
            total
        },
    );
}

fn circuit_handed(rt: &Runtime, chunk: usize) {
    let (reader, writer) = circuit_stream::stream_with_capacity(CAPACITY);
    let data = circuit_stream::Bytes::from(vec![0x5a; chunk]);
    run(
        rt,
        async move {
            for _ in 0..TOTAL / chunk {
                writer.write_bytes(data.clone()).await.expect("write");
            }
        },
        read_all(Futures(reader)),
    );
}

fn tokio_duplex(rt: &Runtime, chunk: usize) {
    let (reader, writer) = tokio::io::duplex(CAPACITY);
    through(rt, Tokio(reader), Tokio(writer), chunk);
}

fn piper(rt: &Runtime, chunk: usize) {
    let (reader, writer) = piper::pipe(CAPACITY);
    through(rt, Futures(reader), Futures(writer), chunk);
}

/// One pipe implementation, run with a write size.
type Case = fn(&Runtime, usize);

fn stream(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("stream");
    group
        .throughput(Throughput::Bytes(TOTAL as u64))
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    let cases: [(&str, Case); 5] = [
        ("circuit", circuit),
        ("circuit_in_place", circuit_in_place),
        ("circuit_handed", circuit_handed),
        ("tokio_duplex", tokio_duplex),
        ("piper", piper),
    ];
    for chunk in [64 << 10, 1 << 10] {
        let label = format!("{}KiB", chunk >> 10);
        for (name, f) in cases {
            group.bench_with_input(BenchmarkId::new(name, &label), &chunk, |b, &chunk| {
                b.iter(|| f(&rt, chunk))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, stream);
criterion_main!(benches);
