//! Counters a user can read without a debugger: control traffic per link
//! and for the whole core, and the errors the core absorbed.

/// Control-stream traffic on one link, counted in `NodeState` messages and
/// their encoded bytes (mux framing and `Identify` not included).
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkCounters {
    /// `NodeState` messages handed out for this link by
    /// [`poll_advertisements`](super::RouteCore::poll_advertisements).
    pub messages_sent: u64,
    /// Their encoded size in bytes.
    pub bytes_sent: u64,
    /// `NodeState` messages received on this link.
    pub messages_received: u64,
    /// Their encoded size in bytes.
    pub bytes_received: u64,
}

/// Counts `len` bytes into a pair of counters without overflow.
pub(crate) fn count(messages: &mut u64, bytes: &mut u64, len: usize) {
    *messages = messages.saturating_add(1);
    *bytes = bytes.saturating_add(u64::try_from(len).unwrap_or(u64::MAX));
}

/// Totals for a whole [`RouteCore`](super::RouteCore), including links that
/// have gone down.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RouterCounters {
    /// Control traffic summed over every link the core has had.
    pub control: LinkCounters,
    /// Routes to new nodes ignored because the peer table was full.
    pub peer_table_full: u64,
    /// Calls naming a link that was not up.
    pub unknown_link: u64,
    /// Events dropped because the application did not drain them and the
    /// queue reached its bound.
    pub events_dropped: u64,
    /// Times a node became reachable.
    pub peers_reachable: u64,
    /// Times a node became unreachable.
    pub peers_unreachable: u64,
}
