//! Links as the routing core sees them: an id, a quality, what the
//! neighbour was last told, and counters.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use circuit_frame::{Name, Quality};

use super::counters::LinkCounters;

/// Identifies one link of a node. Chosen by the caller (the async layer
/// numbers its links); only equality and order matter. Ties between routes
/// of equal quality go to the lowest `LinkId`.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkId(pub u64);

impl fmt::Display for LinkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "link#{}", self.0)
    }
}

/// One link in the routing core.
#[derive(Debug)]
pub(crate) struct Link {
    /// The link's own cost, added to every quality received on it.
    pub(crate) quality: Quality,
    /// When the link came up: its first message is due then.
    pub(crate) up_at: Duration,
    /// Whether `Online(self, SELF)` (and for a router the first dump) has
    /// been handed out for this link.
    pub(crate) greeted: bool,
    /// What the neighbour was last told: the nodes it was told are online,
    /// with the quality it was told. A node absent here was never told or
    /// was last told `Offline`, which mean the same to the receiver.
    pub(crate) told: BTreeMap<Name, Quality>,
    /// Traffic on this link.
    pub(crate) counters: LinkCounters,
}

impl Link {
    pub(crate) fn new(quality: Quality, now: Duration) -> Self {
        Link {
            quality,
            up_at: now,
            greeted: false,
            told: BTreeMap::new(),
            counters: LinkCounters::default(),
        }
    }
}
