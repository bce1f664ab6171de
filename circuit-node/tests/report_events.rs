//! Forward reports as `tracing` events: with `DEBUG` on for the node and no
//! subscription, each close a router passes on is logged with structured
//! fields. Alone in its test binary: `tracing` caches which call sites are
//! enabled process-wide, and other tests running at the same time without
//! a subscriber would race with this one's.

#[path = "node/support.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use circuit_frame::Quality;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

use support::*;

/// A subscriber that keeps the fields of the node's report events.
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<BTreeMap<String, String>>>>);

/// An event's fields, as text.
struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}"));
    }
}

impl Subscriber for Events {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        if event.metadata().target() == "circuit_node::report" {
            let mut fields = Fields(BTreeMap::new());
            event.record(&mut fields);
            self.0.lock().unwrap().push(fields.0);
        }
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

#[test]
fn with_debug_events_on_each_close_is_logged_with_its_fields_without_a_subscription() {
    let events = Events::default();
    // Returned so that it is dropped once the subscriber is gone: the end
    // of its links is not logged.
    let _net = tracing::subscriber::with_default(events.clone(), || {
        let mut net = Net::new();
        let a = net.leaf("a");
        let r1 = net.router("r1");
        let r2 = net.router("r2");
        let mut b = net.leaf("b");
        let links = [
            net.link(&a.node, &r1.node, Quality::IN_PROCESS),
            net.link(&r1.node, &r2.node, Quality::IN_PROCESS),
            net.link(&r2.node, &b.node, Quality::IN_PROCESS),
        ];
        net.settle();
        for _ in 0..3 {
            net.tick();
        }
        let (at_a, at_b) = net.run(async {
            let mut s = a.node.connect_to_peer("b").await.unwrap();
            s.write_all(b"hi").await.unwrap();
            let at_b = b.incoming.next().await.unwrap().stream;
            at_b.writer().close("bye");
            let _ = s.read_to_end(&mut Vec::new()).await;
            assert_eq!(s.reader().closed_reason().as_deref(), Some("bye"));
            (s, at_b)
        });
        net.settle();
        (net, [a, r1, r2, b], links, at_a, at_b)
    });
    let logged = events.0.lock().unwrap().clone();
    let at = |node: &str| {
        let found: Vec<_> = logged
            .iter()
            .filter(|e| e.get("at").map(String::as_str) == Some(node))
            .collect();
        assert_eq!(found.len(), 1, "{node}: {logged:#?}");
        found[0].clone()
    };
    let r2 = at("r2");
    let field = |k: &str| r2.get(k).map(String::as_str);
    assert_eq!(field("message"), Some("forwarded stream closed"));
    assert_eq!(field("closed_by"), Some("neighbour b"));
    assert_eq!(field("epitaph"), Some("bye"));
    assert_eq!(field("destination"), Some("b"));
    assert_eq!(field("source"), Some("a"));
    assert_eq!(field("toward"), Some("Source"));
    assert_eq!(field("in_peer"), Some("r1"));
    assert_eq!(field("out_peer"), Some("b"));
    assert!(field("in_stream").is_some() && field("out_stream").is_some());
    let r1 = at("r1");
    assert_eq!(
        r1.get("closed_by").map(String::as_str),
        Some("neighbour r2")
    );
    assert_eq!(r1.get("epitaph").map(String::as_str), Some("bye"));
    assert_eq!(logged.len(), 2, "{logged:#?}");
}
