//! Links over a command (`exec:CMD`) on smol (async-process). The command
//! that links back is this test binary itself, started with
//! `CIRCUIT_EXEC_CHILD` set: then `main` runs a node that links over its
//! own stdin and stdout and echoes every stream. That is why this target
//! has no libtest harness (libtest would print on stdout, which carries
//! the link): `main` runs each test in turn and fails on the first that
//! panics.

mod common;

use std::path::Path;
use std::time::Duration;

use circuit_frame::Quality;
use circuit_mux::Role;
use circuit_node::NodeError;
use circuit_transport_smol::{
    connect, connect_with, LinkOptions, ReconnectPolicy, Shutdown, TransportError,
};
use common::{leaf, reachable, run};
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};

const CHILD: &str = "CIRCUIT_EXEC_CHILD";

fn main() {
    if let Some(name) = std::env::var_os(CHILD) {
        return child(name.to_str().expect("a UTF-8 name"));
    }
    let tests: &[(&str, fn())] = &[
        (
            "a_command_link_carries_streams_and_its_child_is_reaped",
            a_command_link_carries_streams_and_its_child_is_reaped,
        ),
        (
            "a_command_that_exits_at_once_fails_the_dial_with_its_last_stderr_line",
            a_command_that_exits_at_once_fails_the_dial_with_its_last_stderr_line,
        ),
        (
            "a_link_whose_command_talked_garbage_ends_and_is_started_again",
            a_link_whose_command_talked_garbage_ends_and_is_started_again,
        ),
    ];
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut ran = 0;
    for (name, test) in tests {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        println!("test {name} ...");
        test();
        println!("test {name} ... ok");
        ran += 1;
    }
    println!("{ran} passed, 0 failed");
}

/// The node at the other end of the command: links over stdin and stdout
/// as the server end, echoes every stream, ends with the link.
fn child(name: &str) {
    smol::block_on(async {
        let (node, _, mut incoming) = leaf(name);
        smol::spawn(async move {
            while let Some(stream) = incoming.next().await {
                let (read, mut write) = stream.stream.split();
                smol::spawn(async move {
                    smol::io::copy(read, &mut write).await?;
                    write.close().await
                })
                .detach();
            }
        })
        .detach();
        let io = smol::Unblock::new(std::io::stdin());
        let out = smol::Unblock::new(std::io::stdout());
        let io = Stdio { io, out };
        let link = circuit_transport_smol::spawn_link(
            &node,
            io,
            Role::Server,
            Quality::NETWORK,
            &Shutdown::new(),
        );
        let _ = link.await;
    });
}

/// Stdin and stdout as one byte stream.
struct Stdio {
    io: smol::Unblock<std::io::Stdin>,
    out: smol::Unblock<std::io::Stdout>,
}

impl futures::AsyncRead for Stdio {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl futures::AsyncWrite for Stdio {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.out).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.out).poll_flush(cx)
    }

    fn poll_close(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.out).poll_close(cx)
    }
}

/// A shell word for `text`.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// A fresh scratch folder for one test.
fn scratch(test: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("circuit-exec-smol-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Waits until process `pid` is gone: exited and reaped (a zombie still
/// has its `/proc` entry). Polls: nothing signals a reap to a third party.
async fn reaped(pid: u32) {
    let proc = format!("/proc/{pid}");
    while Path::new(&proc).exists() {
        smol::Timer::after(Duration::from_millis(10)).await;
    }
}

fn a_command_link_carries_streams_and_its_child_is_reaped() {
    run(async {
        let dir = scratch("reaped");
        let pid_file = dir.join("pid");
        let (node, mut peers, _) = leaf("parent");
        let exe = std::env::current_exe().unwrap();
        let command = format!(
            "echo $$ > {}; {CHILD}=child exec {}",
            quoted(pid_file.to_str().unwrap()),
            quoted(exe.to_str().unwrap()),
        );
        let link = connect(&node, format!("exec:{command}")).await.unwrap();
        reachable(&mut peers, "child").await;
        let pid: u32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(
            Path::new(&format!("/proc/{pid}")).exists(),
            "the child runs"
        );

        let mut stream = node.connect_to_peer("child").await.unwrap();
        stream.write_all(b"over a pipe").await.unwrap();
        stream.close().await.unwrap();
        let mut echo = Vec::new();
        stream.read_to_end(&mut echo).await.unwrap();
        assert_eq!(echo, b"over a pipe");
        drop(stream);

        let report = link.shutdown(Duration::from_secs(5)).await;
        assert_eq!(report.cut, 0, "{report:?}");
        link.join().await.unwrap();
        reaped(pid).await;
        let _ = std::fs::remove_dir_all(&dir);
    });
}

fn a_command_that_exits_at_once_fails_the_dial_with_its_last_stderr_line() {
    run(async {
        let (node, _, _) = leaf("parent");
        let e = connect(
            &node,
            "exec:echo starting >&2; echo no such host >&2; exit 3",
        )
        .await
        .unwrap_err();
        match &e {
            TransportError::Command { stderr, reason, .. } => {
                assert_eq!(stderr.as_deref(), Some("no such host"));
                assert!(reason.contains("exit status: 3"), "{reason}");
            }
            other => panic!("expected a command error, got {other:?}"),
        }
    });
}

fn a_link_whose_command_talked_garbage_ends_and_is_started_again() {
    run(async {
        let garbage = "printf 'HTTP/1.1 400 Bad Request\\r\\n\\r\\n'; exec sleep 600";
        let (node, _, _) = leaf("parent");
        let link = connect(&node, format!("exec:{garbage}")).await.unwrap();
        let e = link.join().await.unwrap_err();
        assert!(
            matches!(
                e,
                TransportError::Link(NodeError::Mux(_) | NodeError::Handshake { .. })
            ),
            "{e:?}"
        );

        // Runs 1 and 2 write garbage; run 3 exits at once, which (with one
        // attempt allowed) ends the redialling with its last words.
        let dir = scratch("garbage");
        let runs = dir.join("runs");
        let command = format!(
            "echo run >> {runs}; if [ $(wc -l < {runs}) -ge 3 ]; then echo third run >&2; exit 1; fi; {garbage}",
            runs = quoted(runs.to_str().unwrap())
        );
        let policy = ReconnectPolicy::default()
            .initial(Duration::from_millis(1))
            .max_attempts(Some(1));
        let link = connect_with(
            &node,
            format!("exec:{command}"),
            LinkOptions::new().reconnect(policy),
        )
        .await
        .unwrap();
        let e = link.join().await.unwrap_err();
        assert!(
            matches!(&e, TransportError::Command { stderr: Some(s), .. } if s == "third run"),
            "{e:?}"
        );
        assert_eq!(std::fs::read_to_string(&runs).unwrap().lines().count(), 3);
        let _ = std::fs::remove_dir_all(&dir);
    });
}
