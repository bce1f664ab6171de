//! A link's control: its open streams, the wait for them to drain, and
//! closing its streams or the whole link with an epitaph.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use circuit_frame::Quality;
use circuit_mux::Role as MuxRole;
use circuit_node::routing::RouteEvent;
use circuit_node::{LinkControl, Node, NodeError};
use futures::future::RemoteHandle;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, FutureExt, StreamExt};

use crate::support::*;

/// Both ends of an in-process link, each with its control and its future.
struct Controlled {
    a: LinkControl,
    b: LinkControl,
    a_link: RemoteHandle<Result<(), NodeError>>,
    b_link: RemoteHandle<Result<(), NodeError>>,
}

/// Links `a` (client) and `b` (server) as `Net::link` does, with controls.
fn link(net: &Net, a: &Node, b: &Node) -> Controlled {
    let (a_io, b_io) = circuit_stream::duplex_pair(net.pipe_capacity);
    let (a_control, a_link) = a.link_io_with_control(a_io, MuxRole::Client, Quality::IN_PROCESS);
    let (b_control, b_link) = b.link_io_with_control(b_io, MuxRole::Server, Quality::IN_PROCESS);
    Controlled {
        a: a_control,
        b: b_control,
        a_link: net.spawn(a_link),
        b_link: net.spawn(b_link),
    }
}

#[test]
fn the_control_stream_is_not_counted_and_the_peer_is_known_after_the_handshake() {
    let mut net = Net::new();
    let (mut a, b) = (net.router("a"), net.router("b"));
    let link = link(&net, &a.node, &b.node);
    assert_eq!(link.a.peer(), None, "no handshake yet");
    net.run(async {
        a.peers.next().await;
    });
    net.settle();
    assert_eq!(link.a.peer(), Some(name("b")));
    assert_eq!(link.b.peer(), Some(name("a")));
    // Routers keep their control stream open both ways: it is not counted.
    assert_eq!((link.a.streams_open(), link.b.streams_open()), (0, 0));
    assert!(!link.a.is_closed());
    assert!(link.a.drained().now_or_never().is_some());
}

#[test]
fn drained_resolves_when_the_last_stream_closes() {
    let mut net = Net::new();
    let (mut a, mut b) = (net.leaf("a"), net.leaf("b"));
    let link = link(&net, &a.node, &b.node);
    let (mut ours, mut theirs) = net.run(async {
        a.peers.next().await;
        let mut ours = a.node.connect_to_peer("b").await.unwrap();
        ours.write_all(b"open").await.unwrap();
        let theirs = b.incoming.next().await.unwrap().stream;
        (ours, theirs)
    });
    net.settle();
    assert_eq!((link.a.streams_open(), link.b.streams_open()), (1, 1));

    let drained = net.spawn({
        let control = link.a.clone();
        async move { control.drained().await }
    });
    net.settle();
    let mut drained = drained.fuse();
    assert!((&mut drained).now_or_never().is_none(), "a stream is open");

    // One direction closed: still open.
    net.run(ours.close()).unwrap();
    net.settle();
    assert!((&mut drained).now_or_never().is_none(), "half-closed");
    assert_eq!(link.a.streams_open(), 1);

    net.run(async {
        let mut got = Vec::new();
        theirs.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"open");
        theirs.close().await.unwrap();
        drained.await;
    });
    assert_eq!((link.a.streams_open(), link.b.streams_open()), (0, 0));
    // The link stays up.
    assert!(!link.a.is_closed() && a.node.is_reachable("b"));
    drop(ours);
}

#[test]
fn close_streams_delivers_the_epitaph_to_the_peers_reader_and_keeps_the_link() {
    let mut net = Net::new();
    let (mut a, mut b) = (net.leaf("a"), net.leaf("b"));
    let link = link(&net, &a.node, &b.node);
    net.run(async {
        a.peers.next().await;
        let mut ours = a.node.connect_to_peer("b").await.unwrap();
        ours.write_all(b"before").await.unwrap();
        let mut theirs = b.incoming.next().await.unwrap().stream;

        link.a.close_streams("a is busy");
        // A stream ended with an epitaph reads as an error after its bytes.
        let mut got = Vec::new();
        assert!(theirs.read_to_end(&mut got).await.is_err());
        assert_eq!(got, b"before");
        assert_eq!(
            theirs.reader().closed_reason().as_deref(),
            Some("a is busy")
        );
        // Our own reader ends with it too.
        assert!(ours.read_to_end(&mut Vec::new()).await.is_err());
        assert_eq!(ours.reader().closed_reason().as_deref(), Some("a is busy"));

        // The link is still up: a new stream gets through.
        let mut again = a.node.connect_to_peer("b").await.unwrap();
        again.write_all(b"after").await.unwrap();
        again.close().await.unwrap();
        let mut next = b.incoming.next().await.unwrap().stream;
        let mut got = Vec::new();
        next.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"after");
    });
    assert!(!link.a.is_closed() && !link.b.is_closed());
}

#[test]
fn close_ends_the_link_future_and_the_peers_with_the_epitaph_on_the_wire() {
    let mut net = Net::new();
    let (mut a, mut b) = (net.leaf("a"), net.leaf("b"));
    let Controlled {
        a: a_control,
        b: b_control,
        a_link,
        b_link,
    } = link(&net, &a.node, &b.node);
    let closed = net.spawn({
        let control = b_control.clone();
        async move { control.closed().await }
    });
    let (a_ended, b_ended) = net.run(async {
        a.peers.next().await;
        let mut ours = a.node.connect_to_peer("b").await.unwrap();
        ours.write_all(b"held").await.unwrap();
        let mut theirs = b.incoming.next().await.unwrap().stream;

        a_control.close("a is shutting down");
        let ended = futures::join!(a_link, b_link);
        let mut got = Vec::new();
        assert!(theirs.read_to_end(&mut got).await.is_err());
        assert_eq!(got, b"held");
        assert_eq!(
            theirs.reader().closed_reason().as_deref(),
            Some("a is shutting down")
        );
        let events = [b.peers.next().await, b.peers.next().await];
        assert_eq!(
            events,
            [
                Some(RouteEvent::PeerReachable(name("a"))),
                Some(RouteEvent::PeerUnreachable(name("a")))
            ]
        );
        closed.await;
        ended
    });
    assert!(a_ended.is_ok(), "{a_ended:?}");
    assert!(b_ended.is_ok(), "{b_ended:?}");
    assert!(a_control.is_closed() && b_control.is_closed());
    assert_eq!(a_control.streams_open(), 0);
    assert!(a.node.snapshot().links.is_empty() && b.node.snapshot().links.is_empty());
    // Closing again changes nothing.
    a_control.close("again");
}

#[test]
fn close_during_the_handshake_ends_the_link() {
    let mut net = Net::new();
    let a = net.leaf("a");
    // No peer ever answers: the handshake waits. The peer only reads, and
    // closes its end once a has closed its own.
    let (a_io, mut b_io) = circuit_stream::duplex_pair(net.pipe_capacity);
    let peer = net.spawn(async move {
        let mut got = Vec::new();
        b_io.read_to_end(&mut got).await.map(|_| got.len())
    });
    let (control, a_link) = a
        .node
        .link_io_with_control(a_io, MuxRole::Server, Quality::IN_PROCESS);
    let a_link = net.spawn(a_link);
    net.settle();
    assert_eq!(control.peer(), None);
    let handshaken = net.spawn({
        let control = control.clone();
        async move { control.handshaken().await }
    });
    net.settle();
    let mut handshaken = handshaken;
    assert!(
        (&mut handshaken).now_or_never().is_none(),
        "no handshake yet"
    );
    control.close("never mind");
    // The link ends once the peer's end is read: a closes its end, then
    // reads the peer's to its end.
    assert!(net.run(a_link).is_ok());
    assert!(control.is_closed());
    assert!(net.run(peer).is_ok());
    // A link that ended without a handshake ends the wait too.
    net.run(handshaken);
}

/// After its close frames, a link reads its transport to the peer's end
/// before it lets it go (a socket let go with bytes unread sends a reset,
/// which can destroy the close frames before the peer reads them): here
/// the link does not end while the silent peer keeps its end open.
#[test]
fn a_closed_link_reads_the_transport_to_the_peers_end() {
    let mut net = Net::new();
    let a = net.leaf("a");
    let (a_io, mut b_io) = circuit_stream::duplex_pair(net.pipe_capacity);
    let (control, a_link) = a
        .node
        .link_io_with_control(a_io, MuxRole::Server, Quality::IN_PROCESS);
    let mut a_link = net.spawn(a_link);
    net.settle();
    control.close("never mind");
    // a's end is closed: the peer reads its end.
    let mut got = Vec::new();
    net.run(b_io.read_to_end(&mut got)).unwrap();
    // The peer still writes; a reads on and drops it.
    net.run(b_io.write_all(&[0; 4096])).unwrap();
    net.settle();
    assert!(
        (&mut a_link).now_or_never().is_none(),
        "a waits for the peer's end"
    );
    drop(b_io);
    assert!(net.run(a_link).is_ok());
    assert!(control.is_closed());
}

#[test]
fn handshaken_resolves_once_the_peer_is_known() {
    let mut net = Net::new();
    let (a, b) = (net.leaf("a"), net.leaf("b"));
    let link = link(&net, &a.node, &b.node);
    let control = link.a.clone();
    net.run(async move { control.handshaken().await });
    assert_eq!(link.a.peer(), Some(name("b")));
    assert!(!link.a.is_closed());
}

/// A transport end that records `poll_close` and can stop taking writes
/// (a peer that never reads).
struct Recorded {
    inner: circuit_stream::Duplex,
    closed: Arc<AtomicBool>,
    stall: Arc<AtomicBool>,
}

impl AsyncRead for Recorded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Recorded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.stall.load(Ordering::SeqCst) {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.stall.load(Ordering::SeqCst) {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_close(cx);
        if let Poll::Ready(Ok(())) = polled {
            self.closed.store(true, Ordering::SeqCst);
        }
        polled
    }
}

/// `a` (client, on a [`Recorded`] transport) linked to `b`: a's control,
/// both futures, and the transport's flags (closed, stall).
fn recorded_link(net: &Net, a: &Node, b: &Node) -> (Controlled, Arc<AtomicBool>, Arc<AtomicBool>) {
    let (a_io, b_io) = circuit_stream::duplex_pair(net.pipe_capacity);
    let (closed, stall) = (Arc::default(), Arc::default());
    let a_io = Recorded {
        inner: a_io,
        closed: Arc::clone(&closed),
        stall: Arc::clone(&stall),
    };
    let (a_control, a_link) = a.link_io_with_control(a_io, MuxRole::Client, Quality::IN_PROCESS);
    let (b_control, b_link) = b.link_io_with_control(b_io, MuxRole::Server, Quality::IN_PROCESS);
    let link = Controlled {
        a: a_control,
        b: b_control,
        a_link: net.spawn(a_link),
        b_link: net.spawn(b_link),
    };
    (link, closed, stall)
}

#[test]
fn close_closes_the_transport_before_the_link_future_returns() {
    let mut net = Net::new();
    let (mut a, b) = (net.leaf("a"), net.leaf("b"));
    let (link, closed, _stall) = recorded_link(&net, &a.node, &b.node);
    let (a_ended, b_ended) = net.run(async {
        a.peers.next().await;
        link.a.close("a is shutting down");
        futures::join!(link.a_link, link.b_link)
    });
    assert!(a_ended.is_ok(), "{a_ended:?}");
    assert!(b_ended.is_ok(), "{b_ended:?}");
    assert!(
        closed.load(Ordering::SeqCst),
        "the mux closed the transport"
    );
    assert!(link.a.is_closed() && link.b.is_closed());
}

#[test]
fn a_close_held_up_by_a_peer_that_never_reads_ends_when_the_link_future_is_dropped() {
    let mut net = Net::new();
    let (mut a, mut b) = (net.leaf("a"), net.leaf("b"));
    let (link, closed, stall) = recorded_link(&net, &a.node, &b.node);
    let mut theirs = net.run(async {
        a.peers.next().await;
        let mut ours = a.node.connect_to_peer("b").await.unwrap();
        ours.write_all(b"held").await.unwrap();
        b.incoming.next().await.unwrap().stream
    });
    stall.store(true, Ordering::SeqCst);
    link.a.close("a is shutting down");
    net.settle();
    // The close frames cannot go: the link future waits, the transport is
    // not closed.
    assert!(!link.a.is_closed());
    assert!(!closed.load(Ordering::SeqCst));
    // The caller's grace period passes: it drops the link future.
    drop(link.a_link);
    net.settle();
    assert!(link.a.is_closed());
    assert!(!closed.load(Ordering::SeqCst));
    // b's link ends with the dropped transport, its stream with it.
    assert!(net.run(link.b_link).is_ok());
    let mut got = Vec::new();
    assert!(net.run(theirs.read_to_end(&mut got)).is_err());
    assert_eq!(got, b"held");
}
