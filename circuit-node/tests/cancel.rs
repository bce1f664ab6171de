//! Cancellation: every future of the public API may be dropped at any
//! await point. The test polls `connect_to_peer`, writes, reads,
//! connection-layer connects and whole link futures a random number of
//! times (with a no-op waker, letting the network run in between), then
//! drops them. Afterwards the node still works: a fresh stream and a fresh
//! connection echo, and no stream, link or connection entry is left over.

#[path = "support/faulty.rs"]
mod faulty;
#[path = "node/support.rs"]
mod support;

use std::future::Future;
use std::task::Context;

use circuit_frame::Quality;
use circuit_mux::Role as MuxRole;
use circuit_node::connection::ConnectionNode;
use circuit_node::Node;
use futures::future::{BoxFuture, RemoteHandle};
use futures::task::{noop_waker_ref, LocalSpawnExt};
use futures::{AsyncReadExt, AsyncWriteExt, FutureExt, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use faulty::{Faults, Faulty};
use support::*;

/// Polls `fut` up to `polls` times, running the network after each poll,
/// then drops it if it has not finished. Returns whether it finished.
fn poll_then_drop<F: Future>(net: &mut Net, fut: F, polls: usize) -> bool {
    let mut fut = Box::pin(fut);
    let mut cx = Context::from_waker(noop_waker_ref());
    for _ in 0..polls {
        if fut.as_mut().poll(&mut cx).is_ready() {
            return true;
        }
        net.settle();
    }
    drop(fut);
    net.settle();
    false
}

/// Echoes every stream `node` accepts, on the pool.
fn echo_server(net: &Net, mut node: TestNode) -> RemoteHandle<()> {
    let spawner = net.spawner.clone();
    net.spawn(async move {
        while let Some(incoming) = node.incoming.next().await {
            let (reader, mut writer) = incoming.stream.into_split();
            let echo = async move {
                let _ = futures::io::copy(reader, &mut writer).await;
            };
            spawner.spawn_local(echo).unwrap();
        }
    })
}

/// A stream to `peer` that echoes: write, close, read it all back.
async fn echo_once(node: &Node, peer: &str, bytes: &[u8]) -> Vec<u8> {
    let mut s = node.connect_to_peer(peer).await.expect("route to peer");
    s.write_all(bytes).await.unwrap();
    s.close().await.unwrap();
    let mut back = Vec::new();
    s.read_to_end(&mut back).await.unwrap();
    back
}

#[test]
fn dropping_any_future_at_any_point_leaves_the_node_usable() {
    let mut net = Net::new();
    net.pipe_capacity = 16 * 1024;
    let a = net.leaf("a");
    let r = net.router("r");
    let b = net.leaf("b");
    let c = net.leaf("c");
    // a's link splits everything to single bytes and yields: many await
    // points to be dropped at.
    let (a_io, r_io) = circuit_stream::duplex_pair(net.pipe_capacity);
    let a_io = Faulty::new(a_io, 7, Faults::slow());
    let _ar = LinkHandles {
        a: Some(net.spawn(a.node.link_io(a_io, MuxRole::Client, Quality::NETWORK))),
        b: Some(net.spawn(r.node.link_io(r_io, MuxRole::Server, Quality::NETWORK))),
    };
    let _rb = net.link(&r.node, &b.node, Quality::IN_PROCESS);
    let _rc = net.link(&r.node, &c.node, Quality::IN_PROCESS);
    for _ in 0..5 {
        net.tick();
    }
    let a_node = a.node.clone();
    let (ca, _a_conns) = ConnectionNode::new(a.node, a.incoming);
    let (cc, mut c_conns) = ConnectionNode::new(c.node, c.incoming);
    let _echo_b = echo_server(&net, b);
    // c echoes stream 0 of every connection.
    let spawner = net.spawner.clone();
    let _echo_c = net.spawn(async move {
        while let Some(new) = c_conns.next().await {
            let connection = new.connection;
            let (reader, mut writer) = new.stream.into_split();
            spawner
                .spawn_local(async move {
                    let _ = futures::io::copy(reader, &mut writer).await;
                    drop(connection);
                })
                .unwrap();
        }
    });
    assert!(a_node.is_reachable("b") && a_node.is_reachable("c"));

    let mut rng = StdRng::seed_from_u64(0x0c_a1_ce_11);
    let big = vec![0x5a; 20_000];
    let mut finished = 0;
    for round in 0..200 {
        let polls = rng.random_range(0..40);
        let node = a_node.clone();
        let fut: BoxFuture<'static, ()> = match round % 5 {
            0 => async move {
                let _ = node.connect_to_peer("b").await;
            }
            .boxed(),
            1 => {
                let big = big.clone();
                async move {
                    let mut s = node.connect_to_peer("b").await.unwrap();
                    s.write_all(&big).await.unwrap();
                    s.close().await.unwrap();
                    let mut back = Vec::new();
                    s.read_to_end(&mut back).await.unwrap();
                    assert_eq!(back.len(), big.len());
                }
                .boxed()
            }
            2 => {
                let ca = ca.clone();
                async move {
                    let (_conn, mut s0) = ca.connect_to_peer("c").await.unwrap();
                    s0.write_all(b"zero").await.unwrap();
                    let mut back = [0; 4];
                    s0.read_exact(&mut back).await.unwrap();
                }
                .boxed()
            }
            3 => {
                // A second link between a and r, its a-side future dropped
                // part way (during the handshake or after).
                let (x_io, y_io) = circuit_stream::duplex_pair(4096);
                let far = net.spawn(r.node.link_io(y_io, MuxRole::Server, Quality::NETWORK));
                let near = node.link_io(
                    Faulty::new(x_io, round, Faults::slow()),
                    MuxRole::Client,
                    Quality::NETWORK,
                );
                async move {
                    let _ = near.await;
                    drop(far);
                }
                .boxed()
            }
            _ => async move {
                // A read that waits for bytes that never come.
                let mut s = node.connect_to_peer("b").await.unwrap();
                s.write_all(b"x").await.unwrap();
                let mut buf = [0; 2];
                let _ = s.read_exact(&mut buf).await;
            }
            .boxed(),
        };
        if poll_then_drop(&mut net, fut, polls) {
            finished += 1;
        }
    }
    eprintln!("{finished} of 200 futures finished before their drop");
    assert!(finished < 200, "every future finished: nothing was dropped");
    for _ in 0..5 {
        net.tick();
    }

    // The node still works.
    assert_eq!(net.run(echo_once(&a_node, "b", b"after")), b"after");
    let (conn, mut s0) = net.run(ca.connect_to_peer("c")).unwrap();
    net.run(s0.write_all(b"conn")).unwrap();
    let mut back = [0; 4];
    net.run(s0.read_exact(&mut back)).unwrap();
    assert_eq!(&back, b"conn");
    drop((conn, s0));
    net.settle();

    // Nothing left over: one link (the original), holding only its
    // control stream; no connection entry on either end.
    let snap = a_node.snapshot();
    assert_eq!(snap.links.len(), 1, "{snap}");
    assert_eq!(snap.links[0].mux.streams_open, 1, "{:?}", snap.links[0].mux);
    let r_snap = r.node.snapshot();
    assert_eq!(r_snap.links.len(), 3, "{r_snap}");
    for link in &r_snap.links {
        assert_eq!(
            link.mux.streams_open, 1,
            "r to {}: {:?}",
            link.peer, link.mux
        );
    }
    assert_eq!(ca.connections(), 0);
    assert_eq!(cc.connections(), 0);
}
