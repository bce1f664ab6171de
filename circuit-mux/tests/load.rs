//! Fairness, bounded memory and many streams over an in-memory link.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use circuit_mux::Config;
use common::{drain, pair, pattern, pool};
use futures::channel::oneshot;
use futures::task::SpawnExt;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

const GIB: u64 = 1 << 30;
const CHUNK: usize = 64 * 1024;

/// Writes `total` pattern bytes of stream `seed`, counting them in `sent`.
async fn send_pattern(writer: &circuit_stream::Writer, seed: u64, total: u64, sent: &AtomicU64) {
    let mut buf = vec![0; CHUNK];
    let mut off = 0;
    while off < total {
        let n = (total - off).min(CHUNK as u64) as usize;
        pattern(seed, off, &mut buf[..n]);
        writer.write_all(&buf[..n]).await.unwrap();
        off += n as u64;
        sent.store(off, Ordering::Release);
    }
}

/// Reads `total` bytes and checks them against the pattern of `seed`;
/// calls `each` after every read with the count so far.
async fn check_pattern(
    reader: &circuit_stream::Reader,
    seed: u64,
    total: u64,
    mut each: impl FnMut(u64),
) {
    let mut off = 0u64;
    let mut expect = vec![0; CHUNK];
    while off < total {
        let got = reader
            .read(1, |buf| {
                let n = buf.len().min(CHUNK);
                pattern(seed, off, &mut expect[..n]);
                assert!(buf[..n] == expect[..n], "corrupt bytes at offset {off}");
                (n, n)
            })
            .await
            .unwrap();
        off += got as u64;
        each(off);
    }
}

#[test]
fn a_one_byte_exchange_completes_while_another_stream_pushes_a_gibibyte() {
    let pool = pool();
    let mut p = pair(&pool, Config::default(), Config::default());
    let received = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    futures::executor::block_on(async {
        let (_bulk_read, bulk_write) = p.a.open().unwrap().into_split();
        let sent2 = Arc::clone(&sent);
        let writer = pool
            .spawn_with_handle(async move { send_pattern(&bulk_write, 1, GIB, &sent2).await })
            .unwrap();
        let (bulk_in, _bw) = p
            .b_incoming
            .next()
            .await
            .unwrap()
            .into_stream()
            .into_split();
        let (warm_tx, warm_rx) = oneshot::channel();
        let received2 = Arc::clone(&received);
        let reader = pool
            .spawn_with_handle(async move {
                let mut warm = Some(warm_tx);
                check_pattern(&bulk_in, 1, GIB, |n| {
                    received2.store(n, Ordering::Release);
                    if n >= 8 << 20 {
                        if let Some(w) = warm.take() {
                            let _ = w.send(());
                        }
                    }
                })
                .await;
            })
            .unwrap();
        // Stream A is running at full speed.
        warm_rx.await.unwrap();

        let before = received.load(Ordering::Acquire);
        let mut ping = p.a.open().unwrap();
        ping.write_all(b"?").await.unwrap();
        let mut pong = p.b_incoming.next().await.unwrap().into_stream();
        let mut byte = [0];
        pong.read_exact(&mut byte).await.unwrap();
        pong.write_all(b"!").await.unwrap();
        ping.read_exact(&mut byte).await.unwrap();
        assert_eq!(&byte, b"!");
        let during = received.load(Ordering::Acquire) - before;

        println!("bulk bytes delivered during the 1-byte round trip: {during}");
        assert!(
            during < 64 << 20,
            "the small exchange waited for {during} bytes of the bulk stream"
        );
        assert!(
            received.load(Ordering::Acquire) < GIB,
            "the bulk stream was still running"
        );
        writer.await;
        reader.await;
        assert_eq!(received.load(Ordering::Acquire), GIB);
    });
}

#[test]
fn a_gibibyte_nobody_reads_stays_within_the_receive_limit_then_arrives_intact() {
    let limit = 1 << 20;
    let pool = pool();
    let mut p = pair(
        &pool,
        Config::default(),
        Config::default().stream_receive_limit(limit),
    );
    // What can be in flight besides the receiver's buffer: the sender's
    // stream buffer and write buffer, the link pipe, the receiver's read
    // buffer, with a frame of slack each.
    let in_flight = 256 * 1024 + (256 + 64) * 1024 + (1 << 20) + (256 + 64) * 1024 + 4 * 65_543;
    let sent = Arc::new(AtomicU64::new(0));
    futures::executor::block_on(async {
        let (_r, bulk_write) = p.a.open().unwrap().into_split();
        let sent2 = Arc::clone(&sent);
        let writer = pool
            .spawn_with_handle(async move { send_pattern(&bulk_write, 9, GIB, &sent2).await })
            .unwrap();
        let (bulk_in, _w) = p
            .b_incoming
            .next()
            .await
            .unwrap()
            .into_stream()
            .into_split();

        // Wait (without consuming) until the receiver holds a full limit.
        bulk_in.read(limit, |_| ((), 0)).await.unwrap();
        // Let both drivers run a while: 100 messages b -> a, which does not
        // depend on the blocked direction.
        let (_x, notes) = p.b.open().unwrap().into_split();
        notes.write_all(b"0").await.unwrap();
        let (note_in, _y) = p
            .a_incoming
            .next()
            .await
            .unwrap()
            .into_stream()
            .into_split();
        for i in 1..100u8 {
            notes.write_all(&[i]).await.unwrap();
            note_in.read(1, |b| ((), b.len())).await.unwrap();
        }
        assert!(bulk_in.buffered() <= limit);
        assert!(p.b.counters().receive_buffered as usize <= limit);
        let ahead = sent.load(Ordering::Acquire);
        println!("sender got {ahead} bytes ahead of a reader that reads nothing");
        assert!(
            ahead <= (limit + in_flight) as u64,
            "sender ran {ahead} bytes ahead"
        );

        // Now read: every byte arrives, in order, and the buffer stays bounded.
        check_pattern(&bulk_in, 9, GIB, |n| {
            assert!(bulk_in.buffered() <= limit);
            let s = sent.load(Ordering::Acquire);
            assert!(
                s.saturating_sub(n) <= (limit + in_flight) as u64,
                "sender {s} reader {n}"
            );
        })
        .await;
        writer.await;
    });
}

#[test]
fn ten_thousand_concurrent_streams_of_random_sizes_close_in_random_order() {
    const STREAMS: usize = 10_000;
    let pool = pool();
    let p = pair(
        &pool,
        Config::default(),
        Config::default().max_incoming_streams(STREAMS),
    );
    let mut rng = StdRng::seed_from_u64(0x00C1_C017);
    let sizes: Arc<Vec<u64>> =
        Arc::new((0..STREAMS).map(|_| rng.random_range(0..=16_384)).collect());
    let nonempty = sizes.iter().filter(|&&s| s > 0).count();
    let common::Pair {
        a, b, b_incoming, ..
    } = p;

    // b checks every stream against the pattern of its id, answers with the
    // byte count, and closes its side.
    let sizes_b = Arc::clone(&sizes);
    let receiver = pool
        .spawn_with_handle(async move {
            b_incoming
                .take(nonempty)
                .for_each_concurrent(None, |s| {
                    let sizes = Arc::clone(&sizes_b);
                    async move {
                        let id = s.id();
                        assert_eq!(id % 2, 0, "a is the client");
                        let size = sizes[(id / 2) as usize];
                        let (reader, writer) = s.into_stream().into_split();
                        let mut checked = 0;
                        check_pattern(&reader, u64::from(id), size, |n| checked = n).await;
                        let (rest, reason) = drain(&reader).await;
                        assert!(rest.is_empty() && reason.is_none());
                        writer.write_all(&checked.to_le_bytes()).await.unwrap();
                    }
                })
                .await;
        })
        .unwrap();

    futures::executor::block_on(async {
        let streams: Vec<_> = (0..STREAMS)
            .map(|_| a.open().unwrap().into_split())
            .collect();
        // Every stream writes its bytes, all at once.
        futures::future::join_all(streams.iter().zip(sizes.iter()).enumerate().map(
            |(i, ((_, w), &size))| async move {
                let sent = AtomicU64::new(0);
                send_pattern(w, (2 * i) as u64, size, &sent).await;
            },
        ))
        .await;
        // Then they close in random order.
        let mut order: Vec<usize> = (0..STREAMS).collect();
        order.shuffle(&mut rng);
        let mut readers: Vec<Option<_>> = Vec::new();
        let mut writers: Vec<Option<_>> = Vec::new();
        for (r, w) in streams {
            readers.push(Some(r));
            writers.push(Some(w));
        }
        for &i in &order {
            writers[i] = None;
        }
        // Each non-empty stream hears back its exact byte count.
        for (i, r) in readers.iter_mut().enumerate() {
            let r = r.take().unwrap();
            let (answer, reason) = drain(&r).await;
            if sizes[i] == 0 {
                assert!(answer.is_empty());
                assert!(reason.unwrap().contains("never saw it"));
            } else {
                assert_eq!(answer, sizes[i].to_le_bytes(), "stream {i}");
                assert_eq!(reason, None);
            }
        }
        receiver.await;
        let counters = a.counters();
        assert_eq!(counters.streams_opened, STREAMS as u64);
        assert_eq!(counters.streams_open, 0, "every stream closed both ways");
        assert_eq!(b.counters().streams_opened, nonempty as u64);
        assert!(b.closed_id_ranges() <= Config::default().get_max_closed_id_ranges());
    });
}

#[test]
fn closed_ids_are_remembered_as_ranges_not_one_entry_each() {
    let pool = pool();
    let mut p = pair(&pool, Config::default(), Config::default());
    futures::executor::block_on(async {
        for i in 0..20_000u32 {
            let mut s = p.a.open().unwrap();
            s.write_all(&[1]).await.unwrap();
            s.close().await.unwrap();
            let mut theirs = p.b_incoming.next().await.unwrap().into_stream();
            assert_eq!(theirs.id(), 2 * i);
            let mut buf = Vec::new();
            theirs.read_to_end(&mut buf).await.unwrap();
            theirs.close().await.unwrap();
            drop(theirs);
            let mut end = Vec::new();
            s.read_to_end(&mut end).await.unwrap();
        }
        assert_eq!(p.b.counters().streams_open, 0);
        assert_eq!(p.b.counters().streams_closed, 20_000);
        assert_eq!(p.b.closed_id_ranges(), 1);
        // Data for an old id is still detected as a closed stream: see
        // receive_rules.rs; here the link is still healthy.
        let mut s = p.a.open().unwrap();
        s.write_all(b"still fine").await.unwrap();
        let mut theirs = p.b_incoming.next().await.unwrap().into_stream();
        let mut buf = [0; 10];
        theirs.read_exact(&mut buf).await.unwrap();
    });
}

#[test]
fn large_frames_read_straight_into_streams_arrive_intact_and_are_counted() {
    // Large payloads go from the link straight into the stream's pipe, with
    // the next frame's header read in the same go; a slow reader taking
    // odd-sized pieces keeps the pipe part-full, so reads of every size
    // (payload only, payload and part of a header, payload and a whole
    // header) happen. Every byte must arrive in order, and the receiver
    // must count exactly the frames and bytes the sender wrote.
    const TOTAL: u64 = 64 << 20;
    let pool = pool();
    let p = pair(&pool, Config::default(), Config::default());
    let sent = Arc::new(AtomicU64::new(0));
    futures::executor::block_on(async {
        let (_r, writer) = p.a.open().unwrap().into_split();
        let sent2 = Arc::clone(&sent);
        let sending = pool
            .spawn_with_handle(async move {
                let mut buf = vec![0; 100_003];
                let mut off = 0;
                while off < TOTAL {
                    let n = (TOTAL - off).min(buf.len() as u64) as usize;
                    pattern(5, off, &mut buf[..n]);
                    writer.write_all(&buf[..n]).await.unwrap();
                    off += n as u64;
                    sent2.store(off, Ordering::Release);
                }
                writer.close("done");
            })
            .unwrap();
        let mut b_incoming = p.b_incoming;
        let (reader, _w) = b_incoming.next().await.unwrap().into_stream().into_split();
        let mut off = 0u64;
        let mut piece = 1usize;
        let mut expect = vec![0; 70_001];
        while off < TOTAL {
            piece = piece * 7 % 70_001 + 1;
            let got = reader
                .read(1, |buf| {
                    let n = buf.len().min(piece);
                    pattern(5, off, &mut expect[..n]);
                    assert!(buf[..n] == expect[..n], "corrupt bytes at offset {off}");
                    (n, n)
                })
                .await
                .unwrap();
            off += got as u64;
        }
        let (rest, reason) = drain(&reader).await;
        assert!(rest.is_empty());
        assert_eq!(reason.as_deref(), Some("done"));
        sending.await;
        let (a, b) = (p.a.counters(), p.b.counters());
        assert_eq!(b.bytes_in, a.bytes_out, "bytes on the wire");
        assert_eq!(b.frames_in, a.frames_out, "frames on the wire");
        // One close frame of 8 + 4 bytes; every other frame is data.
        assert_eq!(b.bytes_in, TOTAL + 6 * (b.frames_in - 1) + 12);
    });
}

/// A link end whose reads return pseudo-random amounts (1 to 70,000
/// bytes), so frames and headers are cut at every kind of place.
struct Chunky<IO> {
    io: IO,
    state: u64,
}

impl<IO: futures::AsyncRead + Unpin> futures::AsyncRead for Chunky<IO> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state = x;
        // Mostly tiny or mid-sized reads, now and then a large one.
        let limit = match x % 4 {
            0 => 1 + (x >> 8) as usize % 8,
            1 => 1 + (x >> 8) as usize % 700,
            _ => 1 + (x >> 8) as usize % 70_000,
        };
        let n = buf.len().min(limit);
        std::pin::Pin::new(&mut self.io).poll_read(cx, &mut buf[..n])
    }
}

impl<IO: futures::AsyncWrite + Unpin> futures::AsyncWrite for Chunky<IO> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_close(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_close(cx)
    }
}

#[test]
fn streams_arrive_intact_through_a_link_read_in_random_pieces() {
    use circuit_mux::{Mux, Role};
    use futures::FutureExt;

    let pool = pool();
    let (a_io, b_io) = circuit_stream::duplex_pair(1 << 20);
    let b_io = Chunky {
        io: b_io,
        state: 0x9E37_79B9_7F4A_7C15,
    };
    let (a, _a_incoming, a_driver) = Mux::new(a_io, Role::Client, Config::default());
    // A small stream limit keeps pipes full part of the time.
    let config = Config::default().stream_receive_limit(96 << 10);
    let (_b, mut b_incoming, b_driver) = Mux::new(b_io, Role::Server, config);
    let (a_run, _a_done) = a_driver.remote_handle();
    let (b_run, b_done) = b_driver.remote_handle();
    pool.spawn(a_run).unwrap();
    pool.spawn(b_run).unwrap();
    // (bytes, write size) per stream: large frames, small frames, mixed.
    let plan: [(u64, usize); 4] = [
        (24 << 20, 65_536),
        (3 << 20, 100),
        (16 << 20, 9_000),
        (8 << 20, 150_001),
    ];
    futures::executor::block_on(async {
        let mut senders = Vec::new();
        for (seed, &(total, piece)) in plan.iter().enumerate() {
            let (_r, writer) = a.open().unwrap().into_split();
            let task = async move {
                let mut buf = vec![0; piece];
                let mut off = 0;
                while off < total {
                    let n = (total - off).min(piece as u64) as usize;
                    pattern(seed as u64, off, &mut buf[..n]);
                    writer.write_all(&buf[..n]).await.unwrap();
                    off += n as u64;
                }
                writer.close(format!("end {seed}"));
            };
            senders.push(pool.spawn_with_handle(task).unwrap());
        }
        let mut readers = Vec::new();
        for _ in 0..plan.len() {
            let stream = b_incoming.next().await.unwrap().into_stream();
            let seed = stream.id() as u64 / 2;
            let total = plan[seed as usize].0;
            let (reader, _w) = stream.into_split();
            let task = async move {
                check_pattern(&reader, seed, total, |_| {}).await;
                let (rest, reason) = drain(&reader).await;
                assert!(rest.is_empty());
                assert_eq!(reason, Some(format!("end {seed}")));
            };
            readers.push(pool.spawn_with_handle(task).unwrap());
        }
        for t in senders {
            t.await;
        }
        for t in readers {
            t.await;
        }
        drop(a);
        drop(_b);
        drop(b_incoming);
        assert!(b_done.await.is_ok());
    });
}
