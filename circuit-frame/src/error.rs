//! The one error type of the codec.

/// Why a message could not be made, encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A [`Name`](crate::Name) would be longer than 255 bytes.
    #[error("a name is at most 255 bytes, this one is {len}")]
    NameTooLong {
        /// The length that was asked for.
        len: usize,
    },
    /// A [`Name`](crate::Name) on the wire is not UTF-8.
    #[error("a name on the wire is not valid UTF-8")]
    InvalidUtf8,
    /// A data frame would carry no byte (zero length means close on the wire).
    #[error("a data frame carries 1 to 65535 bytes, not 0")]
    EmptyPayload,
    /// A data frame would carry more than 65535 bytes.
    #[error("a data frame carries at most 65535 bytes, not {len}")]
    PayloadTooLong {
        /// The length that was asked for.
        len: usize,
    },
    /// 255 is reserved for "offline" and is never a quality.
    #[error("quality 255 is reserved for offline")]
    InvalidQuality,
    /// A link-control message of a type this version does not know
    /// (PROTOCOL.md section 4: fatal, never skipped).
    #[error("unknown link-control message type {kind}")]
    UnknownControl {
        /// The type byte.
        kind: u8,
    },
    /// The output buffer of an encoder is smaller than the message.
    #[error("output buffer holds {available} bytes, the message needs {needed}")]
    BufferTooSmall {
        /// The exact size of the encoded message.
        needed: usize,
        /// The size of the buffer given.
        available: usize,
    },
}
