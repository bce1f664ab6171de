//! Short constructors for names, qualities and messages in tests.

use std::time::Duration;

use circuit_frame::{Name, NodeState, Quality};

pub fn name(s: &str) -> Name {
    Name::new(s).expect("test names are short")
}

pub fn q(v: u8) -> Quality {
    Quality::new(v).expect("test qualities are below 255")
}

pub fn online(node: &str, quality: u8) -> NodeState {
    NodeState::Online {
        node: name(node),
        quality: q(quality),
    }
}

pub fn offline(node: &str) -> NodeState {
    NodeState::Offline { node: name(node) }
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
