//! Circuit nodes: links, routing and forwarding across a mesh.
//!
//! **Mostly not implemented yet.** This crate will hold the node layer of
//! PROTOCOL.md sections 2 and 3. What exists now is [`timer`], the injected
//! runtime seam ([`timer::Timer`]) and [`timer::ManualClock`] for
//! deterministic tests.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod timer;
