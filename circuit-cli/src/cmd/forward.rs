//! `circuit forward`: each TCP connection accepted locally becomes a
//! stream to a mesh node (as `ssh -L` does).

use std::io;
use std::time::Duration;

use circuit_node::Node;
use circuit_transport_tokio::{Address, TransportError};
use tokio::net::{TcpListener, TcpStream};

use crate::cli::ForwardArgs;
use crate::error::CliError;
use crate::mesh::{any_ended, check_name, make_node, wait_for_peer, Dialled, Result};
use crate::serve::splice;
use crate::signal::Stop;

/// How long the link may drain after SIGINT or SIGTERM before the
/// streams still open are cut.
const GRACE: Duration = Duration::from_secs(1);

/// Links to `--connect`, waits for `--peer`, then listens on `--local`
/// and splices every connection to a new stream to `--peer`, until
/// SIGINT (Ctrl-C) or SIGTERM, or until the link fails for good. On a
/// signal it stops accepting and closes the link as `circuit node` does.
pub async fn run(args: ForwardArgs, timeout: Duration) -> Result<()> {
    check_name("the peer name", &args.peer)?;
    let local = tcp_address(&args.local)?;
    let identity = &args.identity;
    let (node, _, incoming) = make_node(
        &identity.name,
        &identity.protocol,
        false,
        identity.mux_config(),
    )?;
    drop(incoming);
    let mut links = vec![Dialled::connect_redialling(&node, &args.connect, timeout).await?];
    wait_for_peer(&node, &mut links, &args.peer, timeout).await?;

    let listener = bind(&local).await?;
    let bound = listener
        .local_addr()
        .map_err(CliError::io("local address"))?;
    println!("listening on {bound}");
    let mut stop = Stop::listen();

    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, from)) => {
                    tracing::info!(%from, peer = %args.peer, "forwarding");
                    tokio::spawn(forward(node.clone(), args.peer.clone(), tcp));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::task::yield_now().await;
                }
            },
            e = any_ended(&mut links) => return Err(e),
            signal = stop.requested() => {
                tracing::info!(signal, grace = ?GRACE, "shutting down");
                drop(listener);
                for link in &links {
                    link.cut(GRACE).await;
                }
                return Ok(());
            }
        }
    }
}

/// One forwarded connection: a new stream to `peer`, spliced to `tcp`.
async fn forward(node: Node, peer: String, mut tcp: TcpStream) {
    let _ = tcp.set_nodelay(true);
    let stream = match node.connect_to_peer(&peer).await {
        Ok(stream) => stream,
        Err(e) => {
            tracing::warn!(%peer, error = %e, "cannot open a stream; connection dropped");
            return;
        }
    };
    match splice(stream, &mut tcp).await {
        Ok((to_tcp, to_peer)) => tracing::debug!(%peer, to_tcp, to_peer, "connection done"),
        Err(e) => tracing::info!(%peer, error = %e, "connection failed"),
    }
}

/// Checks that `text` is a TCP `host:port`.
pub fn tcp_address(text: &str) -> Result<String> {
    match Address::parse(text)? {
        Address::Tcp(address) => Ok(address),
        _ => Err(TransportError::BadAddress {
            address: text.to_owned(),
            reason: "only a TCP host:port can be used here".into(),
        }
        .into()),
    }
}

/// Binds a TCP listener, with the transport's errors for a port in use.
pub async fn bind(address: &str) -> Result<TcpListener> {
    TcpListener::bind(address).await.map_err(|source| {
        let address = Address::Tcp(address.to_owned());
        let e = if source.kind() == io::ErrorKind::AddrInUse {
            TransportError::AddressInUse { address, source }
        } else {
            TransportError::Listen { address, source }
        };
        e.into()
    })
}
