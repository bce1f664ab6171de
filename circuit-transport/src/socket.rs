//! What every runtime's sockets share: the quality a TCP link gets, the
//! errors of binding and resolving, how a link's end is logged.

use std::io;
use std::net::SocketAddr;

use circuit_frame::Quality;

use crate::{Address, TransportError};

/// The quality of a TCP link to `peer` (the socket's peer address):
/// `LOCAL_SOCKET` over loopback, `NETWORK` otherwise.
pub fn tcp_quality(peer: io::Result<SocketAddr>) -> Quality {
    match peer {
        Ok(peer) if peer.ip().is_loopback() => Quality::LOCAL_SOCKET,
        _ => Quality::NETWORK,
    }
}

/// The addresses a host name resolved to, or why there are none.
pub fn resolved(
    address: &Address,
    lookup: io::Result<Vec<SocketAddr>>,
) -> Result<Vec<SocketAddr>, TransportError> {
    let resolve_error = |source| TransportError::Resolve {
        address: address.clone(),
        source,
    };
    let addrs = lookup.map_err(resolve_error)?;
    if addrs.is_empty() {
        return Err(resolve_error(io::Error::new(
            io::ErrorKind::NotFound,
            "the name has no address",
        )));
    }
    Ok(addrs)
}

impl TransportError {
    /// Binding `address` failed with `source`: in use, or another reason.
    pub fn bind(address: &Address, source: io::Error) -> TransportError {
        if source.kind() == io::ErrorKind::AddrInUse {
            TransportError::AddressInUse {
                address: address.clone(),
                source,
            }
        } else {
            TransportError::Listen {
                address: address.clone(),
                source,
            }
        }
    }

    /// Dialling `address` failed with `source`.
    pub fn connect(address: &Address, source: io::Error) -> TransportError {
        TransportError::Connect {
            address: address.clone(),
            source,
        }
    }

    /// `address` is of a kind this transport cannot use here (a Unix
    /// socket on a platform without them).
    pub fn unsupported(address: &Address) -> TransportError {
        TransportError::BadAddress {
            address: address.to_string(),
            reason: "this kind of address is not supported on this platform".into(),
        }
    }
}
