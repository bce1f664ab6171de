//! `circuit node`: a long-running node that listens, dials, routes and
//! answers streams (echo, discard, or splice to a TCP service).

use std::time::Duration;

use circuit_node::routing::RouteEvent;
use circuit_transport_tokio::{listen_with, LinkOptions, ReconnectPolicy, Shutdown};
use futures::StreamExt;

use crate::cli::NodeArgs;
use crate::mesh::{any_ended, make_node, Dialled, Result};
use crate::serve::{serve, Service};
use crate::signal::Stop;

/// Runs the node until SIGINT (Ctrl-C) or SIGTERM, or until a dialled
/// link fails for good (e.g. a protocol mismatch). On a signal it stops
/// accepting, lets every link drain for `--grace`, closes the streams
/// still open with the epitaph "node NAME is shutting down", closes each
/// link's socket after reading it to the peer's end, and returns `Ok`.
pub async fn run(args: NodeArgs, _timeout: Duration) -> Result<()> {
    let identity = &args.identity;
    let (node, mut peers, incoming) = make_node(
        &identity.name,
        &identity.protocol,
        args.router,
        identity.credit,
    )?;
    if args.reports {
        let mut reports = node.forward_reports();
        tokio::spawn(async move {
            while let Some(report) = reports.next().await {
                println!("closed: {report}");
            }
        });
    }
    let shutdown = Shutdown::new();
    let mut options = LinkOptions::new().shutdown(&shutdown);
    if let Some(quality) = args.quality {
        options = options.quality(quality);
    }

    let mut listeners = Vec::new();
    for address in &args.listen {
        let listener = listen_with(&node, address.as_str(), options.clone()).await?;
        println!("listening on {}", listener.local_addr());
        listeners.push(listener);
    }
    let mut links = Vec::new();
    for address in &args.connect {
        let policy = ReconnectPolicy::default().max(Duration::from_secs(2));
        let link = Dialled::connect(&node, address, options.clone().reconnect(policy)).await?;
        println!("connected to {address}");
        links.push(link);
    }

    // From here a signal shuts down cleanly; one during the start-up (a
    // first dial may hang) ends the process at once, with nothing to drain.
    // Before any stream is served: once one is, the handlers are in place.
    let mut stop = Stop::listen();
    let service = match (args.echo, args.discard, args.forward_to) {
        (true, _, _) => Some(Service::Echo),
        (false, true, _) => Some(Service::Discard),
        (false, false, Some(address)) => Some(Service::ForwardTo(address)),
        (false, false, None) => None,
    };
    match service {
        Some(service) => drop(tokio::spawn(serve(incoming, service))),
        // Nothing to serve: the node refuses streams for it, with an epitaph.
        None => drop(incoming),
    }
    tokio::spawn(async move {
        while let Some(event) = peers.next().await {
            match event {
                RouteEvent::PeerReachable(peer) => println!("peer {peer} reachable"),
                RouteEvent::PeerUnreachable(peer) => println!("peer {peer} unreachable"),
            }
        }
    });

    tokio::select! {
        signal = stop.requested() => {
            tracing::info!(signal, grace = ?args.grace, "shutting down");
            let report = shutdown.shutdown(args.grace).await;
            tracing::info!(?report, "shut down");
            Ok(())
        }
        e = any_ended(&mut links) => Err(e),
    }
}
