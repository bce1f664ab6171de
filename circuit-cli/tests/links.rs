//! Links over a command (`--connect exec:CMD`) and over a node's own stdin
//! and stdout (`node --stdio`), end to end with the binary just built: the
//! command each test runs is that binary again. Tests synchronise on the
//! lines the processes print, never on sleeps; every process is killed
//! when its guard drops.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

/// The longest a test waits for a line or an exit.
const LIMIT: Duration = Duration::from_secs(60);

const CIRCUIT: &str = env!("CARGO_BIN_EXE_circuit");

/// A shell word for `text`.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// `exec:` running this binary with `args` (shell words, as written).
fn exec(args: &str) -> String {
    format!("exec:exec {} {args}", quoted(CIRCUIT))
}

/// A running `circuit`, killed on drop, its stdout and stderr read line by
/// line.
struct Proc {
    child: Child,
    out: Receiver<String>,
    err: Receiver<String>,
}

fn lines(read: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(read).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Proc {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Proc {
        let mut child = Command::new(CIRCUIT)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the circuit binary starts");
        let out = lines(child.stdout.take().unwrap());
        let err = lines(child.stderr.take().unwrap());
        Proc { child, out, err }
    }

    /// Waits for a line on `stream` containing `text`, returning it.
    fn wait(stream: &Receiver<String>, text: &str, seen: &mut Vec<String>) -> String {
        let deadline = Instant::now() + LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match stream.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(line) => seen.push(line),
                Err(e) => panic!("no line with {text:?} ({e:?}); saw:\n{}", seen.join("\n")),
            }
        }
    }

    fn stdout_line(&mut self, text: &str) -> String {
        Proc::wait(&self.out, text, &mut Vec::new())
    }

    fn stderr_line(&mut self, text: &str) -> String {
        Proc::wait(&self.err, text, &mut Vec::new())
    }

    /// Waits for the exit: its code and all of stderr.
    fn exit(mut self) -> (Option<i32>, String) {
        let status = self.child.wait().expect("wait");
        let stderr: Vec<String> = self.err.iter().collect();
        (status.code(), stderr.join("\n"))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh scratch folder.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("circuit-links-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The process id a command wrote to `file` (`echo $$ > file; exec ...`).
fn pid_in(file: &Path) -> u32 {
    std::fs::read_to_string(file)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Waits until process `pid` is gone: exited and reaped (a zombie keeps
/// its `/proc` entry). Polls, bounded: nothing signals a reap to a third
/// party.
fn wait_gone(pid: u32) {
    let deadline = Instant::now() + LIMIT;
    while Path::new(&format!("/proc/{pid}")).exists() {
        assert!(Instant::now() < deadline, "process {pid} still there");
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn cat_round_trip_over_an_exec_link_to_a_stdio_node() {
    let input: Vec<u8> = (0..50_000u32)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .collect();
    let connect = exec("node --name dev --stdio --echo");
    let mut cat = Command::new(CIRCUIT)
        .args(["cat", "--name", "me", "--connect", &connect, "dev"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = cat.stdin.take().unwrap();
    let feed = input.clone();
    thread::spawn(move || stdin.write_all(&feed));
    let output = cat.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        output.stdout == input,
        "the echo differs from stdin; stderr:\n{stderr}"
    );
}

#[test]
fn an_exec_child_is_restarted_when_it_dies_and_killed_when_the_node_stops() {
    let dir = scratch("restart");
    let pid_file = dir.join("pid");
    let connect = format!(
        "exec:echo $$ > {}; exec {} node --name dev --stdio --echo",
        quoted(pid_file.to_str().unwrap()),
        quoted(CIRCUIT)
    );
    let mut node = Proc::start(&["node", "--name", "me", "--connect", &connect], &[]);
    node.stdout_line("peer dev reachable");
    // The stdio node says its lines on its stderr, which ours logs.
    node.stderr_line("peer me reachable");
    let first = pid_in(&pid_file);

    // The child dies: the link ends and the command is started again.
    assert!(Command::new("kill")
        .args(["-KILL", &first.to_string()])
        .status()
        .unwrap()
        .success());
    node.stdout_line("peer dev unreachable");
    node.stdout_line("peer dev reachable");
    let second = pid_in(&pid_file);
    assert_ne!(first, second, "a new child runs");
    wait_gone(first);

    // The node stops (Ctrl-C): its link ends, its child is killed.
    let pid = node.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let (code, stderr) = node.exit();
    assert_eq!(code, Some(0), "{stderr}");
    wait_gone(second);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_exec_command_that_fails_exits_4_with_its_last_stderr_line() {
    let cases = [
        ("exec:", "the command is empty"),
        ("exec:   ", "the command is empty"),
        (
            "exec:echo connecting >&2; echo ssh: Could not resolve hostname dev >&2; exit 255",
            "(exit status: 255): ssh: Could not resolve hostname dev",
        ),
        (
            "exec:/nonexistent/circuit node --stdio",
            "/nonexistent/circuit: not found",
        ),
        // It starts, says nothing on stdout, and exits.
        (
            "exec:true",
            "it exited before it wrote a byte (exit status: 0)",
        ),
    ];
    for (address, expected) in cases {
        let node = Proc::start(&["node", "--name", "me", "--connect", address], &[]);
        let (code, stderr) = node.exit();
        let last = stderr.lines().last().unwrap_or_default();
        assert_eq!(code, Some(4), "{address}: {stderr}");
        assert!(
            last.starts_with("error: cannot link over"),
            "{address}: {stderr}"
        );
        assert!(last.contains(expected), "{address}: {last}");
    }
}

#[test]
fn a_child_that_writes_garbage_ends_its_link_and_the_node_redials() {
    let garbage = "exec:printf 'HTTP/1.1 400 Bad Request\\r\\n\\r\\n'; exec sleep 600";
    let mut node = Proc::start(
        &[
            "node",
            "--name",
            "me",
            "--listen",
            "127.0.0.1:0",
            "--connect",
            garbage,
        ],
        &[("RUST_LOG", "circuit_transport=info")],
    );
    let address = node
        .stdout_line("listening on ")
        .replace("listening on ", "");
    // Twice: the node lived on after the first garbage and dialled again.
    for _ in 0..2 {
        let line = node.stderr_line("link failed in its handshake");
        assert!(
            line.contains("handshake") || line.contains("stream id"),
            "{line}"
        );
    }
    // And it still serves: another node links to it.
    let mut other = Proc::start(&["node", "--name", "other", "--connect", &address], &[]);
    other.stdout_line("peer me reachable");
}

#[test]
fn a_stdio_node_stops_when_its_stdin_ends() {
    // No one on the other end: the end of stdin ends the link in its
    // handshake and the node with it, and nothing but link bytes reached
    // stdout.
    let output = Command::new(CIRCUIT)
        .args([
            "node",
            "--name",
            "dev",
            "--stdio",
            "--listen",
            "127.0.0.1:0",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("listening on 127.0.0.1:"), "{stderr}");
    assert!(
        stderr.contains("error: link to stdio: link handshake failed"),
        "{stderr}"
    );
    assert!(
        !output.stdout.windows(9).any(|w| w == b"listening"),
        "a status line on stdout"
    );
}
