//! Arbitrary bytes through every decoder of `circuit-frame`.
//!
//! - The input is read as a link: frames are decoded one after the other
//!   until the input ends inside a frame. Every frame re-encodes to exactly
//!   the bytes it came from, and `Incomplete { needed }` asks for more than
//!   what is left.
//! - The same input is fed in small chunks to a reader that accumulates and
//!   respects `needed`, as a network reader does: it must see the same
//!   frames.
//! - `NodeState`, `Identify`, `RoutingHeader`, `ConnectionHeader` and `Name`
//!   are each decoded from the start of the input; what decodes re-encodes
//!   to the bytes it used, and the only possible error is invalid UTF-8.
#![no_main]

use circuit_frame::{
    ConnectionHeader, Decode, Decoded, Encode, Frame, FrameError, Identify, Name, NodeState,
    RoutingHeader,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let whole = frames_whole(data);
    let chunk = data.first().map_or(1, |b| usize::from(b % 32) + 1);
    assert_eq!(frames_in_chunks(data, chunk), whole);

    check_message::<NodeState>(data);
    check_message::<Identify>(data);
    check_message::<RoutingHeader>(data);
    check_message::<ConnectionHeader>(data);
    check_message::<Name>(data);
});

/// Decodes frames from the start of `data` until it ends inside a frame;
/// returns each frame's bytes.
fn frames_whole(data: &[u8]) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let mut rest = data;
    loop {
        match Frame::decode(rest) {
            Ok(Decoded::Complete { message, consumed }) => {
                assert!(consumed > 0 && consumed <= rest.len());
                let encoded = encode(&message);
                assert_eq!(&encoded[..], &rest[..consumed], "frame re-encodes exactly");
                frames.push(encoded);
                rest = &rest[consumed..];
            }
            Ok(Decoded::Incomplete { needed }) => {
                assert!(needed > rest.len(), "needed {needed} <= {}", rest.len());
                return frames;
            }
            Err(e) => panic!("a frame never fails to decode, got {e}"),
        }
    }
}

/// Decodes the same frames from `data` arriving `chunk` bytes at a time.
fn frames_in_chunks(data: &[u8], chunk: usize) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut wait_for = 0;
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        while !buf.is_empty() && buf.len() >= wait_for {
            match Frame::decode(&buf).expect("frames never fail to decode") {
                Decoded::Complete { message, consumed } => {
                    frames.push(encode(&message));
                    buf.drain(..consumed);
                    wait_for = 0;
                }
                Decoded::Incomplete { needed } => {
                    assert!(needed > buf.len());
                    assert!(needed > wait_for, "no progress at {wait_for} bytes");
                    wait_for = needed;
                }
            }
        }
    }
    frames
}

fn check_message<'a, T: Decode<'a> + Encode>(data: &'a [u8]) {
    match T::decode(data) {
        Ok(Decoded::Complete { message, consumed }) => {
            assert!(consumed >= T::MIN_LEN && consumed <= data.len());
            assert_eq!(message.encoded_len(), consumed);
            assert_eq!(&encode(&message)[..], &data[..consumed]);
        }
        Ok(Decoded::Incomplete { needed }) => assert!(needed > data.len()),
        Err(FrameError::InvalidUtf8) => {}
        Err(e) => panic!("unexpected decode error {e}"),
    }
}

fn encode(message: &impl Encode) -> Vec<u8> {
    let mut out = Vec::new();
    message.encode_to_vec(&mut out);
    out
}
