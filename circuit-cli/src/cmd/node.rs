//! `circuit node`: a long-running node that listens, dials, routes and
//! answers streams (echo, discard, or splice to a TCP service).

use std::time::Duration;

use circuit_frame::Quality;
use circuit_mux::Role;
use circuit_node::routing::RouteEvent;
use circuit_transport_tokio::{listen_with, spawn_link, LinkOptions, Shutdown};
use futures::StreamExt;

use crate::cli::NodeArgs;
use crate::error::CliError;
use crate::mesh::{any_ended, make_node, redial_policy, Dialled, Result};
use crate::serve::{serve, Service};
use crate::signal::Stop;

/// Prints a status line: on stdout, or on stderr when stdout carries the
/// `--stdio` link.
macro_rules! say {
    ($stdio:expr, $($line:tt)*) => {
        if $stdio {
            eprintln!($($line)*)
        } else {
            println!($($line)*)
        }
    };
}

/// Runs the node until SIGINT (Ctrl-C) or SIGTERM, until a dialled link
/// fails for good (e.g. a protocol mismatch), or until its `--stdio` link
/// ends. On a signal it stops accepting, lets every link drain for
/// `--grace`, closes the streams still open with the epitaph "node NAME
/// is shutting down", closes each link's socket after reading it to the
/// peer's end, and returns `Ok`. Each dial is bounded by `timeout`.
pub async fn run(args: NodeArgs, timeout: Duration) -> Result<()> {
    let stdio = args.stdio;
    let identity = &args.identity;
    let (node, mut peers, incoming) = make_node(
        &identity.name,
        &identity.protocol,
        args.router,
        identity.mux_config(),
    )?;
    if args.reports {
        let mut reports = node.forward_reports();
        tokio::spawn(async move {
            while let Some(report) = reports.next().await {
                say!(stdio, "closed: {report}");
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
        say!(stdio, "listening on {}", listener.local_addr());
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
            None => say!(stdio, "connected to {address}"),
            Some(error) => {
                tracing::warn!(%address, %error, "first dial failed; dialling again");
                say!(stdio, "dialling {address}");
            }
        }
        links.push(link);
    }

    // The server end of an `exec:` link: the dialling end is the client.
    let stdio_link = args.stdio.then(|| {
        let io = tokio::io::join(tokio::io::stdin(), tokio::io::stdout());
        let quality = args.quality.unwrap_or(Quality::NETWORK);
        spawn_link(&node, io, Role::Server, quality, &shutdown)
    });
    let stdio_ended = async {
        let Some(link) = stdio_link else {
            return std::future::pending().await;
        };
        match link.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(CliError::Link {
                address: "stdio".into(),
                source: e.into(),
            }),
            Err(e) => Err(CliError::Link {
                address: "stdio".into(),
                source: circuit_transport_tokio::TransportError::Task {
                    reason: e.to_string(),
                },
            }),
        }
    };

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
                RouteEvent::PeerReachable(peer) => say!(stdio, "peer {peer} reachable"),
                RouteEvent::PeerUnreachable(peer) => say!(stdio, "peer {peer} unreachable"),
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
        result = stdio_ended => {
            tracing::info!("the link over stdio ended");
            shutdown.shutdown(args.grace).await;
            result
        }
    }
}
