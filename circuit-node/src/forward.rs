//! What a node does with a stream a neighbour opened (PROTOCOL 2.4): read
//! the destination without consuming it, then deliver the stream here,
//! splice it onto the next link, or refuse it.

use std::future::poll_fn;
use std::sync::Arc;

use circuit_frame::{Decode, Decoded, Name};
use circuit_mux::{ErrorReporter, IncomingStream as MuxIncoming};
use circuit_stream::{Duplex, Reader, StreamError, Writer};

use crate::events::IncomingStream;
use crate::node::NodeInner;
use crate::routing::{LinkId, Role};
use crate::NodeError;

/// Why the destination could not be read.
enum Peek {
    /// The stream ended before a whole name arrived.
    Ended(StreamError),
    /// The bytes are not a name.
    Malformed(String),
}

/// Reads `Name(destination)` from the start of `reader` and leaves it
/// there. Returns the name and its encoded length.
async fn peek_name(reader: &Reader) -> Result<(Name, usize), Peek> {
    let len = reader
        .read(1, |buf| (buf.first().copied().unwrap_or(0), 0))
        .await
        .map_err(Peek::Ended)?;
    let need = 1 + usize::from(len);
    let decoded = reader
        .read(need, |buf| (Name::decode(buf), 0))
        .await
        .map_err(Peek::Ended)?;
    match decoded {
        Ok(Decoded::Complete { message, consumed }) => Ok((message, consumed)),
        Ok(Decoded::Incomplete { needed }) => Err(Peek::Malformed(format!(
            "name needs {needed} bytes, {need} were there"
        ))),
        Err(e) => Err(Peek::Malformed(e.to_string())),
    }
}

/// Handles one stream the peer on `link` opened. Runs as its own
/// sub-future of the link future, so a stream whose header is slow to come
/// delays nothing else.
pub(crate) async fn handle_stream(node: Arc<NodeInner>, link: LinkId, incoming: MuxIncoming) {
    let (stream, reporter) = incoming.into_parts();
    let id = stream.id();
    let (reader, writer) = stream.into_split();
    let destination = match peek_name(&reader).await {
        Ok((name, _)) => name,
        Err(Peek::Ended(e)) => {
            tracing::debug!(stream = id, error = %e, "stream ended before its routing header");
            return;
        }
        Err(Peek::Malformed(reason)) => {
            let error = NodeError::BadHeader { reason };
            tracing::warn!(stream = id, %error, "stream refused");
            writer.close(format!("{}: {error}", node.id));
            reporter.report(error);
            return;
        }
    };
    if destination == node.id {
        deliver(node, link, id, reader, writer, reporter).await;
    } else {
        forward(&node, link, id, destination, reader, writer, reporter);
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
    {
        let now = node.now();
        let mut shared = node.lock();
        if let Err(e) = shared.core.note_incoming_stream_source(&source, link, now) {
            tracing::debug!(%source, error = %e, "no route recorded for the stream's source");
        }
        shared.pump(now);
    }
    tracing::debug!(stream = id, %source, "incoming stream");
    let stream = IncomingStream {
        source,
        stream: Duplex::from_parts(reader, writer),
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
/// or refuse it.
fn forward(
    node: &NodeInner,
    link: LinkId,
    id: u32,
    destination: Name,
    reader: Reader,
    writer: Writer,
    reporter: ErrorReporter,
) {
    let ports = {
        let shared = node.lock();
        if node.config.role == Role::Router {
            shared
                .core
                .forwarding_routes(&destination, link)
                .into_iter()
                .filter_map(|(next, _)| {
                    shared.links.get(&next).map(|l| (next, Arc::clone(&l.port)))
                })
                .collect()
        } else {
            Vec::new()
        }
    };
    let mut pipes = (reader, writer);
    for (next, port) in ports {
        match port.attach(pipes.0, pipes.1) {
            Ok(next_id) => {
                tracing::debug!(stream = id, %destination, %next, next_id, "forwarded");
                return;
            }
            Err(back) => pipes = back,
        }
    }
    let (_reader, writer) = pipes;
    let error = NodeError::NoRoute {
        node: node.id.clone(),
        destination,
    };
    tracing::info!(stream = id, %error, "stream refused");
    writer.close(error.to_string());
    reporter.report(error);
}
