//! The futures-io faces of a pipe: AsyncRead, AsyncBufRead, AsyncWrite and
//! the duplex.

mod common;

use std::io::ErrorKind;
use std::pin::{pin, Pin};
use std::task::{Context, Poll};

use circuit_stream::{
    duplex_pair, stream, stream_unbounded, stream_with_capacity, Duplex, StreamError,
};
use common::{counting_waker, poll_once};
use futures::executor::block_on;
use futures::io::{copy, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn copy_moves_everything_from_one_pipe_into_another() {
    let data = pattern(1 << 20);
    let (reader_a, writer_a) = stream_with_capacity(4096);
    let (mut reader_b, mut writer_b) = stream_with_capacity(1000);
    let sent = data.clone();
    let source = std::thread::spawn(move || block_on(writer_a.write_all(&sent)));
    let relay = std::thread::spawn(move || {
        block_on(async {
            let n = copy(reader_a, &mut writer_b).await?;
            AsyncWriteExt::close(&mut writer_b).await?;
            Ok::<u64, std::io::Error>(n)
        })
    });
    let mut got = Vec::new();
    block_on(reader_b.read_to_end(&mut got)).unwrap();
    assert_eq!(source.join().unwrap(), Ok(()));
    assert_eq!(relay.join().unwrap().unwrap(), data.len() as u64);
    assert!(got == data, "the bytes changed on the way");
}

#[test]
fn async_write_close_is_the_end_of_the_stream_without_an_epitaph() {
    let (mut reader, mut writer) = stream();
    block_on(async {
        // The inherent methods of the same names shadow the extension traits.
        AsyncWriteExt::write_all(&mut writer, b"bytes")
            .await
            .unwrap();
        AsyncWriteExt::close(&mut writer).await.unwrap();
    });
    assert_eq!(reader.closed_reason(), None);
    let mut got = Vec::new();
    assert_eq!(block_on(reader.read_to_end(&mut got)).unwrap(), 5);
    assert_eq!(got, b"bytes");
}

#[test]
fn an_epitaph_reads_as_a_connection_aborted_error_after_the_data() {
    let (mut reader, writer) = stream();
    writer.try_write(b"data").unwrap();
    writer.close("peer failed");
    let mut got = Vec::new();
    let err = block_on(reader.read_to_end(&mut got)).unwrap_err();
    assert_eq!(got, b"data");
    assert_eq!(err.kind(), ErrorKind::ConnectionAborted);
    let inner = err.into_inner().unwrap().downcast::<StreamError>().unwrap();
    assert_eq!(*inner, StreamError::Closed(Some("peer failed".into())));
}

#[test]
fn a_clean_close_with_an_epitaph_reads_as_end_of_file() {
    let (mut reader, writer) = stream();
    writer.try_write(b"data").unwrap();
    writer.close_clean_with("r reported: b reported no epitaph");
    let mut got = Vec::new();
    assert_eq!(block_on(reader.read_to_end(&mut got)).unwrap(), 4);
    assert_eq!(got, b"data");
    assert_eq!(
        reader.closed_reason().as_deref(),
        Some("r reported: b reported no epitaph")
    );

    // The same through AsyncBufRead, and through copy into another pipe.
    let (reader, writer) = stream();
    writer.try_write(b"line\nlast").unwrap();
    writer.close_clean_with("b reported no epitaph");
    let mut lines = Vec::new();
    let mut reader = futures::io::BufReader::new(reader);
    let mut line = String::new();
    while block_on(reader.read_line(&mut line)).unwrap() > 0 {
        lines.push(std::mem::take(&mut line));
    }
    assert_eq!(lines, ["line\n", "last"]);

    let (reader, writer) = stream();
    writer.try_write(b"copied").unwrap();
    writer.close_clean_with("b reported no epitaph");
    let (mut out_reader, mut out_writer) = stream();
    assert_eq!(block_on(copy(reader, &mut out_writer)).unwrap(), 6);
    drop(out_writer);
    let mut got = Vec::new();
    block_on(out_reader.read_to_end(&mut got)).unwrap();
    assert_eq!(got, b"copied");
}

#[test]
fn writing_after_the_reader_closed_is_a_broken_pipe() {
    let (reader, mut writer) = stream();
    reader.close("enough");
    let err = block_on(AsyncWriteExt::write(&mut writer, b"x")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe);
    let inner = err.into_inner().unwrap().downcast::<StreamError>().unwrap();
    assert_eq!(*inner, StreamError::Closed(Some("enough".into())));
}

#[test]
fn async_read_waits_for_data_and_is_woken_by_a_write() {
    let (mut reader, writer) = stream();
    let (wakes, waker) = counting_waker();
    let mut buf = [0; 8];
    let mut read = pin!(AsyncReadExt::read(&mut reader, &mut buf));
    assert!(poll_once(read.as_mut(), &waker).is_pending());
    writer.try_write(b"hi").unwrap();
    assert_eq!(wakes.get(), 1);
    match poll_once(read.as_mut(), &waker) {
        std::task::Poll::Ready(Ok(2)) => {}
        other => panic!("expected 2 bytes, got {other:?}"),
    }
    assert_eq!(&buf[..2], b"hi");
}

#[test]
fn buffered_reading_finds_lines_across_writes() {
    let (reader, writer) = stream_with_capacity(16);
    let sender = std::thread::spawn(move || {
        block_on(async {
            for line in ["first line\n", "a second, longer line\n", "third"] {
                writer.write_all(line.as_bytes()).await?;
            }
            Ok::<(), StreamError>(())
        })
    });
    let lines: Vec<String> = block_on(futures::StreamExt::collect::<Vec<_>>(
        futures::io::BufReader::new(reader).lines(),
    ))
    .into_iter()
    .map(Result::unwrap)
    .collect();
    assert_eq!(sender.join().unwrap(), Ok(()));
    assert_eq!(lines, ["first line", "a second, longer line", "third"]);

    // And on the reader's own AsyncBufRead, without a BufReader.
    let (mut reader, writer) = stream();
    writer.try_write(b"one\ntwo\n").unwrap();
    drop(writer);
    let mut line = String::new();
    block_on(reader.read_line(&mut line)).unwrap();
    assert_eq!(line, "one\n");
    line.clear();
    block_on(reader.read_line(&mut line)).unwrap();
    assert_eq!(line, "two\n");
    assert_eq!(block_on(reader.read_line(&mut line)).unwrap(), 0);
}

#[test]
fn bytes_filled_but_not_consumed_come_first_for_a_read_through_the_reader() {
    let (mut reader, writer) = stream();
    writer.try_write(b"abcdef").unwrap();
    let seen = block_on(reader.fill_buf()).unwrap().to_vec();
    assert_eq!(seen, b"abcdef");
    std::pin::Pin::new(&mut reader).consume_unpin(2);
    writer.try_write(b"gh").unwrap();
    assert_eq!(reader.buffered(), 6);
    let got = block_on(reader.read(6, |buf| (buf.to_vec(), buf.len()))).unwrap();
    assert_eq!(got, b"cdefgh");
}

#[test]
fn large_writes_copied_outside_the_lock_arrive_whole_in_order_and_take_their_room() {
    // Writes of 16 KiB and more are copied with the pipe's lock released
    // and put in whole; smaller ones under the lock. Mixed, with vectored
    // writes, through a pipe smaller than the total.
    let data = pattern(3 << 20);
    let (mut reader, mut writer) = stream_with_capacity(256 << 10);
    let sent = data.clone();
    let source = std::thread::spawn(move || {
        block_on(async {
            let sizes = [100 << 10, 1000, 16 << 10, 70 << 10, 5, 64 << 10, 200 << 10];
            let mut at = 0;
            let mut turn = 0;
            while at < sent.len() {
                let len = sizes[turn % sizes.len()].min(sent.len() - at);
                let piece = &sent[at..at + len];
                if turn % 3 == 0 {
                    let (a, b) = piece.split_at(len / 3);
                    let mut bufs = [std::io::IoSlice::new(a), std::io::IoSlice::new(b)];
                    let mut bufs = &mut bufs[..];
                    let mut left = len;
                    while left > 0 {
                        let n = writer.write_vectored(bufs).await.unwrap();
                        assert!(n > 0);
                        std::io::IoSlice::advance_slices(&mut bufs, n);
                        left -= n;
                    }
                } else {
                    AsyncWriteExt::write_all(&mut writer, piece).await.unwrap();
                }
                at += len;
                turn += 1;
            }
            AsyncWriteExt::close(&mut writer).await.unwrap();
        })
    });
    let mut got = Vec::new();
    block_on(reader.read_to_end(&mut got)).unwrap();
    source.join().unwrap();
    assert!(got == data, "the bytes changed on the way");

    // A large write takes its room at once: what is left is free, no more.
    let (reader, mut writer) = stream_with_capacity(256 << 10);
    block_on(AsyncWriteExt::write_all(&mut writer, &data[..100 << 10])).unwrap();
    assert_eq!(writer.buffered(), 100 << 10);
    let mut big = pin!(writer.write_all(&data[..200 << 10]));
    let (_, waker) = counting_waker();
    assert!(
        poll_once(big.as_mut(), &waker).is_pending(),
        "the rest waits for room"
    );
    assert_eq!(reader.buffered(), 256 << 10, "it took what fits, whole");
}

#[test]
fn a_large_read_takes_the_first_block_out_and_the_rest_stays_in_order() {
    let data = pattern(150 << 10);
    let (mut reader, mut writer) = stream_with_capacity(256 << 10);
    block_on(AsyncWriteExt::write_all(&mut writer, &data)).unwrap();
    // 20 KiB out of the first block, copied with the lock released: the
    // rest of that block stays the reader's, in front of everything.
    let mut buf = vec![0; 20 << 10];
    assert_eq!(
        block_on(AsyncReadExt::read(&mut reader, &mut buf)).unwrap(),
        20 << 10
    );
    assert!(buf[..] == data[..20 << 10]);
    assert_eq!(
        writer.buffered(),
        130 << 10,
        "the bytes read gave their room back"
    );
    // A read through the reader's own methods sees the rest in order.
    let next = block_on(reader.read(1000, |b| (b[..1000].to_vec(), 1000))).unwrap();
    assert!(next[..] == data[20 << 10..(20 << 10) + 1000]);
    let mut rest = Vec::new();
    writer.close_without_reason();
    block_on(reader.read_to_end(&mut rest)).unwrap();
    assert!(rest[..] == data[(20 << 10) + 1000..]);
}

#[test]
fn a_write_of_64_kib_is_read_whole_by_a_read_of_64_kib() {
    // 64 KiB is one byte more than a block: the byte goes into the same
    // block rather than one of its own, which would cost a read of its own.
    // A last piece over 1 KiB still gets a block of its own.
    for (write, reads) in [
        (64 << 10, vec![64 << 10]),
        (128 << 10, vec![65535, 65537]),
        (70 << 10, vec![65535, (70 << 10) - 65535]),
    ] {
        let data = pattern(write);
        let (mut reader, mut writer) = stream_with_capacity(256 << 10);
        block_on(AsyncWriteExt::write_all(&mut writer, &data)).unwrap();
        writer.close_without_reason();
        let mut buf = vec![0; 128 << 10];
        let mut got = Vec::new();
        let mut sizes = Vec::new();
        loop {
            let n = block_on(AsyncReadExt::read(&mut reader, &mut buf)).unwrap();
            if n == 0 {
                break;
            }
            sizes.push(n);
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(sizes, reads, "a write of {write} bytes");
        assert!(got == data);
    }
}

#[test]
fn a_small_read_takes_what_fits_across_blocks() {
    // Small writes fill blocks of growing sizes (1 KiB, 2 KiB, ...): a read
    // gets all that fits of them at once, not the first block's bytes only.
    let data = pattern(10_000);
    let (mut reader, mut writer) = stream_with_capacity(256 << 10);
    for piece in data.chunks(1000) {
        block_on(AsyncWriteExt::write_all(&mut writer, piece)).unwrap();
    }
    let mut buf = vec![0; 8 << 10];
    let n = block_on(AsyncReadExt::read(&mut reader, &mut buf)).unwrap();
    assert_eq!(n, 8 << 10, "a full buffer");
    assert!(buf[..] == data[..8 << 10]);
    let n = block_on(AsyncReadExt::read(&mut reader, &mut buf)).unwrap();
    assert_eq!(n, 10_000 - (8 << 10), "the rest");
    assert!(buf[..n] == data[8 << 10..]);
    assert_eq!(writer.buffered(), 0, "the room is back");
}

#[test]
fn a_duplex_pair_carries_bytes_both_ways_and_splits() {
    let (mut a, mut b) = duplex_pair(64);
    block_on(async {
        a.write_all(b"ping").await.unwrap();
        let mut buf = [0; 4];
        b.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        b.write_all(b"pong").await.unwrap();
        a.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"pong");
    });

    let (a_reader, a_writer) = a.into_split();
    a_writer.try_write(b"split").unwrap();
    let mut a = Duplex::from_parts(a_reader, a_writer);
    block_on(async {
        let mut buf = [0; 5];
        b.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"split");
        // Closing one direction leaves the other open.
        b.close().await.unwrap();
        let mut rest = Vec::new();
        a.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        a.write_all(b"still open").await.unwrap();
        let mut buf = [0; 10];
        b.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"still open");
    });
    assert_eq!(a.reader().capacity(), Some(64));
    assert!(!a.writer().is_closed());
}

/// The futures-io writes and reads of a pipe end yield after this many in
/// a row that did not wait (`YIELD_AFTER` in the crate).
const YIELD_AFTER: usize = 128;

#[test]
fn a_writer_that_never_waits_yields_once_every_128_writes() {
    let (reader, mut writer) = stream_unbounded();
    let (wakes, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    let mut write = |byte: u8| Pin::new(&mut writer).poll_write(&mut cx, &[byte]);
    for round in 0..3 {
        for i in 0..YIELD_AFTER {
            assert!(matches!(write(i as u8), Poll::Ready(Ok(1))), "write {i}");
        }
        assert_eq!(wakes.get(), round, "no yield before the budget is spent");
        // The yield writes nothing and wakes the task to be polled again.
        assert!(write(0xff).is_pending());
        assert_eq!(wakes.get(), round + 1);
        assert_eq!(reader.buffered(), (round + 1) * YIELD_AFTER);
    }
}

#[test]
fn a_write_that_waits_for_room_starts_the_count_over() {
    let half = YIELD_AFTER / 2;
    let (reader, mut writer) = stream_with_capacity(half);
    let (wakes, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    let mut write = |byte: u8| Pin::new(&mut writer).poll_write(&mut cx, &[byte]);
    let drain = || reader.try_read_with(0, |buf| ((), buf.len())).unwrap();
    for i in 0..half {
        assert!(matches!(write(i as u8), Poll::Ready(Ok(1))), "write {i}");
    }
    assert!(write(0xff).is_pending(), "the pipe is full");
    assert_eq!(wakes.get(), 0, "a full pipe parks the writer, no yield");
    drain();
    assert_eq!(wakes.get(), 1, "the read woke the writer");
    // A fresh budget: YIELD_AFTER writes before the next yield, though
    // half of them would have spent the old one.
    for i in 0..YIELD_AFTER {
        assert!(matches!(write(i as u8), Poll::Ready(Ok(1))), "write {i}");
        if reader.buffered() == half {
            drain();
        }
    }
    assert_eq!(wakes.get(), 1);
    assert!(write(0xff).is_pending());
    assert_eq!(wakes.get(), 2, "the yield woke the task");
}

#[test]
fn a_reader_that_never_waits_yields_once_every_128_reads() {
    let (mut reader, writer) = stream_unbounded();
    writer.try_write(&pattern(4 * YIELD_AFTER)).unwrap();
    let (wakes, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    let mut byte = [0];
    let mut read = |byte: &mut [u8]| Pin::new(&mut reader).poll_read(&mut cx, byte);
    for i in 0..YIELD_AFTER {
        assert!(matches!(read(&mut byte), Poll::Ready(Ok(1))), "read {i}");
    }
    assert_eq!(wakes.get(), 0);
    assert!(read(&mut byte).is_pending());
    assert_eq!(wakes.get(), 1, "the yield woke the task");
    // The bytes come in order across the yield.
    assert!(matches!(read(&mut byte), Poll::Ready(Ok(1))));
    assert_eq!(byte[0], pattern(YIELD_AFTER + 1)[YIELD_AFTER]);
}

#[test]
fn the_in_place_write_and_read_futures_yield_as_the_io_traits_do() {
    let (reader, writer) = stream_unbounded();
    let (wakes, waker) = counting_waker();
    for i in 0..YIELD_AFTER {
        let write = pin!(writer.write(1, |out| {
            out[0] = i as u8;
            1
        }));
        assert!(matches!(poll_once(write, &waker), Poll::Ready(Ok(1))));
    }
    let mut write = pin!(writer.write(1, |out| {
        out[0] = 0xff;
        1
    }));
    assert!(poll_once(write.as_mut(), &waker).is_pending());
    assert_eq!((wakes.get(), reader.buffered()), (1, YIELD_AFTER));
    assert!(matches!(poll_once(write, &waker), Poll::Ready(Ok(1))));

    let take_one = |buf: &[u8]| (buf[0], 1);
    for i in 0..YIELD_AFTER {
        let read = pin!(reader.read(1, take_one));
        assert!(matches!(poll_once(read, &waker), Poll::Ready(Ok(b)) if b == i as u8));
    }
    // A read that asks for no bytes neither yields nor counts.
    let peek = pin!(reader.read(0, |buf| (buf.len(), 0)));
    assert!(matches!(poll_once(peek, &waker), Poll::Ready(Ok(1))));
    let mut read = pin!(reader.read(1, take_one));
    assert!(poll_once(read.as_mut(), &waker).is_pending());
    assert_eq!(wakes.get(), 2);
    assert!(matches!(poll_once(read, &waker), Poll::Ready(Ok(0xff))));
}

#[test]
fn copy_to_moves_everything_from_one_pipe_into_another_and_stops_at_the_end() {
    let data = pattern(1 << 20);
    let (reader_a, writer_a) = stream_with_capacity(4096);
    let (mut reader_b, mut writer_b) = stream_with_capacity(1000);
    let sent = data.clone();
    let source = std::thread::spawn(move || {
        block_on(writer_a.write_all(&sent))?;
        writer_a.close_without_reason();
        Ok::<_, StreamError>(())
    });
    let relay = std::thread::spawn(move || {
        block_on(async {
            let n = reader_a.copy_to(&mut writer_b).await?;
            AsyncWriteExt::close(&mut writer_b).await?;
            Ok::<_, std::io::Error>(n)
        })
    });
    let mut got = Vec::new();
    block_on(reader_b.read_to_end(&mut got)).unwrap();
    source.join().unwrap().unwrap();
    assert_eq!(relay.join().unwrap().unwrap(), data.len() as u64);
    assert!(got == data, "bytes changed on the way");
}

#[test]
fn copy_to_gives_a_pipe_its_room_back_only_as_the_target_takes_the_bytes() {
    let (source, into_source) = stream_with_capacity(16 << 10);
    let (target_reader, mut target) = stream_with_capacity(4 << 10);
    into_source.try_write(&pattern(16 << 10)).unwrap();
    let (_, waker) = counting_waker();
    let mut copy = pin!(source.copy_to(&mut target));
    // The target takes 4 KiB and is full: the other 12 KiB still hold their
    // room in the source, though they left its queue as a chunk.
    assert!(poll_once(copy.as_mut(), &waker).is_pending());
    assert_eq!(target_reader.buffered(), 4 << 10);
    assert_eq!(into_source.buffered(), 12 << 10);
    assert!(into_source.try_write(&[0; 4097]).is_err());
    into_source.try_write(&[0; 4096]).unwrap();
    // The target's reader takes 1 KiB: a sliver, less than half the
    // target's capacity, so the copy waits for more room.
    block_on(target_reader.read(1024, |_| ((), 1024))).unwrap();
    assert!(poll_once(copy.as_mut(), &waker).is_pending());
    assert_eq!(target_reader.buffered(), 3 << 10);
    assert_eq!(into_source.buffered(), (12 << 10) + 4096);
    // 1 KiB more: 2 KiB move on, and their room comes back to the source.
    block_on(target_reader.read(1024, |_| ((), 1024))).unwrap();
    assert!(poll_once(copy.as_mut(), &waker).is_pending());
    assert_eq!(target_reader.buffered(), 4 << 10);
    assert_eq!(into_source.buffered(), (12 << 10) - 2048 + 4096);
}

#[test]
fn copy_to_fails_on_an_epitaph_after_copying_what_came_before_it() {
    let (source, into_source) = stream();
    let (target_reader, mut target) = stream();
    into_source.try_write(b"partial").unwrap();
    into_source.close("broken");
    let error = block_on(source.copy_to(&mut target)).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ConnectionAborted);
    assert_eq!(target_reader.buffered(), 7);
}

#[test]
fn bytes_a_fill_takes_keep_their_room_until_consumed() {
    let (mut reader, writer) = stream_with_capacity(8);
    writer.try_write(b"abcdefgh").unwrap();
    assert_eq!(block_on(reader.fill_buf()).unwrap(), b"abcdefgh");
    // Taken out of the pipe, not consumed: no room for the writer yet.
    assert!(writer.try_write(b"x").is_err());
    assert_eq!(writer.buffered(), 8);
    reader.consume_unpin(3);
    writer.try_write(b"xyz").unwrap();
    assert!(writer.try_write(b"!").is_err());
    // A read through &self puts the unconsumed bytes back first, in order.
    let all = block_on(reader.read(8, |buf| (buf.to_vec(), buf.len()))).unwrap();
    assert_eq!(all, b"defghxyz");
    assert_eq!(writer.buffered(), 0);
    writer.try_write(b"12345678").unwrap();
}

#[test]
fn bytes_a_fill_took_give_their_room_back_when_read_through_async_read() {
    let (mut reader, writer) = stream_with_capacity(8);
    writer.try_write(b"abcdefgh").unwrap();
    assert_eq!(block_on(reader.fill_buf()).unwrap(), b"abcdefgh");
    let mut got = [0; 5];
    block_on(AsyncReadExt::read_exact(&mut reader, &mut got)).unwrap();
    assert_eq!(&got, b"abcde");
    assert_eq!(
        writer.buffered(),
        3,
        "the five bytes read gave their room back"
    );
    let mut rest = [0; 3];
    block_on(AsyncReadExt::read_exact(&mut reader, &mut rest)).unwrap();
    assert_eq!(&rest, b"fgh");
    assert_eq!(writer.buffered(), 0);
    writer.try_write(b"12345678").unwrap();
}
