//! How a listener or a dialled link is set up.

use std::time::Duration;

use circuit_frame::Quality;

use crate::{ReconnectPolicy, Shutdown};

/// The default bound of a dial ([`LinkOptions::connect_timeout`]) and of a
/// link's handshake ([`LinkOptions::handshake_timeout`]).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// TCP keep-alive on a link's socket: the kernel probes a connection idle
/// for [`time`](Self::time), every [`interval`](Self::interval), and
/// ends it when the peer stays silent (the system's count of probes), so
/// a peer that vanished without a word is noticed even with no stream
/// open. The default: 30 s, then every 10 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpKeepalive {
    /// How long a connection stays idle before the first probe.
    pub time: Duration,
    /// The time between two probes (where the system lets it be set).
    pub interval: Duration,
}

impl TcpKeepalive {
    /// Turns keep-alive on for `socket` with this time, and this interval
    /// where the system lets it be set (what each runtime's
    /// [`Runtime::set_keepalive`](crate::runtime::Runtime::set_keepalive)
    /// does with its socket).
    pub fn apply_to(&self, socket: socket2::SockRef<'_>) -> std::io::Result<()> {
        let params = socket2::TcpKeepalive::new().with_time(self.time);
        #[cfg(any(
            target_os = "android",
            target_os = "freebsd",
            target_os = "fuchsia",
            target_os = "illumos",
            target_os = "ios",
            target_os = "linux",
            target_os = "macos",
            target_os = "netbsd",
            target_os = "windows",
        ))]
        let params = params.with_interval(self.interval);
        socket.set_tcp_keepalive(&params)
    }
}

impl Default for TcpKeepalive {
    fn default() -> Self {
        TcpKeepalive {
            time: Duration::from_secs(30),
            interval: Duration::from_secs(10),
        }
    }
}

/// The default cap on a listener's links still in their handshake
/// ([`LinkOptions::max_handshakes`]).
pub const DEFAULT_MAX_HANDSHAKES: usize = 256;

/// How a listener or a dialled link is set up. Every field has a default:
/// quality from the socket, no reconnecting, a shutdown group of its own,
/// dials and handshakes bounded by [`DEFAULT_TIMEOUT`], at most
/// [`DEFAULT_MAX_HANDSHAKES`] accepted links in their handshake at once,
/// TCP keep-alive on ([`TcpKeepalive::default`]).
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
#[derive(Debug, Clone)]
pub struct LinkOptions {
    quality: Option<Quality>,
    connect_timeout: Option<Duration>,
    handshake_timeout: Option<Duration>,
    max_handshakes: usize,
    keepalive: Option<TcpKeepalive>,
    reconnect: Option<ReconnectPolicy>,
    retry_first_dial: bool,
    shutdown: Option<Shutdown>,
}

impl Default for LinkOptions {
    fn default() -> Self {
        LinkOptions {
            quality: None,
            connect_timeout: Some(DEFAULT_TIMEOUT),
            handshake_timeout: Some(DEFAULT_TIMEOUT),
            max_handshakes: DEFAULT_MAX_HANDSHAKES,
            keepalive: Some(TcpKeepalive::default()),
            reconnect: None,
            retry_first_dial: false,
            shutdown: None,
        }
    }
}

impl LinkOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// The longest a dial may take, name resolution and connect together,
    /// measured on the runtime's clock (`None`: as long as the system
    /// lets it, minutes for an address that drops SYNs). A dial that takes
    /// longer fails with [`TransportError::Connect`](crate::TransportError::Connect)
    /// (`TimedOut`). Default [`DEFAULT_TIMEOUT`].
    pub fn connect_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The longest a link may take from its start to the end of its
    /// handshake (PROTOCOL 2.1), dialled or accepted: a peer that connects
    /// and never speaks has its link dropped then, with its socket and
    /// buffers (`None`: no bound). Default [`DEFAULT_TIMEOUT`].
    pub fn handshake_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The most links a listener keeps in their handshake at once (at
    /// least 1): a connection accepted beyond it is closed at once, logged
    /// and counted ([`Listener::handshakes_refused`](crate::net::Listener::handshakes_refused)).
    /// Default [`DEFAULT_MAX_HANDSHAKES`].
    pub fn max_handshakes(mut self, max: usize) -> Self {
        self.max_handshakes = max.max(1);
        self
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

    /// With a [`reconnect`](Self::reconnect) policy, a first dial that
    /// fails is retried like a redial, in the link's task, instead of
    /// failing `connect_with` (default: it fails; a bad address fails at
    /// once either way). For a node that may start before its peer.
    pub fn retry_first_dial(mut self, retry: bool) -> Self {
        self.retry_first_dial = retry;
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

    /// TCP keep-alive on every TCP socket dialled or accepted (`None`: off).
    /// Default [`TcpKeepalive::default`]: probes after 30 s idle, every
    /// 10 s. A socket where it cannot be set is logged and used as it is.
    pub fn tcp_keepalive(mut self, keepalive: Option<TcpKeepalive>) -> Self {
        self.keepalive = keepalive;
        self
    }

    /// The keep-alive set by [`tcp_keepalive`](Self::tcp_keepalive).
    pub fn get_tcp_keepalive(&self) -> Option<TcpKeepalive> {
        self.keepalive
    }

    /// The bound set by [`connect_timeout`](Self::connect_timeout).
    pub fn get_connect_timeout(&self) -> Option<Duration> {
        self.connect_timeout
    }

    /// The bound set by [`handshake_timeout`](Self::handshake_timeout).
    pub fn get_handshake_timeout(&self) -> Option<Duration> {
        self.handshake_timeout
    }

    /// The cap set by [`max_handshakes`](Self::max_handshakes).
    pub fn get_max_handshakes(&self) -> usize {
        self.max_handshakes
    }

    /// The policy set by [`reconnect`](Self::reconnect), if any.
    pub fn get_reconnect(&self) -> Option<&ReconnectPolicy> {
        self.reconnect.as_ref()
    }

    /// Whether a failed first dial is retried (see
    /// [`retry_first_dial`](Self::retry_first_dial)).
    pub fn get_retry_first_dial(&self) -> bool {
        self.retry_first_dial
    }

    /// A new group for a listener or a dialled link: a child of the one
    /// given to [`shutdown`](Self::shutdown), or a group of its own.
    pub fn group(&self) -> Shutdown {
        self.shutdown
            .as_ref()
            .map_or_else(Shutdown::new, Shutdown::child)
    }
}
