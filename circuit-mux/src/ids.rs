//! Stream ids: parity by role, allocation, and a compact set of closed ids.

use std::collections::BTreeMap;

/// Which end of the link this mux is.
///
/// The end that accepted the link is the server and opens odd ids 1, 3, 5,
/// ...; the end that dialled is the client and opens even ids 0, 2, 4, ...
/// (PROTOCOL.md section 1; the seed's doc comment says the opposite, its code
/// and every deployed peer do this).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The end that dialled: opens even ids.
    Client,
    /// The end that accepted: opens odd ids.
    Server,
}

impl Role {
    /// The first id this role opens.
    pub fn first_id(self) -> u32 {
        match self {
            Role::Client => 0,
            Role::Server => 1,
        }
    }

    /// Whether `id` has the parity of streams this role opens.
    pub fn opens(self, id: u32) -> bool {
        id & 1 == self.first_id()
    }

    /// The other end's role.
    pub fn peer(self) -> Role {
        match self {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        }
    }
}

/// A set of ids of one parity, stored as ranges of `id >> 1`.
///
/// Streams close in roughly the order they opened, so the set stays a
/// handful of ranges. A peer that skips ids could fragment it; past
/// `max_ranges` the lowest gap is filled in, so the memory stays bounded at
/// the cost of treating a very old never-used id as closed.
#[derive(Debug, Clone)]
pub(crate) struct IdSet {
    /// start -> end (inclusive), both as `id >> 1`.
    ranges: BTreeMap<u32, u32>,
    max_ranges: usize,
}

impl IdSet {
    pub(crate) fn new(max_ranges: usize) -> Self {
        IdSet {
            ranges: BTreeMap::new(),
            max_ranges: max_ranges.max(1),
        }
    }

    pub(crate) fn contains(&self, id: u32) -> bool {
        let k = id >> 1;
        self.ranges
            .range(..=k)
            .next_back()
            .is_some_and(|(_, &end)| end >= k)
    }

    pub(crate) fn insert(&mut self, id: u32) {
        let k = id >> 1;
        if self.contains(id) {
            return;
        }
        let below = self
            .ranges
            .range(..k)
            .next_back()
            .map(|(&s, &e)| (s, e))
            .filter(|&(_, e)| e.checked_add(1) == Some(k));
        let above = k
            .checked_add(1)
            .and_then(|n| self.ranges.get(&n).map(|&e| (n, e)));
        match (below, above) {
            (Some((s, _)), Some((n, e))) => {
                self.ranges.remove(&n);
                self.ranges.insert(s, e);
            }
            (Some((s, _)), None) => {
                self.ranges.insert(s, k);
            }
            (None, Some((n, e))) => {
                self.ranges.remove(&n);
                self.ranges.insert(k, e);
            }
            (None, None) => {
                self.ranges.insert(k, k);
            }
        }
        while self.ranges.len() > self.max_ranges {
            self.fill_lowest_gap();
        }
    }

    fn fill_lowest_gap(&mut self) {
        let mut it = self.ranges.iter();
        let (Some((&s0, _)), Some((&s1, &e1))) = (it.next(), it.next()) else {
            return;
        };
        self.ranges.remove(&s1);
        self.ranges.insert(s0, e1);
    }

    /// Number of ranges held (for tests and counters).
    pub(crate) fn ranges(&self) -> usize {
        self.ranges.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parity_follows_the_code_not_the_seed_doc_comment() {
        assert_eq!(Role::Client.first_id(), 0);
        assert_eq!(Role::Server.first_id(), 1);
        assert!(Role::Client.opens(4));
        assert!(Role::Server.opens(7));
        assert!(!Role::Server.opens(2));
    }

    #[test]
    fn sequential_closes_compact_into_one_range() {
        let mut set = IdSet::new(16);
        for id in (1..20_001).step_by(2) {
            set.insert(id);
        }
        assert_eq!(set.ranges(), 1);
        assert!(set.contains(1) && set.contains(19_999));
        assert!(!set.contains(20_001));
    }

    #[test]
    fn out_of_order_closes_merge_when_gaps_fill() {
        let mut set = IdSet::new(16);
        for id in [8, 0, 4, 2, 6] {
            set.insert(id);
        }
        assert_eq!(set.ranges(), 1);
        for id in [0, 2, 4, 6, 8] {
            assert!(set.contains(id));
        }
        assert!(!set.contains(10));
    }

    #[test]
    fn fragmenting_peer_cannot_grow_the_set_past_its_bound() {
        let mut set = IdSet::new(8);
        for id in (0..100_000u32).step_by(4) {
            set.insert(id);
        }
        assert!(set.ranges() <= 8);
        assert!(set.contains(99_996));
        assert!(!set.contains(99_998));
    }

    #[test]
    fn extreme_ids_do_not_overflow() {
        let mut set = IdSet::new(4);
        set.insert(u32::MAX);
        set.insert(u32::MAX - 1);
        set.insert(0);
        assert!(set.contains(u32::MAX));
        assert!(set.contains(0));
    }
}
