//! A node's routing table for people (an aligned table) and for Graphviz.

use std::fmt::Write;

use circuit_node::routing::LinkId;
use circuit_node::NodeSnapshot;
use serde_json::json;

/// The neighbour at the other end of `link`, or the link's id.
pub fn neighbour(snapshot: &NodeSnapshot, link: LinkId) -> String {
    snapshot
        .links
        .iter()
        .find(|l| l.link == link)
        .map_or_else(|| link.to_string(), |l| l.peer.to_string())
}

/// The routing table: one row per node, with the next hop and quality of
/// the route in use and every route known (`*` in use, `!` infeasible).
pub fn routing_table(snapshot: &NodeSnapshot) -> String {
    let own = &snapshot.routing.node;
    let mut rows = vec![[
        "NODE".to_owned(),
        "NEXT HOP".to_owned(),
        "QUALITY".to_owned(),
        "ROUTES (next hop quality)".to_owned(),
    ]];
    for peer in snapshot.routing.peers.iter().filter(|p| &p.node != own) {
        let (hop, quality) = match peer.best {
            Some((link, quality)) => (neighbour(snapshot, link), quality.to_string()),
            None => ("-".to_owned(), "unreachable".to_owned()),
        };
        let routes = peer
            .routes
            .iter()
            .map(|r| {
                let mark = if r.best {
                    "*"
                } else if r.feasible {
                    ""
                } else {
                    "!"
                };
                format!("{} {}{mark}", neighbour(snapshot, r.link), r.quality)
            })
            .collect::<Vec<_>>()
            .join(", ");
        rows.push([peer.node.to_string(), hop, quality, routes]);
    }
    let widths: Vec<usize> = (0..4)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(&widths) {
            let _ = write!(line, "{cell:<width$}  ");
        }
        out += line.trim_end();
        out.push('\n');
    }
    if rows.len() == 1 {
        out += "(no other node is known)\n";
    }
    out
}

/// The snapshot as lines of JSON (the fields are listed in `routes
/// --help`): one object per node known, then one per link.
pub fn json_lines(snapshot: &NodeSnapshot) -> Vec<serde_json::Value> {
    let own = &snapshot.routing.node;
    let nodes = snapshot.routing.peers.iter().filter(|p| &p.node != own);
    let mut lines: Vec<serde_json::Value> = nodes
        .map(|peer| {
            let routes: Vec<_> = peer
                .routes
                .iter()
                .map(|r| {
                    json!({
                        "next_hop": neighbour(snapshot, r.link),
                        "quality": r.quality,
                        "advertised": r.advertised,
                        "feasible": r.feasible,
                        "best": r.best,
                    })
                })
                .collect();
            json!({
                "node": peer.node,
                "next_hop": peer.best.map(|(link, _)| neighbour(snapshot, link)),
                "quality": peer.best.map(|(_, quality)| quality),
                "feasible_distance": peer.feasible_distance,
                "routes": routes,
            })
        })
        .collect();
    lines.extend(snapshot.links.iter().map(|link| {
        let mux = &link.mux;
        json!({
            "peer": link.peer,
            "mode": match mux.mode {
                circuit_mux::LinkMode::V0 => "v0",
                circuit_mux::LinkMode::Credit => "credit",
            },
            "bytes_in": mux.bytes_in,
            "bytes_out": mux.bytes_out,
            "streams_open": mux.streams_open,
            "streams_waiting_for_credit": mux.streams_waiting_for_credit,
            "bytes_granted": mux.bytes_granted,
            "rtt_us": mux.rtt.map(|rtt| u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX)),
        })
    }));
    lines
}

/// The mesh as far as `snapshot`'s node sees it, in Graphviz `dot`: its
/// own links (solid, with their quality) and, for every other node, a
/// dashed edge from the neighbour its route goes through, labelled with
/// the quality end to end. What lies beyond a neighbour is not visible.
pub fn dot(snapshot: &NodeSnapshot) -> String {
    let own = &snapshot.routing.node;
    let mut out = String::from("digraph circuit {\n  rankdir=LR;\n");
    let _ = writeln!(out, "  {:?} [shape=box, style=bold];", own.as_str());
    for link in &snapshot.links {
        let _ = writeln!(
            out,
            "  {:?} -> {:?} [label=\"{}\", dir=both];",
            own.as_str(),
            link.peer.as_str(),
            link.quality
        );
    }
    for peer in snapshot.routing.peers.iter().filter(|p| &p.node != own) {
        let Some((link, quality)) = peer.best else {
            let _ = writeln!(out, "  {:?} [style=dotted];", peer.node.as_str());
            continue;
        };
        let hop = neighbour(snapshot, link);
        if hop == peer.node.as_str() {
            continue; // a neighbour: drawn as a link above
        }
        let _ = writeln!(
            out,
            "  {:?} -> {:?} [label=\"{quality}\", style=dashed];",
            hop,
            peer.node.as_str()
        );
    }
    out += "}\n";
    out
}
