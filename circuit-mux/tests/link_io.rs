//! How the driver uses its link: which bytes go in vectored writes
//! straight from a stream's pipe, which are copied, and how large the
//! reads it asks for are.

mod common;

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use circuit_mux::{Config, Mux, Role};
use common::{control, data, decode_all, drain, pair, pool, try_decode_all, Owned};
use futures::channel::mpsc;
use futures::{AsyncRead, AsyncWrite, FutureExt, StreamExt};

/// One write the link took: vectored or not, and its length.
#[derive(Debug, Clone, Copy)]
struct Write {
    vectored: bool,
    len: usize,
}

/// A link end that refuses every other write (pending, and wakes at once:
/// a socket whose buffer was full for a moment) and takes the others
/// whole. It records what it took; it never has anything to read.
struct FullEveryOtherTime {
    bytes: Arc<Mutex<Vec<u8>>>,
    writes: Arc<Mutex<Vec<Write>>>,
    refuse: bool,
    wrote: mpsc::UnboundedSender<()>,
}

impl FullEveryOtherTime {
    fn take(&mut self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>], vectored: bool) -> Poll<usize> {
        self.refuse = !self.refuse;
        if !self.refuse {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let mut bytes = self.bytes.lock().unwrap();
        for buf in bufs {
            bytes.extend_from_slice(buf);
        }
        let len = bufs.iter().map(|b| b.len()).sum();
        self.writes.lock().unwrap().push(Write { vectored, len });
        let _ = self.wrote.unbounded_send(());
        Poll::Ready(len)
    }
}

/// What a [`FullEveryOtherTime`] link took, as the test sees it.
struct Taken {
    bytes: Arc<Mutex<Vec<u8>>>,
    writes: Arc<Mutex<Vec<Write>>>,
    written: mpsc::UnboundedReceiver<()>,
}

impl Taken {
    /// A client mux over a new [`FullEveryOtherTime`] link; its driver is
    /// not running yet.
    fn mux() -> (Mux, circuit_mux::Driver<FullEveryOtherTime>, Taken) {
        let (wrote, written) = mpsc::unbounded();
        let taken = Taken {
            bytes: Arc::default(),
            writes: Arc::default(),
            written,
        };
        let io = FullEveryOtherTime {
            bytes: Arc::clone(&taken.bytes),
            writes: Arc::clone(&taken.writes),
            refuse: false,
            wrote,
        };
        let (mux, _incoming, driver) = Mux::new(io, Role::Client, Config::default());
        (mux, driver, taken)
    }

    /// Waits until the frames taken so far satisfy `done`, and returns them.
    async fn frames_until(&mut self, done: impl Fn(&[Owned]) -> bool) -> Vec<Owned> {
        loop {
            self.written.next().await.expect("the driver is running");
            if let Ok(frames) = try_decode_all(&self.bytes.lock().unwrap()) {
                if done(&frames) {
                    return frames;
                }
            }
        }
    }
}

impl AsyncRead for FullEveryOtherTime {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Pending
    }
}

impl AsyncWrite for FullEveryOtherTime {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.take(cx, &[IoSlice::new(buf)], false).map(Ok)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.take(cx, bufs, true).map(Ok)
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[test]
fn a_stream_alone_goes_straight_from_its_pipe_even_when_the_link_is_full_at_times() {
    let pool = pool();
    let (mux, driver, mut taken) = Taken::mux();
    futures::task::SpawnExt::spawn(&pool, driver.map(drop)).unwrap();
    let sent: Vec<u8> = (0..4 << 20).map(|i: u32| (i % 251) as u8).collect();
    let frames = futures::executor::block_on(async {
        let (_read, write) = mux.open().unwrap().into_split();
        write.write_all(&sent).await.unwrap();
        write.close("sent");
        taken
            .frames_until(|frames| matches!(frames.last(), Some(Owned::Close(..))))
            .await
    });
    let mut received = Vec::new();
    for frame in &frames {
        if let Owned::Data(_, payload) = frame {
            received.extend_from_slice(payload);
        }
    }
    assert!(received == sent, "the bytes arrived changed");
    let writes = taken.writes.lock().unwrap();
    let copied: usize = writes.iter().filter(|w| !w.vectored).map(|w| w.len).sum();
    // Gathering while the link was full would copy up to 256 KiB each time.
    assert!(
        copied < 16 << 10,
        "{copied} bytes were copied into the gather buffer; writes: {writes:?}"
    );
    // And the writes are large: full pipes, not one frame at a time.
    let straight = writes.iter().filter(|w| w.vectored).count();
    assert!(
        straight <= 2 * sent.len() / (256 << 10),
        "{straight} vectored writes for {} bytes",
        sent.len()
    );
}

/// A link end that holds `input` and hands it out as asked, recording
/// how many bytes each read asked for; it takes and drops every write.
struct Recorded {
    input: Vec<u8>,
    at: usize,
    asked: Arc<Mutex<Vec<usize>>>,
}

impl AsyncRead for Recorded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.asked.lock().unwrap().push(buf.len());
        let n = buf.len().min(self.input.len() - self.at);
        buf[..n].copy_from_slice(&self.input[self.at..self.at + n]);
        self.at += n;
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for Recorded {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[test]
fn a_short_frame_among_large_ones_does_not_send_the_next_large_one_through_the_read_buffer() {
    // What a full 256 KiB send pipe makes: four full frames and a short one.
    let mut input = Vec::new();
    let mut sent = Vec::new();
    for round in 0..8u8 {
        for (i, len) in [65_535, 65_535, 65_535, 65_535, 4].into_iter().enumerate() {
            let payload = vec![round.wrapping_mul(5).wrapping_add(i as u8); len];
            input.extend_from_slice(&data(1, &payload));
            sent.extend_from_slice(&payload);
        }
    }
    let asked = Arc::new(Mutex::new(Vec::new()));
    let io = Recorded {
        input,
        at: 0,
        asked: Arc::clone(&asked),
    };
    let pool = pool();
    let (_mux, mut incoming, driver) = Mux::new(io, Role::Client, Config::default());
    futures::task::SpawnExt::spawn(&pool, driver.map(drop)).unwrap();
    let (got, _epitaph) = futures::executor::block_on(async {
        let stream = incoming.next().await.expect("the peer's stream");
        let (read, _write) = stream.into_stream().into_split();
        drain(&read).await
    });
    assert!(got == sent, "the bytes arrived changed");
    let asked = asked.lock().unwrap();
    // The first read knows nothing of the traffic; after it, every read
    // is a frame's payload straight into the stream (with the next
    // header), or just what a short frame needs. A read of the whole read
    // buffer would copy the large frames behind a short one.
    let frame = 65_535 + 6;
    assert!(
        asked.iter().skip(1).all(|&n| n <= frame),
        "reads asked for {asked:?}"
    );
}

#[test]
fn several_streams_share_one_straight_write_a_frame_each() {
    let pool = pool();
    let (mux, driver, mut taken) = Taken::mux();
    // Four streams with 200 KiB each (four frames) before the driver runs.
    let len = 200 << 10;
    let streams: Vec<_> = (0..4).map(|_| mux.open().unwrap().into_split()).collect();
    futures::executor::block_on(async {
        for (i, (_, write)) in streams.iter().enumerate() {
            write.write_all(&vec![i as u8; len]).await.unwrap();
        }
    });
    futures::task::SpawnExt::spawn(&pool, driver.map(drop)).unwrap();
    let payload = |f: &Owned| match f {
        Owned::Data(_, p) => p.len(),
        Owned::Close(..) => 0,
    };
    let frames = futures::executor::block_on(
        taken.frames_until(|frames| frames.iter().map(payload).sum::<usize>() == 4 * len),
    );
    let mut per_stream = std::collections::HashMap::<u32, Vec<u8>>::new();
    let mut ids = Vec::new();
    for frame in &frames {
        let Owned::Data(id, payload) = frame else {
            panic!("a close frame: {frame:?}");
        };
        per_stream
            .entry(*id)
            .or_default()
            .extend_from_slice(payload);
        ids.push(*id);
    }
    for (i, (id, got)) in (0u8..).zip([0u32, 2, 4, 6].map(|id| (id, &per_stream[&id]))) {
        assert!(
            got.len() == len && got.iter().all(|&b| b == i),
            "stream {id} arrived changed"
        );
    }
    // Round-robin: while all four have data, no stream sends twice in a
    // round.
    for round in ids.chunks(4).take(3) {
        let mut sorted = round.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, [0, 2, 4, 6], "frames in order {ids:?}");
    }
    let writes = taken.writes.lock().unwrap();
    // Each write carries a frame of each stream straight from its pipe;
    // none goes through the gather buffer (a write of its own per frame,
    // or a copy, before).
    let copied: usize = writes.iter().filter(|w| !w.vectored).map(|w| w.len).sum();
    assert!(
        copied < 16 << 10,
        "{copied} bytes copied; writes: {writes:?}"
    );
    assert!(
        writes.len() <= 6,
        "{} writes for 16 frames: {writes:?}",
        writes.len()
    );
}

/// A link end that passes everything through to `inner`, counting the
/// bytes that went in vectored writes and in plain (gathered) ones.
struct Counted<IO> {
    inner: IO,
    vectored: Arc<std::sync::atomic::AtomicUsize>,
    plain: Arc<std::sync::atomic::AtomicUsize>,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Counted<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Counted<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            self.plain
                .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        }
        polled
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = polled {
            self.vectored
                .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
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
fn grants_due_do_not_send_a_streams_large_frames_through_the_gather_buffer() {
    use futures::{AsyncReadExt, AsyncWriteExt};
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    let (a_io, b_io) = circuit_stream::duplex_pair(1 << 20);
    let (vectored, plain) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let a_io = Counted {
        inner: a_io,
        vectored: Arc::clone(&vectored),
        plain: Arc::clone(&plain),
    };
    let (a, _, a_driver) = Mux::new(a_io, Role::Client, Config::default());
    let (b, mut b_incoming, b_driver) = Mux::new(b_io, Role::Server, Config::default());
    let pool = pool();
    futures::task::SpawnExt::spawn(&pool, a_driver.map(drop)).unwrap();
    futures::task::SpawnExt::spawn(&pool, b_driver.map(drop)).unwrap();
    const TOTAL: usize = 32 << 20;
    futures::executor::block_on(async {
        // The server speaks first; then the link is in credit mode.
        let mut first = b.open().unwrap();
        first.write_all(b"x").await.unwrap();
        assert_eq!(a.mode_settled().await, circuit_mux::LinkMode::Credit);
        // The client writes 32 MiB into a stream the server echoes, and
        // reads the echo: it sends grants all along, among its own large
        // frames.
        let (mut read, mut write) = a.open().unwrap().into_split();
        let writer = async move {
            let chunk = vec![7; 256 << 10];
            for _ in 0..TOTAL / chunk.len() {
                AsyncWriteExt::write_all(&mut write, &chunk).await.unwrap();
            }
            AsyncWriteExt::close(&mut write).await.unwrap();
        };
        let echo = async move {
            let (mut r, mut w) = b_incoming.next().await.unwrap().into_stream().into_split();
            futures::io::copy(&mut r, &mut w).await.unwrap();
            AsyncWriteExt::close(&mut w).await.unwrap();
        };
        let reader = async move {
            let mut buf = vec![0; 256 << 10];
            let mut got = 0;
            loop {
                match AsyncReadExt::read(&mut read, &mut buf).await.unwrap() {
                    0 => break,
                    n => got += n,
                }
            }
            got
        };
        let (_, _, got) = futures::join!(writer, echo, reader);
        assert_eq!(got, TOTAL);
    });
    assert!(a.counters().bytes_granted >= (TOTAL / 2) as u64);
    let (vectored, plain) = (vectored.load(Relaxed), plain.load(Relaxed));
    // Plain writes carry control frames, small frames and the rest of a
    // frame a write cut; a grant that pulled a whole write's data into the
    // gather buffer would make them a third of the bytes.
    assert!(
        plain * 10 < vectored,
        "{plain} bytes gathered, {vectored} written straight"
    );
}

/// A link end over `inner` whose first vectored write of several buffers
/// takes only the first one (as a socket whose buffer had just that much
/// room would), and which writes everything vectored after that; it
/// records each write.
struct CutOnce {
    inner: circuit_stream::Duplex,
    cut: bool,
    writes: Arc<Mutex<Vec<Write>>>,
}

impl AsyncRead for CutOnce {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CutOnce {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(len)) = polled {
            let write = Write {
                vectored: false,
                len,
            };
            self.writes.lock().unwrap().push(write);
        }
        polled
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let bufs = match (self.cut, bufs) {
            (false, [first, _, ..]) => {
                self.cut = true;
                std::slice::from_ref(first)
            }
            _ => bufs,
        };
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(len)) = polled {
            let write = Write {
                vectored: true,
                len,
            };
            self.writes.lock().unwrap().push(write);
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
fn one_write_that_takes_only_a_frame_header_does_not_end_vectored_writes() {
    use futures::AsyncReadExt;
    let pool = pool();
    let (ours, mut theirs) = circuit_stream::duplex_pair(1 << 20);
    let writes = Arc::default();
    let io = CutOnce {
        inner: ours,
        cut: false,
        writes: Arc::clone(&writes),
    };
    let (mux, _incoming, driver) = Mux::new(io, Role::Client, Config::default());
    futures::task::SpawnExt::spawn(&pool, driver.map(drop)).unwrap();
    let sent: Vec<u8> = (0..16 << 20).map(|i: u32| (i % 251) as u8).collect();
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
    assert_eq!(writes[0].len, 6, "the first write took a frame header");
    // A while of gathered writes, then straight from the pipes again.
    let copied: usize = writes.iter().filter(|w| !w.vectored).map(|w| w.len).sum();
    assert!(
        copied <= 4 << 20,
        "{copied} of {} bytes were copied; writes: {writes:?}",
        sent.len()
    );
}

/// A link end that reads what the test feeds it and takes no write until
/// the test opens it (a socket whose buffer stays full); then it keeps
/// every byte written.
struct Gated {
    feed: circuit_stream::Reader,
    open: Arc<Mutex<(bool, Option<std::task::Waker>)>>,
    taken: Arc<Mutex<Vec<u8>>>,
    wrote: mpsc::UnboundedSender<()>,
}

impl Gated {
    fn take(&mut self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let mut open = self.open.lock().unwrap();
        if !open.0 {
            open.1 = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let mut taken = self.taken.lock().unwrap();
        for buf in bufs {
            taken.extend_from_slice(buf);
        }
        let _ = self.wrote.unbounded_send(());
        Poll::Ready(Ok(bufs.iter().map(|b| b.len()).sum()))
    }
}

impl AsyncRead for Gated {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.feed).poll_read(cx, buf)
    }
}

impl AsyncWrite for Gated {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.take(cx, &[IoSlice::new(buf)])
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.take(cx, bufs)
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[test]
fn a_grant_goes_ahead_of_the_data_queued_for_a_full_link_but_after_our_hello() {
    use circuit_frame::{LinkControl, LINK_CONTROL_ID};
    use futures::{AsyncReadExt, AsyncWriteExt};
    let (feed, feeder) = circuit_stream::stream();
    let open = Arc::new(Mutex::new((false, None::<std::task::Waker>)));
    let taken = Arc::new(Mutex::new(Vec::new()));
    let (wrote, mut written) = mpsc::unbounded();
    let io = Gated {
        feed,
        open: Arc::clone(&open),
        taken: Arc::clone(&taken),
        wrote,
    };
    // A send queue of 64 bytes: full once it holds a data frame.
    let config = Config::default().write_buffer(64);
    let (client, mut incoming, driver) = Mux::new(io, Role::Client, config);
    let pool = pool();
    futures::task::SpawnExt::spawn(&pool, driver.map(drop)).unwrap();
    futures::executor::block_on(async {
        // The server's first frame and its HELLO: the client answers with
        // its own, which waits in the send queue (the link takes nothing).
        feeder.try_write(&data(1, b"x")).unwrap();
        feeder.try_write(&control(&[LinkControl::hello()])).unwrap();
        let _first = incoming.next().await.unwrap();
        assert_eq!(client.mode_settled().await, circuit_mux::LinkMode::Credit);
        // Streams of ours write 64 KiB each: the queue fills up.
        let mut ours = Vec::new();
        for _ in 0..4 {
            let mut stream = client.open().unwrap();
            stream.write_all(&vec![7; 64 << 10]).await.unwrap();
            ours.push(stream);
        }
        // Our HELLO's frame and a data frame: the queue is full.
        while client.counters().frames_out < 2 {
            std::thread::yield_now();
        }
        // The server sends all the credit of a stream of its own; reading
        // it makes a grant due.
        feeder.try_write(&data(3, &vec![1; 65_535])).unwrap();
        feeder.try_write(&data(3, &[1])).unwrap();
        let mut three = incoming.next().await.unwrap().into_stream();
        let mut got = vec![0; 64 << 10];
        three.read_exact(&mut got).await.unwrap();
        // The driver picks the grant though its queue is full (before, it
        // waited for the queue to drain: this would never end).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while client.counters().bytes_granted == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "no grant was picked while the link was full"
            );
            std::thread::yield_now();
        }
        // The link opens.
        let waker = {
            let mut open = open.lock().unwrap();
            open.0 = true;
            open.1.take()
        };
        waker.expect("the driver waits to write").wake();
        let frames = loop {
            written.next().await.unwrap();
            let frames = try_decode_all(&taken.lock().unwrap()).unwrap_or_default();
            let control_frames = frames
                .iter()
                .filter(|f| matches!(f, Owned::Data(LINK_CONTROL_ID, _)))
                .count();
            if control_frames >= 2 {
                break frames;
            }
        };
        // Our HELLO first, then the grant, then the data queued before it.
        let Owned::Data(LINK_CONTROL_ID, hello) = &frames[0] else {
            panic!("not our HELLO first: {:?}", frames[0]);
        };
        let mut encoded = Vec::new();
        circuit_frame::Encode::encode_to_vec(&LinkControl::hello(), &mut encoded);
        assert!(
            hello.starts_with(&encoded),
            "not our HELLO first: {hello:?}"
        );
        let Owned::Data(LINK_CONTROL_ID, grant) = &frames[1] else {
            panic!(
                "the grant did not go ahead of the queued data: {:?}",
                frames[1]
            );
        };
        // A CREDIT for stream 3: at least the quarter window its reader
        // took.
        let mut expected = Vec::new();
        circuit_frame::Encode::encode_to_vec(
            &LinkControl::Credit {
                stream_id: 3,
                bytes: 64 << 10,
            },
            &mut expected,
        );
        assert_eq!(grant.len(), expected.len());
        assert_eq!(grant[..5], expected[..5], "a CREDIT for stream 3");
        let bytes = u32::from_le_bytes(grant[5..9].try_into().unwrap());
        assert!(bytes >= 16 << 10, "{bytes}");
        // Every byte of our streams follows.
        let ours_bytes: usize = frames[2..]
            .iter()
            .map(|f| match f {
                Owned::Data(id, payload) if *id != LINK_CONTROL_ID => payload.len(),
                _ => 0,
            })
            .sum();
        assert!(ours_bytes >= 65_535, "{ours_bytes} bytes of data after it");
        drop(ours);
    });
}

#[test]
fn a_link_that_is_a_pipe_gets_a_large_payload_handed_over_not_copied() {
    let pool = pool();
    let (ours, theirs) = circuit_stream::duplex_pair(1 << 20);
    let (mux, _incoming, driver) = Mux::new(ours, Role::Client, Config::default());
    futures::task::SpawnExt::spawn(&pool, driver.map(drop)).unwrap();
    let stream = mux.open().unwrap();
    let id = stream.id();
    let (_read, write) = stream.into_split();
    let (link, _link_out) = theirs.into_split();
    // Handed to the stream's pipe as it is, then to the link.
    let payload = circuit_stream::Bytes::from(vec![7u8; 32 << 10]);
    futures::executor::block_on(async {
        write.write_bytes(payload.clone()).await.unwrap();
        let header_len = circuit_frame::DATA_HEADER_LEN;
        let mut frame = link
            .read(header_len, |b| (b[..header_len].to_vec(), header_len))
            .await
            .unwrap();
        let chunk = futures::future::poll_fn(|cx| link.poll_take(cx))
            .await
            .unwrap();
        assert_eq!(chunk.len(), payload.len(), "the payload in one piece");
        assert_eq!(chunk.as_ptr(), payload.as_ptr(), "the payload was copied");
        frame.extend_from_slice(&chunk);
        assert_eq!(decode_all(&frame), [Owned::Data(id, payload.to_vec())]);
        // A short payload is copied: handed over, it would keep a block
        // of up to 64 KiB alive for a few bytes counted in the link.
        let short = circuit_stream::Bytes::from(vec![9u8; 8 << 10]);
        write.write_bytes(short.clone()).await.unwrap();
        let mut frame = Vec::new();
        while frame.len() < header_len + short.len() {
            let chunk = futures::future::poll_fn(|cx| link.poll_take(cx))
                .await
                .unwrap();
            assert!(
                !chunk.as_ptr_range().contains(&short.as_ptr()),
                "a short payload handed over"
            );
            frame.extend_from_slice(&chunk);
        }
        assert_eq!(decode_all(&frame), [Owned::Data(id, short.to_vec())]);
    });
}

#[test]
fn over_a_pipe_link_a_large_payload_reaches_the_peers_stream_in_the_storage_it_was_written_in() {
    // Handed from the writer's stream to the link and from the link to the
    // reader's stream: no copy from end to end. A short one is copied on
    // the way, and every byte arrives in order either way.
    let pool = pool();
    let p = pair(&pool, Config::default(), Config::default());
    futures::executor::block_on(async {
        let (_a_read, a_write) = p.a.open().unwrap().into_split();
        let large = circuit_stream::Bytes::from(vec![5u8; 40 << 10]);
        let short = circuit_stream::Bytes::from(vec![6u8; 8 << 10]);
        a_write.write_bytes(large.clone()).await.unwrap();
        let mut b_incoming = p.b_incoming;
        let (b_read, _b_write) = b_incoming.next().await.unwrap().into_stream().into_split();
        let chunk = futures::future::poll_fn(|cx| b_read.poll_take(cx))
            .await
            .unwrap();
        assert_eq!(chunk.len(), large.len(), "the payload in one piece");
        assert_eq!(chunk.as_ptr(), large.as_ptr(), "the payload was copied");
        drop(chunk);
        a_write.write_bytes(short.clone()).await.unwrap();
        let pattern: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        a_write.write_all(&pattern).await.unwrap();
        a_write.close_without_reason();
        let mut got = Vec::new();
        while let Ok(chunk) = futures::future::poll_fn(|cx| b_read.poll_take(cx)).await {
            assert!(
                !chunk.as_ptr_range().contains(&short.as_ptr()),
                "a short payload handed over"
            );
            got.extend_from_slice(&chunk);
        }
        let mut want = short.to_vec();
        want.extend_from_slice(&pattern);
        assert!(got == want, "bytes lost or out of order");
    });
}
