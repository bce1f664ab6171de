//! How a listener or a dialled link is set up.

use circuit_frame::Quality;

use crate::{ReconnectPolicy, Shutdown};

/// How a listener or a dialled link is set up. Every field has a default:
/// quality from the socket, no reconnecting, a shutdown group of its own.
///
/// ```
/// # use circuit_frame::Quality;
/// # use circuit_transport::{LinkOptions, ReconnectPolicy, Shutdown};
/// let all = Shutdown::new();
/// let options = LinkOptions::new()
///     .quality(Quality::NETWORK)
///     .reconnect(ReconnectPolicy::default())
///     .shutdown(&all);
/// assert_eq!(options.get_quality(), Some(Quality::NETWORK));
/// ```
#[derive(Debug, Clone, Default)]
pub struct LinkOptions {
    quality: Option<Quality>,
    reconnect: Option<ReconnectPolicy>,
    shutdown: Option<Shutdown>,
}

impl LinkOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// The quality of every link made (default: `LOCAL_SOCKET` for Unix
    /// sockets and loopback TCP, `NETWORK` for other TCP).
    pub fn quality(mut self, quality: Quality) -> Self {
        self.quality = Some(quality);
        self
    }

    /// Dial again after a dialled link drops (`connect_with` only).
    pub fn reconnect(mut self, policy: ReconnectPolicy) -> Self {
        self.reconnect = Some(policy);
        self
    }

    /// Makes the listener's or link's group a child of `shutdown`, so that
    /// shutting `shutdown` down shuts it down too.
    pub fn shutdown(mut self, shutdown: &Shutdown) -> Self {
        self.shutdown = Some(shutdown.clone());
        self
    }

    /// The quality set by [`quality`](Self::quality), if any.
    pub fn get_quality(&self) -> Option<Quality> {
        self.quality
    }

    /// The policy set by [`reconnect`](Self::reconnect), if any.
    pub fn get_reconnect(&self) -> Option<&ReconnectPolicy> {
        self.reconnect.as_ref()
    }

    /// A new group for a listener or a dialled link: a child of the one
    /// given to [`shutdown`](Self::shutdown), or a group of its own.
    pub fn group(&self) -> Shutdown {
        self.shutdown
            .as_ref()
            .map_or_else(Shutdown::new, Shutdown::child)
    }
}
