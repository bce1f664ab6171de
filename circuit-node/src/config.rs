//! How a [`Node`](crate::Node) is set up: its role, its clock, its limits.

use std::fmt;
use std::future::pending;
use std::sync::Arc;
use std::time::Duration;

use crate::routing::{Role, RoutingConfig};
use crate::timer::{Sleep, Timer};

/// The configuration of a [`Node`](crate::Node). Start from
/// [`NodeConfig::leaf`] or [`NodeConfig::router`] and change what you need:
///
/// ```
/// use std::sync::Arc;
/// use circuit_node::{timer::ManualClock, NodeConfig};
///
/// let clock = ManualClock::new();
/// let config = NodeConfig::router(Arc::new(clock)).incoming_queue(16);
/// assert_eq!(config.get_incoming_queue(), 16);
/// ```
#[derive(Clone)]
pub struct NodeConfig {
    pub(crate) role: Role,
    pub(crate) timer: Arc<dyn Timer>,
    pub(crate) routing: RoutingConfig,
    pub(crate) mux: circuit_mux::Config,
    pub(crate) incoming_queue: usize,
    pub(crate) forward_report_queue: usize,
}

impl NodeConfig {
    /// A leaf: it sends its own `Online` on each link and forwards nothing.
    /// A leaf needs no clock (its routing core has no deadline); give it one
    /// with [`timer`](Self::timer) if you want its counters timed.
    pub fn leaf() -> Self {
        NodeConfig {
            role: Role::Leaf,
            timer: Arc::new(NoClock),
            routing: RoutingConfig::default(),
            mux: circuit_mux::Config::default(),
            incoming_queue: 64,
            forward_report_queue: 1024,
        }
    }

    /// A router: advertises routes (rate-limited by `timer`) and forwards
    /// streams between its links.
    pub fn router(timer: Arc<dyn Timer>) -> Self {
        NodeConfig {
            role: Role::Router,
            timer,
            ..NodeConfig::leaf()
        }
    }

    /// The clock the node reads and sleeps on.
    pub fn timer(mut self, timer: Arc<dyn Timer>) -> Self {
        self.timer = timer;
        self
    }

    /// The routing core's tunables (advertise interval, hold-down, peer
    /// table bound).
    pub fn routing(mut self, routing: RoutingConfig) -> Self {
        self.routing = routing;
        self
    }

    /// The mux configuration used by [`Node::link_io`](crate::Node::link_io)
    /// (buffers, limits). Links made from a ready mux keep their own.
    pub fn mux(mut self, mux: circuit_mux::Config) -> Self {
        self.mux = mux;
        self
    }

    /// How many incoming streams wait for the application before the links
    /// that deliver more wait (per stream, never the whole link). Default 64,
    /// at least 1.
    pub fn incoming_queue(mut self, streams: usize) -> Self {
        self.incoming_queue = streams.max(1);
        self
    }

    /// How many [`ForwardEnd`](crate::ForwardEnd) reports wait unread in a
    /// [`Node::forward_reports`](crate::Node::forward_reports) subscription
    /// before new ones are dropped (and counted). Default 1,024, at least 1.
    pub fn forward_report_queue(mut self, reports: usize) -> Self {
        self.forward_report_queue = reports.max(1);
        self
    }

    /// The bound set by [`forward_report_queue`](Self::forward_report_queue).
    pub fn get_forward_report_queue(&self) -> usize {
        self.forward_report_queue
    }

    /// The node's role.
    pub fn get_role(&self) -> Role {
        self.role
    }

    /// The bound set by [`incoming_queue`](Self::incoming_queue).
    pub fn get_incoming_queue(&self) -> usize {
        self.incoming_queue
    }

    /// The routing tunables.
    pub fn get_routing(&self) -> &RoutingConfig {
        &self.routing
    }
}

impl fmt::Debug for NodeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeConfig")
            .field("role", &self.role)
            .field("routing", &self.routing)
            .field("mux", &self.mux)
            .field("incoming_queue", &self.incoming_queue)
            .field("forward_report_queue", &self.forward_report_queue)
            .finish_non_exhaustive()
    }
}

/// The clock of a leaf given none: time stands at zero. A leaf's routing
/// core only ever has deadlines at the time a link came up, which are due
/// at once, so nothing ever sleeps on it.
struct NoClock;

impl Timer for NoClock {
    fn now(&self) -> Duration {
        Duration::ZERO
    }

    fn sleep_until(&self, deadline: Duration) -> Sleep {
        if deadline.is_zero() {
            Box::pin(std::future::ready(()))
        } else {
            Box::pin(pending())
        }
    }
}
