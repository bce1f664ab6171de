//! a - r - b over real sockets: 64 MiB each way through the router, every
//! byte checked. The scenarios are in `circuit_transport::test_support::mesh`.

mod common;

use circuit_transport::test_support::mesh;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_mib_each_way_through_a_router_over_loopback_tcp() {
    run(mesh::over_loopback_tcp::<Tokio>()).await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_mib_each_way_through_a_router_over_a_unix_socket() {
    run(mesh::over_a_unix_socket::<Tokio>()).await;
}

#[tokio::test]
async fn a_loopback_link_is_a_local_socket_unless_told_otherwise() {
    run(mesh::a_loopback_link_is_a_local_socket_unless_told_otherwise::<Tokio>()).await;
}
