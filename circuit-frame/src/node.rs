//! Node-layer messages: `Identify`, `NodeState` and the routed-stream header.

use crate::codec::{need, Cursor, Decode, Decoded, Encode, Writer};
use crate::{FrameError, Name, Quality};

/// The circuit protocol version this codec speaks.
pub const PROTOCOL_VERSION: u8 = 0;

/// The first message each end writes on a link's control stream:
/// `version:u8 Name(protocol)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identify {
    /// The circuit protocol version; [`PROTOCOL_VERSION`] for this codec.
    /// Decoding accepts any value so the node can report a mismatch.
    pub version: u8,
    /// The application protocol both ends must share.
    pub protocol: Name,
}

impl Identify {
    /// An `Identify` for this codec's version.
    pub fn new(protocol: Name) -> Self {
        Identify {
            version: PROTOCOL_VERSION,
            protocol,
        }
    }
}

impl Encode for Identify {
    fn encoded_len(&self) -> usize {
        1 + self.protocol.encoded_len()
    }

    fn encode_exact(&self, out: &mut [u8]) {
        Writer::new(out)
            .bytes(&[self.version])
            .message(&self.protocol);
    }
}

impl Decode<'_> for Identify {
    const MIN_LEN: usize = 2;

    fn decode(input: &[u8]) -> Result<Decoded<Self>, FrameError> {
        let mut c = Cursor::new(input);
        let version = need!(c.u8());
        let protocol = need!(c.decode::<Name>()?);
        Ok(Decoded::Complete {
            message: Identify { version, protocol },
            consumed: c.pos(),
        })
    }
}

/// A route update on the control stream: `quality:u8 Name(node)`, where
/// quality 255 means the node is offline.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NodeState {
    /// The sender reaches `node` at `quality` (before the receiver adds the
    /// quality of its link).
    Online {
        /// The node that can be reached.
        node: Name,
        /// The sender's cost to reach it.
        quality: Quality,
    },
    /// The sender no longer reaches `node`.
    Offline {
        /// The node that went away.
        node: Name,
    },
}

impl NodeState {
    /// The node this update is about.
    pub fn node(&self) -> &Name {
        match self {
            NodeState::Online { node, .. } | NodeState::Offline { node } => node,
        }
    }

    fn quality_byte(&self) -> u8 {
        match self {
            NodeState::Online { quality, .. } => quality.get(),
            NodeState::Offline { .. } => Quality::OFFLINE_BYTE,
        }
    }
}

impl Encode for NodeState {
    fn encoded_len(&self) -> usize {
        1 + self.node().encoded_len()
    }

    fn encode_exact(&self, out: &mut [u8]) {
        Writer::new(out)
            .bytes(&[self.quality_byte()])
            .message(self.node());
    }
}

impl Decode<'_> for NodeState {
    const MIN_LEN: usize = 2;

    fn decode(input: &[u8]) -> Result<Decoded<Self>, FrameError> {
        let mut c = Cursor::new(input);
        let quality = need!(c.u8());
        let node = need!(c.decode::<Name>()?);
        let message = match Quality::new(quality) {
            Ok(quality) => NodeState::Online { node, quality },
            Err(_) => NodeState::Offline { node },
        };
        Ok(Decoded::Complete {
            message,
            consumed: c.pos(),
        })
    }
}

/// The header that starts every routed stream, in the opener's direction:
/// `Name(destination) Name(source)`.
///
/// A router reads only the destination (decode a [`Name`]) and forwards the
/// header bytes untouched.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoutingHeader {
    /// The node the stream is for.
    pub destination: Name,
    /// The node that opened the stream (not authenticated).
    pub source: Name,
}

impl Encode for RoutingHeader {
    fn encoded_len(&self) -> usize {
        self.destination.encoded_len() + self.source.encoded_len()
    }

    fn encode_exact(&self, out: &mut [u8]) {
        Writer::new(out)
            .message(&self.destination)
            .message(&self.source);
    }
}

impl Decode<'_> for RoutingHeader {
    const MIN_LEN: usize = 2;

    fn decode(input: &[u8]) -> Result<Decoded<Self>, FrameError> {
        let mut c = Cursor::new(input);
        let destination = need!(c.decode::<Name>()?);
        let source = need!(c.decode::<Name>()?);
        Ok(Decoded::Complete {
            message: RoutingHeader {
                destination,
                source,
            },
            consumed: c.pos(),
        })
    }
}
