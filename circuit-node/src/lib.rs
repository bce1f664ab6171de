//! Circuit nodes: links, routing and forwarding across a mesh.
//!
//! **Not implemented yet.** This crate will hold the node layer of
//! PROTOCOL.md sections 2 and 3: the link handshake and control stream,
//! route advertisement with loop prevention, routed streams with their
//! header, forwarding through routers and the optional connection layer.
//! The runtime is reached only through a small injected timer seam. Until
//! then the crate exports nothing.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
