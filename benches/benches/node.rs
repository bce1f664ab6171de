//! `circuit-node`: routed streams through chains of routers, beside the
//! direct link and a raw connection, and route convergence of meshes.
//!
//! Every throughput and latency workload runs over three media: in-memory
//! links (`circuit_stream::duplex_pair`) and loopback TCP (`TCP_NODELAY`
//! on, tokio sockets through
//! `circuit_transport_tokio::FuturesIo`) with all nodes in one
//! process on a tokio runtime with 2 workers (every link future a task),
//! and `tcp2p`: loopback TCP with `b` and `r1` each in a process of its own
//! (2 workers each), as the baseline set-up in benches/README.md measures
//! W3 (three processes); all but `router_3` run there.
//! Leaf `a` opens routed streams to leaf `b`, which echoes every stream
//! back. Topologies (the ids in each group):
//! - `raw`: no node, one connection (`duplex_pair` in memory), echoed; over
//!   TCP full duplex by `circuit_benches::tcp::duplex_echo` (it reads while
//!   it writes, 256 KiB at a time), in memory by the serial `echo` that
//!   `b` runs on every stream,
//! - `raw_relay` (TCP only): `raw` through a plain relay that reads and
//!   writes 256 KiB at a time (a task here, or a process of its own in
//!   `tcp2p`), to the same full-duplex echo, so that only the relay differs
//!   from `raw`: the ceiling of any router that copies through user space,
//! - `raw_splice` (`tcp2p` on Linux only): `raw` through a relay process
//!   that moves the bytes with `splice(2)`, never through user space: the
//!   ceiling of any router hop over loopback TCP,
//! - `direct`: a - b over one link,
//! - `router_1`: a - r1 - b,
//! - `router_3`: a - r1 - r2 - r3 - b,
//!
//! so the figures that matter are the ratios within a group, above all
//! `router_1 / direct` over TCP, beside `raw_relay / raw` and
//! `raw_splice / raw`: what one hop costs with no protocol at all.
//!
//! Groups:
//! - `node_stream_<medium>`: one stream echoes `STREAM` bytes in 64 KiB
//!   writes; throughput is bytes one way / time from the open to the last
//!   echoed byte read and checked against the pattern sent.
//! - `node_open_<medium>`: open a stream, echo 1 byte, drop it; time per
//!   iteration. `raw` over TCP opens a new connection each time.
//! - `node_converge`: builds a random connected mesh of routers (a random
//!   spanning tree plus as many extra links as nodes, qualities 1, 2, 5 or
//!   20) in memory on one single-threaded executor with a `ManualClock`,
//!   then advances the clock one advertise interval per round until every
//!   node reaches every other; time per whole run.
//!
//! After the groups a report pass (skip it with `CIRCUIT_BENCH_REPORT=0`)
//! prints, per mesh size, the rounds until everyone reaches everyone and
//! until the control streams fall quiet, and the control bytes sent
//! (`NodeState` bytes from the routing counters; mux bytes out of all links).
//!
//! Sizes: small by default so that a CI smoke run is quick; set
//! `CIRCUIT_BENCH_FULL=1` for 256 MiB per stream and the 200-node mesh
//! timed by criterion (the report prints both mesh sizes either way).
//!
//! Run: `CIRCUIT_BENCH_FULL=1 cargo bench -p circuit-benches --bench node`
//! (smoke: `cargo bench -p circuit-benches --bench node -- --warm-up-time 0.5
//! --measurement-time 1 --sample-size 10 --noplot`).

use std::collections::{BTreeSet, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use circuit_benches::config::{criterion, full, report_enabled, Medium, MIB, PIPE};
use circuit_benches::echo::{bulk, echo, ping, BoxRead, BoxWrite, Open};
use circuit_benches::process::{self, serve_if_asked, Handler, Server};
use circuit_benches::runtime::{context_switches, cpu_times, runtime, timed, CpuTimes, Tasks};
use circuit_benches::tcp::{connect, duplex_echo, echo_server, tcp_pair};
use circuit_frame::{Name, Quality};
use circuit_mux::Role as MuxRole;
use circuit_node::routing::{RouteEvent, RoutingConfig};
use circuit_node::timer::ManualClock;
use circuit_node::{IncomingStreams, Node, NodeConfig, PeerEvents};
use circuit_transport_tokio::{FuturesIo, TokioTimer};
use criterion::{criterion_group, BenchmarkId, Criterion, SamplingMode, Throughput};
use futures::executor::LocalPool;
use futures::future::{BoxFuture, RemoteHandle};
use futures::task::LocalSpawnExt;
use futures::StreamExt;
use tokio::net::TcpStream;
use tokio::runtime::Runtime;

/// The application protocol every node speaks.
const PROTOCOL: &str = "bench";

/// Bytes echoed over one stream per iteration.
fn stream_bytes() -> usize {
    if full() {
        256 * MIB
    } else {
        16 * MIB
    }
}

/// Mesh sizes timed by criterion (the report prints 50 and 200 always).
fn timed_meshes() -> &'static [usize] {
    if full() {
        &[50, 200]
    } else {
        &[50]
    }
}

/// Between `a` and `b`: nothing (a raw connection), a plain byte relay on
/// a raw connection, or that many routers.
#[derive(Clone, Copy, Debug)]
enum Path {
    Raw,
    Relay(Relay),
    Routers(usize),
}

/// How a relay path moves bytes (see `circuit_benches::relay`).
#[derive(Clone, Copy, Debug)]
enum Relay {
    /// Through user space: read, then write.
    Copy,
    /// Inside the kernel with `splice(2)` (Linux only).
    Splice,
}

impl Path {
    fn name(self) -> String {
        match self {
            Path::Raw => "raw".into(),
            Path::Relay(Relay::Copy) => "raw_relay".into(),
            Path::Relay(Relay::Splice) => "raw_splice".into(),
            Path::Routers(0) => "direct".into(),
            Path::Routers(n) => format!("router_{n}"),
        }
    }

    /// The paths measured over `medium`: relays only over TCP (splice
    /// only with the relay in a process of its own, on Linux), and at
    /// most one router when routers run in processes of their own.
    fn over(medium: Medium) -> Vec<Path> {
        let mut paths = vec![Path::Raw];
        match medium {
            Medium::Memory => {}
            Medium::Tcp => paths.push(Path::Relay(Relay::Copy)),
            Medium::Process => {
                paths.push(Path::Relay(Relay::Copy));
                if cfg!(target_os = "linux") {
                    paths.push(Path::Relay(Relay::Splice));
                }
            }
        }
        paths.extend([Path::Routers(0), Path::Routers(1)]);
        if !matches!(medium, Medium::Process) {
            paths.push(Path::Routers(3));
        }
        paths
    }
}

/// A client end that opens streams whose far end echoes them. Dropping it
/// stops every task it spawned.
struct Chain {
    /// Dropped first, before the nodes go.
    _tasks: Tasks,
    opener: Opener,
    /// The routers between `a` and `b`, for their counters (those in this
    /// process).
    routers: Vec<Node>,
    /// The server processes of a `tcp2p` chain.
    servers: Vec<Server>,
}

enum Opener {
    Node(Node),
    RawTcp(SocketAddr),
    RawMemory,
}

impl Chain {
    /// Sets up `path` over `medium`; call within the runtime. Returns once
    /// `a` can reach `b`.
    async fn new(path: Path, medium: Medium) -> Chain {
        let routers = match path {
            Path::Routers(n) => n,
            Path::Raw => return Chain::raw(medium).await,
            Path::Relay(relay) => return Chain::relay(relay, medium).await,
        };
        if let Medium::Process = medium {
            return Chain::processes(routers).await;
        }
        let timer = TokioTimer::shared();
        let (a, mut a_peers, _) =
            Node::new("a", PROTOCOL, config(NodeConfig::leaf())).expect("valid names");
        let (b, _, b_incoming) =
            Node::new("b", PROTOCOL, config(NodeConfig::leaf())).expect("valid names");
        let mut chain = vec![a.clone()];
        for i in 1..=routers {
            let router = NodeConfig::router(Arc::clone(&timer));
            let (r, _, _) =
                Node::new(&format!("r{i}"), PROTOCOL, config(router)).expect("valid names");
            chain.push(r);
        }
        chain.push(b);
        let routers = chain[1..chain.len() - 1].to_vec();
        let mut tasks = Tasks::default();
        for pair in chain.windows(2) {
            let (left, right) = (&pair[0], &pair[1]);
            let (l, r) = match medium {
                Medium::Memory => {
                    let (l, r) = circuit_stream::duplex_pair(PIPE);
                    (
                        left.link_io(l, MuxRole::Client, Quality::IN_PROCESS)
                            .boxed_link(),
                        right
                            .link_io(r, MuxRole::Server, Quality::IN_PROCESS)
                            .boxed_link(),
                    )
                }
                Medium::Tcp | Medium::Process => {
                    // (`Process` chains are built by `processes`.)
                    let (l, r) = tcp_pair().await;
                    (
                        left.link_io(FuturesIo::new(l), MuxRole::Client, Quality::LOCAL_SOCKET)
                            .boxed_link(),
                        right
                            .link_io(FuturesIo::new(r), MuxRole::Server, Quality::LOCAL_SOCKET)
                            .boxed_link(),
                    )
                }
            };
            tasks.push(tokio::spawn(l).abort_handle());
            tasks.push(tokio::spawn(r).abort_handle());
        }
        tasks.push(tokio::spawn(echo_streams(b_incoming)).abort_handle());
        wait_for_b(&mut a_peers).await;
        Chain {
            opener: Opener::Node(a),
            routers,
            _tasks: tasks,
            servers: Vec::new(),
        }
    }

    /// `a` here, `b` and the router (if any) each in a process of its own,
    /// linked over loopback TCP, as W3 of the baseline set-up in benches/README.md.
    async fn processes(routers: usize) -> Chain {
        let b = Server::spawn("b");
        let mut servers = Vec::new();
        let first = match routers {
            0 => b.addr(),
            1 => {
                let r1 = Server::spawn_with("r1", Some(b.addr()));
                let addr = r1.addr();
                servers.push(r1);
                addr
            }
            n => unreachable!("{n} routers in processes: not a set-up of this bench"),
        };
        servers.push(b);
        let (a, mut a_peers, _) =
            Node::new("a", PROTOCOL, config(NodeConfig::leaf())).expect("valid names");
        let link = a.link_io(
            FuturesIo::new(process::connect(first).await),
            MuxRole::Client,
            Quality::LOCAL_SOCKET,
        );
        let tasks = vec![tokio::spawn(link.boxed_link()).abort_handle()];
        wait_for_b(&mut a_peers).await;
        Chain {
            opener: Opener::Node(a),
            routers: Vec::new(),
            _tasks: tasks.into(),
            servers,
        }
    }

    async fn raw(medium: Medium) -> Chain {
        match medium {
            Medium::Memory => Chain {
                opener: Opener::RawMemory,
                routers: Vec::new(),
                _tasks: Tasks::default(),
                servers: Vec::new(),
            },
            Medium::Tcp => {
                let (addr, accept) = echo_server().await;
                Chain {
                    opener: Opener::RawTcp(addr),
                    routers: Vec::new(),
                    _tasks: vec![accept].into(),
                    servers: Vec::new(),
                }
            }
            Medium::Process => {
                let server = Server::spawn("raw");
                Chain {
                    opener: Opener::RawTcp(server.addr()),
                    routers: Vec::new(),
                    _tasks: Tasks::default(),
                    servers: vec![server],
                }
            }
        }
    }
}

impl Chain {
    /// A raw connection through a `relay` to an echo server: over `Tcp`
    /// the relay is a task here and the echo one too, over `Process`
    /// each runs in a process of its own.
    async fn relay(relay: Relay, medium: Medium) -> Chain {
        let chain = |addr, tasks: Vec<_>, servers| Chain {
            opener: Opener::RawTcp(addr),
            routers: Vec::new(),
            _tasks: tasks.into(),
            servers,
        };
        match (medium, relay) {
            (Medium::Tcp, Relay::Copy) => {
                let (echo, accept) = echo_server().await;
                let (addr, relay) = circuit_benches::relay::copy_server(echo).await;
                chain(addr, vec![relay, accept], Vec::new())
            }
            (Medium::Process, _) => {
                let echo = Server::spawn("raw");
                let name = match relay {
                    Relay::Copy => "relay",
                    Relay::Splice => "splice",
                };
                let relay = Server::spawn_with(name, Some(echo.addr()));
                chain(relay.addr(), Vec::new(), vec![relay, echo])
            }
            _ => unreachable!("{relay:?} over {medium:?}: not a set-up of this bench"),
        }
    }
}

impl Open for Chain {
    /// Opens a stream to `b` (or a raw connection to an echo).
    async fn open(&self) -> (BoxRead, BoxWrite) {
        match &self.opener {
            Opener::Node(a) => {
                let (r, w) = a
                    .connect_to_peer("b")
                    .await
                    .expect("b is reachable")
                    .into_split();
                (Box::new(r), Box::new(w))
            }
            Opener::RawTcp(addr) => connect(*addr).await,
            Opener::RawMemory => {
                let (ours, theirs) = circuit_stream::duplex_pair(PIPE);
                tokio::spawn(echo(theirs));
                let (r, w) = ours.into_split();
                (Box::new(r), Box::new(w))
            }
        }
    }
}

/// A link future with its error type erased, ready to spawn.
trait BoxedLink {
    fn boxed_link(self) -> futures::future::BoxFuture<'static, ()>;
}

impl<F, E> BoxedLink for F
where
    F: Future<Output = Result<(), E>> + Send + 'static,
{
    fn boxed_link(self) -> futures::future::BoxFuture<'static, ()> {
        Box::pin(async move {
            let _ = self.await;
        })
    }
}

/// Quick advertisements so that setting up is quick; nothing is
/// advertised while streams run (the topology does not change).
fn config(node: NodeConfig) -> NodeConfig {
    let mut routing = RoutingConfig::default();
    routing.advertise_interval = Duration::from_millis(5);
    node.routing(routing)
}

/// Echoes every stream that arrives at `b`.
async fn echo_streams(mut incoming: IncomingStreams) {
    while let Some(s) = incoming.next().await {
        tokio::spawn(echo(s.stream));
    }
}

/// Waits until `a` can reach `b`.
async fn wait_for_b(a_peers: &mut PeerEvents) {
    let b_id = Name::new("b").expect("short name");
    while let Some(event) = a_peers.next().await {
        if event == RouteEvent::PeerReachable(b_id.clone()) {
            break;
        }
    }
}

/// The server processes of `tcp2p` chains: `raw` echoes connections, `b`
/// is the echoing leaf and `r1` a router that dials its upstream (`b`);
/// both take links on every connection they accept.
fn serve(name: String) -> BoxFuture<'static, Option<Handler>> {
    Box::pin(async move {
        let node = match name.as_str() {
            "raw" => {
                return Some(Box::new(|s: TcpStream| {
                    Box::pin(duplex_echo(s)) as BoxFuture<'static, ()>
                }) as Handler)
            }
            "relay" => {
                let up = process::upstream().expect("the relay is told where the echo is");
                return Some(Box::new(move |s: TcpStream| {
                    Box::pin(circuit_benches::relay::copy(s, up)) as BoxFuture<'static, ()>
                }) as Handler);
            }
            #[cfg(target_os = "linux")]
            "splice" => {
                let up = process::upstream().expect("the relay is told where the echo is");
                return Some(Box::new(move |s: TcpStream| {
                    circuit_benches::relay::splice(s, up);
                    Box::pin(async {}) as BoxFuture<'static, ()>
                }) as Handler);
            }
            "b" => {
                let (b, _, incoming) =
                    Node::new("b", PROTOCOL, config(NodeConfig::leaf())).expect("valid names");
                tokio::spawn(echo_streams(incoming));
                b
            }
            "r1" => {
                let router = NodeConfig::router(TokioTimer::shared());
                let (r1, _, _) = Node::new("r1", PROTOCOL, config(router)).expect("valid names");
                let up = process::upstream().expect("r1 is told where b is");
                let link = r1.link_io(
                    FuturesIo::new(process::connect(up).await),
                    MuxRole::Client,
                    Quality::LOCAL_SOCKET,
                );
                tokio::spawn(link.boxed_link());
                r1
            }
            _ => return None,
        };
        Some(Box::new(move |s: TcpStream| {
            node.link_io(FuturesIo::new(s), MuxRole::Server, Quality::LOCAL_SOCKET)
                .boxed_link()
        }) as Handler)
    })
}

/// Where the benches run: in memory and over loopback TCP with every node
/// in this process, and over loopback TCP with `b` and `r1` each in a
/// process of their own (`tcp2p`; no `router_3` there).
const NODE_MEDIA: [Medium; 3] = [Medium::Memory, Medium::Tcp, Medium::Process];

fn chains(rt: &Runtime, medium: Medium) -> Vec<(Path, Arc<Chain>)> {
    Path::over(medium)
        .into_iter()
        .map(|p| (p, Arc::new(rt.block_on(Chain::new(p, medium)))))
        .collect()
}

fn stream_groups(c: &mut Criterion) {
    let rt = runtime();
    let total = stream_bytes();
    for medium in NODE_MEDIA {
        let chains = chains(&rt, medium);

        let mut group = c.benchmark_group(format!("node_stream_{}", medium.name()));
        group
            .throughput(Throughput::Bytes(total as u64))
            .sample_size(10)
            .sampling_mode(SamplingMode::Flat);
        let label = format!("1x{}MiB_echo", total / MIB);
        for (path, chain) in &chains {
            group.bench_function(BenchmarkId::new(path.name(), &label), |b| {
                b.iter_custom(|iters| {
                    timed(&rt, chain, iters, move |c| async move {
                        bulk(&c, 1, total).await
                    })
                })
            });
        }
        group.finish();

        let mut group = c.benchmark_group(format!("node_open_{}", medium.name()));
        for (path, chain) in &chains {
            if let Path::Routers(3) = path {
                continue;
            }
            group.bench_function(BenchmarkId::new(path.name(), "open_echo_1B"), |b| {
                b.iter_custom(|iters| timed(&rt, chain, iters, |c| async move { ping(&c).await }))
            });
        }
        group.finish();
    }
}

/// xorshift64: a reproducible topology without extra dependencies.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: usize) -> usize {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x % n as u64) as usize
    }
}

/// A random connected graph of `nodes` nodes: a random spanning tree plus
/// `nodes` extra links, as (a, b, quality).
fn topology(nodes: usize, seed: u64) -> Vec<(usize, usize, u8)> {
    let mut rng = XorShift(seed);
    let qualities = [1, 2, 5, 20];
    let mut links = Vec::new();
    let mut linked = BTreeSet::new();
    for i in 1..nodes {
        let j = rng.below(i);
        links.push((i, j, qualities[rng.below(4)]));
        linked.insert((j, i));
    }
    while links.len() < 2 * nodes - 1 {
        let (a, b) = (rng.below(nodes), rng.below(nodes));
        if a != b && linked.insert((a.min(b), a.max(b))) {
            links.push((a, b, qualities[rng.below(4)]));
        }
    }
    links
}

/// The most hops between two nodes.
fn diameter(nodes: usize, links: &[(usize, usize, u8)]) -> usize {
    let mut adjacency = vec![Vec::new(); nodes];
    for &(a, b, _) in links {
        adjacency[a].push(b);
        adjacency[b].push(a);
    }
    (0..nodes)
        .map(|from| {
            let mut hops = vec![usize::MAX; nodes];
            hops[from] = 0;
            let mut queue = VecDeque::from([from]);
            while let Some(n) = queue.pop_front() {
                for &m in &adjacency[n] {
                    if hops[m] == usize::MAX {
                        hops[m] = hops[n] + 1;
                        queue.push_back(m);
                    }
                }
            }
            hops.into_iter().max().unwrap_or(0)
        })
        .max()
        .unwrap_or(0)
}

/// What one convergence run measured.
struct Convergence {
    links: usize,
    diameter: usize,
    /// Intervals until every node reached every other.
    rounds: usize,
    /// `NodeState` bytes sent by all nodes by then.
    control_bytes: u64,
    /// Intervals until no node sent a `NodeState` for a whole interval.
    quiet_rounds: usize,
    /// `NodeState` bytes and messages sent by all nodes by then.
    quiet_control_bytes: u64,
    quiet_control_messages: u64,
    /// Mux bytes out of every link end by then (handshakes, framing).
    quiet_mux_bytes: u64,
    wall: Duration,
}

/// Builds a random mesh of `nodes` routers in memory and advances a
/// `ManualClock` one advertise interval per round (everything runs until
/// stalled between rounds) until every node reaches every other; with
/// `until_quiet`, goes on until a round sends no route update.
fn converge(nodes: usize, until_quiet: bool) -> Convergence {
    let start = Instant::now();
    let mut pool = LocalPool::new();
    let spawner = pool.spawner();
    let clock = ManualClock::new();
    let interval = RoutingConfig::default().advertise_interval;
    // Small buffers: four mux ends per node in one process.
    let mux = circuit_mux::Config::default()
        .read_buffer(4096)
        .write_buffer(4096);
    let links = topology(nodes, 0x5eed_cafe ^ nodes as u64);
    let diameter = diameter(nodes, &links);
    let routers: Vec<Node> = (0..nodes)
        .map(|i| {
            let config = NodeConfig::router(Arc::new(clock.clone())).mux(mux.clone());
            Node::new(&format!("n{i}"), PROTOCOL, config)
                .expect("valid names")
                .0
        })
        .collect();
    let _handles: Vec<RemoteHandle<()>> = links
        .iter()
        .flat_map(|&(a, b, quality)| {
            let quality = Quality::new(quality).expect("valid quality");
            let (a_io, b_io) = circuit_stream::duplex_pair(64 << 10);
            [
                routers[a]
                    .link_io(a_io, MuxRole::Client, quality)
                    .boxed_link(),
                routers[b]
                    .link_io(b_io, MuxRole::Server, quality)
                    .boxed_link(),
            ]
        })
        .map(|f| spawner.spawn_local_with_handle(f).expect("pool runs"))
        .collect();
    pool.run_until_stalled();
    let everyone = || {
        routers
            .iter()
            .all(|n| n.reachable_peers().len() == nodes - 1)
    };
    let sent = || {
        routers.iter().fold((0, 0), |(m, b), n| {
            let control = n.snapshot().routing.counters.control;
            (m + control.messages_sent, b + control.bytes_sent)
        })
    };
    let bound = 4 * (diameter + 2) + 20;
    let mut rounds = 0;
    while !everyone() {
        assert!(
            rounds < bound,
            "{nodes} routers: not converged after {rounds} rounds"
        );
        clock.advance(interval);
        pool.run_until_stalled();
        rounds += 1;
    }
    let control_bytes = sent().1;
    let mut quiet_rounds = rounds;
    let mut last = sent();
    if until_quiet {
        loop {
            assert!(quiet_rounds < 4 * bound, "{nodes} routers: never quiet");
            clock.advance(interval);
            pool.run_until_stalled();
            quiet_rounds += 1;
            let now = sent();
            if now == last {
                // This round sent nothing: the last one that did is the end.
                quiet_rounds -= 1;
                break;
            }
            last = now;
        }
    }
    let quiet_mux_bytes = routers
        .iter()
        .flat_map(|n| n.snapshot().links)
        .map(|l| l.mux.bytes_out)
        .sum();
    Convergence {
        links: links.len(),
        diameter,
        rounds,
        control_bytes,
        quiet_rounds,
        quiet_control_messages: last.0,
        quiet_control_bytes: last.1,
        quiet_mux_bytes,
        wall: start.elapsed(),
    }
}

fn converge_group(c: &mut Criterion) {
    let mut group = c.benchmark_group("node_converge");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    for &nodes in timed_meshes() {
        group.bench_function(BenchmarkId::new("mesh", format!("{nodes}_routers")), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let start = Instant::now();
                        converge(nodes, false);
                        start.elapsed()
                    })
                    .sum()
            })
        });
    }
    group.finish();
}

/// What [`cpu_per_byte`] measured: bytes one way, wall time, the CPU
/// times of this process and of each server process (`tcp2p`), and the
/// context switches of this process.
struct Cost {
    bytes: u64,
    wall: Duration,
    this: CpuTimes,
    servers: Vec<(String, CpuTimes)>,
    switches: u64,
}

impl Cost {
    /// CPU time of every process.
    fn cpu(&self) -> Duration {
        let all = std::iter::once(&self.this).chain(self.servers.iter().map(|(_, t)| t));
        all.map(|t| t.user + t.system).sum()
    }
}

/// Runs one-stream echoes over `chain` for at least `span`.
fn cpu_per_byte(rt: &Runtime, chain: &Arc<Chain>, span: Duration) -> Option<Cost> {
    let total = 16 * MIB;
    // One untimed round so that buffers and pages are in place.
    timed(
        rt,
        chain,
        1,
        move |c| async move { bulk(&c, 1, total).await },
    );
    let servers = |chain: &Chain| -> Option<Vec<CpuTimes>> {
        chain
            .servers
            .iter()
            .map(|s| cpu_times(&s.pid().to_string()))
            .collect()
    };
    let this_start = cpu_times("self")?;
    let servers_start = servers(chain)?;
    let switches_start = context_switches()?;
    let start = Instant::now();
    let mut bytes = 0;
    while start.elapsed() < span {
        timed(
            rt,
            chain,
            1,
            move |c| async move { bulk(&c, 1, total).await },
        );
        bytes += total as u64;
    }
    let wall = start.elapsed();
    let servers_end = servers(chain)?;
    Some(Cost {
        bytes,
        wall,
        this: cpu_times("self")?.since(this_start),
        servers: chain
            .servers
            .iter()
            .zip(servers_end.into_iter().zip(servers_start))
            .map(|(s, (end, start))| (s.name().to_owned(), end.since(start)))
            .collect(),
        switches: context_switches()?.saturating_sub(switches_start),
    })
}

/// Prints the CPU cost per byte of each path, then rounds and control
/// bytes of the 50- and 200-router meshes.
fn report(_: &mut Criterion) {
    if !report_enabled() {
        return;
    }
    let rt = runtime();
    let span = Duration::from_millis(if full() { 3000 } else { 500 });
    println!(
        "\nnode report: one stream echoed in 64 KiB writes for {span:?} per path; \
         CPU = user + system time of every process (both ends, routers, echo; in tcp2p \
         also per process: a = this one, and sys = the system share), \
         context switches of this process's threads"
    );
    for medium in [Medium::Memory, Medium::Tcp, Medium::Process] {
        let (mut raw, mut direct) = (None, None);
        for (path, chain) in chains(&rt, medium) {
            let Some(cost) = cpu_per_byte(&rt, &chain, span) else {
                println!("  (no /proc/<pid>/stat: CPU time not measured)");
                return;
            };
            let Cost {
                bytes,
                wall,
                switches,
                ..
            } = cost;
            let per_byte = |d: Duration| d.as_secs_f64() * 1e9 / bytes as f64;
            let ns_per_byte = per_byte(cost.cpu());
            match path {
                Path::Raw => raw = Some(ns_per_byte),
                Path::Routers(0) => direct = Some(ns_per_byte),
                _ => {}
            }
            let ratio = match (path, raw, direct) {
                (Path::Relay(_), Some(r), _) => format!(", {:.2} x raw", ns_per_byte / r),
                (Path::Routers(n), _, Some(d)) if n > 0 => {
                    format!(", {:.2} x direct", ns_per_byte / d)
                }
                _ => String::new(),
            };
            let processes = if cost.servers.is_empty() {
                String::new()
            } else {
                let one = |name: &str, t: &CpuTimes| {
                    format!(
                        "{name} {:.2} (sys {:.2})",
                        per_byte(t.user + t.system),
                        per_byte(t.system)
                    )
                };
                let mut parts = vec![one("a", &cost.this)];
                parts.extend(cost.servers.iter().map(|(name, t)| one(name, t)));
                format!(" [{}]", parts.join(", "))
            };
            let frames = |n: &Node| {
                n.snapshot().links.iter().fold((0, 0), |(b, f), l| {
                    (b + l.mux.bytes_out, f + l.mux.frames_out)
                })
            };
            let framing = match (&chain.opener, chain.routers.first()) {
                (Opener::Node(a), router) => {
                    let (ab, af) = frames(a);
                    let mut s = format!("; mean frame out of a {} B", ab / af.max(1));
                    if let Some(r) = router {
                        let (rb, rf) = frames(r);
                        s += &format!(", of r1 {} B", rb / rf.max(1));
                    }
                    s
                }
                _ => String::new(),
            };
            println!(
                "  {:<6} {:<9}: {:7.1} MB/s wall, {:4.2} CPUs busy, {:5.2} ns CPU per byte{ratio}\
                 {processes}, {:5.1} context switches per MB{framing}",
                medium.name(),
                path.name(),
                bytes as f64 / wall.as_secs_f64() / 1e6,
                cost.cpu().as_secs_f64() / wall.as_secs_f64(),
                ns_per_byte,
                switches as f64 / (bytes as f64 / 1e6),
            );
        }
    }
    drop(rt);
    println!(
        "\nnode report: convergence of random router meshes (advertise interval {:?})",
        RoutingConfig::default().advertise_interval
    );
    for nodes in [50, 200] {
        let r = converge(nodes, true);
        println!(
            "  {nodes:>3} routers, {} links, diameter {}: all reach all after {} rounds \
             ({} NodeState bytes); quiet after {} rounds: {} NodeState messages, {} bytes \
             ({} per node), mux bytes out {}; wall {:.2} s",
            r.links,
            r.diameter,
            r.rounds,
            r.control_bytes,
            r.quiet_rounds,
            r.quiet_control_messages,
            r.quiet_control_bytes,
            r.quiet_control_bytes / nodes as u64,
            r.quiet_mux_bytes,
            r.wall.as_secs_f64(),
        );
    }
}

criterion_group! {
    name = benches;
    config = criterion();
    targets = stream_groups, converge_group, report
}
fn main() {
    // A `tcp2p` server process runs here and never returns.
    serve_if_asked(serve);
    benches();
    Criterion::default().configure_from_args().final_summary();
}
