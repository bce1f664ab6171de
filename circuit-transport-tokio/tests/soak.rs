//! Soak: 64 concurrent streams of random sizes between two leaves across
//! three routers, over loopback TCP, while a router-to-router link is cut
//! and dialled again every few seconds.
//!
//! Ignored by default; `.ci/run` runs it for 60 s:
//!
//! ```sh
//! CIRCUIT_SOAK_SECS=60 cargo test --release -p circuit-transport-tokio --test soak -- --ignored --nocapture
//! ```
//!
//! It prints bytes moved, streams completed, streams cut (ended with an
//! error epitaph: expected, a link was cut under them), mismatches and the
//! peak RSS. It fails on any mismatch (a stream that ended cleanly with
//! wrong or missing bytes), on a stream that never ends, on streams left
//! open on a link afterwards, and on a peak RSS over [`RSS_BOUND_MIB`].
//!
//! ```text
//!   l1 --- r1 === r2 --- l2      === : cut and dialled again, in turn
//!           \    |     /
//!            === r3 ---
//! ```

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use circuit_node::{IncomingStreams, Node};
use circuit_transport_tokio::{connect, listen, LinkHandle, Listener};
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};

use common::*;

/// Concurrent streams.
const STREAMS: usize = 64;
/// The largest stream, in bytes.
const MAX_STREAM: u64 = 4 << 20;
/// How often a router-to-router link is cut, and how long it stays down.
const CUT_EVERY: Duration = Duration::from_secs(3);
const CUT_FOR: Duration = Duration::from_millis(700);
/// Peak resident memory allowed for the whole process: five nodes, 64
/// streams with up to 1 MiB receive and 256 KiB send buffers per hop.
/// Measured: 69 MiB in a 20 s run.
const RSS_BOUND_MIB: u64 = 256;

#[derive(Default)]
struct Stats {
    bytes: AtomicU64,
    completed: AtomicU64,
    cut: AtomicU64,
    not_opened: AtomicU64,
    mismatches: AtomicU64,
}

/// A small deterministic generator (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Sizes spread over orders of magnitude: 0 bytes to `MAX_STREAM`.
    fn size(&mut self) -> u64 {
        let bits = self.next() % 23;
        self.next() % ((1 << bits).min(MAX_STREAM) + 1)
    }
}

fn soak_duration() -> Duration {
    let secs = std::env::var("CIRCUIT_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    Duration::from_secs(secs)
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// One stream from the sender's side: header (seed, length), the pattern,
/// close, then the receiver's verdict.
async fn send_one(from: &Node, to: &str, seed: u64, len: u64, stats: &Stats) {
    let mut stream = match from.connect_to_peer(to).await {
        Ok(s) => s,
        Err(_) => {
            stats.not_opened.fetch_add(1, Relaxed);
            tokio::time::sleep(Duration::from_millis(20)).await;
            return;
        }
    };
    let result = async {
        let mut header = [0; 16];
        header[..8].copy_from_slice(&seed.to_le_bytes());
        header[8..].copy_from_slice(&len.to_le_bytes());
        stream.write_all(&header).await?;
        let mut buf = vec![0; 64 * 1024];
        let mut sent = 0;
        while sent < len {
            let n = (len - sent).min(buf.len() as u64) as usize;
            pattern(seed, sent, &mut buf[..n]);
            stream.write_all(&buf[..n]).await?;
            sent += n as u64;
        }
        stream.close().await?;
        let mut verdict = Vec::new();
        stream.read_to_end(&mut verdict).await?;
        Ok::<_, std::io::Error>(verdict)
    }
    .await;
    match result {
        Ok(verdict) if verdict == b"k" => {
            stats.completed.fetch_add(1, Relaxed);
            stats.bytes.fetch_add(len, Relaxed);
        }
        // The receiver saw an error (or a mismatch, counted there).
        Ok(_) | Err(_) => {
            stats.cut.fetch_add(1, Relaxed);
        }
    }
}

/// Checks one incoming stream and answers `k` (all bytes, then a clean
/// end), `x` (a clean end with wrong or missing bytes: a mismatch) or
/// nothing (an error: the stream was cut).
async fn receive_one(stream: circuit_node::IncomingStream, stats: Arc<Stats>) {
    let mut stream = stream.stream;
    let checked = async {
        let mut header = [0; 16];
        let mut have = 0;
        while have < header.len() {
            match stream.read(&mut header[have..]).await? {
                0 => {
                    eprintln!("soak mismatch: clean end after {have} header bytes");
                    return Ok(false);
                }
                n => have += n,
            }
        }
        let seed = u64::from_le_bytes(header[..8].try_into().unwrap());
        let len = u64::from_le_bytes(header[8..].try_into().unwrap());
        let mut buf = vec![0; 64 * 1024];
        let mut want = vec![0; 64 * 1024];
        let mut got = 0;
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                if got != len {
                    eprintln!("soak mismatch: clean end after {got} of {len} bytes (seed {seed:#x})");
                }
                return Ok(got == len);
            }
            if got + n as u64 > len {
                eprintln!("soak mismatch: {} bytes past the {len} announced (seed {seed:#x})", got + n as u64 - len);
                return Ok(false);
            }
            pattern(seed, got, &mut want[..n]);
            if buf[..n] != want[..n] {
                let at = buf[..n].iter().zip(&want[..n]).position(|(a, b)| a != b).unwrap_or(0);
                eprintln!("soak mismatch: wrong byte at offset {} of {len} (read of {n} at {got}, seed {seed:#x})", got + at as u64);
                return Ok(false);
            }
            got += n as u64;
        }
    }
    .await;
    let verdict: &[u8] = match checked {
        Ok(true) => b"k",
        Ok(false) => {
            stats.mismatches.fetch_add(1, Relaxed);
            b"x"
        }
        Err::<_, std::io::Error>(_) => return,
    };
    let _ = stream.write_all(verdict).await;
    let _ = stream.close().await;
}

fn serve(mut incoming: IncomingStreams, stats: Arc<Stats>) {
    tokio::spawn(async move {
        while let Some(stream) = incoming.next().await {
            tokio::spawn(receive_one(stream, Arc::clone(&stats)));
        }
    });
}

async fn dial(from: &Node, to: &Listener) -> LinkHandle {
    connect(from, to.local_addr()).await.expect("dial")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a soak: .ci/run runs it in release for CIRCUIT_SOAK_SECS"]
async fn sixty_four_streams_across_five_nodes_while_links_are_cut() {
    let duration = soak_duration();
    let stats = Arc::new(Stats::default());
    let (l1, mut l1_peers, l1_in) = leaf("l1");
    let (l2, _, l2_in) = leaf("l2");
    let (r1, _, _) = router("r1");
    let (r2, _, _) = router("r2");
    let (r3, _, _) = router("r3");
    let on_r1 = listen(&r1, "127.0.0.1:0").await.unwrap();
    let on_r2 = listen(&r2, "127.0.0.1:0").await.unwrap();
    let on_r3 = listen(&r3, "127.0.0.1:0").await.unwrap();
    let _l1_r1 = dial(&l1, &on_r1).await;
    let _r2_r3 = dial(&r2, &on_r3).await;
    let _l2_r2 = dial(&l2, &on_r2).await;
    let _l2_r3 = dial(&l2, &on_r3).await;
    let mut cuttable = [dial(&r1, &on_r2).await, dial(&r1, &on_r3).await];
    tokio::time::timeout(TEST_LIMIT, reachable(&mut l1_peers, "l2"))
        .await
        .expect("l2 reachable from l1");
    serve(l1_in, Arc::clone(&stats));
    serve(l2_in, Arc::clone(&stats));

    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..STREAMS as u64)
        .map(|w| {
            let (l1, l2) = (l1.clone(), l2.clone());
            let stop = Arc::clone(&stop);
            let stats = Arc::clone(&stats);
            tokio::spawn(async move {
                let mut rng = Rng(w);
                while !stop.load(Relaxed) {
                    let (seed, len) = (rng.next(), rng.size());
                    if seed % 2 == 0 {
                        send_one(&l1, "l2", seed, len, &stats).await;
                    } else {
                        send_one(&l2, "l1", seed, len, &stats).await;
                    }
                }
            })
        })
        .collect();

    let start = Instant::now();
    let mut cuts = 0;
    while start.elapsed() + CUT_EVERY < duration {
        tokio::time::sleep(CUT_EVERY - CUT_FOR).await;
        let which = cuts % 2;
        cuttable[which].shutdown(Duration::ZERO).await;
        tokio::time::sleep(CUT_FOR).await;
        cuttable[which] = dial(&r1, if which == 0 { &on_r2 } else { &on_r3 }).await;
        cuts += 1;
    }
    let remaining = duration.saturating_sub(start.elapsed());
    tokio::time::sleep(remaining).await;
    stop.store(true, Relaxed);
    for worker in workers {
        tokio::time::timeout(TEST_LIMIT, worker)
            .await
            .expect("every stream ends, none hangs")
            .unwrap();
    }

    // Nothing left behind: every link holds only its control stream once
    // the last streams' close frames have crossed.
    let nodes = [&l1, &l2, &r1, &r2, &r3];
    let settled = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let open: u64 = nodes
                .iter()
                .flat_map(|n| n.snapshot().links)
                .map(|l| l.mux.streams_open.saturating_sub(1))
                .sum();
            if open == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let rss_mib = peak_rss_kib() / 1024;
    let s = |c: &AtomicU64| c.load(Relaxed);
    println!(
        "soak: {:.0} s, {cuts} link cuts, {:.1} MiB moved, {} streams completed, {} cut \
         (error epitaph), {} not opened (no route at that moment), {} mismatches, peak RSS {rss_mib} MiB (bound {RSS_BOUND_MIB})",
        start.elapsed().as_secs_f64(),
        s(&stats.bytes) as f64 / (1 << 20) as f64,
        s(&stats.completed),
        s(&stats.cut),
        s(&stats.not_opened),
        s(&stats.mismatches),
    );
    if settled.is_err() {
        for n in nodes {
            println!("{}", n.snapshot());
        }
        panic!("streams left open on a link after every stream ended");
    }
    assert_eq!(
        s(&stats.mismatches),
        0,
        "streams ended cleanly with wrong bytes"
    );
    assert!(s(&stats.completed) > 0, "no stream completed");
    assert!(cuts > 0 || duration < CUT_EVERY * 2, "no link was cut");
    assert!(rss_mib < RSS_BOUND_MIB, "peak RSS {rss_mib} MiB");
}
