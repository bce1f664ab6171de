//! Half-close, lazy open, ending and counters, end to end over an
//! in-memory link.

mod common;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use circuit_mux::{Config, Mux, MuxError, Role};
use common::{close, data, decode_all, drain, pair, pool, try_decode_all, Owned};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, FutureExt, StreamExt};

/// A client mux on one end of an in-memory link; the test plays the peer
/// on the other end with raw bytes.
fn raw_peer() -> (
    Mux,
    circuit_mux::Incoming,
    futures::future::RemoteHandle<Result<(), MuxError>>,
    circuit_stream::Duplex,
    futures::executor::ThreadPool,
) {
    let pool = pool();
    let (ours, theirs) = circuit_stream::duplex_pair(1 << 20);
    let (mux, incoming, driver) = Mux::new(ours, Role::Client, Config::default().peer_name("b"));
    let (run, done) = driver.remote_handle();
    futures::task::SpawnExt::spawn(&pool, run).unwrap();
    (mux, incoming, done, theirs, pool)
}

/// Reads from the raw peer until `n` frames have arrived.
async fn read_frames(peer: &mut circuit_stream::Duplex, n: usize) -> Vec<Owned> {
    let mut bytes = Vec::new();
    loop {
        if let Ok(frames) = std::panic::catch_unwind(|| decode_all(&bytes)) {
            if frames.len() >= n {
                return frames;
            }
        }
        let mut buf = [0; 4096];
        let got = AsyncReadExt::read(peer, &mut buf).await.unwrap();
        assert!(got > 0, "link ended early");
        bytes.extend_from_slice(&buf[..got]);
    }
}

#[test]
fn half_close_carries_the_epitaph_and_the_other_direction_keeps_flowing() {
    let pool = pool();
    let mut p = pair(&pool, Config::default(), Config::default());
    futures::executor::block_on(async {
        let (mut a_read, a_write) = p.a.open().unwrap().into_split();
        a_write.write_all(b"request").await.unwrap();
        a_write.close("done sending");
        let (b_read, b_write) = p
            .b_incoming
            .next()
            .await
            .unwrap()
            .into_stream()
            .into_split();
        let (got, reason) = drain(&b_read).await;
        assert_eq!(got, b"request");
        assert_eq!(reason.as_deref(), Some("done sending"));
        assert_eq!(b_read.closed_reason().as_deref(), Some("done sending"));

        // b still answers after a's half-close.
        b_write.write_all(b"response").await.unwrap();
        let mut buf = [0; 8];
        a_read.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"response");
        b_write.close("bye from b");
        let (rest, reason) = drain(&a_read).await;
        assert!(rest.is_empty());
        assert_eq!(reason.as_deref(), Some("bye from b"));
    });
}

#[test]
fn a_stream_opened_and_closed_without_data_puts_nothing_on_the_wire() {
    let (mux, _incoming, _done, mut peer, _pool) = raw_peer();
    futures::executor::block_on(async {
        let silent = mux.open().unwrap();
        assert_eq!(silent.id(), 0);
        let (silent_read, silent_write) = silent.into_split();
        silent_write.close("changed my mind");
        drop(silent_write);
        let mut talker = mux.open().unwrap();
        assert_eq!(talker.id(), 2);
        talker.write_all(b"x").await.unwrap();
        talker.close().await.unwrap();
        let frames = read_frames(&mut peer, 2).await;
        assert_eq!(
            frames,
            vec![
                Owned::Data(2, b"x".to_vec()),
                Owned::Close(2, String::new())
            ],
            "stream 0 never reached the wire"
        );
        // Nothing can ever arrive on stream 0: its reader is told so.
        let (rest, reason) = drain(&silent_read).await;
        assert!(rest.is_empty());
        assert!(reason.unwrap().contains("never saw it"));
    });
}

/// A node learns its neighbour's name in the handshake, after the mux is
/// made: names set later are the ones the link's end and its errors use.
#[test]
fn names_set_after_the_start_are_in_the_epitaphs_of_the_links_end() {
    let pool = pool();
    let (ours, theirs) = circuit_stream::duplex_pair(1 << 20);
    let (mux, _incoming, driver) = Mux::new(ours, Role::Client, Config::default());
    let (run, done) = driver.remote_handle();
    futures::task::SpawnExt::spawn(&pool, run).unwrap();
    futures::executor::block_on(async {
        let (out_read, _out_write) = mux.open().unwrap().into_split();
        mux.set_peer_name("e4");
        mux.set_local_name("r");
        drop(theirs);
        assert!(done.await.is_ok());
        let (_, reason) = drain(&out_read).await;
        assert_eq!(reason.as_deref(), Some("r: link to e4 closed"));
    });

    // A link that fails says so with both names too.
    let (ours, theirs) = circuit_stream::duplex_pair(1 << 20);
    let (mux, _incoming, driver) = Mux::new(ours, Role::Client, Config::default());
    let (run, done) = driver.remote_handle();
    futures::task::SpawnExt::spawn(&pool, run).unwrap();
    futures::executor::block_on(async {
        let (out_read, _out_write) = mux.open().unwrap().into_split();
        mux.set_peer_name("e4");
        mux.set_local_name("r");
        let mut theirs = theirs;
        // Half a frame header, then the end: the link ends mid-frame.
        theirs.write_all(&[0, 0, 0]).await.unwrap();
        drop(theirs);
        let error = done.await.unwrap_err();
        assert!(error.to_string().starts_with("link to e4 ended"), "{error}");
        let (_, reason) = drain(&out_read).await;
        let reason = reason.unwrap_or_default();
        assert!(reason.starts_with("r: link to e4 ended"), "{reason}");
    });
}

#[test]
fn end_of_link_closes_every_stream_with_an_epitaph_and_returns_ok() {
    let (mux, mut incoming, done, mut peer, _pool) = raw_peer();
    futures::executor::block_on(async {
        peer.write_all(&data(1, b"hello")).await.unwrap();
        let (in_read, in_write) = incoming.next().await.unwrap().into_stream().into_split();
        let (out_read, out_write) = mux.open().unwrap().into_split();
        drop(peer);
        assert!(done.await.is_ok());
        let (got, reason) = drain(&in_read).await;
        assert_eq!(got, b"hello");
        assert_eq!(reason.as_deref(), Some("link to b closed"));
        let (none, reason) = drain(&out_read).await;
        assert!(none.is_empty());
        assert_eq!(reason.as_deref(), Some("link to b closed"));
        assert!(out_write.write_all(b"too late").await.is_err());
        assert!(in_write.write_all(b"too late").await.is_err());
        assert!(matches!(mux.open(), Err(MuxError::LinkClosed)));
        assert!(incoming.next().await.is_none());
    });
}

#[test]
fn a_truncated_frame_at_end_of_link_is_an_error_every_stream_hears_about() {
    let (_mux, mut incoming, done, mut peer, _pool) = raw_peer();
    futures::executor::block_on(async {
        peer.write_all(&data(1, b"whole")).await.unwrap();
        let frame = data(1, b"cut short");
        peer.write_all(&frame[..8]).await.unwrap();
        let (in_read, _w) = incoming.next().await.unwrap().into_stream().into_split();
        drop(peer);
        match done.await {
            Err(MuxError::Truncated { buffered, .. }) => assert_eq!(buffered, 8),
            other => panic!("expected Truncated, got {other:?}"),
        }
        // The bytes before the cut arrive (the cut frame's first two
        // included); then an error, never a clean end.
        let (got, reason) = drain(&in_read).await;
        assert_eq!(got, b"wholecu");
        assert!(reason.unwrap().contains("middle of a frame"));
    });
}

#[test]
fn a_fatal_protocol_error_names_the_stream_and_closes_the_streams() {
    let (_mux, mut incoming, done, mut peer, _pool) = raw_peer();
    futures::executor::block_on(async {
        peer.write_all(&data(1, b"fine")).await.unwrap();
        let (in_read, _w) = incoming.next().await.unwrap().into_stream().into_split();
        // Id 6 has the client's parity and the client never opened it.
        peer.write_all(&data(6, b"bad")).await.unwrap();
        let err = done.await.unwrap_err();
        assert_eq!(err.stream_id(), Some(6));
        let (got, reason) = drain(&in_read).await;
        assert_eq!(got, b"fine");
        assert!(reason.unwrap().contains("bad stream id 6"));
    });
}

/// A link whose reads fail.
struct Broken;

impl AsyncRead for Broken {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "cable cut",
        )))
    }
}

impl AsyncWrite for Broken {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(b.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[test]
fn an_io_error_of_the_link_ends_it_and_every_stream_says_why() {
    let (mux, _incoming, driver) =
        Mux::new(Broken, Role::Server, Config::default().peer_name("far"));
    let (read, _write) = mux.open().unwrap().into_split();
    let result = futures::executor::block_on(driver);
    match result {
        Err(MuxError::Io { peer, source }) => {
            assert_eq!(peer, "far");
            assert_eq!(source.kind(), io::ErrorKind::ConnectionReset);
        }
        other => panic!("expected Io, got {other:?}"),
    }
    let (_, reason) = futures::executor::block_on(drain(&read));
    assert!(reason.unwrap().contains("cable cut"));
    // A std::io reader sees an error, not a clean end of file.
    let mut read = read;
    let mut buf = Vec::new();
    assert!(futures::executor::block_on(read.read_to_end(&mut buf)).is_err());
}

#[test]
fn dropping_every_handle_and_stream_completes_the_driver_with_ok() {
    let pool = pool();
    let mut p = pair(&pool, Config::default(), Config::default());
    futures::executor::block_on(async {
        let mut s = p.a.open().unwrap();
        s.write_all(b"last").await.unwrap();
        let mut theirs = p.b_incoming.next().await.unwrap().into_stream();
        let mut buf = [0; 4];
        theirs.read_exact(&mut buf).await.unwrap();
        drop(s);
        drop(theirs);
        let common::Pair {
            a,
            a_incoming,
            b: _b,
            b_incoming: _bi,
            a_done,
            b_done,
        } = p;
        drop(a);
        drop(a_incoming);
        // a ends cleanly once its streams are closed both ways...
        assert!(a_done.await.is_ok());
        // ...and b sees the link end at a frame boundary.
        assert!(b_done.await.is_ok());
    });
}

#[test]
fn counters_count_bytes_frames_and_streams() {
    let pool = pool();
    let mut p = pair(&pool, Config::default(), Config::default());
    futures::executor::block_on(async {
        let mut s = p.a.open().unwrap();
        s.write_all(&[7; 100_000]).await.unwrap();
        s.close().await.unwrap();
        let mut theirs = p.b_incoming.next().await.unwrap().into_stream();
        let mut got = Vec::new();
        theirs.read_to_end(&mut got).await.unwrap();
        assert_eq!(got.len(), 100_000);
        drop(theirs);
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).await.unwrap();
        drop(s);
        let a = p.a.counters();
        let b = p.b.counters();
        // 100,000 bytes are two data frames (65,535 + 34,465) and a close.
        assert_eq!(b.frames_in, 3);
        assert_eq!(b.bytes_in, 100_000 + 2 * 6 + 8);
        assert_eq!(a.bytes_out, b.bytes_in);
        assert_eq!(b.streams_opened, 1);
        assert_eq!(a.streams_opened, 1);
        assert_eq!(a.frames_in, 1, "b's close");
        assert_eq!(a.streams_open, 0);
        assert_eq!(a.streams_closed, 1);
    });
    let _ = (close(0, ""), ());
}

#[test]
fn close_streams_sends_the_epitaph_for_every_stream_and_keeps_the_link() {
    let (mux, mut incoming, _done, mut peer, _pool) = raw_peer();
    futures::executor::block_on(async {
        peer.write_all(&data(1, b"theirs")).await.unwrap();
        let (their_read, _their_write) = incoming.next().await.unwrap().into_stream().into_split();
        let mut ours = mux.open().unwrap();
        ours.write_all(b"mine").await.unwrap();
        let frames = read_frames(&mut peer, 1).await;
        assert_eq!(frames, vec![Owned::Data(0, b"mine".to_vec())]);
        assert!(mux.is_open(0) && mux.is_open(1));

        mux.close_streams("shutting down");
        let mut frames = read_frames(&mut peer, 2).await;
        frames.sort_by_key(|f| match f {
            Owned::Data(id, _) | Owned::Close(id, _) => *id,
        });
        assert_eq!(
            frames,
            vec![
                Owned::Close(0, "shutting down".to_owned()),
                Owned::Close(1, "shutting down".to_owned())
            ]
        );
        let (got, reason) = drain(&their_read).await;
        assert_eq!(got, b"theirs");
        assert_eq!(reason.as_deref(), Some("shutting down"));
        // The link is still up: the peer closes its directions, a new
        // stream works.
        peer.write_all(&close(0, "")).await.unwrap();
        peer.write_all(&close(1, "")).await.unwrap();
        peer.write_all(&data(3, b"still up")).await.unwrap();
        let s = incoming.next().await.unwrap();
        assert_eq!(s.id(), 3);
        assert!(!mux.is_open(0) && !mux.is_open(1));
    });
}

/// A link end whose writer takes one buffer per write, as futures-io's
/// default vectored write (and tokio-util's compat) does, and records how
/// long each write was.
struct OneBufferAtATime {
    inner: circuit_stream::Duplex,
    writes: std::sync::Arc<std::sync::Mutex<Vec<usize>>>,
}

impl AsyncRead for OneBufferAtATime {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for OneBufferAtATime {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            self.writes.lock().unwrap().push(n);
        }
        polled
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

#[test]
fn a_link_that_writes_one_buffer_at_a_time_still_gets_whole_frames() {
    let pool = pool();
    let (ours, mut theirs) = circuit_stream::duplex_pair(1 << 20);
    let writes = std::sync::Arc::default();
    let io = OneBufferAtATime {
        inner: ours,
        writes: std::sync::Arc::clone(&writes),
    };
    let (mux, _incoming, driver) = Mux::new(io, Role::Client, Config::default());
    futures::task::SpawnExt::spawn(&pool, driver.map(drop)).unwrap();
    let sent: Vec<u8> = (0..4 << 20).map(|i: u32| (i % 251) as u8).collect();
    futures::executor::block_on(async {
        let (_read, write) = mux.open().unwrap().into_split();
        let writer = async {
            write.write_all(&sent).await.unwrap();
            write.close("sent");
        };
        let reader = async {
            let mut bytes = Vec::new();
            let mut buf = vec![0; 1 << 16];
            loop {
                let got = AsyncReadExt::read(&mut theirs, &mut buf).await.unwrap();
                assert!(got > 0, "link ended early");
                bytes.extend_from_slice(&buf[..got]);
                if let Ok(frames) = try_decode_all(&bytes) {
                    if let Some(Owned::Close(..)) = frames.last() {
                        return frames;
                    }
                }
            }
        };
        let ((), frames) = futures::join!(writer, reader);
        let mut received = Vec::new();
        for frame in &frames {
            if let Owned::Data(_, payload) = frame {
                received.extend_from_slice(payload);
            }
        }
        assert!(received == sent, "the bytes arrived changed");
    });
    let writes = writes.lock().unwrap();
    let headers_alone = writes.iter().filter(|&&n| n == 6).count();
    assert!(
        headers_alone <= 1,
        "{headers_alone} of {} writes were a frame header alone",
        writes.len()
    );
}

#[test]
fn streams_with_data_take_turns_one_frame_each() {
    let pool = pool();
    let (ours, mut theirs) = circuit_stream::duplex_pair(1 << 20);
    let (mux, _incoming, driver) = Mux::new(ours, Role::Client, Config::default());
    // Both streams hold ~200 KiB (four frames each) before the driver runs.
    let len = 200 << 10;
    let streams: Vec<_> = (0..2).map(|_| mux.open().unwrap().into_split()).collect();
    futures::executor::block_on(async {
        for (i, (_, write)) in streams.iter().enumerate() {
            write.write_all(&vec![i as u8; len]).await.unwrap();
        }
    });
    futures::task::SpawnExt::spawn(&pool, driver.map(drop)).unwrap();
    let frames = futures::executor::block_on(async {
        let mut bytes = Vec::new();
        let mut buf = vec![0; 1 << 16];
        loop {
            let got = AsyncReadExt::read(&mut theirs, &mut buf).await.unwrap();
            assert!(got > 0, "link ended early");
            bytes.extend_from_slice(&buf[..got]);
            if let Ok(frames) = try_decode_all(&bytes) {
                let sent: usize = frames
                    .iter()
                    .map(|f| match f {
                        Owned::Data(_, p) => p.len(),
                        Owned::Close(..) => 0,
                    })
                    .sum();
                if sent == 2 * len {
                    return frames;
                }
            }
        }
    });
    let ids: Vec<u32> = frames
        .iter()
        .map(|f| match f {
            Owned::Data(id, _) => *id,
            Owned::Close(id, _) => panic!("stream {id} closed"),
        })
        .collect();
    // While both have data, no stream sends two frames in a row.
    let first_id = ids[0];
    let a_frames = ids.iter().filter(|&&id| id == first_id).count();
    let b_frames = ids.len() - a_frames;
    let both = 2 * a_frames.min(b_frames);
    assert!(a_frames >= 4 && b_frames >= 4, "{ids:?}");
    assert!(
        ids[..both].windows(2).all(|w| w[0] != w[1]),
        "the streams did not alternate: {ids:?}"
    );
}
