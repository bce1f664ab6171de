//! The credit extension (PROTOCOL.md section 4) of a mux `Core` driven from
//! the peer's side: link-control frames built from the input (HELLO with
//! any version and flags, CREDIT for the streams that exist, small ids or
//! any id with any amount, PING, PONG, raw bytes and unknown types),
//! closes of the link-control stream, data of any length on both parities
//! (past the credit too), and local opens, writes, reads and transmits.
//! A client core first sees the server's first data frame and its HELLO,
//! a server core first opens a stream and transmits (sending its HELLO),
//! unless the input says otherwise.
//!
//! - Nothing panics; a fatal error is one of the typed errors of receiving
//!   and ends the peer input. A `FlowControl` error names a stream under
//!   credit, the bytes the core granted on it (65,536 and its CREDITs on
//!   the wire) and more bytes than that, at most what the peer sent.
//! - Every transmit is well framed; data on `0xFFFF_FFFF` is whole
//!   `LinkControl` messages; the core sends one HELLO, a server right after
//!   its first data frame, a client only after the server spoke, and none
//!   when configured off.
//! - If the link ends in credit mode, each stream under credit (ours whose
//!   first frame followed our HELLO; the peer's whose first frame followed
//!   the peer's HELLO) carries at most 65,536 bytes plus what the peer
//!   granted it.
//! - After `close_all` no stream is open and nothing is sent.
#![no_main]

use std::collections::{HashMap, HashSet};
use std::task::Context;
use std::time::{Duration, Instant};

use circuit_frame::{Decode, Decoded, Encode, Frame, LinkControl, INITIAL_CREDIT, LINK_CONTROL_ID};
use circuit_mux::{Config, Core, CreditMode, LinkMode, MuxError, Role};
use circuit_stream::{Reader, Writer};
use futures::task::noop_waker_ref;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

const SEND_BUFFER: usize = 128 * 1024;

/// One message of a link-control frame from the peer.
#[derive(Debug)]
enum Msg {
    Hello {
        version: u8,
        flags: u8,
    },
    /// A CREDIT for the stream `pick` chooses among ours and the peer's.
    CreditOpen {
        pick: u8,
        bytes: u32,
    },
    Credit {
        stream_id: u32,
        bytes: u32,
    },
    Ping(u64),
    Pong(u64),
    /// A PONG for the core's latest PING.
    PongLast,
    /// Bytes as they come: unknown types, cut messages.
    Raw(Vec<u8>),
}

#[derive(Debug)]
enum Op {
    Control(Vec<Msg>),
    ControlClose,
    PeerData { id: u32, len: u16 },
    PeerClose { id: u32 },
    Open,
    Write { stream: u8, len: u16 },
    Close { stream: u8 },
    Read { stream: u8 },
    DropReader { stream: u8 },
    Accept,
    Transmit { limit: u16 },
    Tick { ms: u16 },
}

fn amount(u: &mut Unstructured<'_>) -> Result<u32> {
    Ok(match u.int_in_range(0u8..=5)? {
        0 => u32::from(u.arbitrary::<u8>()?),
        1 | 2 => u32::from(u.arbitrary::<u16>()?),
        3 => INITIAL_CREDIT,
        4 => 1 << 31,
        _ => u.arbitrary()?,
    })
}

impl Msg {
    fn parse(u: &mut Unstructured<'_>) -> Result<Msg> {
        // HELLO seldom: a second one ends the link.
        Ok(match u.int_in_range(0u8..=15)? {
            0 => Msg::Hello {
                version: u.arbitrary()?,
                flags: u.arbitrary()?,
            },
            1 => Msg::Hello {
                version: 1,
                flags: u.arbitrary()?,
            },
            2..=7 => Msg::CreditOpen {
                pick: u.arbitrary()?,
                bytes: amount(u)?,
            },
            8 | 9 => Msg::Credit {
                stream_id: match u.arbitrary()? {
                    true => u.int_in_range(0..=24)?,
                    false => u.arbitrary()?,
                },
                bytes: amount(u)?,
            },
            10 => Msg::Ping(u.arbitrary()?),
            11 => Msg::Pong(u.arbitrary()?),
            12 | 13 => Msg::PongLast,
            _ => {
                let len = u.int_in_range(0..=12)?;
                Msg::Raw(u.bytes(len)?.to_vec())
            }
        })
    }
}

impl Op {
    fn parse(u: &mut Unstructured<'_>) -> Result<Op> {
        Ok(match u.int_in_range(0u8..=14)? {
            0 | 1 => {
                let n = u.int_in_range(1..=6)?;
                let mut messages = Vec::with_capacity(n);
                for _ in 0..n {
                    messages.push(Msg::parse(u)?);
                }
                Op::Control(messages)
            }
            2 => Op::ControlClose,
            // Few ids and often full frames, to pass a stream's credit.
            3 | 4 => Op::PeerData {
                id: match u.arbitrary()? {
                    true => u.int_in_range(0..=7)?,
                    false => u.int_in_range(0..=24)?,
                },
                len: match u.arbitrary()? {
                    true => u16::MAX,
                    false => u.arbitrary()?,
                },
            },
            5 => Op::PeerClose {
                id: u.int_in_range(0..=24)?,
            },
            6 => Op::Open,
            7 | 8 => Op::Write {
                stream: u.arbitrary()?,
                len: u.arbitrary()?,
            },
            9 => Op::Close {
                stream: u.arbitrary()?,
            },
            10 => Op::Read {
                stream: u.arbitrary()?,
            },
            11 => Op::DropReader {
                stream: u.arbitrary()?,
            },
            12 => Op::Accept,
            13 => Op::Transmit {
                limit: u.arbitrary()?,
            },
            _ => Op::Tick { ms: u.arbitrary()? },
        })
    }
}

/// One stream as the application holds it.
struct Local {
    id: u32,
    reader: Option<Reader>,
    writer: Option<Writer>,
}

/// What the core put on the wire so far.
#[derive(Default)]
struct Wire {
    frames: usize,
    data_frames: usize,
    /// The frame index of our first data frame.
    first_data: Option<usize>,
    /// The frame index of our HELLO.
    hello: Option<usize>,
    /// Per stream: whether its first frame followed our HELLO.
    first_after_hello: HashMap<u32, bool>,
    /// Payload bytes sent per stream.
    sent: HashMap<u32, u64>,
    /// CREDIT the core granted per stream.
    granted: HashMap<u32, u64>,
    last_ping: Option<u64>,
    control_close: bool,
}

impl Wire {
    /// Takes the bytes of one transmit: whole frames, with whole
    /// link-control messages on `0xFFFF_FFFF`.
    fn take(&mut self, mut bytes: &[u8], role: Role, mode: CreditMode, peer_spoke: bool) {
        while !bytes.is_empty() {
            let Ok(Decoded::Complete { message, consumed }) = Frame::decode(bytes) else {
                panic!("a transmit that is not whole frames");
            };
            bytes = &bytes[consumed..];
            match message {
                Frame::Data {
                    stream_id: LINK_CONTROL_ID,
                    payload,
                } => {
                    assert_ne!(mode, CreditMode::Off, "link control from a core set off");
                    if role == Role::Client {
                        assert!(peer_spoke, "the client spoke first on 0xFFFF_FFFF");
                    }
                    let mut rest = payload;
                    while !rest.is_empty() {
                        let Ok(Decoded::Complete { message, consumed }) = LinkControl::decode(rest)
                        else {
                            panic!("a link-control frame that is not whole messages");
                        };
                        rest = &rest[consumed..];
                        match message {
                            LinkControl::Hello { .. } => {
                                assert_eq!(message, LinkControl::hello());
                                assert!(self.hello.is_none(), "two HELLOs");
                                if role == Role::Server {
                                    assert_eq!(
                                        (self.data_frames, self.first_data),
                                        (1, self.frames.checked_sub(1)),
                                        "the server's HELLO is not right after its first data frame"
                                    );
                                }
                                self.hello = Some(self.frames);
                            }
                            LinkControl::Credit { stream_id, bytes } => {
                                assert!(self.hello.is_some(), "CREDIT before our HELLO");
                                *self.granted.entry(stream_id).or_default() += u64::from(bytes);
                            }
                            LinkControl::Ping(nonce) => {
                                assert!(self.hello.is_some(), "PING before our HELLO");
                                self.last_ping = Some(nonce);
                            }
                            LinkControl::Pong(_) => {}
                        }
                    }
                }
                Frame::Close {
                    stream_id: LINK_CONTROL_ID,
                    ..
                } => {
                    assert_eq!(role, Role::Client, "a server closed 0xFFFF_FFFF");
                    assert_eq!(mode, CreditMode::Off, "only a client set off declines");
                    assert!(!self.control_close, "two closes of 0xFFFF_FFFF");
                    self.control_close = true;
                }
                Frame::Data { stream_id, payload } => {
                    self.first(stream_id);
                    if self.data_frames == 0 {
                        self.first_data = Some(self.frames);
                    }
                    self.data_frames += 1;
                    *self.sent.entry(stream_id).or_default() += payload.len() as u64;
                }
                Frame::Close { stream_id, .. } => self.first(stream_id),
            }
            self.frames += 1;
        }
    }

    fn first(&mut self, id: u32) {
        let after = self.hello.is_some();
        self.first_after_hello.entry(id).or_insert(after);
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(control) = u.arbitrary::<u8>() else {
        return;
    };
    let role = match control & 1 {
        0 => Role::Client,
        _ => Role::Server,
    };
    let mode = match (control >> 1) & 3 {
        0 => CreditMode::Off,
        1 => CreditMode::Required,
        _ => CreditMode::Auto,
    };
    let prologue = control & 0x08 == 0;
    let stream_limit = [4096, 65_536, 200_000, 1 << 20][usize::from((control >> 4) & 3)];
    let link_limit = [65_536, 300_000][usize::from(control >> 6 & 1)];
    let config = Config::default()
        .credit(mode)
        .stream_send_buffer(SEND_BUFFER)
        .stream_receive_limit(stream_limit)
        .link_receive_limit(link_limit)
        .max_incoming_streams(6)
        .max_closed_id_ranges(6);
    let mut h = Harness {
        role,
        mode,
        core: Core::new(role, config),
        base: Instant::now(),
        elapsed: Duration::ZERO,
        locals: Vec::new(),
        wire: Wire::default(),
        peer_input: Vec::new(),
        peer_spoke: false,
        peer_control_data: false,
        incoming_credit: HashMap::new(),
        reused: HashSet::new(),
        peer_closed: HashSet::new(),
        peer_sent: HashMap::new(),
        harness_granted: HashMap::new(),
        dead: false,
    };
    h.core.set_now(h.base);
    if prologue {
        match role {
            Role::Client => {
                h.peer_data(1, 5);
                h.peer_control(&[Msg::Hello {
                    version: 1,
                    flags: 0,
                }]);
            }
            Role::Server => {
                h.open();
                h.write(0, 100);
                h.transmit(usize::MAX);
            }
        }
    }
    while !u.is_empty() && !h.dead {
        let Ok(op) = Op::parse(&mut u) else {
            break;
        };
        match op {
            Op::Control(messages) => h.peer_control(&messages),
            Op::ControlClose => {
                Frame::close(LINK_CONTROL_ID, "").encode_to_vec(&mut h.peer_input);
                h.peer_spoke = true;
                h.receive();
            }
            Op::PeerData { id, len } => h.peer_data(id, len),
            Op::PeerClose { id } => {
                Frame::close(id, "peer").encode_to_vec(&mut h.peer_input);
                h.peer_closed.insert(id);
                h.receive();
            }
            Op::Open => h.open(),
            Op::Write { stream, len } => h.write(stream, len),
            Op::Close { stream } => {
                if let Some(l) = pick(&mut h.locals, stream) {
                    l.writer = None;
                }
            }
            Op::Read { stream } => {
                if let Some(l) = pick(&mut h.locals, stream) {
                    if let Some(r) = &l.reader {
                        let _ = r.try_read_with(0, |b| ((), b.len()));
                    }
                }
            }
            Op::DropReader { stream } => {
                if let Some(l) = pick(&mut h.locals, stream) {
                    l.reader = None;
                }
            }
            Op::Accept => h.accept(),
            Op::Transmit { limit } => h.transmit(usize::from(limit)),
            Op::Tick { ms } => {
                h.elapsed += Duration::from_millis(u64::from(ms));
                h.core.set_now(h.base + h.elapsed);
            }
        }
        let c = h.core.counters();
        assert_eq!(c.streams_open, h.core.streams_open() as u64);
    }
    h.transmit(usize::MAX);
    h.check_credit();
    h.core.close_all("end of fuzz input");
    assert_eq!(h.core.streams_open(), 0);
    assert_eq!(h.core.counters().streams_open, 0);
    let mut out = Vec::new();
    h.core.transmit(&mut out, usize::MAX);
    assert!(out.is_empty(), "a closed core sends nothing");
});

struct Harness {
    role: Role,
    mode: CreditMode,
    core: Core,
    base: Instant,
    elapsed: Duration,
    locals: Vec<Local>,
    wire: Wire,
    /// Peer bytes not consumed yet (whole frames, in order).
    peer_input: Vec<u8>,
    /// The peer sent something on `0xFFFF_FFFF`.
    peer_spoke: bool,
    /// The peer sent a data frame on `0xFFFF_FFFF` (the first one is the
    /// HELLO the core took, if the link ends in credit mode).
    peer_control_data: bool,
    /// Per id the peer opened: whether its first frame followed the peer's
    /// first link-control data frame.
    incoming_credit: HashMap<u32, bool>,
    /// Ids the peer sent data on after closing them: not checked.
    reused: HashSet<u32>,
    peer_closed: HashSet<u32>,
    /// Payload bytes the peer sent per id.
    peer_sent: HashMap<u32, u64>,
    /// CREDIT the peer granted per id (every CREDIT it sent: an upper
    /// bound of what the core took).
    harness_granted: HashMap<u32, u64>,
    dead: bool,
}

impl Harness {
    fn peer_data(&mut self, id: u32, len: u16) {
        let len = usize::from(len).max(1);
        let payload = vec![id as u8; len];
        let Ok(frame) = Frame::data(id, &payload) else {
            return;
        };
        frame.encode_to_vec(&mut self.peer_input);
        if self.peer_closed.contains(&id) {
            self.reused.insert(id);
        }
        if !self.role.opens(id) {
            let after = self.peer_control_data;
            self.incoming_credit.entry(id).or_insert(after);
        }
        *self.peer_sent.entry(id).or_default() += len as u64;
        self.receive();
    }

    fn peer_control(&mut self, messages: &[Msg]) {
        let mut payload = Vec::new();
        for m in messages {
            let message = match *m {
                Msg::Hello { version, flags } => LinkControl::Hello { version, flags },
                Msg::CreditOpen { pick, bytes } => {
                    let ids: Vec<u32> = self.locals.iter().map(|l| l.id).collect();
                    let stream_id = match ids.len() {
                        0 => 0,
                        n => ids[usize::from(pick) % n],
                    };
                    LinkControl::Credit { stream_id, bytes }
                }
                Msg::Credit { stream_id, bytes } => LinkControl::Credit { stream_id, bytes },
                Msg::Ping(nonce) => LinkControl::Ping(nonce),
                Msg::Pong(nonce) => LinkControl::Pong(nonce),
                Msg::PongLast => LinkControl::Pong(self.wire.last_ping.unwrap_or(0)),
                Msg::Raw(ref bytes) => {
                    payload.extend_from_slice(bytes);
                    continue;
                }
            };
            if let LinkControl::Credit { stream_id, bytes } = message {
                *self.harness_granted.entry(stream_id).or_default() += u64::from(bytes);
            }
            message.encode_to_vec(&mut payload);
        }
        // An empty data frame would be a close frame.
        let Ok(frame) = Frame::data(LINK_CONTROL_ID, &payload) else {
            return;
        };
        if payload.is_empty() {
            return;
        }
        frame.encode_to_vec(&mut self.peer_input);
        self.peer_spoke = true;
        self.peer_control_data = true;
        self.receive();
    }

    fn receive(&mut self) {
        if self.dead || self.peer_input.is_empty() {
            return;
        }
        let mut cx = Context::from_waker(noop_waker_ref());
        match self.core.receive(&self.peer_input, &mut cx) {
            Ok(p) => {
                assert!(p.consumed <= self.peer_input.len());
                self.peer_input.drain(..p.consumed);
            }
            Err(e) => {
                self.on_error(e);
                self.dead = true;
                self.peer_input.clear();
            }
        }
    }

    fn on_error(&self, e: MuxError) {
        match e {
            MuxError::FlowControl {
                stream_id,
                received,
                granted,
                ..
            } => {
                assert!(received > granted, "{e}");
                let sent = self.peer_sent.get(&stream_id).copied().unwrap_or(0);
                assert!(received <= sent, "{e}: the peer sent {sent}");
                if self.reused.contains(&stream_id) {
                    return;
                }
                let core_granted = self.wire.granted.get(&stream_id).copied().unwrap_or(0);
                assert_eq!(
                    granted,
                    u64::from(INITIAL_CREDIT) + core_granted,
                    "{e}: the core's CREDITs on the wire for it"
                );
                let under_credit = match self.role.opens(stream_id) {
                    true => self.wire.first_after_hello.get(&stream_id).copied(),
                    false => self.incoming_credit.get(&stream_id).copied(),
                };
                assert_eq!(under_credit, Some(true), "{e}: not a stream under credit");
            }
            MuxError::BadStreamId { .. }
            | MuxError::Frame { .. }
            | MuxError::ModeMismatch { .. }
            | MuxError::Control { .. }
            | MuxError::CreditRequired { .. } => {}
            other => panic!("receive failed with {other:?}"),
        }
    }

    fn open(&mut self) {
        let (source, writer) = circuit_stream::stream_with_capacity(SEND_BUFFER);
        let (reader, sink) = circuit_stream::stream_unbounded();
        if let Ok(id) = self.core.attach(source, sink) {
            assert!(self.role.opens(id));
            self.locals.push(Local {
                id,
                reader: Some(reader),
                writer: Some(writer),
            });
        }
    }

    fn write(&mut self, stream: u8, len: u16) {
        if let Some(l) = pick(&mut self.locals, stream) {
            if let Some(w) = &l.writer {
                let bytes = vec![l.id as u8; usize::from(len).max(1)];
                let _ = w.try_write(&bytes);
            }
        }
    }

    fn accept(&mut self) {
        while let Some(s) = self.core.accept() {
            let id = s.id();
            assert!(!self.role.opens(id));
            let (reader, writer) = s.into_split();
            self.locals.push(Local {
                id,
                reader: Some(reader),
                writer: Some(writer),
            });
        }
    }

    fn transmit(&mut self, limit: usize) {
        let mut out = Vec::new();
        self.core.transmit(&mut out, limit);
        self.wire.take(&out, self.role, self.mode, self.peer_spoke);
        // The core may answer what it just sent room for (a refusal).
        self.receive();
    }

    /// Streams under credit sent at most 65,536 bytes plus their grants.
    fn check_credit(&self) {
        if self.core.link_mode() != LinkMode::Credit {
            return;
        }
        assert!(self.wire.hello.is_some(), "credit mode without our HELLO");
        for (&id, &sent) in &self.wire.sent {
            let under_credit = match self.role.opens(id) {
                true => self.wire.first_after_hello.get(&id).copied(),
                false if self.reused.contains(&id) => None,
                false => self.incoming_credit.get(&id).copied(),
            };
            if under_credit != Some(true) {
                continue;
            }
            let granted = self.harness_granted.get(&id).copied().unwrap_or(0);
            assert!(
                sent <= u64::from(INITIAL_CREDIT) + granted,
                "stream {id} sent {sent} bytes with {granted} granted past the initial credit"
            );
        }
    }
}

fn pick(locals: &mut [Local], i: u8) -> Option<&mut Local> {
    let n = locals.len();
    match n {
        0 => None,
        _ => locals.get_mut(usize::from(i) % n),
    }
}
