//! A node's routing table for people (an aligned table) and for Graphviz.

use std::fmt::Write;

use circuit_node::routing::LinkId;
use circuit_node::NodeSnapshot;

/// The neighbour at the other end of `link`, or the link's id.
fn neighbour(snapshot: &NodeSnapshot, link: LinkId) -> String {
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
