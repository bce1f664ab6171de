//! Typed errors for what a command line gets wrong most often.

mod common;

use circuit_transport_smol::{connect, listen, Address, TransportError};
use common::*;

#[test]
fn a_bad_address_is_refused_before_any_socket_is_made() {
    run(async {
        let (node, _, _) = leaf("n");
        for text in ["no-port", "host:99999", ":80", "::1:80", "unix:"] {
            let error = listen(&node, text).await.unwrap_err();
            assert!(
                matches!(error, TransportError::BadAddress { .. }),
                "{text}: {error}"
            );
            let error = connect(&node, text).await.unwrap_err();
            assert!(
                matches!(error, TransportError::BadAddress { .. }),
                "{text}: {error}"
            );
        }
    });
}

#[test]
fn a_port_in_use_says_so() {
    run(async {
        let (node, _, _) = leaf("n");
        let first = listen(&node, "127.0.0.1:0").await.unwrap();
        let error = listen(&node, first.local_addr()).await.unwrap_err();
        assert!(
            matches!(error, TransportError::AddressInUse { .. }),
            "{error}"
        );
        assert!(error.to_string().contains("already in use"), "{error}");
    });
}

#[cfg(unix)]
#[test]
fn a_unix_path_in_use_says_so() {
    run(async {
        let (node, _, _) = leaf("n");
        let path =
            std::env::temp_dir().join(format!("circuit-smol-inuse-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let first = listen(&node, Address::unix(&path)).await.unwrap();
        let error = listen(&node, Address::unix(&path)).await.unwrap_err();
        assert!(
            matches!(error, TransportError::AddressInUse { .. }),
            "{error}"
        );
        drop(first);
    });
}

#[test]
fn nothing_listening_is_a_connect_error() {
    run(async {
        let (node, _, _) = leaf("n");
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap()
        };
        let error = connect(&node, port).await.unwrap_err();
        assert!(matches!(error, TransportError::Connect { .. }), "{error}");
    });
}

#[test]
fn an_unknown_host_is_a_resolve_error() {
    run(async {
        let (node, _, _) = leaf("n");
        let error = connect(&node, "no-such-host.invalid:80").await.unwrap_err();
        assert!(matches!(error, TransportError::Resolve { .. }), "{error}");
    });
}
