//! Circuit nodes: links, routing and forwarding across a mesh (PROTOCOL.md
//! sections 2 and 3).
//!
//! ```
//! use std::pin::pin;
//! use circuit_frame::Quality;
//! use circuit_mux::Role;
//! use circuit_node::{routing::RouteEvent, Node, NodeConfig};
//! use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
//!
//! futures::executor::block_on(async {
//!     let (a, mut a_peers, _) = Node::new("a", "demo", NodeConfig::leaf())?;
//!     let (b, _, mut b_incoming) = Node::new("b", "demo", NodeConfig::leaf())?;
//!
//!     // Link them over an in-process byte stream (a TCP socket works the same).
//!     let (a_io, b_io) = circuit_stream::duplex_pair(64 * 1024);
//!     let links = futures::future::join(
//!         a.link_io(a_io, Role::Client, Quality::IN_PROCESS),
//!         b.link_io(b_io, Role::Server, Quality::IN_PROCESS),
//!     );
//!     let talk = async {
//!         let b_id = circuit_frame::Name::new("b")?;
//!         assert_eq!(a_peers.next().await, Some(RouteEvent::PeerReachable(b_id)));
//!         let mut stream = a.connect_to_peer("b").await?;
//!         stream.write_all(b"hello").await?;
//!
//!         let mut incoming = b_incoming.next().await.ok_or("no stream")?;
//!         assert_eq!(incoming.source, "a");
//!         let mut buf = [0; 5];
//!         incoming.stream.read_exact(&mut buf).await?;
//!         assert_eq!(&buf, b"hello");
//!         Ok::<(), Box<dyn std::error::Error>>(())
//!     };
//!     // The link futures run the links; here they run until the talk ends.
//!     let result = match futures::future::select(pin!(talk), pin!(links)).await {
//!         futures::future::Either::Left((result, _)) => result,
//!         futures::future::Either::Right(_) => Err("a link ended".into()),
//!     };
//!     result
//! })
//! .unwrap();
//! ```
//!
//! # What is here
//!
//! - [`Node`]: an id and a protocol; [`Node::new`] returns it with its
//!   [`PeerEvents`] (peers becoming reachable and unreachable) and its
//!   [`IncomingStreams`] (routed streams for it, with their source).
//!   [`Node::connect_to_peer`] opens a routed stream to any reachable node
//!   (to itself without a link). [`Node::wait_reachable`] waits, on the
//!   node's timer, until a peer is reachable.
//! - Links ([`Node::link`] over a ready mux, [`Node::link_io`] over any
//!   futures-io byte stream), in either role: the handshake of PROTOCOL 2.1
//!   (a version or protocol mismatch closes the link at once and is
//!   returned as [`NodeError::VersionMismatch`] / [`NodeError::ProtocolMismatch`]),
//!   the control stream, forwarding (2.4: the destination is peeked, a
//!   forwarded stream is spliced onto the next link with
//!   `circuit_mux::Mux::attach`, so bytes and epitaphs pass untouched; no
//!   route refuses that stream only). Each link is one future that drives
//!   everything of that link, including the node's route advertisement
//!   timer; nothing is spawned. [`Node::link_io_with_control`] also gives
//!   a [`LinkControl`]: the link's open streams, a wait for them to drain,
//!   closing them or the link with an epitaph (a transport's graceful
//!   shutdown).
//! - Routers ([`NodeConfig::router`], with an injected [`timer::Timer`]):
//!   route updates as per-neighbour diffs, rate-limited, with the loop
//!   prevention of [`routing::RouteCore`]. No polling loop: a link future
//!   wakes on a change or sleeps until the core's next deadline.
//! - [`connection`]: the connection layer of PROTOCOL 2.5
//!   ([`connection::ConnectionNode`], [`connection::Connection`]).
//! - Introspection: [`Node::snapshot`] ([`NodeSnapshot`]: routes with next
//!   hop and quality, and per link the peer, quality and mux counters).
//! - Forward reports ([`Node::forward_reports`], [`ForwardEnd`]): which hop
//!   closed a stream. A v0 router rewrites the epitaph at every hop ("a
//!   reported: bye"); this one passes it on unchanged (PROTOCOL 2.4) and
//!   reports beside it, as a typed value, each close it passes on: from
//!   which neighbour ([`ClosedBy::Neighbour`]) or why it closed the stream
//!   itself ([`ClosedBy::ThisNode`]: no route, a malformed header, its link
//!   ended or its streams were cut), with the epitaph, the destination and
//!   source, and the stream's id on both links. Following the reports hop
//!   by hop finds the node that closed a stream. Opt-in and bounded (the
//!   overflow is counted in the snapshot); the same reports are `DEBUG`
//!   events of `tracing`. With neither, forwarding watches nothing.
//! - A stream its far end closed cleanly reads as end of file, also when it
//!   comes through v0 routers, whose epitaph for a clean close is
//!   `{name} reported: ... {name} reported no epitaph` (PROTOCOL 2.4,
//!   [`circuit_frame::is_v0_clean_close`]); the text stays in the reader's
//!   `closed_reason`, and a router passes it on unchanged.
//! - [`routing`]: the sans-IO routing core; [`timer`]: the runtime seam and
//!   [`timer::ManualClock`] for deterministic tests.
//!
//! # Security
//!
//! Names are not authenticated (PROTOCOL 3): a neighbour can claim to reach
//! any node, and the source name in a routed stream header is whatever the
//! opener wrote. A node linked to an untrusted peer must treat that peer as
//! able to impersonate any node and to attract its traffic.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod config;
pub mod connection;
mod error;
mod events;
mod forward;
mod link;
mod node;
mod reach;
mod report;
pub mod routing;
mod snapshot;
mod state;
mod sync;
pub mod timer;

pub use config::NodeConfig;
pub use error::NodeError;
pub use events::{IncomingStream, IncomingStreams};
pub use link::LinkControl;
pub use node::{Node, PeerEvents};
pub use report::{ClosedBy, ForwardEnd, ForwardReports, Hop, LocalReason, Toward};
pub use snapshot::{LinkInfo, NodeSnapshot};
