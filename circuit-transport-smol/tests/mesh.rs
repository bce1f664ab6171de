//! a - r - b over real sockets: 64 MiB each way through the router, every
//! byte checked. The scenarios are in `circuit_transport::test_support::mesh`.

mod common;

use circuit_transport::test_support::mesh;
use common::*;

#[test]
fn sixty_four_mib_each_way_through_a_router_over_loopback_tcp() {
    run(mesh::over_loopback_tcp::<Smol>());
}

#[cfg(unix)]
#[test]
fn sixty_four_mib_each_way_through_a_router_over_a_unix_socket() {
    run(mesh::over_a_unix_socket::<Smol>());
}

#[test]
fn a_loopback_link_is_a_local_socket_unless_told_otherwise() {
    run(mesh::a_loopback_link_is_a_local_socket_unless_told_otherwise::<Smol>());
}
