//! Circuit nodes linked over smol.
//!
//! **Not implemented yet.** This crate will link circuit nodes over smol's
//! TCP and Unix sockets and any futures-io `AsyncRead + AsyncWrite`, provide
//! the node's timer seam from smol's timers, spawn helpers and graceful
//! shutdown. Until then the crate exports nothing.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
