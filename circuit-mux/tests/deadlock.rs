//! Deadlock regressions, named after what they guard against (in the
//! manner of h2's deadlock.rs). Small buffers everywhere so that a driver
//! that stops reading while it cannot write, or the reverse, would hang.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use circuit_mux::{Config, Mux, MuxError, Role};
use common::{drain, pattern, pool};
use futures::executor::ThreadPool;
use futures::future::RemoteHandle;
use futures::task::SpawnExt;
use futures::{AsyncReadExt, AsyncWriteExt, FutureExt, StreamExt};

const MIB: u64 = 1 << 20;

fn tight() -> Config {
    Config::default()
        .stream_send_buffer(16 * 1024)
        .stream_receive_limit(64 * 1024)
        .link_receive_limit(128 * 1024)
        .read_buffer(8 * 1024)
        .write_buffer(8 * 1024)
}

type Done = RemoteHandle<Result<(), MuxError>>;

fn tight_pair(
    pool: &ThreadPool,
) -> (
    Mux,
    circuit_mux::Incoming,
    Mux,
    circuit_mux::Incoming,
    Done,
    Done,
) {
    // A link that holds only 16 KiB in flight each way.
    let (a_io, b_io) = circuit_stream::duplex_pair(16 * 1024);
    let (a, ai, ad) = Mux::new(a_io, Role::Client, tight());
    let (b, bi, bd) = Mux::new(b_io, Role::Server, tight());
    let (ar, adone) = ad.remote_handle();
    let (br, bdone) = bd.remote_handle();
    pool.spawn(ar).unwrap();
    pool.spawn(br).unwrap();
    (a, ai, b, bi, adone, bdone)
}

async fn write_pattern(w: &circuit_stream::Writer, seed: u64, total: u64) {
    let mut buf = vec![0; 48 * 1024];
    let mut off = 0;
    while off < total {
        let n = (total - off).min(buf.len() as u64) as usize;
        pattern(seed, off, &mut buf[..n]);
        w.write_all(&buf[..n]).await.unwrap();
        off += n as u64;
    }
}

async fn read_pattern(r: &circuit_stream::Reader, seed: u64, total: u64) {
    let (got, reason) = drain(r).await;
    assert_eq!(reason, None);
    assert_eq!(got.len() as u64, total);
    let mut expect = vec![0; got.len()];
    pattern(seed, 0, &mut expect);
    assert!(got == expect, "corrupt stream {seed}");
}

#[test]
fn both_peers_writing_large_amounts_at_once_do_not_deadlock() {
    let pool = pool();
    let (a, mut ai, b, mut bi, _ad, _bd) = tight_pair(&pool);
    futures::executor::block_on(async {
        let (_ar, aw) = a.open().unwrap().into_split();
        let (_br, bw) = b.open().unwrap().into_split();
        // Each side pushes 16 MiB before it has read a byte; readers run on
        // their own tasks.
        let a_send = pool.spawn_with_handle(async move {
            write_pattern(&aw, 1, 16 * MIB).await;
        });
        let b_send = pool.spawn_with_handle(async move {
            write_pattern(&bw, 2, 16 * MIB).await;
        });
        let (at_b, _) = bi.next().await.unwrap().into_stream().into_split();
        let (at_a, _) = ai.next().await.unwrap().into_stream().into_split();
        let recv_b = pool
            .spawn_with_handle(async move { read_pattern(&at_b, 1, 16 * MIB).await })
            .unwrap();
        let recv_a = pool
            .spawn_with_handle(async move { read_pattern(&at_a, 2, 16 * MIB).await })
            .unwrap();
        a_send.unwrap().await;
        b_send.unwrap().await;
        recv_a.await;
        recv_b.await;
    });
}

#[test]
fn reader_and_writer_of_one_stream_on_different_tasks_make_progress() {
    let pool = pool();
    let (a, _ai, _b, mut bi, _ad, _bd) = tight_pair(&pool);
    // b echoes every stream.
    pool.spawn(async move {
        while let Some(s) = bi.next().await {
            let (mut r, mut w) = s.into_stream().into_split();
            futures::io::copy(&mut r, &mut w).await.unwrap();
            AsyncWriteExt::close(&mut w).await.unwrap();
        }
    })
    .unwrap();
    futures::executor::block_on(async {
        let (r, w) = a.open().unwrap().into_split();
        let writer = pool
            .spawn_with_handle(async move {
                write_pattern(&w, 7, 32 * MIB).await;
                drop(w);
            })
            .unwrap();
        let reader = pool
            .spawn_with_handle(async move { read_pattern(&r, 7, 32 * MIB).await })
            .unwrap();
        writer.await;
        reader.await;
    });
}

#[test]
fn ping_pong_completes_while_another_stream_keeps_every_buffer_full() {
    let pool = pool();
    let (a, _ai, _b, mut bi, _ad, _bd) = tight_pair(&pool);
    let stop = Arc::new(AtomicBool::new(false));
    let pushed = Arc::new(AtomicU64::new(0));
    futures::executor::block_on(async {
        // Stream A: a pushes until told to stop; b reads it as it comes.
        let (_r, bulk) = a.open().unwrap().into_split();
        let (stop2, pushed2) = (Arc::clone(&stop), Arc::clone(&pushed));
        let pusher = pool
            .spawn_with_handle(async move {
                let chunk = vec![0xAB; 32 * 1024];
                while !stop2.load(Ordering::Acquire) {
                    bulk.write_all(&chunk).await.unwrap();
                    pushed2.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                }
            })
            .unwrap();
        let (bulk_in, _w) = bi.next().await.unwrap().into_stream().into_split();
        let sink = pool
            .spawn_with_handle(async move { drain(&bulk_in).await.0.len() })
            .unwrap();

        // Stream B: 1,000 round trips of one byte.
        let mut ping = a.open().unwrap();
        ping.write_all(&[0]).await.unwrap();
        let mut pong = bi.next().await.unwrap().into_stream();
        let mut byte = [0];
        for i in 0..1000u32 {
            pong.read_exact(&mut byte).await.unwrap();
            pong.write_all(&byte).await.unwrap();
            ping.read_exact(&mut byte).await.unwrap();
            ping.write_all(&[(i % 251) as u8]).await.unwrap();
        }
        stop.store(true, Ordering::Release);
        pusher.await;
        assert!(pushed.load(Ordering::Relaxed) > 0);
        drop(ping);
        drop(pong);
        drop(a);
        let received = sink.await;
        assert_eq!(received as u64, pushed.load(Ordering::Relaxed));
    });
}
