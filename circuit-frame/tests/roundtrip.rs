//! Property tests of the codec: every message survives encode then decode,
//! a link decodes the same however its bytes are split, short input is
//! never an error, and no input makes a decoder panic.

mod support;

use circuit_frame::{
    ConnectionHeader, Decode, Decoded, Encode, Frame, FrameError, Identify, Name, NodeState,
    Quality, RoutingHeader, MAX_NAME_LEN, MAX_PAYLOAD_LEN,
};
use proptest::collection::vec;
use proptest::prelude::*;
use support::{decode_all, NetworkReader, OwnedFrame};

// ---------------------------------------------------------------------------
// Strategies.

/// Any string that fits in a `Name`, multi-byte characters included: up
/// to 120 arbitrary chars, cut at the last char boundary within 255 bytes.
fn name_string() -> impl Strategy<Value = String> {
    vec(any::<char>(), 0..120).prop_map(|chars| {
        let mut s = String::new();
        for c in chars {
            if s.len() + c.len_utf8() > MAX_NAME_LEN {
                break;
            }
            s.push(c);
        }
        s
    })
}

fn name() -> impl Strategy<Value = Name> {
    prop_oneof![
        name_string(),
        "[a-z0-9-]{0,16}",
        // Exactly at the limit, one and several bytes per char.
        Just("x".repeat(MAX_NAME_LEN)),
        Just(format!("a{}", "é".repeat(127))),
    ]
    .prop_map(|s| Name::new(s).expect("fits"))
}

fn quality() -> impl Strategy<Value = Quality> {
    (0u8..=254).prop_map(|q| Quality::new(q).unwrap())
}

fn payload(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 1..=max)
}

/// A frame as built by a sender: data of 1..=`max_payload` bytes, or a
/// close whose epitaph is text (via `Frame::close`) or any bytes.
fn frame(max_payload: usize) -> impl Strategy<Value = OwnedFrame> {
    prop_oneof![
        4 => (any::<u32>(), payload(max_payload)).prop_map(|(id, p)| OwnedFrame::Data(id, p)),
        1 => (any::<u32>(), ".{0,20}").prop_map(|(id, e)| {
            Frame::close(id, &e).into()
        }),
        1 => (any::<u32>(), vec(any::<u8>(), 0..20)).prop_map(|(id, e)| OwnedFrame::Close(id, e)),
    ]
}

fn node_state() -> impl Strategy<Value = NodeState> {
    prop_oneof![
        (name(), quality()).prop_map(|(node, quality)| NodeState::Online { node, quality }),
        name().prop_map(|node| NodeState::Offline { node }),
    ]
}

fn identify() -> impl Strategy<Value = Identify> {
    (any::<u8>(), name()).prop_map(|(version, protocol)| Identify { version, protocol })
}

fn routing_header() -> impl Strategy<Value = RoutingHeader> {
    (name(), name()).prop_map(|(destination, source)| RoutingHeader {
        destination,
        source,
    })
}

fn connection_header() -> impl Strategy<Value = ConnectionHeader> {
    (any::<u64>(), any::<u64>())
        .prop_map(|(conn_id, stream_id)| ConnectionHeader { conn_id, stream_id })
}

// ---------------------------------------------------------------------------
// Checks.

fn encode(m: &impl Encode) -> Vec<u8> {
    let mut out = Vec::new();
    m.encode_to_vec(&mut out);
    out
}

/// `decode(encode(m)) == m`, using all the bytes; `encode` into an exact
/// buffer agrees with `encode_to_vec`; every strict prefix is incomplete
/// (never an error) and asks for more than it has, but no more than the
/// whole message.
fn assert_round_trip<T>(m: &T) -> Result<(), TestCaseError>
where
    T: Encode + for<'a> Decode<'a> + PartialEq + std::fmt::Debug,
{
    let bytes = encode(m);
    prop_assert_eq!(bytes.len(), m.encoded_len());
    prop_assert!(bytes.len() >= T::MIN_LEN);

    let mut exact = vec![0xAA; bytes.len()];
    prop_assert_eq!(m.encode(&mut exact), Ok(bytes.len()));
    prop_assert_eq!(&exact, &bytes);

    // Trailing bytes belong to the next message and are not consumed.
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0xFF, 0x00, 0x01]);
    for input in [&bytes, &longer] {
        match T::decode(input) {
            Ok(Decoded::Complete { message, consumed }) => {
                prop_assert_eq!(&message, m);
                prop_assert_eq!(consumed, bytes.len());
            }
            other => prop_assert!(false, "expected a complete message, got {:?}", other),
        }
    }

    for cut in 0..bytes.len() {
        match T::decode(&bytes[..cut]) {
            Ok(Decoded::Incomplete { needed }) => {
                prop_assert!(needed > cut, "prefix {} asked for {}", cut, needed);
                prop_assert!(needed <= bytes.len(), "prefix {} asked for {}", cut, needed);
            }
            other => prop_assert!(false, "prefix of {} bytes gave {:?}", cut, other),
        }
    }
    Ok(())
}

/// Whatever a decoder makes of arbitrary bytes, it does not panic; what
/// decodes re-encodes to the bytes it used, and short input asks for more.
fn assert_decodes_sanely<'a, T>(bytes: &'a [u8]) -> Result<(), TestCaseError>
where
    T: Encode + Decode<'a> + std::fmt::Debug,
{
    match T::decode(bytes) {
        Ok(Decoded::Complete { message, consumed }) => {
            prop_assert!(consumed <= bytes.len());
            prop_assert_eq!(encode(&message), &bytes[..consumed]);
        }
        Ok(Decoded::Incomplete { needed }) => prop_assert!(needed > bytes.len()),
        Err(e) => prop_assert_eq!(e, FrameError::InvalidUtf8),
    }
    Ok(())
}

fn concat(frames: &[OwnedFrame]) -> Vec<u8> {
    frames.iter().flat_map(OwnedFrame::encode).collect()
}

proptest! {
    #[test]
    fn frames_round_trip(f in frame(300)) {
        let frame = f.frame();
        let bytes = encode(&frame);
        prop_assert_eq!(bytes.len(), frame.encoded_len());
        match Frame::decode(&bytes) {
            Ok(Decoded::Complete { message, consumed }) => {
                prop_assert_eq!(message, frame);
                prop_assert_eq!(consumed, bytes.len());
            }
            other => prop_assert!(false, "got {:?}", other),
        }
        for cut in 0..bytes.len() {
            match Frame::decode(&bytes[..cut]) {
                Ok(Decoded::Incomplete { needed }) => {
                    prop_assert!(needed > cut && needed <= bytes.len());
                }
                other => prop_assert!(false, "prefix {} gave {:?}", cut, other),
            }
        }
    }

    #[test]
    fn data_frame_constructor_accepts_exactly_1_to_65535_bytes(len in 0usize..=70_000, id: u32) {
        let payload = vec![7u8; len];
        match Frame::data(id, &payload) {
            Ok(frame) => {
                prop_assert!((1..=MAX_PAYLOAD_LEN).contains(&len));
                prop_assert_eq!(frame.encoded_len(), 6 + len);
                let bytes = encode(&frame);
                prop_assert_eq!(Frame::decode(&bytes), Ok(Decoded::Complete { message: frame, consumed: 6 + len }));
            }
            Err(FrameError::EmptyPayload) => prop_assert_eq!(len, 0),
            Err(FrameError::PayloadTooLong { len: l }) => {
                prop_assert_eq!(l, len);
                prop_assert!(len > MAX_PAYLOAD_LEN);
            }
            Err(e) => prop_assert!(false, "unexpected {}", e),
        }
    }

    #[test]
    fn close_frames_keep_their_text_epitaph(id: u32, epitaph in "\\PC{0,40}") {
        let frame = Frame::close(id, &epitaph);
        let bytes = encode(&frame);
        let (decoded, _) = Frame::decode(&bytes).unwrap().complete().unwrap();
        prop_assert_eq!(decoded.stream_id(), id);
        let text = decoded.epitaph_lossy();
        prop_assert_eq!(text.as_deref(), Some(epitaph.as_str()));
    }

    #[test]
    fn names_round_trip(n in name()) {
        assert_round_trip(&n)?;
        prop_assert_eq!(encode(&n)[0] as usize, n.len());
        prop_assert_eq!(Name::new(n.as_str()), Ok(n.clone()));
    }

    #[test]
    fn identify_round_trips(m in identify()) {
        assert_round_trip(&m)?;
    }

    #[test]
    fn node_state_round_trips(m in node_state()) {
        assert_round_trip(&m)?;
        let first = encode(&m)[0];
        match &m {
            NodeState::Online { quality, .. } => prop_assert_eq!(first, quality.get()),
            NodeState::Offline { .. } => prop_assert_eq!(first, 255),
        }
    }

    #[test]
    fn routing_header_round_trips(m in routing_header()) {
        assert_round_trip(&m)?;
        // A router reads only the destination, as a Name, from the same bytes.
        let bytes = encode(&m);
        let (destination, used) = Name::decode(&bytes).unwrap().complete().unwrap();
        prop_assert_eq!(destination, m.destination.clone());
        prop_assert_eq!(Name::decode(&bytes[used..]).unwrap().complete().unwrap().0, m.source);
    }

    #[test]
    fn connection_header_round_trips(m in connection_header()) {
        assert_round_trip(&m)?;
        prop_assert_eq!(encode(&m).len(), ConnectionHeader::LEN);
    }

    #[test]
    fn quality_combine_is_saturating_addition(a in quality(), b in quality(), c in quality()) {
        let ab = a.combine(b);
        prop_assert_eq!(u16::from(ab.get()), (u16::from(a.get()) + u16::from(b.get())).min(254));
        prop_assert_eq!(ab, b.combine(a));
        prop_assert_eq!(ab.combine(c), a.combine(b.combine(c)));
        prop_assert_eq!(a.combine(Quality::SELF), a);
        prop_assert!(ab >= a && ab >= b);
        prop_assert!(ab.get() != 255);
        prop_assert_eq!(ab.is_worst(), ab == Quality::WORST);
        prop_assert_eq!(a.combine(Quality::WORST), Quality::WORST);
    }

    #[test]
    fn quality_accepts_every_byte_but_255(q: u8) {
        match Quality::new(q) {
            Ok(quality) => {
                prop_assert!(q != 255);
                prop_assert_eq!(quality.get(), q);
                prop_assert_eq!(Quality::try_from(q), Ok(quality));
            }
            Err(e) => {
                prop_assert_eq!(q, 255);
                prop_assert_eq!(e, FrameError::InvalidQuality);
            }
        }
    }

    /// A link split in two at every possible point, fed to a reader that
    /// accumulates and waits for `needed`, reads the same frames as whole.
    #[test]
    fn a_link_split_at_every_point_reads_the_same(frames in vec(frame(40), 0..8)) {
        let bytes = concat(&frames);
        prop_assert_eq!(decode_all(&bytes), frames.clone());
        for split in 0..=bytes.len() {
            let mut reader = NetworkReader::default();
            reader.feed(&bytes[..split]);
            reader.feed(&bytes[split..]);
            prop_assert_eq!(reader.finish(), frames.clone(), "split at {}", split);
        }
    }

    /// The same, with the link arriving in chunks of arbitrary sizes and
    /// larger frames.
    #[test]
    fn a_link_in_arbitrary_chunks_reads_the_same(
        frames in vec(frame(3000), 0..6),
        chunks in vec(1usize..700, 1..40),
    ) {
        let bytes = concat(&frames);
        let mut reader = NetworkReader::default();
        let mut pos = 0;
        for size in chunks.iter().cycle() {
            if pos == bytes.len() {
                break;
            }
            let end = (pos + size).min(bytes.len());
            reader.feed(&bytes[pos..end]);
            pos = end;
        }
        prop_assert_eq!(reader.finish(), frames);
    }

    /// Every prefix of a link decodes without error: complete frames, then
    /// an `Incomplete` that asks for more than what is left.
    #[test]
    fn a_prefix_of_a_link_is_never_an_error(frames in vec(frame(40), 1..6), cut in any::<prop::sample::Index>()) {
        let bytes = concat(&frames);
        let cut = cut.index(bytes.len() + 1);
        let mut rest = &bytes[..cut];
        let mut seen = 0;
        loop {
            match Frame::decode(rest) {
                Ok(Decoded::Complete { message, consumed }) => {
                    prop_assert_eq!(OwnedFrame::from(message), frames[seen].clone());
                    seen += 1;
                    rest = &rest[consumed..];
                }
                Ok(Decoded::Incomplete { needed }) => {
                    prop_assert!(needed > rest.len());
                    break;
                }
                Err(e) => prop_assert!(false, "prefix error {}", e),
            }
        }
        prop_assert!(seen <= frames.len());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..600)) {
        let mut rest = &bytes[..];
        while let Ok(Decoded::Complete { message, consumed }) = Frame::decode(rest) {
            prop_assert_eq!(encode(&message), &rest[..consumed]);
            rest = &rest[consumed..];
        }
        assert_decodes_sanely::<Frame<'_>>(&bytes)?;
        assert_decodes_sanely::<Name>(&bytes)?;
        assert_decodes_sanely::<Identify>(&bytes)?;
        assert_decodes_sanely::<NodeState>(&bytes)?;
        assert_decodes_sanely::<RoutingHeader>(&bytes)?;
        assert_decodes_sanely::<ConnectionHeader>(&bytes)?;
    }

    #[test]
    fn names_over_255_bytes_are_refused_not_truncated(extra in 1usize..300, c: char) {
        let mut s = String::new();
        while s.len() < MAX_NAME_LEN + extra {
            s.push(c);
        }
        let len = s.len();
        prop_assert_eq!(Name::new(s.clone()), Err(FrameError::NameTooLong { len }));
        prop_assert_eq!(Name::try_from(s.as_str()), Err(FrameError::NameTooLong { len }));
        prop_assert_eq!(s.parse::<Name>(), Err(FrameError::NameTooLong { len }));
    }
}

// ---------------------------------------------------------------------------
// Fixed cases.

#[test]
fn a_name_of_255_bytes_is_accepted_and_256_refused() {
    assert!(Name::new("x".repeat(255)).is_ok());
    assert_eq!(
        Name::new("x".repeat(256)),
        Err(FrameError::NameTooLong { len: 256 })
    );
    // 128 two-byte chars: 128 chars but 256 bytes.
    assert_eq!(
        Name::new("é".repeat(128)),
        Err(FrameError::NameTooLong { len: 256 })
    );
}

#[test]
fn a_name_that_is_not_utf8_is_invalid_utf8() {
    assert_eq!(Name::decode(&[2, 0xFF, 0xFE]), Err(FrameError::InvalidUtf8));
    // Half a multi-byte character.
    assert_eq!(Name::decode(&[1, 0xC3]), Err(FrameError::InvalidUtf8));
    // Inside every message that holds a name.
    assert_eq!(
        NodeState::decode(&[20, 1, 0x80]),
        Err(FrameError::InvalidUtf8)
    );
    assert_eq!(
        Identify::decode(&[0, 1, 0xFF]),
        Err(FrameError::InvalidUtf8)
    );
    assert_eq!(
        RoutingHeader::decode(&[1, b'b', 1, 0xFF]),
        Err(FrameError::InvalidUtf8)
    );
    // Until the name's bytes are all there, it is only incomplete.
    assert_eq!(
        Name::decode(&[3, 0xFF]),
        Ok(Decoded::Incomplete { needed: 4 })
    );
}

#[test]
fn offline_is_quality_byte_255() {
    let bytes = [255, 1, b'a'];
    let (state, used) = NodeState::decode(&bytes).unwrap().complete().unwrap();
    assert_eq!(used, 3);
    assert_eq!(
        state,
        NodeState::Offline {
            node: "a".parse().unwrap()
        }
    );
    assert_eq!(encode(&state), bytes);
}

#[test]
fn encoding_into_a_short_buffer_is_an_error_and_writes_nothing() {
    let frame = Frame::data(3, b"abc").unwrap();
    let mut out = [0u8; 8];
    assert_eq!(
        frame.encode(&mut out),
        Err(FrameError::BufferTooSmall {
            needed: 9,
            available: 8
        })
    );
    assert_eq!(out, [0; 8]);
}

/// Checks a close frame built from `epitaph`, which is over 65535 bytes:
/// the epitaph is cut to the longest prefix that fits and ends on a char
/// boundary, and survives the wire.
fn check_truncated_epitaph(epitaph: &str, expected_len: usize) {
    assert!(epitaph.len() > 65_535);
    let frame = Frame::close(9, epitaph);
    let Frame::Close { epitaph: cut, .. } = frame else {
        panic!("not a close frame")
    };
    assert_eq!(cut.len(), expected_len);
    let cut = std::str::from_utf8(cut).expect("cut on a char boundary");
    assert!(epitaph.starts_with(cut));
    // Nothing longer would have fitted.
    let next = epitaph[cut.len()..].chars().next().unwrap();
    assert!(cut.len() + next.len_utf8() > 65_535);

    let bytes = encode(&frame);
    assert_eq!(bytes.len(), 8 + expected_len);
    assert_eq!(&bytes[6..8], &(expected_len as u16).to_le_bytes());
    let (decoded, used) = Frame::decode(&bytes).unwrap().complete().unwrap();
    assert_eq!(used, bytes.len());
    assert_eq!(decoded.epitaph_lossy().as_deref(), Some(cut));
}

#[test]
fn a_70000_byte_epitaph_is_cut_at_a_char_boundary() {
    // Two-byte chars: 65535 is odd, so the cut falls back one byte.
    check_truncated_epitaph(&"é".repeat(35_000), 65_534);
    // Four-byte chars: 65532 is the last boundary.
    check_truncated_epitaph(&"𝄞".repeat(17_500), 65_532);
    // Three-byte chars after one ASCII byte: boundaries at 1 + 3k, so 65533.
    check_truncated_epitaph(&format!("a{}", "€".repeat(23_333)), 65_533);
    // A boundary exactly at the limit is kept whole.
    check_truncated_epitaph(&"€".repeat(23_334), 65_535);
}

#[test]
fn an_epitaph_of_exactly_65535_bytes_is_kept() {
    let epitaph = "z".repeat(65_535);
    let frame = Frame::close(1, &epitaph);
    assert_eq!(frame.epitaph_lossy().unwrap().len(), 65_535);
    assert_eq!(frame.encoded_len(), 8 + 65_535);
}

#[test]
fn the_smallest_frames() {
    // One data byte: 7 bytes on the wire.
    let data = Frame::data(0, b"x").unwrap();
    assert_eq!(encode(&data), [0, 0, 0, 0, 1, 0, b'x']);
    assert_eq!(data.encoded_len(), Frame::MIN_LEN);
    // A close without epitaph: 8 bytes.
    assert_eq!(
        encode(&Frame::close(0xFFFF_FFFF, "")),
        [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]
    );
    assert_eq!(Frame::decode(&[]), Ok(Decoded::Incomplete { needed: 6 }));
    // Close header seen, epitaph length not yet.
    assert_eq!(
        Frame::decode(&[0, 0, 0, 0, 0, 0, 5]),
        Ok(Decoded::Incomplete { needed: 8 })
    );
    assert_eq!(
        Frame::decode(&[0, 0, 0, 0, 0, 0, 5, 0]),
        Ok(Decoded::Incomplete { needed: 13 })
    );
}
