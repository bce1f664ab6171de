//! Circuit nodes linked over tokio.
//!
//! **Not implemented yet.** This crate will link circuit nodes over tokio's
//! TCP and Unix sockets and any tokio `AsyncRead + AsyncWrite`, provide the
//! node's timer seam from tokio's timers, spawn helpers and graceful
//! shutdown, and adapt circuit streams to tokio's io traits. Until then the
//! crate exports nothing.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
