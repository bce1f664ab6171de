//! A handle on one running link, apart from its future: how many streams
//! it carries, a wait for them to drain, and a way to end them or the
//! link with an epitaph. A transport's graceful shutdown is built on it.

use std::fmt;
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use circuit_frame::Name;
use futures::task::AtomicWaker;

use super::port::LinkPort;
use crate::sync::lock;

/// A handle on one link, made with its future by
/// [`Node::link_io_with_control`](crate::Node::link_io_with_control).
/// Clone it freely and use it from any task; it runs nothing itself (the
/// link future does the work) and needs no runtime.
///
/// ```
/// use std::pin::pin;
/// use circuit_frame::Quality;
/// use circuit_mux::Role;
/// use circuit_node::{Node, NodeConfig};
/// use futures::future::{join, select, Either};
/// use futures::StreamExt;
///
/// futures::executor::block_on(async {
///     let (a, mut a_peers, _) = Node::new("a", "demo", NodeConfig::leaf()).unwrap();
///     let (b, _, _) = Node::new("b", "demo", NodeConfig::leaf()).unwrap();
///     let (a_io, b_io) = circuit_stream::duplex_pair(64 * 1024);
///     let (a_control, a_link) = a.link_io_with_control(a_io, Role::Client, Quality::IN_PROCESS);
///     let b_link = b.link_io(b_io, Role::Server, Quality::IN_PROCESS);
///     let links = pin!(join(a_link, b_link));
///
///     // Once b is reachable and no stream but the control stream is open,
///     // end the link.
///     let drain = pin!(async {
///         a_peers.next().await;
///         a_control.drained().await;
///         a_control.close("a is going away");
///     });
///     let (a_ended, b_ended) = match select(links, drain).await {
///         Either::Left((ended, _)) => ended,
///         Either::Right(((), links)) => links.await,
///     };
///     assert!(a_ended.is_ok() && b_ended.is_ok());
///     assert!(a_control.is_closed());
///     assert_eq!(a_control.peer().map(|p| p.to_string()).as_deref(), Some("b"));
/// });
/// ```
#[derive(Clone)]
pub struct LinkControl {
    shared: Arc<ControlShared>,
}

/// What a [`LinkControl`] and its link future share. Its lock is a leaf
/// of the lock order (`crate::sync`).
pub(crate) struct ControlShared {
    port: Arc<LinkPort>,
    state: Mutex<State>,
    /// The link future, woken when a close is asked for.
    link_waker: AtomicWaker,
}

#[derive(Default)]
struct State {
    /// The mux id of the link's control stream, once the handshake took it.
    control_id: Option<u32>,
    peer: Option<Name>,
    /// The epitaph of a close asked for.
    close: Option<String>,
    /// The link future has returned or was dropped.
    ended: bool,
    /// Tasks waiting in [`LinkControl::drained`] or [`LinkControl::closed`].
    watchers: Vec<Waker>,
}

impl LinkControl {
    /// The peer's id, once the link's handshake is done.
    pub fn peer(&self) -> Option<Name> {
        lock(&self.shared.state).peer.clone()
    }

    /// Streams of the link with a direction still open, its control stream
    /// aside: streams opened from either end, routed here or forwarded
    /// through. A stream opened but not yet written counts (the peer does
    /// not know it yet). Zero once the link has ended.
    pub fn streams_open(&self) -> u64 {
        let Some(mux) = self.shared.port.mux() else {
            return 0;
        };
        let Some(control) = lock(&self.shared.state).control_id else {
            return mux.counters().streams_open;
        };
        // The control stream closes once and for all: when it reads the
        // same before and after the count, the count agrees with it.
        loop {
            let before = mux.is_open(control);
            let open = mux.counters().streams_open;
            if mux.is_open(control) == before {
                return open.saturating_sub(u64::from(before));
            }
        }
    }

    /// Resolves once [`streams_open`](Self::streams_open) is zero, or the
    /// link has ended (before its handshake no stream is open). The link
    /// future wakes it when its streams change; nothing polls.
    pub async fn drained(&self) {
        poll_fn(|cx| self.shared.poll_until(cx, || self.streams_open() == 0)).await
    }

    /// Resolves once the link's handshake is done (its
    /// [`peer`](Self::peer) is known), or the link has ended without one.
    /// A transport bounds the handshake with it, and says "link up".
    pub async fn handshaken(&self) {
        poll_fn(|cx| {
            self.shared.poll_until(cx, || {
                let state = lock(&self.shared.state);
                state.peer.is_some() || state.ended
            })
        })
        .await
    }

    /// Resolves once the link future has returned or was dropped.
    pub async fn closed(&self) {
        poll_fn(|cx| self.shared.poll_until(cx, || self.is_closed())).await
    }

    /// Whether the link future has returned or was dropped.
    pub fn is_closed(&self) -> bool {
        lock(&self.shared.state).ended
    }

    /// Closes every stream of the link with `epitaph`, the control stream
    /// too, and keeps the link up: unsent bytes are dropped, the mux sends
    /// the peer a close frame carrying `epitaph` for each stream it knows,
    /// and local readers end with it (see `circuit_mux::Mux::close_streams`).
    /// New streams may still open.
    pub fn close_streams(&self, epitaph: &str) {
        if let Some(mux) = self.shared.port.mux() {
            mux.close_streams(epitaph);
        }
    }

    /// Ends the link with `circuit_mux::Mux::close`: no new stream opens,
    /// every stream is closed with `epitaph` as
    /// [`close_streams`](Self::close_streams) does, the mux flushes the
    /// close frames and closes the transport, which ends the peer's link
    /// too, then the link future returns `Ok(())`. A peer that never reads
    /// can hold the close up: bound the wait for the link future and drop
    /// it when the bound passes. The first epitaph given wins; after the
    /// link ended this does nothing.
    pub fn close(&self, epitaph: &str) {
        {
            let mut state = lock(&self.shared.state);
            if state.ended || state.close.is_some() {
                return;
            }
            state.close = Some(epitaph.to_owned());
        }
        self.shared.link_waker.wake();
    }
}

impl fmt::Debug for LinkControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.shared.state);
        f.debug_struct("LinkControl")
            .field("peer", &state.peer)
            .field("closing", &state.close.is_some())
            .field("ended", &state.ended)
            .finish_non_exhaustive()
    }
}

impl ControlShared {
    /// Registers the waiting task, then looks: a change the link future
    /// reports after the look wakes it.
    fn poll_until(&self, cx: &mut Context<'_>, done: impl Fn() -> bool) -> Poll<()> {
        {
            let mut state = lock(&self.state);
            if !state.watchers.iter().any(|w| w.will_wake(cx.waker())) {
                state.watchers.push(cx.waker().clone());
            }
        }
        if done() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    fn notify(&self) {
        let watchers = std::mem::take(&mut lock(&self.state).watchers);
        watchers.into_iter().for_each(Waker::wake);
    }
}

/// The link future's side of its [`LinkControl`]: it reports changes to
/// the waiting tasks, and carries out a close. Dropping it (with the link
/// future) marks the link ended.
pub(crate) struct LinkSide {
    shared: Arc<ControlShared>,
    /// The mux's open-stream count when last reported (`u64::MAX`: never).
    reported: AtomicU64,
    /// The asked-for close has been passed to the mux.
    closing: AtomicBool,
}

impl LinkSide {
    /// A new control for the link on `port`, and the link future's side.
    pub(crate) fn new(port: Arc<LinkPort>) -> (LinkControl, Self) {
        let shared = Arc::new(ControlShared {
            port,
            state: Mutex::new(State::default()),
            link_waker: AtomicWaker::new(),
        });
        let side = LinkSide {
            shared: Arc::clone(&shared),
            reported: AtomicU64::new(u64::MAX),
            closing: AtomicBool::new(false),
        };
        (LinkControl { shared }, side)
    }

    /// At the start of each poll of the link future: registers its waker,
    /// and passes a close asked for to the mux (once). Returns whether the
    /// link is closing: its driver then ends once the mux closed the link.
    pub(crate) fn begin(&self, cx: &Context<'_>) -> bool {
        self.shared.link_waker.register(cx.waker());
        if self.closing.load(Ordering::Relaxed) {
            return true;
        }
        let epitaph = lock(&self.shared.state).close.clone();
        let Some(epitaph) = epitaph else {
            return false;
        };
        tracing::debug!(%epitaph, "link closing");
        if let Some(mux) = self.shared.port.mux() {
            // The driver, which the link future polls, carries the close
            // out and then ends: its end is the link's. Nothing needs the
            // close future.
            drop(mux.close(&epitaph));
        }
        self.closing.store(true, Ordering::Relaxed);
        true
    }

    /// Whether a close was passed to the mux.
    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
    }

    /// The handshake picked the control stream.
    pub(crate) fn set_control_id(&self, id: u32) {
        lock(&self.shared.state).control_id = Some(id);
        self.shared.notify();
    }

    /// The handshake is done.
    pub(crate) fn set_peer(&self, peer: Name) {
        lock(&self.shared.state).peer = Some(peer);
        self.shared.notify();
    }

    /// At the end of each poll of the link future: wakes the waiting tasks
    /// if the mux's streams changed.
    pub(crate) fn report(&self) {
        let open = self.shared.port.counters().streams_open;
        if self.reported.swap(open, Ordering::Relaxed) != open {
            self.shared.notify();
        }
    }
}

impl Drop for LinkSide {
    fn drop(&mut self) {
        lock(&self.shared.state).ended = true;
        self.shared.notify();
    }
}
