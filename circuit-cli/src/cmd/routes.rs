//! `circuit routes`: the routing table as a fresh leaf linked at an
//! address sees it, once the routes have settled.

use std::time::Duration;

use futures::StreamExt;
use tokio::time::Instant;

use crate::cli::RoutesArgs;
use crate::mesh::{any_ended, make_node, wait_for_any_peer, Dialled, Result};
use crate::table::{dot, json_lines, routing_table};

/// Links a leaf at `--connect`, waits until no peer has come or gone for
/// `--settle` (at most `timeout` in all), and prints what it sees.
pub async fn run(args: RoutesArgs, timeout: Duration) -> Result<()> {
    let settle = args.settle();
    let name = args
        .name
        .unwrap_or_else(|| format!("circuit-routes-{}", std::process::id()));
    let (node, mut peers, incoming) =
        make_node(&name, &args.protocol, false, circuit_mux::Config::default())?;
    drop(incoming);
    let deadline = Instant::now() + timeout;
    let mut links =
        vec![Dialled::connect(&node, &args.connect, Default::default(), timeout).await?];
    let neighbour = wait_for_any_peer(&mut peers, &mut links, timeout).await?;

    loop {
        let quiet = Instant::now() + settle;
        if quiet > deadline {
            tracing::warn!("routes still changing at the timeout; printing them as they are");
            break;
        }
        tokio::select! {
            event = peers.next() => tracing::debug!(?event, "routes changed"),
            () = tokio::time::sleep_until(quiet) => break,
            e = any_ended(&mut links) => return Err(e),
        }
    }

    let snapshot = node.snapshot();
    if args.dot {
        print!("{}", dot(&snapshot));
    } else if args.json {
        for line in json_lines(&snapshot) {
            println!("{line}");
        }
    } else {
        println!(
            "routes seen by {name} through {neighbour} at {}:",
            args.connect
        );
        print!("{}", routing_table(&snapshot));
        for link in &snapshot.links {
            println!("{}", link_line(link));
        }
    }
    Ok(())
}

/// One line on this command's own link: its mode and credit counters.
fn link_line(link: &circuit_node::LinkInfo) -> String {
    let mux = &link.mux;
    match mux.mode {
        circuit_mux::LinkMode::V0 => format!("link to {}: v0 mode", link.peer),
        circuit_mux::LinkMode::Credit => format!(
            "link to {}: credit mode, {} streams waiting for credit, {} B granted, round trip {}",
            link.peer,
            mux.streams_waiting_for_credit,
            mux.bytes_granted,
            mux.rtt
                .map_or_else(|| "unknown".to_owned(), |rtt| format!("{rtt:?}")),
        ),
    }
}
