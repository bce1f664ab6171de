//! A dialled link with a reconnect policy comes back after the far end
//! goes away and listens again on the same port.

mod common;

use std::time::Duration;

use circuit_transport_smol::{connect_with, listen, LinkOptions, ReconnectPolicy, TransportError};
use common::*;

#[test]
fn a_dropped_link_is_dialled_again_when_the_server_returns() {
    run(async {
        let (r, _, _) = router("r");
        let (a, mut a_events, _) = leaf("a");
        let listener = listen(&r, "127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().clone();
        let policy = ReconnectPolicy::default()
            .initial(Duration::from_millis(10))
            .max(Duration::from_millis(200));
        let link = connect_with(&a, &address, LinkOptions::new().reconnect(policy))
            .await
            .unwrap();
        reachable(&mut a_events, "r").await;

        // The server goes away: the link drops.
        listener.shutdown(Duration::from_secs(5)).await;
        drop(listener);
        unreachable(&mut a_events, "r").await;

        // It listens again on the same port; the client finds it.
        let listener = listen(&r, &address).await.unwrap();
        reachable(&mut a_events, "r").await;
        assert!(a.connect_to_peer("r").await.is_ok());

        let report = link.shutdown(Duration::from_secs(5)).await;
        assert_eq!(report.drained, 1, "{report:?}");
        link.join().await.unwrap();
        listener.shutdown(Duration::from_secs(5)).await;
    });
}

#[test]
fn a_policy_gives_up_after_its_attempts() {
    run(async {
        let (r, _, _) = router("r");
        let (a, mut a_events, _) = leaf("a");
        let listener = listen(&r, "127.0.0.1:0").await.unwrap();
        let policy = ReconnectPolicy::default()
            .initial(Duration::from_millis(1))
            .max(Duration::from_millis(5))
            .max_attempts(Some(3));
        let link = connect_with(
            &a,
            listener.local_addr(),
            LinkOptions::new().reconnect(policy),
        )
        .await
        .unwrap();
        reachable(&mut a_events, "r").await;
        listener.shutdown(Duration::from_secs(5)).await;
        drop(listener);
        let error = link.join().await.unwrap_err();
        assert!(matches!(error, TransportError::Connect { .. }), "{error}");
    });
}
