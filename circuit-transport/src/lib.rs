//! What every circuit transport shares, with no async runtime: addresses,
//! link options, the reconnect policy, graceful shutdown and the error
//! type. The runtime crates (`circuit-transport-tokio`,
//! `circuit-transport-smol`) add sockets, accept loops, timers and
//! spawning, and re-export everything here; most users want one of them.
//!
//! Each link runs with [`run_link`] (or a dialled one with
//! [`run_dialled`]), on the runtime's clock: the node's
//! [`Timer`](circuit_node::timer::Timer). Here two nodes are linked in
//! process and shut down as one group, with no runtime at all, on a manual
//! clock (the links drain, so no time needs to pass):
//!
//! ```
//! use std::time::Duration;
//! use circuit_frame::Quality;
//! use circuit_mux::Role;
//! use circuit_node::{timer::ManualClock, Node, NodeConfig};
//! use circuit_transport::{run_link, Shutdown};
//! use futures::StreamExt;
//!
//! futures::executor::block_on(async {
//!     let (a, mut a_peers, _) = Node::new("a", "demo", NodeConfig::leaf()).unwrap();
//!     let (b, _, _) = Node::new("b", "demo", NodeConfig::leaf()).unwrap();
//!     let (a_io, b_io) = circuit_stream::duplex_pair(64 * 1024);
//!     let group = Shutdown::new();
//!     let (mut a_guard, mut b_guard) = (group.guard(), group.guard());
//!     let clock = ManualClock::new();
//!
//!     let links = async {
//!         let quality = Quality::IN_PROCESS;
//!         let _ = futures::join!(
//!             run_link(a.clone(), a_io, Role::Client, quality, &mut a_guard, &clock),
//!             run_link(b.clone(), b_io, Role::Server, quality, &mut b_guard, &clock),
//!         );
//!         drop((a_guard, b_guard));
//!     };
//!     let stop = async {
//!         a_peers.next().await; // b is reachable: the link is up
//!         group.shutdown(Duration::from_secs(10)).await
//!     };
//!     let ((), report) = futures::join!(links, stop);
//!     // No stream was open: the links drained at once, none was cut.
//!     assert_eq!((report.drained + report.ended, report.cut), (2, 0));
//! });
//! ```
//!
//! # What is here
//!
//! - [`Address`] (`host:port`, `unix:PATH`, `exec:CMD` or
//!   `serial:PATH?baud=N`) and [`ToAddress`].
//! - [`LinkOptions`]: a link's quality, its [`ReconnectPolicy`] (exponential
//!   backoff with [`Jitter`], drawn by a [`Backoff`]; a first dial retried
//!   too on request), its [`Shutdown`] group, and its bounds: each dial
//!   within a connect timeout, each handshake within a handshake timeout
//!   (both [`DEFAULT_TIMEOUT`] unless set), at most
//!   [`DEFAULT_MAX_HANDSHAKES`] accepted links in their handshake at once
//!   (more are closed as soon as accepted, and counted), TCP keep-alive
//!   ([`TcpKeepalive`], on by default) on every TCP socket.
//! - [`Shutdown`] and [`ShutdownReport`]: graceful shutdown of a group of
//!   listeners and links. Listeners stop accepting; each link runs until
//!   every stream on it has closed both ways, or until the deadline, when
//!   every stream still open gets a close frame with the epitaph
//!   "node N is shutting down"; then the transport is closed and read to
//!   the peer's end (no TCP reset).
//! - [`run_link`] / [`run_link_within`] (a bounded handshake) and
//!   [`run_dialled`]: a link's life under a group, on the
//!   node's [`LinkControl`](circuit_node::LinkControl), which counts the
//!   link's streams (its control stream aside), says when they have
//!   drained, and closes them with an epitaph through the mux.
//! - [`TransportError`]: a bad address, a port in use, a failed dial, a
//!   link that failed, a task that failed.
//! - [`runtime`]: the one seam a runtime crate implements,
//!   [`Runtime`](runtime::Runtime): its clock (the node's
//!   [`Timer`](circuit_node::timer::Timer)), its spawn, its sockets.
//! - [`net`]: listening, dialling and redialling over TCP and Unix sockets
//!   for any runtime: [`Listener`](net::Listener),
//!   [`LinkHandle`](net::LinkHandle), [`listen_with`](net::listen_with),
//!   [`connect_with`](net::connect_with), [`spawn_link`](net::spawn_link).
//! - [`socket`]: small pieces every runtime's sockets share.
//! - [`process`]: links over a command's stdin and stdout (`exec:CMD`):
//!   the [`ChildProcess`](process::ChildProcess) a runtime starts, and
//!   the [`ChildIo`](process::ChildIo) a link rides on.
//! - `device` (with the `serial` feature): `BlockingIo`, a link's byte
//!   stream over a blocking reader and writer; serial links
//!   (`serial:PATH?baud=N`) ride on it.
//!
//! Each link's life is logged at `INFO` on the target [`LINK_EVENTS`]
//! (`circuit_transport::links`): up (with the peer), down, and each
//! redial with its wait, one line each.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod address;
#[cfg(feature = "serial")]
pub mod device;
mod drive;
mod error;
pub mod net;
mod options;
pub mod process;
mod reconnect;
pub mod runtime;
mod serial;
mod shutdown;
pub mod socket;
#[cfg(feature = "test-support")]
pub mod test_support;

pub use address::{Address, ToAddress, DEFAULT_BAUD};
pub use drive::{run_dialled, run_link, run_link_within, Dialling, CLOSE_LIMIT, LINK_EVENTS};
pub use error::TransportError;
pub use options::{LinkOptions, TcpKeepalive, DEFAULT_MAX_HANDSHAKES, DEFAULT_TIMEOUT};
pub use reconnect::{Backoff, Jitter, ReconnectPolicy};
pub use shutdown::{Guard, Shutdown, ShutdownReport};
