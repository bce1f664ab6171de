//! When a dropped link is dialled again.

use std::hash::BuildHasher;
use std::time::Duration;

use circuit_node::NodeError;

use crate::TransportError;

/// When a dropped link is dialled again: exponential backoff between
/// attempts, from [`initial`](Self::initial) up to [`max`](Self::max), with
/// [`Jitter`], optionally giving up after a number of failed attempts in a
/// row.
///
/// The first redial waits about `initial` after the link ended; each
/// failed attempt multiplies the wait by `factor`; a link that came up
/// starts the count again. [`delay`](Self::delay) is the wait before
/// jitter (its ceiling); the waits themselves come from a [`Backoff`],
/// which draws the jitter from a random source of its own, so that leaves
/// that lost the same router do not all dial it again in the same
/// instant. A link refused for a version or protocol mismatch is not
/// dialled again: that will not change by itself.
///
/// ```
/// # use std::time::Duration;
/// # use circuit_transport::{Jitter, ReconnectPolicy};
/// let policy = ReconnectPolicy::default()
///     .initial(Duration::from_millis(50))
///     .max(Duration::from_secs(5))
///     .max_attempts(Some(20));
/// assert_eq!(policy.delay(0), Duration::from_millis(50));
/// assert_eq!(policy.delay(3), Duration::from_millis(400));
/// assert_eq!(policy.delay(30), Duration::from_secs(5));
/// // Equal jitter (the default): between half the ceiling and the ceiling.
/// let wait = policy.backoff().delay(3);
/// assert!(Duration::from_millis(200) <= wait && wait <= Duration::from_millis(400));
/// // A fixed seed gives the same waits every time (for tests).
/// let seeded = policy.clone().jitter(Jitter::Full).seed(7);
/// assert_eq!(seeded.backoff().delay(3), seeded.backoff().delay(3));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconnectPolicy {
    initial: Duration,
    max: Duration,
    factor: u32,
    max_attempts: Option<u32>,
    jitter: Jitter,
    seed: Option<u64>,
}

/// How a [`Backoff`] spreads a wait below its ceiling `d`
/// ([`ReconnectPolicy::delay`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Jitter {
    /// Exactly `d`: every dialler waits the same.
    None,
    /// Uniform in `[0, d]`: the widest spread, some redials at once.
    Full,
    /// Uniform in `[d/2, d]`: spread, and never much sooner than asked.
    /// The default.
    #[default]
    Equal,
}

impl Default for ReconnectPolicy {
    /// 100 ms doubling up to 10 s, equal jitter, for ever.
    fn default() -> Self {
        ReconnectPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
            factor: 2,
            max_attempts: None,
            jitter: Jitter::Equal,
            seed: None,
        }
    }
}

impl ReconnectPolicy {
    /// The wait before the first redial (its ceiling, before jitter).
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

    /// How the waits are spread below their ceiling (default
    /// [`Jitter::Equal`]).
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// Draws the jitter from a random source seeded with `seed`, the same
    /// for every [`Backoff`] of this policy: the waits repeat exactly, for
    /// tests. Without it each backoff has a seed of its own.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The ceiling of the wait before attempt `failed + 1`, after `failed`
    /// failures: `initial * factor^failed`, at most `max`. A [`Backoff`]
    /// waits this long, or less with jitter.
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

    /// The waits of one dialled link, with this policy's jitter drawn from
    /// one random source (seeded by [`seed`](Self::seed), or at random).
    pub fn backoff(&self) -> Backoff {
        let seed = self
            .seed
            .unwrap_or_else(|| std::collections::hash_map::RandomState::new().hash_one(0u8));
        Backoff {
            policy: self.clone(),
            random: SplitMix64(seed),
        }
    }

    pub(crate) fn gives_up_after(&self, failed: u32) -> bool {
        self.max_attempts.is_some_and(|max| failed >= max)
    }
}

/// The waits between the dials of one link: [`ReconnectPolicy::delay`]
/// with the policy's [`Jitter`]. Made by [`ReconnectPolicy::backoff`].
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: ReconnectPolicy,
    random: SplitMix64,
}

impl Backoff {
    /// The wait before attempt `failed + 1`, after `failed` failures: at
    /// most [`ReconnectPolicy::delay`]`(failed)`, at least half of it with
    /// [`Jitter::Equal`], anywhere from zero with [`Jitter::Full`]. Each
    /// call draws anew.
    pub fn delay(&mut self, failed: u32) -> Duration {
        let ceiling = self.policy.delay(failed);
        match self.policy.jitter {
            Jitter::None => ceiling,
            Jitter::Full => self.uniform(ceiling),
            Jitter::Equal => {
                let half = ceiling / 2;
                half + self.uniform(ceiling - half)
            }
        }
    }

    /// Uniform in `[0, up_to]`, to the nanosecond (up to 584 years).
    fn uniform(&mut self, up_to: Duration) -> Duration {
        let nanos = u64::try_from(up_to.as_nanos()).unwrap_or(u64::MAX);
        let drawn = match nanos.checked_add(1) {
            Some(span) => self.random.next() % span,
            None => self.random.next(),
        };
        Duration::from_nanos(drawn)
    }
}

/// A small, fast random source (Steele, Lea and Flood's SplitMix64):
/// jitter needs spread, not secrecy.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Whether a link that ended with `result` (or a dial that failed with
/// it) is worth dialling again: not after a version or protocol mismatch,
/// nor for an address this transport cannot use.
pub(crate) fn worth_redialling(result: &Result<(), TransportError>) -> bool {
    !matches!(
        result,
        Err(TransportError::Link(
            NodeError::VersionMismatch { .. } | NodeError::ProtocolMismatch { .. }
        ) | TransportError::BadAddress { .. })
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn policy(jitter: Jitter, seed: u64) -> ReconnectPolicy {
        ReconnectPolicy::default()
            .initial(100 * MS)
            .max(2000 * MS)
            .jitter(jitter)
            .seed(seed)
    }

    #[test]
    fn the_ceiling_grows_by_the_factor_up_to_the_cap() {
        let policy = policy(Jitter::None, 1);
        let ceilings: Vec<_> = (0..8).map(|n| policy.delay(n)).collect();
        let want = [100, 200, 400, 800, 1600, 2000, 2000, 2000].map(|ms| ms * MS);
        assert_eq!(ceilings, want);
        assert_eq!(policy.delay(u32::MAX), 2000 * MS, "no overflow");
        let mut backoff = policy.backoff();
        assert_eq!((0..8).map(|n| backoff.delay(n)).collect::<Vec<_>>(), want);
    }

    #[test]
    fn equal_jitter_stays_between_half_the_ceiling_and_the_ceiling() {
        for seed in 0..20 {
            let mut backoff = policy(Jitter::Equal, seed).backoff();
            for failed in 0..10 {
                let ceiling = policy(Jitter::None, 0).delay(failed);
                let wait = backoff.delay(failed);
                assert!(ceiling / 2 <= wait && wait <= ceiling, "{failed}: {wait:?}");
            }
        }
    }

    #[test]
    fn full_jitter_stays_below_the_ceiling_and_the_cap() {
        let mut backoff = policy(Jitter::Full, 3).backoff();
        for failed in 0..40 {
            let wait = backoff.delay(failed);
            assert!(wait <= policy(Jitter::None, 0).delay(failed), "{wait:?}");
            assert!(wait <= 2000 * MS);
        }
    }

    #[test]
    fn waits_are_spread_not_in_lockstep() {
        for jitter in [Jitter::Full, Jitter::Equal] {
            // Many leaves redialling the same router after its restart:
            // each has its own backoff (here, its own seed).
            let first: Vec<_> = (0..50)
                .map(|leaf| policy(jitter, leaf).backoff().delay(4))
                .collect();
            let mut distinct = first.clone();
            distinct.sort();
            distinct.dedup();
            assert!(distinct.len() > 40, "{jitter:?}: {first:?}");
            // One backoff draws anew each time too.
            let mut one = policy(jitter, 9).backoff();
            let again: Vec<_> = (0..10).map(|_| one.delay(4)).collect();
            assert!(again.iter().any(|w| *w != again[0]), "{again:?}");
        }
    }

    #[test]
    fn the_waits_grow_on_average_until_the_cap() {
        let mean = |failed: u32| {
            let total: Duration = (0..200)
                .map(|seed| policy(Jitter::Equal, seed).backoff().delay(failed))
                .sum();
            total / 200
        };
        let means: Vec<_> = (0..7).map(mean).collect();
        for pair in means.windows(2).take(4) {
            assert!(pair[1] > pair[0], "{means:?}");
        }
        // Capped: the later means stay within the cap's band.
        assert!(means[6] >= 1000 * MS && means[6] <= 2000 * MS, "{means:?}");
    }

    #[test]
    fn a_seed_repeats_the_waits_and_no_seed_does_not() {
        let seeded = policy(Jitter::Full, 42);
        let waits = |policy: &ReconnectPolicy| {
            let mut backoff = policy.backoff();
            (0..10).map(|n| backoff.delay(n)).collect::<Vec<_>>()
        };
        assert_eq!(waits(&seeded), waits(&seeded));
        let unseeded = ReconnectPolicy::default().jitter(Jitter::Full);
        let runs: Vec<_> = (0..5).map(|_| waits(&unseeded)).collect();
        assert!(runs.iter().any(|r| *r != runs[0]), "{runs:?}");
    }
}
