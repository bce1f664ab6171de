//! The command line: every subcommand and option, with the examples that
//! `--help` prints.

use std::sync::OnceLock;
use std::time::Duration;

use circuit_frame::Quality;
use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::size::parse_size;

const EXIT_CODES: &str = "\
Exit status:
  0  success
  1  a link or a stream failed
  2  bad input (usage, address, name, size, quality)
  3  cannot listen (port already in use, no permission)
  4  cannot reach (connection refused, peer not reachable in time, timeout)
  5  the peer runs another protocol or circuit version
  6  bench: the echo differs from what was sent

Logs go to stderr; set RUST_LOG (e.g. RUST_LOG=debug, RUST_LOG=circuit_node=trace).";

/// What `--version` prints after the name: this program's version and the
/// wire versions it speaks (the circuit protocol of `Identify`, and the
/// credit extension of PROTOCOL.md section 4).
pub fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        format!(
            "{} (protocol {}, credit extension {})",
            env!("CARGO_PKG_VERSION"),
            circuit_frame::PROTOCOL_VERSION,
            circuit_frame::CREDIT_VERSION,
        )
    })
}

/// The whole command line, with [`version`] as its version: what `main`
/// parses and what the shell completions are made from.
pub fn command() -> clap::Command {
    Cli::command().version(version())
}

/// Run nodes of a circuit mesh (Fuchsia Overnet's circuit protocol) over
/// TCP: a demo, long-running nodes, tunnels, netcat and benchmarks.
#[derive(Debug, Parser)]
#[command(name = "circuit", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// The longest any wait may take (a TCP connect, a link coming up, a
    /// peer becoming reachable, a stream answering): a duration such as
    /// `5s`, `250ms` or `1m 30s`; a bare number is seconds.
    #[arg(
        long,
        global = true,
        default_value = "10s",
        value_name = "DURATION",
        value_parser = parse_duration
    )]
    pub timeout: Duration,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// A router, three nodes and a redundant path on loopback TCP: streams
    /// across the mesh, a cut link, streams rerouted.
    #[command(after_help = "\
Examples:
  circuit demo
  RUST_LOG=info circuit demo      # with the nodes' logs on stderr")]
    Demo(DemoArgs),

    /// A long-running node: listens, dials, routes, answers streams.
    #[command(after_help = "\
Examples:
  circuit node --name r --router --listen 127.0.0.1:7000
  circuit node --name r --router --reports --listen 127.0.0.1:7000
  circuit node --name b --connect 127.0.0.1:7000 --echo
  circuit node --name sink --connect 127.0.0.1:7000 --discard
  circuit node --name web --connect 127.0.0.1:7000 --forward-to 127.0.0.1:8080
  circuit node --name a --listen 127.0.0.1:0 --listen unix:/tmp/a.sock

The first lines on stdout are `listening on ADDR` (the actual address, also
for port 0), one per --listen, then `connected to ADDR`, one per --connect
(or `dialling ADDR` when the first dial failed: it is dialled again with
backoff, as after a drop, unless --connect-once). Each link up, link down
and redial is an info line on stderr.
With --reports a router prints `closed: ...` for each direction of a stream
it forwards as it closes: which way, and which neighbour (or itself) closed
it, with the epitaph passed on unchanged.

SIGINT (Ctrl-C) or SIGTERM shuts the node down cleanly: it stops accepting,
lets its links drain for --grace, closes the streams still open with the
epitaph `node NAME is shutting down`, closes each link once the peer has
read everything, and exits with status 0.")]
    Node(NodeArgs),

    /// Expose a mesh node's service locally: each TCP connection accepted
    /// on --local becomes a stream to --peer (as `ssh -L` does).
    #[command(after_help = "\
Examples:
  circuit forward --name a --connect 127.0.0.1:7000 --local 127.0.0.1:8080 --peer web
  curl http://127.0.0.1:8080/

The first line on stdout is `listening on ADDR` once --peer is reachable.")]
    Forward(ForwardArgs),

    /// Netcat over the mesh: stdin to a new stream to PEER, the stream to
    /// stdout; or, with --listen, the first stream another node opens to
    /// this one (as `nc -l`).
    #[command(after_help = "\
Examples:
  echo hello | circuit cat --name me --connect 127.0.0.1:7000 b
  circuit cat --name me --connect 127.0.0.1:7000 b < big.iso > copy.iso
  circuit cat --name inbox --connect 127.0.0.1:7000 --listen > received
  circuit cat --name me --connect 127.0.0.1:7000 inbox < file

On end of stdin the stream's write half is closed; output continues until
PEER closes its side. With --listen the node is named --name on the mesh
and takes the first stream any node opens to it (later ones are refused);
it prints `accepted from NODE` on stderr, then copies the same way. Its end
of stdin closes its side, and an opener stops when its peer's side closes:
keep the listener's stdin open (a terminal, not /dev/null) to receive all.")]
    Cat(CatArgs),

    /// Throughput or latency against a node running `circuit node --echo`
    /// (or `--discard`, for --one-way).
    #[command(after_help = BENCH_HELP)]
    Bench(BenchArgs),

    /// The routing table as seen by a fresh leaf node linked at ADDR.
    #[command(after_help = ROUTES_HELP)]
    Routes(RoutesArgs),

    /// A completion script for a shell, on stdout.
    #[command(after_help = "\
Examples:
  circuit completions bash > /etc/bash_completion.d/circuit
  circuit completions zsh > ~/.zfunc/_circuit
  circuit completions fish > ~/.config/fish/completions/circuit.fish")]
    Completions(CompletionsArgs),
}

const BENCH_HELP: &str = "\
Examples:
  circuit bench --name me --connect 127.0.0.1:7000 --peer b --bytes 256MiB --streams 4
  circuit bench --name me --connect 127.0.0.1:7000 --peer b --duration 10s --streams 4
  circuit bench --name me --connect 127.0.0.1:7000 --peer sink --duration 5s --one-way
  circuit bench --name me --connect 127.0.0.1:7000 --peer b --latency 1000 --json

Throughput mode sends --bytes on each stream, or sends for --duration, and
prints `throughput: N MB/s (N Gbit/s) ...` (MB = 10^6 bytes, Gbit = 10^9
bits) as its last line. It counts the bytes echoed back and checked; with
--one-way it only sends (the peer, best `circuit node --discard`, reads and
drops; an echo peer's answer is read and dropped too) and counts the bytes
sent, the clock stopping when the peer has closed its side after reading
them all. Latency mode prints `latency: mean N us, p50 N us, p99 N us ...`.

With --json the result is one JSON object on one line instead:
  mode           \"throughput\" or \"latency\"
  streams        concurrent streams (1 in latency mode)
  seconds        wall time of the measurement
throughput mode:
  direction      \"echo\" or \"one-way\"
  bytes          bytes counted, all streams together
  bytes_per_sec  bytes / seconds
  bits_per_sec   8 * bytes_per_sec
latency mode:
  count          round trips of one byte
  mean_us, p50_us, p99_us   round-trip times in microseconds";

const ROUTES_HELP: &str = "\
Examples:
  circuit routes --connect 127.0.0.1:7000
  circuit routes --connect 127.0.0.1:7000 --dot | dot -Tsvg > mesh.svg
  circuit routes --connect 127.0.0.1:7000 --json | jq -c 'select(.node)'

With --json each line is one JSON object: first one per node known,
  node               the node's name
  next_hop           the neighbour its route goes through (null: unreachable)
  quality            the route's quality end to end (null: unreachable)
  feasible_distance  the feasible distance, if remembered (null otherwise)
  routes             [{next_hop, quality, advertised, feasible, best}], every
                     route known (advertised null: learned from a stream)
then one per link of this observer:
  peer               the neighbour
  mode               \"v0\" or \"credit\"
  bytes_in, bytes_out, streams_open, streams_waiting_for_credit,
  bytes_granted      the mux counters
  rtt_us             the measured round trip in microseconds (null: unknown)";

/// The identity of a node made by a subcommand.
#[derive(Debug, Clone, Args)]
pub struct Identity {
    /// This node's name (at most 255 bytes).
    #[arg(long)]
    pub name: String,

    /// The application protocol; both ends of a link must use the same.
    #[arg(long, default_value = "test")]
    pub protocol: String,

    /// Per-stream credit flow control on this node's links (PROTOCOL.md
    /// section 4): `auto` offers it as the listener and answers it as the
    /// dialler, keeping links to v0 peers in v0 mode; `off` never uses it;
    /// `required` ends links to v0 peers.
    #[arg(long, default_value = "auto", value_name = "off|auto|required")]
    pub credit: circuit_mux::CreditMode,

    /// On links in credit mode, send a PING this often and end a link whose
    /// PONG has not come within three times this (a peer that stopped
    /// answering: hung, or gone without closing). Off by default.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub keep_alive: Option<Duration>,

    /// The longest a link's close may take: sending its last frames,
    /// closing the connection and waiting for the peer to close its end.
    /// A peer that never closes its end, or a connection that takes
    /// nothing more, is let go after this.
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = parse_duration)]
    pub close_timeout: Duration,

    /// Bytes a link's streams may hold written and not yet sent, shared
    /// out among them (each gets this divided by the streams open, at
    /// least 64 KiB and at most 256 KiB). Lower than the library's
    /// default (4 MiB): between processes, bytes that wait less stay
    /// warmer in the caches (16 streams echoed over loopback TCP: 15-25 %
    /// more; benches/README.md).
    #[arg(long, default_value = "1MiB", value_name = "SIZE", value_parser = parse_size)]
    pub send_buffer: u64,

    /// Bytes a link's streams may be sent ahead of their readers, in all:
    /// in credit mode the budget their windows grow within (each starts
    /// at 64 KiB and grows, up to 1 MiB, while the sum stays within
    /// this); in v0 mode the unread bytes at which the link stops
    /// reading. Lower than the library's default (32 MiB), for the same
    /// reason as `--send-buffer` (16 streams echoed over loopback TCP:
    /// 7-16 % more; benches/README.md).
    #[arg(long, default_value = "2MiB", value_name = "SIZE", value_parser = parse_size)]
    pub receive_buffer: u64,
}

impl Identity {
    /// The mux configuration these options ask for: a keep-alive PING
    /// every `--keep-alive` (a link ends after three intervals without a
    /// PONG), closes bounded by `--close-timeout`, both on tokio's clock.
    pub fn mux_config(&self) -> circuit_mux::Config {
        let send_buffer = usize::try_from(self.send_buffer).unwrap_or(usize::MAX);
        let receive_buffer = usize::try_from(self.receive_buffer).unwrap_or(usize::MAX);
        let clock = std::sync::Arc::new(circuit_transport_tokio::TokioRuntime::new());
        let config = circuit_mux::Config::default()
            .credit(self.credit)
            .close_timeout(self.close_timeout, clock.clone())
            .link_send_buffer(send_buffer)
            .link_receive_limit(receive_buffer);
        match self.keep_alive {
            Some(interval) => config.keep_alive(interval, interval * 3, clock),
            None => config,
        }
    }
}

/// `circuit demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Bytes each stream carries each way.
    #[arg(long, default_value = "8MiB", value_parser = parse_size)]
    pub stream_bytes: u64,
}

/// `circuit node`.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// Who this node is.
    #[command(flatten)]
    pub identity: Identity,

    /// Accept links here (`host:port`, port 0 for any, or `unix:PATH`).
    #[arg(long, value_name = "ADDR")]
    pub listen: Vec<String>,

    /// Dial a link to this address (dialled again if it drops, or if the
    /// first dial fails): `host:port`, `unix:PATH`, `exec:CMD` (over the
    /// stdin and stdout of `sh -c CMD`, e.g. `exec:ssh dev circuit node
    /// --name dev --stdio`) or `serial:PATH?baud=N` (built with the
    /// `serial` feature).
    #[arg(long, value_name = "ADDR")]
    pub connect: Vec<String>,

    /// Link over this process's own stdin and stdout (the other end of an
    /// `exec:` link); every line this command prints goes to stderr, and
    /// the node stops when the link ends.
    #[arg(long)]
    pub stdio: bool,

    /// Exit (status 4) if the first dial of a --connect fails, instead of
    /// dialling it again.
    #[arg(long, requires = "connect")]
    pub connect_once: bool,

    /// Drop a link whose peer has not finished the handshake this long
    /// after it connected (a client that connects and never speaks).
    #[arg(
        long,
        default_value = "10s",
        value_name = "DURATION",
        value_parser = parse_duration
    )]
    pub handshake_timeout: Duration,

    /// The most accepted links in their handshake at once; connections
    /// beyond it are closed at once (and logged).
    #[arg(
        long,
        default_value_t = circuit_transport_tokio::DEFAULT_MAX_HANDSHAKES,
        value_name = "N",
        value_parser = clap::value_parser!(usize)
    )]
    pub max_handshakes: usize,

    /// Route: advertise routes and forward streams between links.
    #[arg(long)]
    pub router: bool,

    /// Print a line for every stream this router forwards or refuses as it
    /// closes: which way, and which hop closed it (PROTOCOL 2.4).
    #[arg(long, requires = "router")]
    pub reports: bool,

    /// Answer every incoming stream by echoing it back.
    #[arg(long, conflicts_with = "forward_to")]
    pub echo: bool,

    /// Read and drop every incoming stream, closing this side at its end
    /// (a sink for `circuit bench --one-way`).
    #[arg(long, conflicts_with_all = ["echo", "forward_to"])]
    pub discard: bool,

    /// Splice every incoming stream to a new TCP connection to this address.
    #[arg(long, value_name = "HOST:PORT")]
    pub forward_to: Option<String>,

    /// Link quality: network, local, usb, in-process or a number 1-254
    /// (default: from the socket).
    #[arg(long, value_parser = parse_quality)]
    pub quality: Option<Quality>,

    /// On SIGINT or SIGTERM: how long links may drain (streams end on
    /// their own) before the streams still open are closed with the
    /// epitaph "node NAME is shutting down".
    #[arg(long, default_value = "1s", value_name = "DURATION", value_parser = parse_duration)]
    pub grace: Duration,
}

/// `circuit forward`.
#[derive(Debug, Args)]
pub struct ForwardArgs {
    /// Who this node is.
    #[command(flatten)]
    pub identity: Identity,

    /// The mesh node to link to.
    #[arg(long, value_name = "ADDR")]
    pub connect: String,

    /// Accept TCP connections here (port 0 for any).
    #[arg(long, value_name = "HOST:PORT")]
    pub local: String,

    /// The node whose service each connection reaches.
    #[arg(long)]
    pub peer: String,
}

/// `circuit cat`.
#[derive(Debug, Args)]
pub struct CatArgs {
    /// Who this node is.
    #[command(flatten)]
    pub identity: Identity,

    /// The mesh node to link to.
    #[arg(long, value_name = "ADDR")]
    pub connect: String,

    /// The node to open the stream to.
    #[arg(required_unless_present = "listen", conflicts_with = "listen")]
    pub peer: Option<String>,

    /// Open no stream: wait for the first stream another node opens to
    /// this one (for at most --timeout), and copy it as above.
    #[arg(long)]
    pub listen: bool,
}

/// `circuit bench`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("mode").required(true).args(["bytes", "duration", "latency"]))]
pub struct BenchArgs {
    /// Who this node is.
    #[command(flatten)]
    pub identity: Identity,

    /// The mesh node to link to.
    #[arg(long, value_name = "ADDR")]
    pub connect: String,

    /// The echo node to measure against.
    #[arg(long)]
    pub peer: String,

    /// Throughput: bytes per stream (suffixes: k, KiB, MB, MiB, GB, GiB...).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub bytes: Option<u64>,

    /// Throughput: send on each stream for this long (e.g. `2s`, `500ms`)
    /// instead of a number of bytes.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Throughput: concurrent streams (default 1).
    #[arg(
        long,
        value_name = "S",
        value_parser = clap::value_parser!(u32).range(1..=10_000),
        conflicts_with = "latency"
    )]
    pub streams: Option<u32>,

    /// Throughput: send only; the peer reads and drops (`node --discard`).
    #[arg(long, conflicts_with = "latency")]
    pub one_way: bool,

    /// Throughput with an echo: each stream writes at most SIZE ahead of
    /// the echo it has checked (a 64 KiB write goes alone if SIZE is
    /// smaller). Without it a stream writes as fast as the link takes its
    /// bytes, and what it has in flight is bounded by the link's buffers
    /// and flow control alone.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, conflicts_with_all = ["latency", "one_way"])]
    pub lead: Option<u64>,

    /// Latency: round trips of one byte on one stream.
    #[arg(long, value_name = "COUNT", value_parser = clap::value_parser!(u32).range(1..))]
    pub latency: Option<u32>,

    /// Print the result as one JSON object (fields in the help below).
    #[arg(long)]
    pub json: bool,
}

/// `circuit routes`.
#[derive(Debug, Args)]
pub struct RoutesArgs {
    /// The mesh node to link to.
    #[arg(long, value_name = "ADDR")]
    pub connect: String,

    /// The observer's name (default: circuit-routes-PID).
    #[arg(long)]
    pub name: Option<String>,

    /// The application protocol of the mesh.
    #[arg(long, default_value = "test")]
    pub protocol: String,

    /// How long the peer set must stay unchanged to count as settled (a
    /// few of the router's advertisement intervals): a duration such as
    /// `300ms` or `2s`; a bare number is seconds.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub settle: Option<Duration>,

    /// The same as --settle, in milliseconds (the older spelling, kept so
    /// that existing scripts work).
    #[arg(long, value_name = "MS", hide = true, conflicts_with = "settle")]
    pub settle_ms: Option<u64>,

    /// Print the mesh as far as it can be seen, in Graphviz format.
    #[arg(long)]
    pub dot: bool,

    /// Print one JSON object per line: one per node, then one per link
    /// (fields in the help below).
    #[arg(long, conflicts_with = "dot")]
    pub json: bool,
}

/// `circuit completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

impl RoutesArgs {
    /// How long the peer set must stay unchanged: `--settle`, else
    /// `--settle-ms`, else 300 ms.
    pub fn settle(&self) -> Duration {
        match (self.settle, self.settle_ms) {
            (Some(settle), _) => settle,
            (None, Some(ms)) => Duration::from_millis(ms),
            (None, None) => Duration::from_millis(300),
        }
    }
}

/// Reads a duration: a number with units as humantime writes them (`5s`,
/// `250ms`, `1m 30s`, `2h`), or a bare number of seconds (`3`, `0.5`), as
/// the command line took before it knew units.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds)
            .map_err(|_| format!("{text:?} is not a duration"));
    }
    humantime::parse_duration(text).map_err(|e| {
        format!("{text:?} is not a duration ({e}); write e.g. 5s, 250ms or a number of seconds")
    })
}

/// Reads a link quality: a name or a number from 1 to 254.
pub fn parse_quality(text: &str) -> Result<Quality, String> {
    match text.to_ascii_lowercase().as_str() {
        "network" => Ok(Quality::NETWORK),
        "local" | "local-socket" => Ok(Quality::LOCAL_SOCKET),
        "usb" => Ok(Quality::USB),
        "in-process" => Ok(Quality::IN_PROCESS),
        number => match number.parse::<u8>() {
            Ok(n @ 1..=254) => Quality::new(n).map_err(|e| e.to_string()),
            _ => Err(format!(
                "{text:?} is not a quality: network, local, usb, in-process or 1-254"
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn durations_with_units_or_as_bare_seconds() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn every_duration_flag_takes_units_and_bare_seconds() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).map_err(|e| e.to_string());
        let timeout = |args: &[&str]| parse(args).map(|cli| cli.timeout);
        assert_eq!(timeout(&["circuit", "demo"]), Ok(Duration::from_secs(10)));
        assert_eq!(
            timeout(&["circuit", "demo", "--timeout", "3"]),
            Ok(Duration::from_secs(3))
        );
        assert_eq!(
            timeout(&["circuit", "--timeout", "250ms", "demo"]),
            Ok(Duration::from_millis(250))
        );
        assert!(timeout(&["circuit", "demo", "--timeout", "later"]).is_err());

        let settle = |args: &[&str]| {
            parse(args).map(|cli| match cli.command {
                Command::Routes(routes) => routes.settle(),
                other => panic!("not routes: {other:?}"),
            })
        };
        let routes = ["circuit", "routes", "--connect", "127.0.0.1:7000"];
        let with = |extra: &[&'static str]| [&routes[..], extra].concat();
        assert_eq!(settle(&routes), Ok(Duration::from_millis(300)));
        assert_eq!(
            settle(&with(&["--settle", "2s"])),
            Ok(Duration::from_secs(2))
        );
        assert_eq!(
            settle(&with(&["--settle", "1"])),
            Ok(Duration::from_secs(1))
        );
        assert_eq!(
            settle(&with(&["--settle-ms", "150"])),
            Ok(Duration::from_millis(150))
        );
        assert!(settle(&with(&["--settle", "1s", "--settle-ms", "150"])).is_err());
    }

    #[test]
    fn the_buffers_and_the_close_timeout_reach_the_mux_config() {
        let config = |args: &[&str]| -> Result<circuit_mux::Config, String> {
            let cli = Cli::try_parse_from(args).map_err(|e| e.to_string())?;
            match cli.command {
                Command::Bench(bench) => Ok(bench.identity.mux_config()),
                other => panic!("not bench: {other:?}"),
            }
        };
        let send_buffer = |args: &[&str]| config(args).map(|c| c.get_link_send_buffer());
        let receive_buffer = |args: &[&str]| config(args).map(|c| c.get_link_receive_limit());
        let bench = [
            "circuit",
            "bench",
            "--name",
            "b",
            "--connect",
            "127.0.0.1:7000",
            "--peer",
            "e",
            "--bytes",
            "1MiB",
        ];
        let with = |extra: &[&'static str]| [&bench[..], extra].concat();
        assert_eq!(send_buffer(&bench), Ok(1 << 20));
        assert_eq!(send_buffer(&with(&["--send-buffer", "4MiB"])), Ok(4 << 20));
        assert!(send_buffer(&with(&["--send-buffer", "lots"])).is_err());
        assert_eq!(receive_buffer(&bench), Ok(2 << 20));
        let more = with(&["--receive-buffer", "16MiB"]);
        assert_eq!(receive_buffer(&more), Ok(16 << 20));
        assert!(receive_buffer(&with(&["--receive-buffer", "plenty"])).is_err());
        let close_timeout = |args: &[&str]| config(args).map(|c| c.get_close_timeout());
        assert_eq!(close_timeout(&bench), Ok(Some(Duration::from_secs(10))));
        let quick = with(&["--close-timeout", "500ms"]);
        assert_eq!(close_timeout(&quick), Ok(Some(Duration::from_millis(500))));
    }

    #[test]
    fn qualities_by_name_and_number() {
        assert_eq!(parse_quality("network"), Ok(Quality::NETWORK));
        assert_eq!(parse_quality("USB"), Ok(Quality::USB));
        assert_eq!(parse_quality("7").map(Quality::get), Ok(7));
        assert!(parse_quality("0").is_err());
        assert!(parse_quality("255").is_err());
        assert!(parse_quality("fast").is_err());
    }
}
