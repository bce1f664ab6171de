//! Two nodes over loopback TCP: one echoes every stream, the other sends a
//! line and prints the answer.
//!
//! ```text
//! cargo run -p circuit-transport-smol --example smol_echo [-- ADDRESS]
//! ```
//!
//! ADDRESS defaults to `127.0.0.1:0`; `unix:/tmp/echo.sock` works too.

use std::time::Duration;

use circuit_node::{Node, NodeConfig};
use circuit_transport_smol::{connect, listen, SmolTimer};
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    smol::block_on(async {
        let (server, _, mut incoming) = Node::new("server", "echo", NodeConfig::leaf())?;
        // The client waits for the server on its timer.
        let config = NodeConfig::leaf().timer(SmolTimer::shared());
        let (client, _, _) = Node::new("client", "echo", config)?;

        let listener = listen(&server, address.as_str()).await?;
        println!("server listening on {}", listener.local_addr());
        smol::spawn(async move {
            while let Some(stream) = incoming.next().await {
                println!("server: stream from {}", stream.source);
                let (read, mut write) = stream.stream.split();
                smol::spawn(async move {
                    smol::io::copy(read, &mut write).await?;
                    write.close().await
                })
                .detach();
            }
        })
        .detach();

        let link = connect(&client, listener.local_addr()).await?;
        client
            .wait_reachable("server", Duration::from_secs(10))
            .await?;
        let mut stream = client.connect_to_peer("server").await?;
        stream.write_all(b"hello through a circuit").await?;
        stream.close().await?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await?;
        println!("client: echoed {answer:?}");

        let report = listener.shutdown(Duration::from_secs(1)).await;
        link.join().await?;
        println!("shut down: {report:?}");
        Ok(())
    })
}
