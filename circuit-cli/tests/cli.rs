//! The `circuit` binary end to end: real processes linked over loopback
//! TCP. Tests synchronise on the lines the processes print (`listening on
//! ADDR`), never on sleeps; every process is killed when its guard drops,
//! also when a test panics.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::Duration;

/// The longest a test waits for a line or an exit: far above what any
/// command takes, so only a hang reaches it.
const LIMIT: Duration = Duration::from_secs(60);

/// A running `circuit` process, killed on drop.
struct Proc {
    name: String,
    child: Child,
    lines: Receiver<String>,
    /// Lines of stderr as they come; what was taken is in `stderr_seen`.
    stderr: Receiver<String>,
    stderr_seen: String,
    /// Held open (never written) by [`Proc::start_with_open_stdin`].
    _stdin: Option<ChildStdin>,
}

/// How a process ended.
struct Finished {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Proc {
    /// Starts `circuit ARGS` with no stdin.
    fn start(args: &[&str]) -> Proc {
        Proc::spawn(args, None)
    }

    /// Starts `circuit ARGS` with `input` on stdin, then end of input.
    fn start_with_input(args: &[&str], input: Vec<u8>) -> Proc {
        Proc::spawn(args, Some(input))
    }

    /// Starts `circuit ARGS` with a stdin that stays open, empty, for as
    /// long as the process runs.
    fn start_with_open_stdin(args: &[&str]) -> Proc {
        let mut proc = Proc::spawn_with(args, None, true);
        proc._stdin = proc.child.stdin.take();
        proc
    }

    fn spawn(args: &[&str], input: Option<Vec<u8>>) -> Proc {
        Proc::spawn_with(args, input, false)
    }

    fn spawn_with(args: &[&str], input: Option<Vec<u8>>, open_stdin: bool) -> Proc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_circuit"))
            .args(args)
            .stdin(if input.is_some() || open_stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the circuit binary starts");
        if let Some((input, Some(mut stdin))) = input.map(|i| (i, child.stdin.take())) {
            thread::spawn(move || {
                // The process may exit before reading it all; that is its
                // own failure to report.
                let _ = stdin.write_all(&input);
            });
        }
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
        let err = child.stderr.take().expect("stderr is piped");
        thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if err_tx.send(line + "\n").is_err() {
                    break;
                }
            }
        });
        Proc {
            name: args.first().copied().unwrap_or("circuit").to_owned(),
            child,
            lines,
            stderr,
            stderr_seen: String::new(),
            _stdin: None,
        }
    }

    /// The next line on stdout.
    fn line(&mut self) -> String {
        match self.lines.recv_timeout(LIMIT) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                panic!("circuit {}: no output in {LIMIT:?}", self.name)
            }
            Err(RecvTimeoutError::Disconnected) => {
                let stderr = self.rest_of_stderr();
                panic!("circuit {} ended early; stderr:\n{stderr}", self.name)
            }
        }
    }

    /// The address from the next line, which must be `listening on ADDR`.
    fn listening(&mut self) -> String {
        let line = self.line();
        match line.strip_prefix("listening on ") {
            Some(address) => address.to_owned(),
            None => panic!(
                "circuit {}: expected `listening on ADDR`, got {line:?}",
                self.name
            ),
        }
    }

    /// Waits for the process to exit and collects what it printed.
    fn finish(mut self) -> Finished {
        let mut stdout = String::new();
        loop {
            match self.lines.recv_timeout(LIMIT) {
                Ok(line) => {
                    stdout += &line;
                    stdout.push('\n');
                }
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("circuit {} did not exit", self.name),
            }
        }
        let stderr = self.rest_of_stderr();
        let status = self.child.wait().expect("wait for circuit");
        Finished {
            code: status.code(),
            stdout,
            stderr,
        }
    }
}

impl Proc {
    /// What the process wrote on stderr, to its end.
    fn rest_of_stderr(&mut self) -> String {
        loop {
            match self.stderr.recv_timeout(LIMIT) {
                Ok(line) => self.stderr_seen += &line,
                Err(RecvTimeoutError::Disconnected) => {
                    return std::mem::take(&mut self.stderr_seen)
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("circuit {} did not close stderr", self.name)
                }
            }
        }
    }

    /// The first line on stderr containing `text`, once there is one
    /// (in any order with the lines asked for before).
    fn stderr_line(&mut self, text: &str) -> String {
        if let Some(line) = self.stderr_seen.lines().find(|l| l.contains(text)) {
            return line.to_owned();
        }
        loop {
            match self.stderr.recv_timeout(LIMIT) {
                Ok(line) => {
                    self.stderr_seen += &line;
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "circuit {}: no {text:?} on stderr:\n{}",
                    self.name, self.stderr_seen
                ),
            }
        }
    }

    /// Writes `bytes` to a stdin held open by [`Proc::start_with_open_stdin`].
    fn write_stdin(&mut self, bytes: &[u8]) {
        let stdin = self._stdin.as_mut().expect("stdin held open");
        stdin.write_all(bytes).expect("write to stdin");
        stdin.flush().expect("flush stdin");
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Finished {
    /// Asserts a successful exit and returns stdout.
    fn ok(self) -> String {
        assert_eq!(
            self.code,
            Some(0),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self.stdout
    }

    /// Asserts exit status `code` with a one-line error containing `text`.
    fn fails_with(self, code: i32, text: &str) {
        assert_eq!(self.code, Some(code), "stderr:\n{}", self.stderr);
        let stderr = self.stderr.trim_end();
        assert!(
            stderr.starts_with("error: ") && stderr.contains(text) && stderr.lines().count() == 1,
            "expected one line `error: ...{text}...`, got:\n{stderr}"
        );
    }
}

/// Runs `circuit ARGS` to its end.
fn run(args: &[&str]) -> Finished {
    Proc::start(args).finish()
}

/// A node running `--echo`, listening on a port of its choice.
fn echo_node(name: &str) -> (Proc, String) {
    let mut node = Proc::start(&["node", "--name", name, "--listen", "127.0.0.1:0", "--echo"]);
    let address = node.listening();
    (node, address)
}

#[test]
fn bench_against_an_echo_node_in_both_modes() {
    let (_node, address) = echo_node("echo");
    let args = [
        "bench",
        "--name",
        "bencher",
        "--connect",
        &address,
        "--peer",
        "echo",
    ];

    let throughput = [&args[..], &["--bytes", "4MiB", "--streams", "3"]].concat();
    let stdout = run(&throughput).ok();
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("throughput: ") && last.contains(" MB/s"),
        "{stdout}"
    );
    assert!(last.contains("3 streams x 4.0 MiB"), "{last}");

    let latency = [&args[..], &["--latency", "200"]].concat();
    let stdout = run(&latency).ok();
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("latency: mean ") && last.contains("p99"),
        "{stdout}"
    );
}

#[test]
fn cat_round_trip_through_an_echo_node() {
    let (_node, address) = echo_node("echo");
    let input: Vec<u8> = (0..200_000u32)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .collect();
    let cat = Proc::start_with_input(
        &["cat", "--name", "cat", "--connect", &address, "echo"],
        input.clone(),
    );
    let stdout = cat.finish().ok();
    assert_eq!(stdout.len(), input.len());
    assert!(stdout.as_bytes() == input, "the echo differs from stdin");
}

#[test]
fn forward_reaches_a_tcp_service_through_a_router() {
    // The service: a TCP echo server, one connection.
    let service = TcpListener::bind("127.0.0.1:0").expect("bind the service");
    let service_address = service.local_addr().expect("service address").to_string();
    let server = thread::spawn(move || {
        let (mut socket, _) = service.accept().expect("accept");
        let mut read = socket.try_clone().expect("clone the socket");
        std::io::copy(&mut read, &mut socket).expect("echo");
        // Copy ends at the client's end of stream: close ours too.
        socket
            .shutdown(std::net::Shutdown::Write)
            .expect("shutdown");
    });

    // a - r - b, with b exposing the service and a forwarding to it.
    let mut router = Proc::start(&["node", "--name", "r", "--router", "--listen", "127.0.0.1:0"]);
    let mesh = router.listening();
    let mut b = Proc::start(&[
        "node",
        "--name",
        "b",
        "--connect",
        &mesh,
        "--forward-to",
        &service_address,
    ]);
    assert_eq!(b.line(), format!("connected to {mesh}"));
    let mut a = Proc::start(&[
        "forward",
        "--name",
        "a",
        "--connect",
        &mesh,
        "--local",
        "127.0.0.1:0",
        "--peer",
        "b",
    ]);
    let local = a.listening();

    let mut client = TcpStream::connect(&local).expect("connect to the forwarded port");
    let message = b"hello through the mesh".repeat(1000);
    client.write_all(&message).expect("write");
    client
        .shutdown(std::net::Shutdown::Write)
        .expect("shutdown");
    let mut echo = Vec::new();
    client.read_to_end(&mut echo).expect("read the echo");
    assert!(echo == message, "the service's echo differs");
    server.join().expect("the service ends");
}

#[test]
fn a_router_with_reports_says_which_hop_closed_each_stream() {
    let mut router = Proc::start(&[
        "node",
        "--name",
        "r",
        "--router",
        "--reports",
        "--listen",
        "127.0.0.1:0",
    ]);
    let mesh = router.listening();
    let mut b = Proc::start(&["node", "--name", "b", "--connect", &mesh, "--echo"]);
    assert_eq!(b.line(), format!("connected to {mesh}"));
    while router.line() != "peer b reachable" {}
    let cat = Proc::start_with_input(
        &["cat", "--name", "a", "--connect", &mesh, "b"],
        b"through the router\n".to_vec(),
    );
    assert_eq!(cat.finish().ok(), "through the router\n");
    // Both directions of the stream a -> b closed at their far ends, and
    // the router says so; other lines (a coming and going) may come between.
    let mut closes = Vec::new();
    while closes.len() < 2 {
        let line = router.line();
        if line.starts_with("closed: ") {
            closes.push(line);
        }
    }
    closes.sort();
    assert!(
        closes[0].starts_with("closed: r: stream a -> b (a #")
            && closes[0].contains(") closed towards the destination by neighbour a"),
        "{closes:?}"
    );
    assert!(
        closes[1].starts_with("closed: r: stream a -> b (a #")
            && closes[1].contains(") closed towards the source by neighbour b"),
        "{closes:?}"
    );
}

#[test]
fn bench_fails_on_a_corrupted_echo() {
    // A service that echoes every byte with its lowest bit flipped.
    let service = TcpListener::bind("127.0.0.1:0").expect("bind the service");
    let service_address = service.local_addr().expect("service address").to_string();
    thread::spawn(move || {
        let Ok((mut socket, _)) = service.accept() else {
            return;
        };
        let mut buf = [0; 4096];
        while let Ok(n @ 1..) = socket.read(&mut buf) {
            buf[..n].iter_mut().for_each(|b| *b ^= 1);
            if socket.write_all(&buf[..n]).is_err() {
                return;
            }
        }
    });
    let mut liar = Proc::start(&[
        "node",
        "--name",
        "liar",
        "--listen",
        "127.0.0.1:0",
        "--forward-to",
        &service_address,
    ]);
    let address = liar.listening();
    run(&[
        "bench",
        "--name",
        "b",
        "--connect",
        &address,
        "--peer",
        "liar",
        "--latency",
        "5",
    ])
    .fails_with(6, "echo mismatch on stream 0 at byte 0");
}

#[test]
fn routes_shows_the_mesh_seen_from_a_router() {
    let mut router = Proc::start(&["node", "--name", "r", "--router", "--listen", "127.0.0.1:0"]);
    let mesh = router.listening();
    let mut b = Proc::start(&["node", "--name", "b", "--connect", &mesh, "--echo"]);
    assert_eq!(b.line(), format!("connected to {mesh}"));
    // b is up once the router says so.
    while router.line() != "peer b reachable" {}

    let table = run(&["routes", "--connect", &mesh, "--settle", "200ms"]).ok();
    let row = table
        .lines()
        .find(|l| l.starts_with("b "))
        .unwrap_or_else(|| panic!("{table}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cells[..3], ["b", "r", "4"], "{table}");

    let dot = run(&["routes", "--connect", &mesh, "--dot"]).ok();
    assert!(
        dot.starts_with("digraph circuit {") && dot.contains("\"r\" -> \"b\""),
        "{dot}"
    );
}

#[test]
fn credit_is_negotiated_by_default_and_off_or_required_on_request() {
    let (_node, address) = echo_node("echo");
    let table = run(&["routes", "--connect", &address, "--settle", "100ms"]).ok();
    assert!(table.contains("link to echo: credit mode"), "{table}");
    let bench = |credit: &str| {
        run(&[
            "bench",
            "--name",
            "bencher",
            "--connect",
            &address,
            "--peer",
            "echo",
            "--bytes",
            "1MiB",
            "--streams",
            "2",
            "--credit",
            credit,
        ])
    };
    bench("off").ok();
    bench("required").ok();

    let mut v0 = Proc::start(&[
        "node",
        "--name",
        "v0",
        "--listen",
        "127.0.0.1:0",
        "--echo",
        "--credit",
        "off",
    ]);
    let v0_address = v0.listening();
    let table = run(&["routes", "--connect", &v0_address, "--settle", "100ms"]).ok();
    assert!(table.contains("link to v0: v0 mode"), "{table}");
    let required = run(&[
        "cat",
        "--name",
        "c",
        "--connect",
        &v0_address,
        "--credit",
        "required",
        "v0",
    ]);
    assert!(
        required.code.is_some_and(|c| c != 0) && required.stderr.contains("credit"),
        "{}",
        required.stderr
    );
    let bad = run(&[
        "bench",
        "--credit",
        "sometimes",
        "--name",
        "x",
        "--peer",
        "v0",
    ]);
    assert_eq!(bad.code, Some(2), "{}", bad.stderr);
}

#[test]
fn a_stuck_consumer_behind_two_routers_does_not_stop_a_bench_to_another_node() {
    // A TCP service that accepts and never reads.
    let sink = TcpListener::bind("127.0.0.1:0").expect("bind the sink");
    let sink_address = sink.local_addr().expect("sink address").to_string();
    let (accepted_tx, accepted) = mpsc::channel();
    let (_hold_tx, hold) = mpsc::channel::<()>();
    thread::spawn(move || {
        let (socket, _) = sink.accept().expect("accept");
        let _ = accepted_tx.send(());
        // Held, never read, until the test ends.
        let _ = hold.recv();
        drop(socket);
    });

    // r1 - r2, and behind r2: b1 splicing to the sink, b2 echoing.
    let mut r1 = Proc::start(&[
        "node",
        "--name",
        "r1",
        "--router",
        "--listen",
        "127.0.0.1:0",
    ]);
    let r1_address = r1.listening();
    let mut r2 = Proc::start(&[
        "node",
        "--name",
        "r2",
        "--router",
        "--listen",
        "127.0.0.1:0",
        "--connect",
        &r1_address,
    ]);
    let r2_address = r2.listening();
    let _b1 = Proc::start(&[
        "node",
        "--name",
        "b1",
        "--connect",
        &r2_address,
        "--forward-to",
        &sink_address,
    ]);
    let _b2 = Proc::start(&["node", "--name", "b2", "--connect", &r2_address, "--echo"]);
    let mut seen = (false, false);
    while seen != (true, true) {
        match r1.line().as_str() {
            "peer b1 reachable" => seen.0 = true,
            "peer b2 reachable" => seen.1 = true,
            _ => {}
        }
    }

    // A client pushes 64 MiB towards the sink; once the sink has accepted,
    // that stream fills every buffer on its way and stays stuck.
    let _pusher = Proc::start_with_input(
        &["cat", "--name", "pusher", "--connect", &r1_address, "b1"],
        vec![7; 64 << 20],
    );
    accepted.recv_timeout(LIMIT).expect("the sink accepts");

    // A bench to b2 over the same two router links completes.
    let stdout = run(&[
        "bench",
        "--name",
        "bencher",
        "--connect",
        &r1_address,
        "--peer",
        "b2",
        "--bytes",
        "32MiB",
        "--streams",
        "1",
    ])
    .ok();
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.starts_with("throughput: "), "{stdout}");
}

#[test]
fn demo_reroutes_and_degrades_to_plain_lines_off_a_terminal() {
    let stdout = run(&["demo", "--stream-bytes", "256KiB"]).ok();
    assert!(
        !stdout.contains('\r'),
        "a progress line was redrawn on a pipe"
    );
    let after = stdout
        .split("after the cut:")
        .nth(1)
        .unwrap_or_else(|| panic!("{stdout}"));
    let b_row = after
        .lines()
        .find(|l| l.starts_with("b "))
        .unwrap_or_default();
    assert!(
        b_row.split_whitespace().nth(1) == Some("r"),
        "b not through r:\n{stdout}"
    );
    assert!(
        stdout
            .lines()
            .last()
            .unwrap_or_default()
            .starts_with("demo done"),
        "{stdout}"
    );
}

#[test]
fn a_bad_address_is_refused() {
    run(&["cat", "--name", "c", "--connect", "nonsense", "x"]).fails_with(2, "bad address");
    run(&["node", "--name", "n", "--listen", "127.0.0.1:99999"]).fails_with(2, "bad address");
}

#[test]
fn an_unreachable_peer_fails_after_the_timeout() {
    let (_node, address) = echo_node("echo");
    run(&[
        "cat",
        "--timeout",
        "0.5",
        "--name",
        "c",
        "--connect",
        &address,
        "nobody",
    ])
    .fails_with(4, "peer nobody is not reachable");
}

#[test]
fn nothing_listening_fails_at_once() {
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = closed.local_addr().expect("address").to_string();
    drop(closed);
    run(&[
        "bench",
        "--name",
        "c",
        "--connect",
        &address,
        "--peer",
        "x",
        "--latency",
        "1",
    ])
    .fails_with(4, "cannot connect");
}

#[test]
fn a_protocol_mismatch_is_reported() {
    let (_node, address) = echo_node("echo");
    run(&["routes", "--connect", &address, "--protocol", "other"])
        .fails_with(5, "peer runs protocol \"test\", this node \"other\"");
}

#[test]
fn a_name_over_255_bytes_is_refused() {
    let long = "n".repeat(256);
    run(&["node", "--name", &long, "--listen", "127.0.0.1:0"])
        .fails_with(2, "256 bytes long; a name is at most 255 bytes");
}

#[test]
fn a_port_in_use_is_refused() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("address").to_string();
    run(&["node", "--name", "n", "--listen", &address]).fails_with(3, "already in use");
}

#[test]
fn every_command_has_examples_in_its_help() {
    for command in [
        "demo",
        "node",
        "forward",
        "cat",
        "bench",
        "routes",
        "completions",
    ] {
        let help = run(&[command, "--help"]).ok();
        assert!(
            help.contains("Examples:"),
            "circuit {command} --help:\n{help}"
        );
    }
    assert!(run(&["--help"]).ok().contains("Exit status:"));
}

/// The lines of `stdout`, each parsed as one JSON object.
fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

#[test]
fn routes_json_prints_one_object_per_node_and_per_link() {
    let mut router = Proc::start(&["node", "--name", "r", "--router", "--listen", "127.0.0.1:0"]);
    let mesh = router.listening();
    let mut b = Proc::start(&["node", "--name", "b", "--connect", &mesh, "--echo"]);
    assert_eq!(b.line(), format!("connected to {mesh}"));
    while router.line() != "peer b reachable" {}

    let stdout = run(&["routes", "--connect", &mesh, "--settle", "200ms", "--json"]).ok();
    let lines = json_lines(&stdout);
    let node = |name: &str| {
        lines
            .iter()
            .find(|l| l["node"] == name)
            .unwrap_or_else(|| panic!("no {name}:\n{stdout}"))
    };
    let b = node("b");
    assert_eq!(b["next_hop"], "r", "{b}");
    assert_eq!(b["quality"], 4, "{b}");
    assert!(b.get("feasible_distance").is_some(), "{b}");
    let routes = b["routes"].as_array().expect("routes");
    assert!(
        routes
            .iter()
            .any(|r| r["best"] == true && r["next_hop"] == "r"),
        "{b}"
    );
    assert_eq!(node("r")["next_hop"], "r");
    let link = lines
        .iter()
        .find(|l| l.get("peer").is_some())
        .unwrap_or_else(|| panic!("no link:\n{stdout}"));
    assert_eq!(link["peer"], "r");
    assert_eq!(link["mode"], "credit");
    assert!(link["bytes_in"].as_u64().is_some_and(|n| n > 0), "{link}");
    for field in [
        "bytes_out",
        "streams_open",
        "streams_waiting_for_credit",
        "bytes_granted",
        "rtt_us",
    ] {
        assert!(link.get(field).is_some(), "{field} missing: {link}");
    }
}

#[test]
fn bench_json_duration_and_bits_per_second() {
    let (_node, address) = echo_node("echo");
    let args = [
        "bench",
        "--name",
        "bencher",
        "--connect",
        &address,
        "--peer",
        "echo",
    ];
    let bench = |extra: &[&str]| run(&[&args[..], extra].concat()).ok();

    let stdout = bench(&["--bytes", "1MiB", "--streams", "2", "--json"]);
    let result = &json_lines(&stdout)[0];
    assert_eq!(result["mode"], "throughput");
    assert_eq!(result["direction"], "echo");
    assert_eq!(result["streams"], 2);
    assert_eq!(result["bytes"], 2 << 20);
    let rate = result["bytes_per_sec"].as_f64().expect("bytes_per_sec");
    let bits = result["bits_per_sec"].as_f64().expect("bits_per_sec");
    assert!(
        rate > 0.0 && (bits - 8.0 * rate).abs() < 1e-6 * bits,
        "{result}"
    );

    // --duration: sends for that long, however many bytes that is.
    let stdout = bench(&["--duration", "300ms", "--json"]);
    let result = &json_lines(&stdout)[0];
    assert_eq!(result["streams"], 1);
    assert!(result["bytes"].as_u64().is_some_and(|n| n > 0), "{result}");
    assert!(
        result["seconds"].as_f64().is_some_and(|s| s >= 0.3),
        "{result}"
    );

    // --lead: each stream stays within 128 KiB of its echo; every byte
    // still comes back.
    let stdout = bench(&[
        "--bytes",
        "4MiB",
        "--streams",
        "2",
        "--lead",
        "128KiB",
        "--json",
    ]);
    assert_eq!(json_lines(&stdout)[0]["bytes"], 8 << 20, "{stdout}");

    let stdout = bench(&["--duration", "100ms", "--streams", "2"]);
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("throughput: ") && last.contains(" MB/s, ") && last.contains("bit/s"),
        "{stdout}"
    );

    let stdout = bench(&["--latency", "50", "--json"]);
    let result = &json_lines(&stdout)[0];
    assert_eq!(result["mode"], "latency");
    assert_eq!(result["count"], 50);
    let (p50, p99) = (result["p50_us"].as_f64(), result["p99_us"].as_f64());
    assert!(
        p50.zip(p99).is_some_and(|(a, b)| 0.0 < a && a <= b),
        "{result}"
    );
    assert!(
        result["mean_us"].as_f64().is_some_and(|m| m > 0.0),
        "{result}"
    );
}

#[test]
fn bench_one_way_to_a_discarding_node() {
    let mut sink = Proc::start(&[
        "node",
        "--name",
        "sink",
        "--listen",
        "127.0.0.1:0",
        "--discard",
    ]);
    let address = sink.listening();
    let args = [
        "bench",
        "--name",
        "bencher",
        "--connect",
        &address,
        "--peer",
        "sink",
        "--one-way",
    ];
    let bench = |extra: &[&str]| run(&[&args[..], extra].concat()).ok();

    let stdout = bench(&["--bytes", "4MiB", "--streams", "2", "--json"]);
    let result = &json_lines(&stdout)[0];
    assert_eq!(result["direction"], "one-way");
    assert_eq!(result["bytes"], 8 << 20, "{result}");

    let stdout = bench(&["--duration", "200ms"]);
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("throughput: ") && last.contains("sent one way"),
        "{stdout}"
    );
    // One way against an echo node works too: its answer is read and dropped.
    let (_echo, echo_address) = echo_node("echo");
    let stdout = run(&[
        "bench",
        "--name",
        "b",
        "--connect",
        &echo_address,
        "--peer",
        "echo",
        "--one-way",
        "--bytes",
        "2MiB",
        "--json",
    ])
    .ok();
    assert_eq!(json_lines(&stdout)[0]["bytes"], 2 << 20, "{stdout}");
}

#[test]
fn cat_listen_receives_exactly_what_another_cat_sends_through_a_router() {
    let mut router = Proc::start(&["node", "--name", "r", "--router", "--listen", "127.0.0.1:0"]);
    let mesh = router.listening();
    // Its stdin stays open: what it prints is only what it received.
    let listener =
        Proc::start_with_open_stdin(&["cat", "--name", "inbox", "--connect", &mesh, "--listen"]);
    while router.line() != "peer inbox reachable" {}
    let input: Vec<u8> = (0..50_000u32)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .collect();
    let sender = Proc::start_with_input(
        &["cat", "--name", "a", "--connect", &mesh, "inbox"],
        input.clone(),
    );
    let received = listener.finish();
    assert!(
        received.stderr.contains("accepted from a"),
        "{}",
        received.stderr
    );
    let received = received.ok();
    assert_eq!(received.len(), input.len());
    assert!(
        received.as_bytes() == input,
        "the listener's output differs"
    );
    assert_eq!(sender.finish().ok(), "");
}

#[test]
fn version_names_the_wire_versions() {
    let stdout = run(&["--version"]).ok();
    assert_eq!(
        stdout.trim_end(),
        format!(
            "circuit {} (protocol 0, credit extension 1)",
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let script = run(&["completions", shell]).ok();
        assert!(
            script.len() > 100 && script.contains("circuit") && script.contains("--listen"),
            "circuit completions {shell}:\n{script}"
        );
    }
    assert_eq!(run(&["completions", "tcsh"]).code, Some(2));
}

/// A listening socket that never accepts, its queue full: a connect to it
/// hangs, as to an address that drops SYNs. Holds the queued connections.
struct BlackHole {
    address: String,
    _listener: socket2::Socket,
    _queued: Vec<TcpStream>,
}

impl BlackHole {
    fn new() -> BlackHole {
        use socket2::{Domain, Socket, Type};
        let listener = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
        let any: std::net::SocketAddr = "127.0.0.1:0".parse().expect("address");
        listener.bind(&any.into()).expect("bind");
        listener.listen(0).expect("listen");
        let address = listener
            .local_addr()
            .expect("address")
            .as_socket()
            .expect("an IP address");
        // Fill the queue until a connect gets no answer.
        let mut queued = Vec::new();
        loop {
            match TcpStream::connect_timeout(&address, Duration::from_millis(300)) {
                Ok(stream) => queued.push(stream),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => break,
                Err(e) => panic!("filling the queue: {e}"),
            }
            assert!(queued.len() < 64, "the listen queue never filled");
        }
        BlackHole {
            address: address.to_string(),
            _listener: listener,
            _queued: queued,
        }
    }
}

#[test]
fn timeout_bounds_the_tcp_connect() {
    let hole = BlackHole::new();
    run(&[
        "cat",
        "--timeout",
        "1",
        "--name",
        "c",
        "--connect",
        &hole.address,
        "x",
    ])
    .fails_with(4, "no answer within 1s");
    run(&[
        "bench",
        "--timeout",
        "500ms",
        "--name",
        "b",
        "--connect",
        &hole.address,
        "--peer",
        "x",
        "--latency",
        "1",
    ])
    .fails_with(4, "no answer within 500ms");
    // node --connect-once fails the same way instead of dialling again.
    run(&[
        "node",
        "--timeout",
        "500ms",
        "--name",
        "n",
        "--connect",
        &hole.address,
        "--connect-once",
    ])
    .fails_with(4, "no answer within 500ms");
}

/// A raw TCP client of a node that never speaks; reads on a thread until
/// the node closes the connection.
fn silent_client(address: &str) -> (TcpStream, Receiver<usize>) {
    let socket = TcpStream::connect(address).expect("connect");
    let mut reader = socket.try_clone().expect("clone the socket");
    let (tx, closed) = mpsc::channel();
    thread::spawn(move || {
        let mut total = 0;
        let mut buf = [0; 4096];
        while let Ok(n @ 1..) = reader.read(&mut buf) {
            total += n;
        }
        let _ = tx.send(total);
    });
    (socket, closed)
}

#[test]
fn a_client_that_never_speaks_is_closed_at_the_handshake_timeout() {
    let mut node = Proc::start(&[
        "node",
        "--name",
        "n",
        "--listen",
        "127.0.0.1:0",
        "--handshake-timeout",
        "200ms",
    ]);
    let address = node.listening();
    let (_socket, closed) = silent_client(&address);
    let sent = closed.recv_timeout(LIMIT).expect("the node closes it");
    assert!(sent > 0, "the node spoke first, then hung up");
}

#[test]
fn connections_beyond_max_handshakes_are_closed_at_once() {
    let mut node = Proc::start(&[
        "node",
        "--name",
        "n",
        "--listen",
        "127.0.0.1:0",
        "--max-handshakes",
        "1",
        "--handshake-timeout",
        "1h",
    ]);
    let address = node.listening();
    // The first is accepted: the node sends it its Identify.
    let mut first = TcpStream::connect(&address).expect("connect");
    let mut byte = [0; 1];
    first.read_exact(&mut byte).expect("the node speaks first");
    // The second is closed before a byte.
    let (_second, closed) = silent_client(&address);
    assert_eq!(closed.recv_timeout(LIMIT), Ok(0));
    let said = node.stderr_line("too many links in their handshake");
    assert!(said.contains("WARN"), "{said}");
}

#[test]
fn a_node_dials_again_when_its_first_connect_fails() {
    let address = {
        let probe = TcpListener::bind("127.0.0.1:0").expect("bind");
        probe.local_addr().expect("address").to_string()
    };
    let mut leaf = Proc::start(&["node", "--name", "leaf", "--connect", &address]);
    assert_eq!(leaf.line(), format!("dialling {address}"));
    // The router comes up later on that address: the leaf finds it.
    let mut router = Proc::start(&["node", "--name", "r", "--router", "--listen", &address]);
    assert_eq!(router.listening(), address);
    while router.line() != "peer leaf reachable" {}
    // The failed first dial, each redial and the link's coming up are
    // said on stderr, at the default log level.
    leaf.stderr_line("first dial failed");
    assert!(leaf.stderr_line("dialling again wait=").contains("INFO"));
    assert!(leaf.stderr_line("link up").contains("peer=r"));
}

#[test]
fn a_stream_broken_behind_a_router_names_the_hop_that_failed() {
    let mut router = Proc::start(&["node", "--name", "r", "--router", "--listen", "127.0.0.1:0"]);
    let mesh = router.listening();
    let mut e4 = Proc::start(&["node", "--name", "e4", "--connect", &mesh, "--echo"]);
    assert_eq!(e4.line(), format!("connected to {mesh}"));
    while router.line() != "peer e4 reachable" {}
    let mut cat = Proc::start_with_open_stdin(&["cat", "--name", "a", "--connect", &mesh, "e4"]);
    cat.write_stdin(b"ping\n");
    assert_eq!(cat.line(), "ping");
    // e4 goes away with the stream open: the router's link to it ends.
    drop(e4);
    let finished = cat.finish();
    assert_eq!(finished.code, Some(1), "stderr:\n{}", finished.stderr);
    assert!(
        finished.stderr.contains("r: link to e4 "),
        "the error does not name the hop:\n{}",
        finished.stderr
    );
}

#[test]
fn keep_alive_ends_a_link_to_a_peer_that_stopped_answering() {
    let mut a = Proc::start(&[
        "node",
        "--name",
        "a",
        "--listen",
        "127.0.0.1:0",
        "--keep-alive",
        "200ms",
    ]);
    let address = a.listening();
    let b = Proc::start(&["node", "--name", "b", "--connect", &address]);
    while a.line() != "peer b reachable" {}
    // b stops (SIGSTOP): its socket stays open, nothing answers a's PINGs.
    let pid = b.child.id().to_string();
    let stop = Command::new("kill").args(["-STOP", &pid]).status();
    assert!(stop.expect("kill runs").success());
    let down = a.stderr_line("link down");
    let _ = Command::new("kill").args(["-CONT", &pid]).status();
    assert!(down.contains("peer=b"), "{down}");
    assert!(
        down.contains("PONG") || down.contains("keep-alive"),
        "{down}"
    );
    while a.line() != "peer b unreachable" {}
}
