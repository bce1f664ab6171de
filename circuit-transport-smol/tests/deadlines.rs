//! A first dial retried like a redial, and the bounds on a dial, on a
//! handshake and on the handshakes under way at once.
//! The scenarios are in `circuit_transport::test_support::deadlines`.

mod common;

use circuit_transport::test_support::deadlines;
use common::*;

#[test]
fn a_failed_first_dial_is_retried_when_asked() {
    run(deadlines::a_failed_first_dial_is_retried_when_asked::<Smol>());
}

#[test]
fn a_dial_that_never_completes_fails_at_the_connect_timeout() {
    run(deadlines::a_dial_that_never_completes_fails_at_the_connect_timeout::<Smol>());
}

#[test]
fn a_client_that_never_speaks_is_closed_at_the_handshake_deadline() {
    run(deadlines::a_client_that_never_speaks_is_closed_at_the_handshake_deadline::<Smol>());
}

#[test]
fn connections_beyond_the_handshake_cap_are_closed_at_once() {
    run(deadlines::connections_beyond_the_handshake_cap_are_closed_at_once::<Smol>());
}

#[test]
fn keepalive_is_set_on_dialled_and_accepted_sockets() {
    use circuit_transport::test_support::keepalive;
    run(keepalive::keepalive_is_set_on_dialled_and_accepted_sockets::<Smol>());
}
