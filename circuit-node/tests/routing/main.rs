//! Tests of the routing core: one per rule, then whole networks simulated
//! round by round (no runtime, no sleeps).

mod diamond;
mod mesh;
mod ring;
mod rules;
mod sim;
mod support;
mod v0;
