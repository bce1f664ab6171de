//! Running one link under a [`Shutdown`](crate::Shutdown) group: until it
//! ends, or until shutdown, then until its streams drain or the deadline
//! passes. Written against futures-io, the node's
//! [`LinkControl`](circuit_node::LinkControl) and the node's
//! [`Timer`] only (a [`Runtime`](crate::runtime::Runtime) is one), so every
//! runtime, and a test on a [`ManualClock`](circuit_node::timer::ManualClock),
//! runs its links with it.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use circuit_frame::Quality;
use circuit_mux::Role;
use circuit_node::timer::Timer;
use circuit_node::{Node, NodeError};
use futures::future::{select, Either};
use futures::io::{AsyncRead, AsyncWrite};

use crate::reconnect::worth_redialling;
use crate::shutdown::{Guard, Outcome};
use crate::{ReconnectPolicy, TransportError};

/// The longest the close frames, the closing of a transport and the wait
/// for the peer's end may take once its link was drained or cut.
pub const CLOSE_LIMIT: Duration = Duration::from_secs(1);

/// Where the transports log a link's life at `INFO`: up (its handshake
/// done, with the peer), down, and each redial, one line each. A quiet
/// program can turn these on alone, e.g. with the filter
/// `warn,circuit_transport::links=info`.
pub const LINK_EVENTS: &str = "circuit_transport::links";

/// Runs a link of `node` over `io` in `role` until it ends, or, once the
/// guard's group shuts down, until its streams drain (every stream but
/// the control stream closed both ways) or the deadline passes. Then the
/// link is closed through its [`LinkControl`](circuit_node::LinkControl):
/// every stream still open gets a close frame with the epitaph
/// "node N is shutting down", the mux flushes them, closes the
/// transport (a socket's write half) and reads it to the peer's end
/// (`circuit_mux::Mux::close`), so the socket is never let go with bytes
/// unread, which would reset the connection and could destroy the close
/// frames before the peer reads them; if that takes longer than
/// [`CLOSE_LIMIT`] (a peer that does not read, or never closes its end),
/// the link is dropped with its transport. The guard records how the link ended. The grace of the
/// shutdown and the close limit are measured on `timer` (the runtime's
/// clock) from the moment the link sees the shutdown begin; nothing is
/// spawned. The handshake is not bounded: see [`run_link_within`].
pub async fn run_link<IO, T>(
    node: Node,
    io: IO,
    role: Role,
    quality: Quality,
    guard: &mut Guard,
    timer: &T,
) -> Result<(), NodeError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    T: Timer + ?Sized,
{
    run_link_within(node, io, role, quality, None, guard, timer).await
}

/// [`run_link`], with the handshake bounded by `handshake`: a peer that
/// has not finished it that long after the link started (measured on
/// `timer`) has the link dropped with its transport, and the link ends
/// with [`NodeError::Handshake`]. A link that comes up is logged at `INFO`
/// on [`LINK_EVENTS`], and so is its end.
pub async fn run_link_within<IO, T>(
    node: Node,
    io: IO,
    role: Role,
    quality: Quality,
    handshake: Option<Duration>,
    guard: &mut Guard,
    timer: &T,
) -> Result<(), NodeError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    T: Timer + ?Sized,
{
    run_link_inner(node, io, role, quality, handshake, None, guard, timer).await
}

/// A listener's count of links in their handshake: one taken per link,
/// given back once its handshake ends, done or not.
#[derive(Debug)]
pub(crate) struct HandshakeSlot(pub(crate) Arc<AtomicUsize>);

impl HandshakeSlot {
    /// Takes a slot of `count` if fewer than `max` are taken.
    pub(crate) fn take(count: &Arc<AtomicUsize>, max: usize) -> Option<HandshakeSlot> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| HandshakeSlot(Arc::clone(count)))
    }
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// [`run_link_within`], holding `slot` until the handshake ends.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run_link_inner<IO, T>(
    node: Node,
    io: IO,
    role: Role,
    quality: Quality,
    handshake: Option<Duration>,
    slot: Option<HandshakeSlot>,
    guard: &mut Guard,
    timer: &T,
) -> Result<(), NodeError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    T: Timer + ?Sized,
{
    let group = guard.group().clone();
    let (control, link) = node.link_io_with_control(io, role, quality);
    let mut link = pin!(link);

    // Until the handshake is done: bounded, and a shutdown may come first.
    let shaken = async {
        let done = pin!(control.handshaken());
        match handshake {
            Some(limit) => {
                let deadline = timer.sleep_until(timer.now().saturating_add(limit));
                matches!(select(done, deadline).await, Either::Left(_))
            }
            None => {
                done.await;
                true
            }
        }
    };
    let (shaken, draining) = (pin!(shaken), pin!(group.draining()));
    let grace = match select(link.as_mut(), select(shaken, draining)).await {
        Either::Left((result, _)) => {
            if let Err(e) = &result {
                // No peer to name yet: what ended it (garbage from a
                // command, a peer of another protocol) is said here.
                tracing::info!(target: LINK_EVENTS, error = %e, "link failed in its handshake");
            }
            return result;
        }
        Either::Right((Either::Left((true, _)), _)) => None,
        Either::Right((Either::Left((false, _)), _)) => {
            let limit = handshake.unwrap_or_default();
            tracing::info!(
                target: LINK_EVENTS,
                ?limit,
                "no handshake in time; link dropped"
            );
            return Err(NodeError::Handshake {
                reason: format!("no handshake within {limit:?}"),
            });
        }
        Either::Right((Either::Right((grace, _)), _)) => Some(grace),
    };
    drop(slot);
    let peer = control.peer();
    if let Some(peer) = &peer {
        tracing::info!(target: LINK_EVENTS, %peer, "link up");
    }
    let down = |result: &Result<(), NodeError>| {
        if let Some(peer) = &peer {
            match result {
                Ok(()) => tracing::info!(target: LINK_EVENTS, %peer, "link down"),
                Err(e) => tracing::info!(target: LINK_EVENTS, %peer, error = %e, "link down"),
            }
        }
    };
    let grace = match grace {
        Some(grace) => grace,
        None => match select(link.as_mut(), pin!(group.draining())).await {
            Either::Left((result, _)) => {
                down(&result);
                return result;
            }
            Either::Right((grace, _)) => grace,
        },
    };
    let deadline = timer.now().saturating_add(grace);

    tracing::debug!(open = control.streams_open(), "link draining");
    let (drained, cut) = (pin!(control.drained()), pin!(timer.sleep_until(deadline)));
    let drained_or_cut = select(drained, cut);
    guard.outcome = match select(link.as_mut(), drained_or_cut).await {
        Either::Left((result, _)) => {
            down(&result);
            return result;
        }
        Either::Right((Either::Left(_), _)) => Outcome::Drained,
        Either::Right((Either::Right(_), _)) => Outcome::Cut,
    };
    let streams = control.streams_open();
    control.close(&format!("node {} is shutting down", node.id()));
    let limit = timer.sleep_until(timer.now().saturating_add(CLOSE_LIMIT));
    match select(link, limit).await {
        Either::Left((Ok(()), _)) => {
            tracing::info!(?guard.outcome, streams, "link closed for shutdown")
        }
        Either::Left((Err(e), _)) => tracing::debug!(error = %e, "the link failed while closing"),
        Either::Right(_) => tracing::debug!("the link did not close in time"),
    }
    down(&Ok(()));
    Ok(())
}

/// How a dialled link is run by [`run_dialled`]: the handshake's bound
/// and the reconnect policy.
#[derive(Debug, Clone, Default)]
pub struct Dialling {
    /// The handshake's bound ([`run_link_within`]).
    pub handshake: Option<Duration>,
    /// Dial again after a drop, or after a failed first dial.
    pub policy: Option<ReconnectPolicy>,
}

/// Runs the client end of a dialled link over `first` (the transport and
/// its quality) with [`run_link_within`], and with a policy dials again
/// with `dial` after it drops, until the group shuts down or the policy
/// gives up. `first` may be the error of a first dial that failed: with a
/// policy it is dialled again as after a drop (the failure counts as an
/// attempt), without one that error is returned. The waits between dials
/// are a [`Backoff`](crate::Backoff) of the policy, measured on `timer`;
/// each is logged at `INFO` on [`LINK_EVENTS`], with why. Returns the
/// link's error, or the last failed dial's.
pub async fn run_dialled<IO, D, DF, T>(
    node: Node,
    first: Result<(IO, Quality), TransportError>,
    dialling: Dialling,
    mut guard: Guard,
    mut dial: D,
    timer: T,
) -> Result<(), TransportError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    D: FnMut() -> DF,
    DF: Future<Output = Result<(IO, Quality), TransportError>>,
    T: Timer,
{
    let group = guard.group().clone();
    let Dialling { handshake, policy } = dialling;
    let mut backoff = policy.as_ref().map(|policy| (policy, policy.backoff()));
    let mut next = first;
    loop {
        // A link that came up and ended, or the failure of the dial before.
        let (result, failed) = match next {
            Ok((io, quality)) => {
                let result = run_link_within(
                    node.clone(),
                    io,
                    Role::Client,
                    quality,
                    handshake,
                    &mut guard,
                    &timer,
                )
                .await;
                (result.map_err(TransportError::from), 0)
            }
            Err(e) => (Err(e), 1),
        };
        let (policy, backoff) = match &mut backoff {
            Some((policy, backoff))
                if !group.is_shutting_down()
                    && worth_redialling(&result)
                    && !policy.gives_up_after(failed) =>
            {
                (*policy, backoff)
            }
            _ => return result,
        };
        if let Err(e) = &result {
            if failed > 0 {
                tracing::info!(target: LINK_EVENTS, error = %e, "cannot connect");
            }
        }
        let mut failed = failed;
        let mut waits = 0;
        next = loop {
            let wait = backoff.delay(waits);
            waits += 1;
            tracing::info!(target: LINK_EVENTS, ?wait, failed, "dialling again");
            let sleep = timer.sleep_until(timer.now().saturating_add(wait));
            if let Either::Right(_) = select(sleep, pin!(group.draining())).await {
                return Ok(());
            }
            let attempt = pin!(dial());
            match select(attempt, pin!(group.draining())).await {
                Either::Left((Ok(up), _)) => break Ok(up),
                Either::Left((Err(e), _)) => {
                    failed += 1;
                    tracing::info!(target: LINK_EVENTS, error = %e, failed, "redial failed");
                    if policy.gives_up_after(failed) {
                        return Err(e);
                    }
                }
                Either::Right(_) => return Ok(()),
            }
        };
    }
}
