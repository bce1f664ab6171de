//! Circuit nodes: links, routing and forwarding across a mesh (PROTOCOL.md
//! sections 2 and 3).
//!
//! # What exists now
//!
//! - [`routing`]: the sans-IO routing core, [`routing::RouteCore`]. It owns
//!   one node's links, the routes its neighbours advertise, route choice
//!   with loop prevention (split horizon with poisoned reverse, the
//!   feasibility condition with hold-down, saturation), the route updates to
//!   send to each neighbour and peer events. It does no I/O, reads no clock
//!   and spawns nothing: feed it events and the time, take actions out.
//! - [`timer`]: the injected runtime seam, [`timer::Timer`], and
//!   [`timer::ManualClock`] for deterministic tests.
//! - [`NodeError`]: the crate's one error type.
//!
//! # What is still to come
//!
//! The async node layer over `circuit-mux` is **not written yet**: the link
//! handshake and control stream (`Identify`, reading and writing
//! `NodeState`), routed streams with their header, forwarding through
//! routers, and the connection layer (PROTOCOL 2.1, 2.4, 2.5). It will drive
//! a [`routing::RouteCore`] per node and a [`timer::Timer`] for its deadlines.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use circuit_frame::{Name, NodeState, Quality};
//! use circuit_node::routing::{LinkId, Role, RouteCore, RoutingConfig};
//!
//! let mut leaf = RouteCore::new(Name::new("a")?, Role::Leaf, RoutingConfig::default());
//! leaf.link_up(LinkId(0), Quality::NETWORK, Duration::ZERO)?;
//! // A router r reaches b at quality 20; the link to r costs 20 more.
//! let b = Name::new("b")?;
//! leaf.receive(LinkId(0), NodeState::Online { node: b.clone(), quality: Quality::NETWORK }, Duration::ZERO)?;
//! assert_eq!(leaf.best_route(&b), Some((LinkId(0), Quality::new(40)?)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Security
//!
//! Names are not authenticated (PROTOCOL 3): a neighbour can claim to reach
//! any node, and the source name in a routed stream header is whatever the
//! opener wrote. A node linked to an untrusted peer must treat that peer as
//! able to impersonate any node and to attract its traffic.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
pub mod routing;
pub mod timer;

pub use error::NodeError;
