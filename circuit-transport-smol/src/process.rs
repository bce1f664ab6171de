//! Smol's child processes (async-process), for links over a command
//! (`exec:CMD`).

use std::io;
use std::process::ExitStatus;

use circuit_transport::process::ChildProcess;

/// A child process started on smol (`smol::process`, async-process), with
/// its pipes as futures-io streams. Killed when dropped (`kill_on_drop`);
/// async-process reaps it.
#[derive(Debug)]
pub struct SmolChild(pub(crate) smol::process::Child);

impl SmolChild {
    /// Starts `command` with its three pipes, killed on drop.
    pub(crate) fn spawn(command: std::process::Command) -> io::Result<SmolChild> {
        use std::process::Stdio;
        // async-process's conversion keeps the program, arguments,
        // environment and folder, not the pipes: set them again.
        let mut command = smol::process::Command::from(command);
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        Ok(SmolChild(command.spawn()?))
    }
}

impl ChildProcess for SmolChild {
    type Stdin = smol::process::ChildStdin;
    type Stdout = smol::process::ChildStdout;
    type Stderr = smol::process::ChildStderr;

    fn take_pipes(&mut self) -> Option<(Self::Stdin, Self::Stdout, Self::Stderr)> {
        let child = &mut self.0;
        match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
            (Some(stdin), Some(stdout), Some(stderr)) => Some((stdin, stdout, stderr)),
            _ => None,
        }
    }

    fn id(&self) -> Option<u32> {
        Some(self.0.id())
    }

    fn start_kill(&mut self) -> io::Result<()> {
        self.0.kill()
    }

    async fn wait(&mut self) -> io::Result<ExitStatus> {
        self.0.status().await
    }

    fn kill_and_reap(mut self) {
        let _ = self.0.kill();
        // smol's global executor runs anywhere.
        smol::spawn(async move {
            match self.0.status().await {
                Ok(status) => tracing::debug!(%status, "command reaped"),
                Err(e) => tracing::debug!(error = %e, "command not reaped"),
            }
        })
        .detach();
    }
}
