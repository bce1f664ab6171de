//! Many independent byte streams multiplexed over one link, wire-compatible
//! with the original circuit mux (PROTOCOL.md section 1).
//!
//! A link is any futures-io `AsyncRead + AsyncWrite`: a TCP or Unix socket
//! (through the transport crates), a serial line, an in-process
//! [`circuit_stream`] pair. [`Mux::new`] gives three things: the [`Mux`]
//! handle that opens streams, the [`Incoming`] stream of streams the peer
//! opened, and the [`Driver`] future that runs the link. Nothing spawns
//! behind your back: poll or spawn the driver on the executor you use.
//!
//! Underneath is a sans-IO [`Core`]: link bytes in, frames out, no I/O and
//! no clock. The driver reads the link in large chunks and writes frames
//! gathered from many streams at once, with no flush per frame.
//!
//! # Behaviour
//!
//! - **Ids.** The [`Role::Server`] (the end that accepted the link) opens
//!   odd ids, the [`Role::Client`] even ones. Ids are never reused; when a
//!   parity runs out, [`Mux::open`] fails with [`MuxError::IdsExhausted`].
//! - **Lazy open.** A stream exists for the peer from its first data frame.
//!   A stream opened and closed without data puts nothing on the wire.
//! - **Half-close.** Closing the writing half sends a close frame carrying
//!   the epitaph; the other direction keeps flowing. The epitaph the peer
//!   sends is what the local reader's `closed_reason` reports. Reads end
//!   cleanly (end of file) when it is empty or has the shape a v0 router
//!   gives a clean close, `{name} reported: ... {name} reported no
//!   epitaph` ([`circuit_frame::is_v0_clean_close`], PROTOCOL.md 2.4);
//!   any other epitaph ends them with an error. A stream spliced onto
//!   another link passes either on unchanged.
//! - **Fairness.** Streams with data to send take turns, one frame (up to
//!   64 KiB) each per turn; a stream with no other waiting may send up to
//!   four frames in one turn. The frames picked wait in a bounded send
//!   queue (about [`Config::write_buffer`]), their payloads moved out of
//!   the streams' pipes, and the driver writes them, vectored, holding no
//!   lock.
//! - **Bounded memory.** A stream's outgoing pipe is bounded: writers
//!   wait once it holds the stream's share of the link's send buffer
//!   ([`Config::link_send_buffer`], 4 MiB shared out, 64 KiB to
//!   [`Config::stream_send_buffer`] each). Each stream may hold
//!   [`Config::stream_receive_limit`] received bytes not yet read (default
//!   1 MiB) and the link [`Config::link_receive_limit`] (default 32 MiB).
//!   The table of closed ids is kept as ranges, with a bounded count.
//! - **Ending.** On end of link, on an I/O error or on a protocol error
//!   every open stream is closed with an epitaph that says why and the
//!   driver returns; a protocol error names the stream id.
//! - **Closing.** [`Mux::close`] closes the link gracefully: new streams
//!   are refused, every stream gets a close frame with the epitaph, the
//!   driver flushes them, closes the link's io and returns `Ok(())`; the
//!   future it returns resolves then.
//! - **Observing closes.** A stream may be given a [`StreamObserver`]
//!   ([`Mux::attach_observed`], [`Mux::observe`]): a callback told, with
//!   the epitaph and a [`CloseCause`], when the mux closes a direction of
//!   that stream (the peer's close frame, the link's end, a cut by
//!   [`Mux::close_streams`]). A router reports which hop closed a stream
//!   it forwards with it. Streams without one pay nothing.
//!
//! # Credit flow control and head-of-line blocking
//!
//! Every link negotiates PROTOCOL.md section 4's per-stream credit
//! ([`Config::credit`], [`CreditMode::Auto`] by default): the server offers
//! HELLO right after its first data frame, a credit-capable client answers,
//! and a v0 peer (the original) answers with an empty close and the link
//! stays in v0 mode. On a link in credit mode each stream opened after the
//! HELLOs starts with 64 KiB of credit each way; a sender never passes it,
//! a stream out of credit waits while the others go on, and the receiver
//! grants more (CREDIT, sent ahead of data) as the application reads, in
//! batches of a quarter of a window. A window doubles when the peer had
//! used all its credit, or when its reader took that quarter within two
//! round trips (measured with PING / PONG; never less than 2 ms, so that
//! a link whose round trip is shorter than a read still lets a fast
//! reader's window grow), up to
//! [`Config::stream_receive_limit`], while the link's windows together stay
//! within [`Config::link_receive_limit`]. So one slow reader holds only its
//! own window, and the link is never left unread for it: memory held for
//! streams under credit is at most `max(link_receive_limit, n x 64 KiB)`
//! for `n` such streams. A stream whose reader was dropped has what comes
//! for it discarded and credited back at once, so its peer's writer is
//! never left waiting. [`Counters`] say the mode, the streams waiting for
//! credit, the bytes granted and the round-trip estimate.
//!
//! On a v0 link (and for the streams of a credit link opened before the
//! HELLOs crossed) section 1's rules hold: when one stream reaches its
//! receive limit, or all streams together reach the link's, the mux stops
//! reading the link until the application reads, and every other stream of
//! that link waits too. Read every stream you accept, or drop its reader:
//! data for a dropped reader is discarded, not buffered.
//!
//! Receiving rules where this mux differs from the original: a close frame
//! for an unknown id of the peer's parity is taken as a stream opened and
//! closed empty (the original fails the link), and a truncated frame at end
//! of link closes every stream with an epitaph that says so (the bytes of
//! that frame which did arrive reach its reader first, then the error).
//!
//! # Copies
//!
//! A data frame is delivered as its bytes arrive. A large payload is read
//! from the link straight into its stream's pipe (with the next frame's
//! header in the same read), and a large frame's payload is moved out of
//! its stream's pipe (the block it was written into, not a copy) and written to the
//! link with its header in one vectored write, so in bulk a byte is
//! copied in user space only by the application's own write and read.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod config;
mod core;
mod counters;
mod driver;
mod error;
mod handle;
mod ids;
mod observe;
mod ready;
mod send;
mod stream;

pub use crate::core::{Core, Progress, RESERVED_STREAM_ID};
pub use config::{Config, CreditMode, Sleeper};
pub use counters::{Counters, LinkMode};
pub use driver::Driver;
pub use error::{AttachError, MuxError};
pub use handle::{
    Close, ErrorReporter, Incoming, IncomingStream, Mux, StreamFailure, StreamFailures,
};
pub use ids::Role;
pub use observe::{CloseCause, CloseDirection, StreamClose, StreamObserver};
pub use stream::MuxStream;
