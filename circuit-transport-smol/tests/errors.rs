//! Typed errors for what a command line gets wrong most often.
//! The scenarios are in `circuit_transport::test_support::errors`.

mod common;

use circuit_transport::test_support::errors;
use common::*;

#[test]
fn a_bad_address_is_refused_before_any_socket_is_made() {
    run(errors::a_bad_address_is_refused_before_any_socket_is_made::<Smol>());
}

#[test]
fn a_port_in_use_says_so() {
    run(errors::a_port_in_use_says_so::<Smol>());
}

#[cfg(unix)]
#[test]
fn a_unix_path_in_use_says_so() {
    run(errors::a_unix_path_in_use_says_so::<Smol>());
}

#[test]
fn nothing_listening_is_a_connect_error() {
    run(errors::nothing_listening_is_a_connect_error::<Smol>());
}

#[test]
fn an_unknown_host_is_a_resolve_error() {
    run(errors::an_unknown_host_is_a_resolve_error::<Smol>());
}
