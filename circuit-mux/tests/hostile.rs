//! A hostile peer gets a typed error or a refusal, never a panic and never
//! unbounded memory.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use circuit_frame::{Decode, Decoded, Frame};
use circuit_mux::{Config, Mux, Role};
use common::{data, drain, pool};
use futures::task::SpawnExt;
use futures::{AsyncReadExt, AsyncWriteExt, FutureExt, StreamExt};

#[test]
fn a_hundred_thousand_one_byte_streams_are_refused_past_the_limit_and_the_link_stays_up() {
    const STREAMS: u32 = 100_000;
    let limit = Config::default().get_max_incoming_streams();
    let pool = pool();
    let (ours, theirs) = circuit_stream::duplex_pair(1 << 20);
    let (mux, mut incoming, driver) =
        Mux::new(ours, Role::Client, Config::default().peer_name("flood"));
    let (run, done) = driver.remote_handle();
    pool.spawn(run).unwrap();
    let (peer_read, peer_write) = theirs.into_split();

    // The peer reads our refusals as they come and says when all arrived.
    let expected_refusals = u64::from(STREAMS) - limit as u64;
    let refusals = Arc::new(AtomicU64::new(0));
    let refusals2 = Arc::clone(&refusals);
    let (all_refused, refused_rx) = futures::channel::oneshot::channel();
    let reader = pool
        .spawn_with_handle(async move {
            let mut all_refused = Some(all_refused);
            let mut buf = Vec::new();
            let mut chunk = vec![0; 1 << 16];
            let mut peer_read = peer_read;
            loop {
                let n = match AsyncReadExt::read(&mut peer_read, &mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                buf.extend_from_slice(&chunk[..n]);
                let mut used = 0;
                while let Ok(Decoded::Complete { message, consumed }) = Frame::decode(&buf[used..])
                {
                    if let Frame::Close { epitaph, .. } = message {
                        assert!(
                            String::from_utf8_lossy(epitaph).contains("too many incoming streams")
                        );
                        let n = refusals2.fetch_add(1, Ordering::Relaxed) + 1;
                        if n == expected_refusals {
                            if let Some(tx) = all_refused.take() {
                                let _ = tx.send(());
                            }
                        }
                    }
                    used += consumed;
                }
                buf.drain(..used);
            }
        })
        .unwrap();

    futures::executor::block_on(async {
        let mut flood = Vec::with_capacity(STREAMS as usize * 7);
        for i in 0..STREAMS {
            flood.extend(data(2 * i + 1, b"x"));
        }
        peer_write.write_all(&flood).await.unwrap();
        refused_rx.await.unwrap();

        let counters = mux.counters();
        assert_eq!(counters.frames_in, u64::from(STREAMS));
        assert_eq!(counters.streams_open, limit as u64);
        assert_eq!(counters.streams_opened, limit as u64);
        assert_eq!(counters.streams_refused, expected_refusals);
        // 99,000 refused ids in a row cost one range.
        assert_eq!(mux.closed_id_ranges(), 1);

        // More data for a refused id is dropped quietly, and the accepted
        // streams still work: the link is up.
        peer_write
            .write_all(&data(2 * (STREAMS - 1) + 1, b"ignored"))
            .await
            .unwrap();
        peer_write.write_all(&data(1, b" and more")).await.unwrap();
        let first = incoming.next().await.unwrap();
        assert_eq!(first.id(), 1);
        let (r, _w) = first.into_stream().into_split();
        let mut got = Vec::new();
        while got.len() < 10 {
            got.extend(r.read(1, |b| (b.to_vec(), b.len())).await.unwrap());
        }
        assert_eq!(got, b"x and more");
        drop(peer_write);
        assert!(done.await.is_ok());
        reader.await;
        assert_eq!(refusals.load(Ordering::Relaxed), expected_refusals);
    });
}

#[test]
fn every_fatal_rule_closes_only_its_link_with_a_typed_error() {
    // Two links; one peer misbehaves, the other keeps working.
    let pool = pool();
    let (good_ours, good_theirs) = circuit_stream::duplex_pair(1 << 16);
    let (bad_ours, bad_theirs) = circuit_stream::duplex_pair(1 << 16);
    let (good, _gi, good_driver) = Mux::new(good_ours, Role::Client, Config::default());
    let (_bad, _bi, bad_driver) =
        Mux::new(bad_ours, Role::Client, Config::default().peer_name("liar"));
    let (_peer, mut peer_incoming, peer_driver) =
        Mux::new(good_theirs, Role::Server, Config::default());
    let (good_run, _good_done) = good_driver.remote_handle();
    let (peer_run, _peer_done) = peer_driver.remote_handle();
    let (bad_run, bad_done) = bad_driver.remote_handle();
    pool.spawn(good_run).unwrap();
    pool.spawn(peer_run).unwrap();
    pool.spawn(bad_run).unwrap();
    futures::executor::block_on(async {
        let mut bad_theirs = bad_theirs;
        // Data on an id of the client's own parity it never opened.
        bad_theirs.write_all(&data(8, b"lie")).await.unwrap();
        let err = bad_done.await.unwrap_err();
        assert_eq!(err.stream_id(), Some(8));
        assert!(err.to_string().contains("liar"));

        let mut s = good.open().unwrap();
        s.write_all(b"still here").await.unwrap();
        s.close().await.unwrap();
        let (r, _w) = peer_incoming
            .next()
            .await
            .unwrap()
            .into_stream()
            .into_split();
        assert_eq!(drain(&r).await.0, b"still here");
    });
}
