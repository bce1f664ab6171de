//! Links: a node's side of one mux, from handshake to end (PROTOCOL 2.1).
//!
//! [`Node::link`] and [`Node::link_io`] return the link future. It polls
//! the mux driver itself, does the handshake, then reads and writes the
//! control stream, handles every stream the peer opens (each in its own
//! sub-future, so a stalled one delays no other), and sleeps on the node's
//! timer for the routing core's next deadline. When the link ends, its
//! routes go and the future returns why.
//!
//! [`Node::link_io_with_control`] also returns a [`LinkControl`]: the
//! link's open streams, a wait for them to drain, and a close with an
//! epitaph, for a transport's graceful shutdown.

mod control;
mod handshake;
mod port;
mod run;

use std::future::Future;
use std::sync::Arc;

use circuit_frame::Quality;
use circuit_mux::{Driver, Incoming, Mux, Role as MuxRole};
use control::LinkSide;
use futures::io::{AsyncRead, AsyncWrite};
use tracing::Instrument;

pub use control::LinkControl;
pub(crate) use port::{LinkPort, LinkSignal};

use crate::{Node, NodeError};

impl Node {
    /// Runs a link over a ready mux (the seed's
    /// `multi_stream_node_connection`), in the mux's role, with link
    /// quality `quality`.
    ///
    /// The returned future does everything the link needs and nothing runs
    /// without it: poll it or spawn it. It completes when the link ends:
    /// `Ok(())` when the transport closed cleanly, otherwise the error
    /// ([`NodeError::VersionMismatch`], [`NodeError::ProtocolMismatch`],
    /// [`NodeError::Handshake`], [`NodeError::Control`],
    /// [`NodeError::Mux`]). On a handshake error the mux and its transport
    /// are dropped at once. Dropping the future closes the link too.
    pub fn link<IO>(
        &self,
        mux: Mux,
        incoming: Incoming,
        driver: Driver<IO>,
        quality: Quality,
    ) -> impl Future<Output = Result<(), NodeError>> + Send + 'static
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let port = LinkPort::new(mux.clone());
        let (_, side) = LinkSide::new(Arc::clone(&port));
        self.run(port, mux, incoming, driver, quality, side)
    }

    /// Runs a link over any futures-io byte stream (the seed's
    /// `multi_stream_node_connection_to_async`): a mux is made on `io` in
    /// `role` (`Server` for the end that accepted the transport) with the
    /// node's [`NodeConfig::mux`](crate::NodeConfig::mux) settings. See
    /// [`link`](Self::link) for the future.
    pub fn link_io<IO>(
        &self,
        io: IO,
        role: MuxRole,
        quality: Quality,
    ) -> impl Future<Output = Result<(), NodeError>> + Send + 'static
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.link_io_with_control(io, role, quality).1
    }

    /// Runs a link over `io` as [`link_io`](Self::link_io) does, and
    /// returns a [`LinkControl`] on it beside its future: the link's open
    /// streams, a wait for them to drain, and a close with an epitaph
    /// ([`LinkControl::close`] makes the future return `Ok(())` once the
    /// close frames are flushed and the transport closed).
    pub fn link_io_with_control<IO>(
        &self,
        io: IO,
        role: MuxRole,
        quality: Quality,
    ) -> (
        LinkControl,
        impl Future<Output = Result<(), NodeError>> + Send + 'static,
    )
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mux, incoming, driver) = Mux::new(io, role, self.inner.config.mux.clone());
        let port = LinkPort::new(mux.clone());
        let (control, side) = LinkSide::new(Arc::clone(&port));
        (
            control,
            self.run(port, mux, incoming, driver, quality, side),
        )
    }

    fn run<IO>(
        &self,
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
            node = %self.inner.id,
            role = ?mux.role(),
            quality = quality.get()
        );
        let node = Arc::clone(&self.inner);
        run::run(node, port, mux, incoming, driver, quality, side).instrument(span)
    }
}
