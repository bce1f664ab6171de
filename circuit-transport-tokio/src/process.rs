//! Tokio's child processes, for links over a command (`exec:CMD`).

use std::io;
use std::process::ExitStatus;

use circuit_transport::process::ChildProcess;

use crate::io::FuturesIo;

/// A child process started on tokio (`tokio::process`), with its pipes
/// as futures-io streams. Killed when dropped (`kill_on_drop`); tokio
/// reaps it.
#[derive(Debug)]
pub struct TokioChild(pub(crate) tokio::process::Child);

impl TokioChild {
    /// Starts `command` on the current tokio runtime, killed on drop.
    pub(crate) fn spawn(command: std::process::Command) -> io::Result<TokioChild> {
        let mut command = tokio::process::Command::from(command);
        command.kill_on_drop(true);
        Ok(TokioChild(command.spawn()?))
    }
}

impl ChildProcess for TokioChild {
    type Stdin = FuturesIo<tokio::process::ChildStdin>;
    type Stdout = FuturesIo<tokio::process::ChildStdout>;
    type Stderr = FuturesIo<tokio::process::ChildStderr>;

    fn take_pipes(&mut self) -> Option<(Self::Stdin, Self::Stdout, Self::Stderr)> {
        let child = &mut self.0;
        match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
            (Some(stdin), Some(stdout), Some(stderr)) => Some((
                FuturesIo::new(stdin),
                FuturesIo::new(stdout),
                FuturesIo::new(stderr),
            )),
            _ => None,
        }
    }

    fn id(&self) -> Option<u32> {
        self.0.id()
    }

    fn start_kill(&mut self) -> io::Result<()> {
        self.0.start_kill()
    }

    async fn wait(&mut self) -> io::Result<ExitStatus> {
        self.0.wait().await
    }

    fn kill_and_reap(mut self) {
        let _ = self.0.start_kill();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(async move {
                match self.0.wait().await {
                    Ok(status) => tracing::debug!(%status, "command reaped"),
                    Err(e) => tracing::debug!(error = %e, "command not reaped"),
                }
            })),
            // No runtime: tokio reaps a killed child it dropped as it can.
            Err(_) => drop(self),
        }
    }
}
