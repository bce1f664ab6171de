//! Links over a serial device (`serial:PATH?baud=N`), behind the `serial`
//! feature: the `serialport` crate opens and sets up the device (raw, 8N1,
//! no flow control, at the speed given), and two blocking threads (the
//! `blocking` crate's pool, no async runtime) read and write it, so every
//! runtime gets the same link. Built without the feature, dialling a
//! serial address fails with a [`TransportError::BadAddress`] that says
//! so.

use std::path::Path;

use crate::net::DeviceIo;
use crate::{Address, TransportError};

/// Opens the serial device at `path` at `baud` as a link's byte stream.
#[cfg(feature = "serial")]
pub(crate) fn open(address: &Address, path: &Path, baud: u32) -> Result<DeviceIo, TransportError> {
    use std::io;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use serialport::SerialPort;

    /// How long a read waits before it looks whether the link has ended.
    const POLL: std::time::Duration = std::time::Duration::from_millis(100);

    /// The reading half: waits for bytes until the link ends; a device
    /// that disappears is an error.
    struct Reader {
        port: Box<dyn SerialPort>,
        ended: Arc<AtomicBool>,
    }

    impl io::Read for Reader {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            loop {
                if self.ended.load(Ordering::Relaxed) {
                    return Ok(0);
                }
                match self.port.read(buf) {
                    Err(e) if e.kind() == io::ErrorKind::TimedOut => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    // A serial line has no end of stream: a read of 0 is a
                    // device that went away.
                    Ok(0) if !buf.is_empty() => {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the serial device went away",
                        ))
                    }
                    result => return result,
                }
            }
        }
    }

    /// Tells the reading thread to stop once the link has ended.
    struct Ended(Arc<AtomicBool>);

    impl Drop for Ended {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }

    let connect_error = |e: serialport::Error| TransportError::connect(address, io::Error::from(e));
    let port = serialport::new(path.to_string_lossy(), baud)
        .timeout(POLL)
        .open()
        .map_err(connect_error)?;
    let writer = port.try_clone().map_err(connect_error)?;
    let ended = Arc::new(AtomicBool::new(false));
    let reader = Reader {
        port,
        ended: ended.clone(),
    };
    let io = crate::device::BlockingIo::new(reader, writer).with_guard(Ended(ended));
    Ok(Box::new(io))
}

/// Without the `serial` feature: says how to get it.
#[cfg(not(feature = "serial"))]
pub(crate) fn open(
    address: &Address,
    _path: &Path,
    _baud: u32,
) -> Result<DeviceIo, TransportError> {
    Err(TransportError::BadAddress {
        address: address.to_string(),
        reason: "serial links need the `serial` feature of the transport".into(),
    })
}
