//! The application's handles: `Mux` opens streams, `Incoming` accepts them.

use std::collections::VecDeque;
use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Waker};

use circuit_stream::{Reader, Writer};
use futures::io::{AsyncRead, AsyncWrite};
use futures::Stream;

use crate::core::Core;
use crate::counters::{AtomicCounters, Counters};
use crate::ready::ReadyQueue;
use crate::{
    AttachError, CloseCause, Config, Driver, LinkMode, MuxError, MuxStream, Role, StreamObserver,
};

/// Failures reported for single streams kept before the oldest is dropped.
const MAX_STREAM_FAILURES: usize = 1024;

/// A non-fatal failure of one incoming stream, reported by the application
/// through [`ErrorReporter::report`] (the seed's `stream_errors_out`).
#[derive(Debug)]
pub struct StreamFailure {
    /// The stream's id on the link.
    pub stream_id: u32,
    /// The peer's name from the config.
    pub peer: String,
    /// What went wrong.
    pub error: Box<dyn StdError + Send + Sync>,
}

#[derive(Debug, Default)]
struct Failures {
    queue: VecDeque<StreamFailure>,
    waker: Option<Waker>,
}

/// How the driver ended, for [`Close`] futures.
#[derive(Debug, Default)]
struct Ending {
    /// `Some(true)`: the driver returned `Ok(())`; `Some(false)`: it
    /// failed or was dropped.
    clean: Option<bool>,
    /// [`Close`] futures waiting for the end.
    wakers: Vec<Waker>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    core: Mutex<Core>,
    pub(crate) ready: Arc<ReadyQueue>,
    pub(crate) counters: Arc<AtomicCounters>,
    handles: AtomicUsize,
    failures: Mutex<Failures>,
    /// Set by [`Mux::close`], so that the driver looks at the core's close
    /// only once there is one.
    pub(crate) closing: AtomicBool,
    ending: Mutex<Ending>,
    /// The driver's span, whose `peer` field follows [`Mux::set_peer_name`].
    pub(crate) span: tracing::Span,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// No handle left and no stream open: the driver may close the link.
    pub(crate) fn is_abandoned(&self) -> bool {
        self.handles.load(Ordering::Acquire) == 0 && self.lock().is_idle()
    }

    /// The driver has ended (`clean`: with `Ok(())`): wakes the [`Close`]
    /// futures.
    pub(crate) fn driver_ended(&self, clean: bool) {
        let wakers = {
            let mut ending = self.ending.lock().unwrap_or_else(PoisonError::into_inner);
            ending.clean.get_or_insert(clean);
            std::mem::take(&mut ending.wakers)
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    fn drop_handle(&self) {
        if self.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.ready.wake_driver();
        }
    }
}

/// The application's handle on a link: opens streams and reads counters.
/// Clone it freely; the link closes once every `Mux` and the [`Incoming`]
/// are dropped and every stream has ended.
///
/// ```
/// use circuit_mux::{Config, Mux, Role};
/// use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
///
/// futures::executor::block_on(async {
///     // Two ends of a link, here an in-process pipe.
///     let (a_io, b_io) = circuit_stream::duplex_pair(1 << 20);
///     let (a, _a_incoming, a_driver) = Mux::new(a_io, Role::Client, Config::default());
///     let (_b, mut b_incoming, b_driver) = Mux::new(b_io, Role::Server, Config::default());
///
///     let talk = async move {
///         let mut out = a.open().unwrap();
///         out.write_all(b"ping").await.unwrap();
///         let mut incoming = b_incoming.next().await.unwrap();
///         let mut buf = [0; 4];
///         incoming.stream().read_exact(&mut buf).await.unwrap();
///         assert_eq!(&buf, b"ping");
///     };
///     futures::future::select(
///         Box::pin(talk),
///         futures::future::join(a_driver, b_driver),
///     )
///     .await;
/// });
/// ```
#[derive(Debug)]
pub struct Mux {
    shared: Arc<Shared>,
}

impl Mux {
    /// Starts a mux on `io`, one end of a link, in `role`. Returns the
    /// handle, the stream of incoming streams and the driver future, which
    /// must be polled (or spawned) for anything to happen.
    ///
    /// The driver writes a large frame as its header and its payload, moved
    /// out of the stream's pipe, in one vectored write. An `io` that writes
    /// only the first buffer of a vectored write (futures-io's default, and
    /// tokio-util's `compat`) still works: after such a write the driver
    /// copies frames into one buffer per write for a while (1 MiB, doubling
    /// each time up to 64 MiB), then tries a vectored write again. For
    /// tokio sockets, `circuit_transport_tokio::FuturesIo` passes vectored
    /// writes through.
    ///
    /// A link that is a [`circuit_stream::Duplex`] (two muxes of one
    /// process, joined by [`circuit_stream::duplex_pair`]) gets each data
    /// frame of 16 KiB or more that fits it whole as its header, copied,
    /// and its payload, handed over in the storage it was written into: no
    /// copy between the stream's pipe and the link's. Such a payload keeps
    /// its block (up to 64 KiB for a copied write) until the peer reads
    /// it, so the link's pipe may hold up to four times its capacity in
    /// blocks. Receiving, the driver takes such a payload out of the
    /// link's pipe and hands it to its stream's pipe the same way, when
    /// the stream has room for 16 KiB of it or more at once: a stream's
    /// pipe, too, may then hold up to four times the bytes it counts in
    /// blocks. The driver is a future to spawn,
    /// so `io` is `'static`: owned, not borrowed.
    pub fn new<IO>(io: IO, role: Role, config: Config) -> (Mux, Incoming, Driver<IO>)
    where
        IO: AsyncRead + AsyncWrite + Unpin + 'static,
    {
        let ready = Arc::new(ReadyQueue::default());
        let counters = Arc::new(AtomicCounters::default());
        // An unnamed peer's field stays empty until named (a node names it
        // after its handshake): subscribers that append recorded fields
        // then show one name, not the placeholder and the name.
        let span = tracing::debug_span!("link", peer = tracing::field::Empty, role = ?role);
        if config.peer_name != Config::default().peer_name {
            span.record("peer", tracing::field::display(&config.peer_name));
        }
        let core = Core::with_parts(role, config, Arc::clone(&ready), Arc::clone(&counters));
        let shared = Arc::new(Shared {
            core: Mutex::new(core),
            ready,
            counters,
            handles: AtomicUsize::new(2),
            failures: Mutex::new(Failures::default()),
            closing: AtomicBool::new(false),
            ending: Mutex::new(Ending::default()),
            span,
        });
        let mut driver = Driver::new(io, Arc::clone(&shared));
        driver.hand_over_to_pipes();
        (
            Mux {
                shared: Arc::clone(&shared),
            },
            Incoming { shared },
            driver,
        )
    }

    /// Opens a stream. Nothing goes on the wire until the first byte is
    /// written; a stream closed before that is never seen by the peer.
    pub fn open(&self) -> Result<MuxStream, MuxError> {
        let config = self.shared.lock().config().clone();
        let (reader, sink) = circuit_stream::stream_with_capacity(config.stream_receive_limit);
        let (source, writer) = circuit_stream::stream_with_capacity(config.stream_send_buffer);
        let id = self
            .shared
            .lock()
            .attach_sending(source, sink)
            .map_err(|e| e.error)?;
        Ok(MuxStream::new(id, reader, writer))
    }

    /// Opens a stream that sends what `source` yields and delivers what the
    /// peer sends into `sink`: splices two pipes onto the link with no task
    /// and no copy in between (a router forwarding a stream uses this).
    /// If the link has ended the pipes come back in the error.
    pub fn attach(&self, source: Reader, sink: Writer) -> Result<u32, AttachError> {
        self.shared.lock().attach(source, sink)
    }

    /// [`attach`](Self::attach), with `observer` told when the mux closes a
    /// direction of the stream: the peer's close frame, the link's end, or
    /// a cut by [`close_streams`](Self::close_streams) (see
    /// [`StreamObserver`]). On failure the observer is dropped, never
    /// called.
    pub fn attach_observed(
        &self,
        source: Reader,
        sink: Writer,
        observer: StreamObserver,
    ) -> Result<u32, AttachError> {
        self.shared.lock().attach_observed(source, sink, observer)
    }

    /// Sends back, from now on, what the peer sends on stream `id`, inside
    /// the link, with no task and no copy: an echo service. `reader` and
    /// `writer` are the stream's own ends (its [`MuxStream`]'s, split), and
    /// the mux retires them; bytes written and not yet sent go first. The
    /// stream closes its direction after the peer closes theirs and the
    /// last byte went back. See [`Core::loop_back`](crate::Core::loop_back).
    /// The ends come back untouched if they are not stream `id`'s on this
    /// link, or if a direction of it is closed.
    ///
    /// ```
    /// use circuit_mux::{Config, Mux, Role};
    /// use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
    ///
    /// futures::executor::block_on(async {
    ///     let (a_io, b_io) = circuit_stream::duplex_pair(1 << 20);
    ///     let (a, _a_incoming, a_driver) = Mux::new(a_io, Role::Client, Config::default());
    ///     let (b, mut b_incoming, b_driver) = Mux::new(b_io, Role::Server, Config::default());
    ///     let talk = async move {
    ///         let mut out = a.open().unwrap();
    ///         out.write_all(b"ping").await.unwrap();
    ///         let incoming = b_incoming.next().await.unwrap().into_stream();
    ///         let id = incoming.id();
    ///         let (reader, writer) = incoming.into_split();
    ///         b.loop_back(id, reader, writer).unwrap();
    ///         out.close().await.unwrap();
    ///         let mut echo = Vec::new();
    ///         out.read_to_end(&mut echo).await.unwrap();
    ///         assert_eq!(echo, b"ping");
    ///     };
    ///     futures::future::select(
    ///         Box::pin(talk),
    ///         futures::future::join(a_driver, b_driver),
    ///     )
    ///     .await;
    /// });
    /// ```
    pub fn loop_back(
        &self,
        id: u32,
        reader: Reader,
        writer: Writer,
    ) -> Result<(), (Reader, Writer)> {
        self.shared.lock().loop_back(id, reader, writer)
    }

    /// Gives stream `id` (one the peer opened, say) an observer from now
    /// on, replacing any it had. Returns how the peer's direction of it had
    /// already been closed by the mux, if it had (the observer is not told
    /// of that close; its epitaph is what the stream's reader reads); see
    /// [`Core::observe`](crate::Core::observe).
    pub fn observe(&self, id: u32, observer: StreamObserver) -> Option<CloseCause> {
        self.shared.lock().observe(id, observer)
    }

    /// Names the peer from now on (see [`Config::peer_name`]): in errors,
    /// in the epitaphs of streams the link's end closes, and in the
    /// `peer` field of the driver's `link` span. For a peer whose name is
    /// learned on the link itself, as a node learns its neighbour's in the
    /// handshake.
    pub fn set_peer_name(&self, name: &str) {
        self.shared.lock().set_peer_name(name);
        self.shared
            .span
            .record("peer", tracing::field::display(name));
    }

    /// Names this end from now on, in the epitaphs of streams the link's
    /// end closes (see [`Config::local_name`]).
    pub fn set_local_name(&self, name: &str) {
        self.shared.lock().set_local_name(name);
    }

    /// The counters of this link now.
    pub fn counters(&self) -> Counters {
        self.shared.counters.snapshot()
    }

    /// How many ranges the mux keeps to remember closed ids of the peer's
    /// parity (bounded by [`Config::max_closed_id_ranges`]).
    pub fn closed_id_ranges(&self) -> usize {
        self.shared.lock().closed_id_ranges()
    }

    /// Whether stream `id` of this link has a direction still open.
    pub fn is_open(&self, id: u32) -> bool {
        self.shared.lock().is_open(id)
    }

    /// Closes every stream of the link with `epitaph` (a graceful shutdown
    /// past its deadline): unsent bytes are dropped, the peer gets a close
    /// frame carrying `epitaph` for each stream it knows, local readers end
    /// with it. The link itself stays up until its driver ends.
    pub fn close_streams(&self, epitaph: &str) {
        self.shared.lock().close_streams(epitaph);
        self.shared.ready.wake_driver();
    }

    /// Closes the link gracefully, as yamux's `Connection::poll_close`
    /// does: no stream may open from now on ([`open`](Self::open) and
    /// [`attach`](Self::attach) fail with [`MuxError::LinkClosed`]), the
    /// peer's new streams are refused and [`Incoming`] ends; every stream is
    /// closed with `epitaph` as [`close_streams`](Self::close_streams) does
    /// (unsent bytes are dropped, the peer gets a close frame carrying
    /// `epitaph` for each stream it knows, local readers end with it). The
    /// driver writes and flushes the close frames, then closes the link
    /// (`poll_close` on its io: a socket's write half), reads and drops
    /// what the peer still sends until the peer closes its end (a socket
    /// let go with bytes unread would send a TCP reset, which can destroy
    /// the close frames on their way), and returns `Ok(())`.
    ///
    /// The close starts here, not when the returned future is first
    /// polled, and the driver carries it out whether or not the future is
    /// awaited or kept. The future resolves when the driver has ended:
    /// `Ok(())` once it closed the link (or the peer ended the link cleanly
    /// first), `Err(`[`MuxError::LinkClosed`]`)` if the link failed or the
    /// driver was dropped (the driver's own result says why). A peer that
    /// never reads can keep the close frames from going out, and one that
    /// never closes its end keeps the driver reading: the future then
    /// waits until the driver is dropped, so bound the wait with a
    /// deadline of your own and drop the driver when it passes. Closing
    /// twice does nothing more (the first epitaph wins); closing an ended
    /// link resolves at once.
    pub fn close(&self, epitaph: &str) -> Close {
        self.shared.lock().close(epitaph);
        self.shared.closing.store(true, Ordering::Release);
        self.shared.ready.wake_driver();
        Close {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Waits until the link's mode is decided (PROTOCOL.md section 4) and
    /// returns it: [`LinkMode::Credit`] once both ends' HELLOs have crossed,
    /// so that every stream opened from then on runs under credit;
    /// [`LinkMode::V0`] when either end is v0 or the link ended. The
    /// server offers credit only after its first data frame, so a link on
    /// which the server never sends stays undecided.
    pub async fn mode_settled(&self) -> LinkMode {
        std::future::poll_fn(|cx| self.shared.lock().poll_mode_settled(cx)).await
    }

    /// This end's role on the link.
    pub fn role(&self) -> Role {
        self.shared.lock().role()
    }

    /// Failures the application reported for single incoming streams.
    pub fn stream_failures(&self) -> StreamFailures {
        StreamFailures {
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The future of [`Mux::close`]: resolves when the link's driver has
/// ended. Dropping it does not stop the close.
#[must_use = "the close goes on without it; await it to learn when the link is closed"]
#[derive(Debug)]
pub struct Close {
    shared: Arc<Shared>,
}

impl Future for Close {
    type Output = Result<(), MuxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut ending = self
            .shared
            .ending
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match ending.clean {
            Some(true) => Poll::Ready(Ok(())),
            Some(false) => Poll::Ready(Err(MuxError::LinkClosed)),
            None => {
                if !ending.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                    ending.wakers.push(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }
}

impl Clone for Mux {
    fn clone(&self) -> Self {
        self.shared.handles.fetch_add(1, Ordering::AcqRel);
        Mux {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl Drop for Mux {
    fn drop(&mut self) {
        self.shared.drop_handle();
    }
}

/// Streams the peer opened, as a futures `Stream`. It ends when the link
/// ends or [`Mux::close`] was called (streams accepted before stay in it
/// until taken). Dropping it makes the mux refuse new incoming streams.
#[derive(Debug)]
pub struct Incoming {
    shared: Arc<Shared>,
}

impl Stream for Incoming {
    type Item = IncomingStream;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<IncomingStream>> {
        let mut core = self.shared.lock();
        if let Some(accepted) = core.accept_queue.pop_front() {
            let stream_id = accepted.stream.id();
            drop(core);
            return Poll::Ready(Some(IncomingStream {
                stream: accepted.stream,
                reporter: ErrorReporter {
                    stream_id,
                    shared: Arc::downgrade(&self.shared),
                },
            }));
        }
        if core.ended || core.closing {
            return Poll::Ready(None);
        }
        core.accept_waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        let queued = {
            let mut core = self.shared.lock();
            core.accepting = false;
            std::mem::take(&mut core.accept_queue)
        };
        drop(queued);
        self.shared.drop_handle();
    }
}

/// A stream the peer opened, with the means to report that handling it
/// failed without failing the link.
#[derive(Debug)]
pub struct IncomingStream {
    stream: MuxStream,
    reporter: ErrorReporter,
}

impl IncomingStream {
    /// The stream's id on the link.
    pub fn id(&self) -> u32 {
        self.stream.id()
    }

    /// The stream, to read and write.
    pub fn stream(&mut self) -> &mut MuxStream {
        &mut self.stream
    }

    /// The stream and its error reporter.
    pub fn into_parts(self) -> (MuxStream, ErrorReporter) {
        (self.stream, self.reporter)
    }

    /// The stream alone (accepting it: nothing will be reported).
    pub fn into_stream(self) -> MuxStream {
        self.stream
    }
}

/// Reports a non-fatal failure of one incoming stream to whoever reads
/// [`Mux::stream_failures`]. Dropping it reports nothing.
#[derive(Debug)]
pub struct ErrorReporter {
    stream_id: u32,
    shared: Weak<Shared>,
}

impl ErrorReporter {
    /// Records that handling this stream failed with `error`.
    pub fn report(self, error: impl Into<Box<dyn StdError + Send + Sync>>) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        AtomicCounters::add(&shared.counters.errors, 1);
        let peer = shared.lock().config().peer_name.clone();
        let waker = {
            let mut failures = shared
                .failures
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if failures.queue.len() >= MAX_STREAM_FAILURES {
                failures.queue.pop_front();
            }
            failures.queue.push_back(StreamFailure {
                stream_id: self.stream_id,
                peer,
                error: error.into(),
            });
            failures.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The failures reported for incoming streams of one link, as a futures
/// `Stream`. The oldest are dropped past 1,024 unread ones. It never ends
/// on its own; drop it when the link's driver has returned.
#[derive(Debug)]
pub struct StreamFailures {
    shared: Arc<Shared>,
}

impl Stream for StreamFailures {
    type Item = StreamFailure;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<StreamFailure>> {
        let mut failures = self
            .shared
            .failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match failures.queue.pop_front() {
            Some(f) => Poll::Ready(Some(f)),
            None => {
                failures.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
