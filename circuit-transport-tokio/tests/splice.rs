//! `splice`: a circuit stream joined to a TCP connection, both ways.

use circuit_stream::{duplex_pair, StreamError};
use circuit_transport_tokio::splice;
use futures::AsyncReadExt;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// A bound on each test, so a hang fails instead of stalling the run.
const TEST_LIMIT: Duration = Duration::from_secs(60);

/// `len` bytes that differ from any shifted copy of themselves nearby.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3] ^ seed)
        .collect()
}

async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (a, b) = tokio::join!(TcpStream::connect(addr), listener.accept());
    (a.unwrap(), b.unwrap().0)
}

/// Many pipes' worth each way at once: every byte arrives in order, each
/// end of stream reaches the other side, and the counts are the bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splice_moves_every_byte_both_ways_and_passes_each_end_on() {
    tokio::time::timeout(TEST_LIMIT, async {
        let (mut spliced_tcp, mut far_tcp) = tcp_pair().await;
        let (spliced, near) = duplex_pair(64 * 1024);
        let splicing = tokio::spawn(async move { splice(spliced, &mut spliced_tcp).await });

        let to_tcp = pattern(5 << 20, 1);
        let to_stream = pattern(3 << 20, 2);
        let (mut near_read, near_write) = near.into_split();
        let (mut far_read, mut far_write) = far_tcp.split();
        let (sent, on_stream, (), on_tcp) = tokio::join!(
            async {
                near_write.write_all(&to_tcp).await.unwrap();
                near_write.close_without_reason();
            },
            async {
                let mut got = Vec::new();
                near_read.read_to_end(&mut got).await.unwrap();
                got
            },
            async {
                far_write.write_all(&to_stream).await.unwrap();
                far_write.shutdown().await.unwrap();
            },
            async {
                let mut got = Vec::new();
                far_read.read_to_end(&mut got).await.unwrap();
                got
            },
        );
        let () = sent;
        assert!(on_tcp == to_tcp, "the stream's bytes reached TCP changed");
        assert!(
            on_stream == to_stream,
            "the TCP bytes reached the stream changed"
        );
        let counts = splicing.await.unwrap().unwrap();
        assert_eq!(counts, (to_tcp.len() as u64, to_stream.len() as u64));
    })
    .await
    .unwrap();
}

/// A stream closed with an epitaph is an error, not an end of stream: the
/// splice fails with it and the TCP side does not read a clean end.
#[tokio::test]
async fn splice_fails_on_a_stream_closed_with_an_epitaph() {
    tokio::time::timeout(TEST_LIMIT, async {
        let (mut spliced_tcp, mut far_tcp) = tcp_pair().await;
        let (spliced, near) = duplex_pair(64 * 1024);
        let splicing = tokio::spawn(async move { splice(spliced, &mut spliced_tcp).await });
        let (_near_read, near_write) = near.into_split();
        near_write.write_all(b"partial").await.unwrap();
        near_write.close("the far side failed");
        let error = splicing.await.unwrap().unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::ConnectionAborted);
        let inner = error
            .into_inner()
            .unwrap()
            .downcast::<StreamError>()
            .unwrap();
        assert!(inner.to_string().contains("the far side failed"), "{inner}");
        // What came before the epitaph went through.
        let mut got = [0; 7];
        far_tcp.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"partial");
    })
    .await
    .unwrap();
}
