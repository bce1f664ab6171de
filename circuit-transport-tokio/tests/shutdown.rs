//! Graceful shutdown: listeners stop accepting, links drain, what is left
//! at the deadline is cut with an epitaph.
//! The scenarios are in `circuit_transport::test_support::shutdown`.

mod common;

use circuit_transport::test_support::shutdown;
use common::*;

#[tokio::test]
async fn a_link_stays_up_until_its_streams_drain_then_closes() {
    run(shutdown::a_link_stays_up_until_its_streams_drain_then_closes::<Tokio>()).await;
}

#[tokio::test]
async fn streams_still_open_at_the_deadline_are_closed_with_an_epitaph() {
    run(shutdown::streams_still_open_at_the_deadline_are_closed_with_an_epitaph::<Tokio>()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_still_sending_when_its_link_is_cut_reads_epitaphs_not_a_reset() {
    run(shutdown::a_peer_still_sending_when_its_link_is_cut_reads_epitaphs_not_a_reset::<Tokio>())
        .await;
}

#[tokio::test]
async fn one_shutdown_closes_every_listener_and_link_of_its_group() {
    run(shutdown::one_shutdown_closes_every_listener_and_link_of_its_group::<Tokio>()).await;
}

#[cfg(unix)]
#[tokio::test]
async fn a_unix_socket_is_released_when_shutdown_resolves() {
    run(shutdown::a_unix_socket_is_released_when_shutdown_resolves::<Tokio>()).await;
}
