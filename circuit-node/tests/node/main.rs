//! Tests of the async node layer: nodes, links, routed streams, routers
//! and connections, in process, driven by events and a manual clock.

mod basics;
mod chain;
mod connection;
mod control;
mod diamond;
mod mesh;
mod reach;
mod reports;
mod ring;
#[cfg(feature = "serde")]
mod serde_snapshot;
mod spans;
mod stuck;
mod support;
mod vectors;
