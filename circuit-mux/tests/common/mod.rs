//! Helpers shared by the mux tests.
#![allow(dead_code)]

use circuit_frame::{Decode, Decoded, Encode, Frame};
use circuit_mux::{Config, Incoming, Mux, MuxError, Role};
use futures::executor::ThreadPool;
use futures::task::SpawnExt;
use futures::FutureExt;

/// A data frame on the link-control stream carrying `messages`.
pub fn control(messages: &[circuit_frame::LinkControl]) -> Vec<u8> {
    let mut payload = Vec::new();
    for m in messages {
        m.encode_to_vec(&mut payload);
    }
    data(circuit_frame::LINK_CONTROL_ID, &payload)
}

/// A frame decoded from a link, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owned {
    Data(u32, Vec<u8>),
    Close(u32, String),
}

pub fn data(id: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    Frame::data(id, payload).unwrap().encode_to_vec(&mut v);
    v
}

pub fn close(id: u32, epitaph: &str) -> Vec<u8> {
    let mut v = Vec::new();
    Frame::close(id, epitaph).encode_to_vec(&mut v);
    v
}

/// Decodes every whole frame in `bytes`; panics on a partial one.
pub fn decode_all(bytes: &[u8]) -> Vec<Owned> {
    match try_decode_all(bytes) {
        Ok(frames) => frames,
        Err(needed) => panic!("partial frame, needs {needed}"),
    }
}

/// Decodes every frame in `bytes`, or says how many bytes the last,
/// partial one needs.
pub fn try_decode_all(mut bytes: &[u8]) -> Result<Vec<Owned>, usize> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        match Frame::decode(bytes).unwrap() {
            Decoded::Complete { message, consumed } => {
                out.push(match message {
                    Frame::Data { stream_id, payload } => Owned::Data(stream_id, payload.to_vec()),
                    Frame::Close { stream_id, epitaph } => {
                        Owned::Close(stream_id, String::from_utf8_lossy(epitaph).into_owned())
                    }
                });
                bytes = &bytes[consumed..];
            }
            Decoded::Incomplete { needed } => return Err(needed),
        }
    }
    Ok(out)
}

/// Two muxes linked in memory, their drivers spawned on `pool`.
pub struct Pair {
    pub a: Mux,
    pub a_incoming: Incoming,
    pub b: Mux,
    pub b_incoming: Incoming,
    pub a_done: futures::future::RemoteHandle<Result<(), MuxError>>,
    pub b_done: futures::future::RemoteHandle<Result<(), MuxError>>,
}

pub fn pool() -> ThreadPool {
    ThreadPool::builder().pool_size(2).create().unwrap()
}

/// `a` is the client (dialled), `b` the server.
pub fn pair(pool: &ThreadPool, a_config: Config, b_config: Config) -> Pair {
    let (a_io, b_io) = circuit_stream::duplex_pair(1 << 20);
    let (a, a_incoming, a_driver) = Mux::new(a_io, Role::Client, a_config.peer_name("b"));
    let (b, b_incoming, b_driver) = Mux::new(b_io, Role::Server, b_config.peer_name("a"));
    let (a_run, a_done) = a_driver.remote_handle();
    let (b_run, b_done) = b_driver.remote_handle();
    pool.spawn(a_run).unwrap();
    pool.spawn(b_run).unwrap();
    Pair {
        a,
        a_incoming,
        b,
        b_incoming,
        a_done,
        b_done,
    }
}

/// A deterministic byte pattern: byte `i` of stream `seed`.
pub fn pattern(seed: u64, offset: u64, out: &mut [u8]) {
    for (i, b) in out.iter_mut().enumerate() {
        let x = (offset + i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ seed.wrapping_mul(0xD6E8_FEB8_6659_FD93);
        *b = (x >> 56) as u8;
    }
}

/// Reads until the writer closes: the bytes and the epitaph.
pub async fn drain(reader: &circuit_stream::Reader) -> (Vec<u8>, Option<String>) {
    let mut out = Vec::new();
    loop {
        let got = reader
            .read(1, |b| {
                out.extend_from_slice(b);
                ((), b.len())
            })
            .await;
        match got {
            Ok(()) => {}
            Err(circuit_stream::StreamError::Closed(reason)) => return (out, reason),
            Err(e) => panic!("unexpected read error {e}"),
        }
    }
}

/// A [`circuit_mux::Sleeper`] whose sleeps end when the test ticks: each
/// tick ends one sleep, now or as soon as one is polled, so none is lost.
#[derive(Default, Clone)]
pub struct Ticks {
    state: std::sync::Arc<std::sync::Mutex<(u64, Vec<std::task::Waker>)>>,
}

impl Ticks {
    pub fn tick(&self) {
        let wakers = {
            let mut state = self.state.lock().unwrap();
            state.0 += 1;
            std::mem::take(&mut state.1)
        };
        wakers.into_iter().for_each(|w| w.wake());
    }
}

impl circuit_mux::Sleeper for Ticks {
    fn sleep(
        &self,
        _: std::time::Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        let ticks = self.clone();
        Box::pin(std::future::poll_fn(move |cx| {
            let mut state = ticks.state.lock().unwrap();
            if state.0 > 0 {
                state.0 -= 1;
                std::task::Poll::Ready(())
            } else {
                state.1.push(cx.waker().clone());
                std::task::Poll::Pending
            }
        }))
    }
}
