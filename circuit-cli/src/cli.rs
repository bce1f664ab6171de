//! The command line: every subcommand and option, with the examples that
//! `--help` prints.

use std::time::Duration;

use circuit_frame::Quality;
use clap::{Args, Parser, Subcommand};

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

/// Run nodes of a circuit mesh (Fuchsia Overnet's circuit protocol) over
/// TCP: a demo, long-running nodes, tunnels, netcat and benchmarks.
#[derive(Debug, Parser)]
#[command(name = "circuit", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// The longest any wait may take (a link coming up, a peer becoming
    /// reachable, a stream answering), in seconds.
    #[arg(long, global = true, default_value = "10", value_parser = parse_seconds)]
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
  circuit node --name web --connect 127.0.0.1:7000 --forward-to 127.0.0.1:8080
  circuit node --name a --listen 127.0.0.1:0 --listen unix:/tmp/a.sock

The first lines on stdout are `listening on ADDR` (the actual address, also
for port 0), one per --listen, then `connected to ADDR`, one per --connect.
With --reports a router prints `closed: ...` for each direction of a stream
it forwards as it closes: which way, and which neighbour (or itself) closed
it, with the epitaph passed on unchanged.")]
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
    /// stdout.
    #[command(after_help = "\
Examples:
  echo hello | circuit cat --name me --connect 127.0.0.1:7000 b
  circuit cat --name me --connect 127.0.0.1:7000 b < big.iso > copy.iso

On end of stdin the stream's write half is closed; output continues until
PEER closes its side.")]
    Cat(CatArgs),

    /// Throughput or latency against a node running `circuit node --echo`.
    #[command(after_help = "\
Examples:
  circuit bench --name me --connect 127.0.0.1:7000 --peer b --bytes 256MiB --streams 4
  circuit bench --name me --connect 127.0.0.1:7000 --peer b --latency 1000

Throughput mode prints `throughput: N MB/s ...` (MB = 10^6 bytes) as its last
line; latency mode prints `latency: mean N us, p99 N us ...`.")]
    Bench(BenchArgs),

    /// The routing table as seen by a fresh leaf node linked at ADDR.
    #[command(after_help = "\
Examples:
  circuit routes --connect 127.0.0.1:7000
  circuit routes --connect 127.0.0.1:7000 --dot | dot -Tsvg > mesh.svg")]
    Routes(RoutesArgs),
}

/// The identity of a node made by a subcommand.
#[derive(Debug, Clone, Args)]
pub struct Identity {
    /// This node's name (at most 255 bytes).
    #[arg(long)]
    pub name: String,

    /// The application protocol; both ends of a link must use the same.
    #[arg(long, default_value = "test")]
    pub protocol: String,
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

    /// Dial a link to this address (dialled again if it drops).
    #[arg(long, value_name = "ADDR")]
    pub connect: Vec<String>,

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

    /// Splice every incoming stream to a new TCP connection to this address.
    #[arg(long, value_name = "HOST:PORT")]
    pub forward_to: Option<String>,

    /// Link quality: network, local, usb, in-process or a number 1-254
    /// (default: from the socket).
    #[arg(long, value_parser = parse_quality)]
    pub quality: Option<Quality>,
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
    pub peer: String,
}

/// `circuit bench`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("mode").required(true).args(["bytes", "latency"]))]
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
    #[arg(long, value_name = "SIZE", value_parser = parse_size, requires = "streams")]
    pub bytes: Option<u64>,

    /// Throughput: concurrent streams.
    #[arg(long, value_name = "S", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub streams: Option<u32>,

    /// Latency: round trips of one byte on one stream.
    #[arg(long, value_name = "COUNT", value_parser = clap::value_parser!(u32).range(1..))]
    pub latency: Option<u32>,
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

    /// How long the peer set must stay unchanged to count as settled, in
    /// milliseconds (a few of the router's advertisement intervals).
    #[arg(long, default_value = "300", value_name = "MS")]
    pub settle_ms: u64,

    /// Print the mesh as far as it can be seen, in Graphviz format.
    #[arg(long)]
    pub dot: bool,
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("{text:?} is not a duration"))
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
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
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
