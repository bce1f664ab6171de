//! One stuck consumer must not freeze other streams (PROTOCOL.md section 4):
//! a - r1 - r2 - {b1, b2}; b1 never reads its stream while a moves 64 MiB
//! to b2 over the same two links. Under credit the router grants on the
//! inbound link only as bytes move on, so only b1's stream waits.

use circuit_frame::Quality;
use circuit_mux::LinkMode;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};

use crate::support::*;

const TOTAL: usize = 64 << 20;
const CHUNK: usize = 64 << 10;

#[test]
fn a_stuck_reader_behind_two_routers_does_not_stop_another_stream() {
    let mut net = Net::new();
    let a = net.leaf("a");
    let mut b1 = net.leaf("b1");
    let mut b2 = net.leaf("b2");
    let r1 = net.router("r1");
    let r2 = net.router("r2");
    let _l0 = net.link(&a.node, &r1.node, Quality::LOCAL_SOCKET);
    let _l1 = net.link(&r1.node, &r2.node, Quality::LOCAL_SOCKET);
    let _l2 = net.link(&r2.node, &b1.node, Quality::LOCAL_SOCKET);
    let _l3 = net.link(&r2.node, &b2.node, Quality::LOCAL_SOCKET);
    net.settle();
    for _ in 0..4 {
        net.tick();
    }
    assert!(a.node.is_reachable("b1") && a.node.is_reachable("b2"));
    net.run(async {
        // 4 MiB pushed towards a reader that never reads.
        let mut stuck = a.node.connect_to_peer("b1").await.unwrap();
        let push = async {
            let _ = stuck.write_all(&vec![1; 4 << 20]).await;
        };
        let held = async {
            let incoming = b1.incoming.next().await.unwrap();
            // Wait for most of the first 64 KiB (less the routing header)
            // to arrive, without reading them.
            incoming
                .stream
                .reader()
                .read(60 << 10, |_| ((), 0))
                .await
                .unwrap();
            incoming
        };
        let moving = async {
            let mut s = a.node.connect_to_peer("b2").await.unwrap();
            let sender = async {
                let buf = vec![2; CHUNK];
                for _ in 0..TOTAL / CHUNK {
                    s.write_all(&buf).await.unwrap();
                }
                s.close().await.unwrap();
            };
            let receiver = async {
                let mut incoming = b2.incoming.next().await.unwrap();
                let mut buf = vec![0; CHUNK];
                let mut got = 0;
                loop {
                    let n = incoming.stream.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    assert!(buf[..n].iter().all(|&b| b == 2));
                    got += n;
                }
                got
            };
            futures::join!(sender, receiver).1
        };
        // The push never finishes: run it beside the rest, not to its end.
        let rest = async { futures::join!(held, moving) };
        let (held, got) = match futures::future::select(Box::pin(push), Box::pin(rest)).await {
            futures::future::Either::Right((done, _)) => done,
            futures::future::Either::Left(_) => panic!("a stuck stream took 4 MiB"),
        };
        assert_eq!(got, TOTAL);
        // b1 holds its stream's window and no more while nothing is read.
        assert!(held.stream.reader().buffered() <= 64 << 10);
    });
    // Every link between two nodes of this implementation runs in credit
    // mode, and the routers granted as bytes moved on.
    for node in [&a.node, &r1.node, &r2.node] {
        let snapshot = node.snapshot();
        assert!(!snapshot.links.is_empty());
        for link in &snapshot.links {
            assert_eq!(
                link.mux.mode,
                LinkMode::Credit,
                "{} to {}",
                node.id(),
                link.peer
            );
        }
    }
    let granted: u64 = r2
        .node
        .snapshot()
        .links
        .iter()
        .map(|l| l.mux.bytes_granted)
        .sum();
    assert!(
        granted >= (TOTAL - (1 << 20)) as u64,
        "r2 granted {granted}"
    );
}
