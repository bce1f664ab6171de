//! The one error type of the command, and the exit status of each error.

use std::io;
use std::process::ExitCode;
use std::time::Duration;

use circuit_node::NodeError;
use circuit_transport_tokio::TransportError;

/// Why a command failed. Its `Display` is the one line printed after
/// `error: `; [`CliError::exit_code`] is the process's exit status.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A node name, peer name or protocol is over 255 bytes.
    #[error("{what} is {len} bytes long; a name is at most 255 bytes")]
    NameTooLong {
        /// Which name (e.g. "--name").
        what: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// Listening or dialling failed before any link was up.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// A link ended with an error (protocol mismatch, handshake, mux).
    #[error("link to {address}: {source}")]
    Link {
        /// The address dialled.
        address: String,
        /// Why it ended.
        source: TransportError,
    },
    /// A link ended cleanly while it was still needed.
    #[error("link to {address} closed by the peer")]
    LinkClosed {
        /// The address dialled.
        address: String,
    },
    /// A peer did not become reachable within the timeout.
    #[error(
        "peer {peer} is not reachable through {via} (waited {waited:?}; reachable: {reachable})"
    )]
    Unreachable {
        /// The node asked for.
        peer: String,
        /// The address dialled.
        via: String,
        /// How long we waited.
        waited: Duration,
        /// The nodes that were reachable, for a hint.
        reachable: String,
    },
    /// Some other wait ran out.
    #[error("timed out after {waited:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        waited: Duration,
    },
    /// An error of the node layer (opening a stream, a stream failing).
    #[error(transparent)]
    Node(#[from] NodeError),
    /// Local I/O failed (a socket, stdin, stdout, a stream).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The system's error.
        source: io::Error,
    },
    /// A bench echo differed from what was sent.
    #[error("echo mismatch on stream {stream} at byte {offset}")]
    Mismatch {
        /// The stream's number.
        stream: u32,
        /// The first byte that differs.
        offset: u64,
    },
    /// Options that do not go together (beyond what clap checks).
    #[error("{0}")]
    Usage(&'static str),
}

impl CliError {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> CliError {
        let context = context.into();
        move |source| CliError::Io { context, source }
    }

    /// The exit status for this error (listed in `circuit --help`).
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            CliError::NameTooLong { .. } | CliError::Usage(_) => 2,
            CliError::Transport(e) | CliError::Link { source: e, .. } => transport_code(e),
            CliError::Node(e) => node_code(e),
            CliError::Unreachable { .. } | CliError::Timeout { .. } => 4,
            CliError::Mismatch { .. } => 6,
            CliError::LinkClosed { .. } | CliError::Io { .. } => 1,
        })
    }
}

fn transport_code(e: &TransportError) -> u8 {
    match e {
        TransportError::BadAddress { .. } => 2,
        TransportError::AddressInUse { .. } | TransportError::Listen { .. } => 3,
        TransportError::Resolve { .. }
        | TransportError::Connect { .. }
        | TransportError::Command { .. } => 4,
        TransportError::Link(e) => node_code(e),
        _ => 1,
    }
}

fn node_code(e: &NodeError) -> u8 {
    match e {
        NodeError::InvalidName(_) => 2,
        NodeError::NoSuchPeer { .. } => 4,
        NodeError::ProtocolMismatch { .. } | NodeError::VersionMismatch { .. } => 5,
        _ => 1,
    }
}
