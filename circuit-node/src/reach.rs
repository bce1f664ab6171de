//! Waiting until a peer is reachable: woken by every routing change, bounded
//! by the node's timer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use circuit_frame::Name;
use futures::future::{select, Either};

use crate::state::NodeInner;
use crate::{Node, NodeError};

impl Node {
    /// Waits until `peer` is reachable (a route to it is known), for at
    /// most `timeout` on the node's [`Timer`](crate::timer::Timer).
    ///
    /// Returns `Ok(())` at once if `peer` is reachable now, or is this node
    /// itself (which [`connect_to_peer`](Self::connect_to_peer) reaches
    /// without a link); otherwise when a routing change makes it reachable.
    /// Nothing polls: the wait is woken by the routing changes the node's
    /// links apply, and by the timer. Fails with
    /// [`NodeError::NotReachable`] when the deadline passes first, and with
    /// [`NodeError::InvalidName`] for a name over 255 bytes.
    ///
    /// The deadline is read on the node's timer: with a
    /// [`ManualClock`](crate::timer::ManualClock) it passes only when the
    /// clock is advanced. A leaf made by [`NodeConfig::leaf`](crate::NodeConfig::leaf)
    /// without [`timer`](crate::NodeConfig::timer) has no clock (time stands
    /// at zero): there a zero `timeout` checks once and fails at once, any
    /// other waits with no bound until the peer is reachable; give the leaf
    /// a timer, or wrap the call in the runtime's own timeout.
    ///
    /// The links must be running (polled or spawned) for anything to
    /// change while this waits.
    pub async fn wait_reachable(&self, peer: &str, timeout: Duration) -> Result<(), NodeError> {
        let peer = Name::new(peer)?;
        let timer = &self.inner.timer;
        let deadline = timer.now().saturating_add(timeout);
        let reachable = Reachable {
            inner: Arc::clone(&self.inner),
            peer: peer.clone(),
            key: None,
        };
        // `select` polls the wait first: a reachable peer wins over a
        // deadline that has passed already.
        match select(reachable, timer.sleep_until(deadline)).await {
            Either::Left(((), _)) => Ok(()),
            Either::Right(((), _)) => Err(NodeError::NotReachable {
                peer,
                waited: timeout,
            }),
        }
    }
}

/// Ready once `peer` is reachable (or is the node itself); registered in
/// the node's waiters while pending, removed when dropped.
struct Reachable {
    inner: Arc<NodeInner>,
    peer: Name,
    key: Option<u64>,
}

impl Future for Reachable {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        if this.peer == this.inner.id {
            return Poll::Ready(());
        }
        this.inner.poll_reachable(&this.peer, &mut this.key, cx)
    }
}

impl Drop for Reachable {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            self.inner.forget_reach_waiter(key);
        }
    }
}
