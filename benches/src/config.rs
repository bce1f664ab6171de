//! Sizes, environment switches and criterion settings.

use std::time::Duration;

use criterion::Criterion;

/// One mebibyte.
pub const MIB: usize = 1 << 20;
/// Size of every application write and read in the echo workloads.
pub const CHUNK: usize = 64 << 10;
/// Capacity of each direction of an in-memory link.
pub const PIPE: usize = MIB;

/// Whether `CIRCUIT_BENCH_FULL` asks for the full sizes (set and not `0`).
pub fn full() -> bool {
    std::env::var("CIRCUIT_BENCH_FULL").is_ok_and(|v| v != "0")
}

/// Whether the report pass runs: unless `CIRCUIT_BENCH_REPORT=0`.
pub fn report_enabled() -> bool {
    !std::env::var("CIRCUIT_BENCH_REPORT").is_ok_and(|v| v == "0")
}

/// The criterion settings of the mux and node benches: no plots, 20 000
/// resamples, 1 s of warm-up and 3 s of measurement (10 s with
/// [`full`]).
pub fn criterion() -> Criterion {
    Criterion::default()
        .without_plots()
        .nresamples(20_000)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(if full() { 10 } else { 3 }))
}

/// What carries the bytes.
#[derive(Clone, Copy, Debug)]
pub enum Medium {
    /// In-process pipes.
    Memory,
    /// Loopback TCP, `TCP_NODELAY` on.
    Tcp,
    /// Loopback TCP to a server in another process (see
    /// [`process`](crate::process)), the baseline set-up in benches/README.md.
    Process,
}

/// Every medium, in the order the benches run them.
pub const MEDIA: [Medium; 2] = [Medium::Memory, Medium::Tcp];

impl Medium {
    /// The name used in group ids and reports.
    pub fn name(self) -> &'static str {
        match self {
            Medium::Memory => "memory",
            Medium::Tcp => "tcp",
            Medium::Process => "tcp2p",
        }
    }
}
