//! The node's timer seam on smol's (async-io's) timers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use circuit_node::timer::{Sleep, Timer};

/// A [`Timer`] on smol's timers: give it to
/// [`NodeConfig::router`](circuit_node::NodeConfig::router). Its epoch is
/// the moment it was made. Needs no executor: async-io's reactor thread
/// fires its sleeps.
///
/// ```
/// use circuit_node::{Node, NodeConfig};
/// use circuit_transport_smol::SmolTimer;
///
/// let (router, _, _) = Node::new("r", "demo", NodeConfig::router(SmolTimer::shared())).unwrap();
/// # drop(router);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct SmolTimer {
    epoch: Instant,
}

impl SmolTimer {
    /// A timer whose epoch is now.
    pub fn new() -> Self {
        SmolTimer {
            epoch: Instant::now(),
        }
    }

    /// A new timer, ready for [`NodeConfig`](circuit_node::NodeConfig).
    pub fn shared() -> Arc<dyn Timer> {
        Arc::new(SmolTimer::new())
    }
}

impl Default for SmolTimer {
    fn default() -> Self {
        SmolTimer::new()
    }
}

impl Timer for SmolTimer {
    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    fn sleep_until(&self, deadline: Duration) -> Sleep {
        let timer = match self.epoch.checked_add(deadline) {
            Some(at) => smol::Timer::at(at),
            None => smol::Timer::never(),
        };
        Box::pin(async move {
            timer.await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleeps_until_the_deadline() {
        let timer = SmolTimer::new();
        smol::block_on(timer.sleep_until(Duration::from_millis(20)));
        assert!(timer.now() >= Duration::from_millis(20));
        // The end of time never comes, and does not overflow.
        let never = timer.sleep_until(Duration::MAX);
        let first = smol::block_on(smol::future::or(
            async {
                never.await;
                "never"
            },
            async {
                smol::Timer::after(Duration::from_millis(10)).await;
                "timeout"
            },
        ));
        assert_eq!(first, "timeout");
    }
}
