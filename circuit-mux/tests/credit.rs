//! Credit flow control (PROTOCOL.md section 4): negotiation in both roles
//! and against v0 answers, the stuck-consumer scenario, and bad input.

mod common;

use std::task::Context;

use circuit_frame::{LinkControl, LINK_CONTROL_ID};
use circuit_mux::{Config, Core, CreditMode, LinkMode, MuxError, Role};
use common::{close, control, data, decode_all, drain, pair, pattern, pool, Owned, Ticks};
use futures::task::SpawnExt;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};

const MIB: usize = 1 << 20;

fn feed(core: &mut Core, bytes: &[u8]) -> Result<(), MuxError> {
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    let progress = core.receive(bytes, &mut cx)?;
    assert_eq!(progress.consumed, bytes.len(), "the core took every byte");
    Ok(())
}

fn drain_core(core: &mut Core) -> Vec<Owned> {
    let mut out = Vec::new();
    core.transmit(&mut out, usize::MAX);
    decode_all(&out)
}

fn credit(mode: CreditMode) -> Config {
    Config::default().credit(mode)
}

/// The pipes of a stream whose source holds `bytes`, and the ends that
/// keep both open.
struct Pipes {
    source: circuit_stream::Reader,
    sink: circuit_stream::Writer,
    _ends: (circuit_stream::Writer, circuit_stream::Reader),
}

fn source_with(bytes: &[u8]) -> Pipes {
    let (source, writer) = circuit_stream::stream_unbounded();
    writer.try_write(bytes).unwrap();
    let (reader, sink) = circuit_stream::stream();
    Pipes {
        source,
        sink,
        _ends: (writer, reader),
    }
}

fn attach(
    core: &mut Core,
    bytes: &[u8],
) -> (u32, (circuit_stream::Writer, circuit_stream::Reader)) {
    let Pipes {
        source,
        sink,
        _ends,
    } = source_with(bytes);
    (core.attach(source, sink).unwrap(), _ends)
}

/// The control messages of a frame on the link-control stream.
fn messages(payload: &[u8]) -> Vec<LinkControl> {
    use circuit_frame::{Decode, Decoded};
    let mut rest = payload;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let Decoded::Complete { message, consumed } = LinkControl::decode(rest).unwrap() else {
            panic!("a cut message");
        };
        out.push(message);
        rest = &rest[consumed..];
    }
    out
}

#[test]
fn the_server_offers_right_after_its_first_data_frame_and_lifts_limits_on_a_v0_answer() {
    let mut server = Core::new(Role::Server, Config::default());
    let (id, _ends) = attach(&mut server, b"first");
    assert_eq!(id, 1);
    let frames = drain_core(&mut server);
    assert_eq!(frames[0], Owned::Data(1, b"first".to_vec()));
    let Owned::Data(LINK_CONTROL_ID, hello) = &frames[1] else {
        panic!("no HELLO after the first frame: {frames:?}");
    };
    let hello = messages(hello);
    assert_eq!(hello[0], LinkControl::hello());
    assert!(matches!(hello[1], LinkControl::Ping(_)));
    assert_eq!(frames.len(), 2);

    // A stream opened now is held to the initial 64 KiB until the answer.
    let big = vec![7u8; 200_000];
    let (id, _ends) = attach(&mut server, &big);
    assert_eq!(id, 3);
    let sent: usize = drain_core(&mut server)
        .iter()
        .map(|f| match f {
            Owned::Data(3, p) => p.len(),
            other => panic!("unexpected {other:?}"),
        })
        .sum();
    assert_eq!(sent, 65_536);
    assert!(
        drain_core(&mut server).is_empty(),
        "nothing past the credit"
    );

    // The original's answer: an empty close on 0xFFFF_FFFF.
    feed(&mut server, &[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]).unwrap();
    assert_eq!(server.link_mode(), LinkMode::V0);
    let rest: usize = drain_core(&mut server)
        .iter()
        .map(|f| match f {
            Owned::Data(3, p) => p.len(),
            other => panic!("unexpected {other:?}"),
        })
        .sum();
    assert_eq!(rest, big.len() - 65_536, "the limit is lifted");
}

#[test]
fn a_client_configured_off_answers_hello_with_an_empty_close() {
    let mut client = Core::new(Role::Client, credit(CreditMode::Off));
    feed(&mut client, &data(1, b"x")).unwrap();
    feed(
        &mut client,
        &control(&[LinkControl::hello(), LinkControl::Ping(5)]),
    )
    .unwrap();
    let mut out = Vec::new();
    client.transmit(&mut out, usize::MAX);
    assert_eq!(out, [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
    assert_eq!(client.link_mode(), LinkMode::V0);
}

#[test]
fn a_credit_client_answers_with_hello_and_pong_as_its_next_frame() {
    let mut client = Core::new(Role::Client, Config::default());
    feed(&mut client, &data(1, b"x")).unwrap();
    feed(
        &mut client,
        &control(&[LinkControl::hello(), LinkControl::Ping(5)]),
    )
    .unwrap();
    // Data of a stream of ours queued meanwhile goes after the answer.
    let (_, _ends) = attach(&mut client, b"after");
    let frames = drain_core(&mut client);
    let Owned::Data(LINK_CONTROL_ID, answer) = &frames[0] else {
        panic!("the answer is not first: {frames:?}");
    };
    let answer = messages(answer);
    assert_eq!(answer[0], LinkControl::hello());
    assert_eq!(answer[1], LinkControl::Pong(5));
    assert_eq!(frames[1], Owned::Data(0, b"after".to_vec()));
    assert_eq!(client.link_mode(), LinkMode::Credit);
}

/// A client that has seen the server's HELLO, with a stream 3 the server
/// opened under credit.
fn credit_client() -> Core {
    let mut client = Core::new(Role::Client, Config::default());
    feed(&mut client, &data(1, b"x")).unwrap();
    feed(&mut client, &control(&[LinkControl::hello()])).unwrap();
    drain_core(&mut client);
    client
}

#[test]
fn data_beyond_the_granted_credit_ends_the_link() {
    let mut client = credit_client();
    feed(&mut client, &data(3, &vec![0; 65_535])).unwrap();
    feed(&mut client, &data(3, &[0])).unwrap();
    let err = feed(&mut client, &data(3, &[0])).unwrap_err();
    assert!(
        matches!(
            err,
            MuxError::FlowControl {
                stream_id: 3,
                received: 65_537,
                granted: 65_536,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_stream_opened_before_hello_keeps_v0_rules() {
    let mut client = credit_client();
    // Stream 1 carried the server's first frame, before its HELLO.
    feed(&mut client, &data(1, &vec![0; 65_535])).unwrap();
    feed(&mut client, &data(1, &vec![0; 65_535])).unwrap();
}

#[test]
fn a_grant_past_two_to_the_31_is_an_error_and_one_for_an_unknown_stream_is_ignored() {
    let mut client = credit_client();
    let (id, _ends) = attach(&mut client, b"hi");
    assert_eq!(id, 0);
    assert_eq!(drain_core(&mut client), [Owned::Data(0, b"hi".to_vec())]);
    feed(
        &mut client,
        &control(&[LinkControl::Credit {
            stream_id: 1234,
            bytes: u32::MAX,
        }]),
    )
    .unwrap();
    feed(
        &mut client,
        &control(&[LinkControl::Credit {
            stream_id: 0,
            bytes: (1 << 31) - 65_536 + 2,
        }]),
    )
    .unwrap();
    let err = feed(
        &mut client,
        &control(&[LinkControl::Credit {
            stream_id: 0,
            bytes: 1,
        }]),
    )
    .unwrap_err();
    assert!(matches!(err, MuxError::Control { .. }), "{err}");
}

#[test]
fn an_unknown_control_type_or_a_second_hello_ends_the_link() {
    let mut client = credit_client();
    let err = feed(&mut client, &data(LINK_CONTROL_ID, &[9, 0, 0])).unwrap_err();
    assert!(matches!(err, MuxError::Control { .. }), "{err}");
    let mut client = credit_client();
    let err = feed(&mut client, &control(&[LinkControl::hello()])).unwrap_err();
    assert!(matches!(err, MuxError::Control { .. }), "{err}");
}

#[test]
fn a_hello_from_the_client_before_the_servers_ends_the_link() {
    let mut server = Core::new(Role::Server, Config::default());
    let err = feed(&mut server, &control(&[LinkControl::hello()])).unwrap_err();
    assert!(matches!(err, MuxError::Control { .. }), "{err}");
}

#[test]
fn link_control_on_a_link_that_turned_out_v0_ends_it() {
    let mut server = Core::new(Role::Server, Config::default());
    let (_, _ends) = attach(&mut server, b"first");
    drain_core(&mut server);
    feed(&mut server, &close(LINK_CONTROL_ID, "")).unwrap();
    let err = feed(&mut server, &control(&[LinkControl::hello()])).unwrap_err();
    assert!(matches!(err, MuxError::ModeMismatch { .. }), "{err}");
}

#[test]
fn required_ends_a_link_to_a_v0_peer_in_either_role() {
    // A server that requires credit and hears the v0 answer.
    let mut server = Core::new(Role::Server, credit(CreditMode::Required));
    let (_, _ends) = attach(&mut server, b"first");
    drain_core(&mut server);
    let err = feed(&mut server, &close(LINK_CONTROL_ID, "")).unwrap_err();
    assert!(matches!(err, MuxError::CreditRequired { .. }), "{err}");
    // A client that requires it and sees a first frame with no HELLO after.
    let mut client = Core::new(Role::Client, credit(CreditMode::Required));
    feed(&mut client, &data(1, b"x")).unwrap();
    let err = feed(&mut client, &data(1, b"y")).unwrap_err();
    assert!(matches!(err, MuxError::CreditRequired { .. }), "{err}");
}

/// The server speaks first (its HELLO follows its first frame) and the
/// link settles in credit mode; the stream it spoke on, to keep open.
async fn settle_in_credit_mode(p: &common::Pair) -> circuit_mux::MuxStream {
    let mut first = p.b.open().unwrap();
    first.write_all(b"x").await.unwrap();
    assert_eq!(p.a.mode_settled().await, LinkMode::Credit);
    first
}

/// Opens a stream on `mux`, writes `bytes` of pattern `seed` and closes.
async fn send(mux: &circuit_mux::Mux, seed: u64, bytes: usize) {
    let mut stream = mux.open().unwrap();
    let mut buf = vec![0; 64 << 10];
    let mut off = 0;
    while off < bytes {
        let n = (bytes - off).min(buf.len());
        pattern(seed, off as u64, &mut buf[..n]);
        stream.write_all(&buf[..n]).await.unwrap();
        off += n;
    }
    stream.close().await.unwrap();
}

#[test]
fn a_stuck_reader_holds_only_its_window_while_another_stream_moves_64_mib() {
    let pool = pool();
    let p = pair(&pool, Config::default(), Config::default());
    futures::executor::block_on(async {
        let mut incoming = p.a_incoming;
        // The server's first frame, then its HELLO.
        let mut first = p.b.open().unwrap();
        first.write_all(b"x").await.unwrap();
        // A stream whose reader never reads, pushing 4 MiB...
        let mut stuck = p.b.open().unwrap();
        let stuck_id = stuck.id();
        let stuck_writer = pool
            .spawn_with_handle(async move {
                let _ = stuck.write_all(&vec![1; 4 * MIB]).await;
                stuck
            })
            .unwrap();
        // ...and one that moves 64 MiB meanwhile.
        let b = p.b.clone();
        pool.spawn(async move { send(&b, 9, 64 * MIB).await })
            .unwrap();

        let mut s0 = incoming.next().await.unwrap().into_stream();
        let mut byte = [0];
        s0.read_exact(&mut byte).await.unwrap();
        // The two streams arrive in the order of their first frames.
        let one = incoming.next().await.unwrap().into_stream();
        let two = incoming.next().await.unwrap().into_stream();
        let (held, moving) = match one.id() == stuck_id {
            true => (one, two),
            false => (two, one),
        };
        let (moving, _w) = moving.into_split();
        let (bytes, epitaph) = drain(&moving).await;
        assert_eq!(epitaph, None);
        assert_eq!(bytes.len(), 64 * MIB);
        let mut expect = vec![0; bytes.len()];
        pattern(9, 0, &mut expect);
        assert!(bytes == expect, "the moving stream's bytes are intact");

        // The stuck stream gets its initial window (waited for without
        // reading) and no more: no grant while nothing is read.
        let (held_reader, _held_writer) = held.into_split();
        held_reader.read(65_536, |_| ((), 0)).await.unwrap();
        assert_eq!(held_reader.buffered(), 65_536);
        assert_eq!(p.a.counters().mode, LinkMode::Credit);
        assert_eq!(p.b.counters().mode, LinkMode::Credit);
        assert!(p.a.counters().bytes_granted >= 63 * MIB as u64);
        // Reading it now lets its writer finish.
        let mut rest = vec![0; 4 * MIB];
        let mut held_reader = held_reader;
        AsyncReadExt::read_exact(&mut held_reader, &mut rest)
            .await
            .unwrap();
        assert!(rest.iter().all(|&b| b == 1));
        drop(stuck_writer.await);
    });
}

#[test]
fn a_v0_answer_in_either_role_keeps_the_link_working_in_v0_mode() {
    for (client, server) in [
        (CreditMode::Off, CreditMode::Auto),
        (CreditMode::Auto, CreditMode::Off),
    ] {
        let pool = pool();
        let p = pair(&pool, credit(client), credit(server));
        futures::executor::block_on(async {
            let mut incoming = p.a_incoming;
            let mut first = p.b.open().unwrap();
            first.write_all(b"x").await.unwrap();
            // Past the 64 KiB a tentative credit would allow.
            let b = p.b.clone();
            pool.spawn(async move { send(&b, 3, 4 * MIB).await })
                .unwrap();
            let _s0 = incoming.next().await.unwrap();
            let (reader, _w) = incoming.next().await.unwrap().into_stream().into_split();
            let (bytes, epitaph) = drain(&reader).await;
            assert_eq!((bytes.len(), epitaph), (4 * MIB, None));
            assert_eq!(p.a.counters().mode, LinkMode::V0);
            assert_eq!(p.b.counters().mode, LinkMode::V0);
        });
    }
}

#[test]
fn mode_settled_says_credit_after_the_hellos_and_v0_when_either_end_is_off() {
    let pool = pool();
    for (client, server, want) in [
        (CreditMode::Auto, CreditMode::Auto, LinkMode::Credit),
        (CreditMode::Required, CreditMode::Auto, LinkMode::Credit),
        (CreditMode::Off, CreditMode::Auto, LinkMode::V0),
        (CreditMode::Auto, CreditMode::Off, LinkMode::V0),
    ] {
        let p = pair(&pool, credit(client), credit(server));
        futures::executor::block_on(async {
            let mut first = p.b.open().unwrap();
            first.write_all(b"x").await.unwrap();
            // The server's HELLO follows its first frame; the client's
            // answer (or the absence of a HELLO) decides.
            let mut incoming = p.a_incoming;
            let mut s0 = incoming.next().await.unwrap().into_stream();
            s0.read_exact(&mut [0]).await.unwrap();
            first.write_all(b"y").await.unwrap();
            assert_eq!(p.a.mode_settled().await, want, "{client:?} / {server:?}");
            assert_eq!(p.b.mode_settled().await, want, "{client:?} / {server:?}");
            assert_eq!(p.a.counters().mode, want);
        });
    }
}

#[test]
fn a_thousand_streams_whose_echo_is_never_read_hold_one_window_each() {
    const STREAMS: usize = 1000;
    const EACH: usize = 128 << 10;
    let pool = pool();
    let p = pair(&pool, Config::default(), Config::default());
    futures::executor::block_on(async {
        // The server speaks first, so the link settles in credit mode.
        let _first = settle_in_credit_mode(&p).await;
        // The server echoes every stream.
        let mut b_incoming = p.b_incoming;
        let spawner = pool.clone();
        pool.spawn(async move {
            while let Some(stream) = b_incoming.next().await {
                let (reader, mut writer) = stream.into_stream().into_split();
                spawner
                    .spawn(async move {
                        let _ = futures::io::copy(reader, &mut writer).await;
                    })
                    .unwrap();
            }
        })
        .unwrap();
        // A thousand streams each send 128 KiB and never read the echo.
        let mut readers = Vec::new();
        for _ in 0..STREAMS {
            let (reader, writer) = p.a.open().unwrap().into_split();
            pool.spawn(async move {
                writer.write_all(&[3; EACH]).await.unwrap();
                // Keep the stream open: the echo keeps coming.
                std::future::pending::<()>().await;
            })
            .unwrap();
            readers.push(reader);
        }
        // Each echo arrives up to its window (waited for, not read).
        for reader in &readers {
            reader.read(65_536, |_| ((), 0)).await.unwrap();
        }
        let held: usize = readers.iter().map(|r| r.buffered()).sum();
        assert_eq!(held, STREAMS * 65_536, "one 64 KiB window each");
        // The documented bound: max(link_receive_limit, streams x 64 KiB).
        let config = Config::default();
        assert!(held <= config.get_link_receive_limit().max(STREAMS * 65_536));
        assert_eq!(
            p.a.counters().bytes_granted,
            0,
            "nothing read, nothing granted"
        );

        // The link still moves another stream's bytes both ways.
        let mut other = p.a.open().unwrap();
        let payload = vec![5u8; 4 * MIB];
        let sent = payload.clone();
        let (mut r, mut w) = AsyncReadExt::split(&mut other);
        let write = async move {
            w.write_all(&sent).await.unwrap();
        };
        let read = async move {
            let mut back = vec![0; 4 * MIB];
            r.read_exact(&mut back).await.unwrap();
            back
        };
        let ((), back) = futures::join!(write, read);
        assert!(back == payload);
        assert_eq!(readers.iter().map(|r| r.buffered()).sum::<usize>(), held);
    });
}

#[test]
fn a_peer_that_stops_answering_pings_ends_the_link_by_keep_alive() {
    use futures::FutureExt;
    let ticks = Ticks::default();
    let sleeper: std::sync::Arc<dyn circuit_mux::Sleeper> = std::sync::Arc::new(ticks.clone());
    let (a_io, b_io) = circuit_stream::duplex_pair(1 << 20);
    let (a, mut a_incoming, a_driver) =
        circuit_mux::Mux::new(a_io, Role::Client, Config::default());
    let config = Config::default().keep_alive(
        std::time::Duration::from_secs(1),
        std::time::Duration::ZERO,
        sleeper,
    );
    let (b, _b_incoming, b_driver) = circuit_mux::Mux::new(b_io, Role::Server, config);
    let pool = pool();
    let (b_run, b_done) = b_driver.remote_handle();
    pool.spawn(b_run).unwrap();
    futures::executor::block_on(async {
        let mut a_driver = Box::pin(a_driver);
        // The client runs until the link settles in credit mode...
        let settle = async {
            let mut first = b.open().unwrap();
            first.write_all(b"x").await.unwrap();
            let _s0 = a_incoming.next().await.unwrap();
            assert_eq!(b.mode_settled().await, LinkMode::Credit);
            assert_eq!(a.mode_settled().await, LinkMode::Credit);
            first
        };
        let _first = futures::select! {
            first = Box::pin(settle).fuse() => first,
            _ = a_driver.as_mut().fuse() => panic!("the client's link ended"),
        };
        // ...then goes silent (its driver is no longer polled) while its
        // socket stays open. The first tick sends a PING, the second finds
        // it unanswered.
        ticks.tick();
        ticks.tick();
        let err = b_done.await.unwrap_err();
        assert!(matches!(err, MuxError::KeepAlive { .. }), "{err}");
        drop(a_driver);
    });
}

#[test]
fn a_dropped_reader_under_credit_discards_and_never_leaves_its_writer_stuck() {
    let pool = pool();
    let p = pair(&pool, Config::default(), Config::default());
    futures::executor::block_on(async {
        let _first = settle_in_credit_mode(&p).await;
        let mut incoming = p.b_incoming;
        let (_reader, writer) = p.a.open().unwrap().into_split();
        writer.write_all(b"hi").await.unwrap();
        // The server drops its reader of that stream at once...
        let (dropped, _keep_writer) = incoming.next().await.unwrap().into_stream().into_split();
        drop(dropped);
        // ...and the client can still write far past the 64 KiB of credit
        // and the 256 KiB of its send pipe: the bytes are discarded and
        // credited back, as section 1 discards them on a v0 link.
        writer.write_all(&vec![9; 8 * MIB]).await.unwrap();
        let mut other = p.a.open().unwrap();
        other.write_all(b"after").await.unwrap();
        let mut next = incoming.next().await.unwrap().into_stream();
        let mut got = [0; 5];
        next.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"after");
    });
}

#[test]
fn a_stream_out_of_credit_sends_nothing_until_a_grant_never_an_empty_frame() {
    let mut client = credit_client();
    let (source, writer) = circuit_stream::stream_unbounded();
    let (_reader, sink) = circuit_stream::stream();
    writer.try_write(&vec![1; 65_536]).unwrap();
    let id = client.attach(source, sink).unwrap();
    let sent: usize = drain_core(&mut client)
        .iter()
        .map(|f| match f {
            Owned::Data(i, p) if *i == id => p.len(),
            other => panic!("unexpected {other:?}"),
        })
        .sum();
    assert_eq!(sent, 65_536);
    // More bytes, no credit: not a frame, not a 0-length frame (a close).
    writer.try_write(&[2; 10]).unwrap();
    assert_eq!(drain_core(&mut client), []);
    assert_eq!(client.counters().streams_waiting_for_credit, 1);
    feed(
        &mut client,
        &control(&[LinkControl::Credit {
            stream_id: id,
            bytes: 4,
        }]),
    )
    .unwrap();
    assert_eq!(drain_core(&mut client), [Owned::Data(id, vec![2; 4])]);
    assert_eq!(drain_core(&mut client), []);
    // The rest and the close: the close frame spends no credit.
    writer.close("bye");
    feed(
        &mut client,
        &control(&[LinkControl::Credit {
            stream_id: id,
            bytes: 6,
        }]),
    )
    .unwrap();
    assert_eq!(
        drain_core(&mut client),
        [Owned::Data(id, vec![2; 6]), Owned::Close(id, "bye".into())]
    );
}

/// The grants in the frames `core` sends now: (stream, bytes).
fn grants(core: &mut Core) -> Vec<(u32, u32)> {
    drain_core(core)
        .iter()
        .flat_map(|f| match f {
            Owned::Data(LINK_CONTROL_ID, payload) => messages(payload),
            _ => Vec::new(),
        })
        .filter_map(|m| match m {
            LinkControl::Credit { stream_id, bytes } => Some((stream_id, bytes)),
            _ => None,
        })
        .collect()
}

/// Reads everything `stream` holds now.
fn read_all_now(stream: &mut circuit_mux::MuxStream) -> usize {
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    let mut buf = vec![0; 256 << 10];
    let mut total = 0;
    while let std::task::Poll::Ready(Ok(n)) =
        futures::AsyncRead::poll_read(std::pin::Pin::new(&mut *stream), &mut cx, &mut buf)
    {
        if n == 0 {
            break;
        }
        total += n;
    }
    total
}

#[test]
fn a_window_grows_when_the_peer_used_all_its_credit_however_slow_the_reader() {
    let start = std::time::Instant::now();
    let slow = std::time::Duration::from_secs(1);
    let mut client = credit_client();
    // Stream 1 carried the server's first frame.
    assert_eq!(client.accept().unwrap().id(), 1);
    client.set_now(start);
    // Stream 3 sends all of its 64 KiB; the reader takes it a second later
    // (far slower than any round trip): the peer waited on this grant, so
    // the window doubles and the grant tops it up to 128 KiB.
    feed(&mut client, &data(3, &vec![1; 65_535])).unwrap();
    feed(&mut client, &data(3, &[1])).unwrap();
    let mut three = client.accept().unwrap();
    assert_eq!(read_all_now(&mut three), 65_536);
    client.set_now(start + slow);
    assert_eq!(grants(&mut client), [(3, 128 << 10)]);
    // Stream 5 sends 40 KiB of its 64 and its reader is as slow: the window
    // did not limit it, and the grant only gives back what was read.
    feed(&mut client, &data(5, &vec![1; 40 << 10])).unwrap();
    let mut five = client.accept().unwrap();
    assert_eq!(read_all_now(&mut five), 40 << 10);
    client.set_now(start + 2 * slow);
    assert_eq!(grants(&mut client), [(5, 40 << 10)]);
}

/// Grants after 255 streams under credit (256 on the link with stream 1)
/// each sent all of their 64 KiB and their readers took it all and waited
/// for more.
fn grants_to_256_busy_streams(config: Config) -> Vec<(u32, u32)> {
    let mut client = Core::new(Role::Client, config);
    feed(&mut client, &data(1, b"x")).unwrap();
    feed(&mut client, &control(&[LinkControl::hello()])).unwrap();
    drain_core(&mut client);
    assert_eq!(client.accept().unwrap().id(), 1);
    let mut streams = Vec::new();
    for id in (3..=511).step_by(2) {
        feed(&mut client, &data(id, &vec![1; 65_535])).unwrap();
        feed(&mut client, &data(id, &[1])).unwrap();
        streams.push(client.accept().unwrap());
    }
    for stream in &mut streams {
        assert_eq!(read_all_now(stream), 65_536);
    }
    let mut given = grants(&mut client);
    given.sort_unstable();
    given
}

#[test]
fn the_default_budget_lets_256_busy_streams_double_their_windows() {
    let doubled: Vec<(u32, u32)> = (3..=511).step_by(2).map(|id| (id, 128 << 10)).collect();
    assert_eq!(grants_to_256_busy_streams(Config::default()), doubled);
    // Stream 1 went before the HELLOs and is not under credit, so 255
    // windows of 64 KiB leave room in 16 MiB for one to double; the other
    // grants only give back what was read.
    let small = grants_to_256_busy_streams(Config::default().link_receive_limit(16 << 20));
    assert_eq!(small.len(), 255);
    assert_eq!(small.iter().filter(|g| g.1 == 128 << 10).count(), 1);
    assert_eq!(small.iter().filter(|g| g.1 == 64 << 10).count(), 254);
}

/// Reads exactly `n` bytes that `stream` holds now, without waiting.
fn read_now(stream: &mut circuit_mux::MuxStream, n: usize) {
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    let mut buf = vec![0; n];
    let mut got = 0;
    while got < n {
        match futures::AsyncRead::poll_read(
            std::pin::Pin::new(&mut *stream),
            &mut cx,
            &mut buf[got..],
        ) {
            std::task::Poll::Ready(Ok(read)) if read > 0 => got += read,
            other => panic!("{n} bytes were not there: {other:?}"),
        }
    }
}

#[test]
fn a_window_does_not_grow_while_its_reader_never_waits_for_bytes() {
    let start = std::time::Instant::now();
    let mut client = credit_client();
    assert_eq!(client.accept().unwrap().id(), 1);
    client.set_now(start);
    // The peer sends all of its 64 KiB and waits; the reader takes 20 KiB
    // and still has bytes to read: it is slower than the bytes come, so
    // the grant gives back what it read and the window stays 64 KiB.
    feed(&mut client, &data(3, &vec![1; 65_535])).unwrap();
    feed(&mut client, &data(3, &[1])).unwrap();
    let mut three = client.accept().unwrap();
    read_now(&mut three, 20 << 10);
    assert_eq!(grants(&mut client), [(3, 20 << 10)]);
    // The peer sends the 20 KiB it got and waits again; the reader reads
    // everything and waits for more: now the window limits the stream,
    // and it doubles (the grant tops the peer's credit up to 128 KiB).
    feed(&mut client, &data(3, &vec![1; 20 << 10])).unwrap();
    assert_eq!(read_all_now(&mut three), (64 + 20 - 20) << 10);
    assert_eq!(grants(&mut client), [(3, 128 << 10)]);
}

#[test]
fn after_large_data_frames_a_read_asks_for_the_rest_of_a_control_frame_and_the_next_header() {
    let mut client = credit_client();
    let grant = control(&[LinkControl::Credit {
        stream_id: 0,
        bytes: 1,
    }]);
    // Only small data frames so far: no limit on the next read.
    feed(&mut client, &data(3, &[1; 100])).unwrap();
    assert_eq!(client.read_hint(&grant[..8], 8 << 10), None);
    feed(&mut client, &data(3, &vec![1; 60_000])).unwrap();
    // A large one: the rest of a cut link-control frame and the header
    // after it, so that the next data frame's payload can go straight to
    // its stream.
    assert_eq!(
        client.read_hint(&grant[..8], 8 << 10),
        Some(grant.len() - 8 + 6)
    );
    // The rest of a cut header.
    assert_eq!(client.read_hint(&grant[..4], 8 << 10), Some(2));
    // A close frame's length is not in its header; a data frame's header
    // is never left over.
    assert_eq!(
        client.read_hint(&close(LINK_CONTROL_ID, "")[..6], 8 << 10),
        None
    );
}
