//! Running a clean-up inside subgraph bodies: `each_body` calls a graph-level rule on every
//! If/Loop/Scan body, depth first, with its enclosing graphs as scope (closest first), and keeps
//! the IR's record of which outer values each body reads current afterwards (a folded body may
//! stop reading an outer weight, which dead-constant removal then drops).

use onnxq_ir::{Graph, NodeId, Result};

/// A clean-up of one graph given its enclosing scopes; returns how many places it changed.
pub(crate) type GraphRule<'r> = &'r mut dyn FnMut(&mut Graph, &[&Graph]) -> Result<usize>;

/// Runs `rule` on every body below `g` (not on `g` itself); returns the sum of its counts.
pub(crate) fn each_body(g: &mut Graph, outer: &[&Graph], rule: GraphRule<'_>) -> Result<usize> {
    let with_bodies: Vec<NodeId> = g
        .nodes()
        .filter(|(_, n)| n.attributes.iter().any(|a| !a.subgraphs.is_empty()))
        .map(|(id, _)| id)
        .collect();
    let mut done = 0;
    for id in with_bodies {
        let Some(node) = g.node_mut(id) else { continue };
        let mut attrs = std::mem::take(&mut node.attributes);
        let mut scope = vec![&*g];
        scope.extend_from_slice(outer);
        for sub in attrs.iter_mut().flat_map(|a| a.subgraphs.iter_mut()) {
            done += each_body(sub, &scope, rule)?;
            done += rule(sub, &scope)?;
            sub.forget_unread_outer();
        }
        if let Some(node) = g.node_mut(id) {
            node.attributes = attrs;
        }
        g.refresh_subgraph_uses(id)?;
    }
    Ok(done)
}
