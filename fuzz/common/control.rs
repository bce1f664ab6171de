//! Link-control frames (PROTOCOL.md section 4) for the mux fuzz targets:
//! checking what a core sends on `0xFFFF_FFFF`, and a peer's negotiation.

// Each target uses only some of these.
#![allow(dead_code)]
use circuit_frame::{Decode, Decoded, Encode, Frame, LinkControl, LINK_CONTROL_ID};

/// The messages of a data frame on `0xFFFF_FFFF` a core sent: whole
/// `LinkControl` messages, or a panic.
pub fn messages(mut payload: &[u8]) -> Vec<LinkControl> {
    let mut out = Vec::new();
    while !payload.is_empty() {
        let Ok(Decoded::Complete { message, consumed }) = LinkControl::decode(payload) else {
            panic!("a link-control frame that is not whole messages: {payload:?}");
        };
        out.push(message);
        payload = &payload[consumed..];
    }
    out
}

/// Whether `bytes` are whole frames, each on `0xFFFF_FFFF` made of whole
/// link-control messages (checked with a panic).
pub fn well_framed(mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        match Frame::decode(bytes) {
            Ok(Decoded::Complete { message, consumed }) => {
                if let Frame::Data {
                    stream_id: LINK_CONTROL_ID,
                    payload,
                } = message
                {
                    messages(payload);
                }
                bytes = &bytes[consumed..];
            }
            _ => return false,
        }
    }
    true
}

/// Whether `bytes` (whole frames) carry our HELLO.
pub fn has_hello(mut bytes: &[u8]) -> bool {
    while let Ok(Decoded::Complete { message, consumed }) = Frame::decode(bytes) {
        if let Frame::Data {
            stream_id: LINK_CONTROL_ID,
            payload,
        } = message
        {
            if messages(payload).contains(&LinkControl::hello()) {
                return true;
            }
        }
        bytes = &bytes[consumed..];
    }
    false
}

/// The CREDIT bytes granted for `id` in `bytes` (whole frames).
pub fn granted(mut bytes: &[u8], id: u32) -> u64 {
    let mut sum = 0;
    while let Ok(Decoded::Complete { message, consumed }) = Frame::decode(bytes) {
        if let Frame::Data {
            stream_id: LINK_CONTROL_ID,
            payload,
        } = message
        {
            for m in messages(payload) {
                if let LinkControl::Credit { stream_id, bytes } = m {
                    if stream_id == id {
                        sum += u64::from(bytes);
                    }
                }
            }
        }
        bytes = &bytes[consumed..];
    }
    sum
}

/// A data frame on `0xFFFF_FFFF` carrying HELLO.
pub fn hello_frame(out: &mut Vec<u8>) {
    let mut payload = Vec::new();
    LinkControl::hello().encode_to_vec(&mut payload);
    Frame::data(LINK_CONTROL_ID, &payload)
        .expect("a short frame")
        .encode_to_vec(out);
}

/// The v0 answer to a server's HELLO: an empty close on `0xFFFF_FFFF`.
pub const V0_ANSWER: [u8; 8] = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];
