//! Three nodes: `a` and `b` are leaves that each dial the router `r`; `a`
//! opens a stream to `b`, which the router forwards.
//!
//! ```text
//! cargo run -p circuit-transport-tokio --example mesh
//! ```

use std::time::Duration;

use circuit_node::{Node, NodeConfig};
use circuit_transport_tokio::{
    connect_with, listen_with, tokio_io, LinkOptions, Shutdown, TokioTimer,
};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (r, _, _) = Node::new("r", "mesh", NodeConfig::router(TokioTimer::shared()))?;
    // a waits for b on its timer.
    let (a, _, _) = Node::new("a", "mesh", NodeConfig::leaf().timer(TokioTimer::shared()))?;
    let (b, _, mut b_incoming) = Node::new("b", "mesh", NodeConfig::leaf())?;

    // One shutdown group for the listener and both dialled links.
    let all = Shutdown::new();
    let options = LinkOptions::new().shutdown(&all);
    let listener = listen_with(&r, "127.0.0.1:0", options.clone()).await?;
    let _a_link = connect_with(&a, listener.local_addr(), options.clone()).await?;
    let _b_link = connect_with(&b, listener.local_addr(), options).await?;

    // b answers every stream with a greeting naming the opener.
    tokio::spawn(async move {
        while let Some(incoming) = b_incoming.next().await {
            let mut stream = tokio_io(incoming.stream);
            let greeting = format!("hello {}, this is b", incoming.source);
            stream.write_all(greeting.as_bytes()).await?;
            stream.shutdown().await?;
        }
        Ok::<_, std::io::Error>(())
    });

    // a learns of b through the router's advertisements.
    a.wait_reachable("b", Duration::from_secs(10)).await?;
    println!("a: next hop to b is {:?}", a.snapshot().next_hop("b"));
    let mut stream = tokio_io(a.connect_to_peer("b").await?);
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    println!("a: {answer}");
    // Dropping the stream closes a's direction too: nothing is left open.
    drop(stream);
    println!("router:\n{}", r.snapshot());

    // Stop accepting, let every link drain (or cut it after a second).
    let report = all.shutdown(Duration::from_secs(1)).await;
    println!("shut down: {report:?}");
    Ok(())
}
