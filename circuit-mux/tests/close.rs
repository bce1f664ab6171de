//! `Mux::close`: new streams refused, a close frame for every stream the
//! peer knows, the link's io closed, what the peer still sends read to its
//! end, then the close future and the driver end. Every test waits on events (frames read, writes refused), never on
//! time.

mod common;

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use circuit_mux::{Config, CreditMode, Mux, MuxError, Role};
use common::{drain, pair, pool, try_decode_all, Owned, Ticks};
use futures::channel::oneshot;
use futures::future::{join, select, Either};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, FutureExt, StreamExt};

/// What happened to a [`Recorded`] link end.
#[derive(Debug, Default)]
struct Record {
    /// `poll_close` returned `Ready(Ok(()))`.
    closed: AtomicBool,
    /// The io was dropped.
    dropped: AtomicBool,
    /// Writes and flushes stay pending (a peer that never reads).
    stall: AtomicBool,
    /// Told the first time a write or flush stalled.
    stalled: Mutex<Option<oneshot::Sender<()>>>,
}

impl Record {
    fn closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// `Pending` if writes stall (telling whoever waits for it).
    fn stalling(&self) -> bool {
        if !self.stall.load(Ordering::SeqCst) {
            return false;
        }
        if let Some(tx) = self.stalled.lock().unwrap().take() {
            let _ = tx.send(());
        }
        true
    }
}

/// A link end that records its close and its drop, and can stall writes.
struct Recorded {
    inner: circuit_stream::Duplex,
    record: Arc<Record>,
}

impl Recorded {
    fn new(inner: circuit_stream::Duplex) -> (Self, Arc<Record>) {
        let record = Arc::new(Record::default());
        let io = Recorded {
            inner,
            record: Arc::clone(&record),
        };
        (io, record)
    }
}

impl AsyncRead for Recorded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Recorded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.record.stalling() {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.record.stalling() {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.record.stalling() {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_close(cx);
        if let Poll::Ready(Ok(())) = polled {
            self.record.closed.store(true, Ordering::SeqCst);
        }
        polled
    }
}

impl Drop for Recorded {
    fn drop(&mut self) {
        self.record.dropped.store(true, Ordering::SeqCst);
    }
}

/// A client mux (credit off: the test peer speaks raw v0 frames) on a
/// recorded link end, and the peer's end.
fn client() -> (
    Mux,
    circuit_mux::Incoming,
    circuit_mux::Driver<Recorded>,
    Arc<Record>,
    circuit_stream::Duplex,
) {
    let (ours, theirs) = circuit_stream::duplex_pair(1 << 20);
    let (io, record) = Recorded::new(ours);
    let config = Config::default().peer_name("b").credit(CreditMode::Off);
    let (mux, incoming, driver) = Mux::new(io, Role::Client, config);
    (mux, incoming, driver, record, theirs)
}

/// Reads from the peer's end until `n` frames have arrived.
async fn read_frames(peer: &mut circuit_stream::Duplex, n: usize) -> Vec<Owned> {
    let mut bytes = Vec::new();
    loop {
        if let Ok(frames) = try_decode_all(&bytes) {
            if frames.len() >= n {
                return frames;
            }
        }
        let mut buf = [0; 4096];
        let got = peer.read(&mut buf).await.unwrap();
        assert!(got > 0, "link ended early");
        bytes.extend_from_slice(&buf[..got]);
    }
}

fn id_of(frame: &Owned) -> u32 {
    match frame {
        Owned::Data(id, _) | Owned::Close(id, _) => *id,
    }
}

#[test]
fn close_sends_a_close_frame_for_each_known_stream_then_closes_the_io() {
    let (mux, mut incoming, driver, record, mut peer) = client();
    let script = async {
        let mut known = [mux.open().unwrap(), mux.open().unwrap()];
        for s in &mut known {
            s.write_all(b"seen").await.unwrap();
        }
        let mut frames = read_frames(&mut peer, 2).await;
        frames.sort_by_key(id_of);
        assert_eq!(
            frames,
            vec![
                Owned::Data(0, b"seen".to_vec()),
                Owned::Data(2, b"seen".to_vec())
            ]
        );
        // Bytes the driver has not sent yet (it does not run until the
        // script waits), on the known streams and on one the peer never saw.
        let mut unseen = mux.open().unwrap();
        for s in known.iter_mut().chain([&mut unseen]) {
            s.write_all(b"never sent").await.unwrap();
        }

        let close = mux.close("going away");
        assert!(matches!(mux.open(), Err(MuxError::LinkClosed)));
        assert!(incoming.next().await.is_none(), "incoming ends on close");

        // The peer gets a close frame for each stream it knew, nothing
        // else, then the end of the link.
        let mut rest = Vec::new();
        peer.read_to_end(&mut rest).await.unwrap();
        let mut frames = try_decode_all(&rest).unwrap();
        frames.sort_by_key(id_of);
        assert_eq!(
            frames,
            vec![
                Owned::Close(0, "going away".into()),
                Owned::Close(2, "going away".into())
            ]
        );
        // The io is closed this way; the driver reads, and drops, what the
        // peer still sends until the peer closes its end too (a socket let
        // go with bytes unread would send a reset).
        let mut close = close;
        peer.write_all(&common::data(0, b"sent before the end was read"))
            .await
            .unwrap();
        assert!(
            (&mut close).now_or_never().is_none(),
            "the close waits for the peer's end"
        );
        peer.close().await.unwrap();
        let record = Arc::clone(&record);
        let closed = close.map(move |result| (result, record.closed())).await;
        assert!(
            matches!(closed, (Ok(()), true)),
            "the close resolves after the io closed: {closed:?}"
        );
        for s in known.into_iter().chain([unseen]) {
            let (read, _write) = s.into_split();
            let (got, reason) = drain(&read).await;
            assert!(got.is_empty());
            assert_eq!(reason.as_deref(), Some("going away"));
        }
    };
    let (ended, ()) = futures::executor::block_on(join(driver, script));
    assert!(ended.is_ok(), "{ended:?}");
    assert!(record.closed());
    assert!(mux.close("again").now_or_never().unwrap().is_ok());
}

#[test]
fn the_peer_mux_sees_the_epitaph_and_the_end_of_the_link() {
    let pool = pool();
    let mut p = pair(&pool, Config::default(), Config::default());
    futures::executor::block_on(async {
        let mut ours = p.a.open().unwrap();
        ours.write_all(b"hello").await.unwrap();
        let (theirs, _their_write) = p
            .b_incoming
            .next()
            .await
            .unwrap()
            .into_stream()
            .into_split();
        p.a.close("a is leaving").await.unwrap();
        let (got, reason) = drain(&theirs).await;
        assert_eq!(got, b"hello");
        assert_eq!(reason.as_deref(), Some("a is leaving"));
        assert!(p.a_done.await.is_ok());
        assert!(p.b_done.await.is_ok(), "b sees the link end cleanly");
        assert!(p.b_incoming.next().await.is_none());
        assert!(matches!(p.b.open(), Err(MuxError::LinkClosed)));
    });
}

/// Sends a frame on a new stream and waits for the peer to read it, then
/// starts a close (its future dropped: the close goes on) and reads to
/// the end of the link: the stream's close frame, then the closed io.
async fn send_then_close(mux: &Mux, peer: &mut circuit_stream::Duplex) {
    let mut s = mux.open().unwrap();
    s.write_all(b"seen").await.unwrap();
    assert_eq!(
        read_frames(peer, 1).await,
        vec![Owned::Data(0, b"seen".to_vec())]
    );
    drop(mux.close("bye"));
    let mut rest = Vec::new();
    peer.read_to_end(&mut rest).await.unwrap();
    assert_eq!(
        try_decode_all(&rest).unwrap(),
        vec![Owned::Close(0, "bye".into())]
    );
}

/// A v0 client's config whose keep-alive (so its closes) `ticks` times.
fn timed(ticks: &Ticks) -> Config {
    Config::default()
        .peer_name("b")
        .credit(CreditMode::Off)
        .keep_alive(
            std::time::Duration::from_secs(3600),
            std::time::Duration::from_secs(5),
            Arc::new(ticks.clone()),
        )
}

#[test]
fn the_close_goes_on_when_its_future_is_dropped() {
    let (mux, _incoming, driver, record, mut peer) = client();
    let script = async {
        send_then_close(&mux, &mut peer).await;
        peer.close().await.unwrap();
    };
    let (ended, ()) = futures::executor::block_on(join(driver, script));
    assert!(ended.is_ok(), "{ended:?}");
    assert!(record.closed(), "the driver closed the io");
}

#[test]
fn a_close_stuck_on_a_peer_that_never_reads_ends_when_the_driver_is_dropped() {
    let (mux, _incoming, mut driver, record, mut peer) = client();
    let (stalled_tx, stalled) = oneshot::channel();
    *record.stalled.lock().unwrap() = Some(stalled_tx);
    futures::executor::block_on(async {
        let mut s = mux.open().unwrap();
        s.write_all(b"seen").await.unwrap();
        match select(&mut driver, read_frames(&mut peer, 1).boxed()).await {
            Either::Right((frames, _)) => {
                assert_eq!(frames, vec![Owned::Data(0, b"seen".to_vec())])
            }
            Either::Left((ended, _)) => panic!("the driver ended: {ended:?}"),
        }
        // From now on the peer takes nothing.
        record.stall.store(true, Ordering::SeqCst);
        let mut close = mux.close("bye");
        match select(&mut driver, stalled).await {
            Either::Right((stalled, _)) => stalled.unwrap(),
            Either::Left((ended, _)) => panic!("the driver ended: {ended:?}"),
        }
        // The close frame cannot go: the close waits (the caller's
        // deadline would pass here), and the io is not closed.
        assert!((&mut close).now_or_never().is_none());
        assert!((&mut driver).now_or_never().is_none());
        assert!(!record.closed());
        // The caller gives up: dropping the driver ends the close and
        // drops the io.
        drop(driver);
        assert!(matches!(close.await, Err(MuxError::LinkClosed)));
        assert!(record.dropped.load(Ordering::SeqCst));
        assert!(!record.closed());
        let (read, _write) = s.into_split();
        let (_, reason) = drain(&read).await;
        assert_eq!(reason.as_deref(), Some("bye"));
    });
}

/// A v0 client's config with no keep-alive, whose closes `ticks` times.
fn close_bounded(ticks: &Ticks) -> Config {
    Config::default()
        .peer_name("b")
        .credit(CreditMode::Off)
        .close_timeout(std::time::Duration::from_secs(5), Arc::new(ticks.clone()))
}

#[test]
fn with_a_keep_alive_a_close_waits_for_the_peers_end_at_most_its_timeout() {
    let ticks = Ticks::default();
    a_close_waits_for_the_peers_end_at_most_its_bound(timed(&ticks), &ticks);
}

#[test]
fn with_a_close_timeout_and_no_keep_alive_a_close_waits_for_the_peers_end_at_most_that() {
    let ticks = Ticks::default();
    a_close_waits_for_the_peers_end_at_most_its_bound(close_bounded(&ticks), &ticks);
}

#[test]
fn with_a_keep_alive_a_close_the_link_never_takes_fails_at_its_timeout() {
    let ticks = Ticks::default();
    a_close_the_link_never_takes_fails_at_its_bound(timed(&ticks), &ticks);
}

#[test]
fn with_a_close_timeout_and_no_keep_alive_a_close_the_link_never_takes_fails_at_that() {
    let ticks = Ticks::default();
    a_close_the_link_never_takes_fails_at_its_bound(close_bounded(&ticks), &ticks);
}

/// The close's bound, timed by `ticks`, ends a close whose peer never
/// closes its end: `Ok`, every frame having gone.
fn a_close_waits_for_the_peers_end_at_most_its_bound(config: Config, ticks: &Ticks) {
    let (ours, mut peer) = circuit_stream::duplex_pair(1 << 20);
    let (mux, _incoming, driver) = Mux::new(ours, Role::Client, config);
    let mut driver = Box::pin(driver);
    futures::executor::block_on(async {
        // Once the peer has read to the end of the link the driver has
        // closed its io; it waits for the peer's end, which never comes.
        let script = send_then_close(&mux, &mut peer);
        match select(driver.as_mut(), Box::pin(script)).await {
            Either::Right(((), _)) => {}
            Either::Left((ended, _)) => panic!("the driver ended first: {ended:?}"),
        }
        assert!(
            driver.as_mut().now_or_never().is_none(),
            "it waits for the peer"
        );
        // The timeout passes: the close is done, every frame having gone.
        ticks.tick();
        let ended = driver.as_mut().now_or_never().expect("the close timed out");
        assert!(ended.is_ok(), "{ended:?}");
    });
    drop(peer);
}

/// The close's bound, timed by `ticks`, ends a close the link never
/// takes: an error of kind `TimedOut`.
fn a_close_the_link_never_takes_fails_at_its_bound(config: Config, ticks: &Ticks) {
    let (ours, mut peer) = circuit_stream::duplex_pair(1 << 20);
    let (io, record) = Recorded::new(ours);
    let (mux, _incoming, driver) = Mux::new(io, Role::Client, config);
    let mut driver = Box::pin(driver);
    futures::executor::block_on(async {
        let mut s = mux.open().unwrap();
        s.write_all(b"seen").await.unwrap();
        match select(driver.as_mut(), read_frames(&mut peer, 1).boxed()).await {
            Either::Right((frames, _)) => {
                assert_eq!(frames, vec![Owned::Data(0, b"seen".to_vec())])
            }
            Either::Left((ended, _)) => panic!("the driver ended: {ended:?}"),
        }
        // The link takes nothing more, not even a flush or the close.
        record.stall.store(true, Ordering::SeqCst);
        drop(mux.close("bye"));
        drop(s);
        assert!(driver.as_mut().now_or_never().is_none());
    });
    ticks.tick();
    match driver.as_mut().now_or_never() {
        Some(Err(MuxError::Io { source, .. })) => {
            assert_eq!(source.kind(), io::ErrorKind::TimedOut)
        }
        other => panic!("expected a timed-out close, got {other:?}"),
    }
    assert!(!record.closed());
}

#[test]
fn streams_the_peer_opens_during_a_close_are_refused() {
    let (mux, mut incoming, driver, record, mut peer) = client();
    let script = async {
        peer.write_all(&common::data(1, b"theirs")).await.unwrap();
        let (their_read, _w) = incoming.next().await.unwrap().into_stream().into_split();
        let close = mux.close("closing");
        // Sent before the peer could know of the close.
        peer.write_all(&common::data(3, b"late")).await.unwrap();
        let mut rest = Vec::new();
        peer.read_to_end(&mut rest).await.unwrap();
        let mut frames = try_decode_all(&rest).unwrap();
        frames.sort_by_key(id_of);
        assert_eq!(
            frames,
            vec![
                Owned::Close(1, "closing".into()),
                Owned::Close(3, "refused: this end is closing the link".into())
            ]
        );
        peer.close().await.unwrap();
        assert!(close.await.is_ok());
        let (got, reason) = drain(&their_read).await;
        assert_eq!(got, b"theirs");
        assert_eq!(reason.as_deref(), Some("closing"));
        assert!(incoming.next().await.is_none());
    };
    let (ended, ()) = futures::executor::block_on(join(driver, script));
    assert!(ended.is_ok(), "{ended:?}");
    assert!(record.closed());
}
