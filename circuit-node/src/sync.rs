//! The one way this crate takes a lock, and the one place its lock order
//! is written down.
//!
//! # Lock order
//!
//! Every lock of this crate is a `std::sync::Mutex` taken with [`lock`].
//! None is held across an `.await`, nor while polling a link's mux driver
//! (which does the link's I/O). Outermost first; a lock may be taken while
//! holding only those above it on its own line, never the other way:
//!
//! 1. The node's state (`NodeInner`'s `shared`, in `state.rs`: routing
//!    core, links and their outboxes, waiters) →
//!    a link's mux slot (`LinkPort::mux`, in `link/port.rs`; a snapshot
//!    reads each link's counters under the node's state) →
//!    the mux's own lock (in `circuit-mux`, reached through a `Mux` handle)
//!    → the forward-report locks (`Forwarded::outbound` and
//!    `Reports::queue`, in `report.rs`; the stream observers take them
//!    inside the mux's lock, and neither is held while taking the other).
//! 2. A link's mux slot → its last counters (`LinkPort::last_counters`).
//!
//! Leaves, taken while holding nothing of this crate and holding nothing
//! of it themselves:
//!
//! - a link control's state (`ControlShared::state`, in `link/control.rs`);
//! - the connection table and a connection's streams (`connection.rs`);
//! - a [`ManualClock`](crate::timer::ManualClock)'s state: the node reads
//!   and sleeps on its timer outside its own lock.
//!
//! Nothing of this crate takes the node's state while holding another of
//! its locks, and no stream observer takes the node's state or a link's
//! mux slot. Wakers are woken under the node's state (its `pump`); every
//! other lock hands its wakers out and wakes them after letting go.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Takes `m`, ignoring poisoning: every update under this crate's locks
/// leaves the state consistent, so a panic elsewhere does not make it
/// unusable. Mind the [lock order](self#lock-order).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
