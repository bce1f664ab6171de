//! What the peer offered each stream, from the link bytes a core consumed,
//! in order. The core takes data frames as their bytes come, so a record
//! may end inside a frame and the next one continues it. Shared by the mux
//! fuzz targets.

use std::collections::HashMap;

use circuit_frame::{Decode, Decoded, Frame};

/// What the peer sent per stream, from the link bytes in order: the core
/// consumes data frames as their bytes come, so a record may end inside a
/// frame and the next one continues it.
#[derive(Default)]
pub struct Offered {
    pub sent: HashMap<u32, Vec<u8>>,
    /// Bytes of a header (or of a close frame) not complete yet.
    pending: Vec<u8>,
    /// The data frame whose payload is arriving: (stream, bytes left).
    in_data: Option<(u32, usize)>,
}

impl Offered {
    pub fn feed(&mut self, mut bytes: &[u8]) {
        loop {
            if let Some((id, left)) = self.in_data {
                let n = left.min(bytes.len());
                self.sent
                    .entry(id)
                    .or_default()
                    .extend_from_slice(&bytes[..n]);
                bytes = &bytes[n..];
                self.in_data = (left > n).then_some((id, left - n));
                if self.in_data.is_some() {
                    return;
                }
                continue;
            }
            if bytes.is_empty() {
                return;
            }
            self.pending.push(bytes[0]);
            bytes = &bytes[1..];
            if let Some(&[a, b, c, d, l0, l1]) = self.pending.get(..6) {
                let len = usize::from(u16::from_le_bytes([l0, l1]));
                if len > 0 {
                    self.in_data = Some((u32::from_le_bytes([a, b, c, d]), len));
                    self.pending.clear();
                } else if let Ok(Decoded::Complete { .. }) = Frame::decode(&self.pending) {
                    self.pending.clear();
                }
            }
        }
    }
}
