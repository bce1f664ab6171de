//! A small in-process network: nodes on one single-threaded executor,
//! linked by `circuit_stream::duplex_pair`, time moved by a `ManualClock`.
//! Everything is deterministic: tests wait on events or on the executor
//! having nothing left to do, never on sleeps.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use circuit_frame::{Name, Quality};
use circuit_mux::Role as MuxRole;
use circuit_node::routing::{RouteEvent, RoutingConfig};
use circuit_node::timer::ManualClock;
use circuit_node::{IncomingStream, IncomingStreams, Node, NodeConfig, NodeError, PeerEvents};
use futures::executor::{LocalPool, LocalSpawner};
use futures::future::RemoteHandle;
use futures::task::LocalSpawnExt;
use futures::{Future, StreamExt};

pub const INTERVAL: Duration = Duration::from_millis(100);

pub fn name(s: &str) -> Name {
    Name::new(s).expect("short name")
}

pub fn q(v: u8) -> Quality {
    Quality::new(v).expect("valid quality")
}

/// A node with its event streams.
pub struct TestNode {
    pub node: Node,
    pub peers: PeerEvents,
    pub incoming: IncomingStreams,
}

impl TestNode {
    pub fn id(&self) -> &str {
        self.node.id().as_str()
    }

    /// Every peer event pending now.
    pub fn drain_peer_events(&mut self) -> Vec<RouteEvent> {
        let mut out = Vec::new();
        while let Some(Some(e)) = self.peers.next().now_or_never_opt() {
            out.push(e);
        }
        out
    }

    /// The next incoming stream if one is waiting now.
    pub fn try_incoming(&mut self) -> Option<IncomingStream> {
        self.incoming.next().now_or_never_opt().flatten()
    }
}

/// `now_or_never` for a `Next` future.
pub trait NowOrNever: Future + Sized {
    fn now_or_never_opt(self) -> Option<Self::Output> {
        futures::FutureExt::now_or_never(self)
    }
}
impl<F: Future> NowOrNever for F {}

/// A link's two futures, running on the pool; dropping them cuts the link.
pub struct LinkHandles {
    pub a: Option<RemoteHandle<Result<(), NodeError>>>,
    pub b: Option<RemoteHandle<Result<(), NodeError>>>,
}

impl LinkHandles {
    /// Cuts the link by dropping both ends' futures.
    pub fn cut(&mut self) {
        self.a = None;
        self.b = None;
    }
}

pub struct Net {
    pub pool: LocalPool,
    pub spawner: LocalSpawner,
    pub clock: ManualClock,
    pub routing: RoutingConfig,
    pub mux: circuit_mux::Config,
    pub pipe_capacity: usize,
}

impl Net {
    pub fn new() -> Self {
        let pool = LocalPool::new();
        let spawner = pool.spawner();
        Net {
            pool,
            spawner,
            clock: ManualClock::new(),
            routing: RoutingConfig::default(),
            mux: circuit_mux::Config::default(),
            pipe_capacity: 256 * 1024,
        }
    }

    /// A node set up by `config`, with the net's routing and mux settings.
    pub fn make(&self, id: &str, config: NodeConfig) -> TestNode {
        let config = config.routing(self.routing.clone()).mux(self.mux.clone());
        let (node, peers, incoming) = Node::new(id, "test", config).expect("valid names");
        TestNode {
            node,
            peers,
            incoming,
        }
    }

    pub fn leaf(&self, id: &str) -> TestNode {
        self.make(id, NodeConfig::leaf())
    }

    pub fn router(&self, id: &str) -> TestNode {
        self.make(id, NodeConfig::router(Arc::new(self.clock.clone())))
    }

    pub fn spawn<T: 'static>(&self, fut: impl Future<Output = T> + 'static) -> RemoteHandle<T> {
        self.spawner
            .spawn_local_with_handle(fut)
            .expect("pool is running")
    }

    /// Links `a` (client) and `b` (server) over an in-process pipe pair.
    pub fn link(&self, a: &Node, b: &Node, quality: Quality) -> LinkHandles {
        let (a_io, b_io) = circuit_stream::duplex_pair(self.pipe_capacity);
        LinkHandles {
            a: Some(self.spawn(a.link_io(a_io, MuxRole::Client, quality))),
            b: Some(self.spawn(b.link_io(b_io, MuxRole::Server, quality))),
        }
    }

    /// Runs every task until none can make progress.
    pub fn settle(&mut self) {
        self.pool.run_until_stalled();
    }

    /// One advertise interval passes, then everything settles.
    pub fn tick(&mut self) {
        self.clock.advance(INTERVAL);
        self.settle();
    }

    /// Runs `fut` to completion, with every spawned task.
    pub fn run<T>(&mut self, fut: impl Future<Output = T>) -> T {
        self.pool.run_until(fut)
    }
}
