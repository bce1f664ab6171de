//! The one error type of the mux.

use circuit_frame::FrameError;

/// Why a mux operation or a whole link failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MuxError {
    /// A frame broke the stream-id rules of PROTOCOL.md section 1. Fatal
    /// for the link.
    #[error("bad stream id {stream_id} from {peer}: {reason}")]
    BadStreamId {
        /// The offending id.
        stream_id: u32,
        /// The peer's name from the config.
        peer: String,
        /// Which rule was broken.
        reason: &'static str,
    },
    /// The link ended in the middle of a frame.
    #[error("link to {peer} ended in the middle of a frame ({buffered} bytes of it received)")]
    Truncated {
        /// The peer's name from the config.
        peer: String,
        /// Bytes of the partial frame received (its payload bytes so far
        /// were delivered to their stream before the error).
        buffered: usize,
    },
    /// The link's reader or writer failed.
    #[error("link to {peer} failed: {source}")]
    Io {
        /// The peer's name from the config.
        peer: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Bytes that are not a frame (cannot happen with the current frame
    /// format, kept for extensions).
    #[error("malformed frame from {peer}: {source}")]
    Frame {
        /// The peer's name from the config.
        peer: String,
        /// The codec's error.
        #[source]
        source: FrameError,
    },
    /// The peer sent on the id reserved for credit mode's link control
    /// (PROTOCOL.md section 4) while this end runs plain v0 framing.
    #[error("{peer} sent link-control frames: the two ends disagree about credit mode")]
    ModeMismatch {
        /// The peer's name from the config.
        peer: String,
    },
    /// The peer sent more on a stream under credit than this end granted
    /// (PROTOCOL.md section 4). Fatal for the link.
    #[error("{peer} sent {received} bytes on stream {stream_id}, more than the {granted} granted")]
    FlowControl {
        /// The stream.
        stream_id: u32,
        /// The peer's name from the config.
        peer: String,
        /// Bytes the peer sent on it, with the frame that broke the limit.
        received: u64,
        /// Bytes granted to the peer on it so far.
        granted: u64,
    },
    /// The peer broke the link-control rules of PROTOCOL.md section 4 (an
    /// unknown message, HELLO twice or out of turn, a grant past 2^31).
    /// Fatal for the link.
    #[error("link-control error from {peer}: {reason}")]
    Control {
        /// The peer's name from the config.
        peer: String,
        /// Which rule was broken.
        reason: String,
    },
    /// This end is configured [`CreditMode::Required`](crate::CreditMode)
    /// and the peer speaks only v0.
    #[error("{peer} does not speak credit flow control, which this end requires")]
    CreditRequired {
        /// The peer's name from the config.
        peer: String,
    },
    /// A keep-alive PING had no PONG within the configured timeout
    /// ([`Config::keep_alive`](crate::Config::keep_alive)): the peer is
    /// gone or stuck.
    #[error("{peer} did not answer a keep-alive PING within {timeout:?}")]
    KeepAlive {
        /// The peer's name from the config.
        peer: String,
        /// The timeout that passed.
        timeout: std::time::Duration,
    },
    /// Every stream id of this end's parity has been used.
    #[error("no stream ids left on this link")]
    IdsExhausted,
    /// The link is no longer running.
    #[error("the link is closed")]
    LinkClosed,
}

impl MuxError {
    /// The stream id this error is about, if any.
    pub fn stream_id(&self) -> Option<u32> {
        match self {
            MuxError::BadStreamId { stream_id, .. } => Some(*stream_id),
            _ => None,
        }
    }
}

/// [`Mux::attach`](crate::Mux::attach) failed: why, and the two pipes it was
/// given, untouched, so they can be spliced onto another link.
#[derive(Debug, thiserror::Error)]
#[error("cannot attach a stream: {error}")]
pub struct AttachError {
    /// Why the stream could not be opened.
    #[source]
    pub error: MuxError,
    /// The pipe whose bytes were to be sent.
    pub source: circuit_stream::Reader,
    /// The pipe the peer's bytes were to go to.
    pub sink: circuit_stream::Writer,
}
