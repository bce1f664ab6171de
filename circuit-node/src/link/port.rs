//! A link's mux, and the driver that runs it.
//!
//! The port holds the link's mux while its driver runs and lets go of it
//! once the driver returns (or is dropped). Nothing is held across the
//! driver's I/O: an attach that comes while the link ends is refused by
//! the mux itself (its core is marked ended under its own lock, and
//! `Mux::attach` then hands the pipes back, so the next route can be
//! tried), and one that came just before is closed with the link's
//! epitaph like every other stream of it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use circuit_mux::{CloseCause, Counters, Driver, Mux, MuxError, StreamObserver};
use circuit_stream::{Reader, Writer};
use futures::io::{AsyncRead, AsyncWrite};
use futures::task::AtomicWaker;

use crate::sync::lock;

/// The link's mux while its driver runs, `None` after. Its locks' place
/// in the lock order: see `crate::sync`.
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
        // A handle taken out, so that no lock of the port is held while
        // the mux takes its own.
        let Some(mux) = self.mux() else {
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

    /// Echoes stream `id` inside the link (see `Mux::loop_back`); hands
    /// its ends back if the link has ended or the mux refuses.
    pub(crate) fn loop_back(
        &self,
        id: u32,
        reader: Reader,
        writer: Writer,
    ) -> Result<(), (Reader, Writer)> {
        match self.mux() {
            Some(mux) => mux.loop_back(id, reader, writer),
            None => Err((reader, writer)),
        }
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

    fn close(&self, slot: &mut Option<Mux>) {
        if let Some(mux) = slot.take() {
            *lock(&self.last_counters) = mux.counters();
        }
    }
}

/// The link's driver; when it ends, the port lets go of the mux.
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

    /// Polls the driver, holding no lock of the node's; when it returns,
    /// the port lets go of the mux.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), MuxError>> {
        let Some(driver) = self.driver.as_mut() else {
            return Poll::Ready(Err(MuxError::LinkClosed));
        };
        match Pin::new(driver).poll(cx) {
            Poll::Ready(result) => {
                // The driver ended every stream and marked the mux ended
                // before it returned: attaches fail from here on.
                self.driver = None;
                self.port.close(&mut lock(&self.port.mux));
                Poll::Ready(result)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<IO> Drop for DriverSlot<IO> {
    fn drop(&mut self) {
        // Dropping the driver closes every stream and the transport, and
        // marks the mux ended, so no attach can succeed after it.
        self.driver = None;
        self.port.close(&mut lock(&self.port.mux));
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

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::atomic::Ordering;
    use std::sync::mpsc;

    use circuit_mux::{Config, Role};
    use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};

    use super::*;

    /// A link whose next read, once armed, blocks its thread (a slow
    /// syscall, a busy link) until released, saying when it does.
    struct Stall {
        io: circuit_stream::Duplex,
        armed: Arc<AtomicBool>,
        entered: mpsc::Sender<()>,
        release: Mutex<mpsc::Receiver<()>>,
    }

    impl AsyncRead for Stall {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            if self.armed.swap(false, Ordering::AcqRel) {
                let _ = self.entered.send(());
                let _ = lock(&self.release).recv();
            }
            Pin::new(&mut self.io).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for Stall {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.io).poll_write(cx, buf)
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.io).poll_flush(cx)
        }

        fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.io).poll_close(cx)
        }
    }

    #[test]
    fn counters_and_an_attach_complete_while_the_driver_is_inside_link_io() {
        let (ours, theirs) = circuit_stream::duplex_pair(1 << 16);
        let armed = Arc::new(AtomicBool::new(false));
        let (entered_tx, entered) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        let stall = Stall {
            io: ours,
            armed: Arc::clone(&armed),
            entered: entered_tx,
            release: Mutex::new(release_rx),
        };
        let (mux, incoming, driver) = Mux::new(stall, Role::Client, Config::default());
        let port = LinkPort::new(mux);
        let mut slot = DriverSlot::new(Arc::clone(&port), driver);
        let link = std::thread::spawn(move || {
            futures::executor::block_on(std::future::poll_fn(|cx| slot.poll(cx)))
        });
        let (peer, mut peer_incoming, peer_driver) =
            Mux::new(theirs, Role::Server, Config::default());
        let peer_link = std::thread::spawn(move || futures::executor::block_on(peer_driver));

        // The peer sends; the driver's next read of the link blocks.
        armed.store(true, Ordering::Release);
        let mut hello = peer.open().unwrap();
        futures::executor::block_on(hello.write_all(b"x")).unwrap();
        entered
            .recv()
            .expect("the driver is inside a read of the link");

        // Meanwhile a snapshot's counters and a forwarded stream's attach
        // go through: nothing of the node is held across that read.
        let _ = port.counters();
        let (source, source_writer) = circuit_stream::stream();
        let (sink_reader, sink) = circuit_stream::stream();
        let id = port.attach(source, sink, None).expect("attached");
        assert_eq!(id, 0);

        // Released, the link carries the attached stream.
        release.send(()).unwrap();
        futures::executor::block_on(async {
            source_writer.write_all(b"forwarded").await.unwrap();
            let mut stream = loop {
                let s = peer_incoming.next().await.unwrap();
                if s.id() == id {
                    break s;
                }
            };
            let mut got = [0; 9];
            stream.stream().read_exact(&mut got).await.unwrap();
            assert_eq!(&got, b"forwarded");
        });
        // Every handle gone, both links end.
        drop((sink_reader, source_writer, hello, peer, port, incoming));
        drop(peer_incoming);
        assert!(peer_link.join().is_ok());
        assert!(link.join().is_ok());
    }
}
