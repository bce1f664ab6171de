//! A real `Node` whose link to a hostile peer carries arbitrary control
//! traffic: the fuzzer plays the peer's mux byte for byte, sends `Identify`
//! and its `Online`, then an arbitrary sequence of `NodeState` messages
//! (valid names from a small pool so that routes collide, names with any
//! bytes, raw bytes), routed streams with arbitrary headers, clock ticks
//! and a close of the control stream. The node (leaf or router, peer table
//! bounded at 16) also has an ordinary neighbour `b`.
//!
//! Deterministic: one `LocalPool`, a `ManualClock`, in-memory pipes.
//!
//! - Nothing panics; the link ends, if it does, with a typed `NodeError`.
//! - The peer table never passes its bound.
//! - What the node writes back is well framed, and its control stream
//!   decodes as `Identify` then `NodeState`s.
//! - Once the hostile link is cut and the hold-down has passed, the node
//!   knows `b` alone, `b` knows the node alone, and one link is left.
#![no_main]

use std::sync::Arc;
use std::time::Duration;

use circuit_frame::{Decode, Decoded, Encode, Frame, Identify, Name, NodeState, Quality};
use circuit_mux::Role as MuxRole;
use circuit_node::routing::RoutingConfig;
use circuit_node::timer::ManualClock;
use circuit_node::{Node, NodeConfig, NodeError};
use circuit_stream::Duplex;
use futures::executor::LocalPool;
use futures::future::RemoteHandle;
use futures::task::LocalSpawnExt;
use futures::{FutureExt, StreamExt};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

const MAX_PEERS: usize = 16;
const CONTROL: u32 = 1;

/// A name on the wire: mostly from a small pool, sometimes any bytes.
fn wire_name(u: &mut Unstructured<'_>, out: &mut Vec<u8>) -> Result<()> {
    if u.ratio(1, 8)? {
        let len = u.int_in_range(0..=12)?;
        out.push(len);
        out.extend_from_slice(u.bytes(usize::from(len))?);
    } else {
        let name = match u.int_in_range(0..=40)? {
            0 => "a".to_owned(),
            1 => "b".to_owned(),
            2 => "raw".to_owned(),
            n => format!("n{n}"),
        };
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
    }
    Ok(())
}

/// The raw peer's side of the hostile link.
struct Peer {
    io: Duplex,
    /// Bytes for the node not yet taken by its pipe.
    to_node: Vec<u8>,
    /// Control-stream bytes not yet framed.
    control: Vec<u8>,
    from_node: Vec<u8>,
    /// The node's control stream as received.
    node_control: Vec<u8>,
    next_stream: u32,
}

impl Peer {
    fn frame_control(&mut self, chunk: usize) {
        for piece in self.control.chunks(chunk.max(1)) {
            if let Ok(f) = Frame::data(CONTROL, piece) {
                f.encode_to_vec(&mut self.to_node);
            }
        }
        self.control.clear();
    }

    /// Moves bytes both ways; returns whether anything moved.
    fn exchange(&mut self) -> bool {
        let mut moved = false;
        if !self.to_node.is_empty() {
            let n = self.to_node.len();
            if let Ok(taken) = self.io.writer().try_write_with(1, |out| {
                let k = out.len().min(n);
                out[..k].copy_from_slice(&self.to_node[..k]);
                k
            }) {
                self.to_node.drain(..taken);
                moved |= taken > 0;
            }
        }
        let from_node = &mut self.from_node;
        if let Ok(Some(n)) = self.io.reader().try_read_with(0, |b| {
            from_node.extend_from_slice(b);
            (b.len(), b.len())
        }) {
            moved |= n > 0;
        }
        // Take whole frames from the node.
        let mut used = 0;
        while let Ok(Decoded::Complete { message, consumed }) =
            Frame::decode(&self.from_node[used..])
        {
            if let Frame::Data {
                stream_id: CONTROL,
                payload,
            } = message
            {
                self.node_control.extend_from_slice(payload);
            }
            used += consumed;
        }
        self.from_node.drain(..used);
        moved
    }
}

struct World {
    pool: LocalPool,
    clock: ManualClock,
    a: Node,
    a_peers: circuit_node::PeerEvents,
    a_incoming: circuit_node::IncomingStreams,
    b: Node,
    b_peers: circuit_node::PeerEvents,
}

impl World {
    /// Runs the nodes and the peer until nothing moves.
    fn settle(&mut self, peer: &mut Option<Peer>) {
        for _ in 0..64 {
            self.pool.run_until_stalled();
            while let Some(Some(_)) = self.a_peers.next().now_or_never() {}
            while let Some(Some(_)) = self.b_peers.next().now_or_never() {}
            while let Some(Some(stream)) = self.a_incoming.next().now_or_never() {
                drop(stream);
            }
            let moved = peer.as_mut().is_some_and(Peer::exchange);
            if !moved {
                self.pool.run_until_stalled();
                break;
            }
        }
        assert!(self.a.snapshot().routing.peers.len() <= MAX_PEERS);
        assert!(self.a.reachable_peers().len() <= MAX_PEERS);
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = run(data);
});

fn run(data: &[u8]) -> Result<()> {
    let mut u = Unstructured::new(data);
    let router = u.arbitrary::<bool>()?;
    let clock = ManualClock::new();
    let mut routing = RoutingConfig::default();
    routing.max_peers = MAX_PEERS;
    let config = if router {
        NodeConfig::router(Arc::new(clock.clone()))
    } else {
        NodeConfig::leaf()
    }
    .routing(routing.clone())
    .incoming_queue(4);
    let (a, a_peers, a_incoming) = Node::new("a", "fuzz", config).expect("valid names");
    let (b, b_peers, _b_incoming) =
        Node::new("b", "fuzz", NodeConfig::leaf().routing(routing)).expect("valid names");
    let pool = LocalPool::new();
    let spawner = pool.spawner();
    let (a_io, b_io) = circuit_stream::duplex_pair(64 * 1024);
    let _ab: RemoteHandle<_> = spawner
        .spawn_local_with_handle(a.link_io(a_io, MuxRole::Server, Quality::IN_PROCESS))
        .expect("pool runs");
    let _ba: RemoteHandle<_> = spawner
        .spawn_local_with_handle(b.link_io(b_io, MuxRole::Client, Quality::IN_PROCESS))
        .expect("pool runs");
    // The node is the client of the hostile link: the peer opens stream 1.
    let (node_io, peer_io) = circuit_stream::duplex_pair(64 * 1024);
    let hostile: RemoteHandle<std::result::Result<(), NodeError>> = spawner
        .spawn_local_with_handle(a.link_io(node_io, MuxRole::Client, Quality::NETWORK))
        .expect("pool runs");
    let mut world = World {
        pool,
        clock,
        a,
        a_peers,
        a_incoming,
        b,
        b_peers,
    };
    let mut peer = Some(Peer {
        io: peer_io,
        to_node: Vec::new(),
        control: Vec::new(),
        from_node: Vec::new(),
        node_control: Vec::new(),
        next_stream: 3,
    });
    world.settle(&mut peer);

    let outcome = drive(&mut u, &mut world, &mut peer);

    // Cut the hostile link; it must end, and leave nothing behind.
    let node_control = peer.take().map(|p| p.node_control).unwrap_or_default();
    world.settle(&mut None);
    let mut hostile = hostile;
    let ended = (&mut hostile).now_or_never();
    assert!(ended.is_some(), "the hostile link future did not end");
    for _ in 0..20 {
        world.clock.advance(Duration::from_millis(100));
        world.settle(&mut None);
    }
    assert_eq!(world.a.reachable_peers(), vec![name("b")]);
    // `b` may keep routes learned from streams that `a` forwarded to it
    // (quality UNKNOWN, PROTOCOL 2.4): their link to `a` is still up. Any
    // route `a` advertised is gone.
    let b_snap = world.b.snapshot();
    assert_eq!(
        b_snap.route_to("a").map(|(_, q)| q),
        Some(Quality::IN_PROCESS)
    );
    for peer in world.b.reachable_peers() {
        if peer != "a" {
            let quality = b_snap.route_to(&peer).map(|(_, q)| q);
            assert_eq!(
                quality,
                Some(Quality::UNKNOWN),
                "b: stale route to {peer}\n{b_snap}"
            );
        }
    }
    let snap = world.a.snapshot();
    assert_eq!(snap.links.len(), 1, "{snap}");
    assert_eq!(snap.routing.peers.len(), 1, "{snap}");
    check_node_control(&node_control);
    outcome
}

fn name(s: &str) -> Name {
    Name::new(s).expect("short name")
}

/// The node's side of the control stream: Identify, then NodeStates.
fn check_node_control(bytes: &[u8]) {
    let mut rest = bytes;
    match Identify::decode(rest) {
        Ok(Decoded::Complete { message, consumed }) => {
            assert_eq!(message, Identify::new(name("fuzz")));
            rest = &rest[consumed..];
        }
        Ok(Decoded::Incomplete { .. }) => return,
        Err(e) => panic!("the node wrote a bad Identify: {e}"),
    }
    loop {
        match NodeState::decode(rest) {
            Ok(Decoded::Complete { consumed, .. }) => rest = &rest[consumed..],
            Ok(Decoded::Incomplete { .. }) => return,
            Err(e) => panic!("the node wrote a bad NodeState: {e}"),
        }
    }
}

fn drive(u: &mut Unstructured<'_>, world: &mut World, peer: &mut Option<Peer>) -> Result<()> {
    let Some(p) = peer.as_mut() else {
        return Ok(());
    };
    // The handshake: mostly right, sometimes anything.
    if u.ratio(1, 16)? {
        let len = u.int_in_range(0..=16)?;
        p.control.extend_from_slice(u.bytes(len)?);
    } else {
        Identify::new(name("fuzz")).encode_to_vec(&mut p.control);
        NodeState::Online {
            node: name("raw"),
            quality: Quality::SELF,
        }
        .encode_to_vec(&mut p.control);
    }
    p.frame_control(65535);
    world.settle(peer);
    while !u.is_empty() {
        let Some(p) = peer.as_mut() else {
            return Ok(());
        };
        match u.int_in_range(0u8..=9)? {
            // Route updates, several per frame.
            0..=3 => {
                for _ in 0..u.int_in_range(1..=8)? {
                    p.control.push(u.arbitrary()?);
                    wire_name(u, &mut p.control)?;
                }
                let chunk = u.int_in_range(1..=64)?;
                p.frame_control(chunk);
            }
            // Many names at once: more than the peer table holds.
            4 => {
                let base: u16 = u.arbitrary()?;
                for i in 0..u.int_in_range(1..=64u16)? {
                    let node = format!("flood{}", base.wrapping_add(i));
                    NodeState::Online {
                        node: name(&node),
                        quality: Quality::NETWORK,
                    }
                    .encode_to_vec(&mut p.control);
                }
                p.frame_control(65535);
            }
            5 => {
                let len = u.int_in_range(0..=32)?;
                p.control.extend_from_slice(u.bytes(len)?);
                p.frame_control(65535);
            }
            // A routed stream with an arbitrary header, maybe closed.
            6 => {
                let id = p.next_stream;
                p.next_stream = p.next_stream.wrapping_add(2);
                let mut bytes = Vec::new();
                wire_name(u, &mut bytes)?;
                wire_name(u, &mut bytes)?;
                let len = u.int_in_range(0..=16)?;
                bytes.extend_from_slice(u.bytes(len)?);
                if let Ok(f) = Frame::data(id, &bytes) {
                    f.encode_to_vec(&mut p.to_node);
                }
                if u.arbitrary()? {
                    Frame::close(id, "").encode_to_vec(&mut p.to_node);
                }
            }
            7 => {
                let ms = u.int_in_range(1..=500)?;
                world.clock.advance(Duration::from_millis(ms));
            }
            8 => {
                if u.ratio(1, 4)? {
                    Frame::close(CONTROL, "bye").encode_to_vec(&mut p.to_node);
                }
            }
            _ => {}
        }
        world.settle(peer);
    }
    Ok(())
}
