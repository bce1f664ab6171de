//! Credit flow control (PROTOCOL.md section 4): negotiation on the
//! link-control stream, per-stream credit both ways, grants, PING / PONG.
//!
//! The state of the link is [`LinkCredit`]; a stream under credit carries a
//! [`StreamCredit`]. Sending: a turn of a stream sends at most its credit,
//! and a stream with none is left out of the ready queue until a CREDIT
//! for it arrives. Receiving: a stream's incoming pipe can always hold what
//! was granted (its capacity follows its window), so the link is never
//! left unread for it; when the reader has taken a quarter of a window,
//! the stream's grant waker queues it and the next transmit sends a CREDIT
//! ahead of data, doubling the window first if the last grant was less than
//! two round trips ago (or the peer had used all its credit) and the
//! link's budget allows.

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use circuit_frame::{
    Decode, Decoded, Encode, Frame, LinkControl, DATA_HEADER_LEN, INITIAL_CREDIT, LINK_CONTROL_ID,
    MAX_PAYLOAD_LEN,
};
use circuit_stream::Writer;

use super::{Core, Recv};
use crate::counters::AtomicCounters;
use crate::ids::Role;
use crate::ready::StreamWaker;
use crate::{CreditMode, LinkMode, MuxError};

/// Credit is at most this much ahead: a grant past it is a protocol error.
const MAX_CREDIT: u64 = 1 << 31;
/// Room past a window in a stream's incoming pipe (a header read too
/// early and pushed back, say), so that delivery never has to wait.
const SINK_SLACK: usize = 4 << 10;
/// A window grows (if its reader waited for bytes) when its reader took a
/// grant's worth of it within two round trips of the last grant, or within
/// this, whichever is longer: on a link whose round trip is shorter than a
/// reader's read, a round trip alone would never let a window grow.
const QUICK_FLOOR: Duration = Duration::from_millis(2);
/// A stream's reader has taken this part of its window when a grant goes
/// (with half, a sender that is faster than the reader runs dry whenever a
/// grant takes longer to arrive than the reader takes to eat half a
/// window).
const GRANT_PART: u64 = 4;
/// A PING goes out with a grant at most this often.
const PING_EVERY: Duration = Duration::from_millis(250);

/// One stream's credit, both ways.
#[derive(Debug)]
pub(super) struct StreamCredit {
    /// Bytes this end may still send.
    send: u64,
    /// The stream's turn found bytes and no credit: it is out of the ready
    /// queue until a CREDIT comes.
    waiting: bool,
    /// Bytes the peer may send in all (what it was granted).
    limit: u64,
    /// Bytes the peer sent in all.
    received: u64,
    /// The receive window: what a grant tops the peer up to.
    window: u64,
    /// When the latest grant went out.
    last_grant: Option<Instant>,
    grant_waker: Arc<StreamWaker>,
}

impl StreamCredit {
    pub(super) fn new(id: u32, ready: &Arc<crate::ready::ReadyQueue>, sent: u64) -> Self {
        let initial = u64::from(INITIAL_CREDIT);
        StreamCredit {
            send: initial.saturating_sub(sent),
            waiting: false,
            limit: initial,
            received: 0,
            window: initial,
            last_grant: None,
            grant_waker: StreamWaker::for_grants(id, ready),
        }
    }

    /// What a turn of this stream may send.
    pub(super) fn send_credit(&self) -> u64 {
        self.send
    }
}

/// The credit state of the link.
#[derive(Debug)]
pub(super) struct LinkCredit {
    mode: CreditMode,
    /// Our HELLO is in the output: streams whose first frame follows it
    /// are under credit (until the peer turns out to be v0).
    hello_sent: bool,
    /// Our HELLO is to go out with the next control frame.
    hello_due: bool,
    /// The peer's HELLO arrived.
    peer_hello: bool,
    /// The peer answered our HELLO as v0: credit is off on this link.
    peer_v0: bool,
    /// Client: the server's first data frame has arrived.
    server_data_seen: bool,
    /// Client configured off: we answered the server's HELLO with a close
    /// and discard whatever else comes on the link-control stream.
    declined: bool,
    /// Answers to PINGs, in order.
    pongs: VecDeque<u64>,
    ping_due: bool,
    /// The PING in flight and when it went.
    ping: Option<(u64, Instant)>,
    last_ping: Option<Instant>,
    next_nonce: u64,
    rtt: Option<Duration>,
    /// The sum of the receive windows of streams under credit.
    windows: u64,
    /// Streams under credit waiting for it.
    waiting: u64,
    /// The time the driver last read.
    pub(super) now: Instant,
    /// The mode, once decided: credit, or v0 for the link's life.
    settled: Option<LinkMode>,
    /// A task waiting for it.
    settle_waker: Option<Waker>,
}

impl LinkCredit {
    pub(super) fn new(mode: CreditMode) -> Self {
        LinkCredit {
            mode,
            hello_sent: false,
            hello_due: false,
            peer_hello: false,
            peer_v0: false,
            server_data_seen: false,
            declined: false,
            pongs: VecDeque::new(),
            ping_due: false,
            ping: None,
            last_ping: None,
            next_nonce: 1,
            rtt: None,
            windows: 0,
            waiting: 0,
            now: Instant::now(),
            // Configured off: v0 from the start.
            settled: (mode == CreditMode::Off).then_some(LinkMode::V0),
            settle_waker: None,
        }
    }

    /// Whether a stream whose first frame goes out now is under credit.
    pub(super) fn on_open(&self) -> bool {
        self.hello_sent && !self.peer_v0
    }

    /// Whether a stream the peer opens now is under credit.
    fn on_peer_open(&self) -> bool {
        self.peer_hello
    }

    /// Drops every control message not sent yet (the link is over).
    pub(super) fn clear_output(&mut self) {
        self.settled.get_or_insert(LinkMode::V0);
        if let Some(waker) = self.settle_waker.take() {
            waker.wake();
        }
        self.hello_due = false;
        self.ping_due = false;
        self.pongs.clear();
    }

    fn has_output(&self) -> bool {
        self.hello_due || self.ping_due || !self.pongs.is_empty()
    }
}

impl Core {
    /// Sets the time the core measures round trips and window growth with
    /// (the driver sets it each time it runs).
    pub fn set_now(&mut self, now: Instant) {
        self.credit.now = now;
    }

    /// Whether the link runs in credit mode: both HELLOs have crossed.
    pub fn link_mode(&self) -> LinkMode {
        match self.credit.hello_sent && self.credit.peer_hello {
            true => LinkMode::Credit,
            false => LinkMode::V0,
        }
    }

    /// The link's mode once it is decided: [`LinkMode::Credit`] once both
    /// HELLOs have crossed (streams opened from then on run under credit),
    /// [`LinkMode::V0`] once it is known that they never will (this end or
    /// the peer is v0, or the link ended). `Pending` until then; `cx` is
    /// woken when it is decided.
    pub fn poll_mode_settled(&mut self, cx: &mut Context<'_>) -> Poll<LinkMode> {
        match self.credit.settled {
            Some(mode) => Poll::Ready(mode),
            None => {
                self.credit.settle_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// One keep-alive tick at `now`: fails if a PING has waited `timeout`
    /// or more for its PONG, else sends a PING with the next transmit if
    /// none is in flight. Does nothing on a link not in credit mode.
    pub fn keep_alive_tick(&mut self, now: Instant, timeout: Duration) -> Result<(), MuxError> {
        if self.link_mode() != LinkMode::Credit {
            return Ok(());
        }
        match self.credit.ping {
            Some((_, sent)) if now.saturating_duration_since(sent) >= timeout => {
                AtomicCounters::add(&self.counters.errors, 1);
                Err(MuxError::KeepAlive {
                    peer: self.config.peer_name.clone(),
                    timeout,
                })
            }
            Some(_) => Ok(()),
            None => {
                self.credit.now = now;
                self.start_ping();
                Ok(())
            }
        }
    }

    /// Decides the link's mode (the first decision stands) and wakes the
    /// task waiting for it.
    pub(super) fn settle(&mut self, mode: LinkMode) {
        if self.credit.settled.is_none() {
            self.credit.settled = Some(mode);
            if let Some(waker) = self.credit.settle_waker.take() {
                waker.wake();
            }
        }
    }

    fn control_error(&self, reason: impl Into<String>) -> MuxError {
        AtomicCounters::add(&self.counters.errors, 1);
        let reason = reason.into();
        tracing::warn!(%reason, "link-control error");
        MuxError::Control {
            peer: self.config.peer_name.clone(),
            reason,
        }
    }

    fn credit_required(&self) -> MuxError {
        AtomicCounters::add(&self.counters.errors, 1);
        MuxError::CreditRequired {
            peer: self.config.peer_name.clone(),
        }
    }

    /// Whether link-control frames wait to go out (they go ahead of data,
    /// so they go in the send queue before the next turn of any stream).
    pub(super) fn control_pending(&self) -> bool {
        !self.control.is_empty() || self.credit.has_output() || self.ready.grants_waiting()
    }

    /// Link-control messages may go ahead of data queued before them: our
    /// HELLO went into the output already (and none is due), so none of
    /// them can reach the peer before it.
    pub(super) fn control_may_jump(&self) -> bool {
        self.credit.hello_sent && !self.credit.hello_due
    }

    /// A server that offers credit has sent its first data frame and not
    /// yet its HELLO: data must go through [`Core::transmit`], which puts
    /// the HELLO right after that frame.
    pub(super) fn hello_follows_data(&self) -> bool {
        self.role == Role::Server && self.credit.mode != CreditMode::Off && !self.credit.hello_sent
    }

    /// Called by the transmit path after a data frame went into `out`: the
    /// server's first one is followed by its HELLO.
    pub(super) fn after_data_frame(&mut self, out: &mut Vec<u8>) {
        if self.hello_follows_data() {
            self.credit.hello_due = true;
            self.start_ping();
            self.push_link_control(out);
        }
    }

    /// Called at each frame header from the peer (not on the link-control
    /// stream): a client that requires credit fails once the server's
    /// first data frame was not followed by its HELLO.
    pub(super) fn check_peer_offer(&mut self, data: bool) -> Result<(), MuxError> {
        if self.role != Role::Client || self.credit.peer_hello {
            return Ok(());
        }
        if self.credit.server_data_seen {
            // The server's first data frame was not followed by its HELLO.
            if self.credit.mode == CreditMode::Required {
                return Err(self.credit_required());
            }
            self.settle(LinkMode::V0);
        }
        if data {
            self.credit.server_data_seen = true;
        }
        Ok(())
    }

    /// Appends the link-control frames due: our HELLO, PONGs, a PING,
    /// grants for streams whose reader took half a window.
    pub(super) fn push_link_control(&mut self, out: &mut Vec<u8>) {
        let mut frame = ControlFrame::default();
        if self.credit.hello_due {
            self.credit.hello_due = false;
            self.credit.hello_sent = true;
            frame.push(out, &LinkControl::hello());
            if self.credit.peer_hello {
                self.count_mode();
                self.settle(LinkMode::Credit);
            }
        }
        while let Some(nonce) = self.credit.pongs.pop_front() {
            frame.push(out, &LinkControl::Pong(nonce));
        }
        if self.credit.hello_sent {
            while let Some(waker) = self.ready.pop_grant() {
                if let Some(bytes) = self.grant(waker.id) {
                    frame.push(
                        out,
                        &LinkControl::Credit {
                            stream_id: waker.id,
                            bytes,
                        },
                    );
                }
            }
            let stale = self
                .credit
                .last_ping
                .is_none_or(|at| self.credit.now.duration_since(at) >= PING_EVERY);
            if self.credit.ping.is_none() && stale && frame.any() {
                self.start_ping();
            }
            if let (true, Some((nonce, _))) = (self.credit.ping_due, self.credit.ping) {
                self.credit.ping_due = false;
                frame.push(out, &LinkControl::Ping(nonce));
            }
        }
        let frames = frame.finish(out);
        AtomicCounters::add(&self.counters.frames_out, frames);
    }

    /// Queues a PING, in flight from now on (a round trip counts the time
    /// it waits to be sent).
    fn start_ping(&mut self) {
        let nonce = self.credit.next_nonce;
        self.credit.next_nonce += 1;
        self.credit.ping = Some((nonce, self.credit.now));
        self.credit.last_ping = Some(self.credit.now);
        self.credit.ping_due = true;
    }

    fn count_mode(&self) {
        self.counters
            .credit_mode
            .store(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// The grant for stream `id` now, if its reader has taken at least half
    /// a window since the last one; arms the stream's grant waker for the
    /// next.
    fn grant(&mut self, id: u32) -> Option<u32> {
        let budget = self.config.link_receive_limit as u64;
        let max_window = (self.config.stream_receive_limit as u64).max(u64::from(INITIAL_CREDIT));
        let now = self.credit.now;
        let quick_within = (2 * self.credit.rtt.unwrap_or_default()).max(QUICK_FLOOR);
        let pending = self.payload_pending(id);
        let st = self.streams.get_mut(&id)?;
        // A reader that is gone takes everything: what comes for it is
        // discarded (section 1's rule), and credited back so that the
        // peer's writer is never stuck on a stream nobody reads.
        if st.recv == Recv::Open && st.sink.as_ref().is_some_and(|s| s.is_closed()) {
            st.recv = Recv::Discarding;
            st.sink = None;
        }
        let c = st.credit.as_mut()?;
        let delivered = c.received - pending;
        let sink = match st.recv {
            Recv::Open => Some(st.sink.as_ref()?),
            Recv::Discarding => None,
            Recv::Closed => return None,
        };
        let consumed = match sink {
            Some(sink) => delivered - (sink.buffered() as u64).min(delivered),
            None => delivered,
        };
        if consumed + c.window - c.limit < c.window / GRANT_PART {
            if let Some(sink) = sink {
                arm(c, sink, pending);
            }
            return None;
        }
        // The window limits the stream, not the reader, when the reader
        // waited for bytes since the last grant and either it took a
        // grant's worth within two round trips of that grant (and never
        // less than QUICK_FLOOR) or the peer has sent all it may (it waits
        // for this grant). A reader that never waits is slower than the
        // bytes come: a larger window would only hold more of them
        // unread, in memory and out of the caches.
        let starved = c.received >= c.limit;
        let quick = sink.is_some_and(|sink| {
            (starved
                || c.last_grant
                    .is_some_and(|at| now.saturating_duration_since(at) < quick_within))
                && sink.take_reader_waited()
        });
        if let (true, Some(sink)) = (quick && c.window < max_window, sink) {
            let grown = (c.window * 2).min(max_window);
            if self.credit.windows + (grown - c.window) <= budget {
                self.credit.windows += grown - c.window;
                c.window = grown;
                sink.grow_capacity(grown as usize + SINK_SLACK);
            }
        }
        let bytes = consumed + c.window - c.limit;
        c.limit += bytes;
        self.ready.set_urgent(&c.grant_waker, false);
        c.last_grant = Some(now);
        if let Some(sink) = sink {
            arm(c, sink, pending);
        }
        AtomicCounters::add(&self.counters.bytes_granted, bytes);
        // At most a window, and windows are at most a `usize` config.
        Some(u32::try_from(bytes).unwrap_or(u32::MAX))
    }

    /// A stream the peer opens now: its credit, if it is under credit.
    pub(super) fn credit_for_incoming(&mut self, id: u32) -> Option<StreamCredit> {
        if !self.credit.on_peer_open() {
            return None;
        }
        self.credit.windows += u64::from(INITIAL_CREDIT);
        Some(StreamCredit::new(id, &self.ready, 0))
    }

    /// The capacity of the incoming pipe of a stream under credit.
    pub(super) fn credit_sink_capacity() -> usize {
        INITIAL_CREDIT as usize + SINK_SLACK
    }

    /// Called after the first frame of a stream of ours went out with
    /// `sent` payload bytes: from now on it is under credit if our HELLO
    /// went before it.
    pub(super) fn first_frame_sent(&mut self, id: u32, sent: u64) {
        if !self.credit.on_open() {
            return;
        }
        let Some(st) = self.streams.get_mut(&id) else {
            return;
        };
        if st.credit.is_none() {
            self.credit.windows += u64::from(INITIAL_CREDIT);
            if let Some(sink) = &st.sink {
                sink.grow_capacity(Core::credit_sink_capacity());
            }
            st.credit = Some(StreamCredit::new(id, &self.ready, sent));
        }
    }

    /// Spends `sent` bytes of stream `id`'s credit (a stream not under
    /// credit spends nothing).
    pub(super) fn spend(&mut self, id: u32, sent: u64) {
        if let Some(c) = self.streams.get_mut(&id).and_then(|st| st.credit.as_mut()) {
            c.send = c.send.saturating_sub(sent);
        }
    }

    /// A stream's turn found bytes to send and no credit.
    pub(super) fn wait_for_credit(&mut self, id: u32) {
        if let Some(c) = self.streams.get_mut(&id).and_then(|st| st.credit.as_mut()) {
            if !c.waiting {
                c.waiting = true;
                self.credit.waiting += 1;
                self.count_waiting();
            }
        }
    }

    fn count_waiting(&self) {
        self.counters
            .streams_waiting_for_credit
            .store(self.credit.waiting, std::sync::atomic::Ordering::Relaxed);
    }

    /// Forgets the credit of a stream that is gone.
    pub(super) fn drop_credit(&mut self, credit: Option<StreamCredit>) {
        if let Some(c) = credit {
            self.credit.windows = self.credit.windows.saturating_sub(c.window);
            if c.waiting {
                self.credit.waiting -= 1;
                self.count_waiting();
            }
        }
    }

    /// Checks a data frame of `len` bytes for stream `id` against what was
    /// granted, and counts it.
    pub(super) fn receive_credit(&mut self, id: u32, len: usize) -> Result<(), MuxError> {
        let Some(c) = self.streams.get_mut(&id).and_then(|st| st.credit.as_mut()) else {
            return Ok(());
        };
        c.received += len as u64;
        if c.received == c.limit {
            // The peer waits for a grant now: the next one wakes the driver
            // (one queued before this is sent as this poll transmits).
            self.ready.set_urgent(&c.grant_waker, true);
        }
        if c.received > c.limit {
            let (received, granted) = (c.received, c.limit);
            AtomicCounters::add(&self.counters.errors, 1);
            return Err(MuxError::FlowControl {
                stream_id: id,
                peer: self.config.peer_name.clone(),
                received,
                granted,
            });
        }
        Ok(())
    }

    /// After bytes of stream `id` were delivered: arms its grant waker.
    pub(super) fn arm_grant(&mut self, id: u32) {
        let pending = self.payload_pending(id);
        let Some(st) = self.streams.get_mut(&id) else {
            return;
        };
        let Some(c) = st.credit.as_mut() else {
            return;
        };
        match (st.recv, st.sink.as_ref()) {
            (Recv::Open, Some(sink)) => arm(c, sink, pending),
            // Discarded bytes are taken at once: grant when a grant's
            // worth of them came.
            (Recv::Discarding, _)
                if c.received - pending + c.window - c.limit >= c.window / GRANT_PART =>
            {
                Waker::from(Arc::clone(&c.grant_waker)).wake();
            }
            _ => {}
        }
    }

    /// Payload bytes of stream `id`'s frame in progress not delivered yet:
    /// counted as received (against the credit) but not in its pipe.
    fn payload_pending(&self, id: u32) -> u64 {
        self.in_frame
            .filter(|f| f.id == id)
            .map_or(0, |f| f.remaining as u64)
    }

    /// Whether stream `id` is under credit (its bytes never block the link).
    pub(super) fn under_credit(&self, id: u32) -> bool {
        self.streams.get(&id).is_some_and(|st| st.credit.is_some())
    }

    /// A whole data frame on the link-control stream.
    pub(super) fn on_control_data(&mut self, payload: &[u8]) -> Result<(), MuxError> {
        if self.credit.declined {
            return Ok(());
        }
        let mut rest = payload;
        let mut first = true;
        while !rest.is_empty() {
            let (message, used) = match LinkControl::decode(rest) {
                Ok(Decoded::Complete { message, consumed }) => (message, consumed),
                Ok(Decoded::Incomplete { .. }) => {
                    return Err(self.control_error("a link-control message cut by its frame"))
                }
                Err(e) => return Err(self.control_error(e.to_string())),
            };
            rest = &rest[used..];
            if !self.credit.peer_hello {
                self.before_peer_hello(&message, first)?;
                first = false;
                if self.credit.declined {
                    return Ok(());
                }
                continue;
            }
            first = false;
            match message {
                LinkControl::Hello { .. } => return Err(self.control_error("HELLO twice")),
                LinkControl::Credit { stream_id, bytes } => self.on_credit(stream_id, bytes)?,
                LinkControl::Ping(nonce) => self.credit.pongs.push_back(nonce),
                LinkControl::Pong(nonce) => self.on_pong(nonce),
            }
        }
        Ok(())
    }

    /// The first message from the peer on the link-control stream must be
    /// its HELLO, sent at its turn.
    fn before_peer_hello(&mut self, message: &LinkControl, first: bool) -> Result<(), MuxError> {
        let LinkControl::Hello { version, .. } = *message else {
            return Err(self.control_error(match first {
                true => "link-control messages before HELLO",
                false => "a link-control frame that does not start with HELLO",
            }));
        };
        if !first {
            return Err(self.control_error("HELLO after other link-control messages"));
        }
        if version == 0 {
            return Err(self.control_error("HELLO with version 0"));
        }
        match self.role {
            Role::Server if self.credit.mode == CreditMode::Off || !self.credit.hello_sent => {
                // A client never speaks first on the link-control stream.
                Err(self.control_error("HELLO from the client before the server's"))
            }
            Role::Server => {
                self.credit.peer_hello = true;
                self.count_mode();
                self.settle(LinkMode::Credit);
                Ok(())
            }
            Role::Client if self.credit.mode == CreditMode::Off => {
                // Answer as a v0 peer does: close the stream, carry on.
                self.credit.declined = true;
                self.control.push_back((LINK_CONTROL_ID, String::new()));
                Ok(())
            }
            Role::Client => {
                self.credit.peer_hello = true;
                self.credit.hello_due = true;
                self.start_ping();
                Ok(())
            }
        }
    }

    fn on_credit(&mut self, id: u32, bytes: u32) -> Result<(), MuxError> {
        let Some(st) = self.streams.get_mut(&id) else {
            // Closed or unknown: it may have crossed a close.
            return Ok(());
        };
        let Some(c) = st.credit.as_mut() else {
            return Ok(());
        };
        let credit = c.send + u64::from(bytes);
        if credit > MAX_CREDIT {
            return Err(self.control_error(format!(
                "a CREDIT takes stream {id} to {credit} bytes of credit, past 2^31"
            )));
        }
        c.send = credit;
        if c.waiting && bytes > 0 {
            c.waiting = false;
            self.ready.push_quiet(&st.waker);
            self.credit.waiting -= 1;
            self.count_waiting();
        }
        Ok(())
    }

    fn on_pong(&mut self, nonce: u64) {
        let Some((sent, at)) = self.credit.ping else {
            return;
        };
        if sent != nonce {
            return;
        }
        self.credit.ping = None;
        // Timed as it is read, not at the start of the driver's poll.
        let sample = Instant::now().saturating_duration_since(at);
        let rtt = match self.credit.rtt {
            Some(rtt) => (rtt * 7 + sample) / 8,
            None => sample,
        };
        self.credit.rtt = Some(rtt);
        self.counters.rtt_micros.store(
            u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX).max(1),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// A close frame on the link-control stream: the v0 answer to our
    /// HELLO, or an error.
    pub(super) fn on_control_close(&mut self) -> Result<(), MuxError> {
        let answer = self.role == Role::Server
            && self.credit.hello_sent
            && !self.credit.peer_hello
            && !self.credit.peer_v0;
        if !answer {
            return Err(self.control_error("a close of the link-control stream"));
        }
        if self.credit.mode == CreditMode::Required {
            return Err(self.credit_required());
        }
        tracing::debug!("the peer speaks v0: credit is off on this link");
        self.credit.peer_v0 = true;
        self.settle(LinkMode::V0);
        // Lift every limit applied meanwhile.
        let mut lifted = Vec::new();
        for st in self.streams.values_mut() {
            if let Some(c) = st.credit.take() {
                if c.waiting {
                    self.ready.push_quiet(&st.waker);
                }
                lifted.push(c);
            }
        }
        for c in lifted {
            self.drop_credit(Some(c));
        }
        Ok(())
    }

    /// Whether data on the link-control stream may be taken at all.
    pub(super) fn control_data_allowed(&self) -> Result<(), MuxError> {
        match (self.role, self.credit.mode) {
            (Role::Server, CreditMode::Off) => Err(MuxError::ModeMismatch {
                peer: self.config.peer_name.clone(),
            }),
            _ if self.credit.peer_v0 => Err(MuxError::ModeMismatch {
                peer: self.config.peer_name.clone(),
            }),
            _ => Ok(()),
        }
    }
}

/// Arms `c`'s grant waker on `sink`: it fires once the reader has taken
/// enough that a grant would be at least a `GRANT_PART` of a window.
fn arm(c: &mut StreamCredit, sink: &Writer, pending: u64) {
    // A grant of a GRANT_PART of a window needs
    // `consumed + window - limit >= window / GRANT_PART`, that is
    // `buffered <= delivered - (limit - window + window / GRANT_PART)`.
    let delivered = c.received - pending;
    let at = c.limit - c.window + c.window / GRANT_PART;
    let Some(keep) = delivered.checked_sub(at) else {
        // The peer has not sent enough yet: the next delivery arms again.
        return;
    };
    let Some(capacity) = sink.capacity() else {
        return;
    };
    let need = capacity.saturating_sub(keep as usize).max(1);
    let waker = Waker::from(Arc::clone(&c.grant_waker));
    let mut cx = Context::from_waker(&waker);
    if let Poll::Ready(Ok(())) = sink.poll_room(&mut cx, need) {
        waker.wake();
    }
}

/// A data frame on the link-control stream being filled with messages,
/// cut into several frames if it would pass 65,535 bytes.
#[derive(Default)]
struct ControlFrame {
    /// Where the current frame's header starts in `out`, if one is open.
    start: Option<usize>,
    frames: u64,
    any: bool,
}

impl ControlFrame {
    fn any(&self) -> bool {
        self.any
    }

    fn push(&mut self, out: &mut Vec<u8>, message: &LinkControl) {
        let len = message.encoded_len();
        if let Some(start) = self.start {
            if out.len() - start - DATA_HEADER_LEN + len > MAX_PAYLOAD_LEN {
                self.close(out);
            }
        }
        if self.start.is_none() {
            self.start = Some(out.len());
            out.extend_from_slice(&Frame::data_header(LINK_CONTROL_ID, 0));
        }
        message.encode_to_vec(out);
        self.any = true;
    }

    fn close(&mut self, out: &mut [u8]) {
        if let Some(start) = self.start.take() {
            let len = out.len() - start - DATA_HEADER_LEN;
            // At most MAX_PAYLOAD_LEN by `push`.
            out[start..start + DATA_HEADER_LEN]
                .copy_from_slice(&Frame::data_header(LINK_CONTROL_ID, len as u16));
            self.frames += 1;
        }
    }

    fn finish(mut self, out: &mut [u8]) -> u64 {
        self.close(out);
        self.frames
    }
}
