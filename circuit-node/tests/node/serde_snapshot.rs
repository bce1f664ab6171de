//! The `serde` feature: a snapshot serializes, with names as strings,
//! qualities as numbers and the mux counters as an object.

use circuit_frame::Quality;
use serde_json::Value;

use crate::support::*;

#[test]
fn a_snapshot_serializes_to_json() {
    let mut net = Net::new();
    let r = net.router("r");
    let a = net.leaf("a");
    let b = net.leaf("b");
    let _ra = net.link(&r.node, &a.node, Quality::IN_PROCESS);
    let _rb = net.link(&r.node, &b.node, Quality::LOCAL_SOCKET);
    net.settle();
    net.tick();
    assert!(a.node.is_reachable("b"));

    let json = serde_json::to_value(a.node.snapshot()).expect("serializes");
    assert_eq!(json["routing"]["node"], "a");
    assert_eq!(json["routing"]["role"], "Leaf");
    let peers = json["routing"]["peers"].as_array().expect("peers");
    let b_entry = peers
        .iter()
        .find(|p| p["node"] == "b")
        .unwrap_or_else(|| panic!("{json}"));
    // [link, quality]: through r, b's link plus a's.
    assert_eq!(b_entry["best"][0], 0);
    assert_eq!(b_entry["best"][1], 3, "{b_entry}");
    assert_eq!(b_entry["routes"][0]["best"], true);
    let link = &json["links"][0];
    assert_eq!(link["peer"], "r");
    assert_eq!(link["quality"], 1);
    assert!(link["mux"]["bytes_in"].as_u64().is_some_and(|n| n > 0));
    assert!(matches!(
        link["mux"]["mode"].as_str(),
        Some("v0" | "credit")
    ));
    assert!(link["mux"].get("rtt_us").is_some());
    assert!(matches!(&link["role"], Value::String(r) if r == "server"));
}
