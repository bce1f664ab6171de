//! Tests of the routing core: one per rule, then whole networks simulated
//! round by round (no runtime, no sleeps).

mod rules;
mod support;
