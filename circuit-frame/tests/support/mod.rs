//! Helpers shared by the integration tests: an owned frame, and a reader
//! that decodes a link the way a network reader does.
#![allow(dead_code)]

use circuit_frame::{Decode, Decoded, Encode, Frame};

/// A frame that owns its bytes, so tests can keep decoded frames around.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedFrame {
    /// `Frame::Data`.
    Data(u32, Vec<u8>),
    /// `Frame::Close` with raw epitaph bytes.
    Close(u32, Vec<u8>),
}

impl OwnedFrame {
    pub fn frame(&self) -> Frame<'_> {
        match self {
            OwnedFrame::Data(stream_id, payload) => Frame::Data {
                stream_id: *stream_id,
                payload,
            },
            OwnedFrame::Close(stream_id, epitaph) => Frame::Close {
                stream_id: *stream_id,
                epitaph,
            },
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.frame().encode_to_vec(&mut out);
        out
    }
}

impl From<Frame<'_>> for OwnedFrame {
    fn from(frame: Frame<'_>) -> Self {
        match frame {
            Frame::Data { stream_id, payload } => OwnedFrame::Data(stream_id, payload.to_vec()),
            Frame::Close { stream_id, epitaph } => OwnedFrame::Close(stream_id, epitaph.to_vec()),
        }
    }
}

/// Decodes a whole byte slice as back-to-back frames. Panics (failing the
/// test) on an error or on a truncated frame at the end.
pub fn decode_all(mut bytes: &[u8]) -> Vec<OwnedFrame> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        match Frame::decode(bytes).expect("valid frames") {
            Decoded::Complete { message, consumed } => {
                assert!(consumed > 0 && consumed <= bytes.len());
                frames.push(message.into());
                bytes = &bytes[consumed..];
            }
            Decoded::Incomplete { needed } => {
                panic!(
                    "truncated frame: {} bytes left, {needed} needed",
                    bytes.len()
                )
            }
        }
    }
    frames
}

/// Decodes frames from bytes that arrive in pieces, as a network reader
/// does: it accumulates input, decodes while a frame is complete, and after
/// `Incomplete { needed }` waits until it holds `needed` bytes before it
/// asks the decoder again.
///
/// Checks on the way that `needed` is always more than what the decoder was
/// given, and that once `needed` bytes are there the decoder makes progress.
#[derive(Default)]
pub struct NetworkReader {
    buf: Vec<u8>,
    /// Bytes to hold before decoding again (0: try at once).
    wait_for: usize,
    pub frames: Vec<OwnedFrame>,
}

impl NetworkReader {
    pub fn feed(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
        while self.buf.len() >= self.wait_for && !self.buf.is_empty() {
            match Frame::decode(&self.buf).expect("a prefix of valid frames never errors") {
                Decoded::Complete { message, consumed } => {
                    assert!(consumed > 0 && consumed <= self.buf.len());
                    assert_eq!(consumed, message.encoded_len());
                    self.frames.push(message.into());
                    self.buf.drain(..consumed);
                    self.wait_for = 0;
                }
                Decoded::Incomplete { needed } => {
                    assert!(
                        needed > self.buf.len(),
                        "needed {needed} must exceed the {} bytes given",
                        self.buf.len()
                    );
                    assert!(
                        needed > self.wait_for,
                        "after reaching the {} bytes asked for, the decoder must progress",
                        self.wait_for
                    );
                    self.wait_for = needed;
                }
            }
        }
    }

    /// The frames read, asserting the link ended on a frame boundary.
    pub fn finish(self) -> Vec<OwnedFrame> {
        assert!(self.buf.is_empty(), "{} bytes left over", self.buf.len());
        self.frames
    }
}
