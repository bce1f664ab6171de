//! Making this process's node, linking it, and waiting for the mesh: every
//! wait here is bounded and ends in a [`CliError`] that says what was
//! awaited.

use std::future::pending;
use std::time::Duration;

use circuit_frame::Name;
use circuit_node::routing::RouteEvent;
use circuit_node::{IncomingStreams, Node, NodeConfig, NodeError, PeerEvents};
use circuit_transport_tokio::{
    connect_with, LinkOptions, ReconnectPolicy, Shutdown, TokioTimer, TransportError,
};
use futures::StreamExt;
use tokio::task::JoinHandle;

use crate::error::CliError;

/// The result of a command step.
pub type Result<T, E = CliError> = std::result::Result<T, E>;

/// Refuses a name over 255 bytes, saying which option it came from.
pub fn check_name(what: &'static str, name: &str) -> Result<()> {
    Name::new(name)
        .map(drop)
        .map_err(|_| CliError::NameTooLong {
            what,
            len: name.len(),
        })
}

/// Makes a node named `name` speaking `protocol`, a router (on tokio's
/// clock) or a leaf.
pub fn make_node(
    name: &str,
    protocol: &str,
    router: bool,
    mux: circuit_mux::Config,
) -> Result<(Node, PeerEvents, IncomingStreams)> {
    check_name("the node name", name)?;
    check_name("the protocol", protocol)?;
    let config = if router {
        NodeConfig::router(TokioTimer::shared())
    } else {
        // A leaf needs the clock too: routes learned from incoming streams
        // lapse on it.
        NodeConfig::leaf().timer(TokioTimer::shared())
    };
    let config = config.mux(mux);
    Ok(Node::new(name, protocol, config)?)
}

/// A link this process dialled, watched so that its end (a protocol
/// mismatch, a peer that closed) becomes an error.
#[derive(Debug)]
pub struct Dialled {
    /// The address as given.
    pub address: String,
    shutdown: Shutdown,
    first_failed: Option<String>,
    task: Option<JoinHandle<Result<(), TransportError>>>,
}

impl Dialled {
    /// Dials `address` with `options`, the dial bounded by `timeout`;
    /// fails if the address is bad or the first dial fails (unless the
    /// options retry it: then [`first_dial_failed`](Self::first_dial_failed)
    /// says why it did).
    pub async fn connect(
        node: &Node,
        address: &str,
        options: LinkOptions,
        timeout: Duration,
    ) -> Result<Dialled> {
        let options = options.connect_timeout(Some(timeout));
        let handle = connect_with(node, address, options).await?;
        Ok(Dialled {
            address: address.to_owned(),
            shutdown: handle.shutdown_handle().clone(),
            first_failed: handle.first_dial_failed().map(str::to_owned),
            task: Some(handle.into_task()),
        })
    }

    /// Dials `address` (within `timeout`) and, if the link drops later,
    /// dials it again (a protocol mismatch ends it for good).
    pub async fn connect_redialling(
        node: &Node,
        address: &str,
        timeout: Duration,
    ) -> Result<Dialled> {
        let options = LinkOptions::new().reconnect(redial_policy());
        Self::connect(node, address, options, timeout).await
    }

    /// Why the first dial failed, when the link is being dialled again.
    pub fn first_dial_failed(&self) -> Option<&str> {
        self.first_failed.as_deref()
    }

    /// Cuts the link: open streams get an epitaph after `grace`.
    pub async fn cut(&self, grace: Duration) {
        self.shutdown.shutdown(grace).await;
    }

    /// Resolves when the link's task ends, with the error that says why;
    /// never resolves again afterwards.
    pub async fn ended(&mut self) -> CliError {
        let Some(task) = self.task.as_mut() else {
            return pending().await;
        };
        let result = task.await;
        self.task = None;
        let address = self.address.clone();
        match result {
            Ok(Ok(())) => CliError::LinkClosed { address },
            Ok(Err(source)) => CliError::Link { address, source },
            Err(e) => CliError::Link {
                address,
                source: TransportError::Task {
                    reason: e.to_string(),
                },
            },
        }
    }
}

/// How a long-running command dials again: from 100 ms, doubling up to
/// 2 s, with jitter, for ever.
pub fn redial_policy() -> ReconnectPolicy {
    ReconnectPolicy::default().max(Duration::from_secs(2))
}

/// Resolves when the first of `links` ends (never if there are none).
pub async fn any_ended(links: &mut [Dialled]) -> CliError {
    if links.is_empty() {
        return pending().await;
    }
    let ended = links.iter_mut().map(|l| Box::pin(l.ended()));
    futures::future::select_all(ended).await.0
}

/// Waits until `peer` is reachable from `node` ([`Node::wait_reachable`],
/// on the node's tokio timer), failing when a link in `links` ends first
/// or after `timeout`.
pub async fn wait_for_peer(
    node: &Node,
    links: &mut [Dialled],
    peer: &str,
    timeout: Duration,
) -> Result<()> {
    let via = links
        .iter()
        .map(|l| l.address.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    tokio::select! {
        result = node.wait_reachable(peer, timeout) => match result {
            Ok(()) => Ok(()),
            Err(NodeError::NotReachable { .. }) => Err(CliError::Unreachable {
                peer: peer.to_owned(),
                via,
                waited: timeout,
                reachable: reachable_list(node),
            }),
            Err(e) => Err(e.into()),
        },
        e = any_ended(links) => Err(e),
    }
}

/// Waits until some node is reachable over `links` (the first link is up),
/// and returns the first that became so.
pub async fn wait_for_any_peer(
    peers: &mut PeerEvents,
    links: &mut [Dialled],
    timeout: Duration,
) -> Result<Name> {
    let first = async {
        loop {
            match peers.next().await {
                Some(RouteEvent::PeerReachable(node)) => return node,
                Some(RouteEvent::PeerUnreachable(_)) => {}
                None => return pending().await,
            }
        }
    };
    tokio::select! {
        node = first => Ok(node),
        e = any_ended(links) => Err(e),
        () = tokio::time::sleep(timeout) => Err(CliError::Timeout {
            what: "the link's handshake".into(),
            waited: timeout,
        }),
    }
}

/// The reachable nodes, comma-separated, or "none".
pub fn reachable_list(node: &Node) -> String {
    let peers: Vec<String> = node
        .reachable_peers()
        .into_iter()
        .map(Name::into_string)
        .collect();
    if peers.is_empty() {
        "none".into()
    } else {
        peers.join(", ")
    }
}
