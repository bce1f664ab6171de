//! Open + 1 B echo (W4): the latency distribution, circuit against yamux
//! in one run.
//!
//! Criterion gives one mean per sample; issue 16's target is on the mean
//! and on the p99 ("open + 1 B echo: mean and p99 each at most yamux's").
//! This runs, per medium, `--rounds` rounds (after `--warm-up` rounds) of
//! open a stream, echo one byte, drop it, over `circuit` (credit),
//! `circuit_v0`, `yamux` and `raw` (a new TCP connection per round over
//! TCP, a new in-memory pipe in memory), times every round and prints
//! mean, p50, p90, p99, p99.9 and the maximum in microseconds; then, per
//! round, what the round cost the threads of this process and of the
//! link's server process (counted between blocks, from `/proc`): context
//! switches (the thread hand-offs of a round, each a chance to wait behind
//! another process on a busy machine), CPU time (`cpu`, us) and time
//! runnable but waiting for a CPU (`wait`, us: the run-queue delay).
//!
//! The links are the mux bench's ([`circuit_benches::mux::Link`], warmed
//! up as there): `tcp2p` has the echo server in a process of its own (this
//! executable run again), `memory` runs both ends in this process over
//! `circuit_stream::duplex_pair`. Rounds of the systems are interleaved in
//! blocks of `--block` rounds (100), each system in turn (and the first
//! system of a block rotating), so that the machine's noise falls on all
//! alike. Blocks are short because that noise comes in bursts: on the
//! shared 2-core machine, with blocks of 1,000 rounds (70 to 130 ms over
//! `tcp2p`) the rounds above 1 ms of a run fell in a few blocks, so in
//! whichever system ran then. The first round of each block is run
//! untimed: after a switch of link (and the reading of `/proc` below) it
//! runs on cold caches, which put one round in a hundred, the whole p99,
//! in the tail of every system.
//! Every round runs in one task on the bench runtime (2 workers), one after
//! the other, as `mux_w4_*` does.
//!
//! Run: `cargo run --release -p circuit-benches --example latency`
//! (options: `--rounds N`, `--warm-up N`, `--block N`, `--media
//! tcp2p,memory`, `--kinds circuit,circuit_v0,yamux,raw`, `--dump FILE`
//! to write every round's time as CSV `medium,kind,index,ns`, in the
//! order run).

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use circuit_benches::config::Medium;
use circuit_benches::echo::ping;
use circuit_benches::mux::{serve, Kind, Link};
use circuit_benches::process::serve_if_asked;
use circuit_benches::runtime::{
    context_switches, context_switches_of, runtime, sched_times_of, SchedTimes,
};

/// What to run, from the command line.
struct Args {
    rounds: usize,
    warm_up: usize,
    block: usize,
    media: Vec<Medium>,
    kinds: Vec<Kind>,
    dump: Option<String>,
}

const KINDS: [Kind; 4] = [Kind::Circuit, Kind::CircuitV0, Kind::Yamux, Kind::Raw];
const MEDIA: [Medium; 3] = [Medium::Process, Medium::Memory, Medium::Tcp];

fn parse() -> Args {
    let mut args = Args {
        rounds: 20_000,
        warm_up: 2_000,
        block: 100,
        media: vec![Medium::Process, Medium::Memory],
        kinds: KINDS.to_vec(),
        dump: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} wants a value"));
        let number = |v: String| -> usize {
            v.replace('_', "")
                .parse()
                .unwrap_or_else(|_| panic!("{flag}: not a number: {v}"))
        };
        match flag.as_str() {
            "--rounds" => args.rounds = number(value()),
            "--warm-up" => args.warm_up = number(value()),
            "--block" => args.block = number(value()).max(1),
            "--media" => {
                args.media = value()
                    .split(',')
                    .map(|m| {
                        *MEDIA
                            .iter()
                            .find(|x| x.name() == m)
                            .unwrap_or_else(|| panic!("no medium {m}"))
                    })
                    .collect()
            }
            "--kinds" => {
                args.kinds = value()
                    .split(',')
                    .map(|k| {
                        *KINDS
                            .iter()
                            .find(|x| x.name() == k)
                            .unwrap_or_else(|| panic!("no kind {k}"))
                    })
                    .collect()
            }
            "--dump" => args.dump = Some(value()),
            // `cargo bench`-style harness flags are not ours.
            "--bench" => {}
            other => panic!(
                "unknown option {other}; options: --rounds N --warm-up N --block N \
                 --media tcp2p,memory,tcp --kinds circuit,circuit_v0,yamux,raw --dump FILE"
            ),
        }
    }
    args
}

/// Every round's time per link, in the order run, and per link what its
/// rounds cost the scheduler: this process's threads and the link's
/// server process, counted around each block.
struct Measured {
    times: Vec<Vec<Duration>>,
    /// Rounds run per link while counting: the timed ones and the first,
    /// untimed one of each block.
    rounds: Vec<usize>,
    switches: Vec<u64>,
    sched: Vec<SchedTimes>,
}

/// Context switches and scheduler times so far of this process and of the
/// server of `link` (if it has a process of its own); 0 where `/proc`
/// does not tell.
fn counts(link: &Link) -> (u64, SchedTimes) {
    let server = link.server_pid().map(|pid| pid.to_string());
    let switches = context_switches().unwrap_or(0)
        + server.as_deref().and_then(context_switches_of).unwrap_or(0);
    let sched = sched_times_of("self").unwrap_or_default()
        + server
            .as_deref()
            .and_then(sched_times_of)
            .unwrap_or_default();
    (switches, sched)
}

/// Runs `rounds` timed rounds over every link, in blocks of `block` rounds,
/// each link in turn (the first link of a block rotating), each block after
/// one untimed round. Call within the runtime.
async fn interleaved(links: &[Arc<Link>], rounds: usize, block: usize) -> Measured {
    let mut m = Measured {
        times: links.iter().map(|_| Vec::with_capacity(rounds)).collect(),
        rounds: vec![0; links.len()],
        switches: vec![0; links.len()],
        sched: vec![SchedTimes::default(); links.len()],
    };
    let blocks = rounds.div_ceil(block);
    for b in 0..blocks {
        let n = block.min(rounds - b * block);
        for i in 0..links.len() {
            let which = (b + i) % links.len();
            let (link, out) = (&links[which], &mut m.times[which]);
            let before = counts(link);
            // One round untimed: the first after a switch of link (and
            // after reading `/proc`) runs on cold caches, and would put one
            // round in every block, 1 %, in the tail.
            ping(link).await;
            for _ in 0..n {
                let start = Instant::now();
                ping(link).await;
                out.push(start.elapsed());
            }
            let after = counts(link);
            m.rounds[which] += n + 1;
            m.switches[which] += after.0.saturating_sub(before.0);
            m.sched[which] = m.sched[which] + after.1.since(before.1);
        }
    }
    m
}

/// Mean and quantiles (nearest rank) of a sample, in microseconds.
struct Summary {
    mean: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    p999: f64,
    max: f64,
}

impl Summary {
    fn of(times: &[Duration]) -> Summary {
        let mut sorted = times.to_vec();
        sorted.sort_unstable();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let q = |p: f64| {
            let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            us(sorted[rank - 1])
        };
        Summary {
            mean: us(sorted.iter().sum::<Duration>()) / sorted.len() as f64,
            p50: q(0.50),
            p90: q(0.90),
            p99: q(0.99),
            p999: q(0.999),
            max: us(*sorted.last().expect("rounds")),
        }
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "-".to_owned())
}

fn main() {
    // The `tcp2p` server process runs here and never returns.
    serve_if_asked(serve);
    let args = parse();
    assert!(args.rounds > 0, "--rounds must be above 0");
    let rt = runtime();
    let mut dump = args.dump.as_ref().map(|path| {
        let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create --dump"));
        writeln!(f, "medium,kind,index,ns").expect("write --dump");
        f
    });
    println!(
        "open + 1 B echo: {} rounds per system after {} of warm-up, interleaved in blocks of {}; \
         load average {}",
        args.rounds,
        args.warm_up,
        args.block,
        load_average()
    );
    for &medium in &args.media {
        let started = Instant::now();
        let links: Vec<Arc<Link>> = args
            .kinds
            .iter()
            .map(|&k| Arc::new(rt.block_on(Link::new(k, medium, None))))
            .collect();
        let (rounds, warm_up, block) = (args.rounds, args.warm_up, args.block);
        let measured = rt.block_on(async move {
            tokio::spawn(async move {
                if warm_up > 0 {
                    interleaved(&links, warm_up, block).await;
                }
                interleaved(&links, rounds, block).await
            })
            .await
            .expect("latency task")
        });
        println!(
            "\n{} ({:.1} s, load average {}), us:",
            medium.name(),
            started.elapsed().as_secs_f64(),
            load_average()
        );
        println!(
            "  {:<10} {:>7} {:>7} {:>7} {:>7} {:>7} {:>8} | {:>8} {:>7} {:>7}",
            "system", "mean", "p50", "p90", "p99", "p99.9", "max", "switches", "cpu", "wait"
        );
        for (i, (kind, t)) in args.kinds.iter().zip(&measured.times).enumerate() {
            let s = Summary::of(t);
            let counted = measured.rounds[i] as f64;
            let per_round = |d: Duration| d.as_secs_f64() * 1e6 / counted;
            println!(
                "  {:<10} {:>7.1} {:>7.1} {:>7.1} {:>7.1} {:>7.1} {:>8.1} | {:>8.2} {:>7.1} {:>7.1}",
                kind.name(),
                s.mean,
                s.p50,
                s.p90,
                s.p99,
                s.p999,
                s.max,
                measured.switches[i] as f64 / counted,
                per_round(measured.sched[i].running),
                per_round(measured.sched[i].waiting),
            );
            if let Some(f) = dump.as_mut() {
                for (i, d) in t.iter().enumerate() {
                    writeln!(f, "{},{},{i},{}", medium.name(), kind.name(), d.as_nanos())
                        .expect("write --dump");
                }
            }
        }
    }
    if let Some(mut f) = dump {
        f.flush().expect("write --dump");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nearest-rank quantiles: p50 of 1..=100 us is 50, p99 is 99, p99.9
    /// and the maximum are 100.
    #[test]
    fn quantiles_by_nearest_rank() {
        let times: Vec<Duration> = (1..=100).rev().map(Duration::from_micros).collect();
        let s = Summary::of(&times);
        assert_eq!(
            (s.p50, s.p90, s.p99, s.p999, s.max),
            (50.0, 90.0, 99.0, 100.0, 100.0)
        );
        assert!((s.mean - 50.5).abs() < 1e-9);
    }
}
