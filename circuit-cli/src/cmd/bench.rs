//! `circuit bench`: throughput over concurrent streams (echoed and
//! checked, or one way to a discarding peer), or the latency of one-byte
//! round trips, against a node running `circuit node --echo`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use circuit_node::Node;
use futures::{AsyncReadExt, AsyncWriteExt};
use serde::Serialize;

use crate::cli::BenchArgs;
use crate::error::CliError;
use crate::mesh::{any_ended, check_name, make_node, wait_for_peer, Dialled, Result};
use crate::pattern::{one_way as one_way_send, round_trip_limit, Limit, Pattern};
use crate::progress::{track, Meter, Progress, Target};
use crate::size::format_bytes;

/// What `--json` prints for a throughput run (fields in `bench --help`).
#[derive(Debug, Serialize)]
struct ThroughputReport {
    mode: &'static str,
    direction: &'static str,
    streams: u32,
    seconds: f64,
    bytes: u64,
    bytes_per_sec: f64,
    bits_per_sec: f64,
}

/// What `--json` prints for a latency run (fields in `bench --help`).
#[derive(Debug, Serialize)]
struct LatencyReport {
    mode: &'static str,
    streams: u32,
    seconds: f64,
    count: u32,
    mean_us: f64,
    p50_us: f64,
    p99_us: f64,
}

/// Prints `report` as one line of JSON.
fn print_json(report: &impl Serialize) -> Result<()> {
    let line = serde_json::to_string(report)
        .map_err(|e| CliError::io("write the JSON result")(std::io::Error::other(e)))?;
    println!("{line}");
    Ok(())
}

/// A rate in bits per second for people: kbit/s, Mbit/s or Gbit/s (powers
/// of 10).
pub fn format_bits(bits_per_sec: f64) -> String {
    if bits_per_sec >= 1e9 {
        format!("{:.2} Gbit/s", bits_per_sec / 1e9)
    } else if bits_per_sec >= 1e6 {
        format!("{:.1} Mbit/s", bits_per_sec / 1e6)
    } else {
        format!("{:.1} kbit/s", bits_per_sec / 1e3)
    }
}

/// How much each throughput stream sends.
#[derive(Debug, Clone, Copy)]
enum Amount {
    /// `--bytes`.
    Bytes(u64),
    /// `--duration`.
    For(Duration),
}

/// Runs the bench the arguments ask for.
pub async fn run(args: BenchArgs, timeout: Duration) -> Result<()> {
    check_name("the peer name", &args.peer)?;
    let identity = &args.identity;
    let (node, _, incoming) = make_node(
        &identity.name,
        &identity.protocol,
        false,
        identity.mux_config(),
    )?;
    drop(incoming);
    let mut links =
        vec![Dialled::connect(&node, &args.connect, Default::default(), timeout).await?];
    wait_for_peer(&node, &mut links, &args.peer, timeout).await?;

    let streams = args.streams.unwrap_or(1);
    let bench = async {
        let amount = match (args.latency, args.bytes, args.duration) {
            (Some(count), _, _) => {
                return latency(&node, &args.peer, count, timeout, args.json).await
            }
            (None, Some(bytes), None) => Amount::Bytes(bytes),
            (None, None, Some(duration)) => Amount::For(duration),
            // clap requires one mode.
            _ => {
                return Err(CliError::Usage(
                    "give --bytes SIZE or --duration DURATION, or --latency COUNT",
                ))
            }
        };
        let run = Throughput {
            amount,
            streams,
            one_way: args.one_way,
            lead: args.lead,
            json: args.json,
        };
        run.run(&node, &args.peer, timeout).await
    };
    tokio::pin!(bench);
    tokio::select! {
        result = &mut bench => result,
        e = any_ended(&mut links) => match bench.await {
            // Every stream ends with the link: a stream's error (the
            // epitaph a node sent as it shut down) says more than the
            // link's end.
            Err(stream) => Err(stream),
            Ok(()) => Err(e),
        },
    }
}

/// A throughput run.
#[derive(Debug)]
struct Throughput {
    amount: Amount,
    streams: u32,
    one_way: bool,
    /// With an echo, the most bytes a stream has unechoed.
    lead: Option<u64>,
    json: bool,
}

impl Throughput {
    /// Sends on each of the concurrent streams in 64 KiB writes, up to the
    /// amount; with an echo checks every byte that returns, one-way only
    /// sends and waits for the peer's close. Prints the rate.
    async fn run(&self, node: &Node, peer: &str, timeout: Duration) -> Result<()> {
        let pattern = Arc::new(Pattern::new());
        let meter = Meter::default();
        let start = Instant::now();
        let limit = match self.amount {
            Amount::Bytes(bytes) => Limit::Bytes(bytes),
            Amount::For(duration) => Limit::Until(tokio::time::Instant::now() + duration),
        };
        let mut tasks = Vec::new();
        for stream in 0..self.streams {
            let duplex = node.connect_to_peer(peer).await?;
            let (pattern, meter) = (Arc::clone(&pattern), Arc::clone(&meter));
            let (one_way, lead) = (self.one_way, self.lead);
            tasks.push(tokio::spawn(async move {
                let count = |n: usize| {
                    meter.fetch_add(n as u64, Ordering::Relaxed);
                };
                if one_way {
                    one_way_send(duplex, &pattern, stream, limit, timeout, count).await
                } else {
                    round_trip_limit(duplex, &pattern, stream, limit, lead, timeout, count).await
                }
            }));
        }
        let all = async {
            for task in tasks {
                task.await.map_err(|e| CliError::Io {
                    context: "a stream task".into(),
                    source: std::io::Error::other(e),
                })??;
            }
            Ok::<(), CliError>(())
        };
        let total = match self.amount {
            Amount::Bytes(bytes) => Some(bytes.saturating_mul(u64::from(self.streams))),
            Amount::For(_) => None,
        };
        let progress = Progress::new("bench", total, Target::StderrIfTerminal);
        track(progress, &meter, String::new, all).await?;
        let seconds = start.elapsed().as_secs_f64();
        let bytes = meter.load(Ordering::Relaxed);
        let bytes_per_sec = bytes as f64 / seconds;
        let direction = if self.one_way { "one-way" } else { "echo" };
        if self.json {
            return print_json(&ThroughputReport {
                mode: "throughput",
                direction,
                streams: self.streams,
                seconds,
                bytes,
                bytes_per_sec,
                bits_per_sec: bytes_per_sec * 8.0,
            });
        }
        let each = match self.amount {
            Amount::Bytes(bytes) => format_bytes(bytes),
            Amount::For(duration) => format!("{duration:?}, {} in all", format_bytes(bytes)),
        };
        let how = if self.one_way {
            "sent one way"
        } else {
            "echoed"
        };
        println!(
            "throughput: {:.1} MB/s, {} ({} streams x {each} {how} in {seconds:.2} s)",
            bytes_per_sec / 1e6,
            format_bits(bytes_per_sec * 8.0),
            self.streams,
        );
        Ok(())
    }
}

/// Sends one byte and reads its echo `count` times on one stream; prints
/// the mean, the median and the 99th percentile in microseconds.
async fn latency(node: &Node, peer: &str, count: u32, timeout: Duration, json: bool) -> Result<()> {
    let mut stream = node.connect_to_peer(peer).await?;
    let mut samples = Vec::with_capacity(count as usize);
    let run_start = Instant::now();
    for i in 0..count {
        let byte = [i as u8];
        let start = Instant::now();
        stream
            .write_all(&byte)
            .await
            .map_err(CliError::io("write"))?;
        let mut echo = [0];
        tokio::time::timeout(timeout, stream.read_exact(&mut echo))
            .await
            .map_err(|_| CliError::Timeout {
                what: format!("echo {i}"),
                waited: timeout,
            })?
            .map_err(CliError::io("read"))?;
        samples.push(start.elapsed());
        if echo != byte {
            return Err(CliError::Mismatch {
                stream: 0,
                offset: u64::from(i),
            });
        }
    }
    let seconds = run_start.elapsed().as_secs_f64();
    let _ = stream.close().await;
    samples.sort();
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    let mean = samples.iter().copied().map(micros).sum::<f64>() / samples.len().max(1) as f64;
    let percentile = |p: usize| {
        let index = (samples.len() * p).div_ceil(100).saturating_sub(1);
        samples.get(index).copied().map_or(0.0, micros)
    };
    let (p50, p99) = (percentile(50), percentile(99));
    if json {
        return print_json(&LatencyReport {
            mode: "latency",
            streams: 1,
            seconds,
            count,
            mean_us: mean,
            p50_us: p50,
            p99_us: p99,
        });
    }
    println!(
        "latency: mean {mean:.1} us, p50 {p50:.1} us, p99 {p99:.1} us over {count} round trips"
    );
    Ok(())
}
