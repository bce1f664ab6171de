//! Mux frames: a data frame or a close frame with an epitaph.

use std::borrow::Cow;

use crate::codec::{need, Cursor, Decode, Decoded, Encode, Writer};
use crate::FrameError;

/// Bytes before a data frame's payload: `stream_id:u32 length:u16`.
pub const DATA_HEADER_LEN: usize = 6;
/// Bytes before a close frame's epitaph: `stream_id:u32 0:u16 epitaph_len:u16`.
pub const CLOSE_HEADER_LEN: usize = 8;
/// The most bytes one data frame carries.
pub const MAX_PAYLOAD_LEN: usize = u16::MAX as usize;
/// The longest epitaph, in bytes.
pub const MAX_EPITAPH_LEN: usize = u16::MAX as usize;

/// One frame of a link, belonging to one mux stream (PROTOCOL.md section 1).
///
/// ```text
/// data frame   stream_id:u32  length:u16 (1..=65535)  payload[length]
/// close frame  stream_id:u32  0:u16  epitaph_len:u16  epitaph[epitaph_len]
/// ```
///
/// Both variants borrow their bytes: decoding copies nothing.
///
/// Build frames with [`Frame::data`] and [`Frame::close`], which check the
/// limits. A hand-built `Data` with no payload has no wire form and encodes
/// to nothing; hand-built payloads and epitaphs over 65535 bytes are cut to
/// 65535 when encoded, so the output is always well framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Frame<'a> {
    /// Bytes for a stream; the first data frame with a fresh id of the
    /// peer's parity opens the stream.
    Data {
        /// The mux stream.
        stream_id: u32,
        /// 1 to 65535 bytes.
        payload: &'a [u8],
    },
    /// "The sender sends nothing more on this stream."
    Close {
        /// The mux stream.
        stream_id: u32,
        /// Why, as UTF-8 (decode lossily); empty means no reason.
        epitaph: &'a [u8],
    },
}

impl<'a> Frame<'a> {
    /// A data frame; `payload` must hold 1 to 65535 bytes.
    pub fn data(stream_id: u32, payload: &'a [u8]) -> Result<Self, FrameError> {
        match payload.len() {
            0 => Err(FrameError::EmptyPayload),
            len if len > MAX_PAYLOAD_LEN => Err(FrameError::PayloadTooLong { len }),
            _ => Ok(Frame::Data { stream_id, payload }),
        }
    }

    /// A close frame. An epitaph over 65535 bytes is cut at the last
    /// character boundary that fits, as the protocol asks of a sender.
    pub fn close(stream_id: u32, epitaph: &'a str) -> Self {
        Frame::Close {
            stream_id,
            epitaph: truncate_epitaph(epitaph).as_bytes(),
        }
    }

    /// The stream this frame belongs to.
    pub fn stream_id(&self) -> u32 {
        match *self {
            Frame::Data { stream_id, .. } | Frame::Close { stream_id, .. } => stream_id,
        }
    }

    /// The epitaph of a close frame as text (invalid UTF-8 replaced), or
    /// `None` for a data frame.
    pub fn epitaph_lossy(&self) -> Option<Cow<'a, str>> {
        match *self {
            Frame::Close { epitaph, .. } => Some(String::from_utf8_lossy(epitaph)),
            Frame::Data { .. } => None,
        }
    }

    /// The 6-byte header of a data frame carrying `len` bytes, for writers
    /// that send the payload from elsewhere (vectored I/O).
    pub fn data_header(stream_id: u32, len: u16) -> [u8; DATA_HEADER_LEN] {
        let mut h = [0; DATA_HEADER_LEN];
        h[..4].copy_from_slice(&stream_id.to_le_bytes());
        h[4..].copy_from_slice(&len.to_le_bytes());
        h
    }
}

/// The longest prefix of `epitaph` that fits in a close frame and ends on a
/// character boundary.
pub(crate) fn truncate_epitaph(epitaph: &str) -> &str {
    if epitaph.len() <= MAX_EPITAPH_LEN {
        return epitaph;
    }
    let mut end = MAX_EPITAPH_LEN;
    while !epitaph.is_char_boundary(end) {
        end -= 1;
    }
    &epitaph[..end]
}

impl Encode for Frame<'_> {
    fn encoded_len(&self) -> usize {
        match self {
            Frame::Data { payload: [], .. } => 0,
            Frame::Data { payload, .. } => DATA_HEADER_LEN + payload.len().min(MAX_PAYLOAD_LEN),
            Frame::Close { epitaph, .. } => CLOSE_HEADER_LEN + epitaph.len().min(MAX_EPITAPH_LEN),
        }
    }

    fn encode_exact(&self, out: &mut [u8]) {
        let mut w = Writer::new(out);
        match *self {
            Frame::Data { payload: [], .. } => {}
            Frame::Data { stream_id, payload } => {
                let len = payload.len().min(MAX_PAYLOAD_LEN);
                w.bytes(&Frame::data_header(stream_id, len as u16))
                    .bytes(&payload[..len]);
            }
            Frame::Close { stream_id, epitaph } => {
                let len = epitaph.len().min(MAX_EPITAPH_LEN);
                w.bytes(&stream_id.to_le_bytes())
                    .bytes(&0u16.to_le_bytes())
                    .bytes(&(len as u16).to_le_bytes())
                    .bytes(&epitaph[..len]);
            }
        }
    }
}

impl<'a> Decode<'a> for Frame<'a> {
    const MIN_LEN: usize = DATA_HEADER_LEN + 1;

    fn decode(input: &'a [u8]) -> Result<Decoded<Self>, FrameError> {
        let mut c = Cursor::new(input);
        let header: [u8; DATA_HEADER_LEN] = need!(c.array());
        let [a, b, c0, d, l0, l1] = header;
        let stream_id = u32::from_le_bytes([a, b, c0, d]);
        let len = u16::from_le_bytes([l0, l1]);
        let message = if len == 0 {
            let epitaph_len = need!(c.u16());
            let epitaph = need!(c.take(usize::from(epitaph_len)));
            Frame::Close { stream_id, epitaph }
        } else {
            let payload = need!(c.take(usize::from(len)));
            Frame::Data { stream_id, payload }
        };
        Ok(Decoded::Complete {
            message,
            consumed: c.pos(),
        })
    }
}
