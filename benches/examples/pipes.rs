//! The `stream` group's cases, taken in turns in one process: circuit-stream
//! against `piper` and `tokio::io::duplex`.
//!
//! Criterion runs each case of a group for seconds before the next, so
//! the machine's drift (whole phases here at two thirds of the speed of
//! others) and the order of the cases (the first case of a process runs
//! slower, benches/README.md) fall on one case more than another. This
//! runs the same workload as `benches/stream.rs` (1 GiB by default from a
//! writer task to a reader task on the 2-worker runtime, through a pipe of
//! `circuit_stream::DEFAULT_CAPACITY`, the reader reading into a 64 KiB
//! buffer, both through their io traits) in rounds: each round runs every
//! kind once, the first kind rotating from round to round. It prints each
//! kind's median throughput and, for circuit, the median (lowest-highest)
//! of its per-round ratio to each baseline: runs taken a second apart.
//!
//! Run: `cargo run --release -p circuit-benches --example pipes`
//! (options: `--rounds N` (11), `--write SIZE` in bytes (65536; once per
//! size, repeatable), `--bytes N` (1 GiB)).

use std::hint::black_box;
use std::time::Instant;

use futures::io::{AsyncReadExt, AsyncWriteExt};
use tokio::io::{AsyncReadExt as TokioRead, AsyncWriteExt as TokioWrite};
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

/// The reader's buffer, as in the `stream` group.
const READ_BUF: usize = 64 << 10;

/// The pipes measured; circuit first.
const KINDS: [&str; 3] = ["circuit", "piper", "tokio_duplex"];

/// The writer and reader tasks of one run over a pipe spoken to through
/// futures-io: the writer writes `data` `writes` times and closes; the
/// reader returns the bytes it read.
fn futures_tasks<R, W>(
    mut r: R,
    mut w: W,
    data: Vec<u8>,
    writes: usize,
) -> (JoinHandle<()>, JoinHandle<usize>)
where
    R: futures::io::AsyncRead + Unpin + Send + 'static,
    W: futures::io::AsyncWrite + Unpin + Send + 'static,
{
    let writer = tokio::spawn(async move {
        for _ in 0..writes {
            w.write_all(&data).await.expect("write");
        }
        w.close().await.expect("close");
    });
    let reader = tokio::spawn(async move {
        let mut buf = vec![0; READ_BUF];
        let mut got = 0;
        loop {
            match r.read(&mut buf).await.expect("read") {
                0 => break got,
                n => got += black_box(&buf[..n]).len(),
            }
        }
    });
    (writer, reader)
}

/// [`futures_tasks`] for tokio's duplex, through tokio's io traits.
fn tokio_tasks(
    mut r: tokio::io::DuplexStream,
    mut w: tokio::io::DuplexStream,
    data: Vec<u8>,
    writes: usize,
) -> (JoinHandle<()>, JoinHandle<usize>) {
    let writer = tokio::spawn(async move {
        for _ in 0..writes {
            TokioWrite::write_all(&mut w, &data).await.expect("write");
        }
        w.shutdown().await.expect("shutdown");
    });
    let reader = tokio::spawn(async move {
        let mut buf = vec![0; READ_BUF];
        let mut got = 0;
        loop {
            match TokioRead::read(&mut r, &mut buf).await.expect("read") {
                0 => break got,
                n => got += black_box(&buf[..n]).len(),
            }
        }
    });
    (writer, reader)
}

/// Moves `total` bytes in writes of `write` through a pipe of `kind`;
/// returns the seconds it took.
fn run(rt: &Runtime, kind: &str, total: usize, write: usize) -> f64 {
    let capacity = circuit_stream::DEFAULT_CAPACITY;
    let data = vec![0x5a; write];
    let writes = total / write;
    let start = Instant::now();
    let got = rt.block_on(async move {
        let (writer, reader) = match kind {
            "circuit" => {
                let (r, w) = circuit_stream::stream_with_capacity(capacity);
                futures_tasks(r, w, data, writes)
            }
            "piper" => {
                let (r, w) = piper::pipe(capacity);
                futures_tasks(r, w, data, writes)
            }
            _ => {
                let (r, w) = tokio::io::duplex(capacity);
                tokio_tasks(r, w, data, writes)
            }
        };
        writer.await.expect("writer task");
        reader.await.expect("reader task")
    });
    assert_eq!(got, writes * write, "{kind}: bytes lost");
    start.elapsed().as_secs_f64()
}

/// The median of `v` (sorted in place).
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut rounds = 11;
    let mut writes = Vec::new();
    let mut total = 1 << 30;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| -> usize {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match arg.as_str() {
            "--rounds" => rounds = value("--rounds").max(1),
            "--write" => writes.push(value("--write").max(1)),
            "--bytes" => total = value("--bytes"),
            other => panic!("unknown argument {other}"),
        }
    }
    if writes.is_empty() {
        writes.push(64 << 10);
    }
    let rt = circuit_benches::runtime::plain_runtime();
    for write in writes {
        let total = total.max(write);
        // Seconds per kind, and per round.
        let mut secs = vec![Vec::new(); KINDS.len()];
        for round in 0..rounds {
            for i in 0..KINDS.len() {
                let k = (round + i) % KINDS.len();
                secs[k].push(run(&rt, KINDS[k], total, write));
            }
        }
        let gib = (total / write * write) as f64 / (1u64 << 30) as f64;
        println!("writes of {write} bytes, {rounds} rounds of {gib:.2} GiB each");
        for (k, kind) in KINDS.iter().enumerate() {
            let mut rates: Vec<f64> = secs[k].iter().map(|s| gib / s).collect();
            println!("  {kind:13} median {:6.2} GiB/s", median(&mut rates));
        }
        for (k, kind) in KINDS.iter().enumerate().skip(1) {
            // Circuit's throughput over the baseline's, per round.
            let mut ratios: Vec<f64> = secs[0].iter().zip(&secs[k]).map(|(c, b)| b / c).collect();
            let mid = median(&mut ratios);
            println!(
                "  circuit / {kind}: {mid:.3} per round ({:.3}-{:.3})",
                ratios[0],
                ratios[ratios.len() - 1]
            );
        }
    }
}
