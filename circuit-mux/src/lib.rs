//! Many independent byte streams multiplexed over one link.
//!
//! **Not implemented yet.** This crate will hold the circuit multiplexer of
//! PROTOCOL.md section 1: a sans-IO core that turns link bytes into stream
//! events and stream data into frames, under a thin async driver generic over
//! any futures-io `AsyncRead + AsyncWrite`. It will keep the stream-id parity
//! rules, half-close with epitaphs, round-robin fairness and bounded receive
//! buffers. Until then the crate exports nothing.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
