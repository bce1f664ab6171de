//! Typed errors for what a command line gets wrong most often.
//! The scenarios are in `circuit_transport::test_support::errors`.

mod common;

use circuit_transport::test_support::errors;
use common::*;

#[tokio::test]
async fn a_bad_address_is_refused_before_any_socket_is_made() {
    run(errors::a_bad_address_is_refused_before_any_socket_is_made::<Tokio>()).await;
}

#[tokio::test]
async fn a_port_in_use_says_so() {
    run(errors::a_port_in_use_says_so::<Tokio>()).await;
}

#[cfg(unix)]
#[tokio::test]
async fn a_unix_path_in_use_says_so() {
    run(errors::a_unix_path_in_use_says_so::<Tokio>()).await;
}

#[tokio::test]
async fn nothing_listening_is_a_connect_error() {
    run(errors::nothing_listening_is_a_connect_error::<Tokio>()).await;
}

#[tokio::test]
async fn an_unknown_host_is_a_resolve_error() {
    run(errors::an_unknown_host_is_a_resolve_error::<Tokio>()).await;
}
