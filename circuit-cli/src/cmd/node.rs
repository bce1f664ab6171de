//! `circuit node`: a long-running node that listens, dials, routes and
//! answers streams (echo, discard, or splice to a TCP service).

use std::time::Duration;

use circuit_node::routing::RouteEvent;
use circuit_transport_tokio::{listen_with, LinkOptions, Shutdown};
use futures::StreamExt;

use crate::cli::NodeArgs;
use crate::mesh::{any_ended, make_node, redial_policy, Dialled, Result};
use crate::serve::{serve, Service};

/// How long links may drain after Ctrl-C.
const GRACE: Duration = Duration::from_secs(1);

/// Runs the node until Ctrl-C, or until a dialled link fails for good
/// (e.g. a protocol mismatch). Each dial is bounded by `timeout`.
pub async fn run(args: NodeArgs, timeout: Duration) -> Result<()> {
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
    let mut options = LinkOptions::new()
        .shutdown(&shutdown)
        .handshake_timeout(Some(args.handshake_timeout))
        .max_handshakes(args.max_handshakes);
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
        let dialling = options
            .clone()
            .reconnect(redial_policy())
            .retry_first_dial(!args.connect_once);
        let link = Dialled::connect(&node, address, dialling, timeout).await?;
        match link.first_dial_failed() {
            None => println!("connected to {address}"),
            Some(error) => {
                tracing::warn!(%address, %error, "first dial failed; dialling again");
                println!("dialling {address}");
            }
        }
        links.push(link);
    }

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

    let interrupted = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot wait for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = interrupted => {
            let report = shutdown.shutdown(GRACE).await;
            tracing::info!(?report, "shut down");
            Ok(())
        }
        e = any_ended(&mut links) => Err(e),
    }
}
