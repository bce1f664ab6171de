//! What the circuit benchmarks in `benches/` share: sizes and criterion
//! settings, the tokio runtime, loopback TCP set-up, the
//! echo server (in process and in a process of its own), the links of the
//! mux bench (circuit, yamux, raw), plain byte
//! relays (the ceiling of a router hop), and the byte pattern that streams carry and check.
//!
//! Each bench file keeps what only it measures; this library holds the
//! pieces that would otherwise be written twice, so that every bench
//! sets up and checks its workloads the same way.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod config;
pub mod echo;
pub mod mux;
pub mod process;
pub mod relay;
pub mod runtime;
pub mod tcp;
