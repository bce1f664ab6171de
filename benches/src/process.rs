//! Echo servers in a process of their own, as in the baseline set-up in
//! benches/README.md: the server echoes every stream back, each process
//! with a tokio runtime of 2 workers.
//!
//! The bench binary runs itself again as the server: [`serve_if_asked`],
//! called first thing in `main`, turns the child into a server when the
//! environment asks for one, and [`Server::spawn`] starts such a child
//! and learns its port. The child exits when its stdin closes, so it
//! never outlives the bench, even one that panics.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use futures::future::BoxFuture;
use tokio::net::{TcpListener, TcpStream};

use crate::runtime::runtime;

/// The variable that names the server a child should run.
const SERVE: &str = "CIRCUIT_BENCH_SERVE";
/// The variable that gives a server the address of another.
const UPSTREAM: &str = "CIRCUIT_BENCH_UPSTREAM";

/// What a server process does with each connection it accepts.
pub type Handler = Box<dyn FnMut(TcpStream) -> BoxFuture<'static, ()> + Send>;

/// An echo server running in a child process; killed when dropped.
pub struct Server {
    name: String,
    child: Child,
    addr: SocketAddr,
}

impl Server {
    /// Starts this executable again as the server called `name` (one that
    /// [`serve_if_asked`] knows) and waits until it listens.
    pub fn spawn(name: &str) -> Server {
        Server::spawn_with(name, None)
    }

    /// [`spawn`](Server::spawn), telling the server the address of another
    /// one (a router its next hop, say): [`upstream`] returns it there.
    pub fn spawn_with(name: &str, upstream: Option<SocketAddr>) -> Server {
        let exe = std::env::current_exe().expect("the bench executable");
        let mut command = Command::new(exe);
        command
            .env(SERVE, name)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        if let Some(addr) = upstream {
            command.env(UPSTREAM, addr.to_string());
        }
        let mut child = command.spawn().expect("start the server process");
        let stdout = child.stdout.take().expect("the server's stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the server's port");
        let port: u16 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("server {name} said {line:?}, not a port"));
        Server {
            name: name.to_owned(),
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    /// The server's name, as given to [`spawn`](Server::spawn).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Where the server listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connects to the server with `TCP_NODELAY` on; call within the
    /// runtime.
    pub async fn connect(&self) -> TcpStream {
        connect(self.addr).await
    }
}

/// Connects to `addr` with `TCP_NODELAY` on; call within the runtime.
pub async fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).await.expect("connect");
    s.set_nodelay(true).expect("nodelay");
    s
}

/// In a server process started with [`Server::spawn_with`], the address
/// it was given.
pub fn upstream() -> Option<SocketAddr> {
    std::env::var(UPSTREAM).ok()?.parse().ok()
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// If this process was started by [`Server::spawn`], runs the server it
/// names and never returns; otherwise returns at once. `setup` runs once
/// on the server's runtime (it may dial its [`upstream`]) and returns the
/// handler of each accepted connection, or `None` for a name it does not
/// know.
pub fn serve_if_asked<F>(setup: F)
where
    F: FnOnce(String) -> BoxFuture<'static, Option<Handler>>,
{
    let Ok(name) = std::env::var(SERVE) else {
        return;
    };
    // Exit when the parent goes: its end of our stdin closes.
    std::thread::spawn(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
    let rt = runtime();
    rt.block_on(async {
        let Some(mut handler) = setup(name.clone()).await else {
            panic!("no server called {name}");
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("local addr").port();
        let mut out = std::io::stdout();
        writeln!(out, "{port}").expect("tell the port");
        out.flush().expect("tell the port");
        loop {
            let (s, _) = listener.accept().await.expect("accept");
            s.set_nodelay(true).expect("nodelay");
            drop(tokio::spawn(handler(s)));
        }
    });
    unreachable!("the server loop never ends");
}
