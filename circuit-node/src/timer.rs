//! The runtime seam: the only way the node layer learns the time or waits.
//!
//! The routing core ([`crate::routing`]) never reads a clock: it is handed
//! `now` on every call and answers with the next deadline it cares about.
//! The async layer asks a [`Timer`] for `now` and sleeps until that deadline.
//! Transport crates implement [`Timer`] for their executor (tokio, smol);
//! tests use [`ManualClock`], whose time moves only when the test says so.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::sync::lock;

/// The future returned by [`Timer::sleep_until`]: owned, `Send`, and not
/// tied to the timer's lifetime, so a driver can keep it across awaits.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A monotonic clock with sleeping, injected into the node layer.
///
/// Times are [`Duration`]s since an arbitrary epoch fixed by the
/// implementation; only differences and comparisons mean anything.
///
/// The trait is object safe (`Arc<dyn Timer>` works) and needs no macro:
/// `sleep_until` returns a boxed future instead of being an `async fn`.
pub trait Timer: Send + Sync + 'static {
    /// The current time, monotonic, since this timer's epoch.
    fn now(&self) -> Duration;

    /// A future that completes once [`now`](Timer::now) has reached
    /// `deadline`. A deadline in the past completes at once.
    fn sleep_until(&self, deadline: Duration) -> Sleep;
}

/// A [`Timer`] whose time moves only when [`advance`](ManualClock::advance)
/// or [`advance_to`](ManualClock::advance_to) is called. For deterministic
/// tests, of this crate and of its users.
///
/// Sleepers whose deadline has passed are woken by the call that moved the
/// time, before it returns. Clones share the same time.
///
/// ```
/// use std::time::Duration;
/// use circuit_node::timer::{ManualClock, Timer};
///
/// let clock = ManualClock::new();
/// let _sleep = clock.sleep_until(Duration::from_millis(100));
/// clock.advance(Duration::from_millis(40));
/// assert_eq!(clock.now(), Duration::from_millis(40));
/// assert_eq!(clock.sleepers(), 0); // not polled yet, so not registered
/// ```
#[derive(Clone, Default)]
pub struct ManualClock {
    inner: Arc<Mutex<ClockState>>,
}

/// Behind the clock's lock, a leaf of the lock order (`crate::sync`).
#[derive(Default)]
struct ClockState {
    now: Duration,
    next_id: u64,
    /// Registered sleepers by (deadline, id).
    sleepers: BTreeMap<(Duration, u64), Waker>,
}

impl ManualClock {
    /// A clock at time zero with no sleepers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the time forward by `by` (saturating at [`Duration::MAX`]) and
    /// wakes every sleeper whose deadline is now due.
    pub fn advance(&self, by: Duration) {
        let state = lock(&self.inner);
        let to = state.now.saturating_add(by);
        Self::set_and_wake(state, to);
    }

    /// Moves the time forward to `to`; a time in the past is ignored (the
    /// clock is monotonic). Wakes every sleeper whose deadline is now due.
    pub fn advance_to(&self, to: Duration) {
        let state = lock(&self.inner);
        let to = to.max(state.now);
        Self::set_and_wake(state, to);
    }

    /// How many sleep futures are currently registered (polled and pending).
    /// Lets a test wait for a driver to go to sleep without sleeping itself.
    pub fn sleepers(&self) -> usize {
        lock(&self.inner).sleepers.len()
    }

    /// The earliest deadline any registered sleeper waits for.
    pub fn next_sleeper_deadline(&self) -> Option<Duration> {
        lock(&self.inner)
            .sleepers
            .keys()
            .next()
            .map(|&(deadline, _)| deadline)
    }

    fn set_and_wake(mut state: MutexGuard<'_, ClockState>, to: Duration) {
        state.now = to;
        // Everything strictly after (to, u64::MAX) stays; the rest is due.
        let later = match to.checked_add(Duration::from_nanos(1)) {
            Some(after) => state.sleepers.split_off(&(after, 0)),
            None => BTreeMap::new(),
        };
        let due = std::mem::replace(&mut state.sleepers, later);
        drop(state);
        // Wake outside the lock: a waker may poll the sleeper at once.
        for waker in due.into_values() {
            waker.wake();
        }
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.inner);
        f.debug_struct("ManualClock")
            .field("now", &state.now)
            .field("sleepers", &state.sleepers.len())
            .finish()
    }
}

impl Timer for ManualClock {
    fn now(&self) -> Duration {
        lock(&self.inner).now
    }

    fn sleep_until(&self, deadline: Duration) -> Sleep {
        Box::pin(ManualSleep {
            inner: Arc::clone(&self.inner),
            deadline,
            key: None,
        })
    }
}

/// The sleep future of a [`ManualClock`]. Registers its waker when polled
/// before the deadline and unregisters it when dropped.
struct ManualSleep {
    inner: Arc<Mutex<ClockState>>,
    deadline: Duration,
    key: Option<(Duration, u64)>,
}

impl Future for ManualSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let mut state = lock(&this.inner);
        if state.now >= this.deadline {
            if let Some(key) = this.key.take() {
                state.sleepers.remove(&key);
            }
            return Poll::Ready(());
        }
        let key = match this.key {
            Some(key) => key,
            None => {
                let id = state.next_id;
                state.next_id = state.next_id.wrapping_add(1);
                let key = (this.deadline, id);
                this.key = Some(key);
                key
            }
        };
        state.sleepers.insert(key, cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for ManualSleep {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            lock(&self.inner).sleepers.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    #[derive(Default)]
    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn poll(sleep: &mut Sleep, waker: &Arc<CountingWaker>) -> Poll<()> {
        let waker = Waker::from(Arc::clone(waker));
        sleep.as_mut().poll(&mut Context::from_waker(&waker))
    }

    fn wakes(waker: &CountingWaker) -> usize {
        waker.0.load(Ordering::SeqCst)
    }

    #[test]
    fn time_moves_only_when_advanced() {
        let clock = ManualClock::new();
        assert_eq!(clock.now(), Duration::ZERO);
        clock.advance(ms(30));
        clock.advance(ms(12));
        assert_eq!(clock.now(), ms(42));
        clock.advance_to(ms(10));
        assert_eq!(clock.now(), ms(42), "the clock never goes back");
        clock.advance_to(ms(100));
        assert_eq!(clock.now(), ms(100));
    }

    #[test]
    fn clones_share_the_time() {
        let clock = ManualClock::new();
        let other = clock.clone();
        other.advance(ms(5));
        assert_eq!(clock.now(), ms(5));
    }

    #[test]
    fn sleeper_is_woken_when_its_deadline_passes_and_not_before() {
        let clock = ManualClock::new();
        let waker = Arc::new(CountingWaker::default());
        let mut sleep = clock.sleep_until(ms(100));
        assert_eq!(poll(&mut sleep, &waker), Poll::Pending);
        assert_eq!(clock.sleepers(), 1);
        assert_eq!(clock.next_sleeper_deadline(), Some(ms(100)));

        clock.advance(ms(99));
        assert_eq!(wakes(&waker), 0);
        assert_eq!(poll(&mut sleep, &waker), Poll::Pending);

        clock.advance(ms(1));
        assert_eq!(wakes(&waker), 1);
        assert_eq!(clock.sleepers(), 0, "woken sleepers are unregistered");
        assert_eq!(poll(&mut sleep, &waker), Poll::Ready(()));
    }

    #[test]
    fn deadline_in_the_past_is_ready_at_once() {
        let clock = ManualClock::new();
        clock.advance(ms(10));
        let waker = Arc::new(CountingWaker::default());
        let mut sleep = clock.sleep_until(ms(10));
        assert_eq!(poll(&mut sleep, &waker), Poll::Ready(()));
        assert_eq!(clock.sleepers(), 0);
    }

    #[test]
    fn only_due_sleepers_are_woken() {
        let clock = ManualClock::new();
        let early = Arc::new(CountingWaker::default());
        let late = Arc::new(CountingWaker::default());
        let mut a = clock.sleep_until(ms(10));
        let mut b = clock.sleep_until(ms(20));
        assert!(poll(&mut a, &early).is_pending());
        assert!(poll(&mut b, &late).is_pending());
        clock.advance_to(ms(15));
        assert_eq!((wakes(&early), wakes(&late)), (1, 0));
        assert_eq!(clock.sleepers(), 1);
        clock.advance_to(ms(20));
        assert_eq!((wakes(&early), wakes(&late)), (1, 1));
    }

    #[test]
    fn repolling_replaces_the_waker_without_a_second_registration() {
        let clock = ManualClock::new();
        let first = Arc::new(CountingWaker::default());
        let second = Arc::new(CountingWaker::default());
        let mut sleep = clock.sleep_until(ms(10));
        assert!(poll(&mut sleep, &first).is_pending());
        assert!(poll(&mut sleep, &second).is_pending());
        assert_eq!(clock.sleepers(), 1);
        clock.advance(ms(10));
        assert_eq!((wakes(&first), wakes(&second)), (0, 1));
    }

    #[test]
    fn dropped_sleeper_is_unregistered() {
        let clock = ManualClock::new();
        let waker = Arc::new(CountingWaker::default());
        let mut sleep = clock.sleep_until(ms(10));
        assert!(poll(&mut sleep, &waker).is_pending());
        drop(sleep);
        assert_eq!(clock.sleepers(), 0);
        clock.advance(ms(10));
        assert_eq!(wakes(&waker), 0);
    }

    #[test]
    fn advancing_to_the_end_of_time_does_not_overflow() {
        let clock = ManualClock::new();
        let waker = Arc::new(CountingWaker::default());
        let mut sleep = clock.sleep_until(Duration::MAX);
        assert!(poll(&mut sleep, &waker).is_pending());
        clock.advance(Duration::MAX);
        clock.advance(Duration::MAX);
        assert_eq!(clock.now(), Duration::MAX);
        assert_eq!(wakes(&waker), 1);
        assert_eq!(poll(&mut sleep, &waker), Poll::Ready(()));
    }

    #[test]
    fn usable_as_a_trait_object() {
        let clock = ManualClock::new();
        let timer: Arc<dyn Timer> = Arc::new(clock.clone());
        clock.advance(ms(7));
        assert_eq!(timer.now(), ms(7));
    }
}
