//! The rules of a pipe, one test each.

mod common;

use std::pin::pin;
use std::task::Poll;

use circuit_frame::{FrameError, Name};
use circuit_stream::{
    stream, stream_unbounded, stream_with_capacity, Bytes, StreamError, TryWriteError,
    DEFAULT_CAPACITY,
};
use common::{counting_waker, poll_once};
use futures::executor::block_on;

fn take_all(buf: &[u8]) -> (Vec<u8>, usize) {
    (buf.to_vec(), buf.len())
}

#[test]
fn a_read_that_consumes_nothing_is_a_peek() {
    let (reader, writer) = stream();
    writer.try_write(b"abcdef").unwrap();
    let seen = block_on(reader.read(3, |buf| (buf.to_vec(), 0))).unwrap();
    assert_eq!(seen, b"abcdef");
    assert_eq!(reader.buffered(), 6);
    let seen = block_on(reader.read(1, |buf| (buf[..2].to_vec(), 2))).unwrap();
    assert_eq!(seen, b"ab");
    assert_eq!(block_on(reader.read(4, take_all)).unwrap(), b"cdef");
    assert_eq!(writer.buffered(), 0);
}

#[test]
fn a_read_waits_until_min_bytes_are_buffered() {
    let (reader, writer) = stream();
    let (wakes, waker) = counting_waker();
    let mut read = pin!(reader.read(4, take_all));
    assert!(poll_once(read.as_mut(), &waker).is_pending());

    writer.try_write(b"ab").unwrap();
    assert_eq!(wakes.get(), 0, "woken before min bytes arrived");
    assert!(poll_once(read.as_mut(), &waker).is_pending());

    writer.try_write(b"cd").unwrap();
    assert_eq!(wakes.get(), 1);
    assert_eq!(
        poll_once(read.as_mut(), &waker),
        Poll::Ready(Ok(b"abcd".to_vec()))
    );
}

#[test]
fn a_read_whose_min_spans_the_wrap_point_sees_it_contiguous() {
    let (reader, writer) = stream_with_capacity(2048);
    // Fill, drain most, then write again so the data wraps around.
    writer.try_write(&[1; 1024]).unwrap();
    writer.try_write(&[1; 1000]).unwrap();
    assert_eq!(block_on(reader.read(2000, |_| ((), 2000))), Ok(()));
    writer.try_write(&[2; 1000]).unwrap();
    let seen = block_on(reader.read(1024, take_all)).unwrap();
    assert_eq!(seen.len(), 1024);
    assert_eq!(&seen[..24], &[1; 24]);
    assert_eq!(&seen[24..], &[2; 1000]);
}

#[test]
fn a_min_of_zero_never_waits() {
    let (reader, _writer) = stream();
    assert_eq!(reader.try_read_with(0, take_all), Ok(Some(Vec::new())));
}

#[test]
fn try_read_reports_not_enough_bytes_as_none() {
    let (reader, writer) = stream();
    writer.try_write(b"xy").unwrap();
    assert_eq!(reader.try_read_with(3, take_all), Ok(None));
    assert_eq!(reader.try_read_with(2, take_all), Ok(Some(b"xy".to_vec())));
}

#[test]
fn a_write_callback_keeps_only_what_it_filled() {
    let (reader, writer) = stream();
    let filled = block_on(writer.write(10, |out| {
        assert_eq!(out.len(), 10);
        out[..3].copy_from_slice(b"abc");
        3
    }))
    .unwrap();
    assert_eq!(filled, 3);
    assert_eq!(reader.buffered(), 3);
    assert_eq!(reader.try_read_with(1, take_all), Ok(Some(b"abc".to_vec())));
}

#[test]
fn push_front_puts_bytes_before_everything_buffered() {
    let (reader, writer) = stream_with_capacity(4);
    writer.try_write(b"data").unwrap();
    // Past the capacity: push_front is for protocol headers.
    reader.push_front(b"head:");
    assert_eq!(reader.buffered(), 9);
    assert_eq!(
        reader.try_read_with(9, take_all),
        Ok(Some(b"head:data".to_vec()))
    );
}

#[test]
fn a_pushed_back_message_is_read_again_as_a_message() {
    let (reader, writer) = stream();
    let name = Name::new("circuit").unwrap();
    block_on(writer.write_message(&name)).unwrap();
    let read: Name = block_on(reader.read_message()).unwrap();
    assert_eq!(read, name);
    reader.push_front_message(&read);
    assert_eq!(block_on(reader.read_message::<Name>()), Ok(name));
}

#[test]
fn read_message_waits_for_the_bytes_its_decoder_asks_for() {
    let (reader, writer) = stream();
    let (wakes, waker) = counting_waker();
    let mut read = pin!(reader.read_message::<Name>());
    assert!(poll_once(read.as_mut(), &waker).is_pending());

    // A name of 5 bytes: once its length byte is in, the decoder asks for
    // all 6 bytes and the reader sleeps until they are there.
    writer.try_write(&[5]).unwrap();
    assert_eq!(wakes.get(), 1);
    assert!(poll_once(read.as_mut(), &waker).is_pending());
    for b in b"node" {
        writer.try_write(&[*b]).unwrap();
        assert_eq!(wakes.get(), 1, "woken before the name was whole");
    }
    writer.try_write(b"!").unwrap();
    assert_eq!(wakes.get(), 2);
    assert_eq!(
        poll_once(read.as_mut(), &waker),
        Poll::Ready(Ok(Name::new("node!").unwrap()))
    );
}

#[test]
fn read_message_reports_bytes_that_are_not_the_message() {
    let (reader, writer) = stream();
    writer.try_write(&[2, 0xff, 0xfe]).unwrap();
    assert_eq!(
        block_on(reader.read_message::<Name>()),
        Err(StreamError::Protocol(FrameError::InvalidUtf8))
    );
    // Nothing was consumed.
    assert_eq!(reader.buffered(), 3);
}

#[test]
fn read_message_reports_a_close_in_the_middle_of_a_message() {
    let (reader, writer) = stream();
    writer.try_write(&[5, b'a']).unwrap();
    writer.close("cut");
    assert_eq!(
        block_on(reader.read_message::<Name>()),
        Err(StreamError::Closed(Some("cut".into())))
    );
}

#[test]
fn the_writer_epitaph_reaches_the_reader_after_the_buffered_bytes() {
    let (reader, writer) = stream();
    writer.try_write(b"last words").unwrap();
    writer.close("goodbye");
    assert!(reader.is_closed());
    assert_eq!(reader.closed_reason().as_deref(), Some("goodbye"));
    // Too few bytes for this read, but they stay for a smaller one.
    assert_eq!(
        block_on(reader.read(11, take_all)),
        Err(StreamError::Closed(Some("goodbye".into())))
    );
    assert_eq!(
        block_on(reader.read(10, take_all)),
        Ok(b"last words".to_vec())
    );
    assert_eq!(
        block_on(reader.read(1, take_all)),
        Err(StreamError::Closed(Some("goodbye".into())))
    );
}

#[test]
fn the_reader_epitaph_reaches_the_writer_and_drops_buffered_bytes() {
    let (reader, writer) = stream();
    writer.try_write(b"unread").unwrap();
    reader.close("not interested");
    assert_eq!(writer.buffered(), 0);
    assert!(writer.is_closed());
    assert_eq!(writer.closed_reason().as_deref(), Some("not interested"));
    let closed = Some("not interested".to_string());
    assert_eq!(
        block_on(writer.write_all(b"more")),
        Err(StreamError::Closed(closed.clone()))
    );
    assert_eq!(
        writer.try_write(b"more"),
        Err(TryWriteError::Closed(closed.clone()))
    );
    assert_eq!(
        block_on(reader.read(1, take_all)),
        Err(StreamError::Closed(closed))
    );
}

#[test]
fn dropping_the_writer_ends_the_stream_without_an_epitaph() {
    let (reader, writer) = stream();
    writer.try_write(b"tail").unwrap();
    drop(writer);
    assert!(reader.is_closed());
    assert_eq!(reader.closed_reason(), None);
    assert_eq!(block_on(reader.read(1, take_all)), Ok(b"tail".to_vec()));
    assert_eq!(
        block_on(reader.read(1, take_all)),
        Err(StreamError::Closed(None))
    );
}

#[test]
fn dropping_the_reader_fails_the_next_write() {
    let (reader, writer) = stream();
    drop(reader);
    assert!(writer.is_closed());
    assert_eq!(
        block_on(writer.write_all(b"x")),
        Err(StreamError::Closed(None))
    );
}

#[test]
fn closing_twice_keeps_the_first_epitaph() {
    let (reader, writer) = stream();
    writer.close("first");
    writer.close("second");
    reader.close("third");
    drop(writer);
    assert_eq!(reader.closed_reason().as_deref(), Some("first"));
}

#[test]
fn an_empty_epitaph_is_no_epitaph() {
    let (reader, writer) = stream();
    writer.close("");
    assert!(reader.is_closed());
    assert_eq!(reader.closed_reason(), None);
    assert_eq!(
        block_on(reader.read(1, take_all)),
        Err(StreamError::Closed(None))
    );
}

#[test]
fn a_clean_close_with_an_epitaph_ends_reads_and_keeps_the_epitaph() {
    let (reader, writer) = stream();
    writer.try_write(b"tail").unwrap();
    writer.close_clean_with("b reported no epitaph");
    assert!(reader.is_closed());
    assert_eq!(
        reader.closed_reason().as_deref(),
        Some("b reported no epitaph")
    );
    assert_eq!(
        writer.closed_reason().as_deref(),
        Some("b reported no epitaph")
    );
    assert_eq!(block_on(reader.read(1, take_all)), Ok(b"tail".to_vec()));
    assert_eq!(
        block_on(reader.read(1, take_all)),
        Err(StreamError::Closed(None))
    );
    assert_eq!(
        block_on(reader.read_message::<Name>()),
        Err(StreamError::Closed(None))
    );
    assert_eq!(writer.try_write(b"more"), Err(TryWriteError::Closed(None)));
}

#[test]
fn a_clean_close_is_the_first_close_or_nothing() {
    // After an abnormal close, a clean one changes nothing.
    let (reader, writer) = stream();
    writer.close("cut");
    writer.close_clean_with("b reported no epitaph");
    assert_eq!(reader.closed_reason().as_deref(), Some("cut"));
    assert_eq!(
        block_on(reader.read(1, take_all)),
        Err(StreamError::Closed(Some("cut".into())))
    );
    // And the other way round: the first close stays clean.
    let (reader, writer) = stream();
    writer.close_clean_with("b reported no epitaph");
    reader.close("third");
    writer.close("second");
    assert_eq!(
        reader.closed_reason().as_deref(),
        Some("b reported no epitaph")
    );
    assert_eq!(
        block_on(reader.read(1, take_all)),
        Err(StreamError::Closed(None))
    );
    // An empty epitaph is none, clean or not.
    let (reader, writer) = stream();
    writer.close_clean_with("");
    assert_eq!(reader.closed_reason(), None);
}

#[test]
fn closing_wakes_a_waiting_reader_and_a_waiting_writer() {
    let (reader, writer) = stream_with_capacity(4);
    let (reader_wakes, reader_waker) = counting_waker();
    let mut read = pin!(reader.read(1, take_all));
    assert!(poll_once(read.as_mut(), &reader_waker).is_pending());
    writer.close("bye");
    assert_eq!(reader_wakes.get(), 1);
    assert_eq!(
        poll_once(read.as_mut(), &reader_waker),
        Poll::Ready(Err(StreamError::Closed(Some("bye".into()))))
    );

    let (reader, writer) = stream_with_capacity(4);
    writer.try_write(b"full").unwrap();
    let (writer_wakes, writer_waker) = counting_waker();
    let mut write = pin!(writer.write_all(b"more"));
    assert!(poll_once(write.as_mut(), &writer_waker).is_pending());
    drop(reader);
    assert_eq!(writer_wakes.get(), 1);
    assert_eq!(
        poll_once(write.as_mut(), &writer_waker),
        Poll::Ready(Err(StreamError::Closed(None)))
    );
}

#[test]
fn a_write_past_the_capacity_waits_until_the_reader_makes_room() {
    let (reader, writer) = stream_with_capacity(8);
    writer.try_write(b"123456").unwrap();
    let (wakes, waker) = counting_waker();
    let mut write = pin!(writer.write(4, |out| {
        out.copy_from_slice(b"7890");
        4
    }));
    assert!(poll_once(write.as_mut(), &waker).is_pending());

    // One byte of room is not enough for 4 bytes: no wake-up yet.
    assert_eq!(reader.try_read_with(1, |_| ((), 1)), Ok(Some(())));
    assert_eq!(wakes.get(), 0);
    assert!(poll_once(write.as_mut(), &waker).is_pending());

    assert_eq!(reader.try_read_with(1, |_| ((), 1)), Ok(Some(())));
    assert_eq!(wakes.get(), 1);
    assert_eq!(poll_once(write.as_mut(), &waker), Poll::Ready(Ok(4)));
    assert_eq!(
        reader.try_read_with(8, take_all),
        Ok(Some(b"34567890".to_vec()))
    );
}

#[test]
fn try_write_reports_full_and_writes_nothing() {
    let (reader, writer) = stream_with_capacity(4);
    writer.try_write(b"abc").unwrap();
    assert_eq!(writer.try_write(b"de"), Err(TryWriteError::Full));
    assert_eq!(
        writer.try_write_with(2, |_| unreachable!("no room, no callback")),
        Err(TryWriteError::Full)
    );
    assert_eq!(reader.buffered(), 3);
    writer.try_write(b"d").unwrap();
    assert_eq!(
        reader.try_read_with(4, take_all),
        Ok(Some(b"abcd".to_vec()))
    );
}

#[test]
fn poll_write_some_writes_what_fits() {
    let (reader, writer) = stream_with_capacity(4);
    let (wakes, waker) = counting_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    assert_eq!(
        writer.poll_write_some(&mut cx, b"abcdef"),
        Poll::Ready(Ok(4))
    );
    assert_eq!(writer.poll_write_some(&mut cx, b"efg"), Poll::Pending);
    // One byte of room is a sliver: the writer waits for half the pipe.
    assert_eq!(reader.try_read_with(1, |_| ((), 1)), Ok(Some(())));
    assert_eq!(wakes.get(), 0);
    assert_eq!(reader.try_read_with(1, |_| ((), 1)), Ok(Some(())));
    assert_eq!(wakes.get(), 1);
    assert_eq!(writer.poll_write_some(&mut cx, b"efg"), Poll::Ready(Ok(2)));
    assert_eq!(writer.poll_write_some(&mut cx, b""), Poll::Ready(Ok(0)));
}

/// A writer far ahead of its reader is not woken for every sliver the
/// reader frees, and does not write slivers: a mux would send each as a
/// frame of its own (TCP's silly window). It waits for 16 KiB of room, or
/// all of a shorter write, or half of a small pipe.
#[test]
fn a_writer_ahead_of_its_reader_waits_for_a_worthwhile_piece() {
    let (reader, writer) = stream_with_capacity(256 << 10);
    writer.try_write(&vec![0; 256 << 10]).unwrap();
    let (wakes, waker) = counting_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    let big = vec![1; 64 << 10];
    assert_eq!(writer.poll_write_some(&mut cx, &big), Poll::Pending);
    // The reader frees 4 bytes, then 16 KiB less one in all: still waiting.
    assert_eq!(reader.try_read_with(1, |_| ((), 4)), Ok(Some(())));
    assert_eq!(writer.poll_write_some(&mut cx, &big), Poll::Pending);
    let rest = (16 << 10) - 1 - 4;
    assert_eq!(reader.try_read_with(rest, |_| ((), rest)), Ok(Some(())));
    assert_eq!(wakes.get(), 0);
    // One more byte: 16 KiB fit, the writer wakes and puts them in.
    assert_eq!(reader.try_read_with(1, |_| ((), 1)), Ok(Some(())));
    assert_eq!(wakes.get(), 1);
    assert_eq!(
        writer.poll_write_some(&mut cx, &big),
        Poll::Ready(Ok(16 << 10))
    );
    // A short write goes in once it fits whole.
    assert_eq!(reader.try_read_with(100, |_| ((), 100)), Ok(Some(())));
    assert_eq!(writer.poll_write_some(&mut cx, &big[..101]), Poll::Pending);
    assert_eq!(
        writer.poll_write_some(&mut cx, &big[..100]),
        Poll::Ready(Ok(100))
    );
    // A reader that waits for bytes gets what fits at once: it may wait
    // for no more than that.
    let (wait_reader, wait_writer) = stream_with_capacity(100);
    wait_writer.try_write(&[0; 60]).unwrap();
    let (writer_wakes, writer_waker) = counting_waker();
    let mut writer_cx = std::task::Context::from_waker(&writer_waker);
    assert_eq!(
        wait_writer.poll_write_some(&mut writer_cx, &[1; 50]),
        Poll::Pending
    );
    let mut read = pin!(wait_reader.read(80, |b| (b.len(), 80)));
    assert!(poll_once(read.as_mut(), &waker).is_pending());
    assert_eq!(writer_wakes.get(), 1, "a waiting reader wakes the writer");
    assert_eq!(
        wait_writer.poll_write_some(&mut writer_cx, &[1; 50]),
        Poll::Ready(Ok(40))
    );
    assert_eq!(poll_once(read.as_mut(), &waker), Poll::Ready(Ok(100)));
    // A reader that waits while it holds room in chunks (a mux, while
    // their bytes go out) gives that room back without more bytes: the
    // writer still waits for a worthwhile piece, and the room comes back
    // whole when the chunks go.
    let (chunk_reader, chunk_writer) = stream_with_capacity(64 << 10);
    chunk_writer.try_write(&vec![0; 60 << 10]).unwrap();
    let mut chunks = Vec::new();
    while let Poll::Ready(chunk) = chunk_reader.poll_take(&mut cx) {
        chunks.push(chunk.unwrap());
    }
    assert_eq!(chunks.iter().map(|c| c.len()).sum::<usize>(), 60 << 10);
    let wakes_before = writer_wakes.get();
    assert_eq!(
        chunk_writer.poll_write_some(&mut writer_cx, &big),
        Poll::Pending
    );
    drop(chunks);
    assert_eq!(writer_wakes.get(), wakes_before + 1);
    assert_eq!(
        chunk_writer.poll_write_some(&mut writer_cx, &big),
        Poll::Ready(Ok(64 << 10))
    );
    // Chunks let go while the reader waits for more than is buffered:
    // the writer puts in what fits, though it is less than 16 KiB.
    let (held_reader, held_writer) = stream_with_capacity(64 << 10);
    held_writer.try_write(&vec![0; 10 << 10]).unwrap();
    let mut held = Vec::new();
    while let Poll::Ready(chunk) = held_reader.poll_take(&mut cx) {
        held.push(chunk.unwrap());
    }
    held_writer.try_write(&vec![0; 50 << 10]).unwrap();
    assert_eq!(
        held_writer.poll_write_some(&mut writer_cx, &big),
        Poll::Pending
    );
    let mut wait = pin!(held_reader.read(54 << 10, |b| (b.len(), b.len())));
    assert!(poll_once(wait.as_mut(), &waker).is_pending());
    let wakes_before = writer_wakes.get();
    drop(held);
    assert_eq!(writer_wakes.get(), wakes_before + 1);
    assert_eq!(
        held_writer.poll_write_some(&mut writer_cx, &big),
        Poll::Ready(Ok(14 << 10))
    );
    assert!(matches!(
        poll_once(wait.as_mut(), &waker),
        Poll::Ready(Ok(n)) if n >= 54 << 10
    ));
    // In a small pipe, half of it is enough.
    let (small_reader, small_writer) = stream_with_capacity(1000);
    small_writer.try_write(&[0; 1000]).unwrap();
    assert_eq!(small_reader.try_read_with(499, |_| ((), 499)), Ok(Some(())));
    assert_eq!(small_writer.poll_write_some(&mut cx, &big), Poll::Pending);
    assert_eq!(small_reader.try_read_with(1, |_| ((), 1)), Ok(Some(())));
    assert_eq!(
        small_writer.poll_write_some(&mut cx, &big),
        Poll::Ready(Ok(500))
    );
}

#[test]
fn requests_larger_than_the_capacity_are_too_large() {
    let (reader, writer) = stream_with_capacity(16);
    let too_large = StreamError::TooLarge {
        requested: 17,
        capacity: 16,
    };
    assert_eq!(block_on(writer.write(17, |_| 0)), Err(too_large.clone()));
    assert_eq!(block_on(reader.read(17, take_all)), Err(too_large));
    assert_eq!(
        writer.try_write(&[0; 17]),
        Err(TryWriteError::TooLarge {
            requested: 17,
            capacity: 16
        })
    );
    // write_all goes through in pieces instead.
    let (reader, writer) = stream_with_capacity(16);
    let sender = std::thread::spawn(move || block_on(writer.write_all(&[7; 100])));
    let mut got = Vec::new();
    while let Ok(bytes) = block_on(reader.read(1, take_all)) {
        got.extend(bytes);
    }
    assert_eq!(sender.join().unwrap(), Ok(()));
    assert_eq!(got, vec![7; 100]);
}

#[test]
fn the_default_pipe_is_bounded_and_an_unbounded_one_never_waits() {
    let (reader, writer) = stream();
    assert_eq!(reader.capacity(), Some(DEFAULT_CAPACITY));
    assert_eq!(writer.capacity(), Some(DEFAULT_CAPACITY));
    writer.try_write(&vec![1; DEFAULT_CAPACITY]).unwrap();
    assert_eq!(writer.try_write(&[1]), Err(TryWriteError::Full));

    let (reader, writer) = stream_unbounded();
    assert_eq!(reader.capacity(), None);
    for _ in 0..8 {
        writer.try_write(&vec![2; DEFAULT_CAPACITY]).unwrap();
    }
    assert_eq!(reader.buffered(), 8 * DEFAULT_CAPACITY);
}

#[test]
fn a_capacity_of_zero_counts_as_one() {
    let (reader, writer) = stream_with_capacity(0);
    assert_eq!(writer.capacity(), Some(1));
    writer.try_write(b"a").unwrap();
    assert_eq!(writer.try_write(b"b"), Err(TryWriteError::Full));
    assert_eq!(reader.try_read_with(1, take_all), Ok(Some(b"a".to_vec())));
}

#[test]
fn pipe_ends_can_move_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<circuit_stream::Reader>();
    assert_send_sync::<circuit_stream::Writer>();
    assert_send_sync::<circuit_stream::Duplex>();
}

#[test]
fn wake_ups_in_a_batch_come_once_when_it_ends_and_bytes_at_once() {
    let (reader, writer) = stream_with_capacity(16);
    let (wakes, waker) = counting_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    assert_eq!(reader.poll_read_with(&mut cx, 1, take_all), Poll::Pending);
    circuit_stream::batch_wakes(|| {
        writer.try_write(b"ab").unwrap();
        // The bytes are there at once; only the wake-up waits.
        assert_eq!(reader.buffered(), 2);
        assert_eq!(wakes.get(), 0);
        // Parked again and woken again within the batch: still held.
        assert_eq!(reader.poll_read_with(&mut cx, 3, take_all), Poll::Pending);
        circuit_stream::batch_wakes(|| writer.try_write(b"c").unwrap());
        assert_eq!(wakes.get(), 0, "a nested batch joins the outer one");
    });
    assert_eq!(
        wakes.get(),
        1,
        "one wake-up for the task, when the batch ends"
    );
    assert_eq!(
        reader.poll_read_with(&mut cx, 1, take_all),
        Poll::Ready(Ok(b"abc".to_vec()))
    );
    // Outside a batch, wake-ups are immediate again.
    assert_eq!(reader.poll_read_with(&mut cx, 1, take_all), Poll::Pending);
    writer.try_write(b"d").unwrap();
    assert_eq!(wakes.get(), 2);
}

#[test]
fn a_batch_that_unwinds_still_wakes() {
    let (reader, writer) = stream_with_capacity(16);
    let (wakes, waker) = counting_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    assert_eq!(reader.poll_read_with(&mut cx, 1, take_all), Poll::Pending);
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        circuit_stream::batch_wakes(|| {
            writer.try_write(b"x").unwrap();
            panic!("the batch's work failed");
        })
    }));
    assert!(unwound.is_err());
    assert_eq!(wakes.get(), 1);
    // And the thread is out of the batch.
    assert_eq!(reader.poll_read_with(&mut cx, 2, take_all), Poll::Pending);
    writer.try_write(b"y").unwrap();
    assert_eq!(wakes.get(), 2);
}

#[test]
fn taken_bytes_keep_their_room_until_their_chunk_is_dropped() {
    let (reader, writer) = stream_with_capacity(10);
    writer.try_write(b"abcdefgh").unwrap();
    let (_, waker) = counting_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    let Poll::Ready(Ok(mut chunk)) = reader.poll_take(&mut cx) else {
        panic!("bytes were buffered");
    };
    assert_eq!(&chunk[..], b"abcdefgh");
    assert_eq!(reader.buffered(), 0, "the bytes left the pipe");
    assert_eq!(writer.buffered(), 8, "and still take room");
    assert!(matches!(writer.try_write(b"xyz"), Err(TryWriteError::Full)));
    // A writer waiting for room is woken when a piece gives it back.
    let (wakes, writer_waker) = counting_waker();
    let mut write = pin!(writer.write(3, |out| {
        out.copy_from_slice(b"xyz");
        3
    }));
    assert!(poll_once(write.as_mut(), &writer_waker).is_pending());
    let front = chunk.split_to(3);
    assert_eq!((&front[..], &chunk[..]), (&b"abc"[..], &b"defgh"[..]));
    assert_eq!(wakes.get(), 0);
    drop(front);
    assert_eq!(wakes.get(), 1, "room for 3 bytes came back");
    assert!(poll_once(write.as_mut(), &writer_waker).is_ready());
    assert_eq!(writer.buffered(), 8);
    drop(chunk);
    assert_eq!(writer.buffered(), 3);
    // The next take sees what was written meanwhile, and only that.
    let Poll::Ready(Ok(chunk)) = reader.poll_take(&mut cx) else {
        panic!("bytes were buffered");
    };
    assert_eq!(&chunk[..], b"xyz");
}

#[test]
fn a_take_waits_for_bytes_and_then_sees_the_close() {
    let (reader, writer) = stream();
    let (wakes, waker) = counting_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    assert!(reader.poll_take(&mut cx).is_pending());
    writer.try_write(b"last").unwrap();
    assert_eq!(wakes.get(), 1);
    writer.close("bye");
    let Poll::Ready(Ok(chunk)) = reader.poll_take(&mut cx) else {
        panic!("bytes were buffered");
    };
    assert_eq!(&chunk[..], b"last");
    assert_eq!(
        reader.poll_take(&mut cx).map(|r| r.map(|c| c.len())),
        Poll::Ready(Err(StreamError::Closed(Some("bye".into()))))
    );
}

#[test]
fn the_writer_learns_whether_the_reader_waited_for_bytes() {
    let (reader, writer) = stream();
    assert!(!writer.take_reader_waited());
    // A read that finds its bytes does not wait.
    writer.try_write(b"abc").unwrap();
    assert_eq!(block_on(reader.read(3, take_all)).unwrap(), b"abc");
    assert!(!writer.take_reader_waited());
    // A read that finds too few parks: the writer learns it once.
    let (_, waker) = counting_waker();
    let mut read = pin!(reader.read(1, take_all));
    assert!(poll_once(read.as_mut(), &waker).is_pending());
    assert!(writer.take_reader_waited());
    assert!(!writer.take_reader_waited());
    // A try (no task to park) is not a wait.
    writer.try_write(b"d").unwrap();
    assert_eq!(
        poll_once(read.as_mut(), &waker),
        Poll::Ready(Ok(b"d".to_vec()))
    );
    assert_eq!(reader.try_read_with(1, take_all).unwrap(), None);
    assert!(!writer.take_reader_waited());
}

#[test]
fn a_write_limit_bounds_buffering_below_the_capacity_and_can_move_both_ways() {
    let (reader, writer) = stream_with_capacity(100);
    reader.set_write_limit(30);
    // A partial write stops at the limit.
    let (wakes, waker) = counting_waker();
    let mut write = pin!(futures::future::poll_fn(
        |cx| writer.poll_write_some(cx, &[1; 80])
    ));
    assert_eq!(poll_once(write.as_mut(), &waker), Poll::Ready(Ok(30)));
    // At the limit the writer waits, and taking bytes below it wakes it.
    let mut more = pin!(futures::future::poll_fn(
        |cx| writer.poll_write_some(cx, &[2; 10])
    ));
    assert!(poll_once(more.as_mut(), &waker).is_pending());
    assert_eq!(block_on(reader.read(5, |b| ((), b.len().min(5)))), Ok(()));
    assert_eq!(wakes.get(), 0, "a short write waits to go in whole");
    assert_eq!(block_on(reader.read(5, |b| ((), b.len().min(5)))), Ok(()));
    assert_eq!(wakes.get(), 1, "room below the limit wakes the writer");
    assert_eq!(poll_once(more.as_mut(), &waker), Poll::Ready(Ok(10)));
    // Raising the limit wakes a waiting writer.
    let mut third = pin!(futures::future::poll_fn(
        |cx| writer.poll_write_some(cx, &[3; 10])
    ));
    assert!(poll_once(third.as_mut(), &waker).is_pending());
    reader.set_write_limit(60);
    assert_eq!(wakes.get(), 2, "a higher limit wakes the writer");
    assert_eq!(poll_once(third.as_mut(), &waker), Poll::Ready(Ok(10)));
    assert_eq!(writer.buffered(), 40);
    // Lowering it below what is buffered keeps the bytes; writes wait.
    reader.set_write_limit(10);
    assert!(matches!(writer.try_write(&[4]), Err(TryWriteError::Full)));
    let all = block_on(reader.read(40, take_all)).unwrap();
    assert_eq!(all.len(), 40);
    // A message above the limit and within the capacity goes in whole
    // once the pipe is empty; above the capacity it is too large.
    writer.try_write(&[5; 100]).unwrap();
    assert!(matches!(writer.try_write(&[6]), Err(TryWriteError::Full)));
    assert_eq!(block_on(reader.read(100, take_all)).unwrap(), vec![5; 100]);
    assert!(matches!(
        writer.try_write(&[7; 101]),
        Err(TryWriteError::TooLarge { capacity: 100, .. })
    ));
}

#[test]
fn a_lifted_write_limit_stays_lifted() {
    let (reader, writer) = stream_with_capacity(100);
    reader.set_write_limit(10);
    writer.try_write(&[1; 10]).unwrap();
    assert!(matches!(writer.try_write(&[1]), Err(TryWriteError::Full)));
    writer.lift_write_limit();
    writer.try_write(&[2; 50]).unwrap();
    reader.set_write_limit(10);
    writer.try_write(&[3; 40]).unwrap();
    assert_eq!(writer.buffered(), 100);
}

#[test]
fn handed_bytes_are_read_where_they_lie_and_wait_for_room() {
    let (reader, writer) = stream_with_capacity(64 * 1024);
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let handed = Bytes::from(data.clone());
    let base = handed.as_ptr() as usize;
    let (_, waker) = counting_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    let mut rest = handed.clone();
    // Only what fits goes, cut off the front.
    let Poll::Ready(Ok(n)) = writer.poll_write_bytes(&mut cx, &mut rest) else {
        panic!("the pipe was empty");
    };
    assert_eq!(n, 64 * 1024);
    assert_eq!(rest.len(), data.len() - n);
    assert!(
        writer.poll_write_bytes(&mut cx, &mut rest).is_pending(),
        "full"
    );
    // A take hands out the writer's own memory, not a copy.
    let Poll::Ready(Ok(chunk)) = reader.poll_take(&mut cx) else {
        panic!("bytes were buffered");
    };
    assert_eq!(chunk.as_ptr() as usize, base);
    assert_eq!(&chunk[..], &data[..chunk.len()]);
    let mut got = chunk.to_vec();
    drop(chunk);
    // The rest, then a copied write after it, through the future; read
    // through futures-io.
    let copied = b" and a copied tail";
    let read = std::thread::spawn(move || {
        let mut reader = reader;
        let mut all = Vec::new();
        block_on(futures::AsyncReadExt::read_to_end(&mut reader, &mut all)).unwrap();
        all
    });
    block_on(async {
        writer.write_bytes(rest).await.unwrap();
        writer.write_all(copied).await.unwrap();
    });
    drop(writer);
    got.extend(read.join().unwrap());
    let mut want = data;
    want.extend_from_slice(copied);
    assert!(got == want, "the bytes changed on the way");
}

#[test]
fn a_handed_piece_too_small_for_a_block_is_copied() {
    let (reader, writer) = stream();
    let small = Bytes::from_static(b"tiny");
    block_on(writer.write_bytes(small.clone())).unwrap();
    let (_, waker) = counting_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    let Poll::Ready(Ok(chunk)) = reader.poll_take(&mut cx) else {
        panic!("bytes were buffered");
    };
    assert_eq!(&chunk[..], b"tiny");
    assert_ne!(chunk.as_ptr(), small.as_ptr(), "copied into the pipe");
}
