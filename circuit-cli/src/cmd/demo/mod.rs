//! `circuit demo`: a router, three nodes and a redundant path on loopback
//! TCP, all in this process.
//!
//! ```text
//!        r (router)
//!      / | \
//!     a  |  c          a-r, b-r, c-r, and a-b straight: two paths a to b
//!      \ |
//!        b
//! ```
//!
//! Streams from a to b and c cross the mesh; then, while streams from a to
//! b run over the direct link, that link is cut: the streams on it end with
//! an epitaph, are opened again and go through r, and a's table changes.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use circuit_node::Node;
use circuit_transport_tokio::{listen_with, LinkOptions, Shutdown};
use futures::{StreamExt, TryStreamExt};
use tokio::sync::Notify;

use crate::cli::DemoArgs;
use crate::error::CliError;
use crate::mesh::{make_node, wait_for_peer, Dialled, Result};
use crate::pattern::Pattern;
use crate::progress::{track, Meter, Progress, Target};
use crate::serve::{serve, Service};
use crate::size::format_bytes;
use crate::table::routing_table;

mod streams;

use streams::{echo_streams, Job, Shared, Tally};

const PROTOCOL: &str = "demo";

/// Builds the mesh, runs both phases, prints the tables and a summary.
pub async fn run(args: DemoArgs, timeout: Duration) -> Result<()> {
    let started = Instant::now();
    let shutdown = Shutdown::new();
    let options = LinkOptions::new().shutdown(&shutdown);

    let (r, _, r_incoming) = make_node("r", PROTOCOL, true, circuit_mux::Config::default())?;
    drop(r_incoming);
    let r_listener = listen_with(&r, "127.0.0.1:0", options.clone()).await?;
    let (a, _, a_incoming) = make_node("a", PROTOCOL, false, circuit_mux::Config::default())?;
    drop(a_incoming);
    let b = echo_node("b")?;
    let c = echo_node("c")?;
    let b_listener = listen_with(&b, "127.0.0.1:0", options.clone()).await?;

    let r_addr = r_listener.local_addr().to_string();
    let b_addr = b_listener.local_addr().to_string();
    let mut a_links = vec![
        Dialled::connect(&a, &r_addr, options.clone(), timeout).await?,
        Dialled::connect(&a, &b_addr, options.clone(), timeout).await?,
    ];
    let _others = [
        Dialled::connect(&b, &r_addr, options.clone(), timeout).await?,
        Dialled::connect(&c, &r_addr, options.clone(), timeout).await?,
    ];
    println!("mesh: router r on {r_addr}; a, b and c linked to r; a also linked straight to b on {b_addr}");

    for peer in ["b", "c"] {
        wait_for_peer(&a, &mut a_links, peer, timeout).await?;
    }
    wait_until("a's direct route to b", timeout, || {
        next_hop(&a, "b") == "b"
    })
    .await?;
    println!("\nrouting table of a:");
    print!("{}", routing_table(&a.snapshot()));

    // Phase 1: streams from a to b (direct) and to c (through r).
    let bytes = args.stream_bytes;
    let jobs: Vec<Job> = (0..32)
        .map(|i| Job::new(i, if i % 2 == 0 { "b" } else { "c" }, bytes))
        .collect();
    println!(
        "\n32 streams from a, to b and c, {} each way each:",
        format_bytes(bytes)
    );
    let first = phase(&a, "across", jobs, 8, timeout, None).await?;

    // Phase 2: streams from a to b; at a quarter of the bytes, cut a-b.
    let jobs: Vec<Job> = (100..124).map(|i| Job::new(i, "b", bytes)).collect();
    let total: u64 = jobs.iter().map(|j| j.bytes).sum();
    println!("\n24 streams from a to b; the a-b link is cut a quarter of the way:");
    let direct = a_links.remove(1);
    let second = phase(&a, "reroute", jobs, 4, timeout, Some((total / 4, direct))).await?;
    wait_until("a's route to b through r", timeout, || {
        next_hop(&a, "b") == "r"
    })
    .await?;
    println!("\nrouting table of a after the cut:");
    print!("{}", routing_table(&a.snapshot()));

    let streams = first.streams + second.streams;
    let echoed = first.bytes + second.bytes;
    println!(
        "\ndemo done in {:.1} s: {streams} streams, {} echoed and verified; \
         {} streams cut with the a-b link were opened again and went through r \
         ({} streams to b went direct, {} through r)",
        started.elapsed().as_secs_f64(),
        format_bytes(echoed),
        second.retried,
        first.via("b") + second.via("b"),
        second.via("r"),
    );
    let _ = tokio::time::timeout(timeout, shutdown.shutdown(Duration::from_millis(200))).await;
    drop((r_listener, b_listener));
    Ok(())
}

/// A leaf that echoes every stream.
fn echo_node(name: &str) -> Result<Node> {
    let (node, _, incoming) = make_node(name, PROTOCOL, false, circuit_mux::Config::default())?;
    tokio::spawn(serve(incoming, Service::Echo));
    Ok(node)
}

/// The neighbour `node`'s streams to `peer` go to first, or "-".
fn next_hop(node: &Node, peer: &str) -> String {
    node.snapshot()
        .next_hop(peer)
        .map_or_else(|| "-".to_owned(), ToString::to_string)
}

/// Waits until `done()` holds, looking every 10 ms, at most `timeout`.
async fn wait_until(what: &str, timeout: Duration, done: impl Fn() -> bool) -> Result<()> {
    let look = async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(timeout, look)
        .await
        .map_err(|_| CliError::Timeout {
            what: what.to_owned(),
            waited: timeout,
        })
}

/// Runs `jobs` from `node`, `concurrency` at a time, with a progress line;
/// with `cut`, cuts that link once that many bytes were echoed.
async fn phase(
    node: &Node,
    label: &str,
    jobs: Vec<Job>,
    concurrency: usize,
    timeout: Duration,
    cut: Option<(u64, Dialled)>,
) -> Result<Tally> {
    let total = jobs.iter().map(|j| j.bytes).sum();
    let pattern = Pattern::new();
    let meter = Meter::default();
    let retried = AtomicU32::new(0);
    let done = AtomicU32::new(0);
    let crossed = Notify::new();
    let shared = Shared {
        node,
        pattern: &pattern,
        meter: &meter,
        retried: &retried,
        done: &done,
        cross: cut.as_ref().map(|(at, _)| (*at, &crossed)),
        timeout,
    };
    let count = jobs.len();
    let work = async {
        let streams = echo_streams(&shared, jobs).buffer_unordered(concurrency);
        let cutter = async {
            if let Some((_, link)) = &cut {
                crossed.notified().await;
                link.cut(Duration::ZERO).await;
            }
            std::future::pending::<()>().await
        };
        tokio::select! {
            hops = streams.try_collect::<Vec<_>>() => hops,
            () = cutter => unreachable!("the cutter never ends"),
        }
    };
    let detail = || {
        let retried = retried.load(Ordering::Relaxed);
        let mut text = format!("{}/{count} streams", done.load(Ordering::Relaxed));
        if retried > 0 {
            text += &format!(", {retried} cut and opened again");
        }
        text
    };
    let progress = Progress::new(label, Some(total), Target::Stdout);
    let hops = track(progress, &meter, detail, work).await?;
    Ok(Tally {
        streams: hops.len(),
        bytes: total,
        retried: retried.load(Ordering::Relaxed),
        hops,
    })
}
