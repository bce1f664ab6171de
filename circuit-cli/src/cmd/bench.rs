//! `circuit bench`: throughput over concurrent streams, or the latency of
//! one-byte round trips, against a node running `circuit node --echo`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use circuit_node::Node;
use futures::{AsyncReadExt, AsyncWriteExt};

use crate::cli::BenchArgs;
use crate::error::CliError;
use crate::mesh::{any_ended, check_name, make_node, wait_for_peer, Dialled, Result};
use crate::pattern::{round_trip, Pattern};
use crate::progress::{track, Meter, Progress, Target};
use crate::size::format_bytes;

/// Runs the bench the arguments ask for.
pub async fn run(args: BenchArgs, timeout: Duration) -> Result<()> {
    check_name("the peer name", &args.peer)?;
    let identity = &args.identity;
    let (node, mut peers, incoming) =
        make_node(&identity.name, &identity.protocol, false, identity.credit)?;
    drop(incoming);
    let mut links = vec![Dialled::connect(&node, &args.connect, Default::default()).await?];
    wait_for_peer(&node, &mut peers, &mut links, &args.peer, timeout).await?;

    let bench = async {
        match (args.latency, args.bytes, args.streams) {
            (Some(count), _, _) => latency(&node, &args.peer, count, timeout).await,
            (None, Some(bytes), Some(streams)) => {
                throughput(&node, &args.peer, bytes, streams, timeout).await
            }
            // clap requires a mode, and --streams with --bytes.
            _ => Err(CliError::Usage(
                "give --bytes SIZE --streams S, or --latency COUNT",
            )),
        }
    };
    tokio::select! {
        result = bench => result,
        e = any_ended(&mut links) => Err(e),
    }
}

/// Writes `bytes` on each of `streams` concurrent streams in 64 KiB
/// writes, checks every echoed byte, and prints MB/s (10^6 bytes).
async fn throughput(
    node: &Node,
    peer: &str,
    bytes: u64,
    streams: u32,
    timeout: Duration,
) -> Result<()> {
    let pattern = Arc::new(Pattern::new());
    let meter = Meter::default();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for stream in 0..streams {
        let duplex = node.connect_to_peer(peer).await?;
        let (pattern, meter) = (Arc::clone(&pattern), Arc::clone(&meter));
        tasks.push(tokio::spawn(async move {
            let echoed = |n: usize| {
                meter.fetch_add(n as u64, Ordering::Relaxed);
            };
            round_trip(duplex, &pattern, stream, bytes, timeout, echoed).await
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
    let total = bytes.saturating_mul(u64::from(streams));
    let progress = Progress::new("bench", Some(total), Target::StderrIfTerminal);
    track(progress, &meter, String::new, all).await?;
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "throughput: {:.1} MB/s ({streams} streams x {} echoed in {seconds:.2} s)",
        total as f64 / seconds / 1e6,
        format_bytes(bytes),
    );
    Ok(())
}

/// Sends one byte and reads its echo `count` times on one stream; prints
/// the mean and the 99th percentile in microseconds.
async fn latency(node: &Node, peer: &str, count: u32, timeout: Duration) -> Result<()> {
    let mut stream = node.connect_to_peer(peer).await?;
    let mut samples = Vec::with_capacity(count as usize);
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
    let _ = stream.close().await;
    samples.sort();
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    let mean = samples.iter().copied().map(micros).sum::<f64>() / samples.len().max(1) as f64;
    let p99_index = (samples.len() * 99).div_ceil(100).saturating_sub(1);
    let p99 = samples.get(p99_index).copied().map_or(0.0, micros);
    println!("latency: mean {mean:.1} us, p99 {p99:.1} us over {count} round trips");
    Ok(())
}
