//! Topological order of a graph's nodes, stable with respect to arena (file) order.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::PathBuf;

use super::types::{Def, Graph, NodeId, Use};
use crate::error::{Error, Result};

impl Graph {
    /// Node ids in a topological order that keeps the arena order wherever the edges allow it. A node
    /// comes after the producers of its inputs and of the outer values its subgraphs read. Fails
    /// naming a node on a cycle.
    pub fn topological_order(&self) -> Result<Vec<NodeId>> {
        let reader = |u: &Use| match *u {
            Use::Node { node, .. } | Use::Subgraph { node } => Some(node),
            Use::Output(_) => None,
        };
        let mut pending: Vec<usize> = vec![0; self.nodes.len()];
        for v in &self.values {
            if matches!(v.def, Def::Node { .. }) {
                for c in v.uses.iter().filter_map(reader) {
                    pending[c.index()] += 1;
                }
            }
        }
        // A min-heap on arena index keeps file order for already-sorted graphs.
        let mut ready: BinaryHeap<Reverse<usize>> = self
            .nodes()
            .filter(|(id, _)| pending[id.index()] == 0)
            .map(|(id, _)| Reverse(id.index()))
            .collect();
        let mut order = Vec::with_capacity(self.nodes.len());
        while let Some(Reverse(i)) = ready.pop() {
            order.push(NodeId(i as u32));
            let node = self.nodes[i]
                .as_ref()
                .unwrap_or_else(|| unreachable!("only live nodes are queued"));
            for v in node.outputs.iter().flatten() {
                for c in self.values[v.index()].uses.iter().filter_map(reader) {
                    pending[c.index()] -= 1;
                    if pending[c.index()] == 0 {
                        ready.push(Reverse(c.index()));
                    }
                }
            }
        }
        if order.len() != self.nodes().count() {
            let stuck = self
                .nodes()
                .find(|(id, _)| pending[id.index()] > 0)
                .map(|(_, n)| n);
            let what = stuck.map_or_else(String::new, |n| {
                format!(" through node `{}` ({})", n.name(), n.op_type())
            });
            return Err(Error::Invalid {
                path: PathBuf::new(),
                reason: format!("the graph has a cycle{what}"),
            });
        }
        Ok(order)
    }
}
