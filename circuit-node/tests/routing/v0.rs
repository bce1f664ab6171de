//! Compatibility with a v0 router: the bytes of `vectors/router_session.txt`
//! (a leaf -> router r -> leaf b, every link `Quality::NETWORK`).

use std::time::Duration;

use circuit_frame::{Decode, Decoded, Frame, Identify, NodeState, Quality};
use circuit_node::routing::{LinkId, Role, RouteCore, RouteEvent, RoutingConfig};

use crate::support::{name, online, q};

/// What r wrote to b, from `router.r_to_b.hex`, up to the forwarded stream.
const R_TO_B: &[u8] = &[
    0x01, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x04, 0x74, 0x65, 0x73, 0x74, 0x00, 0x01, 0x72, 0x28,
    0x01, 0x61, 0x01, 0x00, 0x00, 0x00, 0x03, 0x00, 0x14, 0x01, 0x62,
];

/// What r wrote to a, from `router.r_to_a.hex`, up to the forwarded stream.
const R_TO_A: &[u8] = &[
    0x01, 0x00, 0x00, 0x00, 0x09, 0x00, 0x00, 0x04, 0x74, 0x65, 0x73, 0x74, 0x00, 0x01, 0x72, 0x01,
    0x00, 0x00, 0x00, 0x06, 0x00, 0x14, 0x01, 0x62, 0x14, 0x01, 0x61,
];

/// The control stream (mux id 1) of a trace, as `NodeState`s after its
/// `Identify`. Frame boundaries are not message boundaries, so the payloads
/// are joined before decoding.
fn control_states(mut bytes: &[u8]) -> Vec<NodeState> {
    let mut control = Vec::new();
    while !bytes.is_empty() {
        let Decoded::Complete { message, consumed } = Frame::decode(bytes).unwrap() else {
            panic!("truncated frame in the trace");
        };
        if let Frame::Data {
            stream_id: 1,
            payload,
        } = message
        {
            control.extend_from_slice(payload);
        }
        bytes = &bytes[consumed..];
    }
    let (identify, mut at) = Identify::decode(&control).unwrap().complete().unwrap();
    assert_eq!(identify, Identify::new(name("test")));
    let mut states = Vec::new();
    while at < control.len() {
        let (state, used) = NodeState::decode(&control[at..])
            .unwrap()
            .complete()
            .unwrap();
        states.push(state);
        at += used;
    }
    states
}

const T0: Duration = Duration::ZERO;
const R: LinkId = LinkId(7);

fn leaf_fed_by_v0(me: &str, trace: &[u8]) -> RouteCore {
    let mut leaf = RouteCore::new(name(me), Role::Leaf, RoutingConfig::default());
    leaf.link_up(R, Quality::NETWORK, T0).unwrap();
    for state in control_states(trace) {
        leaf.receive(R, state, T0).unwrap();
    }
    leaf
}

#[test]
fn v0_router_trace_decodes_to_the_documented_states() {
    assert_eq!(
        control_states(R_TO_B),
        vec![online("r", 0), online("a", 40), online("b", 20)]
    );
    assert_eq!(
        control_states(R_TO_A),
        vec![online("r", 0), online("b", 20), online("a", 20)]
    );
}

/// b hears a at 40 from r (v0 counted the a-r link already in its first
/// dump) and adds its own link: 60, where 40 is the true cost. Nothing to do
/// about what a v0 peer says; the table is still usable, and the state
/// about b itself is ignored.
#[test]
fn table_from_a_v0_router_as_b() {
    let mut b = leaf_fed_by_v0("b", R_TO_B);
    assert_eq!(b.best_route(&name("r")), Some((R, q(20))));
    assert_eq!(b.best_route(&name("a")), Some((R, q(60))));
    assert_eq!(b.best_route(&name("b")), None);
    assert_eq!(b.peer_table_len(), 2);
    assert_eq!(
        b.drain_events(),
        vec![
            RouteEvent::PeerReachable(name("r")),
            RouteEvent::PeerReachable(name("a"))
        ]
    );
}

#[test]
fn table_from_a_v0_router_as_a() {
    let a = leaf_fed_by_v0("a", R_TO_A);
    assert_eq!(a.best_route(&name("r")), Some((R, q(20))));
    assert_eq!(a.best_route(&name("b")), Some((R, q(40))));
    assert_eq!(a.peer_table_len(), 2);
    assert_eq!(a.link_counters(R).unwrap().bytes_received, 9);
}

/// The same session with our router in r's place: b's first dump carries
/// a at 20, not 40, and a is never told about itself (poisoned reverse).
#[test]
fn our_router_in_the_v0_session() {
    let (to_a, to_b) = (LinkId(0), LinkId(1));
    let mut r = RouteCore::new(name("r"), Role::Router, RoutingConfig::default());
    r.link_up(to_a, Quality::NETWORK, T0).unwrap();
    assert_eq!(
        r.poll_advertisements(T0),
        vec![(to_a, vec![online("r", 0)])]
    );
    r.receive(to_a, online("a", 0), T0).unwrap();

    let t1 = Duration::from_millis(30);
    r.link_up(to_b, Quality::NETWORK, t1).unwrap();
    assert_eq!(
        r.poll_advertisements(t1),
        vec![(to_b, vec![online("r", 0), online("a", 20)])]
    );
    r.receive(to_b, online("b", 0), t1).unwrap();

    let due = r.next_deadline().unwrap();
    assert_eq!(
        r.poll_advertisements(due),
        vec![(to_a, vec![online("b", 20)])],
        "v0 sends a: Online(b, 20), Online(a, 20); b hears nothing new"
    );
}
