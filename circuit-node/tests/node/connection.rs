//! The connection layer: stream 0 at once, bind_stream, parity, malformed
//! streams dropped without harm, loopback refused, bounded table.

use circuit_frame::{ConnectionHeader, Quality};
use circuit_node::connection::{ConnectionNode, IncomingConnections};
use circuit_node::NodeError;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};

use crate::support::*;

fn pair(
    net: &mut Net,
) -> (
    ConnectionNode,
    IncomingConnections,
    ConnectionNode,
    IncomingConnections,
    LinkHandles,
) {
    let mut a = net.leaf("a");
    let mut b = net.leaf("b");
    let link = net.link(&a.node, &b.node, Quality::IN_PROCESS);
    net.run(async {
        a.peers.next().await;
        b.peers.next().await;
    });
    let (ca, ia) = ConnectionNode::new(a.node, a.incoming);
    let (cb, ib) = ConnectionNode::new(b.node, b.incoming);
    (ca, ia, cb, ib, link)
}

#[test]
fn stream_zero_then_bound_streams_both_ways() {
    let mut net = Net::new();
    let (ca, mut ia, cb, mut ib, _link) = pair(&mut net);
    net.run(async {
        let (conn, mut s0) = ca.connect_to_peer("b").await.unwrap();
        assert!(conn.is_client());
        s0.write_all(b"zero").await.unwrap();
        let new = ib.next().await.unwrap();
        let peer_conn = new.connection;
        let mut p0 = new.stream;
        assert_eq!(peer_conn.from(), "a");
        assert!(!peer_conn.is_client());
        assert_eq!(peer_conn.conn_id(), conn.conn_id());
        let mut buf = [0; 4];
        p0.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"zero");

        // Connecting end allocates 2, 4, ...; accepting end 1, 3, ...
        let (id, mut s2) = conn.alloc_stream().await.unwrap();
        assert_eq!(id, 2);
        s2.write_all(b"two").await.unwrap();
        let (id1, mut p1) = peer_conn.alloc_stream().await.unwrap();
        assert_eq!(id1, 1);
        p1.write_all(b"one").await.unwrap();

        // The accepting side's IncomingConnections routes stream 2; the
        // connecting side's routes stream 1. Drive both while binding.
        let drive = async {
            futures::join!(async { while ia.next().await.is_some() {} }, async {
                while ib.next().await.is_some() {}
            });
        };
        let bind = async {
            let mut got2 = peer_conn.bind_stream(2).await.unwrap();
            let mut got1 = conn.bind_stream(1).await.unwrap();
            let mut b3 = [0; 3];
            got2.read_exact(&mut b3).await.unwrap();
            assert_eq!(&b3, b"two");
            got1.read_exact(&mut b3).await.unwrap();
            assert_eq!(&b3, b"one");
            assert!(matches!(
                conn.bind_stream(2).await,
                Err(NodeError::BadStreamId { stream_id: 2, .. })
            ));
            assert!(matches!(
                peer_conn.bind_stream(0).await,
                Err(NodeError::BadStreamId { stream_id: 0, .. })
            ));
        };
        futures::pin_mut!(drive, bind);
        futures::future::select(drive, bind).await;
    });
    // Every Connection handle is gone now: so are the table entries.
    assert_eq!(cb.connections(), 0);
}

#[test]
fn loopback_connections_are_refused() {
    let mut net = Net::new();
    let (ca, _ia, _cb, _ib, _link) = pair(&mut net);
    assert!(matches!(
        net.run(ca.connect_to_peer("a")),
        Err(NodeError::Loopback)
    ));
}

#[test]
fn malformed_streams_are_dropped_and_the_node_goes_on() {
    let mut net = Net::new();
    let (ca, _ia, cb, mut ib, _link) = pair(&mut net);
    let node = ca.node().clone();
    net.run(async {
        // Fewer than 16 header bytes, then close.
        let mut s = node.connect_to_peer("b").await.unwrap();
        s.write_all(&[1, 2, 3]).await.unwrap();
        s.close().await.unwrap();
        // An unknown conn_id with a non-zero stream id.
        let s = node.connect_to_peer("b").await.unwrap();
        let header = ConnectionHeader {
            conn_id: 77,
            stream_id: 4,
        };
        s.writer().write_message(&header).await.unwrap();
        let mut unknown = s;
        // A real connection, then a stream of the wrong parity for it (odd
        // ids are the accepting end's).
        let (conn, _s0) = ca.connect_to_peer("b").await.unwrap();
        let new = ib.next().await.unwrap();
        let s = node.connect_to_peer("b").await.unwrap();
        let header = ConnectionHeader {
            conn_id: conn.conn_id(),
            stream_id: 3,
        };
        s.writer().write_message(&header).await.unwrap();
        let mut wrong = s;
        // Both dropped streams read as ended at the opener.
        let drive = async { while ib.next().await.is_some() {} };
        let check = async {
            let mut buf = Vec::new();
            let _ = unknown.read_to_end(&mut buf).await;
            let _ = wrong.read_to_end(&mut buf).await;
            assert!(buf.is_empty());
            // And the connection still works.
            let (_, mut s4) = conn.alloc_stream().await.unwrap();
            s4.write_all(b"ok").await.unwrap();
            let mut got = new.connection.bind_stream(2).await.unwrap();
            let mut b2 = [0; 2];
            got.read_exact(&mut b2).await.unwrap();
            assert_eq!(&b2, b"ok");
        };
        futures::pin_mut!(drive, check);
        futures::future::select(drive, check).await;
    });
    // Every Connection handle is gone now: so are the table entries.
    assert_eq!(cb.connections(), 0);
}

#[test]
fn table_entries_go_when_the_connection_is_dropped() {
    let mut net = Net::new();
    let (ca, _ia, cb, mut ib, _link) = pair(&mut net);
    net.run(async {
        let (conn, _s0) = ca.connect_to_peer("b").await.unwrap();
        let new = ib.next().await.unwrap();
        assert_eq!((ca.connections(), cb.connections()), (1, 1));
        drop(new);
        drop(conn);
    });
    assert_eq!((ca.connections(), cb.connections()), (0, 0));
}
