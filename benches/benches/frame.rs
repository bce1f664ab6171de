//! `circuit-frame`: encoding and decoding of mux frames and node messages.
//!
//! Every group runs a memcpy of the same bytes beside the codec, so the
//! figure that matters is the ratio to it: encoding a data frame is a copy
//! of its payload plus a 6-byte header, decoding one borrows the payload and
//! should cost next to nothing.
//!
//! Groups:
//! - `frame/data_65535`: one data frame with the largest payload.
//! - `frame/data_16_x1024`, `frame/close_x1024`, `frame/node_state_x1024`:
//!   1024 small messages back to back, as a busy link carries them.
//!
//! Run: `cargo bench -p circuit-benches --bench frame`.

use std::hint::black_box;

use circuit_frame::{Decode, Decoded, Encode, Frame, Name, NodeState, Quality};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// The largest payload of one data frame.
const BIG: usize = 65_535;
/// Small messages per iteration in the small-message groups.
const BATCH: usize = 1024;

fn encode_to_vec(m: &impl Encode) -> Vec<u8> {
    let mut out = Vec::new();
    m.encode_to_vec(&mut out);
    out
}

/// One 65535-byte data frame: memcpy of the frame, encode, decode (which
/// borrows) and decode then copy the payload out (what a mux reader does).
fn data_65535(c: &mut Criterion) {
    let payload: Vec<u8> = (0..BIG).map(|i| i as u8).collect();
    let wire = encode_to_vec(&Frame::data(3, &payload).unwrap());
    let mut out = vec![0u8; wire.len()];

    let mut group = c.benchmark_group("frame/data_65535");
    group.throughput(Throughput::ElementsAndBytes {
        elements: 1,
        bytes: wire.len() as u64,
    });
    group.bench_function("memcpy (baseline)", |b| {
        b.iter(|| {
            out.copy_from_slice(black_box(&wire));
            black_box(&mut out);
        })
    });
    group.bench_function("encode", |b| {
        b.iter(|| {
            let frame = Frame::data(black_box(3), black_box(&payload)).unwrap();
            let n = frame.encode(&mut out).unwrap();
            black_box((&mut out, n));
        })
    });
    group.bench_function("decode", |b| {
        b.iter(|| black_box(Frame::decode(black_box(&wire)).unwrap()))
    });
    group.bench_function("decode + copy payload", |b| {
        b.iter(|| {
            if let Ok(Decoded::Complete {
                message: Frame::Data { payload, .. },
                ..
            }) = Frame::decode(black_box(&wire))
            {
                out[..payload.len()].copy_from_slice(payload);
            }
            black_box(&mut out);
        })
    });
    group.finish();
}

/// Runs a group over `BATCH` copies of one small message: memcpy of each
/// message's bytes, `encode` each into one buffer, decode the buffer.
fn small_batch<E, D>(c: &mut Criterion, group_name: &str, one: &[u8], mut encode: E, mut decode: D)
where
    E: FnMut(&mut [u8]) -> usize,
    D: FnMut(&[u8]) -> usize,
{
    let wire: Vec<u8> = one.repeat(BATCH);
    let mut out = vec![0u8; wire.len()];

    let mut group = c.benchmark_group(group_name);
    group.throughput(Throughput::ElementsAndBytes {
        elements: BATCH as u64,
        bytes: wire.len() as u64,
    });
    group.bench_function("memcpy (baseline)", |b| {
        b.iter(|| {
            let wire = black_box(&wire[..]);
            for (src, dst) in wire.chunks(one.len()).zip(out.chunks_mut(one.len())) {
                dst.copy_from_slice(src);
            }
            black_box(&mut out);
        })
    });
    group.bench_function("encode", |b| {
        b.iter(|| {
            let mut pos = 0;
            for _ in 0..BATCH {
                pos += encode(&mut out[pos..]);
            }
            assert_eq!(pos, wire.len());
            black_box(&mut out);
        })
    });
    group.bench_function("decode", |b| {
        b.iter(|| {
            let mut rest = black_box(&wire[..]);
            let mut count = 0;
            while !rest.is_empty() {
                rest = &rest[decode(rest)..];
                count += 1;
            }
            assert_eq!(count, BATCH);
        })
    });
    group.finish();
}

/// Takes one complete message off the front of `input`, returning its size.
fn decode_one<'a, T: Decode<'a>>(input: &'a [u8]) -> usize {
    match T::decode(input) {
        Ok(Decoded::Complete { message, consumed }) => {
            black_box(message);
            consumed
        }
        _ => panic!("benchmark input is whole messages"),
    }
}

fn small_messages(c: &mut Criterion) {
    let payload = [0x42u8; 16];
    let data = Frame::data(7, &payload).unwrap();
    small_batch(
        c,
        "frame/data_16_x1024",
        &encode_to_vec(&data),
        |out| {
            let frame = Frame::data(black_box(7), black_box(&payload)).unwrap();
            frame.encode(out).unwrap()
        },
        |input| decode_one::<Frame<'_>>(input),
    );

    let close = Frame::close(7, "bye");
    small_batch(
        c,
        "frame/close_x1024",
        &encode_to_vec(&close),
        |out| {
            Frame::close(black_box(7), black_box("bye"))
                .encode(out)
                .unwrap()
        },
        |input| decode_one::<Frame<'_>>(input),
    );

    let state = NodeState::Online {
        node: Name::new("node-17").unwrap(),
        quality: Quality::NETWORK,
    };
    small_batch(
        c,
        "frame/node_state_x1024",
        &encode_to_vec(&state),
        |out| black_box(&state).encode(out).unwrap(),
        |input| decode_one::<NodeState>(input),
    );
}

criterion_group!(benches, data_65535, small_messages);
criterion_main!(benches);
