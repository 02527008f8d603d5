//! The float model's graph order: every tensor of its main graph numbered as it is computed
//! (graph inputs first, then each node's outputs in topological order), with the node that
//! writes it. Weights and activations are placed on this one axis in the report.

use std::collections::HashMap;

use onnxq_ir::{Def, Graph, NodeId};

/// Positions and producers of the float model's tensors.
#[derive(Debug, Clone, Default)]
pub struct Order {
    /// Tensor names in order.
    pub names: Vec<String>,
    index: HashMap<String, usize>,
    producer: HashMap<String, NodeId>,
}

impl Order {
    /// The order of `g`'s main graph.
    pub fn of(g: &Graph) -> onnxq_ir::Result<Order> {
        let mut o = Order::default();
        for p in g.inputs() {
            if matches!(g.value(p.value).def(), Def::Input) {
                o.push(g.value(p.value).name(), None);
            }
        }
        for id in g.topological_order()? {
            let Some(n) = g.node(id) else { continue };
            for v in n.outputs().iter().flatten() {
                o.push(g.value(*v).name(), Some(id));
            }
        }
        Ok(o)
    }

    fn push(&mut self, name: &str, producer: Option<NodeId>) {
        if self.index.contains_key(name) || name.is_empty() {
            return;
        }
        self.index.insert(name.to_owned(), self.names.len());
        self.names.push(name.to_owned());
        if let Some(p) = producer {
            self.producer.insert(name.to_owned(), p);
        }
    }

    /// The position of tensor `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// The node that writes `name` (`None` for graph inputs).
    pub fn producer(&self, name: &str) -> Option<NodeId> {
        self.producer.get(name).copied()
    }
}

/// A node's label: its name, or its first output's name when it has none (as the quantize report
/// and `--exclude` name nodes).
pub fn label(g: &Graph, id: NodeId) -> String {
    let Some(n) = g.node(id) else {
        return String::new();
    };
    if !n.name().is_empty() {
        return n.name().to_owned();
    }
    n.outputs()
        .iter()
        .flatten()
        .next()
        .map(|v| g.value(*v).name().to_owned())
        .unwrap_or_default()
}
