//! A link's mux behind a gate, so that "the link died" and "a stream was
//! spliced onto it" can never cross.
//!
//! The link future polls the mux driver while holding the gate, and empties
//! the gate in the same step in which the driver returns (or is dropped).
//! Anyone attaching a stream takes the gate first: either the mux is still
//! there and running, or it is gone and the pipes are handed back so the
//! next route can be tried. (`Mux::attach` also hands the pipes back when
//! it fails; the gate keeps the link's mux and counters together.)

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use circuit_mux::{CloseCause, Counters, Driver, Mux, MuxError, StreamObserver};
use circuit_stream::{Reader, Writer};
use futures::io::{AsyncRead, AsyncWrite};
use futures::task::AtomicWaker;

use crate::node::lock;

/// The gate: the link's mux while its driver runs, `None` after.
#[derive(Debug)]
pub(crate) struct LinkPort {
    mux: Mutex<Option<Mux>>,
    /// Counters as the link ended, kept for snapshots taken after.
    last_counters: Mutex<Counters>,
}

impl LinkPort {
    pub(crate) fn new(mux: Mux) -> Arc<Self> {
        Arc::new(LinkPort {
            last_counters: Mutex::new(mux.counters()),
            mux: Mutex::new(Some(mux)),
        })
    }

    /// A handle on the mux, if the link still runs.
    pub(crate) fn mux(&self) -> Option<Mux> {
        lock(&self.mux).clone()
    }

    /// Splices `source` and `sink` onto the link, with `observer` on the
    /// stream if given; if that fails (the link has ended, or its ids ran
    /// out), hands them back untouched.
    pub(crate) fn attach(
        &self,
        source: Reader,
        sink: Writer,
        observer: Option<StreamObserver>,
    ) -> Result<u32, (Reader, Writer)> {
        let gate = lock(&self.mux);
        let Some(mux) = gate.as_ref() else {
            return Err((source, sink));
        };
        let attached = match observer {
            Some(observer) => mux.attach_observed(source, sink, observer),
            None => mux.attach(source, sink),
        };
        attached.map_err(|e| {
            tracing::warn!(error = %e.error, "attaching a forwarded stream failed");
            (e.source, e.sink)
        })
    }

    /// Puts `observer` on stream `id` of the link (see `Mux::observe`):
    /// how the peer's direction had already been closed, if it had.
    pub(crate) fn observe(&self, id: u32, observer: StreamObserver) -> Option<CloseCause> {
        match lock(&self.mux).as_ref() {
            Some(mux) => mux.observe(id, observer),
            None => Some(CloseCause::LinkEnded),
        }
    }

    /// The mux counters now, or as the link ended.
    pub(crate) fn counters(&self) -> Counters {
        match lock(&self.mux).as_ref() {
            Some(mux) => mux.counters(),
            None => *lock(&self.last_counters),
        }
    }

    fn close(&self, gate: &mut Option<Mux>) {
        if let Some(mux) = gate.take() {
            *lock(&self.last_counters) = mux.counters();
        }
    }
}

/// The link's driver, polled only through the gate.
pub(crate) struct DriverSlot<IO> {
    port: Arc<LinkPort>,
    driver: Option<Driver<IO>>,
}

impl<IO: AsyncRead + AsyncWrite + Unpin> DriverSlot<IO> {
    pub(crate) fn new(port: Arc<LinkPort>, driver: Driver<IO>) -> Self {
        DriverSlot {
            port,
            driver: Some(driver),
        }
    }

    /// Polls the driver; when it returns, the gate is emptied before
    /// anyone else can take it.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), MuxError>> {
        let mut gate = lock(&self.port.mux);
        let Some(driver) = self.driver.as_mut() else {
            return Poll::Ready(Err(MuxError::LinkClosed));
        };
        match Pin::new(driver).poll(cx) {
            Poll::Ready(result) => {
                self.port.close(&mut gate);
                self.driver = None;
                Poll::Ready(result)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<IO> Drop for DriverSlot<IO> {
    fn drop(&mut self) {
        let mut gate = lock(&self.port.mux);
        self.port.close(&mut gate);
        // Dropping the driver closes every stream and the transport; do it
        // under the gate so no attach can slip in between.
        self.driver = None;
    }
}

/// How the node wakes a link's future: new control messages to send, or
/// the routing deadline moved.
#[derive(Debug, Default)]
pub(crate) struct LinkSignal {
    pub(crate) waker: AtomicWaker,
    pub(crate) outbox: AtomicBool,
    pub(crate) deadline: AtomicBool,
    /// The outbox passed its bound: the peer does not read its control
    /// stream. The link future ends the link.
    pub(crate) overflow: AtomicBool,
}
