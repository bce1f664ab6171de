//! Where to listen or dial: a TCP `host:port`, a Unix socket path, a
//! command to link over (`exec:CMD`) or a serial device
//! (`serial:PATH?baud=N`).

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::TransportError;

/// A transport address. Written as text it is `host:port` (or
/// `tcp:host:port`) for TCP, with `host` a name or an IP literal (`[::1]`
/// for IPv6), `unix:PATH` for a Unix socket, `exec:CMD` for a link over
/// the stdin and stdout of `sh -c CMD` (dial only), and
/// `serial:PATH?baud=N` for a serial device (dial only; `baud` defaults to
/// 115200; needs the `serial` feature of the transport).
///
/// ```
/// # use circuit_transport::Address;
/// let tcp: Address = "127.0.0.1:7000".parse().unwrap();
/// assert_eq!(tcp, Address::Tcp("127.0.0.1:7000".into()));
/// let unix: Address = "unix:/run/circuit.sock".parse().unwrap();
/// assert_eq!(unix.to_string(), "unix:/run/circuit.sock");
/// assert!("127.0.0.1".parse::<Address>().is_err()); // no port
/// let exec: Address = "exec:ssh dev circuit node --stdio".parse().unwrap();
/// assert_eq!(exec, Address::Exec("ssh dev circuit node --stdio".into()));
/// let serial: Address = "serial:/dev/ttyUSB0?baud=9600".parse().unwrap();
/// assert_eq!(serial.to_string(), "serial:/dev/ttyUSB0?baud=9600");
/// assert!("exec:".parse::<Address>().is_err()); // no command
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Address {
    /// A TCP address, `host:port`.
    Tcp(String),
    /// A Unix socket path.
    Unix(PathBuf),
    /// A command line, run with `sh -c`; the link rides on its stdin and
    /// stdout (its stderr is logged).
    Exec(String),
    /// A serial device and its speed.
    Serial {
        /// The device, as `/dev/ttyUSB0`.
        path: PathBuf,
        /// The speed in baud.
        baud: u32,
    },
}

/// The speed of a `serial:` address that names none.
pub const DEFAULT_BAUD: u32 = 115_200;

impl Address {
    /// Reads an address written as described on [`Address`].
    pub fn parse(text: &str) -> Result<Address, TransportError> {
        let bad = |reason: &str| TransportError::BadAddress {
            address: text.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some(path) = text.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(bad("a Unix socket address needs a path after `unix:`"));
            }
            return Ok(Address::Unix(PathBuf::from(path)));
        }
        if let Some(command) = text.strip_prefix("exec:") {
            if command.trim().is_empty() {
                return Err(TransportError::Command {
                    command: command.to_owned(),
                    reason: "the command is empty: write it after `exec:`".into(),
                    stderr: None,
                });
            }
            return Ok(Address::Exec(command.to_owned()));
        }
        if let Some(device) = text.strip_prefix("serial:") {
            return parse_serial(device).map_err(|reason| bad(&reason));
        }
        let tcp = text.strip_prefix("tcp:").unwrap_or(text);
        let Some((host, port)) = tcp.rsplit_once(':') else {
            return Err(bad("expected host:port or unix:PATH"));
        };
        if host.is_empty() {
            return Err(bad("the host is missing"));
        }
        if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
            return Err(bad("write an IPv6 host in brackets, as [::1]:port"));
        }
        if port.parse::<u16>().is_err() {
            return Err(bad("the port must be a number from 0 to 65535"));
        }
        Ok(Address::Tcp(tcp.to_owned()))
    }

    /// A Unix socket address.
    pub fn unix(path: impl AsRef<Path>) -> Address {
        Address::Unix(path.as_ref().to_path_buf())
    }
}

/// A serial address after `serial:`: `PATH` or `PATH?baud=N`.
fn parse_serial(device: &str) -> Result<Address, String> {
    let (path, query) = match device.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (device, None),
    };
    if path.is_empty() {
        return Err("a serial address needs a device path after `serial:`".into());
    }
    let mut baud = DEFAULT_BAUD;
    for option in query.into_iter().flat_map(|q| q.split('&')) {
        match option.split_once('=') {
            Some(("baud", value)) => {
                baud = value
                    .parse()
                    .ok()
                    .filter(|&baud: &u32| baud > 0)
                    .ok_or("the baud rate must be a number above 0")?;
            }
            _ => {
                return Err(format!(
                    "unknown serial option {option:?}: the one option is baud=N"
                ))
            }
        }
    }
    Ok(Address::Serial {
        path: PathBuf::from(path),
        baud,
    })
}

impl FromStr for Address {
    type Err = TransportError;

    fn from_str(text: &str) -> Result<Address, TransportError> {
        Address::parse(text)
    }
}

impl From<SocketAddr> for Address {
    fn from(addr: SocketAddr) -> Address {
        Address::Tcp(addr.to_string())
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp(addr) => f.write_str(addr),
            Address::Unix(path) => write!(f, "unix:{}", path.display()),
            Address::Exec(command) => write!(f, "exec:{command}"),
            Address::Serial { path, baud } => write!(f, "serial:{}?baud={baud}", path.display()),
        }
    }
}

/// Anything a transport's `listen` and `connect` take as an address: text (parsed as [`Address::parse`] does), a
/// [`SocketAddr`], or an [`Address`].
pub trait ToAddress {
    /// The address, or why it is not one.
    fn to_address(&self) -> Result<Address, TransportError>;
}

impl ToAddress for str {
    fn to_address(&self) -> Result<Address, TransportError> {
        Address::parse(self)
    }
}

impl ToAddress for String {
    fn to_address(&self) -> Result<Address, TransportError> {
        Address::parse(self)
    }
}

impl ToAddress for SocketAddr {
    fn to_address(&self) -> Result<Address, TransportError> {
        Ok(Address::from(*self))
    }
}

impl ToAddress for Address {
    fn to_address(&self) -> Result<Address, TransportError> {
        Ok(self.clone())
    }
}

impl<T: ToAddress + ?Sized> ToAddress for &T {
    fn to_address(&self) -> Result<Address, TransportError> {
        (**self).to_address()
    }
}
