//! Link-control messages of the credit extension (PROTOCOL.md section 4),
//! carried in data frames on the reserved stream id `0xFFFF_FFFF`.

use crate::codec::{Decode, Decoded, Encode};
use crate::FrameError;

/// The mux stream id reserved for link control in credit mode.
pub const LINK_CONTROL_ID: u32 = u32::MAX;

/// The credit each direction of a stream under credit starts with.
pub const INITIAL_CREDIT: u32 = 65_536;

/// The version of the credit extension this codec speaks (HELLO's version).
pub const CREDIT_VERSION: u8 = 1;

/// One link-control message: `type:u8` then its body.
///
/// ```
/// use circuit_frame::{Decode, Decoded, Encode, LinkControl};
///
/// let credit = LinkControl::Credit { stream_id: 3, bytes: 65_536 };
/// let mut wire = Vec::new();
/// credit.encode_to_vec(&mut wire);
/// assert_eq!(wire, [2, 3, 0, 0, 0, 0, 0, 1, 0]);
/// assert_eq!(
///     LinkControl::decode(&wire).unwrap(),
///     Decoded::Complete { message: credit, consumed: 9 }
/// );
/// // An unknown type is an error, never skipped.
/// assert!(LinkControl::decode(&[9]).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkControl {
    /// `0x01`: the sender speaks the credit extension.
    Hello {
        /// The extension's version (1).
        version: u8,
        /// Feature bits (0; unknown bits are ignored).
        flags: u8,
    },
    /// `0x02`: the receiver may be sent `bytes` more on `stream_id`.
    Credit {
        /// The stream the grant is for.
        stream_id: u32,
        /// The bytes granted.
        bytes: u32,
    },
    /// `0x03`: asks for a [`Pong`](LinkControl::Pong) with the same nonce.
    Ping(u64),
    /// `0x04`: the answer to a [`Ping`](LinkControl::Ping), in order.
    Pong(u64),
}

impl LinkControl {
    /// HELLO with this codec's version and no flags.
    pub fn hello() -> Self {
        LinkControl::Hello {
            version: CREDIT_VERSION,
            flags: 0,
        }
    }

    fn kind(&self) -> u8 {
        match self {
            LinkControl::Hello { .. } => 1,
            LinkControl::Credit { .. } => 2,
            LinkControl::Ping(_) => 3,
            LinkControl::Pong(_) => 4,
        }
    }
}

impl Encode for LinkControl {
    fn encoded_len(&self) -> usize {
        match self {
            LinkControl::Hello { .. } => 3,
            LinkControl::Credit { .. } | LinkControl::Ping(_) | LinkControl::Pong(_) => 9,
        }
    }

    fn encode_exact(&self, out: &mut [u8]) {
        out[0] = self.kind();
        match *self {
            LinkControl::Hello { version, flags } => {
                out[1] = version;
                out[2] = flags;
            }
            LinkControl::Credit { stream_id, bytes } => {
                out[1..5].copy_from_slice(&stream_id.to_le_bytes());
                out[5..9].copy_from_slice(&bytes.to_le_bytes());
            }
            LinkControl::Ping(nonce) | LinkControl::Pong(nonce) => {
                out[1..9].copy_from_slice(&nonce.to_le_bytes());
            }
        }
    }
}

impl Decode<'_> for LinkControl {
    const MIN_LEN: usize = 3;

    fn decode(input: &[u8]) -> Result<Decoded<Self>, FrameError> {
        let Some(&kind) = input.first() else {
            return Ok(Decoded::Incomplete { needed: 1 });
        };
        let len = match kind {
            1 => 3,
            2..=4 => 9,
            _ => return Err(FrameError::UnknownControl { kind }),
        };
        let Some(body) = input.get(1..len) else {
            return Ok(Decoded::Incomplete { needed: len });
        };
        let u32_at =
            |i: usize| u32::from_le_bytes([body[i], body[i + 1], body[i + 2], body[i + 3]]);
        let u64_at = || {
            let mut b = [0; 8];
            b.copy_from_slice(&body[..8]);
            u64::from_le_bytes(b)
        };
        let message = match kind {
            1 => LinkControl::Hello {
                version: body[0],
                flags: body[1],
            },
            2 => LinkControl::Credit {
                stream_id: u32_at(0),
                bytes: u32_at(4),
            },
            3 => LinkControl::Ping(u64_at()),
            _ => LinkControl::Pong(u64_at()),
        };
        Ok(Decoded::Complete {
            message,
            consumed: len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_round_trips_and_every_prefix_is_incomplete() {
        let messages = [
            LinkControl::hello(),
            LinkControl::Hello {
                version: 7,
                flags: 0xff,
            },
            LinkControl::Credit {
                stream_id: u32::MAX - 1,
                bytes: u32::MAX,
            },
            LinkControl::Ping(0x0102_0304_0506_0708),
            LinkControl::Pong(u64::MAX),
        ];
        for message in messages {
            let mut wire = Vec::new();
            message.encode_to_vec(&mut wire);
            assert_eq!(wire.len(), message.encoded_len());
            assert_eq!(
                LinkControl::decode(&wire).unwrap(),
                Decoded::Complete {
                    message,
                    consumed: wire.len()
                }
            );
            for cut in 0..wire.len() {
                assert!(
                    matches!(
                        LinkControl::decode(&wire[..cut]).unwrap(),
                        Decoded::Incomplete { needed } if needed > cut
                    ),
                    "{message:?} cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn the_spec_layouts() {
        let mut wire = Vec::new();
        LinkControl::hello().encode_to_vec(&mut wire);
        LinkControl::Ping(1).encode_to_vec(&mut wire);
        assert_eq!(wire, [1, 1, 0, 3, 1, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn unknown_types_are_errors() {
        for kind in [0u8, 5, 0x80, 0xff] {
            assert_eq!(
                LinkControl::decode(&[kind, 0, 0, 0, 0, 0, 0, 0, 0]),
                Err(FrameError::UnknownControl { kind })
            );
        }
    }
}
