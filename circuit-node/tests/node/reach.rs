//! `Node::wait_reachable`: woken by routing changes, bounded by the node's
//! timer (here a `ManualClock`, moved only by the test).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use circuit_frame::Quality;
use circuit_node::{NodeConfig, NodeError};
use futures::FutureExt;

use crate::support::*;

/// A leaf on the net's clock.
fn timed_leaf(net: &Net, id: &str) -> TestNode {
    net.make(id, NodeConfig::leaf().timer(Arc::new(net.clock.clone())))
}

/// Spawns `node.wait_reachable(peer, timeout)`; its result lands in the
/// returned cell once it ends.
fn spawn_wait(
    net: &Net,
    node: &TestNode,
    peer: &'static str,
    timeout: Duration,
) -> Rc<RefCell<Option<Result<(), NodeError>>>> {
    let result = Rc::new(RefCell::new(None));
    let (out, node) = (Rc::clone(&result), node.node.clone());
    net.spawn(async move {
        let r = node.wait_reachable(peer, timeout).await;
        *out.borrow_mut() = Some(r);
    })
    .forget();
    result
}

#[test]
fn a_reachable_peer_and_oneself_are_ok_at_once() {
    let mut net = Net::new();
    let a = timed_leaf(&net, "a");
    let b = timed_leaf(&net, "b");
    let _link = net.link(&a.node, &b.node, Quality::IN_PROCESS);
    net.settle();
    assert!(a.node.is_reachable("b"));
    // Ready on the first poll, with no time passing, even with no time to wait.
    let now = a.node.wait_reachable("b", Duration::ZERO).now_or_never();
    assert!(matches!(now, Some(Ok(()))), "{now:?}");
    let me = a.node.wait_reachable("a", Duration::ZERO).now_or_never();
    assert!(matches!(me, Some(Ok(()))), "{me:?}");
}

#[test]
fn an_unreachable_peer_fails_when_the_clock_passes_the_deadline() {
    let mut net = Net::new();
    let a = timed_leaf(&net, "a");
    let b = timed_leaf(&net, "b");
    let _link = net.link(&a.node, &b.node, Quality::IN_PROCESS);
    let wait = spawn_wait(&net, &a, "nobody", Duration::from_secs(1));
    net.settle();
    assert!(wait.borrow().is_none());
    net.clock.advance(Duration::from_millis(999));
    net.settle();
    assert!(wait.borrow().is_none(), "ended before the deadline");
    net.clock.advance(Duration::from_millis(1));
    net.settle();
    let result = wait.borrow_mut().take();
    match result {
        Some(Err(NodeError::NotReachable { peer, waited })) => {
            assert_eq!(peer, "nobody");
            assert_eq!(waited, Duration::from_secs(1));
        }
        other => panic!("expected NotReachable, got {other:?}"),
    }
}

#[test]
fn a_peer_that_comes_up_ends_the_wait_without_the_clock_moving() {
    let mut net = Net::new();
    let a = timed_leaf(&net, "a");
    let b = timed_leaf(&net, "b");
    let wait = spawn_wait(&net, &a, "b", Duration::from_secs(5));
    net.settle();
    assert!(wait.borrow().is_none());
    // The link's handshake is the routing change that wakes the wait.
    let _link = net.link(&a.node, &b.node, Quality::IN_PROCESS);
    net.settle();
    assert!(
        matches!(*wait.borrow(), Some(Ok(()))),
        "{:?}",
        wait.borrow()
    );
}

#[test]
fn a_leaf_without_a_timer_fails_a_zero_timeout_at_once() {
    let net = Net::new();
    let a = net.leaf("a");
    let now = a.node.wait_reachable("b", Duration::ZERO).now_or_never();
    assert!(
        matches!(now, Some(Err(NodeError::NotReachable { .. }))),
        "{now:?}"
    );
    // Any other timeout has no clock to run out on: still waiting.
    let later = a
        .node
        .wait_reachable("b", Duration::from_secs(1))
        .now_or_never();
    assert!(later.is_none());
}
