//! What a node does with a stream a neighbour opened (PROTOCOL 2.4): read
//! the destination without consuming it, then deliver the stream here,
//! splice it onto the next link, or refuse it; and, while someone
//! listens, report how each forwarded or refused stream was closed.

use std::future::poll_fn;
use std::sync::Arc;

use circuit_frame::{Decode, Decoded, Name};
use circuit_mux::{ErrorReporter, IncomingStream as MuxIncoming};
use circuit_stream::{Duplex, Reader, StreamError, Writer};
use tracing::{Instrument, Span};

use crate::events::IncomingStream;
use crate::report::{Forwarded, Hop, LocalReason};
use crate::routing::LinkId;
use crate::state::NodeInner;
use crate::NodeError;

/// Why a name of the routing header could not be read.
enum Peek {
    /// The stream ended before a whole name arrived.
    Ended(StreamError),
    /// The bytes are not a name.
    Malformed(String),
}

/// Reads a `Name` at byte `at` of `reader` and leaves it there. Returns
/// the name and its encoded length.
async fn peek_name(reader: &Reader, at: usize) -> Result<(Name, usize), Peek> {
    let len = reader
        .read(at + 1, |buf| (buf.get(at).copied().unwrap_or(0), 0))
        .await
        .map_err(Peek::Ended)?;
    let need = at + 1 + usize::from(len);
    let decoded = reader
        .read(need, |buf| (Name::decode(buf.get(at..).unwrap_or(&[])), 0))
        .await
        .map_err(Peek::Ended)?;
    match decoded {
        Ok(Decoded::Complete { message, consumed }) => Ok((message, consumed)),
        Ok(Decoded::Incomplete { needed }) => Err(Peek::Malformed(format!(
            "name needs {needed} bytes, {} were there",
            need - at
        ))),
        Err(e) => Err(Peek::Malformed(e.to_string())),
    }
}

/// What the node read of a stream's routing header before forwarding it.
struct Header {
    destination: Name,
    /// Read (peeked too) only while reports are wanted.
    source: Option<Name>,
}

/// Handles one stream the peer on `link` opened. Runs as its own
/// sub-future of the link future, so a stream whose header is slow to come
/// delays nothing else.
///
/// Its work runs inside a `DEBUG` span `stream` with the link, the mux
/// stream `id`, and, once read, the `destination` and `source` of the
/// routing header. The source of a forwarded stream is read only while
/// reports are wanted or that span is enabled.
pub(crate) fn handle_stream(
    node: Arc<NodeInner>,
    link: LinkId,
    incoming: MuxIncoming,
) -> impl std::future::Future<Output = ()> {
    let span = tracing::debug_span!(
        "stream",
        %link,
        id = incoming.id(),
        destination = tracing::field::Empty,
        source = tracing::field::Empty,
    );
    handle_stream_in(node, link, incoming, span.clone()).instrument(span)
}

async fn handle_stream_in(node: Arc<NodeInner>, link: LinkId, incoming: MuxIncoming, span: Span) {
    let (stream, reporter) = incoming.into_parts();
    let id = stream.id();
    let (reader, writer) = stream.into_split();
    // Decided once per stream: with no one listening nothing is watched.
    let watch = node.reports.wanted();
    let peeked = peek_name(&reader, 0).await;
    if let Ok((destination, _)) = &peeked {
        span.record("destination", tracing::field::display(destination));
    }
    let (destination, len) = match peeked {
        Ok(found) => found,
        Err(Peek::Ended(e)) => {
            tracing::debug!(stream = id, error = %e, "stream ended before its routing header");
            return;
        }
        Err(Peek::Malformed(reason)) => {
            let error = NodeError::BadHeader { reason };
            tracing::warn!(stream = id, %error, "stream refused");
            writer.close(format!("{}: {error}", node.id));
            if watch {
                if let Some(inbound) = node.hop(link, id) {
                    let epitaph = writer.closed_reason().unwrap_or_default();
                    node.reports
                        .refused(None, None, LocalReason::BadHeader, epitaph, inbound);
                }
            }
            reporter.report(error);
            return;
        }
    };
    if destination == node.id {
        deliver(node, link, id, reader, writer, reporter).await;
    } else {
        // The source is only reported: a stream whose source cannot be
        // read is forwarded all the same, as it would be unwatched. (Its
        // opener wrote it with the destination, so this rarely waits.)
        let source = match watch || !span.is_disabled() {
            true => peek_name(&reader, len).await.ok().map(|(name, _)| name),
            false => None,
        };
        if let Some(source) = &source {
            span.record("source", tracing::field::display(source));
        }
        // Reports name the source only when watched, as before.
        let source = source.filter(|_| watch);
        let header = Header {
            destination,
            source,
        };
        forward(&node, link, id, header, watch, (reader, writer), reporter);
    }
}

/// The stream is for this node: consume the header, note a route back to
/// its source if there is none, and hand it to the application.
async fn deliver(
    node: Arc<NodeInner>,
    link: LinkId,
    id: u32,
    reader: Reader,
    writer: Writer,
    reporter: ErrorReporter,
) {
    let header = async {
        let _destination: Name = reader.read_message().await?;
        reader.read_message::<Name>().await
    };
    let source = match header.await {
        Ok(source) => source,
        Err(StreamError::Closed(epitaph)) => {
            tracing::debug!(
                stream = id,
                ?epitaph,
                "stream ended inside its routing header"
            );
            return;
        }
        Err(e) => {
            let error = NodeError::BadHeader {
                reason: e.to_string(),
            };
            tracing::warn!(stream = id, %error, "stream refused");
            writer.close(format!("{}: {error}", node.id));
            reporter.report(error);
            return;
        }
    };
    tracing::Span::current().record("source", tracing::field::display(&source));
    node.note_source(&source, link);
    tracing::debug!(stream = id, %source, "incoming stream");
    let stream = IncomingStream {
        source,
        stream: Duplex::from_parts(reader, writer),
        origin: node.port(link).map(|port| (port, id)),
    };
    let mut tx = node.incoming_tx.clone();
    let sent = match poll_fn(|cx| tx.poll_ready(cx)).await {
        Ok(()) => tx.try_send(stream).map_err(|e| e.into_inner()),
        Err(_) => Err(stream),
    };
    if let Err(refused) = sent {
        let error = NodeError::NotAccepting {
            node: node.id.clone(),
        };
        refused.stream.writer().close(error.to_string());
        reporter.report(error);
    }
}

/// The stream is for another node: splice it onto the best route over
/// another link (no U-turn), taking the next route if a link has just died,
/// or refuse it. When `watch`, both sides of the spliced stream get an
/// observer that reports its closes (see `crate::report`).
fn forward(
    node: &NodeInner,
    link: LinkId,
    id: u32,
    header: Header,
    watch: bool,
    mut pipes: (Reader, Writer),
    reporter: ErrorReporter,
) {
    let Header {
        destination,
        source,
    } = header;
    let (ports, inbound) = node.next_hops(&destination, link, id, watch);
    // Watched before it is spliced, so no close of the stream can slip by
    // unseen; a close that came before is read off the pipe it went into.
    let watched = match &inbound {
        Some((hop, port)) if !ports.is_empty() => {
            let watched = Forwarded::new(
                Arc::clone(&node.reports),
                destination.clone(),
                source.clone(),
                hop.clone(),
            );
            if let Some(cause) = port.observe(id, watched.inbound_observer()) {
                watched.closed_early(cause, pipes.0.closed_reason());
            }
            Some(watched)
        }
        _ => None,
    };
    for (next, port, peer) in ports {
        let observer = match (&watched, &peer) {
            (Some(watched), Some(peer)) => Some(watched.outbound_observer(next, peer.clone())),
            _ => None,
        };
        match port.attach(pipes.0, pipes.1, observer) {
            Ok(next_id) => {
                tracing::debug!(stream = id, %destination, %next, next_id, "forwarded");
                if let (Some(watched), Some(peer)) = (&watched, peer) {
                    watched.attached(Hop {
                        peer,
                        link: next,
                        stream_id: next_id,
                    });
                }
                return;
            }
            Err(back) => pipes = back,
        }
    }
    if let Some(watched) = &watched {
        watched.refused();
    }
    let (_reader, writer) = pipes;
    let error = NodeError::NoRoute {
        node: node.id.clone(),
        destination: destination.clone(),
    };
    tracing::info!(stream = id, %error, "stream refused");
    writer.close(error.to_string());
    if let Some((hop, _)) = inbound {
        let epitaph = writer.closed_reason().unwrap_or_default();
        node.reports.refused(
            Some(destination),
            source,
            LocalReason::NoRoute,
            epitaph,
            hop,
        );
    }
    reporter.report(error);
}
