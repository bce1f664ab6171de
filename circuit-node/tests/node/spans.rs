//! Each routed stream a node handles runs in a `DEBUG` span `stream` with
//! the link, the mux stream id, the destination and the source.

use std::io::Write;
use std::sync::{Arc, Mutex};

use circuit_frame::Quality;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};

use crate::support::*;

/// Collects what the fmt subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_forwarded_and_a_delivered_stream_each_run_in_a_span_naming_it() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("circuit_node=debug")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let mut net = Net::new();
        let r = net.router("r");
        let a = net.leaf("a");
        let mut b = net.leaf("b");
        let _ra = net.link(&a.node, &r.node, Quality::IN_PROCESS);
        let _rb = net.link(&b.node, &r.node, Quality::IN_PROCESS);
        net.settle();
        net.tick();
        net.run(async {
            let mut s = a.node.connect_to_peer("b").await.unwrap();
            s.write_all(b"hi").await.unwrap();
            let mut incoming = b.incoming.next().await.unwrap();
            let mut buf = [0; 2];
            incoming.stream.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"hi");
        });
    });
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let in_span = |event: &str| {
        text.lines().any(|l| {
            l.contains("stream{link=")
                && l.contains(" id=")
                && l.contains("destination=b")
                && l.contains("source=a")
                && l.contains(event)
        })
    };
    // At r, the splice onto the link to b; at b, the delivery.
    assert!(in_span(": forwarded"), "{text}");
    assert!(in_span(": incoming stream"), "{text}");
}

/// The mux's `link` span names the neighbour once the handshake has: the
/// node gives the mux its peer's name.
#[test]
fn the_mux_span_of_a_link_names_the_neighbour() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("circuit_mux=debug")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let mut net = Net::new();
        let a = net.leaf("a");
        let b = net.leaf("b");
        let mut ab = net.link(&a.node, &b.node, Quality::IN_PROCESS);
        net.settle();
        assert!(a.node.is_reachable("b"));
        // b's end goes: a's mux logs the link's end in its span.
        ab.b = None;
        net.settle();
    });
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.lines()
            .any(|l| l.contains("link{role=Client peer=b}") && l.contains("link closed")),
        "{text}"
    );
    assert!(!text.contains("peer=peer"), "{text}");
}
