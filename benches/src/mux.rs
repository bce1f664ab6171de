//! Links of the mux benches: circuit-mux (credit and v0), yamux and the
//! raw link, each a client end that opens streams whose far end echoes
//! them back, over an in-memory pipe, loopback TCP within the process, or
//! loopback TCP to a server process of its own ([`Medium::Process`],
//! served by [`serve`]).
//!
//! The mux bench (`benches/mux.rs`) and the latency example
//! (`examples/latency.rs`) set up their links here, so that both measure
//! the same thing.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use circuit_mux::{Config, CreditMode, LinkMode, Mux, Role};
use circuit_transport_tokio::FuturesIo;
use futures::channel::{mpsc, oneshot};
use futures::future::BoxFuture;
use futures::io::{AsyncBufRead, AsyncRead, AsyncReadExt, AsyncWrite};
use futures::StreamExt;
use tokio::net::TcpStream;
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

use crate::config::{Medium, PIPE};
use crate::echo::{buffered, echo, ping, BoxRead, BoxWrite, Open};
use crate::process::{Handler, Server};
use crate::runtime::Tasks;
use crate::tcp::{connect, duplex_echo, echo_server, tcp_pair};

/// Which multiplexer, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// circuit-mux, default `Config`: credit flow control (`CreditMode::Auto`
    /// on both ends, so the link runs in credit mode).
    Circuit,
    /// circuit-mux with `CreditMode::Off` on both ends: plain v0 framing.
    CircuitV0,
    /// yamux 0.14, default config.
    Yamux,
    /// The link alone, echoed full duplex over TCP.
    Raw,
    /// The link alone over TCP, echoed serially (the old baseline); only
    /// in `mux_w1_tcp2p`.
    RawSerial,
    /// `Circuit` whose server echoes each stream inside the link
    /// (`Mux::loop_back`: no task, no copy), as the plain TCP echo does
    /// without a copy; only in `mux_w1_tcp2p` and `mux_w2_16_tcp2p`.
    CircuitLoopBack,
}

/// What every group of the mux bench runs.
pub const KINDS: [Kind; 4] = [Kind::Circuit, Kind::CircuitV0, Kind::Yamux, Kind::Raw];

impl Kind {
    /// The name used in group ids, reports and server processes.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Circuit => "circuit",
            Kind::CircuitV0 => "circuit_v0",
            Kind::Yamux => "yamux",
            Kind::Raw => "raw",
            Kind::RawSerial => "raw_serial",
            Kind::CircuitLoopBack => "circuit_loop_back",
        }
    }

    /// The mux configuration of both ends of a circuit link.
    pub fn config(self) -> Config {
        match self {
            Kind::CircuitV0 => Config::default().credit(CreditMode::Off),
            _ => Config::default(),
        }
    }

    /// The mode a circuit link of this kind must reach before it is
    /// measured; `None` for the others.
    pub fn mode(self) -> Option<LinkMode> {
        match self {
            Kind::Circuit | Kind::CircuitLoopBack => Some(LinkMode::Credit),
            Kind::CircuitV0 => Some(LinkMode::V0),
            _ => None,
        }
    }
}

/// A client end that opens streams whose server end echoes them. Dropping
/// it stops the drivers and servers it spawned (first, before the opener
/// goes).
pub struct Link {
    _tasks: Tasks,
    opener: Opener,
    /// The server process of a `tcp2p` link.
    process: Option<Server>,
}

enum Opener {
    Circuit {
        client: Mux,
        /// `None` when the server runs in another process.
        server: Option<Mux>,
        peaks: Option<Arc<Peaks>>,
    },
    Yamux {
        opens: mpsc::UnboundedSender<oneshot::Sender<yamux::Stream>>,
    },
    RawTcp {
        addr: SocketAddr,
    },
    RawMemory,
}

impl Link {
    /// Sets up a link of `kind` over `medium`; call within the runtime.
    /// With `peaks`, circuit readers record the most bytes they held.
    ///
    /// A circuit link is warmed up before it is returned: one stream
    /// echoes a byte, then the link waits until it is in the mode of its
    /// kind ([`Kind::mode`]). The echo server is the link's `Role::Server`,
    /// and a link reaches credit mode only once the server has sent its
    /// first data frame (its HELLO follows it) and the client has answered;
    /// a stream whose first frame went before that keeps v0 rules. After
    /// the warm-up every stream a bench opens runs under credit.
    pub async fn new(kind: Kind, medium: Medium, peaks: Option<Arc<Peaks>>) -> Link {
        let link = Link::unwarmed(kind, medium, peaks).await;
        if let Some(mode) = kind.mode() {
            link.warm_up(mode).await;
        }
        link
    }

    /// One stream echoes a byte; then waits (up to 10 s) until both muxes
    /// in this process say `mode`.
    async fn warm_up(&self, mode: LinkMode) {
        ping(self).await;
        let Opener::Circuit { client, server, .. } = &self.opener else {
            return;
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let modes = (
                client.counters().mode,
                server.as_ref().map_or(mode, |s| s.counters().mode),
            );
            if modes == (mode, mode) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the link is in modes {modes:?} (client, server), not {mode:?}"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// [`new`](Link::new) without the warm-up.
    async fn unwarmed(kind: Kind, medium: Medium, peaks: Option<Arc<Peaks>>) -> Link {
        match (kind, medium) {
            (Kind::Raw, Medium::Memory) => Link {
                opener: Opener::RawMemory,
                _tasks: Tasks::default(),
                process: None,
            },
            (Kind::Raw, Medium::Tcp) => {
                let (addr, accept) = echo_server().await;
                Link {
                    opener: Opener::RawTcp { addr },
                    _tasks: vec![accept].into(),
                    process: None,
                }
            }
            (kind, Medium::Process) => {
                let server = Server::spawn(kind.name());
                let mut link = match kind {
                    Kind::Raw | Kind::RawSerial => Link {
                        opener: Opener::RawTcp {
                            addr: server.addr(),
                        },
                        _tasks: Tasks::default(),
                        process: None,
                    },
                    Kind::Circuit | Kind::CircuitV0 | Kind::CircuitLoopBack => {
                        let io = FuturesIo::new(server.connect().await);
                        let (client, _, driver) = Mux::new(io, Role::Client, kind.config());
                        Link {
                            opener: Opener::Circuit {
                                client,
                                server: None,
                                peaks,
                            },
                            _tasks: vec![tokio::spawn(driver).abort_handle()].into(),
                            process: None,
                        }
                    }
                    Kind::Yamux => yamux_client(FuturesIo::new(server.connect().await)),
                };
                link.process = Some(server);
                link
            }
            (kind, Medium::Memory) => {
                let (client, server) = circuit_stream::duplex_pair(PIPE);
                Link::over(kind, client, server, peaks)
            }
            (kind, Medium::Tcp) => {
                let (client, server) = tcp_pair().await;
                Link::over(kind, FuturesIo::new(client), FuturesIo::new(server), peaks)
            }
        }
    }

    /// A multiplexer of `kind` over the two ends of a link.
    fn over<IO>(kind: Kind, client_io: IO, server_io: IO, peaks: Option<Arc<Peaks>>) -> Link
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        match kind {
            Kind::Circuit | Kind::CircuitV0 | Kind::CircuitLoopBack => {
                let (client, _, client_driver) = Mux::new(client_io, Role::Client, kind.config());
                let (server, accept): (Mux, BoxFuture<'static, ()>) = match kind {
                    Kind::CircuitLoopBack => {
                        let (server, accept) = circuit_loop_back_server(server_io, kind.config());
                        (server, Box::pin(accept))
                    }
                    _ => {
                        let (server, accept) =
                            circuit_server(server_io, peaks.clone(), kind.config());
                        (server, Box::pin(accept))
                    }
                };
                let tasks = vec![
                    tokio::spawn(client_driver).abort_handle(),
                    tokio::spawn(accept).abort_handle(),
                ];
                Link {
                    opener: Opener::Circuit {
                        client,
                        server: Some(server),
                        peaks,
                    },
                    _tasks: tasks.into(),
                    process: None,
                }
            }
            Kind::Yamux => {
                let serve = tokio::spawn(yamux_server(server_io));
                let mut link = yamux_client(client_io);
                link._tasks.push(serve.abort_handle());
                link
            }
            Kind::Raw | Kind::RawSerial => unreachable!("raw links have no multiplexer"),
        }
    }

    /// The process id of the server of a `tcp2p` link; `None` when the
    /// server runs in this process.
    pub fn server_pid(&self) -> Option<u32> {
        self.process.as_ref().map(Server::pid)
    }

    /// The client mux and, in this process, the server mux, for circuit
    /// links.
    pub fn muxes(&self) -> Option<(&Mux, Option<&Mux>)> {
        match &self.opener {
            Opener::Circuit { client, server, .. } => Some((client, server.as_ref())),
            _ => None,
        }
    }
}

/// The server end of a circuit link configured with `config`: its mux,
/// and the future that runs it and echoes every stream (through a
/// probe that records its peaks into `peaks`, if given).
pub fn circuit_server<IO>(
    io: IO,
    peaks: Option<Arc<Peaks>>,
    config: Config,
) -> (Mux, impl Future<Output = ()> + Send + 'static)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (server, mut incoming, driver) = Mux::new(io, Role::Server, config);
    let run = async move {
        let driver = tokio::spawn(driver);
        while let Some(s) = incoming.next().await {
            match &peaks {
                None => tokio::spawn(echo(s.into_stream())),
                Some(p) => {
                    let (reader, writer) = s.into_stream().into_split();
                    let reader = Probe {
                        reader,
                        peak: Arc::clone(p),
                        server: true,
                    };
                    tokio::spawn(echo(Probed { reader, writer }))
                }
            };
        }
        driver.abort();
    };
    (server, run)
}

/// The server end of a circuit link that echoes every stream inside the
/// link ([`Mux::loop_back`]); returns the mux and its accept loop.
pub fn circuit_loop_back_server<IO>(
    io: IO,
    config: Config,
) -> (Mux, impl Future<Output = ()> + Send + 'static)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (server, mut incoming, driver) = Mux::new(io, Role::Server, config);
    let mux = server.clone();
    let run = async move {
        let driver = tokio::spawn(driver);
        while let Some(s) = incoming.next().await {
            let stream = s.into_stream();
            let id = stream.id();
            let (reader, writer) = stream.into_split();
            if let Err((reader, writer)) = mux.loop_back(id, reader, writer) {
                // Closed before it could be looped back: echo what is left.
                let stream = circuit_stream::Duplex::from_parts(reader, writer);
                tokio::spawn(echo(stream));
            }
        }
        driver.abort();
    };
    (server, run)
}

/// The server end of a yamux link: echoes every stream.
pub async fn yamux_server<IO>(io: IO)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut server = yamux::Connection::new(io, yamux::Config::default(), yamux::Mode::Server);
    let mut inbound = futures::stream::poll_fn(|cx| server.poll_next_inbound(cx));
    while let Some(Ok(s)) = inbound.next().await {
        tokio::spawn(echo(s));
    }
}

/// The client end of a yamux link, driven by a task of its own.
fn yamux_client<IO>(io: IO) -> Link
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (opens, requests) = mpsc::unbounded();
    let conn = yamux::Connection::new(io, yamux::Config::default(), yamux::Mode::Client);
    let drive = tokio::spawn(YamuxClient {
        conn,
        requests,
        waiting: std::collections::VecDeque::new(),
    });
    Link {
        opener: Opener::Yamux { opens },
        _tasks: vec![drive.abort_handle()].into(),
        process: None,
    }
}

/// The server process of a `tcp2p` link: the handler of each connection
/// the server called `name` (a [`Kind::name`]) accepts. A bench that runs
/// links over [`Medium::Process`] passes it to
/// [`serve_if_asked`](crate::process::serve_if_asked) first thing in `main`.
pub fn serve(name: String) -> BoxFuture<'static, Option<Handler>> {
    let handler: Option<Handler> = match name.as_str() {
        "circuit" | "circuit_v0" => {
            let config = match name.as_str() {
                "circuit" => Kind::Circuit.config(),
                _ => Kind::CircuitV0.config(),
            };
            Some(Box::new(move |s: TcpStream| {
                Box::pin(circuit_server(FuturesIo::new(s), None, config.clone()).1)
                    as BoxFuture<'static, ()>
            }))
        }
        "circuit_loop_back" => Some(Box::new(|s: TcpStream| {
            let config = Kind::CircuitLoopBack.config();
            Box::pin(circuit_loop_back_server(FuturesIo::new(s), config).1)
                as BoxFuture<'static, ()>
        })),
        "yamux" => Some(Box::new(|s: TcpStream| {
            Box::pin(yamux_server(FuturesIo::new(s))) as BoxFuture<'static, ()>
        })),
        "raw" => Some(Box::new(|s: TcpStream| {
            Box::pin(duplex_echo(s)) as BoxFuture<'static, ()>
        })),
        "raw_serial" => Some(Box::new(|s: TcpStream| {
            Box::pin(echo(s.compat())) as BoxFuture<'static, ()>
        })),
        _ => None,
    };
    Box::pin(async move { handler })
}

impl Open for Link {
    /// Opens a stream (a connection for raw links), split in two halves.
    async fn open(&self) -> (BoxRead, BoxWrite) {
        match &self.opener {
            Opener::Circuit { client, peaks, .. } => {
                let (reader, w) = client.open().expect("open").into_split();
                let r: BoxRead = match peaks {
                    None => Box::new(reader),
                    Some(p) => Box::new(Probe {
                        reader,
                        peak: Arc::clone(p),
                        server: false,
                    }),
                };
                (r, Box::new(w))
            }
            Opener::Yamux { opens } => {
                let (tx, rx) = oneshot::channel();
                opens.unbounded_send(tx).expect("yamux driver");
                let (r, w) = AsyncReadExt::split(rx.await.expect("yamux open"));
                (buffered(r), Box::new(w))
            }
            Opener::RawTcp { addr } => connect(*addr).await,
            Opener::RawMemory => {
                let (client, server) = tokio::io::duplex(PIPE);
                tokio::spawn(echo(server.compat()));
                let (r, w) = tokio::io::split(client);
                (buffered(r.compat()), Box::new(w.compat_write()))
            }
        }
    }
}

/// The most bytes circuit stream readers held when about to read, on the
/// client and on the server: what the mux buffered for the application.
#[derive(Default)]
pub struct Peaks {
    /// On the client's readers.
    pub client: AtomicU64,
    /// On the server's readers (in this process only).
    pub server: AtomicU64,
}

/// A circuit reader that records into `peak` what it holds before a read.
struct Probe {
    reader: circuit_stream::Reader,
    peak: Arc<Peaks>,
    server: bool,
}

impl AsyncRead for Probe {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        self.note();
        Pin::new(&mut self.reader).poll_read(cx, buf)
    }
}

impl Probe {
    /// Notes what the reader holds now.
    fn note(&self) {
        let held = self.reader.buffered() as u64;
        let peak = match self.server {
            true => &self.peak.server,
            false => &self.peak.client,
        };
        peak.fetch_max(held, Ordering::Relaxed);
    }
}

impl AsyncBufRead for Probe {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<&[u8]>> {
        let this = self.get_mut();
        this.note();
        Pin::new(&mut this.reader).poll_fill_buf(cx)
    }

    fn consume(mut self: Pin<&mut Self>, amt: usize) {
        Pin::new(&mut self.reader).consume(amt)
    }
}

/// A probed reader and a writer as one stream, for the echo server.
struct Probed {
    reader: Probe,
    writer: circuit_stream::Writer,
}

impl AsyncRead for Probed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.reader).poll_read(cx, buf)
    }
}

impl AsyncWrite for Probed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.writer).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.writer).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.writer).poll_close(cx)
    }
}

/// Drives a yamux client connection: serves open requests in order and
/// polls the connection for progress (yamux makes progress only while
/// `poll_next_inbound` is polled).
struct YamuxClient<T> {
    conn: yamux::Connection<T>,
    requests: mpsc::UnboundedReceiver<oneshot::Sender<yamux::Stream>>,
    waiting: std::collections::VecDeque<oneshot::Sender<yamux::Stream>>,
}

impl<T: AsyncRead + AsyncWrite + Unpin> Future for YamuxClient<T> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            while let Poll::Ready(Some(tx)) = this.requests.poll_next_unpin(cx) {
                this.waiting.push_back(tx);
            }
            let mut progress = false;
            if !this.waiting.is_empty() {
                match this.conn.poll_new_outbound(cx) {
                    Poll::Ready(Ok(stream)) => {
                        if let Some(tx) = this.waiting.pop_front() {
                            let _ = tx.send(stream);
                        }
                        progress = true;
                    }
                    Poll::Ready(Err(_)) => return Poll::Ready(()),
                    Poll::Pending => {}
                }
            }
            match this.conn.poll_next_inbound(cx) {
                // The client accepts nothing: drop what the peer opens.
                Poll::Ready(Some(Ok(_))) => progress = true,
                Poll::Ready(Some(Err(_)) | None) => return Poll::Ready(()),
                Poll::Pending => {}
            }
            if !progress {
                return Poll::Pending;
            }
        }
    }
}
