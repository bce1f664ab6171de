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

    /// A grant waker's wake: queues the grant, and wakes the driver only
    /// if the peer waits on it ([`StreamWaker::urgent`], read under the
    /// queue's lock, which [`ReadyQueue::set_urgent`] also takes: a grant
    /// queued quietly is queued before the driver marks the stream urgent,
    /// and the driver transmits after it marks it).
    fn push_grant(&self, stream: &Arc<StreamWaker>) {
        if stream.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        let urgent = {
            let mut inner = self.lock();
            inner.grants.push_back(Arc::clone(stream));
            stream.urgent.load(Ordering::Relaxed)
        };
        if urgent {
            self.wake_driver();
        }
    }

    /// Marks whether the peer waits on `stream`'s grant (for the driver,
    /// which transmits after it marks one urgent). Marking it urgent takes
    /// the queue's lock (see [`ReadyQueue::push_grant`]); clearing it needs
    /// none: a wake that still sees it set only wakes the driver once more.
    pub(crate) fn set_urgent(&self, stream: &StreamWaker, urgent: bool) {
        match urgent {
            true => {
                let _inner = self.lock();
                stream.urgent.store(true, Ordering::Relaxed);
            }
            false => stream.urgent.store(false, Ordering::Relaxed),
        }
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
    /// For a grant waker: the peer has sent all it was granted and waits,
    /// so a grant wakes the driver. Otherwise a grant only joins the queue:
    /// the driver runs for every frame that arrives and sends it then, and
    /// a wake per grant (a thread switch when every task is busy) is saved.
    urgent: AtomicBool,
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
            urgent: AtomicBool::new(false),
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
            match self.grant {
                true => ready.push_grant(self),
                false => ready.push(self),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A driver waker that counts its wakes.
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_grant_wakes_the_driver_only_when_the_peer_waits_on_it() {
        let ready = Arc::new(ReadyQueue::default());
        let count = Arc::new(Count(AtomicUsize::new(0)));
        ready.register_driver(&Waker::from(Arc::clone(&count)));
        let grant = StreamWaker::for_grants(3, &ready);
        // The peer still has credit: the grant waits for the driver's next
        // turn, which every arriving frame brings.
        Waker::from(Arc::clone(&grant)).wake();
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
        assert!(ready.grants_waiting());
        assert_eq!(ready.pop_grant().map(|g| g.id), Some(3));
        // The peer has sent all it was granted: nothing more arrives, so the
        // grant wakes the driver.
        ready.set_urgent(&grant, true);
        Waker::from(Arc::clone(&grant)).wake();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(ready.pop_grant().map(|g| g.id), Some(3));
        ready.set_urgent(&grant, false);
        // A stream's turn to send always wakes it.
        Waker::from(StreamWaker::new(5, &ready)).wake();
        assert_eq!(count.0.load(Ordering::SeqCst), 2);
    }
}
