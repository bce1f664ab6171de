//! Configuration of a mux, with documented defaults.

use std::sync::Arc;
use std::time::Duration;

/// How a mux buffers, limits and names itself. Build with
/// [`Config::default`] and the setters:
///
/// ```
/// let config = circuit_mux::Config::default()
///     .stream_receive_limit(256 * 1024)
///     .peer_name("router-2");
/// assert_eq!(config.get_stream_receive_limit(), 256 * 1024);
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) stream_receive_limit: usize,
    pub(crate) link_receive_limit: usize,
    pub(crate) stream_send_buffer: usize,
    pub(crate) link_send_buffer: usize,
    pub(crate) max_incoming_streams: usize,
    pub(crate) max_closed_id_ranges: usize,
    pub(crate) read_buffer: usize,
    pub(crate) write_buffer: usize,
    pub(crate) peer_name: String,
    pub(crate) local_name: Option<String>,
    pub(crate) credit: CreditMode,
    pub(crate) keep_alive: Option<KeepAlive>,
    pub(crate) close_timeout: Option<Timeout>,
}

/// A source of timers, so that the mux's keep-alive needs no runtime: the
/// transport crates give one for tokio and smol, a test one it controls.
pub trait Sleeper: Send + Sync + 'static {
    /// A future that completes after `duration`.
    fn sleep(
        &self,
        duration: Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
}

/// A timeout and the sleeper that times it: the keep-alive's, or a
/// close's ([`Config::close_timeout`]).
#[derive(Clone)]
pub(crate) struct Timeout {
    pub(crate) after: Duration,
    pub(crate) sleeper: Arc<dyn Sleeper>,
}

impl std::fmt::Debug for Timeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timeout")
            .field("after", &self.after)
            .finish_non_exhaustive()
    }
}

/// Keep-alive settings ([`Config::keep_alive`]): PINGs every `interval`,
/// timed by the timeout's sleeper.
#[derive(Debug, Clone)]
pub(crate) struct KeepAlive {
    pub(crate) interval: Duration,
    pub(crate) timeout: Timeout,
}

/// Whether a link negotiates per-stream credit flow control (PROTOCOL.md
/// section 4) with its peer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CreditMode {
    /// Plain v0 framing: never offer credit; a client answers the server's
    /// HELLO with a close, as a v0 peer does.
    Off,
    /// Offer credit as the server, answer as the client; a v0 peer keeps
    /// the link in v0 mode. The default.
    #[default]
    Auto,
    /// As `Auto`, but a v0 peer ends the link with
    /// [`MuxError::CreditRequired`](crate::MuxError::CreditRequired).
    Required,
}

impl std::str::FromStr for CreditMode {
    type Err = String;

    /// `off`, `auto` or `required`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "off" => Ok(CreditMode::Off),
            "auto" => Ok(CreditMode::Auto),
            "required" => Ok(CreditMode::Required),
            other => Err(format!(
                "credit mode is off, auto or required, not {other:?}"
            )),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            stream_receive_limit: 1 << 20,
            link_receive_limit: 32 << 20,
            stream_send_buffer: 256 << 10,
            link_send_buffer: 4 << 20,
            max_incoming_streams: 1024,
            max_closed_id_ranges: 4096,
            read_buffer: 256 << 10,
            write_buffer: 256 << 10,
            peer_name: "peer".to_owned(),
            local_name: None,
            credit: CreditMode::Auto,
            keep_alive: None,
            close_timeout: None,
        }
    }
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident, $getter:ident, $min:expr) => {
        $(#[$doc])*
        pub fn $name(mut self, value: usize) -> Self {
            self.$name = value.max($min);
            self
        }

        #[doc = concat!("The value set by [`Config::", stringify!($name), "`].")]
        pub fn $getter(&self) -> usize {
            self.$name
        }
    };
}

impl Config {
    setter!(
        /// Bytes received for one stream and not yet read by the
        /// application before the mux stops reading the link. Default
        /// 1 MiB, at least 1. For a stream under credit (PROTOCOL.md
        /// section 4) this is the largest window its receive window may
        /// grow to (it starts at the protocol's 64 KiB whatever this is),
        /// and the mux never stops reading the link for it.
        stream_receive_limit,
        get_stream_receive_limit,
        1
    );
    setter!(
        /// Bytes received for all streams of the link and not yet read
        /// before the mux stops reading the link. The limit is checked
        /// before each part of a frame's payload is taken, so the streams
        /// may hold up to one payload (65,535 bytes) more. Default 32 MiB.
        ///
        /// Streams under credit are not counted here: for them this is the
        /// budget their windows may grow within. Each starts with the
        /// protocol's 64 KiB; a window grows only while the sum of all
        /// windows stays within this budget, so the bytes the peer may
        /// have in flight to this end's streams under credit are at most
        /// `max(link_receive_limit, streams under credit x 64 KiB)`.
        link_receive_limit,
        get_link_receive_limit,
        1
    );
    setter!(
        /// Bytes an application may write to one stream before its writes
        /// wait for the mux to send, when the stream has the link's send
        /// buffer to itself (see [`link_send_buffer`](Config::link_send_buffer)).
        /// It is also the largest single message a stream's writer takes.
        /// Default 256 KiB.
        stream_send_buffer,
        get_stream_send_buffer,
        1
    );
    setter!(
        /// Bytes the application's writes may buffer in all the streams
        /// of the link, shared out: with `n` streams open (rounded up to a
        /// power of two), each stream's writer waits once it has buffered
        /// `link_send_buffer / n`, but never less than the smaller of
        /// 64 KiB and `stream_send_buffer`, and never more than
        /// `stream_send_buffer`. The shares move as streams open and close.
        /// Default 4 MiB: up to 16 streams get 256 KiB each, 64 and more
        /// get 64 KiB, so the bytes waiting to be sent are at most
        /// `max(link_send_buffer, streams x 64 KiB)` (without sharing,
        /// `streams x stream_send_buffer`).
        ///
        /// A smaller budget keeps bytes warmer in the caches, since they
        /// wait less before they are sent, and costs wake-ups, since each
        /// writer gets less ahead: at 1 MiB (16 streams at 64 KiB each) the
        /// command line's 16-stream echo over loopback TCP moved 10-25 %
        /// more, and the same workload in one process 25-30 % less
        /// (benches/README.md). Streams a router splices onto the link are
        /// counted in `n` but not limited: their pipes are the other
        /// link's receive pipes.
        link_send_buffer,
        get_link_send_buffer,
        1
    );
    setter!(
        /// Incoming streams open at once; a stream past this is refused
        /// with an epitaph and the link stays up. Default 1,024.
        max_incoming_streams,
        get_max_incoming_streams,
        1
    );
    setter!(
        /// Bound on the ranges kept to remember closed ids of the peer's
        /// parity. Default 4,096.
        max_closed_id_ranges,
        get_max_closed_id_ranges,
        1
    );
    setter!(
        /// Size of the buffer for reads from the link (frame headers, small
        /// frames; large payloads are read straight into their stream).
        /// Default 256 KiB.
        read_buffer,
        get_read_buffer,
        64
    );
    setter!(
        /// Bytes of frames the send queue takes before each write to the
        /// link (a stream alone may pass it by one turn: up to four full
        /// frames and a short one).
        /// Default 256 KiB.
        write_buffer,
        get_write_buffer,
        64
    );

    /// The peer's name, used in epitaphs and errors. Default `"peer"`.
    pub fn peer_name(mut self, name: impl Into<String>) -> Self {
        self.peer_name = name.into();
        self
    }

    /// This end's own name (a node's id). When set, the epitaph every
    /// stream still open gets as the link ends says who saw it end:
    /// `"{local}: link to {peer} failed: ..."` instead of
    /// `"link to {peer} failed: ..."`, so that a reader behind routers
    /// learns which hop failed. Default: none.
    pub fn local_name(mut self, name: impl Into<String>) -> Self {
        self.local_name = Some(name.into());
        self
    }

    /// Whether the link negotiates credit flow control. Default
    /// [`CreditMode::Auto`].
    pub fn credit(mut self, mode: CreditMode) -> Self {
        self.credit = mode;
        self
    }

    /// Sends a PING every `interval` (timed by `sleeper`) on a link in
    /// credit mode and ends the link with [`MuxError::KeepAlive`] when a
    /// PING has had no PONG within `timeout`, so that a peer that vanished
    /// without closing the link is noticed without a byte of user data. A
    /// v0 link has no PING.
    ///
    /// On every link, in either mode, `timeout` also bounds a close as
    /// [`close_timeout`](Config::close_timeout) does, unless a close
    /// timeout is set. Off by default.
    ///
    /// [`MuxError::KeepAlive`]: crate::MuxError::KeepAlive
    pub fn keep_alive(
        mut self,
        interval: Duration,
        timeout: Duration,
        sleeper: Arc<dyn Sleeper>,
    ) -> Self {
        self.keep_alive = Some(KeepAlive {
            interval,
            timeout: Timeout {
                after: timeout,
                sleeper,
            },
        });
        self
    }

    /// Bounds a close ([`Mux::close`](crate::Mux::close), or every handle
    /// dropped) by `timeout`, timed by `sleeper`: from its start the
    /// driver takes at most `timeout` to flush the last frames, close the
    /// link's io and wait for the peer's end of the link, then ends (`Ok`
    /// if the io was closed, an error of kind `TimedOut` if the link took
    /// neither its last frames nor its close). Without it (and without a
    /// [`keep_alive`](Config::keep_alive), whose timeout bounds a close
    /// otherwise) a close waits as long as the peer takes: a peer that
    /// never closes its end, or a link that takes nothing more, keeps the
    /// driver. yamux lets a connection go once its last frames are
    /// written; reading to the peer's end first keeps a socket from
    /// resetting the link under the close frames the peer has not read.
    /// Off by default.
    pub fn close_timeout(mut self, timeout: Duration, sleeper: Arc<dyn Sleeper>) -> Self {
        self.close_timeout = Some(Timeout {
            after: timeout,
            sleeper,
        });
        self
    }

    /// The bound set by [`Config::close_timeout`], if any.
    pub fn get_close_timeout(&self) -> Option<Duration> {
        self.close_timeout.as_ref().map(|c| c.after)
    }

    /// The interval and timeout set by [`Config::keep_alive`], if any.
    pub fn get_keep_alive(&self) -> Option<(Duration, Duration)> {
        self.keep_alive
            .as_ref()
            .map(|k| (k.interval, k.timeout.after))
    }

    /// The mode set by [`Config::credit`].
    pub fn get_credit(&self) -> CreditMode {
        self.credit
    }

    /// The peer's name set by [`Config::peer_name`].
    pub fn get_peer_name(&self) -> &str {
        &self.peer_name
    }

    /// This end's name set by [`Config::local_name`], if any.
    pub fn get_local_name(&self) -> Option<&str> {
        self.local_name.as_deref()
    }
}
