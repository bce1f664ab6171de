//! The queue of streams that may have bytes to send, fed by wakers.
//!
//! Each stream's outgoing pipe is polled with a waker of its own. When the
//! application writes, that waker puts the stream's id at the back of this
//! queue (once) and wakes the driver. The driver takes ids from the front,
//! one frame per stream per turn: round-robin without scanning every stream
//! (a stream alone in the queue may send a few frames in one write).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Wake, Waker};

#[derive(Debug, Default)]
struct Inner {
    queue: VecDeque<Arc<StreamWaker>>,
    /// Streams under credit whose reader took enough to grant more.
    grants: VecDeque<Arc<StreamWaker>>,
    driver: Option<Waker>,
}

/// Stream ids waiting for the driver, and the driver's waker.
#[derive(Debug, Default)]
pub(crate) struct ReadyQueue {
    inner: Mutex<Inner>,
}

impl ReadyQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts a stream at the back of the queue unless it is already queued,
    /// and wakes the driver.
    pub(crate) fn push(&self, stream: &Arc<StreamWaker>) {
        if self.enqueue(stream) {
            self.wake_driver();
        }
    }

    /// Puts a stream at the back of the queue without waking the driver:
    /// for the driver itself, which will look at the queue again before it
    /// sleeps (a self-wake per frame would cost a needless re-poll).
    pub(crate) fn push_quiet(&self, stream: &Arc<StreamWaker>) {
        self.enqueue(stream);
    }

    /// `true` if the stream was not queued yet.
    fn enqueue(&self, stream: &Arc<StreamWaker>) -> bool {
        if stream.queued.swap(true, Ordering::AcqRel) {
            return false;
        }
        let mut inner = self.lock();
        match stream.grant {
            false => inner.queue.push_back(Arc::clone(stream)),
            true => inner.grants.push_back(Arc::clone(stream)),
        }
        true
    }

    /// Takes the next stream that may be granted credit.
    pub(crate) fn pop_grant(&self) -> Option<Arc<StreamWaker>> {
        let stream = self.lock().grants.pop_front()?;
        stream.queued.store(false, Ordering::Release);
        Some(stream)
    }

    /// `true` if some stream may be granted credit.
    pub(crate) fn grants_waiting(&self) -> bool {
        !self.lock().grants.is_empty()
    }

    /// Takes the stream at the front; it may be queued again from now on.
    pub(crate) fn pop(&self) -> Option<Arc<StreamWaker>> {
        let stream = self.lock().queue.pop_front()?;
        stream.queued.store(false, Ordering::Release);
        Some(stream)
    }

    /// `true` if no stream is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.lock().queue.is_empty()
    }

    /// Registers the driver's waker, woken when a stream is queued or
    /// anything else needs the driver.
    pub(crate) fn register_driver(&self, waker: &Waker) {
        let mut inner = self.lock();
        match &inner.driver {
            Some(w) if w.will_wake(waker) => {}
            _ => inner.driver = Some(waker.clone()),
        }
    }

    /// Forgets every queued stream and the driver's waker: the link is
    /// over, and nothing queued here may keep a stream or a task alive.
    pub(crate) fn clear(&self) {
        let (queue, grants, driver) = {
            let mut inner = self.lock();
            (
                std::mem::take(&mut inner.queue),
                std::mem::take(&mut inner.grants),
                inner.driver.take(),
            )
        };
        for stream in queue.iter().chain(&grants) {
            stream.queued.store(false, Ordering::Release);
        }
        // Dropped outside the lock: a waker's drop may run arbitrary code.
        drop((queue, grants, driver));
    }

    /// Wakes the driver.
    pub(crate) fn wake_driver(&self) {
        let driver = self.lock().driver.clone();
        if let Some(driver) = driver {
            driver.wake();
        }
    }
}

/// The waker a stream's outgoing pipe is polled with.
#[derive(Debug)]
pub(crate) struct StreamWaker {
    pub(crate) id: u32,
    /// A waker of the stream's incoming pipe, woken when its reader has
    /// taken enough bytes to grant credit: it queues the stream for a
    /// grant instead of a turn to send.
    grant: bool,
    queued: AtomicBool,
    /// Weak: the queue holds its wakers, a waker must not hold the queue.
    ready: Weak<ReadyQueue>,
}

impl StreamWaker {
    pub(crate) fn new(id: u32, ready: &Arc<ReadyQueue>) -> Arc<Self> {
        Self::with_kind(id, ready, false)
    }

    /// The waker that queues stream `id` for a credit grant.
    pub(crate) fn for_grants(id: u32, ready: &Arc<ReadyQueue>) -> Arc<Self> {
        Self::with_kind(id, ready, true)
    }

    fn with_kind(id: u32, ready: &Arc<ReadyQueue>, grant: bool) -> Arc<Self> {
        Arc::new(StreamWaker {
            id,
            grant,
            queued: AtomicBool::new(false),
            ready: Arc::downgrade(ready),
        })
    }
}

impl Wake for StreamWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Once the link is gone there is no one to wake.
        if let Some(ready) = self.ready.upgrade() {
            ready.push(self);
        }
    }
}
