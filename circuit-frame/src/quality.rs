//! `Quality`: the cost of a path, lower is better.

use std::fmt;

use crate::FrameError;

/// The cost of a link or a route: a `u8`, lower is better.
///
/// 255 is reserved for "offline" and is never a quality, so a `Quality` is
/// always in `0..=254`. Path costs add up with [`Quality::combine`], which
/// saturates at [`Quality::WORST`].
///
/// ```
/// use circuit_frame::Quality;
/// assert_eq!(Quality::NETWORK.combine(Quality::NETWORK).get(), 40);
/// assert_eq!(Quality::WORST.combine(Quality::USB), Quality::WORST);
/// assert!(Quality::new(255).is_err());
/// ```
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quality(u8);

impl Quality {
    /// A node's route to itself.
    pub const SELF: Quality = Quality(0);
    /// Two nodes in one process.
    pub const IN_PROCESS: Quality = Quality(1);
    /// A local (Unix or loopback) socket.
    pub const LOCAL_SOCKET: Quality = Quality(2);
    /// A USB link.
    pub const USB: Quality = Quality(5);
    /// A network link.
    pub const NETWORK: Quality = Quality(20);
    /// A route learned only because a stream arrived from that node.
    pub const UNKNOWN: Quality = Quality(254);
    /// The largest quality.
    pub const WORST: Quality = Quality(254);

    /// The wire value that means "offline" in a `NodeState`.
    pub const OFFLINE_BYTE: u8 = 255;

    /// Makes a quality, refusing the reserved value 255.
    pub const fn new(value: u8) -> Result<Quality, FrameError> {
        if value == Self::OFFLINE_BYTE {
            Err(FrameError::InvalidQuality)
        } else {
            Ok(Quality(value))
        }
    }

    /// The wire value, `0..=254`.
    pub const fn get(self) -> u8 {
        self.0
    }

    /// The cost of two paths end to end: `min(a + b, 254)`.
    pub const fn combine(self, other: Quality) -> Quality {
        let sum = self.0 as u16 + other.0 as u16;
        if sum >= Self::WORST.0 as u16 {
            Self::WORST
        } else {
            Quality(sum as u8)
        }
    }

    /// Whether this is [`Quality::WORST`]: a saturated path, treated as
    /// unreachable when advertising routes.
    pub const fn is_worst(self) -> bool {
        self.0 == Self::WORST.0
    }
}

impl TryFrom<u8> for Quality {
    type Error = FrameError;
    fn try_from(value: u8) -> Result<Self, FrameError> {
        Quality::new(value)
    }
}

impl From<Quality> for u8 {
    fn from(q: Quality) -> u8 {
        q.0
    }
}

impl fmt::Debug for Quality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Quality({})", self.0)
    }
}

impl fmt::Display for Quality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}
