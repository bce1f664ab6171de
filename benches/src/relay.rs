//! Plain byte relays: the cheapest thing a router could be. A relay
//! accepts a connection, dials its upstream and moves bytes both ways with
//! no protocol at all, so `raw` through a relay is the ceiling of any
//! one-hop router over loopback TCP on the same machine.
//!
//! Two kinds: [`copy`] moves bytes through user space (tokio's
//! `copy_bidirectional` with 256 KiB buffers, as a router that reads and
//! writes does), and, on Linux, [`splice`] moves them inside the kernel
//! with `splice(2)` through a pipe, never copying them to user space.

use std::net::SocketAddr;

use tokio::net::TcpStream;
use tokio::task::AbortHandle;

/// Buffer of each direction of a [`copy`] relay, and the most a
/// [`splice`] relay moves per call. (64 KiB moved the same through `copy`
/// and about 4 % less through `splice`; 1 MiB no more than this.)
const CHUNK: usize = 256 << 10;

/// Relays `s` to a new connection to `upstream` through user space until
/// both directions end; call within the runtime.
pub async fn copy(mut s: TcpStream, upstream: SocketAddr) {
    let mut up = crate::process::connect(upstream).await;
    let _ = tokio::io::copy_bidirectional_with_sizes(&mut s, &mut up, CHUNK, CHUNK).await;
}

/// Listens on loopback and [`copy`]-relays every connection it accepts
/// (`TCP_NODELAY` on) to `upstream`, each in a task of its own; call
/// within the runtime. Returns the address and the handle that stops
/// accepting.
pub async fn copy_server(upstream: SocketAddr) -> (SocketAddr, AbortHandle) {
    crate::tcp::server(move |s| copy(s, upstream)).await
}

/// Relays `s` to a new connection to `upstream` with `splice(2)`: one
/// blocking thread per direction, each moving bytes from its socket into
/// a pipe and from the pipe into the other socket, all in the kernel.
#[cfg(target_os = "linux")]
pub fn splice(s: TcpStream, upstream: SocketAddr) {
    let s = s.into_std().expect("a std socket");
    s.set_nonblocking(false).expect("blocking");
    let up = std::net::TcpStream::connect(upstream).expect("connect upstream");
    up.set_nodelay(true).expect("nodelay");
    let (s2, up2) = (
        s.try_clone().expect("clone socket"),
        up.try_clone().expect("clone socket"),
    );
    std::thread::spawn(move || splice_one_way(&s, &up));
    std::thread::spawn(move || splice_one_way(&up2, &s2));
}

/// Moves everything `from` sends into `to` through a pipe, then shuts
/// down `to`'s sending side.
#[cfg(target_os = "linux")]
fn splice_one_way(from: &std::net::TcpStream, to: &std::net::TcpStream) {
    use rustix::pipe::{fcntl_setpipe_size, pipe, splice, SpliceFlags};

    let (pipe_out, pipe_in) = pipe().expect("a pipe");
    // Room for a few chunks (the default is 64 KiB).
    let _ = fcntl_setpipe_size(&pipe_in, 4 * CHUNK);
    // Not `MORE`: on a TCP socket it corks, holding small writes back for
    // up to 200 ms (a 1-byte echo took 400 ms through the relay with it).
    let flags = SpliceFlags::MOVE;
    loop {
        let n = match splice(from, None, &pipe_in, None, CHUNK, flags) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut left = n;
        while left > 0 {
            match splice(&pipe_out, None, to, None, left, flags) {
                Ok(0) | Err(_) => return,
                Ok(m) => left -= m,
            }
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}
