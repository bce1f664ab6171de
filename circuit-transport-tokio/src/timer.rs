//! The node's timer seam on tokio's clock.

use std::sync::Arc;
use std::time::Duration;

use circuit_node::timer::{Sleep, Timer};
use tokio::time::Instant;

/// A [`Timer`] on tokio's clock: give it to
/// [`NodeConfig::router`](circuit_node::NodeConfig::router). Its epoch is
/// the moment it was made. It follows tokio's paused time in tests
/// (`tokio::time::pause`), and its sleeps need a tokio runtime with the
/// time driver when polled (not when made).
///
/// ```
/// use circuit_node::{Node, NodeConfig};
/// use circuit_transport_tokio::TokioTimer;
///
/// let (router, _, _) = Node::new("r", "demo", NodeConfig::router(TokioTimer::shared())).unwrap();
/// # drop(router);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct TokioTimer {
    epoch: Instant,
}

impl TokioTimer {
    /// A timer whose epoch is now.
    pub fn new() -> Self {
        TokioTimer {
            epoch: Instant::now(),
        }
    }

    /// A new timer, ready for [`NodeConfig`](circuit_node::NodeConfig).
    pub fn shared() -> Arc<dyn Timer> {
        Arc::new(TokioTimer::new())
    }
}

impl Default for TokioTimer {
    fn default() -> Self {
        TokioTimer::new()
    }
}

impl Timer for TokioTimer {
    fn now(&self) -> Duration {
        Instant::now().saturating_duration_since(self.epoch)
    }

    fn sleep_until(&self, deadline: Duration) -> Sleep {
        match self.epoch.checked_add(deadline) {
            // Made on first poll, so that creating one needs no runtime.
            Some(at) => Box::pin(async move { tokio::time::sleep_until(at).await }),
            None => Box::pin(std::future::pending()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn sleeps_until_the_deadline_on_tokio_time() {
        let timer = TokioTimer::new();
        timer.sleep_until(Duration::from_secs(3600)).await;
        assert!(timer.now() >= Duration::from_secs(3600));
        // The end of time never comes, and does not overflow.
        let never = timer.sleep_until(Duration::MAX);
        assert!(tokio::time::timeout(Duration::from_secs(1), never)
            .await
            .is_err());
    }
}
