//! The circuit wire codec: bytes to messages and back, with no I/O.
//!
//! Every message of the circuit protocol (PROTOCOL.md) has a type here:
//! [`Name`], the mux [`Frame`] (data or close with an epitaph), [`Identify`],
//! [`NodeState`], [`Quality`], the routed-stream [`RoutingHeader`] and the
//! [`ConnectionHeader`]; and [`is_v0_clean_close`], the epitaph a v0 router
//! gives a clean close.
//!
//! Decoding is incremental: [`Decode::decode`] looks at a byte slice that may
//! hold only part of a message and answers with the message and the number of
//! bytes it used, with the number of bytes it needs at least, or with a typed
//! [`FrameError`]. Decoding a data frame borrows its payload from the input.
//! Encoding writes into a caller's buffer, and [`Encode::encoded_len`] gives
//! the exact size in advance.
//!
//! ```
//! use circuit_frame::{Decode, Decoded, Encode, Frame};
//!
//! let frame = Frame::data(4, b"hello").unwrap();
//! let mut buf = vec![0; frame.encoded_len()];
//! frame.encode(&mut buf).unwrap();
//! assert_eq!(buf, [4, 0, 0, 0, 5, 0, b'h', b'e', b'l', b'l', b'o']);
//!
//! // Half a frame is not an error: the decoder says how much it needs.
//! assert_eq!(Frame::decode(&buf[..3]).unwrap(), Decoded::Incomplete { needed: 6 });
//! match Frame::decode(&buf).unwrap() {
//!     Decoded::Complete { message, consumed } => {
//!         assert_eq!(consumed, 11);
//!         assert_eq!(message, frame);
//!     }
//!     Decoded::Incomplete { .. } => unreachable!(),
//! }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod codec;
mod connection;
mod control;
mod epitaph;
mod error;
mod frame;
mod name;
mod node;
mod quality;

pub use codec::{Decode, Decoded, Encode};
pub use connection::ConnectionHeader;
pub use control::{LinkControl, CREDIT_VERSION, INITIAL_CREDIT, LINK_CONTROL_ID};
pub use epitaph::is_v0_clean_close;
pub use error::FrameError;
pub use frame::{Frame, CLOSE_HEADER_LEN, DATA_HEADER_LEN, MAX_EPITAPH_LEN, MAX_PAYLOAD_LEN};
pub use name::{Name, MAX_NAME_LEN};
pub use node::{Identify, NodeState, RoutingHeader, PROTOCOL_VERSION};
pub use quality::Quality;
