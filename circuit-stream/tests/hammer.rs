//! No lost wake-up: many pipes, each with a writer task and a reader task on
//! a multi-threaded executor, move 1 GiB in total through writes and reads
//! of every size and kind, with random yields. Every byte is checked, and a
//! lost wake-up shows as a hang.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use circuit_stream::{stream_unbounded, stream_with_capacity, Reader, StreamError, Writer};
use futures::executor::{block_on, ThreadPool};
use futures::future::join_all;
use futures::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use futures::task::SpawnExt;

const TOTAL: u64 = 1 << 30;

/// splitmix64: a fast, deterministic mixer.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The bytes of a pipe's stream are a function of the pipe's seed and the
/// offset, so a writer can produce and a reader can check any stretch.
fn fill(seed: u64, offset: u64, out: &mut [u8]) {
    let len = out.len();
    let mut i = 0;
    let mut off = offset;
    while i < len {
        let word = mix(seed ^ (off >> 3)).to_le_bytes();
        let at = (off & 7) as usize;
        let n = (8 - at).min(len - i);
        out[i..i + n].copy_from_slice(&word[at..at + n]);
        i += n;
        off += n as u64;
    }
}

fn check(seed: u64, offset: u64, data: &[u8]) -> Result<(), String> {
    let mut i = 0;
    let mut off = offset;
    while i < data.len() {
        let word = mix(seed ^ (off >> 3)).to_le_bytes();
        let at = (off & 7) as usize;
        let n = (8 - at).min(data.len() - i);
        if data[i..i + n] != word[at..at + n] {
            return Err(format!("pipe {seed}: wrong byte near offset {off}"));
        }
        i += n;
        off += n as u64;
    }
    Ok(())
}

/// A small deterministic generator for sizes and choices.
struct Rng(u64);

impl Rng {
    /// Uniform in `1..=max`.
    fn upto(&mut self, max: usize) -> usize {
        self.0 = mix(self.0);
        1 + (self.0 % max.max(1) as u64) as usize
    }

    fn one_in(&mut self, n: usize) -> bool {
        self.upto(n) == 1
    }

    /// Mostly large sizes, sometimes tiny ones.
    fn size(&mut self, max: usize) -> usize {
        if self.one_in(4) {
            self.upto(max.min(16))
        } else {
            self.upto(max)
        }
    }
}

/// Lets other tasks run: wakes itself and returns `Pending` once.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

async fn maybe_yield(rng: &mut Rng) {
    if rng.one_in(8) {
        YieldNow(false).await;
    }
}

struct Plan {
    seed: u64,
    capacity: Option<usize>,
    bytes: u64,
    writer_kind: usize,
    reader_kind: usize,
}

impl Plan {
    /// Writes and reads of at most these sizes can never wait on each other
    /// forever: a writer needing `w` free bytes and a reader needing `r`
    /// buffered bytes are both stuck only if `r > capacity - w + 1`.
    fn max_write(&self) -> usize {
        match self.capacity {
            Some(c) => (c / 2).max(1),
            None => 1 << 16,
        }
    }

    fn max_min(&self) -> usize {
        match self.capacity {
            Some(c) => c - self.max_write() + 1,
            None => 1 << 16,
        }
    }
}

async fn write_side(plan: &Plan, mut writer: Writer) -> Result<(), String> {
    let mut rng = Rng(plan.seed ^ 0xa11ce);
    let mut offset = 0;
    let mut chunk = vec![0; plan.max_write()];
    while offset < plan.bytes {
        let remaining = (plan.bytes - offset).min(usize::MAX as u64) as usize;
        let len = rng.size(plan.max_write()).min(remaining);
        match plan.writer_kind {
            // In place, sometimes filling less than reserved.
            0 => {
                let fill_len = if rng.one_in(3) { rng.upto(len) } else { len };
                let filled = writer
                    .write(len, |out| {
                        fill(plan.seed, offset, &mut out[..fill_len]);
                        fill_len
                    })
                    .await
                    .map_err(|e| format!("write: {e}"))?;
                offset += filled as u64;
            }
            // Whole buffers.
            1 => {
                fill(plan.seed, offset, &mut chunk[..len]);
                writer
                    .write_all(&chunk[..len])
                    .await
                    .map_err(|e| format!("write_all: {e}"))?;
                offset += len as u64;
            }
            // futures-io, partial writes.
            _ => {
                fill(plan.seed, offset, &mut chunk[..len]);
                let n = AsyncWriteExt::write(&mut writer, &chunk[..len])
                    .await
                    .map_err(|e| format!("poll_write: {e}"))?;
                offset += n as u64;
            }
        }
        maybe_yield(&mut rng).await;
    }
    match plan.writer_kind {
        0 => drop(writer),
        1 => writer.close_without_reason(),
        _ => AsyncWriteExt::close(&mut writer)
            .await
            .map_err(|e| e.to_string())?,
    }
    Ok(())
}

async fn read_side(plan: &Plan, mut reader: Reader) -> Result<(), String> {
    let mut rng = Rng(plan.seed ^ 0xb0b);
    let mut offset = 0;
    let mut buf = vec![0; 1 << 16];
    while offset < plan.bytes {
        let remaining = (plan.bytes - offset).min(usize::MAX as u64) as usize;
        match plan.reader_kind {
            // At least `min`, checking what it sees, consuming some of it.
            0 => {
                let min = rng.size(plan.max_min()).min(remaining);
                let consume = rng.upto(usize::MAX - 1);
                let peek = rng.one_in(16);
                offset += reader
                    .read(min, |seen| {
                        if seen.len() < min {
                            return (Err(format!("saw {} bytes, asked for {min}", seen.len())), 0);
                        }
                        let n = if peek { 0 } else { consume % seen.len() + 1 };
                        (check(plan.seed, offset, seen).map(|()| n as u64), n)
                    })
                    .await
                    .map_err(|e| format!("read: {e}"))??;
            }
            // futures-io AsyncRead into a buffer of a random size.
            1 => {
                let len = rng.size(buf.len());
                let n = AsyncReadExt::read(&mut reader, &mut buf[..len])
                    .await
                    .map_err(|e| format!("poll_read: {e}"))?;
                if n == 0 {
                    return Err(format!("end of stream at {offset} of {}", plan.bytes));
                }
                check(plan.seed, offset, &buf[..n])?;
                offset += n as u64;
            }
            // futures-io AsyncBufRead, consuming part of what it sees.
            _ => {
                let seen = reader
                    .fill_buf()
                    .await
                    .map_err(|e| format!("fill_buf: {e}"))?;
                if seen.is_empty() {
                    return Err(format!("end of stream at {offset} of {}", plan.bytes));
                }
                let n = rng.upto(seen.len());
                check(plan.seed, offset, &seen[..n])?;
                reader.consume_unpin(n);
                offset += n as u64;
            }
        }
        maybe_yield(&mut rng).await;
    }
    // Then the end of the stream, without an epitaph.
    let end = match plan.reader_kind {
        0 => reader.read(1, |_| ((), 0)).await == Err(StreamError::Closed(None)),
        1 => AsyncReadExt::read(&mut reader, &mut buf).await.ok() == Some(0),
        _ => reader
            .fill_buf()
            .await
            .map(|b| b.is_empty())
            .unwrap_or(false),
    };
    if !end {
        return Err(format!("pipe {}: no clean end of stream", plan.seed));
    }
    Ok(())
}

fn plans() -> Vec<Plan> {
    let small = [
        (Some(1), 256 << 10),
        (Some(7), 1 << 20),
        (Some(1000), 16 << 20),
    ];
    let large = [
        Some(4096),
        Some(1 << 16),
        Some(65541),
        Some(circuit_stream::DEFAULT_CAPACITY),
        None,
        Some(1 << 20),
        Some(100_000),
        Some(circuit_stream::DEFAULT_CAPACITY),
        Some(1 << 16),
    ];
    let small_total: u64 = small.iter().map(|(_, b)| b).sum();
    let each = (TOTAL - small_total) / large.len() as u64;
    let mut capacities: Vec<(Option<usize>, u64)> = small.to_vec();
    capacities.extend(large.iter().map(|&c| (c, each)));
    let assigned: u64 = capacities.iter().map(|(_, b)| b).sum();
    if let Some(last) = capacities.last_mut() {
        last.1 += TOTAL - assigned;
    }
    capacities
        .into_iter()
        .enumerate()
        .map(|(i, (capacity, bytes))| Plan {
            seed: i as u64 + 1,
            capacity,
            bytes,
            writer_kind: i % 3,
            reader_kind: (i / 3) % 3,
        })
        .collect()
}

#[test]
fn a_gibibyte_through_many_pipes_arrives_intact() {
    let pool = ThreadPool::builder().pool_size(4).create().unwrap();
    let plans = plans();
    assert_eq!(plans.iter().map(|p| p.bytes).sum::<u64>(), TOTAL);
    let mut tasks = Vec::new();
    for plan in plans {
        let plan = std::sync::Arc::new(plan);
        let (reader, writer) = match plan.capacity {
            Some(c) => stream_with_capacity(c),
            None => stream_unbounded(),
        };
        let p = plan.clone();
        tasks.push(
            pool.spawn_with_handle(async move { write_side(&p, writer).await })
                .unwrap(),
        );
        tasks.push(
            pool.spawn_with_handle(async move { read_side(&plan, reader).await })
                .unwrap(),
        );
    }
    for result in block_on(join_all(tasks)) {
        result.unwrap();
    }
}
