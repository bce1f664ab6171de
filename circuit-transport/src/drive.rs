//! Running one link under a [`Shutdown`](crate::Shutdown) group: until it
//! ends, or until shutdown, then until its streams drain or the deadline
//! passes. Written against futures-io, the node's
//! [`LinkControl`](circuit_node::LinkControl) and the node's
//! [`Timer`] only (a [`Runtime`](crate::runtime::Runtime) is one), so every
//! runtime, and a test on a [`ManualClock`](circuit_node::timer::ManualClock),
//! runs its links with it.

use std::future::Future;
use std::pin::pin;
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
/// spawned.
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
    let group = guard.group().clone();
    let (control, link) = node.link_io_with_control(io, role, quality);
    let mut link = pin!(link);
    let grace = match select(link.as_mut(), pin!(group.draining())).await {
        Either::Left((result, _)) => return result,
        Either::Right((grace, _)) => grace,
    };
    let deadline = timer.now().saturating_add(grace);

    tracing::debug!(open = control.streams_open(), "link draining");
    let (drained, cut) = (pin!(control.drained()), pin!(timer.sleep_until(deadline)));
    let drained_or_cut = select(drained, cut);
    guard.outcome = match select(link.as_mut(), drained_or_cut).await {
        Either::Left((result, _)) => return result,
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
    Ok(())
}

/// Runs the client end of a dialled link over `first` (the transport and
/// its quality) with [`run_link`], and with a policy dials again with
/// `dial` after it drops, until the group shuts down or the policy gives
/// up. The waits between dials are measured on `timer`. Returns the
/// link's error, or the last failed redial's.
pub async fn run_dialled<IO, D, DF, T>(
    node: Node,
    first: (IO, Quality),
    policy: Option<ReconnectPolicy>,
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
    let mut next = first;
    loop {
        let (io, quality) = next;
        let result = run_link(node.clone(), io, Role::Client, quality, &mut guard, &timer).await;
        let policy = match &policy {
            Some(policy) if !group.is_shutting_down() && worth_redialling(&result) => policy,
            _ => return result.map_err(Into::into),
        };
        match &result {
            Ok(()) => tracing::info!("link dropped, dialling again"),
            Err(e) => tracing::info!(error = %e, "link failed, dialling again"),
        }
        let mut failed = 0;
        next = loop {
            let wait = timer.sleep_until(timer.now().saturating_add(policy.delay(failed)));
            if let Either::Right(_) = select(wait, pin!(group.draining())).await {
                return Ok(());
            }
            let attempt = pin!(dial());
            match select(attempt, pin!(group.draining())).await {
                Either::Left((Ok(next), _)) => break next,
                Either::Left((Err(e), _)) => {
                    failed += 1;
                    tracing::debug!(error = %e, failed, "redial failed");
                    if policy.gives_up_after(failed) {
                        return Err(e);
                    }
                }
                Either::Right(_) => return Ok(()),
            }
        };
    }
}
