//! The connection-layer header: `conn_id:u64 stream_id:u64`.

use crate::codec::{need, Cursor, Decode, Decoded, Encode, Writer};
use crate::FrameError;

/// The header after the routing header on a stream of the connection layer
/// (PROTOCOL.md section 2.5): which connection, and which stream in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectionHeader {
    /// Chosen at random by the end that connects.
    pub conn_id: u64,
    /// 0 for the stream that opens the connection, then even ids from the
    /// connecting end and odd ids from the accepting end.
    pub stream_id: u64,
}

impl ConnectionHeader {
    /// The size of the header on the wire.
    pub const LEN: usize = 16;
}

impl Encode for ConnectionHeader {
    fn encoded_len(&self) -> usize {
        Self::LEN
    }

    fn encode_exact(&self, out: &mut [u8]) {
        Writer::new(out)
            .bytes(&self.conn_id.to_le_bytes())
            .bytes(&self.stream_id.to_le_bytes());
    }
}

impl Decode<'_> for ConnectionHeader {
    const MIN_LEN: usize = Self::LEN;

    fn decode(input: &[u8]) -> Result<Decoded<Self>, FrameError> {
        let mut c = Cursor::new(input);
        let conn_id = need!(c.u64());
        let stream_id = need!(c.u64());
        Ok(Decoded::Complete {
            message: ConnectionHeader { conn_id, stream_id },
            consumed: c.pos(),
        })
    }
}
