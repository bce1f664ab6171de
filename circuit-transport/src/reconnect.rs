//! When a dropped link is dialled again.

use std::time::Duration;

use circuit_node::NodeError;

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
/// # use circuit_transport::ReconnectPolicy;
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
