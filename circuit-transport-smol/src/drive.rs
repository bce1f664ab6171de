//! Running one link under a [`Shutdown`] group: until it ends, or until
//! shutdown, then until its streams drain or the deadline passes.
//! Written against futures-io and a sleep function only, so the tokio and
//! smol crates share it word for word.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use circuit_frame::Quality;
use circuit_mux::Role;
use circuit_node::{Node, NodeError};
use futures::future::{select, Either};
use futures::io::{AsyncRead, AsyncWrite};

use crate::shutdown::{Guard, Outcome};
use crate::tap::Tap;

/// The longest the epitaphs and the closing of a transport may take once
/// its link was drained or cut.
pub(crate) const CLOSE_LIMIT: Duration = Duration::from_secs(1);

/// Runs a link over `io` until it ends, or until its group shuts down and
/// then until its streams drain (every stream closed both ways) or the
/// deadline passes. A link cut at the deadline sends a close frame with an
/// epitaph on every stream still open. The guard records how it ended.
pub(crate) async fn run_link<IO, S, F>(
    node: Node,
    io: IO,
    role: Role,
    quality: Quality,
    guard: &mut Guard,
    sleep_until: S,
) -> Result<(), NodeError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Fn(Instant) -> F,
    F: Future<Output = ()>,
{
    let tap = Tap::new(io);
    let group = guard.group().clone();
    let mut link = Some(Box::pin(node.link_io(tap.clone(), role, quality)));
    let deadline = {
        let Some(running) = link.as_mut() else {
            return Ok(());
        };
        match select(running, pin!(group.draining())).await {
            Either::Left((result, _)) => return result,
            Either::Right((deadline, _)) => deadline,
        }
    };

    tracing::debug!(open = tap.open_streams(), "link draining");
    let mut cut = pin!(sleep_until(deadline));
    let ended = poll_fn(|cx| {
        let Some(running) = link.as_mut() else {
            return Poll::Ready(None);
        };
        if let Poll::Ready(result) = running.as_mut().poll(cx) {
            return Poll::Ready(Some(result));
        }
        // The tap changes only while the link future runs, so looking after
        // each poll sees every stream end.
        if tap.open_streams() == 0 {
            guard.outcome = Outcome::Drained;
            return Poll::Ready(None);
        }
        if cut.as_mut().poll(cx).is_ready() {
            guard.outcome = Outcome::Cut;
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await;
    if let Some(result) = ended {
        return result;
    }
    // Dropping the link future drops its mux; the transport stays with us.
    drop(link);
    let epitaph = format!("node {} is shutting down", node.id());
    let close = pin!(tap.close_with(&epitaph));
    let limit = pin!(sleep_until(Instant::now() + CLOSE_LIMIT));
    match select(close, limit).await {
        Either::Left((Ok(streams), _)) => {
            tracing::info!(?guard.outcome, streams, "link closed for shutdown")
        }
        Either::Left((Err(e), _)) => {
            tracing::debug!(error = %e, "closing the transport failed")
        }
        Either::Right(_) => tracing::debug!("the transport did not close in time"),
    }
    Ok(())
}

/// When a dropped link is dialled again: exponential backoff between
/// attempts, from [`initial`](Self::initial) up to [`max`](Self::max),
/// optionally giving up after a number of failed attempts in a row.
///
/// The first redial waits `initial` after the link ended; each failed
/// attempt multiplies the wait by `factor`; a link that came up starts the
/// count again. A link refused for a version or protocol mismatch is not
/// dialled again: that will not change by itself.
///
/// ```
/// # use std::time::Duration;
/// # use circuit_transport_smol::ReconnectPolicy;
/// let policy = ReconnectPolicy::default()
///     .initial(Duration::from_millis(50))
///     .max(Duration::from_secs(5))
///     .max_attempts(Some(20));
/// assert_eq!(policy.delay(0), Duration::from_millis(50));
/// assert_eq!(policy.delay(3), Duration::from_millis(400));
/// assert_eq!(policy.delay(30), Duration::from_secs(5));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconnectPolicy {
    initial: Duration,
    max: Duration,
    factor: u32,
    max_attempts: Option<u32>,
}

impl Default for ReconnectPolicy {
    /// 100 ms doubling up to 10 s, for ever.
    fn default() -> Self {
        ReconnectPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
            factor: 2,
            max_attempts: None,
        }
    }
}

impl ReconnectPolicy {
    /// The wait before the first redial.
    pub fn initial(mut self, initial: Duration) -> Self {
        self.initial = initial;
        self
    }

    /// The longest wait between two attempts.
    pub fn max(mut self, max: Duration) -> Self {
        self.max = max;
        self
    }

    /// What each failed attempt multiplies the wait by (at least 1).
    pub fn factor(mut self, factor: u32) -> Self {
        self.factor = factor.max(1);
        self
    }

    /// Failed attempts in a row before giving up (`None`: never).
    pub fn max_attempts(mut self, attempts: Option<u32>) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// The wait before attempt `failed + 1`, after `failed` failures.
    pub fn delay(&self, failed: u32) -> Duration {
        let mut delay = self.initial;
        for _ in 0..failed {
            delay = delay.saturating_mul(self.factor);
            if delay >= self.max {
                break;
            }
        }
        delay.min(self.max)
    }

    pub(crate) fn gives_up_after(&self, failed: u32) -> bool {
        self.max_attempts.is_some_and(|max| failed >= max)
    }
}

/// Whether a link that ended with `result` is worth dialling again.
pub(crate) fn worth_redialling(result: &Result<(), NodeError>) -> bool {
    !matches!(
        result,
        Err(NodeError::VersionMismatch { .. } | NodeError::ProtocolMismatch { .. })
    )
}

/// Runs the client end of a dialled link, and with a policy dials again
/// after it drops, until the group shuts down or the policy gives up.
pub(crate) async fn run_dialled<IO, D, DF, S, F>(
    node: Node,
    first: (IO, Quality),
    policy: Option<ReconnectPolicy>,
    mut guard: Guard,
    mut dial: D,
    sleep_until: S,
) -> Result<(), crate::TransportError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    D: FnMut() -> DF,
    DF: Future<Output = Result<(IO, Quality), crate::TransportError>>,
    S: Fn(Instant) -> F,
    F: Future<Output = ()>,
{
    let group = guard.group().clone();
    let mut next = first;
    loop {
        let (io, quality) = next;
        let result = run_link(
            node.clone(),
            io,
            Role::Client,
            quality,
            &mut guard,
            &sleep_until,
        )
        .await;
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
            let wait = pin!(sleep_until(Instant::now() + policy.delay(failed)));
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
