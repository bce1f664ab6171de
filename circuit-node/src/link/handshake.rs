//! The link handshake of PROTOCOL 2.1: find the control stream, exchange
//! `Identify` and the first `NodeState`.

use circuit_frame::{Identify, Name, NodeState, Quality, PROTOCOL_VERSION};
use circuit_mux::{Incoming, Mux, Role as MuxRole};
use circuit_stream::{Reader, StreamError, Writer};
use futures::StreamExt;

use super::control::LinkSide;
use crate::NodeError;

/// What a finished handshake leaves: the control stream's two halves, the
/// peer's id and its first route update (its `Online(self, SELF)`).
pub(crate) struct Handshake {
    pub(crate) control_in: Reader,
    pub(crate) control_out: Writer,
    pub(crate) peer: Name,
    pub(crate) first: NodeState,
}

fn failed(reason: impl Into<String>) -> NodeError {
    NodeError::Handshake {
        reason: reason.into(),
    }
}

fn stream_failed(what: &str, e: StreamError) -> NodeError {
    failed(format!("{what}: {e}"))
}

/// Runs the handshake; the caller polls the mux driver meanwhile.
///
/// The server opens the control stream (mux id 1), the client takes the
/// first stream the peer opens. Each end writes `Identify` then
/// `Online(self, SELF)` before reading anything, so neither waits on the
/// other; then reads the peer's `Identify` and first `NodeState`. The
/// link's control learns the control stream's id as soon as it is known.
pub(crate) async fn handshake(
    id: &Name,
    protocol: &Name,
    mux: &Mux,
    incoming: &mut Incoming,
    side: &LinkSide,
) -> Result<Handshake, NodeError> {
    let control = match mux.role() {
        MuxRole::Server => mux.open()?,
        MuxRole::Client => incoming
            .next()
            .await
            .ok_or_else(|| failed("the link ended before the peer opened its control stream"))?
            .into_stream(),
    };
    side.set_control_id(control.id());
    let (control_in, control_out) = control.into_split();
    let written = async {
        control_out
            .write_message(&Identify::new(protocol.clone()))
            .await
            .map_err(|e| stream_failed("writing Identify", e))?;
        control_out
            .write_message(&NodeState::Online {
                node: id.clone(),
                quality: Quality::SELF,
            })
            .await
            .map_err(|e| stream_failed("writing the first NodeState", e))
    }
    .await;

    // Read the peer's Identify even if writing failed: a peer that saw a
    // mismatch hangs up at once, and its Identify (still readable here)
    // says why better than "the link closed".
    let theirs = control_in.read_message::<Identify>().await;
    match (theirs, written) {
        (Ok(theirs), written) => {
            if theirs.version != PROTOCOL_VERSION {
                return Err(NodeError::VersionMismatch {
                    ours: PROTOCOL_VERSION,
                    theirs: theirs.version,
                });
            }
            if theirs.protocol != *protocol {
                return Err(NodeError::ProtocolMismatch {
                    ours: protocol.clone(),
                    theirs: theirs.protocol,
                });
            }
            written?;
        }
        (Err(_), Err(write_error)) => return Err(write_error),
        (Err(e), Ok(())) => return Err(stream_failed("reading the peer's Identify", e)),
    }
    let first: NodeState = control_in
        .read_message()
        .await
        .map_err(|e| stream_failed("reading the peer's first NodeState", e))?;
    let peer = match &first {
        NodeState::Online { node, .. } => node.clone(),
        NodeState::Offline { node } => {
            return Err(failed(format!(
                "the peer's first NodeState is Offline({node}), not its own Online"
            )))
        }
    };
    Ok(Handshake {
        control_in,
        control_out,
        peer,
        first,
    })
}
