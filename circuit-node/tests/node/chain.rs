//! A chain a - r1 - r2 - r3 - b moves 64 MiB each way, intact.

use std::time::Instant;

use circuit_frame::Quality;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};

use crate::support::*;

const TOTAL: usize = 64 << 20;
const CHUNK: usize = 64 << 10;

fn pattern(offset: usize, seed: u8) -> u8 {
    (offset as u8).wrapping_mul(31) ^ ((offset >> 16) as u8) ^ seed
}

async fn send(w: &mut (impl AsyncWriteExt + Unpin), seed: u8) {
    let mut buf = vec![0; CHUNK];
    let mut sent = 0;
    while sent < TOTAL {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = pattern(sent + i, seed);
        }
        w.write_all(&buf).await.unwrap();
        sent += CHUNK;
    }
    w.close().await.unwrap();
}

async fn receive(r: &mut (impl AsyncReadExt + Unpin), seed: u8) {
    let mut buf = vec![0; CHUNK];
    let mut got = 0;
    loop {
        let n = r.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        for (i, b) in buf[..n].iter().enumerate() {
            assert_eq!(*b, pattern(got + i, seed), "corrupt byte at {}", got + i);
        }
        got += n;
    }
    assert_eq!(got, TOTAL);
}

#[test]
fn chain_of_three_routers_moves_64_mib_each_way() {
    let mut net = Net::new();
    let a = net.leaf("a");
    let mut b = net.leaf("b");
    let rs: Vec<TestNode> = (1..=3).map(|i| net.router(&format!("r{i}"))).collect();
    let _l0 = net.link(&a.node, &rs[0].node, Quality::LOCAL_SOCKET);
    let _l1 = net.link(&rs[0].node, &rs[1].node, Quality::LOCAL_SOCKET);
    let _l2 = net.link(&rs[1].node, &rs[2].node, Quality::LOCAL_SOCKET);
    let _l3 = net.link(&rs[2].node, &b.node, Quality::LOCAL_SOCKET);
    net.settle();
    for _ in 0..4 {
        net.tick();
    }
    assert!(a.node.is_reachable("b"));
    let start = Instant::now();
    net.run(async {
        let s = a.node.connect_to_peer("b").await.unwrap();
        let (mut ar, mut aw) = s.into_split();
        // b learns of the stream from its first bytes.
        let first = async {
            aw.write_all(&[pattern(0, 1)]).await.unwrap();
            b.incoming.next().await.unwrap()
        };
        let incoming = first.await;
        let (mut br, mut bw) = incoming.stream.into_split();
        let a_to_b = async {
            let mut buf = vec![0; CHUNK];
            let mut sent = 1;
            while sent < TOTAL {
                let n = CHUNK.min(TOTAL - sent);
                for (i, byte) in buf[..n].iter_mut().enumerate() {
                    *byte = pattern(sent + i, 1);
                }
                AsyncWriteExt::write_all(&mut aw, &buf[..n]).await.unwrap();
                sent += n;
            }
            AsyncWriteExt::close(&mut aw).await.unwrap();
        };
        futures::join!(
            a_to_b,
            receive(&mut br, 1),
            send(&mut bw, 2),
            receive(&mut ar, 2)
        );
    });
    let secs = start.elapsed().as_secs_f64();
    println!(
        "chain of 3 routers: 2 x 64 MiB in {secs:.2} s ({:.0} MB/s each way)",
        TOTAL as f64 / secs / 1e6
    );
}
