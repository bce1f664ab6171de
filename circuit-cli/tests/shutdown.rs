//! `circuit node` shut down by SIGINT and SIGTERM under load: a client in
//! this process keeps streams busy both ways through an echo node, the
//! node is signalled, and the client must read the node's epitaph on every
//! stream and then the clean end of its link, never a connection reset
//! (issue 15); the node must exit with status 0. The test waits on events:
//! lines the node prints, bytes echoed, the process's end.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use circuit_node::{Node, NodeConfig};
use circuit_transport_tokio::{connect, TokioTimer};
use futures::channel::mpsc as async_mpsc;
use futures::{AsyncReadExt, StreamExt};

/// The longest any wait takes before the test fails: only a hang reaches
/// it.
const LIMIT: Duration = Duration::from_secs(30);
/// The node's `--grace`: short, since the streams never end on their own.
const GRACE: &str = "100ms";
/// The node must be gone this long after the signal: the grace, the close
/// frames, the peer's end (`circuit_transport::CLOSE_LIMIT` is 1 s), and
/// room for a busy machine.
const EXIT_WITHIN: Duration = Duration::from_secs(5);
/// Streams kept busy on each round.
const STREAMS: u64 = 4;
/// Bytes echoed on each stream before the node is signalled.
const LOADED: u64 = 256 * 1024;

/// A `circuit node` process, killed on drop.
struct NodeProc {
    child: Child,
    lines: Receiver<String>,
    stderr: Receiver<String>,
}

impl NodeProc {
    fn start(args: &[&str]) -> NodeProc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_circuit"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the circuit binary starts");
        let (line_tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout is piped");
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (err_tx, stderr) = mpsc::channel();
        let mut err = child.stderr.take().expect("stderr is piped");
        thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            let _ = err_tx.send(text);
        });
        NodeProc {
            child,
            lines,
            stderr,
        }
    }

    /// The address of the first line, `listening on ADDR`.
    fn listening(&mut self) -> String {
        let line = self.lines.recv_timeout(LIMIT).expect("the node prints");
        match line.strip_prefix("listening on ") {
            Some(address) => address.to_owned(),
            None => panic!("expected `listening on ADDR`, got {line:?}"),
        }
    }

    /// Sends `signal` (`INT` or `TERM`) with kill(1).
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits until the process has exited (its stdout closes), at most
    /// `within`; gives its status code and stderr.
    fn exit(mut self, within: Duration) -> (Option<i32>, String) {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(_) => {}
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("the node still runs after {within:?}"),
            }
        }
        let status = self.child.wait().expect("wait for the node");
        let stderr = self.stderr.recv_timeout(LIMIT).unwrap_or_default();
        (status.code(), stderr)
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How one stream ended, seen by the client.
#[derive(Debug)]
struct StreamEnd {
    echoed: u64,
    /// The read error, if reading ended with one.
    error: Option<String>,
    epitaph: Option<String>,
}

/// How a round ended, seen by the client.
#[derive(Debug)]
struct RoundEnd {
    streams: Vec<StreamEnd>,
    /// The end of the client's link: `Ok` for a clean end of the socket.
    link: Result<(), String>,
}

impl RoundEnd {
    /// How many of the errors the client saw were connection resets.
    fn resets(&self) -> usize {
        let reset = |text: &str| {
            let text = text.to_lowercase();
            text.contains("reset") || text.contains("broken pipe")
        };
        let streams = self
            .streams
            .iter()
            .flat_map(|s| [s.error.as_deref(), s.epitaph.as_deref()])
            .flatten()
            .filter(|text| reset(text))
            .count();
        streams + usize::from(self.link.as_ref().is_err_and(|e| reset(e)))
    }
}

/// Links a client to the echo node `e6` at `address`, keeps `STREAMS`
/// streams busy both ways, calls `signal` once `LOADED` bytes have come
/// back on each, and keeps writing and reading until the streams and the
/// link end.
async fn load_then(address: &str, signal: impl FnOnce()) -> RoundEnd {
    let config = NodeConfig::leaf().timer(TokioTimer::shared());
    let (client, _, _) = Node::new("loader", "test", config).unwrap();
    let link = connect(&client, address).await.unwrap();
    client.wait_reachable("e6", LIMIT).await.unwrap();

    let (loaded_tx, mut loaded) = async_mpsc::unbounded();
    let mut tasks = Vec::new();
    for _ in 0..STREAMS {
        let (mut reader, writer) = client.connect_to_peer("e6").await.unwrap().into_split();
        let writes = tokio::spawn(async move {
            let chunk = vec![0x5a; 16 * 1024];
            while writer.write_all(&chunk).await.is_ok() {}
        });
        let loaded_tx = loaded_tx.clone();
        let reads = tokio::spawn(async move {
            let mut buf = vec![0; 64 * 1024];
            let mut echoed = 0;
            let error = loop {
                match AsyncReadExt::read(&mut reader, &mut buf).await {
                    Ok(0) => break None,
                    Ok(n) => {
                        if echoed < LOADED && echoed + n as u64 >= LOADED {
                            let _ = loaded_tx.unbounded_send(());
                        }
                        echoed += n as u64;
                    }
                    Err(e) => break Some(e.to_string()),
                }
            };
            StreamEnd {
                echoed,
                error,
                epitaph: reader.closed_reason(),
            }
        });
        tasks.push((writes, reads));
    }
    for _ in 0..STREAMS {
        loaded.next().await.expect("every stream is loaded");
    }
    signal();

    let mut streams = Vec::new();
    for (writes, reads) in tasks {
        writes.await.unwrap();
        streams.push(reads.await.unwrap());
    }
    let link = link.join().await.map_err(|e| e.to_string());
    RoundEnd { streams, link }
}

#[test]
fn sigint_and_sigterm_shut_an_echo_node_down_under_load_without_a_reset() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (mut shutdowns, mut resets) = (0, 0);
    for round in 0..10 {
        let signal = if round % 2 == 0 { "INT" } else { "TERM" };
        let mut node = NodeProc::start(&[
            "node",
            "--name",
            "e6",
            "--listen",
            "127.0.0.1:0",
            "--echo",
            "--grace",
            GRACE,
        ]);
        let address = node.listening();
        let mut signalled = None;
        let end = runtime.block_on(async {
            let load = load_then(&address, || {
                node.signal(signal);
                signalled = Some(Instant::now());
            });
            tokio::time::timeout(LIMIT, load).await
        });
        let end = end.unwrap_or_else(|_| panic!("round {round} (SIG{signal}) hung"));
        let waited = signalled.expect("signalled").elapsed();
        let (code, stderr) = node.exit(EXIT_WITHIN.saturating_sub(waited));
        shutdowns += 1;
        resets += end.resets();

        assert_eq!(
            code,
            Some(0),
            "round {round}: SIG{signal} ended the node with {code:?}; stderr:\n{stderr}"
        );
        for stream in &end.streams {
            assert!(stream.echoed >= LOADED, "round {round}: {stream:?}");
            assert_eq!(
                stream.epitaph.as_deref(),
                Some("node e6 is shutting down"),
                "round {round} (SIG{signal}): {end:?}"
            );
        }
        assert!(
            end.link.is_ok(),
            "round {round} (SIG{signal}): the client's link ended with {:?}",
            end.link
        );
        assert!(
            !stderr.to_lowercase().contains("reset"),
            "round {round}: {stderr}"
        );
    }
    println!("{shutdowns} shutdowns under load, {resets} resets seen by the peer");
    assert_eq!((shutdowns, resets), (10, 0));
}
