//! A dialled link with a reconnect policy comes back after the far end
//! goes away and listens again on the same port.
//! The scenarios are in `circuit_transport::test_support::reconnect`.

mod common;

use circuit_transport::test_support::reconnect;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_link_is_dialled_again_when_the_server_returns() {
    run(reconnect::a_dropped_link_is_dialled_again_when_the_server_returns::<Tokio>()).await;
}

#[tokio::test]
async fn a_policy_gives_up_after_its_attempts() {
    run(reconnect::a_policy_gives_up_after_its_attempts::<Tokio>()).await;
}
