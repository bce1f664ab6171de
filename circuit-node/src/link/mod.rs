//! Links: a node's side of one mux, from handshake to end (PROTOCOL 2.1).
//!
//! [`Node::link`](crate::Node::link) and
//! [`Node::link_io`](crate::Node::link_io) return the link future. It polls
//! the mux driver itself, does the handshake, then reads and writes the
//! control stream, handles every stream the peer opens (each in its own
//! sub-future, so a stalled one delays no other), and sleeps on the node's
//! timer for the routing core's next deadline. When the link ends, its
//! routes go and the future returns why.
//!
//! [`Node::link_io_with_control`](crate::Node::link_io_with_control)
//! also returns a [`LinkControl`]: the
//! link's open streams, a wait for them to drain, and a close with an
//! epitaph, for a transport's graceful shutdown.

pub(crate) mod control;
mod handshake;
pub(crate) mod port;
mod run;

use std::future::Future;
use std::sync::Arc;

use circuit_frame::Quality;
use circuit_mux::{Driver, Incoming, Mux};
use futures::io::{AsyncRead, AsyncWrite};
use tracing::Instrument;

pub use control::LinkControl;

use crate::state::NodeInner;
use crate::NodeError;
use control::LinkSide;
use port::LinkPort;

/// The future of the link on `port` (whose mux is `mux`) for `node`,
/// reporting to `side`, in an `INFO` span `link` (made here, so that its
/// target is this module).
pub(crate) fn run_in_span<IO>(
    node: Arc<NodeInner>,
    port: Arc<LinkPort>,
    mux: Mux,
    incoming: Incoming,
    driver: Driver<IO>,
    quality: Quality,
    side: LinkSide,
) -> impl Future<Output = Result<(), NodeError>> + Send + 'static
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let span = tracing::info_span!(
        "link",
        node = %node.id,
        role = ?mux.role(),
        quality = quality.get()
    );
    run::run(node, port, mux, incoming, driver, quality, side).instrument(span)
}
