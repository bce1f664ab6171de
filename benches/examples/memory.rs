//! Memory of a circuit link, measured in processes of their own (issue 16,
//! "Memory"; the figures and how to read them are in benches/README.md,
//! section "memory").
//!
//! Two workloads, each run with credit flow control (`CreditMode::Auto` on
//! both ends, the default) and with v0 framing (`CreditMode::Off` on both
//! ends):
//!
//! - **W1**: one stream echoes 256 MiB over loopback TCP, written in
//!   64 KiB writes, every echoed byte read back and checked (the W1 of
//!   benches/README.md). The echo server is a `circuit_mux::Mux` with the
//!   default `Config` in a process of its own, echoing every stream as the
//!   mux bench's server does; the client is another process. Reported for
//!   each: its resident set before the link is made (`VmRSS`), its peak
//!   resident set over its whole life (`VmHWM`), and the difference.
//!   Target: the echo server's peak at most 10 MiB. The peak varies from
//!   run to run (how far the buffers grew): W1 runs 5 times per mode, each
//!   time in fresh processes, and the table gives the median and the range.
//! - **idle**: one link over loopback TCP; the client opens 10,000 streams
//!   on it and writes one byte on each; the server accepts each, reads its
//!   byte and keeps the stream (no task per stream: the streams sit in a
//!   `Vec`). Reported for each side: its resident set once the link is up
//!   and settled (one warm-up stream echoed a byte), then with the 10,000
//!   streams open, and the growth per stream. Target: at most 1 KiB per
//!   stream. The streams are opened all at once, then (in fresh processes)
//!   paced: 100 at a time, each batch read by the server before the next,
//!   which leaves out the bytes a burst holds before they are read. The
//!   server's `max_incoming_streams` (default 1,024) is raised to fit: at
//!   the default, streams past the 1,024th are refused.
//!
//! In credit mode a warm-up stream echoes one byte first and the client
//! waits until the link's mode is settled, so that the measured streams
//! run under credit (a stream whose first frame went before the HELLOs
//! crossed keeps v0 rules).
//!
//! Each process is this executable again, told its role in the
//! environment; it runs a tokio runtime of 2 workers (the baseline set-up)
//! and exits when its stdin closes. The parent reads `/proc/<pid>/status`
//! (Linux only) between steps, which each child announces on its stdout.
//!
//! Run: `cargo run --release -p circuit-benches --example memory`
//! (`-- w1` or `-- idle` for one workload; `-- idle 1000` for another
//! stream count).

use std::io::{BufRead, BufReader, Lines, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use circuit_benches::config::MIB;
use circuit_benches::echo::{echo, receive, send};
use circuit_benches::runtime::runtime;
use circuit_mux::{Config, CreditMode, LinkMode, Mux, MuxStream, Role};
use circuit_transport_tokio::FuturesIo;
use futures::io::{AsyncReadExt, AsyncWriteExt};
use futures::StreamExt;
use tokio::net::{TcpListener, TcpStream};

/// The variable that tells a child its role.
const ROLE: &str = "CIRCUIT_MEMORY_ROLE";
/// The variable that tells a child the credit mode (`auto` or `off`).
const MODE: &str = "CIRCUIT_MEMORY_MODE";
/// The variable that tells a child the server's port.
const PORT: &str = "CIRCUIT_MEMORY_PORT";
/// The variable that tells a child how many idle streams to open or hold.
const STREAMS: &str = "CIRCUIT_MEMORY_STREAMS";
/// The variable that tells a child how many idle streams to open before
/// the server has read them all.
const BATCH: &str = "CIRCUIT_MEMORY_BATCH";

/// Bytes W1 echoes.
const W1: usize = 256 * MIB;
/// W1 runs per mode: the server's peak varies from run to run.
const W1_RUNS: usize = 5;
/// Idle streams opened by default.
const IDLE_STREAMS: usize = 10_000;
/// Streams opened at a time when the idle streams are opened paced.
const PACED: usize = 100;
/// The W1 target: the echo server's peak resident set, in KiB.
const W1_TARGET_KIB: u64 = 10 << 10;
/// The idle target: resident bytes per idle stream.
const IDLE_TARGET: f64 = 1024.0;

fn main() {
    if let Ok(role) = std::env::var(ROLE) {
        child(&role);
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let only = args.first().map(String::as_str);
    let streams = args
        .get(1)
        .map(|n| n.parse().expect("a stream count"))
        .unwrap_or(IDLE_STREAMS);
    assert!(
        std::fs::metadata("/proc/self/status").is_ok(),
        "this measurement reads /proc/<pid>/status: Linux only"
    );
    let modes = [CreditMode::Auto, CreditMode::Off];
    if only.is_none_or(|o| o == "w1") {
        let rows: Vec<_> = (0..W1_RUNS)
            .flat_map(|_| modes.iter().map(|&m| w1(m)))
            .collect();
        print_w1(&rows);
    }
    if only.is_none_or(|o| o == "idle") {
        let rows: Vec<_> = [streams, PACED.min(streams)]
            .iter()
            .flat_map(|&batch| modes.iter().map(move |&m| idle(m, streams, batch)))
            .collect();
        print_idle(&rows, streams);
    }
}

// ---------------------------------------------------------------- parent

/// What `/proc/<pid>/status` says of a process's memory, in KiB.
#[derive(Debug, Clone, Copy)]
struct Mem {
    /// Resident now.
    rss: u64,
    /// The most resident so far.
    hwm: u64,
    /// Resident and anonymous (heap, stacks) now.
    anon: u64,
}

/// The memory of process `pid` now.
fn mem(pid: u32) -> Mem {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("a child's status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    Mem {
        rss: field("VmRSS:"),
        hwm: field("VmHWM:"),
        anon: field("RssAnon:"),
    }
}

/// A child process: this executable in a role; killed when dropped.
struct Proc {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Proc {
    fn spawn(role: &str, mode: CreditMode, env: &[(&str, String)]) -> Proc {
        let exe = std::env::current_exe().expect("this executable");
        let mut command = Command::new(exe);
        command
            .env(ROLE, role)
            .env(MODE, mode_name(mode))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("start a child");
        let stdin = child.stdin.take().expect("its stdin");
        let lines = BufReader::new(child.stdout.take().expect("its stdout")).lines();
        Proc {
            child,
            stdin,
            lines,
        }
    }

    /// The child's next line, which must start with `word`; the rest.
    fn expect(&mut self, word: &str) -> String {
        let line = self
            .lines
            .next()
            .expect("the child ended early")
            .expect("the child's stdout");
        match line.strip_prefix(word) {
            Some(rest) => rest.trim().to_owned(),
            None => panic!("the child said {line:?}, not {word}"),
        }
    }

    /// Tells the child to go on to its next step.
    fn go(&mut self) {
        writeln!(self.stdin, "go").expect("tell the child");
        self.stdin.flush().expect("tell the child");
    }

    fn mem(&self) -> Mem {
        mem(self.child.id())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mode_name(mode: CreditMode) -> &'static str {
    match mode {
        CreditMode::Off => "off",
        _ => "auto",
    }
}

/// One W1 run: the two processes' memory before and after, and what the
/// client said (time, link mode).
struct W1Row {
    mode: CreditMode,
    server: (Mem, Mem),
    client: (Mem, Mem),
    said: String,
}

fn w1(mode: CreditMode) -> W1Row {
    let mut server = Proc::spawn(
        "server",
        mode,
        &[(STREAMS, "0".into()), (BATCH, "1".into())],
    );
    let port = server.expect("port");
    let server_before = server.mem();
    let mut client = Proc::spawn("w1", mode, &[(PORT, port)]);
    client.expect("ready");
    let client_before = client.mem();
    client.go();
    let said = client.expect("done");
    W1Row {
        mode,
        server: (server_before, server.mem()),
        client: (client_before, client.mem()),
        said,
    }
}

/// One idle run: both processes' memory with the link settled and with
/// the streams open, and what each said.
struct IdleRow {
    mode: CreditMode,
    batch: usize,
    server: (Mem, Mem),
    client: (Mem, Mem),
    server_said: String,
    client_said: String,
}

/// The idle streams opened `batch` at a time: the client opens a batch,
/// then waits until the server has read every stream's byte.
fn idle(mode: CreditMode, streams: usize, batch: usize) -> IdleRow {
    let env = [(STREAMS, streams.to_string()), (BATCH, batch.to_string())];
    let mut server = Proc::spawn("server", mode, &env);
    let port = server.expect("port");
    let mut client = Proc::spawn("idle", mode, &[&env[..], &[(PORT, port)]].concat());
    client.expect("linked");
    let before = (server.mem(), client.mem());
    client.go();
    for _ in 1..streams.div_ceil(batch) {
        client.expect("batch");
        server.expect("at");
        client.go();
    }
    let client_said = client.expect("opened");
    let server_said = server.expect("held");
    IdleRow {
        mode,
        batch,
        server: (before.0, server.mem()),
        client: (before.1, client.mem()),
        server_said,
        client_said,
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

fn signed_mib(kib: i64) -> String {
    format!("{:+.1}", kib as f64 / 1024.0)
}

fn print_w1(rows: &[W1Row]) {
    println!(
        "W1: one stream echoes {} MiB over loopback TCP, {W1_RUNS} runs per mode, \
         fresh processes each run; MiB (2^20 bytes) resident",
        W1 / MIB
    );
    println!(
        "before: VmRSS before the link (median); peak: VmHWM after the stream, \
         the peak of the process's life (median, min-max); anon: RssAnon then (median)"
    );
    println!();
    println!("| process | mode | before | peak | peak - before | anon | runs within 10 MiB |");
    println!("|---|---|---|---|---|---|---|");
    for mode in [CreditMode::Auto, CreditMode::Off] {
        let runs: Vec<&W1Row> = rows.iter().filter(|r| r.mode == mode).collect();
        for who in ["echo server", "client"] {
            let pick = |r: &W1Row| match who {
                "echo server" => r.server,
                _ => r.client,
            };
            let before = median(runs.iter().map(|r| pick(r).0.rss));
            let peaks: Vec<u64> = runs.iter().map(|r| pick(r).1.hwm).collect();
            let peak = median(peaks.iter().copied());
            let anon = median(runs.iter().map(|r| pick(r).1.anon));
            let within = match who {
                "echo server" => format!(
                    "{} of {}",
                    peaks.iter().filter(|&&p| p <= W1_TARGET_KIB).count(),
                    peaks.len()
                ),
                _ => "(no target)".to_owned(),
            };
            println!(
                "| {who} | {} | {} | {} ({}-{}) | {} | {} | {within} |",
                mode_label(mode),
                mib(before),
                mib(peak),
                mib(*peaks.iter().min().expect("runs")),
                mib(*peaks.iter().max().expect("runs")),
                signed_mib(peak as i64 - before as i64),
                mib(anon),
            );
        }
    }
    println!();
    for r in rows {
        println!("{}: client said {}", mode_label(r.mode), r.said);
    }
    println!();
}

/// The median of some figures (the upper one of an even count).
fn median(values: impl Iterator<Item = u64>) -> u64 {
    let mut v: Vec<u64> = values.collect();
    v.sort_unstable();
    v[v.len() / 2]
}

fn print_idle(rows: &[IdleRow], streams: usize) {
    println!(
        "idle: {streams} streams open on one link over loopback TCP, one byte delivered on each; \
         MiB resident (VmRSS)"
    );
    println!(
        "opened: all at once, or paced ({PACED} at a time, each batch read by the server \
         before the next); linked: the link up and settled; open: with the streams open"
    );
    println!();
    println!(
        "| side | mode | opened | linked | open | growth | per stream | within 1 KiB | peak (VmHWM) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        for (who, (before, after)) in [("server", r.server), ("client", r.client)] {
            let growth = after.rss as i64 - before.rss as i64;
            let per = growth as f64 * 1024.0 / streams as f64;
            println!(
                "| {who} | {} | {} | {} | {} | {} | {per:.0} B | {} | {} |",
                mode_label(r.mode),
                opened(r.batch, streams),
                mib(before.rss),
                mib(after.rss),
                signed_mib(growth),
                if per <= IDLE_TARGET { "yes" } else { "NO" },
                mib(after.hwm),
            );
        }
    }
    println!();
    for r in rows {
        println!(
            "{}, {}: server said {}; client said {}",
            mode_label(r.mode),
            opened(r.batch, streams),
            r.server_said,
            r.client_said
        );
    }
}

fn opened(batch: usize, streams: usize) -> &'static str {
    if batch >= streams {
        "at once"
    } else {
        "paced"
    }
}

fn mode_label(mode: CreditMode) -> &'static str {
    match mode {
        CreditMode::Off => "v0",
        _ => "credit",
    }
}

// ---------------------------------------------------------------- children

fn env<T: std::str::FromStr>(name: &str) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} unset or wrong"))
}

/// Announces a step to the parent.
fn say(line: &str) {
    let mut out = std::io::stdout();
    writeln!(out, "{line}").expect("tell the parent");
    out.flush().expect("tell the parent");
}

/// Each "go" the parent writes, in order; the process exits when its
/// stdin closes, so it never outlives the parent.
fn gos() -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            match line {
                Ok(l) if l.trim() == "go" => {
                    let _ = tx.send(());
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        std::process::exit(0);
    });
    rx
}

fn child(role: &str) {
    let go = gos();
    // CreditMode parses what mode_name wrote.
    let config = Config::default().credit(env::<CreditMode>(MODE));
    let rt = runtime();
    match role {
        "server" => rt.block_on(server(config, env(STREAMS), env(BATCH))),
        "w1" => {
            say("ready");
            go.recv().expect("go");
            rt.block_on(w1_client(config, env(PORT)));
        }
        "idle" => rt.block_on(idle_client(config, env(PORT), env(STREAMS), env(BATCH), go)),
        other => panic!("no role {other}"),
    }
    // Stay, for the parent to read our memory, until stdin closes.
    loop {
        std::thread::park();
    }
}

/// The server: accepts one link. With `hold` of 0 it echoes every
/// stream; otherwise the first stream echoes (the warm-up) and each next
/// one is read its byte and kept; it says `at` each time it holds a
/// multiple of `batch` fewer than `hold`, and `held` once it holds `hold`.
async fn server(config: Config, hold: usize, batch: usize) {
    let config = match hold {
        0 => config,
        // One more for the warm-up stream.
        n => config.max_incoming_streams(n + 1),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("its address").port();
    say(&format!("port {port}"));
    let (s, _) = listener.accept().await.expect("accept");
    s.set_nodelay(true).expect("nodelay");
    let (mux, mut incoming, driver) = Mux::new(FuturesIo::new(s), Role::Server, config);
    tokio::spawn(driver);
    if hold == 0 {
        while let Some(s) = incoming.next().await {
            tokio::spawn(echo(s.into_stream()));
        }
        return;
    }
    let mut held: Vec<MuxStream> = Vec::with_capacity(hold + 1);
    let mut byte = [0];
    if let Some(s) = incoming.next().await {
        let mut s = s.into_stream();
        s.read_exact(&mut byte).await.expect("the warm-up byte");
        s.write_all(&byte).await.expect("echo the warm-up byte");
        s.flush().await.expect("flush");
        held.push(s);
    }
    while held.len() <= hold {
        let Some(s) = incoming.next().await else {
            panic!("the link ended with {} streams held", held.len() - 1);
        };
        let mut s = s.into_stream();
        s.read_exact(&mut byte).await.expect("a stream's byte");
        held.push(s);
        let n = held.len() - 1;
        if n % batch == 0 && n < hold {
            say(&format!("at {n}"));
        }
    }
    let c = mux.counters();
    say(&format!(
        "held {} streams; open {}, refused {}, mode {:?}",
        held.len() - 1,
        c.streams_open,
        c.streams_refused,
        c.mode
    ));
    std::future::pending::<()>().await;
}

/// Connects to the server in `config`'s mode; in credit mode, echoes a
/// byte on a warm-up stream and waits until the link is in credit mode.
async fn link(config: Config, port: u16) -> (Mux, Option<MuxStream>) {
    let credit = config.get_credit() != CreditMode::Off;
    let s = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .expect("connect");
    s.set_nodelay(true).expect("nodelay");
    let (mux, _incoming, driver) = Mux::new(FuturesIo::new(s), Role::Client, config);
    tokio::spawn(driver);
    let mut warm = mux.open().expect("open");
    warm.write_all(b"?").await.expect("write");
    warm.flush().await.expect("flush");
    let mut byte = [0];
    warm.read_exact(&mut byte).await.expect("the warm-up echo");
    let mode = mux.mode_settled().await;
    let want = if credit {
        LinkMode::Credit
    } else {
        LinkMode::V0
    };
    assert_eq!(mode, want, "the link settled in the wrong mode");
    (mux, Some(warm))
}

async fn w1_client(config: Config, port: u16) {
    let (mux, _warm) = link(config, port).await;
    let start = Instant::now();
    let (r, w) = mux.open().expect("open").into_split();
    let writer = tokio::spawn(send(Box::new(w), 0, W1));
    let reader = tokio::spawn(receive(Box::new(r), 0, W1));
    writer.await.expect("writer");
    reader.await.expect("reader");
    let took = start.elapsed();
    say(&format!(
        "done {} MiB echoed in {:.2} s ({:.0} MB/s), link mode {:?}",
        W1 / MIB,
        took.as_secs_f64(),
        W1 as f64 / took.as_secs_f64() / 1e6,
        mux.counters().mode
    ));
}

/// Opens `streams` streams and writes a byte on each, `batch` streams at a
/// time: after each batch but the last it says `batch` and waits for the
/// parent's go (the server has read them all).
async fn idle_client(
    config: Config,
    port: u16,
    streams: usize,
    batch: usize,
    go: mpsc::Receiver<()>,
) {
    let (mux, _warm) = link(config, port).await;
    say("linked");
    let go = std::sync::Arc::new(std::sync::Mutex::new(go));
    // The parent reads our memory meanwhile; wait off the runtime.
    let wait = || {
        let go = std::sync::Arc::clone(&go);
        tokio::task::spawn_blocking(move || go.lock().expect("go").recv().expect("go"))
    };
    wait().await.expect("wait for go");
    let mut held = Vec::with_capacity(streams);
    while held.len() < streams {
        if !held.is_empty() {
            say(&format!("batch {}", held.len()));
            wait().await.expect("wait for go");
        }
        for _ in 0..batch.min(streams - held.len()) {
            let mut s = mux.open().expect("open");
            s.write_all(b"!").await.expect("write");
            s.flush().await.expect("flush");
            held.push(s);
        }
    }
    let c = mux.counters();
    say(&format!(
        "opened {} streams; open {}, mode {:?}",
        held.len(),
        c.streams_open,
        c.mode
    ));
    std::future::pending::<()>().await;
}
