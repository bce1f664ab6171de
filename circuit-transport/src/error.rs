//! The one error type of the transports (each runtime crate re-exports it).

use std::io;

use circuit_node::NodeError;

use crate::Address;

/// Why listening, dialling or a link failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The address could not be understood: not `host:port` (TCP) or
    /// `unix:PATH`.
    #[error("bad address {address:?}: {reason}")]
    BadAddress {
        /// The address as given.
        address: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The host name of a TCP address did not resolve.
    #[error("cannot resolve {address}: {source}")]
    Resolve {
        /// The address.
        address: Address,
        /// The resolver's error.
        source: io::Error,
    },
    /// Something else listens there already (a TCP port in use, or a Unix
    /// socket path that exists).
    #[error("address {address} is already in use")]
    AddressInUse {
        /// The address.
        address: Address,
        /// The system's error.
        source: io::Error,
    },
    /// Listening failed for another reason (no permission, no such
    /// directory, an address not of this machine).
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address.
        address: Address,
        /// The system's error.
        source: io::Error,
    },
    /// Dialling failed (refused, unreachable, timed out).
    #[error("cannot connect to {address}: {source}")]
    Connect {
        /// The address.
        address: Address,
        /// The system's error.
        source: io::Error,
    },
    /// A command link's command could not be run: it is empty, it did
    /// not start, or it ended (or closed its stdout) before it wrote a
    /// byte.
    #[error("cannot link over `{command}`: {reason}")]
    Command {
        /// The command line.
        command: String,
        /// What happened, with the last line of the command's stderr.
        reason: String,
        /// The last line the command wrote on its stderr, if any.
        stderr: Option<String>,
    },
    /// The link ran and ended with an error of the node layer (handshake,
    /// protocol mismatch, a failed mux).
    #[error(transparent)]
    Link(#[from] NodeError),
    /// The runtime's task running a link panicked or was cancelled (a
    /// tokio `JoinError`, say).
    #[error("link task failed: {reason}")]
    Task {
        /// What the runtime said.
        reason: String,
    },
}
