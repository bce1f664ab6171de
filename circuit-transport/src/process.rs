//! Links over a child process's stdin and stdout (`exec:CMD`), written once
//! for every [`Runtime`]: the command runs under `sh -c` with its three
//! pipes; its stderr is logged line by line (the last line kept for the
//! error if it ends before it speaks); the dial completes when it writes
//! its first byte, and fails if it exits or closes its stdout first; the
//! child is killed and reaped when its link ends.

use std::fmt;
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::{pin, Pin};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::future::{select, Either};
use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use crate::runtime::Runtime;
use crate::{TransportError, CLOSE_LIMIT};

/// What a transport needs of a child process started by
/// [`Runtime::spawn_child`]: its three pipes as futures-io streams, its
/// exit, and a kill.
pub trait ChildProcess: Send + Unpin + 'static {
    /// The write end of the child's stdin.
    type Stdin: AsyncWrite + Unpin + Send + 'static;
    /// The read end of the child's stdout.
    type Stdout: AsyncRead + Unpin + Send + 'static;
    /// The read end of the child's stderr.
    type Stderr: AsyncRead + Unpin + Send + 'static;

    /// Takes the three pipes (`None` once taken, or if one was not piped).
    fn take_pipes(&mut self) -> Option<(Self::Stdin, Self::Stdout, Self::Stderr)>;
    /// The child's process id, while it has not been reaped.
    fn id(&self) -> Option<u32>;
    /// Sends the child `SIGKILL` (or the platform's equivalent) without
    /// waiting; an error if it has already been reaped.
    fn start_kill(&mut self) -> io::Result<()>;
    /// Waits for the child to exit and reaps it (cancel safe).
    fn wait(&mut self) -> impl Future<Output = io::Result<ExitStatus>> + Send;
    /// Kills the child and reaps it in the background, without blocking
    /// (what a link does with its child when it ends). Must not panic,
    /// even outside the runtime.
    fn kill_and_reap(self);
}

/// The last line a command wrote on its stderr.
type LastWords = Arc<Mutex<Option<String>>>;

/// The longest stderr line kept or logged, in bytes; the rest is cut.
const LINE_LIMIT: usize = 1024;

/// The byte stream of a command link: the child's stdout to read (the
/// first bytes, read by the dial, first), its stdin to write. Dropping it
/// kills and reaps the child.
pub struct ChildIo<R: Runtime> {
    command: Arc<str>,
    first: Vec<u8>,
    read: usize,
    stdin: <R::Child as ChildProcess>::Stdin,
    stdout: <R::Child as ChildProcess>::Stdout,
    child: Option<R::Child>,
}

impl<R: Runtime> ChildIo<R> {
    /// The command line.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// The child's process id, while it runs.
    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().and_then(ChildProcess::id)
    }
}

impl<R: Runtime> fmt::Debug for ChildIo<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildIo")
            .field("command", &self.command)
            .field("id", &self.id())
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> Drop for ChildIo<R> {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            tracing::debug!(
                command = &*self.command,
                "link over the command ended: killing it"
            );
            child.kill_and_reap();
        }
    }
}

impl<R: Runtime> AsyncRead for ChildIo<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.read < this.first.len() {
            let n = buf.len().min(this.first.len() - this.read);
            buf[..n].copy_from_slice(&this.first[this.read..this.read + n]);
            this.read += n;
            if this.read == this.first.len() {
                this.first = Vec::new();
                this.read = 0;
            }
            return Poll::Ready(Ok(n));
        }
        Pin::new(&mut this.stdout).poll_read(cx, buf)
    }
}

impl<R: Runtime> AsyncWrite for ChildIo<R> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stdin).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stdin).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stdin).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stdin).poll_close(cx)
    }
}

/// Starts `sh -c command` on `runtime` and waits until it writes its first
/// byte on stdout: then its pipes are the link's byte stream. Fails with
/// [`TransportError::Command`] if the command is empty, `sh` does not
/// start, or the command exits or closes its stdout before it writes a
/// byte (with the last line of its stderr).
pub(crate) async fn dial_exec<R: Runtime>(
    runtime: &R,
    command: &str,
) -> Result<ChildIo<R>, TransportError> {
    let fail = |reason: String, stderr: Option<String>| TransportError::Command {
        command: command.to_owned(),
        reason,
        stderr,
    };
    if command.trim().is_empty() {
        return Err(fail("the command is empty".into(), None));
    }
    let mut shell = std::process::Command::new("sh");
    shell
        .arg("-c")
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = runtime
        .spawn_child(shell)
        .map_err(|e| fail(format!("cannot start `sh -c`: {e}"), None))?;
    let Some((stdin, mut stdout, stderr)) = child.take_pipes() else {
        child.kill_and_reap();
        return Err(fail("the child's pipes are missing".into(), None));
    };
    let name: Arc<str> = command.into();
    let last_words = LastWords::default();
    let mut stderr_done = runtime.spawn(forward_stderr(stderr, last_words.clone(), name.clone()));

    // A command that works speaks first: a node's server end writes its
    // handshake at once.
    let mut first = vec![0; 4096];
    let said = {
        let read = pin!(stdout.read(&mut first));
        let exit = pin!(child.wait());
        match select(read, exit).await {
            Either::Left((Ok(0), _)) => Err(None),
            Either::Left((Ok(n), _)) => Ok(n),
            Either::Left((Err(e), _)) => {
                tracing::debug!(error = %e, "reading the command's stdout failed");
                Err(None)
            }
            Either::Right((status, _)) => Err(Some(status)),
        }
    };
    let status = match said {
        Ok(n) => {
            first.truncate(n);
            tracing::debug!(command, id = ?child.id(), "command started");
            return Ok(ChildIo {
                command: name,
                first,
                read: 0,
                stdin,
                stdout,
                child: Some(child),
            });
        }
        Err(Some(status)) => status,
        // Its stdout closed: give it a moment to exit, then kill it.
        Err(None) => {
            let limit = runtime.sleep_until(runtime.now().saturating_add(CLOSE_LIMIT));
            let exited = match select(pin!(child.wait()), limit).await {
                Either::Left((status, _)) => Some(status),
                Either::Right(_) => None,
            };
            match exited {
                Some(status) => status,
                None => {
                    let _ = child.start_kill();
                    child.wait().await
                }
            }
        }
    };
    drop((stdin, stdout));
    // Its last words: all of stderr, unless a grandchild holds it open.
    let limit = runtime.sleep_until(runtime.now().saturating_add(CLOSE_LIMIT));
    if let Either::Right(_) = select(&mut stderr_done, limit).await {
        runtime.abort(&mut stderr_done);
    }
    let stderr = last_words.lock().unwrap_or_else(|e| e.into_inner()).take();
    let mut reason = match status {
        Ok(status) => format!("it exited before it wrote a byte ({status})"),
        Err(e) => format!("it ended before it wrote a byte (its exit status is unknown: {e})"),
    };
    if let Some(line) = &stderr {
        reason.push_str(": ");
        reason.push_str(line);
    }
    Err(fail(reason, stderr))
}

/// Logs each line the command writes on stderr, keeping the last one in
/// `last_words`, until the end of its stderr.
async fn forward_stderr<E: AsyncRead + Unpin>(
    mut stderr: E,
    last_words: LastWords,
    command: Arc<str>,
) {
    let mut line = Vec::new();
    let mut chunk = [0; 4096];
    let said = |line: &mut Vec<u8>| {
        let text = String::from_utf8_lossy(line).trim_end().to_owned();
        line.clear();
        if !text.is_empty() {
            tracing::warn!(command = &*command, "{text}");
            *last_words.lock().unwrap_or_else(|e| e.into_inner()) = Some(text);
        }
    };
    loop {
        let n = match stderr.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for piece in chunk[..n].split_inclusive(|&b| b == b'\n') {
            let room = LINE_LIMIT.saturating_sub(line.len());
            line.extend_from_slice(&piece[..piece.len().min(room)]);
            if piece.ends_with(b"\n") {
                said(&mut line);
            }
        }
    }
    said(&mut line);
}
