//! Three nodes: `a` and `b` are leaves that each dial the router `r`; `a`
//! opens a stream to `b`, which the router forwards.
//!
//! ```text
//! cargo run -p circuit-transport-smol --example smol_mesh
//! ```

use std::time::Duration;

use circuit_node::{Node, NodeConfig};
use circuit_transport_smol::{connect_with, listen_with, LinkOptions, Shutdown, SmolTimer};
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    smol::block_on(async {
        let (r, _, _) = Node::new("r", "mesh", NodeConfig::router(SmolTimer::shared()))?;
        // a waits for b on its timer.
        let (a, _, _) = Node::new("a", "mesh", NodeConfig::leaf().timer(SmolTimer::shared()))?;
        let (b, _, mut b_incoming) = Node::new("b", "mesh", NodeConfig::leaf())?;

        // One shutdown group for the listener and both dialled links.
        let all = Shutdown::new();
        let options = LinkOptions::new().shutdown(&all);
        let listener = listen_with(&r, "127.0.0.1:0", options.clone()).await?;
        let _a_link = connect_with(&a, listener.local_addr(), options.clone()).await?;
        let _b_link = connect_with(&b, listener.local_addr(), options).await?;

        // b answers every stream with a greeting naming the opener.
        smol::spawn(async move {
            while let Some(mut incoming) = b_incoming.next().await {
                let greeting = format!("hello {}, this is b", incoming.source);
                incoming.stream.write_all(greeting.as_bytes()).await?;
                incoming.stream.close().await?;
            }
            Ok::<_, std::io::Error>(())
        })
        .detach();

        // a learns of b through the router's advertisements.
        a.wait_reachable("b", Duration::from_secs(10)).await?;
        println!("a: next hop to b is {:?}", a.snapshot().next_hop("b"));
        let mut stream = a.connect_to_peer("b").await?;
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
    })
}
