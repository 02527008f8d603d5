//! Read-only queries on a [`Graph`]: values, nodes, ports and initializers by id or name.

use super::types::{Def, Graph, Node, NodeId, Port, Use, Value, ValueId};
use crate::proto as pb;

impl Graph {
    /// The value with this id.
    pub fn value(&self, id: ValueId) -> &Value {
        &self.values[id.index()]
    }
    /// The distinct nodes of this graph that read `id`, in id order (graph outputs and subgraph
    /// reads are not nodes of this graph).
    pub fn reader_nodes(&self, id: ValueId) -> Vec<NodeId> {
        let mut nodes: Vec<NodeId> = self.values[id.index()]
            .uses
            .iter()
            .filter_map(|u| match u {
                Use::Node { node, .. } => Some(*node),
                _ => None,
            })
            .collect();
        nodes.sort_unstable();
        nodes.dedup();
        nodes
    }
    /// The value called `name`.
    pub fn value_by_name(&self, name: &str) -> Option<ValueId> {
        self.names.get(name).copied()
    }
    /// The node with this id, or `None` if it was removed.
    pub fn node(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(id.index()).and_then(Option::as_ref)
    }
    /// Mutable access to a node's attributes and proto fields (its wiring changes only through the
    /// editing verbs).
    pub fn node_mut(&mut self, id: NodeId) -> Option<&mut Node> {
        self.nodes.get_mut(id.index()).and_then(Option::as_mut)
    }
    /// Live nodes with their ids, in arena order (file order, then nodes added since).
    pub fn nodes(&self) -> impl Iterator<Item = (NodeId, &Node)> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.as_ref().map(|n| (NodeId(i as u32), n)))
    }
    /// All values with their ids.
    pub fn values(&self) -> impl Iterator<Item = (ValueId, &Value)> {
        self.values
            .iter()
            .enumerate()
            .map(|(i, v)| (ValueId(i as u32), v))
    }
    /// Graph inputs.
    pub fn inputs(&self) -> &[Port] {
        &self.inputs
    }
    /// Graph outputs.
    pub fn outputs(&self) -> &[Port] {
        &self.outputs
    }
    /// Dense initializers in order.
    pub fn initializers(&self) -> Vec<ValueId> {
        self.initializers
            .iter()
            .copied()
            .filter(|v| matches!(self.values[v.index()].def, Def::Initializer(_)))
            .collect()
    }
    /// `value_info` entries of live values, in order.
    pub fn value_info(&self) -> impl Iterator<Item = &Port> {
        self.value_info
            .iter()
            .filter(|p| !self.values[p.value.index()].name.is_empty())
    }
    /// The tensor type declared for `value` by a graph input, graph output or `value_info` entry,
    /// if one declares it (the first that does; the IR does not infer types).
    pub fn declared_type(&self, value: ValueId) -> Option<&pb::type_proto::Tensor> {
        let ports = self
            .inputs
            .iter()
            .chain(&self.outputs)
            .filter(|p| p.value == value);
        let infos = self
            .value_info_of
            .get(&value)
            .into_iter()
            .flatten()
            .map(|&i| &self.value_info[i]);
        ports.chain(infos).find_map(tensor_type)
    }
    /// Sparse initializers in order.
    pub fn sparse_initializers(&self) -> &[ValueId] {
        &self.sparse_initializers
    }

    /// The node that produces `value`, if a node does.
    pub fn producer(&self, value: ValueId) -> Option<NodeId> {
        match self.value(value).def {
            Def::Node { node, .. } => Some(node),
            _ => None,
        }
    }
}

/// The tensor type of a port, when it declares one.
fn tensor_type(p: &Port) -> Option<&pb::type_proto::Tensor> {
    match p.info.r#type.as_ref()?.value.as_ref()? {
        pb::type_proto::Value::TensorType(t) => Some(t),
        _ => None,
    }
}
