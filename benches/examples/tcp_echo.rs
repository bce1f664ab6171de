//! The plain TCP side of `benches/cli.sh`: a full-duplex TCP echo server
//! and a client that moves the same workload as `circuit bench`, so the
//! command line is measured against plain TCP in the same run.
//!
//! ```text
//! tcp_echo serve 127.0.0.1:7100
//! tcp_echo bench 127.0.0.1:7100 BYTES_PER_STREAM STREAMS [LEAD]
//! ```
//!
//! The server echoes every connection with
//! [`duplex_echo`](circuit_benches::tcp::duplex_echo) (it reads while it
//! writes, 256 KiB buffers). The client opens `STREAMS` connections
//! (`TCP_NODELAY` on) and on each writes `BYTES_PER_STREAM` bytes of a
//! pattern in 256 KiB writes while another task reads the echo in 256 KiB
//! reads and checks every byte, as `circuit bench` does. With `LEAD` (bytes)
//! a connection's writer stays at most that far ahead of the echo its reader
//! has checked, in writes of at most `LEAD`, as `circuit bench --lead` does.
//! It prints one line: `throughput: X MB/s` (MB = 10^6 bytes, echoed bytes
//! over wall time).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use circuit_benches::config::CHUNK;
use circuit_benches::echo::{pattern, shift};
use circuit_benches::runtime::runtime;
use circuit_benches::tcp::{duplex_echo, server_at, ECHO_BUFFER};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

/// The benches' pattern (period `CHUNK`) repeated over `ECHO_BUFFER +
/// CHUNK` bytes: stream `seed` at offset `off` carries
/// `repeated[(off + shift(seed)) % CHUNK..]`, up to `ECHO_BUFFER` bytes at a
/// time.
fn repeated() -> Vec<u8> {
    let pattern = &pattern()[..CHUNK];
    pattern
        .iter()
        .copied()
        .cycle()
        .take(ECHO_BUFFER + CHUNK)
        .collect()
}

fn usage() -> ! {
    eprintln!("usage: tcp_echo serve ADDR | tcp_echo bench ADDR BYTES_PER_STREAM STREAMS [LEAD]");
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = |s: &str| s.parse::<SocketAddr>().unwrap_or_else(|_| usage());
    let number = |s: &str| s.parse::<usize>().unwrap_or_else(|_| usage());
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["serve", at] => {
            let at = addr(at);
            runtime().block_on(async move {
                let (_, _accepting) = server_at(at, duplex_echo).await;
                std::future::pending::<()>().await
            })
        }
        ["bench", to, each, streams, ref lead @ ..] if lead.len() <= 1 => {
            let (to, each, streams) = (addr(to), number(each), number(streams));
            let lead = lead.first().map(|s| number(s).max(1));
            let write_size = lead.unwrap_or(ECHO_BUFFER).min(ECHO_BUFFER);
            let rt = runtime();
            let start = Instant::now();
            let pattern = Arc::new(repeated());
            rt.block_on(async move {
                let mut tasks = Vec::with_capacity(2 * streams);
                for seed in 0..streams {
                    let s = tokio::net::TcpStream::connect(to).await.expect("connect");
                    s.set_nodelay(true).expect("nodelay");
                    let (mut r, mut w) = s.into_split();
                    // Bytes echoed and checked, for the writer's lead.
                    let echoed = Arc::new((AtomicUsize::new(0), Notify::new()));
                    let p = Arc::clone(&pattern);
                    let checked = Arc::clone(&echoed);
                    tasks.push(tokio::spawn(async move {
                        let mut off = 0;
                        while off < each {
                            let start = (off + shift(seed)) % CHUNK;
                            let n = (each - off).min(write_size);
                            if let Some(lead) = lead {
                                loop {
                                    let moved = checked.1.notified();
                                    let ahead = off - checked.0.load(Ordering::Acquire);
                                    if ahead == 0 || ahead + n <= lead {
                                        break;
                                    }
                                    moved.await;
                                }
                            }
                            w.write_all(&p[start..start + n]).await.expect("write");
                            off += n;
                        }
                        w.shutdown().await.expect("shutdown");
                    }));
                    let p = Arc::clone(&pattern);
                    tasks.push(tokio::spawn(async move {
                        let mut buf = vec![0; ECHO_BUFFER];
                        let mut off = 0;
                        loop {
                            let n = r.read(&mut buf).await.expect("read");
                            if n == 0 {
                                break;
                            }
                            let start = (off + shift(seed)) % CHUNK;
                            assert!(off + n <= each, "stream {seed}: echo too long");
                            assert!(
                                buf[..n] == p[start..start + n],
                                "stream {seed}: wrong bytes at {off}"
                            );
                            off += n;
                            echoed.0.store(off, Ordering::Release);
                            echoed.1.notify_one();
                        }
                        assert_eq!(off, each, "stream {seed}: echo ended early");
                    }));
                }
                for task in tasks {
                    task.await.expect("stream task");
                }
            });
            let seconds = start.elapsed().as_secs_f64();
            let bytes = (each * streams) as f64;
            println!(
                "throughput: {:.1} MB/s ({streams} streams x {each} B echoed in {seconds:.2} s)",
                bytes / seconds / 1e6
            );
        }
        _ => usage(),
    }
}
