//! Two nodes over loopback TCP: one echoes every stream, the other sends a
//! line and prints the answer.
//!
//! ```text
//! cargo run -p circuit-transport-tokio --example echo [-- ADDRESS]
//! ```
//!
//! ADDRESS defaults to `127.0.0.1:0`; `unix:/tmp/echo.sock` works too.

use std::time::Duration;

use circuit_node::{Node, NodeConfig};
use circuit_transport_tokio::{connect, listen, tokio_io, TokioTimer};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let (server, _, mut incoming) = Node::new("server", "echo", NodeConfig::leaf())?;
    // The client waits for the server on its timer.
    let config = NodeConfig::leaf().timer(TokioTimer::shared());
    let (client, _, _) = Node::new("client", "echo", config)?;

    let listener = listen(&server, address.as_str()).await?;
    println!("server listening on {}", listener.local_addr());
    tokio::spawn(async move {
        while let Some(stream) = incoming.next().await {
            println!("server: stream from {}", stream.source);
            let mut stream = tokio_io(stream.stream);
            tokio::spawn(async move {
                let (mut read, mut write) = tokio::io::split(&mut stream);
                tokio::io::copy(&mut read, &mut write).await?;
                write.shutdown().await
            });
        }
    });

    let link = connect(&client, listener.local_addr()).await?;
    client
        .wait_reachable("server", Duration::from_secs(10))
        .await?;
    let mut stream = tokio_io(client.connect_to_peer("server").await?);
    stream.write_all(b"hello through a circuit").await?;
    stream.shutdown().await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    println!("client: echoed {answer:?}");

    let report = listener.shutdown(Duration::from_secs(1)).await;
    link.join().await?;
    println!("shut down: {report:?}");
    Ok(())
}
