//! Pipes bytes through one circuit stream, from a writer thread to a reader
//! thread, and prints the throughput.
//!
//! ```sh
//! cargo run --release --example pipe_throughput -p circuit-stream
//! cargo run --release --example pipe_throughput -p circuit-stream -- 4096 64
//! ```
//!
//! Arguments: MiB to send (default 1024), pipe capacity in KiB (default the
//! crate's default, 256). The writer sends 64 KiB `write_all`s, the largest
//! payload of a circuit data frame; the reader copies out up to 64 KiB of
//! whatever is buffered in each `read`. No runtime: each end runs `futures::executor::block_on` on
//! its own thread and the pipe's wakers do the rest.

use std::process::ExitCode;
use std::thread;
use std::time::Instant;

use circuit_stream::{StreamError, DEFAULT_CAPACITY};
use futures::executor::block_on;

/// The size of each write: one full data frame.
const CHUNK: usize = 65_535;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mib: u64 = match args.next().map(|a| a.parse()) {
        None => 1024,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => return usage(),
    };
    let capacity: usize = match args.next().map(|a| a.parse::<usize>()) {
        None => DEFAULT_CAPACITY,
        Some(Ok(kib)) if kib > 0 => kib * 1024,
        Some(_) => return usage(),
    };
    let total = mib * 1024 * 1024;

    let (reader, writer) = circuit_stream::stream_with_capacity(capacity);

    // A pattern the reader can check: byte i of the stream is i % 251.
    let pattern: Vec<u8> = (0..CHUNK + 251).map(|i| (i % 251) as u8).collect();

    let start = Instant::now();
    let sender = thread::spawn(move || {
        block_on(async {
            let mut sent: u64 = 0;
            while sent < total {
                let len = (total - sent).min(CHUNK as u64) as usize;
                let offset = (sent % 251) as usize;
                writer.write_all(&pattern[offset..offset + len]).await?;
                sent += len as u64;
            }
            writer.close_without_reason();
            Ok::<u64, StreamError>(sent)
        })
    });

    // The reader copies what it reads out of the pipe, as an application
    // would, and checks the first and last byte of each read.
    let received = block_on(async {
        let mut sink = vec![0u8; CHUNK];
        let mut received: u64 = 0;
        let mut reads: u64 = 0;
        loop {
            let step = reader
                .read(1, |buf| {
                    let n = buf.len().min(sink.len());
                    sink[..n].copy_from_slice(&buf[..n]);
                    let first_ok = sink[0] == (received % 251) as u8;
                    let last_ok = sink[n - 1] == ((received + n as u64 - 1) % 251) as u8;
                    ((n, first_ok && last_ok), n)
                })
                .await;
            match step {
                Ok((n, true)) => {
                    received += n as u64;
                    reads += 1;
                }
                Ok((_, false)) => return Err(format!("wrong bytes at offset {received}")),
                Err(StreamError::Closed(None)) => return Ok((received, reads)),
                Err(e) => return Err(format!("read failed: {e}")),
            }
        }
    });
    let elapsed = start.elapsed();

    let sent = match sender.join() {
        Ok(Ok(sent)) => sent,
        Ok(Err(e)) => {
            eprintln!("write failed: {e}");
            return ExitCode::FAILURE;
        }
        Err(_) => {
            eprintln!("the writer thread panicked");
            return ExitCode::FAILURE;
        }
    };
    let (received, reads) = match received {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if received != sent {
        eprintln!("sent {sent} bytes but received {received}");
        return ExitCode::FAILURE;
    }

    let secs = elapsed.as_secs_f64();
    println!(
        "piped {} MiB through a circuit stream (capacity {} KiB) in {:.3} s: \
         {:.2} GiB/s, {} reads of {:.1} KiB on average",
        mib,
        capacity / 1024,
        secs,
        received as f64 / secs / (1024.0 * 1024.0 * 1024.0),
        reads,
        received as f64 / reads.max(1) as f64 / 1024.0,
    );
    ExitCode::SUCCESS
}

fn usage() -> ExitCode {
    eprintln!("usage: pipe_throughput [MiB to send, default 1024] [capacity KiB, default 256]");
    ExitCode::FAILURE
}
