//! Forward reports (PROTOCOL 2.4): a node passes epitaphs on unchanged and
//! says beside them, as typed values, which hop closed each stream it
//! forwards or refuses.
//!
//! Nothing here runs per stream unless someone listens: a subscription
//! ([`Node::forward_reports`](crate::Node::forward_reports)) or a `tracing`
//! subscriber with `DEBUG` enabled for this module. Then each forwarded
//! stream gets a small shared context and one mux observer per side; the
//! observers run inside the two links' muxes as they close the stream's
//! directions, with no task and no copy of the stream's bytes.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use circuit_frame::Name;
use circuit_mux::{CloseCause, CloseDirection, StreamClose, StreamObserver};
use futures::Stream;

use crate::routing::LinkId;
use crate::sync::lock;

/// One end of a stream a node forwarded or refused: a close that went
/// through this node, in one direction, and who closed it.
///
/// Made by the node at `at` each time a direction of a forwarded stream
/// carries a close on, and once for a stream it refused. The epitaph is
/// the one the close carries on, unchanged (this node adds nothing to it).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ForwardEnd {
    /// The node that reports: this node.
    pub at: Name,
    /// The stream's destination as its routing header says; `None` when
    /// the header could not be read ([`LocalReason::BadHeader`]).
    pub destination: Option<Name>,
    /// The stream's source as its routing header says (not
    /// authenticated), when it could be read: a router reads it only while
    /// reports are wanted (it forwards on the destination alone).
    pub source: Option<Name>,
    /// Which way the close went on.
    pub toward: Toward,
    /// Who closed that direction.
    pub closed_by: ClosedBy,
    /// The epitaph the close carries on, unchanged (`None`: none).
    pub epitaph: Option<String>,
    /// The stream as it came in: from the neighbour that opened it to this
    /// node.
    pub inbound: Hop,
    /// The stream as this node forwarded it to the next hop; `None` for a
    /// refused stream.
    pub outbound: Option<Hop>,
}

/// Which way a close went on, along the stream's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Toward {
    /// Towards the destination: the opener's direction ended.
    Destination,
    /// Back towards the source (the stream's opener): the destination's
    /// direction ended, or this node refused or cut the stream.
    Source,
}

/// Who closed a direction of a forwarded stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClosedBy {
    /// The close came in from this neighbour, as a close frame on its link
    /// (the neighbour may itself have forwarded it: its own report says
    /// from where).
    Neighbour(Name),
    /// This node closed it.
    ThisNode(LocalReason),
}

/// Why a node closed a direction of a stream it forwards itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LocalReason {
    /// No route to the destination (PROTOCOL 2.4): the stream was refused.
    NoRoute,
    /// The routing header was malformed: the stream was refused.
    BadHeader,
    /// The link to `peer` ended with the stream open; the close carries
    /// the link's epitaph on to the other side.
    LinkEnded {
        /// The link that ended.
        link: LinkId,
        /// The neighbour at its other end.
        peer: Name,
    },
    /// The streams of the link to `peer` were cut
    /// ([`LinkControl::close_streams`](crate::LinkControl::close_streams)
    /// or [`LinkControl::close`](crate::LinkControl::close)); the close
    /// carries the epitaph given there.
    StreamsClosed {
        /// The link whose streams were cut.
        link: LinkId,
        /// The neighbour at its other end.
        peer: Name,
    },
}

/// One side of a forwarded stream: a neighbour, the link to it, and the
/// stream's id on that link.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Hop {
    /// The neighbour.
    pub peer: Name,
    /// The link to it, as in the node's snapshot.
    pub link: LinkId,
    /// The stream's id on that link (link-local).
    pub stream_id: u32,
}

impl fmt::Display for ClosedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClosedBy::Neighbour(peer) => write!(f, "neighbour {peer}"),
            ClosedBy::ThisNode(reason) => write!(f, "this node: {reason}"),
        }
    }
}

impl fmt::Display for LocalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LocalReason::NoRoute => f.write_str("no route"),
            LocalReason::BadHeader => f.write_str("malformed header"),
            LocalReason::LinkEnded { link, peer } => write!(f, "{link} to {peer} ended"),
            LocalReason::StreamsClosed { link, peer } => {
                write!(f, "streams of {link} to {peer} closed")
            }
        }
    }
}

impl fmt::Display for ForwardEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = |n: &Option<Name>| n.as_ref().map_or("?", Name::as_str).to_owned();
        write!(
            f,
            "{}: stream {} -> {} ({} #{}",
            self.at,
            name(&self.source),
            name(&self.destination),
            self.inbound.peer,
            self.inbound.stream_id
        )?;
        if let Some(out) = &self.outbound {
            write!(f, " => {} #{}", out.peer, out.stream_id)?;
        }
        let toward = match self.toward {
            Toward::Destination => "destination",
            Toward::Source => "source",
        };
        write!(f, ") closed towards the {toward} by {}", self.closed_by)?;
        match &self.epitaph {
            Some(e) => write!(f, ": {e:?}"),
            None => Ok(()),
        }
    }
}

/// The node's forward reports: whether anyone listens, the bounded queue
/// of a subscription, and what was dropped. Its lock is taken inside a
/// mux's lock and nothing is locked under it (the lock order is in
/// `crate::sync`).
pub(crate) struct Reports {
    at: Name,
    bound: usize,
    /// A subscription is open (read without the lock on the hot path).
    subscribed: AtomicBool,
    dropped: AtomicU64,
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    /// The open subscription's number; older handles end.
    current: u64,
    reports: VecDeque<ForwardEnd>,
    waker: Option<Waker>,
}

impl Reports {
    pub(crate) fn new(at: Name, bound: usize) -> Self {
        Reports {
            at,
            bound: bound.max(1),
            subscribed: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            queue: Mutex::new(Queue::default()),
        }
    }

    /// Whether a forwarded stream should be watched: someone subscribed,
    /// or `DEBUG` events of this module are on.
    pub(crate) fn wanted(&self) -> bool {
        self.subscribed.load(Ordering::Relaxed) || tracing::enabled!(tracing::Level::DEBUG)
    }

    /// Reports dropped because the subscription's queue was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Logs `end` and queues it for the subscription, if any.
    pub(crate) fn emit(&self, end: ForwardEnd) {
        tracing::debug!(
            at = %end.at,
            destination = end.destination.as_ref().map(Name::as_str),
            source = end.source.as_ref().map(Name::as_str),
            toward = ?end.toward,
            closed_by = %end.closed_by,
            epitaph = end.epitaph.as_deref(),
            in_peer = %end.inbound.peer,
            in_stream = end.inbound.stream_id,
            out_peer = end.outbound.as_ref().map(|h| h.peer.as_str()),
            out_stream = end.outbound.as_ref().map(|h| h.stream_id),
            "forwarded stream closed"
        );
        if !self.subscribed.load(Ordering::Relaxed) {
            return;
        }
        let waker = {
            let mut queue = lock(&self.queue);
            if queue.reports.len() >= self.bound {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            queue.reports.push_back(end);
            queue.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Opens a subscription, ending the previous one.
    pub(crate) fn subscribe(self: &Arc<Self>) -> ForwardReports {
        let (number, old) = {
            let mut queue = lock(&self.queue);
            queue.current = queue.current.wrapping_add(1);
            queue.reports.clear();
            self.subscribed.store(true, Ordering::Relaxed);
            (queue.current, queue.waker.take())
        };
        if let Some(w) = old {
            w.wake();
        }
        ForwardReports {
            reports: Arc::clone(self),
            number,
        }
    }

    /// A report made here, now (a refusal).
    pub(crate) fn refused(
        &self,
        destination: Option<Name>,
        source: Option<Name>,
        reason: LocalReason,
        epitaph: String,
        inbound: Hop,
    ) {
        self.emit(ForwardEnd {
            at: self.at.clone(),
            destination,
            source,
            toward: Toward::Source,
            closed_by: ClosedBy::ThisNode(reason),
            epitaph: Some(epitaph).filter(|e| !e.is_empty()),
            inbound,
            outbound: None,
        });
    }
}

/// The reports of a node on the streams it forwards and refuses, as a
/// futures `Stream` of [`ForwardEnd`]s, oldest first. Made by
/// [`Node::forward_reports`](crate::Node::forward_reports).
///
/// Bounded: at most [`NodeConfig::forward_report_queue`](crate::NodeConfig::forward_report_queue)
/// reports wait unread; past that new ones are dropped and counted in the
/// snapshot's `forward_reports_dropped`. It ends when another subscription
/// is opened on the node; otherwise it never ends on its own. Dropping it
/// stops the reports (streams forwarded while it was open are still
/// watched, but report nothing more).
pub struct ForwardReports {
    reports: Arc<Reports>,
    number: u64,
}

impl Stream for ForwardReports {
    type Item = ForwardEnd;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ForwardEnd>> {
        let mut queue = lock(&self.reports.queue);
        if queue.current != self.number {
            return Poll::Ready(None);
        }
        match queue.reports.pop_front() {
            Some(end) => Poll::Ready(Some(end)),
            None => {
                queue.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Drop for ForwardReports {
    fn drop(&mut self) {
        let mut queue = lock(&self.reports.queue);
        if queue.current == self.number {
            self.reports.subscribed.store(false, Ordering::Relaxed);
            queue.reports = VecDeque::new();
            queue.waker = None;
        }
    }
}

impl fmt::Debug for ForwardReports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForwardReports")
            .field("node", &self.reports.at)
            .finish_non_exhaustive()
    }
}

/// Which side of the forwarding node a mux observer sits on.
#[derive(Clone, Copy)]
enum Side {
    /// The link the stream came in on.
    In,
    /// The link it was forwarded onto.
    Out,
}

/// One forwarded stream, while reports are wanted: what its reports say,
/// shared by the observers on its two links.
pub(crate) struct Forwarded {
    reports: Arc<Reports>,
    destination: Name,
    source: Option<Name>,
    inbound: Hop,
    outbound: Mutex<Outbound>,
}

enum Outbound {
    /// Not spliced yet: closes seen meanwhile wait (the link futures and
    /// `close_streams` may run on other threads).
    Attaching(Vec<(Toward, ClosedBy, Option<String>)>),
    Attached(Hop),
    /// Refused after all: its refusal is the report.
    Refused,
}

impl Forwarded {
    pub(crate) fn new(
        reports: Arc<Reports>,
        destination: Name,
        source: Option<Name>,
        inbound: Hop,
    ) -> Arc<Self> {
        Arc::new(Forwarded {
            reports,
            destination,
            source,
            inbound,
            outbound: Mutex::new(Outbound::Attaching(Vec::new())),
        })
    }

    /// The observer for the inbound link's side of the stream.
    pub(crate) fn inbound_observer(self: &Arc<Self>) -> StreamObserver {
        self.observer(Side::In, self.inbound.link, self.inbound.peer.clone())
    }

    /// The observer for the stream once spliced onto the link `link` to
    /// `peer`.
    pub(crate) fn outbound_observer(self: &Arc<Self>, link: LinkId, peer: Name) -> StreamObserver {
        self.observer(Side::Out, link, peer)
    }

    fn observer(self: &Arc<Self>, side: Side, link: LinkId, peer: Name) -> StreamObserver {
        let this = Arc::clone(self);
        StreamObserver::new(move |close: &StreamClose<'_>| {
            let toward = match (side, close.direction) {
                (Side::In, CloseDirection::FromPeer) | (Side::Out, CloseDirection::ToPeer) => {
                    Toward::Destination
                }
                (Side::In, CloseDirection::ToPeer) | (Side::Out, CloseDirection::FromPeer) => {
                    Toward::Source
                }
            };
            let closed_by = closed_by(close.cause, link, &peer);
            this.closed(toward, closed_by, close.epitaph.map(str::to_owned));
        })
    }

    /// The inbound side's close had already gone through (the stream
    /// closed before this node read its header): `cause` from the mux,
    /// `epitaph` from the pipe it went into.
    pub(crate) fn closed_early(&self, cause: CloseCause, epitaph: Option<String>) {
        let closed_by = closed_by(cause, self.inbound.link, &self.inbound.peer);
        self.closed(Toward::Destination, closed_by, epitaph);
    }

    fn closed(&self, toward: Toward, closed_by: ClosedBy, epitaph: Option<String>) {
        let outbound = {
            let mut outbound = lock(&self.outbound);
            match &mut *outbound {
                Outbound::Attaching(waiting) => {
                    waiting.push((toward, closed_by, epitaph));
                    return;
                }
                Outbound::Attached(hop) => hop.clone(),
                Outbound::Refused => return,
            }
        };
        self.emit(toward, closed_by, epitaph, outbound);
    }

    /// The stream was spliced as `hop`: reports from now on, and those that
    /// waited.
    pub(crate) fn attached(&self, hop: Hop) {
        let previous =
            std::mem::replace(&mut *lock(&self.outbound), Outbound::Attached(hop.clone()));
        if let Outbound::Attaching(waiting) = previous {
            for (toward, closed_by, epitaph) in waiting {
                self.emit(toward, closed_by, epitaph, hop.clone());
            }
        }
    }

    /// No link took the stream: it is refused, and the refusal says so.
    pub(crate) fn refused(&self) {
        *lock(&self.outbound) = Outbound::Refused;
    }

    fn emit(&self, toward: Toward, closed_by: ClosedBy, epitaph: Option<String>, outbound: Hop) {
        self.reports.emit(ForwardEnd {
            at: self.reports.at.clone(),
            destination: Some(self.destination.clone()),
            source: self.source.clone(),
            toward,
            closed_by,
            epitaph,
            inbound: self.inbound.clone(),
            outbound: Some(outbound),
        });
    }
}

fn closed_by(cause: CloseCause, link: LinkId, peer: &Name) -> ClosedBy {
    match cause {
        CloseCause::Peer => ClosedBy::Neighbour(peer.clone()),
        CloseCause::LinkEnded => ClosedBy::ThisNode(LocalReason::LinkEnded {
            link,
            peer: peer.clone(),
        }),
        CloseCause::StreamsClosed => ClosedBy::ThisNode(LocalReason::StreamsClosed {
            link,
            peer: peer.clone(),
        }),
    }
}
