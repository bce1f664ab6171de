//! An echo inside the link (`Mux::loop_back`, `Core::loop_back`): the
//! order of the bytes, the close, credit, and the cases it refuses.

mod common;

use std::task::Context;

use circuit_mux::{Config, Core, MuxStream, Role};
use common::{close, data, decode_all, drain, pair, pattern, pool, Owned};
use futures::task::{noop_waker_ref, SpawnExt};
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};

const MIB: usize = 1 << 20;

fn feed(core: &mut Core, input: &[u8]) {
    let mut cx = Context::from_waker(noop_waker_ref());
    core.receive(input, &mut cx).expect("no link error");
}

/// The payload of every data frame for `id` the core sends now, joined,
/// and whether a close for it followed.
fn sent(core: &mut Core, id: u32) -> (Vec<u8>, Option<String>) {
    let mut out = Vec::new();
    core.transmit(&mut out, usize::MAX);
    let mut bytes = Vec::new();
    let mut closed = None;
    for frame in decode_all(&out) {
        match frame {
            Owned::Data(i, payload) if i == id => bytes.extend_from_slice(&payload),
            Owned::Close(i, epitaph) if i == id => closed = Some(epitaph),
            _ => {}
        }
    }
    (bytes, closed)
}

/// A v0 client core with one stream the peer opened (id 1), accepted.
fn with_incoming(first: &[u8]) -> (Core, MuxStream) {
    let config = Config::default().credit(circuit_mux::CreditMode::Off);
    let mut core = Core::new(Role::Client, config);
    feed(&mut core, &data(1, first));
    let stream = core.accept().expect("accepted");
    (core, stream)
}

#[test]
fn bytes_written_go_first_then_the_unread_ones_then_all_that_comes_and_the_close() {
    let (mut core, stream) = with_incoming(b"hello ");
    let (reader, writer) = stream.into_split();
    // Written and not sent yet; the peer's bytes not read.
    writer.try_write(b"first: ").unwrap();
    core.loop_back(1, reader, writer).expect("looped back");
    assert_eq!(sent(&mut core, 1), (b"first: hello ".to_vec(), None));
    feed(&mut core, &data(1, b"world"));
    assert_eq!(sent(&mut core, 1), (b"world".to_vec(), None));
    // The peer closes its direction: ours closes after the last byte,
    // with the peer's epitaph.
    feed(&mut core, &data(1, b"!"));
    feed(&mut core, &close(1, "done here"));
    assert_eq!(
        sent(&mut core, 1),
        (b"!".to_vec(), Some("done here".to_owned()))
    );
    assert!(!core.is_open(1), "both directions are closed");
}

#[test]
fn ends_that_are_not_the_streams_or_a_closed_direction_come_back_untouched() {
    let (mut core, stream) = with_incoming(b"a");
    feed(&mut core, &data(3, b"b"));
    let other = core.accept().expect("accepted");
    let (reader, writer) = stream.into_split();
    let (other_reader, other_writer) = other.into_split();

    // Another stream's ends, or an id that is not open.
    let (reader, other_writer) = core.loop_back(1, reader, other_writer).unwrap_err();
    let (other_reader, writer) = core.loop_back(1, other_reader, writer).unwrap_err();
    let (reader, writer) = core.loop_back(5, reader, writer).unwrap_err();
    // Still the stream's own, and still working.
    writer.try_write(b"x").unwrap();
    assert_eq!(sent(&mut core, 1), (b"x".to_vec(), None));
    assert_eq!(
        reader.try_read_with(1, |b| (b.to_vec(), b.len())),
        Ok(Some(b"a".to_vec()))
    );

    // Our direction closed by the application: refused.
    writer.close_without_reason();
    let (_reader, _writer) = core.loop_back(1, reader, writer).unwrap_err();

    // The peer's direction closed: refused.
    feed(&mut core, &close(3, ""));
    assert!(core.loop_back(3, other_reader, other_writer).is_err());
}

/// Opens a stream on `mux`, writes `bytes` of pattern `seed` in 64 KiB
/// writes and closes; meanwhile reads what comes back and checks it is
/// the same bytes, then a clean close.
async fn echo_through(mux: &circuit_mux::Mux, seed: u64, bytes: usize) {
    let stream = mux.open().unwrap();
    let (reader, mut writer) = stream.into_split();
    let send = async {
        let mut buf = vec![0; 64 << 10];
        let mut off = 0;
        while off < bytes {
            let n = (bytes - off).min(buf.len());
            pattern(seed, off as u64, &mut buf[..n]);
            AsyncWriteExt::write_all(&mut writer, &buf[..n])
                .await
                .unwrap();
            off += n;
        }
        AsyncWriteExt::close(&mut writer).await.unwrap();
    };
    let (_, (echo, epitaph)) = futures::join!(send, drain(&reader));
    assert_eq!(epitaph, None);
    assert_eq!(echo.len(), bytes);
    let mut expect = vec![0; bytes];
    pattern(seed, 0, &mut expect);
    assert!(echo == expect, "the echo is the bytes sent, in order");
}

/// Echoes every stream `b` accepts inside the link, once the link has
/// settled in credit mode: the server speaks first (its HELLO follows its
/// first frame), so streams opened after are under credit. Returns the
/// server's first stream, to keep open, and the handles of the drivers,
/// which stop when dropped.
async fn echo_server_in_credit_mode(
    pool: &futures::executor::ThreadPool,
    p: common::Pair,
) -> (circuit_mux::Mux, circuit_mux::Mux, impl Sized) {
    let mut first = p.b.open().unwrap();
    AsyncWriteExt::write_all(&mut first, b"x").await.unwrap();
    assert_eq!(p.a.mode_settled().await, circuit_mux::LinkMode::Credit);
    let b = p.b.clone();
    let mut b_incoming = p.b_incoming;
    pool.spawn(async move {
        while let Some(incoming) = b_incoming.next().await {
            let stream = incoming.into_stream();
            let id = stream.id();
            let (reader, writer) = stream.into_split();
            b.loop_back(id, reader, writer).expect("looped back");
        }
    })
    .unwrap();
    (p.a, p.b, (first, p.a_done, p.b_done))
}

#[test]
fn a_looped_back_stream_echoes_far_more_than_its_window_under_credit() {
    let pool = pool();
    let p = pair(&pool, Config::default(), Config::default());
    futures::executor::block_on(async {
        let (a, b, _keep) = echo_server_in_credit_mode(&pool, p).await;
        echo_through(&a, 3, 16 * MIB).await;
        let granted = b.counters().bytes_granted;
        assert!(
            granted >= 15 * MIB as u64,
            "the echo's side granted as the bytes went back: {granted}"
        );
    });
}

#[test]
fn an_echo_nobody_reads_holds_its_window_while_another_moves_32_mib() {
    let pool = pool();
    let p = pair(&pool, Config::default(), Config::default());
    futures::executor::block_on(async {
        let (a, _b, _keep) = echo_server_in_credit_mode(&pool, p).await;
        // Its echo is never read: it stalls once the windows both ways
        // are full, and must stall nothing else.
        let stuck = a.open().unwrap();
        let (stuck_reader, mut stuck_writer) = stuck.into_split();
        let pushing = pool
            .spawn_with_handle(async move {
                let _ = AsyncWriteExt::write_all(&mut stuck_writer, &vec![5; 4 * MIB]).await;
                stuck_writer
            })
            .unwrap();
        // Waited for, not timed: its echo has filled our window.
        stuck_reader.read(65_536, |_| ((), 0)).await.unwrap();
        echo_through(&a, 8, 32 * MIB).await;

        // Reading the stuck echo lets its writer finish.
        let mut stuck_reader = stuck_reader;
        let mut rest = vec![0; 4 * MIB];
        stuck_reader.read_exact(&mut rest).await.unwrap();
        assert!(rest.iter().all(|&b| b == 5));
        drop(pushing.await);
    });
}
