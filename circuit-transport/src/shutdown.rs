//! Graceful shutdown: stop accepting, let links drain, cut what is left at
//! a deadline.
//!
//! A [`Shutdown`] is a group of listeners and links. Its tasks hold a
//! [`Guard`] while they run; [`Shutdown::shutdown`] tells them to stop and
//! resolves once every guard of the group (and of its children) is gone.
//!
//! A group reads no clock: it records the grace, and each link measures it
//! on its runtime's clock from the moment it sees the shutdown begin.

use std::future::{poll_fn, Future};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Poll, Waker};
use std::time::Duration;

/// A handle on a group of listeners and links, to shut them all down
/// gracefully: listeners stop accepting at once, each link keeps running
/// until its streams have drained (every stream closed both ways) or the
/// deadline passes, then closes, sending an epitaph on every stream still
/// open. Clones are handles on the same group.
///
/// Every listener and dialled link of a transport has its own group, a
/// [`child`](Shutdown::child) of the one given in
/// [`LinkOptions::shutdown`](crate::LinkOptions::shutdown) if any; shutting
/// a group down shuts down its children too.
#[derive(Clone, Default)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Set once shutdown began: how long links may drain.
    grace: Option<Duration>,
    /// Tasks of this group still running.
    running: usize,
    children: Vec<Weak<Inner>>,
    /// Woken when shutdown begins and when `running` reaches zero.
    wakers: Vec<Waker>,
    report: ShutdownReport,
}

/// What a shutdown did, summed over the group and its children.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Links that closed after all their streams had ended.
    pub drained: usize,
    /// Links cut at the deadline; their open streams got an epitaph.
    pub cut: usize,
    /// Links that had already ended on their own (or failed) meanwhile.
    pub ended: usize,
}

fn lock(inner: &Inner) -> MutexGuard<'_, State> {
    // Every update is a single field change: a panic cannot leave the
    // state inconsistent.
    inner.state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Adds `waker` unless one that wakes the same task is there: a link task
/// polls `draining` on every wake-up, and the list must not grow with it.
fn register(wakers: &mut Vec<Waker>, waker: &Waker) {
    if !wakers.iter().any(|w| w.will_wake(waker)) {
        wakers.push(waker.clone());
    }
}

impl Shutdown {
    /// A new group with nothing in it.
    pub fn new() -> Self {
        Self::default()
    }

    /// A group inside this one: shut down with it, or on its own.
    pub fn child(&self) -> Shutdown {
        let child = Shutdown::new();
        let mut state = lock(&self.inner);
        state.children.retain(|c| c.strong_count() > 0);
        state.children.push(Arc::downgrade(&child.inner));
        if let Some(grace) = state.grace {
            drop(state);
            child.begin(grace);
        }
        child
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        lock(&self.inner).grace.is_some()
    }

    /// Begins the shutdown now, with each link cut once `grace` has passed
    /// on its runtime's clock since it saw the shutdown begin (at once, but
    /// for a task wake-up), and returns a future that resolves when every
    /// listener has stopped and every link has closed. Calling it again
    /// changes nothing but returns another such future.
    pub fn shutdown(&self, grace: Duration) -> impl Future<Output = ShutdownReport> + Send {
        self.begin(grace);
        let this = self.clone();
        async move { this.closed().await }
    }

    /// Resolves when the group and its children have no task running and
    /// shutdown has begun, with the summed report.
    pub async fn closed(&self) -> ShutdownReport {
        poll_fn(|cx| {
            let mut report = ShutdownReport::default();
            if self.inner.poll_idle(cx.waker(), &mut report) {
                Poll::Ready(report)
            } else {
                Poll::Pending
            }
        })
        .await
    }

    fn begin(&self, grace: Duration) {
        let (children, wakers) = {
            let mut state = lock(&self.inner);
            if state.grace.is_some() {
                return;
            }
            state.grace = Some(grace);
            state.children.retain(|c| c.strong_count() > 0);
            (state.children.clone(), std::mem::take(&mut state.wakers))
        };
        wakers.into_iter().for_each(Waker::wake);
        for child in children.iter().filter_map(Weak::upgrade) {
            Shutdown { inner: child }.begin(grace);
        }
    }

    /// Registers a running link task of this group: the group's shutdown
    /// waits for the guard to drop, and its report counts how the link
    /// ended ([`run_link`](crate::run_link) records it).
    pub fn guard(&self) -> Guard {
        self.guard_for(Outcome::Ended)
    }

    /// Registers a running accept loop of this group: shutdown waits for
    /// it, the report does not count it.
    pub fn listener_guard(&self) -> Guard {
        self.guard_for(Outcome::Listener)
    }

    fn guard_for(&self, outcome: Outcome) -> Guard {
        lock(&self.inner).running += 1;
        Guard {
            group: self.clone(),
            outcome,
        }
    }

    /// Resolves with the grace once shutdown begins: an accept loop stops
    /// then, a link starts to drain and is cut once the grace has passed.
    pub async fn draining(&self) -> Duration {
        poll_fn(|cx| {
            let mut state = lock(&self.inner);
            match state.grace {
                Some(grace) => Poll::Ready(grace),
                None => {
                    register(&mut state.wakers, cx.waker());
                    Poll::Pending
                }
            }
        })
        .await
    }
}

impl Inner {
    /// True when this group and all its children are idle after shutdown
    /// began; adds their reports. Registers `waker` where not idle.
    fn poll_idle(&self, waker: &Waker, report: &mut ShutdownReport) -> bool {
        let children = {
            let mut state = lock(self);
            report.drained += state.report.drained;
            report.cut += state.report.cut;
            report.ended += state.report.ended;
            if state.grace.is_none() || state.running > 0 {
                register(&mut state.wakers, waker);
                return false;
            }
            state.children.clone()
        };
        let mut idle = true;
        for child in children.iter().filter_map(Weak::upgrade) {
            idle &= child.poll_idle(waker, report);
        }
        idle
    }
}

impl std::fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = lock(&self.inner);
        f.debug_struct("Shutdown")
            .field("shutting_down", &state.grace.is_some())
            .field("running", &state.running)
            .field("children", &state.children.len())
            .finish()
    }
}

/// How a link task of a group ended, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ended,
    Drained,
    Cut,
    /// A listener's accept loop: counted nowhere.
    Listener,
}

/// Held by a running task of a [`Shutdown`] group, from
/// [`Shutdown::guard`] or [`Shutdown::listener_guard`]; dropping it
/// records how the task ended.
#[derive(Debug)]
pub struct Guard {
    group: Shutdown,
    pub(crate) outcome: Outcome,
}

impl Guard {
    /// The group the task belongs to.
    pub fn group(&self) -> &Shutdown {
        &self.group
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let wakers = {
            let mut state = lock(&self.group.inner);
            state.running -= 1;
            if state.grace.is_some() {
                match self.outcome {
                    Outcome::Ended => state.report.ended += 1,
                    Outcome::Drained => state.report.drained += 1,
                    Outcome::Cut => state.report.cut += 1,
                    Outcome::Listener => {}
                }
            }
            if state.running == 0 {
                std::mem::take(&mut state.wakers)
            } else {
                Vec::new()
            }
        };
        wakers.into_iter().for_each(Waker::wake);
    }
}
