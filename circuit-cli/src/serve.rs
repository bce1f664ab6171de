//! What a node does with a stream that arrives for it: echo it, or splice
//! it to a TCP connection.

use circuit_node::IncomingStream;
use circuit_stream::Duplex;
use futures::{AsyncWriteExt, StreamExt};
use tokio::net::TcpStream;

use crate::error::CliError;

/// Writes back every byte read from the stream, then closes its write
/// half when the opener closes theirs.
pub async fn echo(stream: Duplex) -> Result<u64, CliError> {
    let (reader, mut writer) = stream.into_split();
    // From the reader's pipe straight into the writer's: one copy, and the
    // bytes keep their room (so the peer's credit) until the writer's pipe
    // has taken them (`copy` would go through an 8 KiB buffer).
    let copied = reader
        .copy_to(&mut writer)
        .await
        .map_err(CliError::io("echo"))?;
    AsyncWriteExt::close(&mut writer)
        .await
        .map_err(CliError::io("echo close"))?;
    Ok(copied)
}

/// Reads the stream to its end and drops the bytes, then closes this
/// side, so the opener knows every byte was read.
pub async fn discard(stream: Duplex) -> Result<u64, CliError> {
    let (reader, mut writer) = stream.into_split();
    let read = reader
        .copy_to(&mut futures::io::sink())
        .await
        .map_err(CliError::io("discard"))?;
    AsyncWriteExt::close(&mut writer)
        .await
        .map_err(CliError::io("discard close"))?;
    Ok(read)
}

/// Copies both ways between a stream and a new TCP connection to
/// `address`, each direction closed after its end.
pub async fn splice_to_tcp(stream: Duplex, address: &str) -> Result<(u64, u64), CliError> {
    let mut tcp = TcpStream::connect(address)
        .await
        .map_err(CliError::io(format!("connect to {address}")))?;
    let _ = tcp.set_nodelay(true);
    splice(stream, &mut tcp).await
}

/// Copies both ways between a stream and a TCP connection until both
/// directions are closed, with no copy in user space
/// ([`circuit_transport_tokio::splice`]); returns the bytes (stream to TCP,
/// TCP to stream).
pub async fn splice(stream: Duplex, tcp: &mut TcpStream) -> Result<(u64, u64), CliError> {
    circuit_transport_tokio::splice(stream, tcp)
        .await
        .map_err(CliError::io("splice"))
}

/// What a node does with each incoming stream.
#[derive(Debug, Clone)]
pub enum Service {
    /// [`echo`] it.
    Echo,
    /// [`discard`] it.
    Discard,
    /// [`splice_to_tcp`] to this address.
    ForwardTo(String),
}

/// Serves every incoming stream with `service`, each in its own task, until
/// the node is gone. An echo runs inside the link the stream came in on
/// ([`IncomingStream::loop_back`]: no task, no copy) where it can, and
/// copies otherwise.
pub async fn serve(mut incoming: circuit_node::IncomingStreams, service: Service) {
    while let Some(arrived) = incoming.next().await {
        let arrived = match service {
            Service::Echo => {
                let source = arrived.source.clone();
                match arrived.loop_back() {
                    Ok(()) => {
                        tracing::debug!(%source, "stream echoed inside its link");
                        continue;
                    }
                    Err(arrived) => arrived,
                }
            }
            _ => arrived,
        };
        let IncomingStream { source, stream, .. } = arrived;
        let service = service.clone();
        tokio::spawn(async move {
            let result = match &service {
                Service::Echo => echo(stream).await.map(|n| (n, n)),
                Service::Discard => discard(stream).await.map(|n| (n, 0)),
                Service::ForwardTo(address) => splice_to_tcp(stream, address).await,
            };
            match result {
                Ok((inbound, outbound)) => {
                    tracing::debug!(%source, inbound, outbound, "stream done")
                }
                Err(e) => tracing::info!(%source, error = %e, "stream failed"),
            }
        });
    }
}
