//! The link future after its handshake: one loop that polls the driver,
//! the peer's new streams, the control stream both ways and the timer.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use circuit_frame::{Decode, Decoded, NodeState, Quality};
use circuit_mux::{Driver, Incoming, Mux};
use circuit_stream::{Reader, StreamError, Writer};
use futures::future::BoxFuture;
use futures::io::{AsyncRead, AsyncWrite};
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use tracing::Instrument;

use super::control::LinkSide;
use super::handshake::handshake;
use super::port::{DriverSlot, LinkPort, LinkSignal};
use crate::forward::handle_stream;
use crate::routing::{LinkId, Role};
use crate::state::{LinkEntry, NodeInner};
use crate::timer::Sleep;
use crate::NodeError;

/// Route updates applied per lock of the node, so a flood of them cannot
/// keep the lock for long.
const CONTROL_BATCH: usize = 256;
/// Times the timer may fire within one poll before the loop yields.
const TIMER_ROUNDS: usize = 8;

/// Runs the link on `port` (whose mux is `mux`), reporting to `side`.
pub(super) async fn run<IO>(
    node: Arc<NodeInner>,
    port: Arc<LinkPort>,
    mux: Mux,
    mut incoming: Incoming,
    driver: Driver<IO>,
    quality: Quality,
    side: LinkSide,
) -> Result<(), NodeError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let role = mux.role();
    // Epitaphs of the link's end say which node saw it end, and (once the
    // handshake names it) to which neighbour: a reader behind routers
    // learns which hop failed.
    mux.set_local_name(node.id.as_str());
    let mut slot = DriverSlot::new(Arc::clone(&port), driver);
    let shaken = {
        let mut shake = pin!(handshake(
            &node.id,
            &node.protocol,
            &mux,
            &mut incoming,
            &side
        ));
        poll_fn(|cx| {
            let closing = side.begin(cx);
            if !closing {
                if let Poll::Ready(result) = shake.as_mut().poll(cx) {
                    return Poll::Ready(result.map(Some));
                }
            }
            match slot.poll(cx) {
                Poll::Ready(Ok(())) if closing => return Poll::Ready(Ok(None)),
                Poll::Ready(ended) => {
                    // The driver may have delivered the peer's Identify in
                    // the same turn it saw the link end (a peer that found a
                    // mismatch hangs up at once): look at it before saying
                    // the link just closed.
                    if let Poll::Ready(result) = shake.as_mut().poll(cx) {
                        return Poll::Ready(result.map(Some));
                    }
                    return Poll::Ready(Err(match ended {
                        Ok(()) => NodeError::Handshake {
                            reason: "the link closed during the handshake".into(),
                        },
                        Err(e) => NodeError::Mux(e),
                    }));
                }
                Poll::Pending => {}
            }
            side.report();
            Poll::Pending
        })
        .await
    };
    if let Ok(Some(shaken)) = &shaken {
        mux.set_peer_name(shaken.peer.as_str());
    }
    drop(mux);
    let shaken = match shaken {
        Ok(Some(shaken)) => shaken,
        Ok(None) => {
            tracing::info!("link closed by its control during the handshake");
            return Ok(());
        }
        Err(e) => {
            // Returning drops the driver and with it the transport.
            tracing::warn!(error = %e, "handshake failed, closing the link");
            return Err(e);
        }
    };
    side.set_peer(shaken.peer.clone());

    let signal = Arc::new(LinkSignal::default());
    signal.deadline.store(true, Ordering::Release);
    let peer = shaken.peer.clone();
    let entry = LinkEntry::new(peer.clone(), quality, role, port, Arc::clone(&signal));
    let link = node.add_link(entry, shaken.first)?;
    let span = tracing::info_span!("up", %link, %peer);
    span.in_scope(|| tracing::info!("link up"));
    let mut run = LinkRun {
        leaf: node.config.role == Role::Leaf,
        node,
        link,
        slot,
        incoming: Some(incoming),
        streams: FuturesUnordered::new(),
        control_in: Some(shaken.control_in),
        control_need: NodeState::MIN_LEN,
        control_out: Some(shaken.control_out),
        out_buf: Vec::new(),
        out_pos: 0,
        greeted: false,
        signal,
        sleep: None,
        side,
    };
    let result = poll_fn(|cx| run.poll(cx)).instrument(span.clone()).await;
    span.in_scope(|| match &result {
        Ok(()) => tracing::info!("link closed"),
        Err(e) => tracing::info!(error = %e, "link failed"),
    });
    result
}

/// The state of a link that is up. Dropping it takes the link out of the
/// node (its routes go) and drops the driver (its streams end).
struct LinkRun<IO> {
    node: Arc<NodeInner>,
    link: LinkId,
    leaf: bool,
    slot: DriverSlot<IO>,
    incoming: Option<Incoming>,
    streams: FuturesUnordered<BoxFuture<'static, ()>>,
    control_in: Option<Reader>,
    control_need: usize,
    control_out: Option<Writer>,
    out_buf: Vec<u8>,
    out_pos: usize,
    greeted: bool,
    signal: Arc<LinkSignal>,
    sleep: Option<(Duration, Sleep)>,
    /// After `slot`: the link is marked ended once its transport is gone.
    side: LinkSide,
}

/// One step of decoding the control stream.
enum Step {
    Message(NodeState),
    Need(usize),
}

impl<IO: AsyncRead + AsyncWrite + Unpin> LinkRun<IO> {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), NodeError>> {
        self.signal.waker.register(cx.waker());
        self.side.begin(cx);
        if let Poll::Ready(result) = self.slot.poll(cx) {
            if result.is_ok() && self.side.is_closing() {
                tracing::info!("link closed by its control");
            }
            return Poll::Ready(result.map_err(NodeError::Mux));
        }
        self.poll_incoming(cx);
        while let Poll::Ready(Some(())) = self.streams.poll_next_unpin(cx) {}
        if let Err(e) = self
            .poll_control_in(cx)
            .and_then(|()| self.poll_control_out(cx))
        {
            return Poll::Ready(Err(e));
        }
        self.poll_timer(cx);
        self.side.report();
        Poll::Pending
    }

    /// Takes every new stream the peer opened into its own sub-future.
    fn poll_incoming(&mut self, cx: &mut Context<'_>) {
        let Some(incoming) = self.incoming.as_mut() else {
            return;
        };
        loop {
            match incoming.poll_next_unpin(cx) {
                Poll::Ready(Some(stream)) => {
                    let work = handle_stream(Arc::clone(&self.node), self.link, stream);
                    self.streams.push(Box::pin(work.in_current_span()));
                }
                Poll::Ready(None) => {
                    self.incoming = None;
                    return;
                }
                Poll::Pending => return,
            }
        }
    }

    /// Reads route updates and applies them in batches.
    fn poll_control_in(&mut self, cx: &mut Context<'_>) -> Result<(), NodeError> {
        let mut batch = Vec::new();
        let mut result = Ok(());
        while let Some(reader) = self.control_in.as_ref() {
            let polled =
                reader.poll_read_with(cx, self.control_need, |buf| match NodeState::decode(buf) {
                    Ok(Decoded::Complete { message, consumed }) => {
                        (Ok(Step::Message(message)), consumed)
                    }
                    Ok(Decoded::Incomplete { needed }) => (Ok(Step::Need(needed)), 0),
                    Err(e) => (Err(e), 0),
                });
            match polled {
                Poll::Ready(Ok(Ok(Step::Message(message)))) => {
                    self.control_need = NodeState::MIN_LEN;
                    batch.push(message);
                    if batch.len() >= CONTROL_BATCH {
                        self.apply(std::mem::take(&mut batch));
                    }
                }
                Poll::Ready(Ok(Ok(Step::Need(needed)))) => {
                    self.control_need = needed.max(self.control_need.saturating_add(1));
                }
                Poll::Ready(Ok(Err(e))) => {
                    result = Err(NodeError::Control {
                        reason: format!("bad NodeState: {e}"),
                    });
                    break;
                }
                Poll::Ready(Err(StreamError::Closed(epitaph))) => {
                    // A leaf closes its direction after its Online; a
                    // router's closes only with the link.
                    tracing::debug!(?epitaph, "peer closed its control stream");
                    self.control_in = None;
                }
                Poll::Ready(Err(e)) => {
                    result = Err(NodeError::Control {
                        reason: e.to_string(),
                    });
                    break;
                }
                Poll::Pending => break,
            }
        }
        if !batch.is_empty() {
            self.apply(batch);
        }
        result
    }

    fn apply(&self, batch: Vec<NodeState>) {
        self.node.receive(self.link, batch);
    }

    /// Writes queued route updates; a leaf closes its direction once its
    /// first batch is out (PROTOCOL 2.1).
    fn poll_control_out(&mut self, cx: &mut Context<'_>) -> Result<(), NodeError> {
        if self.signal.overflow.load(Ordering::Acquire) {
            return Err(NodeError::Control {
                reason: "the peer does not read its control stream: route updates backed up".into(),
            });
        }
        while let Some(writer) = self.control_out.as_ref() {
            if self.out_pos == self.out_buf.len() {
                self.out_buf.clear();
                self.out_pos = 0;
                if self.signal.outbox.swap(false, Ordering::AcqRel) {
                    self.greeted = true;
                    self.node.encode_outbox(self.link, &mut self.out_buf);
                }
                if self.out_buf.is_empty() {
                    if self.leaf && self.greeted {
                        writer.close("");
                        self.control_out = None;
                    }
                    return Ok(());
                }
            }
            let rest = self.out_buf.get(self.out_pos..).unwrap_or(&[]);
            match writer.poll_write_some(cx, rest) {
                Poll::Ready(Ok(n)) => self.out_pos += n,
                Poll::Ready(Err(e)) => {
                    // The link is going; the driver will say why.
                    tracing::debug!(error = %e, "control stream closed for writing");
                    self.control_out = None;
                }
                Poll::Pending => return Ok(()),
            }
        }
        Ok(())
    }

    /// Sleeps until the routing core's next deadline, then lets it act.
    fn poll_timer(&mut self, cx: &mut Context<'_>) {
        for _ in 0..TIMER_ROUNDS {
            if self.signal.deadline.swap(false, Ordering::AcqRel) {
                let deadline = self.node.deadline();
                let armed = self.sleep.as_ref().map(|(at, _)| *at);
                if deadline != armed {
                    self.sleep = deadline.map(|at| (at, self.node.timer.sleep_until(at)));
                }
            }
            let Some((_, sleep)) = self.sleep.as_mut() else {
                return;
            };
            match sleep.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    self.sleep = None;
                    self.node.pump();
                    self.signal.deadline.store(true, Ordering::Release);
                }
                Poll::Pending => return,
            }
        }
        cx.waker().wake_by_ref();
    }
}

impl<IO> Drop for LinkRun<IO> {
    fn drop(&mut self) {
        self.node.remove_link(self.link);
    }
}
