//! Circuit streams with tokio's io traits.

use circuit_stream::Duplex;
use tokio_util::compat::{Compat, FuturesAsyncReadCompatExt};

/// A circuit stream as tokio io: `tokio::io::AsyncRead + AsyncWrite`, so
/// `tokio::io::copy_bidirectional`, `BufReader` and codecs work on it.
/// `shutdown` closes this direction only (the peer reads end of stream);
/// `into_inner` gives the [`Duplex`] back.
pub type TokioDuplex = Compat<Duplex>;

/// Wraps a circuit stream (from
/// [`Node::connect_to_peer`](circuit_node::Node::connect_to_peer) or an
/// [`IncomingStream`](circuit_node::IncomingStream)) for tokio's io traits.
/// The same as `tokio_util::compat::FuturesAsyncReadCompatExt::compat`.
pub fn tokio_io(stream: Duplex) -> TokioDuplex {
    stream.compat()
}
