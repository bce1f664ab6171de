//! `circuit`: run nodes of a circuit mesh over TCP from the command line.
//!
//! ```text
//! circuit demo                                        # the guided tour
//! circuit node --name r --router --listen 127.0.0.1:7000
//! circuit node --name b --connect 127.0.0.1:7000 --echo
//! circuit bench --name a --connect 127.0.0.1:7000 --peer b --bytes 64MiB --streams 4
//! circuit completions bash > /etc/bash_completion.d/circuit
//! ```
//!
//! Each subcommand lives in [`cmd`]; [`mesh`] makes the node and waits for
//! the mesh, [`serve`] answers streams, [`progress`] draws progress lines.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod cli;
mod cmd;
mod error;
mod mesh;
mod pattern;
mod progress;
mod serve;
mod signal;
mod size;
mod table;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use clap::FromArgMatches;

use crate::cli::{Cli, Command};
use crate::error::CliError;

fn main() -> ExitCode {
    let matches = cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let Command::Completions(args) = &cli.command {
        let mut command = cli::command();
        clap_complete::generate(args.shell, &mut command, "circuit", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    // Without RUST_LOG, a long-running node warns (refused links, failed
    // streams) and says when each link comes up or goes down and each
    // redial; a one-shot command says only its own error line.
    let default = match cli.command {
        Command::Node(_) | Command::Forward(_) => "warn,circuit_transport::links=info",
        _ => "error",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(&CliError::io("cannot start the runtime")(e)),
    };
    let result = runtime.block_on(run(cli));
    // A read of stdin may still block a thread: do not wait for it.
    runtime.shutdown_timeout(Duration::from_millis(200));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let timeout = cli.timeout;
    match cli.command {
        Command::Demo(args) => cmd::demo::run(args, timeout).await,
        Command::Node(args) => cmd::node::run(args, timeout).await,
        Command::Forward(args) => cmd::forward::run(args, timeout).await,
        Command::Cat(args) => cmd::cat::run(args, timeout).await,
        Command::Bench(args) => cmd::bench::run(args, timeout).await,
        Command::Routes(args) => cmd::routes::run(args, timeout).await,
        // Answered in `main`, before the runtime.
        Command::Completions(_) => Ok(()),
    }
}

fn fail(e: &CliError) -> ExitCode {
    eprintln!("error: {e}");
    e.exit_code()
}
