//! Benchmarks of the circuit layers live in `benches/`; this library is
//! empty and exists so the crate can be a workspace member.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
