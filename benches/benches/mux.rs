//! `circuit-mux`: many streams over one link, beside raw links and yamux.
//!
//! Every workload runs over three links: an in-memory pipe (`memory`),
//! loopback TCP within the process (`tcp`), both with client and server
//! on one tokio runtime with 2 workers, and loopback TCP to a server in a
//! process of its own (`tcp2p`), each process with a runtime of 2 workers:
//! the baseline set-up in benches/README.md, where the targets come from.
//! TCP has `TCP_NODELAY` on, tokio sockets through
//! `circuit_transport_tokio::FuturesIo`. The server echoes every stream
//! back. In each criterion group the same workload
//! runs over
//! - `circuit`: `circuit_mux::Mux` (default `Config`: credit flow control,
//!   `CreditMode::Auto` on both ends, so the link runs in credit mode),
//! - `circuit_v0`: the same with `CreditMode::Off` on both ends (v0
//!   framing); in W1 and W2-16 over every link, in W2-256 and W4 over
//!   `tcp2p` only (to keep the CI smoke run short),
//! - `yamux`: yamux 0.14 (default config) over the same kind of link,
//! - `raw`: the link itself, one connection (`tokio::io::duplex` in memory),
//!   over TCP echoed full duplex by `circuit_benches::tcp::duplex_echo`
//!   (it reads while it writes, 256 KiB at a time); in memory by the serial
//!   `echo`, as circuit's and yamux's streams are,
//! - `raw_serial` (`mux_w1_tcp2p` only): `raw` with the serial echo (read
//!   64 KiB, then write it back, in turn), the baseline before `raw` echoed
//!   full duplex, kept to compare with the older tables,
//! - `circuit_loop_back` (`mux_w1_tcp2p` and `mux_w2_16_tcp2p` only):
//!   `circuit` whose server echoes each stream inside the link
//!   (`Mux::loop_back`), with no copy and no task, as `raw`'s echo copies
//!   nothing; the other circuit kinds echo through the serial `echo`
//!   (two copies), as yamux does,
//!
//! so the figure that matters is the ratio within a group. Over TCP a mux
//! over one connection cannot beat that connection used well: circuit /
//! raw is at most 1, and its distance from 1 is the headroom left. The
//! client is the same on every path (`bulk`: it writes and reads at once,
//! and checks what it reads where it lies, through `AsyncBufRead`: a
//! circuit stream's reader lends the bytes in its pipe, yamux streams and
//! raw connections are read into a 64 KiB `BufReader`, as a plain read
//! into a buffer would be).
//!
//! Workloads (names as in "Baselines: how they are taken" in
//! benches/README.md):
//! - `w1_<link>`: one stream echoes `W1` bytes in 64 KiB writes; throughput
//!   is bytes one way / time from the open to the last echoed byte read and
//!   checked.
//! - `w2_<n>_<link>`: `n` streams at once, each echoing its share; `raw`
//!   moves the same bytes over one connection (the bound a multiplexer over
//!   one connection can reach).
//! - `w4_<link>`: open a stream, echo 1 byte, drop it; time per iteration.
//!   `raw` opens a new connection each time.
//! - `credit_stuck_<memory|tcp2p>`: the stuck consumer. One stream echoes
//!   `W1` bytes over a credit link `alone`, then `with_stuck` on the same
//!   link beside a [`Stuck`] stream (its reader never reads, its writer is
//!   blocked before the measurement), and `v0_alone` over a v0 link. A v0
//!   link with a stuck stream deadlocks by design and is not run.
//!
//! Every circuit link is warmed up before it is measured (one stream
//! echoes a byte, then the muxes must say the mode of the variant), so
//! that the measured streams of a `circuit` link run under credit: a
//! link reaches credit mode only after the server's first data frame.
//!
//! After the groups a report pass (skip it with `CIRCUIT_BENCH_REPORT=0`)
//! prints, for `circuit` and `circuit_v0` over every link, the most a
//! reader held and the peak of `Counters::receive_buffered` during W1 and
//! W2 against the configured limits, the mode (asserted), bytes granted,
//! the round-trip estimate and the client's link bytes per frame; then
//! the stuck consumer (medians of 3 alternated runs, their ratio and what
//! the stuck reader holds: its window), and the mean / p50 / p99 of
//! sequential open + 1-byte echo.
//!
//! Sizes: small by default so that a CI smoke run is quick; set
//! `CIRCUIT_BENCH_FULL=1` for the sizes of the baseline set-up in
//! benches/README.md (W1 256 MiB, W2 16 x 16 MiB and 256 x 1 MiB).
//!
//! Run: `CIRCUIT_BENCH_FULL=1 cargo bench -p circuit-benches --bench mux`
//! (smoke test: `cargo bench -p circuit-benches --bench mux -- --quick`).

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use circuit_benches::config::{criterion, full, report_enabled, Medium, CHUNK, MIB};
use circuit_benches::echo::{bulk, ping};
use circuit_benches::mux::{serve, Kind, Link, Peaks, KINDS};
use circuit_benches::process::serve_if_asked;
use circuit_benches::runtime::{runtime, timed};
use circuit_mux::{Config, LinkMode, Mux};
use criterion::{criterion_group, BenchmarkId, Criterion, SamplingMode, Throughput};
use futures::io::AsyncReadExt;
use tokio::runtime::Runtime;

/// How much each workload moves.
struct Sizes {
    /// W1: bytes echoed over one stream.
    w1: usize,
    /// W2: (streams, bytes each).
    w2: [(usize, usize); 2],
    /// Sequential open + echo rounds timed one by one in the report.
    latency_rounds: usize,
}

fn sizes() -> Sizes {
    if full() {
        Sizes {
            w1: 256 * MIB,
            w2: [(16, 16 * MIB), (256, MIB)],
            latency_rounds: 10_000,
        }
    } else {
        Sizes {
            w1: 16 * MIB,
            w2: [(16, MIB), (256, 64 << 10)],
            latency_rounds: 1_000,
        }
    }
}

/// Where the benches run: in memory, over loopback TCP within this
/// process, and over loopback TCP to a server process.
const MUX_MEDIA: [Medium; 3] = [Medium::Memory, Medium::Tcp, Medium::Process];

/// A stream of a circuit link (client side) whose reader never reads,
/// while a task writes into it without end: the stuck consumer of the
/// issue. Its echo comes back until the client's receive window for it is
/// full; then the server's echo of it blocks, the server's window fills,
/// and the client's writer waits for credit. Under credit nothing else
/// waits for it. On a v0 link it stops the whole link (the client stops
/// reading the link once the stream holds its receive limit, 1 MiB): a
/// deadlock by design, so the benches never run it there.
struct Stuck {
    reader: circuit_stream::Reader,
    writer: tokio::task::JoinHandle<()>,
}

impl Stuck {
    /// Opens the stuck stream on `link` and returns once it is blocked:
    /// its reader holds bytes, a stream of the client waits for credit and
    /// nothing moved for 100 ms. Call within the runtime.
    async fn start(link: &Link) -> Stuck {
        let (client, _) = link.muxes().expect("a circuit link");
        let (reader, writer) = client.open().expect("open").into_split();
        let writer = tokio::spawn(async move {
            let chunk = vec![0x5a; CHUNK];
            while writer.write_all(&chunk).await.is_ok() {}
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        let (mut last, mut since) = (0, Instant::now());
        loop {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let held = reader.buffered();
            if held != last {
                (last, since) = (held, Instant::now());
            }
            let blocked = client.counters().streams_waiting_for_credit > 0;
            if held > 0 && blocked && since.elapsed() >= Duration::from_millis(100) {
                return Stuck { reader, writer };
            }
            assert!(
                Instant::now() < deadline,
                "the stuck stream did not block: its reader holds {held} bytes, blocked {blocked}"
            );
        }
    }

    /// Bytes its reader holds.
    fn held(&self) -> usize {
        self.reader.buffered()
    }

    /// Stops the writer (which closes the stream's sending side) and reads
    /// the stream to its end, so that it ends on both sides before the
    /// next measurement. (Only dropping the reader would leave the stream
    /// blocked for good: the window it holds is full, so the server sends
    /// nothing more for it, the client's mux never sees that the reader
    /// is gone, and no credit is granted again.)
    async fn stop(self) {
        self.writer.abort();
        let _ = self.writer.await;
        let mut reader = self.reader;
        let mut buf = vec![0; CHUNK];
        let drain = async {
            while let Ok(n) = AsyncReadExt::read(&mut reader, &mut buf).await {
                if n == 0 {
                    break;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), drain)
            .await
            .expect("the stuck stream ends once read");
    }
}

/// Where the stuck-consumer groups run: in memory and to a server process.
const STUCK_MEDIA: [Medium; 2] = [Medium::Memory, Medium::Process];

/// `credit_stuck_<link>`: one stream echoes W1's bytes over a credit link,
/// `alone`, then `with_stuck` (on the same link, with a [`Stuck`] stream
/// opened and blocked before the measurement), and `v0_alone` over a v0
/// link. A v0 link with a stuck stream is not run: it deadlocks by design.
fn stuck_groups(c: &mut Criterion) {
    let rt = runtime();
    let w1 = sizes().w1;
    let label = format!("1x{}MiB", w1 / MIB);
    for medium in STUCK_MEDIA {
        let mut group = c.benchmark_group(format!("credit_stuck_{}", medium.name()));
        group
            .throughput(Throughput::Bytes(w1 as u64))
            .sample_size(10)
            .sampling_mode(SamplingMode::Flat);
        let mut bench = |name: &str, link: &Arc<Link>| {
            group.bench_function(BenchmarkId::new(name, &label), |b| {
                b.iter_custom(|iters| {
                    timed(
                        &rt,
                        link,
                        iters,
                        move |l| async move { bulk(&l, 1, w1).await },
                    )
                })
            });
        };
        let link = Arc::new(rt.block_on(Link::new(Kind::Circuit, medium, None)));
        bench("alone", &link);
        let stuck = rt.block_on(Stuck::start(&link));
        let held = stuck.held();
        bench("with_stuck", &link);
        assert_eq!(stuck.held(), held, "the stuck stream moved");
        let (client, _) = link.muxes().expect("a circuit link");
        assert_eq!(client.counters().mode, LinkMode::Credit);
        rt.block_on(stuck.stop());
        drop(link);
        let v0 = Arc::new(rt.block_on(Link::new(Kind::CircuitV0, medium, None)));
        bench("v0_alone", &v0);
        drop(v0);
        group.finish();
    }
}

fn links(rt: &Runtime, medium: Medium) -> Vec<(Kind, Arc<Link>)> {
    KINDS
        .iter()
        .map(|&k| (k, Arc::new(rt.block_on(Link::new(k, medium, None)))))
        .collect()
}

/// Whether `kind` runs in the W2 group of `streams` streams (0: W4) over
/// `medium`: all kinds everywhere, except that `circuit_v0` runs W2-256
/// and W4 over `tcp2p` only, to keep the CI smoke run short (W1 and
/// W2-16 run it over every link).
fn runs(kind: Kind, medium: Medium, streams: usize) -> bool {
    match (kind, medium) {
        (Kind::CircuitV0, Medium::Process) => true,
        (Kind::CircuitV0, _) => streams == 16,
        _ => true,
    }
}

fn throughput_groups(c: &mut Criterion) {
    let rt = runtime();
    let sizes = sizes();
    for medium in MUX_MEDIA {
        let links = links(&rt, medium);

        let mut group = c.benchmark_group(format!("mux_w1_{}", medium.name()));
        group
            .throughput(Throughput::Bytes(sizes.w1 as u64))
            .sample_size(10)
            .sampling_mode(SamplingMode::Flat);
        let label = format!("1x{}MiB", sizes.w1 / MIB);
        // The old serial raw echo beside the full-duplex one, once; and
        // circuit echoing inside the link.
        let process = |kind| {
            let link = rt.block_on(Link::new(kind, medium, None));
            (kind, Arc::new(link))
        };
        let (serial, looped) = match medium {
            Medium::Process => (
                Some(process(Kind::RawSerial)),
                Some(process(Kind::CircuitLoopBack)),
            ),
            _ => (None, None),
        };
        for (kind, link) in links.iter().chain(&serial).chain(&looped) {
            let w1 = sizes.w1;
            group.bench_function(BenchmarkId::new(kind.name(), &label), |b| {
                b.iter_custom(|iters| {
                    timed(
                        &rt,
                        link,
                        iters,
                        move |l| async move { bulk(&l, 1, w1).await },
                    )
                })
            });
        }
        group.finish();
        drop(serial);

        for (streams, each) in sizes.w2 {
            let total = streams * each;
            let mut group = c.benchmark_group(format!("mux_w2_{streams}_{}", medium.name()));
            group
                .throughput(Throughput::Bytes(total as u64))
                .sample_size(10)
                .sampling_mode(SamplingMode::Flat);
            let label = format!("{streams}x{}KiB", each >> 10);
            let looped = looped.as_ref().filter(|_| streams == 16);
            for (kind, link) in links
                .iter()
                .filter(|(k, _)| runs(*k, medium, streams))
                .chain(looped)
            {
                // Raw: the same bytes over one connection.
                let (n, size) = match kind {
                    Kind::Raw | Kind::RawSerial => (1, total),
                    _ => (streams, each),
                };
                group.bench_function(BenchmarkId::new(kind.name(), &label), |b| {
                    b.iter_custom(|iters| {
                        timed(
                            &rt,
                            link,
                            iters,
                            move |l| async move { bulk(&l, n, size).await },
                        )
                    })
                });
            }
            group.finish();
        }

        let mut group = c.benchmark_group(format!("mux_w4_{}", medium.name()));
        group.sample_size(30);
        for (kind, link) in links.iter().filter(|(k, _)| runs(*k, medium, 0)) {
            group.bench_function(BenchmarkId::new(kind.name(), "open_echo_1B"), |b| {
                b.iter_custom(|iters| timed(&rt, link, iters, |l| async move { ping(&l).await }))
            });
        }
        group.finish();
    }
}

/// Runs `work` once while a thread samples `Counters::receive_buffered`
/// of both muxes (the server's only in this process, 0 otherwise);
/// returns the peaks (client, server).
fn peak_counter(
    rt: &Runtime,
    link: &Arc<Link>,
    work: impl Future<Output = ()> + Send + 'static,
) -> (u64, u64) {
    let (client, server) = link.muxes().expect("a circuit link");
    let (client, server) = (client.clone(), server.cloned());
    let stop = Arc::new(AtomicBool::new(false));
    let peaks = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let sampler = {
        let (stop, peaks) = (Arc::clone(&stop), Arc::clone(&peaks));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Acquire) {
                peaks[0].fetch_max(client.counters().receive_buffered, Ordering::Relaxed);
                if let Some(server) = &server {
                    peaks[1].fetch_max(server.counters().receive_buffered, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_micros(50));
            }
        })
    };
    rt.block_on(async { tokio::spawn(work).await.expect("work") });
    stop.store(true, Ordering::Release);
    sampler.join().expect("sampler");
    (
        peaks[0].load(Ordering::Relaxed),
        peaks[1].load(Ordering::Relaxed),
    )
}

/// A round-trip estimate in microseconds, or `-` while unknown.
fn rtt(rtt: Option<Duration>) -> String {
    match rtt {
        Some(d) => format!("{} us", d.as_micros()),
        None => "-".to_owned(),
    }
}

/// Prints, for the stuck-consumer scenario over each medium, W1's
/// throughput alone and beside a stuck stream (3 of each, alternated, on
/// one credit link; medians), their ratio, and what the stuck stream
/// holds: the bytes its reader holds are the receive memory it costs.
fn stuck_report(rt: &Runtime, sizes: &Sizes) {
    println!(
        "\nmux report: one stream echoing {} MiB alone and beside a stuck stream (credit link; median of 3, MB/s)",
        sizes.w1 / MIB
    );
    let w1 = sizes.w1;
    let mbps = |d: Duration| w1 as f64 / d.as_secs_f64() / 1e6;
    for medium in STUCK_MEDIA {
        let link = Arc::new(rt.block_on(Link::new(Kind::Circuit, medium, None)));
        let run = || timed(rt, &link, 1, move |l| async move { bulk(&l, 1, w1).await });
        let (mut alone, mut beside) = (Vec::new(), Vec::new());
        let mut held = Vec::new();
        let mut waiting = 0;
        for _ in 0..3 {
            alone.push(run());
            let stuck = rt.block_on(Stuck::start(&link));
            let before = stuck.held();
            beside.push(run());
            let (client, _) = link.muxes().expect("a circuit link");
            waiting = waiting.max(client.counters().streams_waiting_for_credit);
            assert_eq!(stuck.held(), before, "the stuck stream moved");
            held.push(before);
            rt.block_on(stuck.stop());
        }
        alone.sort();
        beside.sort();
        let (client, server) = link.muxes().expect("a circuit link");
        assert_eq!(client.counters().mode, LinkMode::Credit);
        if let Some(server) = server {
            assert_eq!(server.counters().mode, LinkMode::Credit);
        }
        println!(
            "  {:<6}: alone {:7.0}  with_stuck {:7.0}  ratio {:.2}; stuck reader held {:?} KiB (its window); \
             client streams waiting for credit after: {waiting}; granted client {} KiB, rtt client {}",
            medium.name(),
            mbps(alone[1]),
            mbps(beside[1]),
            alone[1].as_secs_f64() / beside[1].as_secs_f64(),
            held.iter().map(|h| h >> 10).collect::<Vec<_>>(),
            client.counters().bytes_granted >> 10,
            rtt(client.counters().rtt),
        );
    }
}

/// Prints peak receive buffering and the latency distribution of W4.
fn report(_: &mut Criterion) {
    if !report_enabled() {
        return;
    }
    let rt = runtime();
    let sizes = sizes();
    let config = Config::default();
    println!(
        "\nmux report: circuit receive buffering, peak KiB (limits: stream {} KiB, link {} KiB)",
        config.get_stream_receive_limit() >> 10,
        config.get_link_receive_limit() >> 10
    );
    println!("  held = most one stream reader held before a read (exact);");
    println!("  counter = Counters::receive_buffered sampled every ~50 us;");
    println!("  mode, granted (Counters::bytes_granted, KiB), rtt and the client's link bytes per");
    println!("  frame (all frames, control ones included) after the run;");
    println!("  the server's mux is not seen over tcp2p (-)");
    for medium in MUX_MEDIA {
        let mut runs = vec![(1, sizes.w1)];
        runs.extend(sizes.w2);
        for kind in [Kind::Circuit, Kind::CircuitV0] {
            for &(streams, each) in &runs {
                let peaks = Arc::new(Peaks::default());
                let link = rt.block_on(Link::new(kind, medium, Some(Arc::clone(&peaks))));
                let link = Arc::new(link);
                let l = Arc::clone(&link);
                let (client, server) =
                    peak_counter(&rt, &link, async move { bulk(&l, streams, each).await });
                let (client_mux, server_mux) = link.muxes().expect("a circuit link");
                let (cc, sc) = (client_mux.counters(), server_mux.map(Mux::counters));
                let want = kind.mode().expect("a circuit kind");
                assert_eq!(
                    cc.mode,
                    want,
                    "{} {}: client mode",
                    medium.name(),
                    kind.name()
                );
                if let Some(sc) = sc {
                    assert_eq!(
                        sc.mode,
                        want,
                        "{} {}: server mode",
                        medium.name(),
                        kind.name()
                    );
                }
                let server_kib = |v: u64| match sc {
                    Some(_) => format!("{:>6}", v >> 10),
                    None => format!("{:>6}", "-"),
                };
                let held_server = server_kib(peaks.server.load(Ordering::Relaxed));
                println!(
                    "  {:<6} {:<10} {streams:>3} x {:>6} KiB: {:?}; held client {:>5} server {}; \
                     counter client {:>6} server {}; granted client {:>7} server {}; rtt client {} server {}; \
                     client bytes per frame out {:.0}, in {:.0}",
                    medium.name(),
                    kind.name(),
                    each >> 10,
                    cc.mode,
                    peaks.client.load(Ordering::Relaxed) >> 10,
                    held_server,
                    client >> 10,
                    server_kib(server),
                    cc.bytes_granted >> 10,
                    server_kib(sc.map_or(0, |c| c.bytes_granted)),
                    rtt(cc.rtt),
                    sc.map_or("-".to_owned(), |c| rtt(c.rtt)),
                    cc.bytes_out as f64 / cc.frames_out.max(1) as f64,
                    cc.bytes_in as f64 / cc.frames_in.max(1) as f64,
                );
            }
        }
    }
    stuck_report(&rt, &sizes);
    println!(
        "\nmux report: open + 1-byte echo, {} sequential rounds (us)",
        sizes.latency_rounds
    );
    for medium in MUX_MEDIA {
        for (kind, link) in links(&rt, medium) {
            let rounds = sizes.latency_rounds;
            let mut times = rt.block_on(async move {
                tokio::spawn(async move {
                    let mut times = Vec::with_capacity(rounds);
                    for _ in 0..rounds {
                        let start = Instant::now();
                        ping(&link).await;
                        times.push(start.elapsed());
                    }
                    times
                })
                .await
                .expect("latency task")
            });
            times.sort();
            let mean = times.iter().sum::<Duration>() / rounds as u32;
            let us = |d: Duration| d.as_secs_f64() * 1e6;
            println!(
                "  {:<6} {:<10}: mean {:7.1}  p50 {:7.1}  p99 {:7.1}",
                medium.name(),
                kind.name(),
                us(mean),
                us(times[rounds / 2]),
                us(times[rounds * 99 / 100]),
            );
        }
    }
}

criterion_group! {
    name = benches;
    config = criterion();
    targets = throughput_groups, stuck_groups, report
}

fn main() {
    // A `tcp2p` server process runs here and never returns.
    serve_if_asked(serve);
    benches();
    Criterion::default().configure_from_args().final_summary();
}
