//! The original multiplexer's tests one_stream, fallible_stream and
//! two_streams, ported with their assertions.

mod common;

use circuit_mux::Config;
use common::{pair, pool};
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};

#[test]
fn one_stream() {
    let pool = pool();
    let mut p = pair(&pool, Config::default(), Config::default());
    futures::executor::block_on(async {
        let ab = p.a.open().unwrap();
        let (mut ab_reader_a, ab_writer_a) = ab.into_split();
        ab_writer_a
            .write_all(&[1, 2, 3, 4, 5, 6, 7, 8])
            .await
            .unwrap();

        let (mut ab_reader_b, ab_writer_b) = p
            .b_incoming
            .next()
            .await
            .unwrap()
            .into_stream()
            .into_split();
        ab_writer_b
            .write_all(&[9, 10, 11, 12, 13, 14, 15, 16])
            .await
            .unwrap();

        let mut buf = [0; 8];
        ab_reader_b.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, [1, 2, 3, 4, 5, 6, 7, 8]);
        ab_reader_a.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, [9, 10, 11, 12, 13, 14, 15, 16]);

        drop(ab_writer_b);
        // The peer hung up its direction: the reader sees the end.
        assert_eq!(
            AsyncReadExt::read(&mut ab_reader_a, &mut buf)
                .await
                .unwrap(),
            0
        );
        assert!(ab_reader_a.is_closed());

        drop(ab_reader_b);
        // Writing to a stream whose remote reader is gone still succeeds
        // locally; the peer discards the bytes.
        ab_writer_a
            .write_all(&[1, 2, 3, 4, 5, 6, 7, 8])
            .await
            .unwrap();
    });
}

#[test]
fn fallible_stream() {
    let pool = pool();
    let mut p = pair(&pool, Config::default(), Config::default());
    let mut b_failures = p.b.stream_failures();
    futures::executor::block_on(async {
        // The first stream fails to be handled at b.
        let mut fail = p.a.open().unwrap();
        // Streams open lazily: send a little data to create it.
        fail.write_all(&[1, 2, 3, 4, 5, 6, 7, 8]).await.unwrap();
        let (_stream, reporter) = p.b_incoming.next().await.unwrap().into_parts();
        reporter.report("Testing");
        let failure = b_failures.next().await.unwrap();
        assert_eq!(failure.error.to_string(), "Testing");
        assert_eq!(failure.stream_id, 0);
        assert_eq!(failure.peer, "a");

        // The link is still good for the next stream.
        let (mut ab_reader_a, ab_writer_a) = p.a.open().unwrap().into_split();
        ab_writer_a
            .write_all(&[1, 2, 3, 4, 5, 6, 7, 8])
            .await
            .unwrap();
        let (mut ab_reader_b, ab_writer_b) = p
            .b_incoming
            .next()
            .await
            .unwrap()
            .into_stream()
            .into_split();
        ab_writer_b
            .write_all(&[9, 10, 11, 12, 13, 14, 15, 16])
            .await
            .unwrap();
        let mut buf = [0; 8];
        ab_reader_b.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, [1, 2, 3, 4, 5, 6, 7, 8]);
        ab_reader_a.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, [9, 10, 11, 12, 13, 14, 15, 16]);

        drop(ab_writer_b);
        assert_eq!(
            AsyncReadExt::read(&mut ab_reader_a, &mut buf)
                .await
                .unwrap(),
            0
        );
        drop(ab_reader_b);
        ab_writer_a
            .write_all(&[1, 2, 3, 4, 5, 6, 7, 8])
            .await
            .unwrap();
        assert!(p.b.counters().errors >= 1);
    });
}

#[test]
fn two_streams() {
    let pool = pool();
    let mut p = pair(&pool, Config::default(), Config::default());
    futures::executor::block_on(async {
        let (mut ab_reader_a, ab_writer_a) = p.a.open().unwrap().into_split();
        let (mut ba_reader_b, ba_writer_b) = p.b.open().unwrap().into_split();
        ab_writer_a
            .write_all(&[1, 2, 3, 4, 5, 6, 7, 8])
            .await
            .unwrap();
        ba_writer_b
            .write_all(&[25, 26, 27, 28, 29, 30, 31, 32])
            .await
            .unwrap();

        let ab_b = p.b_incoming.next().await.unwrap();
        let ba_a = p.a_incoming.next().await.unwrap();
        assert_eq!(ab_b.id(), 0, "the client opens even ids");
        assert_eq!(ba_a.id(), 1, "the server opens odd ids");
        let (mut ab_reader_b, ab_writer_b) = ab_b.into_stream().into_split();
        let (mut ba_reader_a, ba_writer_a) = ba_a.into_stream().into_split();

        ab_writer_b
            .write_all(&[9, 10, 11, 12, 13, 14, 15, 16])
            .await
            .unwrap();
        ba_writer_a
            .write_all(&[17, 18, 19, 20, 21, 22, 23, 24])
            .await
            .unwrap();

        let mut buf = [0; 8];
        ab_reader_b.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, [1, 2, 3, 4, 5, 6, 7, 8]);
        ab_reader_a.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, [9, 10, 11, 12, 13, 14, 15, 16]);
        ba_reader_b.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, [17, 18, 19, 20, 21, 22, 23, 24]);
        ba_reader_a.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, [25, 26, 27, 28, 29, 30, 31, 32]);
    });
}
