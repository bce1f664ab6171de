//! `circuit cat`: netcat over the mesh. Stdin goes to a new stream to a
//! peer, or with `--listen` to the first stream another node opens to this
//! one; the stream comes out on stdout.

use std::sync::atomic::Ordering;
use std::time::Duration;

use circuit_node::{IncomingStream, IncomingStreams};
use circuit_transport_tokio::tokio_io;
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::cli::CatArgs;
use crate::error::CliError;
use crate::mesh::{any_ended, check_name, make_node, wait_for_peer, Dialled, Result};
use crate::progress::{track, Meter, Progress, Target};
use crate::size::format_bytes;

/// Opens the stream (or, with `--listen`, takes the first that arrives),
/// copies both ways, closes the write half at end of stdin and returns
/// when the peer has closed its side.
pub async fn run(args: CatArgs, timeout: Duration) -> Result<()> {
    let identity = &args.identity;
    let (node, _, incoming) = make_node(
        &identity.name,
        &identity.protocol,
        false,
        identity.mux_config(),
    )?;
    let mut links =
        vec![Dialled::connect(&node, &args.connect, Default::default(), timeout).await?];
    let (stream, peer) = match &args.peer {
        Some(peer) => {
            check_name("the peer name", peer)?;
            drop(incoming);
            wait_for_peer(&node, &mut links, peer, timeout).await?;
            (node.connect_to_peer(peer).await?, peer.clone())
        }
        None => {
            let IncomingStream { source, stream, .. } = tokio::select! {
                first = accept(incoming, timeout) => first?,
                e = any_ended(&mut links) => return Err(e),
            };
            eprintln!("accepted from {source}");
            (stream, source.into_string())
        }
    };
    let (mut from_peer, mut to_peer) = tokio::io::split(tokio_io(stream));

    let sent = Meter::default();
    let received = Meter::default();
    let total = Meter::default();
    let upload = async {
        copy(&mut tokio::io::stdin(), &mut to_peer, &[&sent, &total]).await?;
        // End of stdin: the peer reads end of stream; its answer goes on.
        to_peer
            .shutdown()
            .await
            .map_err(CliError::io("close the stream"))
    };
    let download = async {
        let mut stdout = tokio::io::stdout();
        copy(&mut from_peer, &mut stdout, &[&received, &total]).await?;
        stdout.flush().await.map_err(CliError::io("stdout"))
    };
    let both = async {
        let mut upload = std::pin::pin!(upload);
        let mut uploaded = false;
        let mut download = std::pin::pin!(download);
        loop {
            tokio::select! {
                result = &mut upload, if !uploaded => {
                    if let Err(e) = result {
                        tracing::info!(error = %e, "sending stopped");
                    }
                    uploaded = true;
                }
                // The peer closed its side: what it sent is all out.
                result = &mut download => return result,
            }
        }
    };
    let detail = || {
        format!(
            "sent {}, received {}",
            format_bytes(sent.load(Ordering::Relaxed)),
            format_bytes(received.load(Ordering::Relaxed))
        )
    };
    let progress = Progress::new(peer, None, Target::StderrIfTerminal);
    let result = tokio::select! {
        result = track(progress, &total, detail, both) => result,
        e = any_ended(&mut links) => return Err(e),
    };
    // The peer closed its side, maybe while stdin was still open: close
    // ours cleanly too, and let the link carry both closes out before the
    // process ends, so the peer reads end of stream, not a cut link.
    let _ = to_peer.shutdown().await;
    drop((from_peer, to_peer));
    for link in &links {
        link.cut(LINGER).await;
    }
    result
}

/// How long the link may take to carry the stream's last bytes and closes
/// out at the end.
const LINGER: Duration = Duration::from_secs(1);

/// The first stream another node opens to this one, waited for at most
/// `timeout`. `incoming` is dropped then: the node refuses later streams.
async fn accept(mut incoming: IncomingStreams, timeout: Duration) -> Result<IncomingStream> {
    match tokio::time::timeout(timeout, incoming.next()).await {
        Ok(Some(first)) => Ok(first),
        Ok(None) => Err(CliError::Usage("the node stopped accepting streams")),
        Err(_) => Err(CliError::Timeout {
            what: "a stream to this node".into(),
            waited: timeout,
        }),
    }
}

/// Copies `from` to `to` until end of input, counting bytes in `meters`.
async fn copy(
    from: &mut (impl AsyncRead + Unpin),
    to: &mut (impl AsyncWrite + Unpin),
    meters: &[&Meter],
) -> Result<()> {
    let mut buf = vec![0; 64 * 1024];
    loop {
        let n = from.read(&mut buf).await.map_err(CliError::io("read"))?;
        if n == 0 {
            return Ok(());
        }
        to.write_all(&buf[..n])
            .await
            .map_err(CliError::io("write"))?;
        for meter in meters {
            meter.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
}
