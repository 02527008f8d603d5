//! The editable graph: nodes and values in arenas with typed ids, values first-class with one
//! definition and a list of uses.
//!
//! Ids are never reused or renumbered while a graph lives (removed nodes leave a tombstone); save
//! compacts. The editing verbs in this file are the only code that changes `names`, `def` and `uses`,
//! so they stay consistent; [`Graph::validate`] checks that they do.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::path::PathBuf;

use onnxq_proto as pb;

use crate::error::{Error, Result};

/// Index of a node in its graph's arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub(crate) u32);

/// Index of a value in its graph's arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub(crate) u32);

impl NodeId {
    /// Position in the arena (stable for the life of the graph).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl ValueId {
    /// Position in the arena (stable for the life of the graph).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Where a value comes from.
#[derive(Debug, Clone)]
pub enum Def {
    /// A graph input fed at run time.
    Input,
    /// A constant initializer (its `name` field is unused: the value's name is authoritative). It may
    /// also be listed among the graph inputs, as IR < 4 models do.
    Initializer(Box<pb::TensorProto>),
    /// A sparse initializer (`values.name` unused, as above).
    SparseInitializer(Box<pb::SparseTensorProto>),
    /// Output `slot` of a node.
    Node {
        /// The producing node.
        node: NodeId,
        /// Output position.
        slot: usize,
    },
    /// A value of an enclosing graph, referred to by name from inside a subgraph.
    Outer,
    /// Named only by a `value_info` entry: neither produced nor used. Kept so a round trip loses
    /// nothing.
    Declared,
}

/// One use of a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Use {
    /// Input `slot` of a node.
    Node {
        /// The consuming node.
        node: NodeId,
        /// Input position.
        slot: usize,
    },
    /// The graph's output at this position.
    Output(usize),
    /// Read by name from inside a subgraph of this node (at any depth). Such reads follow the value's
    /// name: [`Graph::rename`] updates them and [`Graph::replace_uses`] leaves them in place.
    Subgraph {
        /// The node holding the subgraph.
        node: NodeId,
    },
}

/// A named value (an SSA edge).
#[derive(Debug, Clone)]
pub struct Value {
    pub(crate) name: String,
    pub(crate) def: Def,
    pub(crate) uses: Vec<Use>,
}

impl Value {
    /// The value's unique name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Where it comes from.
    pub fn def(&self) -> &Def {
        &self.def
    }
    /// Who reads it, in no particular order.
    pub fn uses(&self) -> &[Use] {
        &self.uses
    }
    /// The constant tensor, if the value is a dense initializer.
    pub fn initializer(&self) -> Option<&pb::TensorProto> {
        match &self.def {
            Def::Initializer(t) => Some(t),
            _ => None,
        }
    }
}

/// A node attribute: the proto for plain attributes; for `GRAPH`/`GRAPHS` attributes the bodies are
/// lifted out into nested [`Graph`]s (and `g`/`graphs` are left empty in `proto`).
#[derive(Debug, Clone)]
pub struct Attribute {
    /// Everything but the graph bodies, untouched.
    pub proto: pb::AttributeProto,
    /// Subgraph bodies (one for `GRAPH`, any number for `GRAPHS`).
    pub subgraphs: Vec<Graph>,
    /// Whether the body came from the single-graph field `g` (written back there).
    pub(crate) in_g: bool,
}

impl Attribute {
    /// A plain (non-graph) attribute.
    pub fn new(proto: pb::AttributeProto) -> Attribute {
        Attribute {
            proto,
            subgraphs: Vec::new(),
            in_g: false,
        }
    }
    /// The attribute name.
    pub fn name(&self) -> &str {
        self.proto.name()
    }
}

/// An operator application.
#[derive(Debug, Clone)]
pub struct Node {
    /// Inputs; `None` is an omitted optional input (an empty name in ONNX).
    pub(crate) inputs: Vec<Option<ValueId>>,
    /// Outputs; `None` is an omitted optional output.
    pub(crate) outputs: Vec<Option<ValueId>>,
    /// Attributes, in file order.
    pub attributes: Vec<Attribute>,
    /// The rest of the `NodeProto` (name, op_type, domain, overload, doc_string, metadata, device
    /// configurations), untouched; its `input`, `output` and `attribute` lists are left empty.
    pub proto: pb::NodeProto,
}

impl Node {
    /// A node of `op_type` in `domain` ("" = the default ONNX domain) with no inputs or outputs yet.
    pub fn new(op_type: &str, domain: &str, name: Option<String>) -> Node {
        Node {
            inputs: Vec::new(),
            outputs: Vec::new(),
            attributes: Vec::new(),
            proto: pb::NodeProto {
                name,
                op_type: Some(op_type.to_owned()),
                domain: (!domain.is_empty()).then(|| domain.to_owned()),
                ..Default::default()
            },
        }
    }
    /// The operator type.
    pub fn op_type(&self) -> &str {
        self.proto.op_type()
    }
    /// The operator domain, "" for the default ONNX domain (`ai.onnx`).
    pub fn domain(&self) -> &str {
        match self.proto.domain() {
            "ai.onnx" => "",
            d => d,
        }
    }
    /// The node name ("" when it has none).
    pub fn name(&self) -> &str {
        self.proto.name()
    }
    /// Input values.
    pub fn inputs(&self) -> &[Option<ValueId>] {
        &self.inputs
    }
    /// Output values.
    pub fn outputs(&self) -> &[Option<ValueId>] {
        &self.outputs
    }
    /// The attribute called `name`.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name() == name)
    }
}

/// A declared graph input, output or `value_info` entry: a value plus its type and doc. The proto's
/// `name` is unused; the value's name is authoritative, so renames need no bookkeeping here.
#[derive(Debug, Clone)]
pub struct Port {
    /// The value.
    pub value: ValueId,
    /// Type, doc string and metadata as written in the file.
    pub info: pb::ValueInfoProto,
}

/// A graph or subgraph.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    pub(crate) nodes: Vec<Option<Node>>,
    pub(crate) values: Vec<Value>,
    pub(crate) names: HashMap<String, ValueId>,
    /// Graph inputs, in order.
    pub(crate) inputs: Vec<Port>,
    /// Graph outputs, in order.
    pub(crate) outputs: Vec<Port>,
    /// `value_info` entries, in order.
    pub value_info: Vec<Port>,
    /// Dense initializers, in file order.
    pub(crate) initializers: Vec<ValueId>,
    /// Sparse initializers, in file order.
    pub(crate) sparse_initializers: Vec<ValueId>,
    /// The rest of the `GraphProto` (name, doc_string, quantization_annotation, metadata_props).
    pub proto: pb::GraphProto,
}

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
    pub fn initializers(&self) -> &[ValueId] {
        &self.initializers
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

    // ---- editing verbs: the only code that changes `names`, `def` and `uses` ----

    /// A name not yet used in this graph, built from `base`.
    pub fn fresh_name(&self, base: &str) -> String {
        if !base.is_empty() && !self.names.contains_key(base) {
            return base.to_owned();
        }
        (1u64..)
            .map(|i| format!("{base}_{i}"))
            .find(|n| !self.names.contains_key(n))
            .unwrap_or_else(|| unreachable!("u64 names cannot run out"))
    }

    /// Fails unless `name` is non-empty and unused.
    fn check_new_name(&self, name: &str) -> Result<()> {
        if name.is_empty() {
            return Err(Error::Edit("a value name cannot be empty".into()));
        }
        if self.names.contains_key(name) {
            return Err(Error::Edit(format!("value name `{name}` is already used")));
        }
        Ok(())
    }

    /// Fails unless `v` is a live value of this graph (not from another graph, not removed).
    fn check_live(&self, v: ValueId) -> Result<()> {
        match self.values.get(v.index()) {
            Some(value) if !value.name.is_empty() => Ok(()),
            Some(_) => Err(Error::Edit(format!("value {} was removed", v.0))),
            None => Err(Error::Edit(format!(
                "value {} does not exist in this graph",
                v.0
            ))),
        }
    }

    fn live_node(&self, id: NodeId) -> Result<&Node> {
        self.node(id)
            .ok_or_else(|| Error::Edit(format!("node {} does not exist or was removed", id.0)))
    }

    pub(crate) fn new_value(&mut self, name: String, def: Def) -> Result<ValueId> {
        self.check_new_name(&name)?;
        let id = ValueId(
            u32::try_from(self.values.len()).map_err(|_| Error::Edit("too many values".into()))?,
        );
        self.names.insert(name.clone(), id);
        self.values.push(Value {
            name,
            def,
            uses: Vec::new(),
        });
        Ok(id)
    }

    /// Adds a dense initializer called `name` (which must be new and non-empty).
    pub fn add_initializer(&mut self, name: &str, mut tensor: pb::TensorProto) -> Result<ValueId> {
        tensor.name = None;
        let id = self.new_value(name.to_owned(), Def::Initializer(Box::new(tensor)))?;
        self.initializers.push(id);
        Ok(id)
    }

    /// Adds `node`, reading `inputs` and defining fresh values named `outputs` (`None` for an omitted
    /// optional output). Returns the node and its output values. Checks everything before changing
    /// anything, so an error leaves the graph as it was.
    pub fn add_node(
        &mut self,
        mut node: Node,
        inputs: &[Option<ValueId>],
        outputs: &[Option<&str>],
    ) -> Result<(NodeId, Vec<Option<ValueId>>)> {
        for (i, name) in outputs.iter().enumerate() {
            if let Some(name) = name {
                self.check_new_name(name)?;
                if outputs[..i].contains(&Some(*name)) {
                    return Err(Error::Edit(format!("output name `{name}` is given twice")));
                }
            }
        }
        for v in inputs.iter().flatten() {
            self.check_live(*v)?;
        }
        let id = NodeId(
            u32::try_from(self.nodes.len()).map_err(|_| Error::Edit("too many nodes".into()))?,
        );
        node.inputs = inputs.to_vec();
        node.outputs.clear();
        for (slot, name) in outputs.iter().enumerate() {
            let out = match name {
                Some(name) => {
                    Some(self.new_value((*name).to_owned(), Def::Node { node: id, slot })?)
                }
                None => None,
            };
            node.outputs.push(out);
        }
        for (slot, v) in inputs.iter().enumerate() {
            if let Some(v) = v {
                self.values[v.index()]
                    .uses
                    .push(Use::Node { node: id, slot });
            }
        }
        let outs = node.outputs.clone();
        self.nodes.push(Some(node));
        Ok((id, outs))
    }

    /// Appends `value` to the graph outputs (with `info`'s type and doc; its name is the value's).
    pub fn add_output(&mut self, value: ValueId, mut info: pb::ValueInfoProto) -> Result<()> {
        self.check_live(value)?;
        info.name = None;
        self.values[value.index()]
            .uses
            .push(Use::Output(self.outputs.len()));
        self.outputs.push(Port { value, info });
        Ok(())
    }

    /// Points input `slot` of `node` at `value` (or leaves it empty).
    pub fn set_input(&mut self, node: NodeId, slot: usize, value: Option<ValueId>) -> Result<()> {
        let n = self.live_node(node)?;
        let old = *n
            .inputs
            .get(slot)
            .ok_or_else(|| Error::Edit(format!("node `{}` has no input {slot}", n.name())))?;
        if let Some(v) = value {
            self.check_live(v)?;
        }
        if let Some(n) = self.nodes[node.index()].as_mut() {
            n.inputs[slot] = value;
        }
        let u = Use::Node { node, slot };
        if let Some(old) = old {
            self.values[old.index()].uses.retain(|x| *x != u);
        }
        if let Some(v) = value {
            self.values[v.index()].uses.push(u);
        }
        Ok(())
    }

    /// Makes the uses of `old` (node inputs and graph outputs) read `new` instead, except the uses
    /// `keep` returns true for. Reads from inside subgraphs ([`Use::Subgraph`]) always stay: they
    /// refer to the value by name. Graph outputs keep their public name only if the caller renames.
    pub fn replace_uses(
        &mut self,
        old: ValueId,
        new: ValueId,
        keep: impl Fn(&Use) -> bool,
    ) -> Result<()> {
        self.check_live(old)?;
        self.check_live(new)?;
        let uses = std::mem::take(&mut self.values[old.index()].uses);
        let (kept, moved): (Vec<Use>, Vec<Use>) = uses
            .into_iter()
            .partition(|u| matches!(u, Use::Subgraph { .. }) || keep(u));
        self.values[old.index()].uses = kept;
        for u in &moved {
            match *u {
                Use::Node { node, slot } => {
                    if let Some(n) = self.nodes[node.index()].as_mut() {
                        n.inputs[slot] = Some(new);
                    }
                }
                Use::Output(i) => self.outputs[i].value = new,
                Use::Subgraph { .. } => unreachable!("subgraph reads are kept"),
            }
        }
        self.values[new.index()].uses.extend(moved);
        Ok(())
    }

    /// Makes `new` take `old`'s place entirely: every use (node inputs, graph outputs, reads from
    /// inside subgraphs), its `value_info` entries and its name. `old` keeps its definition under a
    /// fresh name, unused, ready for its producer to be removed. This is how a rewrite replaces the
    /// node that produced a value while the model keeps the value's public name.
    pub fn substitute(&mut self, old: ValueId, new: ValueId) -> Result<()> {
        self.check_live(old)?;
        self.check_live(new)?;
        if old == new {
            return Ok(());
        }
        let name = self.values[old.index()].name.clone();
        // Park `old` under a fresh name without touching subgraphs: their reads follow the
        // original name, which `new` takes below.
        let parked = self.fresh_name(&format!("{name}_replaced"));
        self.names.remove(&name);
        self.values[old.index()].name = parked.clone();
        self.names.insert(parked, old);
        let uses = std::mem::take(&mut self.values[old.index()].uses);
        for u in &uses {
            match *u {
                Use::Node { node, slot } => {
                    if let Some(n) = self.nodes[node.index()].as_mut() {
                        n.inputs[slot] = Some(new);
                    }
                }
                Use::Output(i) => self.outputs[i].value = new,
                // Subgraphs read by name; `new` takes the name below.
                Use::Subgraph { .. } => {}
            }
        }
        self.values[new.index()].uses.extend(uses);
        for p in &mut self.value_info {
            if p.value == old {
                p.value = new;
            }
        }
        // `new`'s own name is freed first so the swap cannot collide.
        let temp = std::mem::take(&mut self.values[new.index()].name);
        self.names.remove(&temp);
        self.values[new.index()].name = name.clone();
        self.names.insert(name, new);
        Ok(())
    }

    /// Renames a value, and the references to it inside subgraphs; fails, changing nothing, if the
    /// new name is empty or taken here or in one of those subgraphs.
    pub fn rename(&mut self, value: ValueId, name: &str) -> Result<()> {
        self.check_live(value)?;
        if self.values[value.index()].name == name {
            return Ok(());
        }
        self.check_new_name(name)?;
        let old = self.values[value.index()].name.clone();
        let readers = self.subgraph_readers(value);
        for &node in &readers {
            self.for_each_subgraph_outer(node, &old, &mut |g, v| g.check_rename(v, name))?;
        }
        for node in readers {
            self.for_each_subgraph_outer_mut(node, &old, &mut |g, v| g.rename(v, name))?;
        }
        self.values[value.index()].name = name.to_owned();
        self.names.remove(&old);
        self.names.insert(name.to_owned(), value);
        Ok(())
    }

    /// What `rename` would refuse, checked through nested subgraphs without changing anything.
    fn check_rename(&self, value: ValueId, name: &str) -> Result<()> {
        self.check_new_name(name)?;
        let old = &self.values[value.index()].name;
        for node in self.subgraph_readers(value) {
            self.for_each_subgraph_outer(node, old, &mut |g, v| g.check_rename(v, name))?;
        }
        Ok(())
    }

    /// Nodes whose subgraphs read `value` by name.
    fn subgraph_readers(&self, value: ValueId) -> Vec<NodeId> {
        self.values[value.index()]
            .uses
            .iter()
            .filter_map(|u| match u {
                Use::Subgraph { node } => Some(*node),
                _ => None,
            })
            .collect()
    }

    fn for_each_subgraph_outer(
        &self,
        node: NodeId,
        name: &str,
        f: &mut impl FnMut(&Graph, ValueId) -> Result<()>,
    ) -> Result<()> {
        for g in self
            .live_node(node)?
            .attributes
            .iter()
            .flat_map(|a| &a.subgraphs)
        {
            if let Some(v) = g
                .value_by_name(name)
                .filter(|v| matches!(g.value(*v).def, Def::Outer))
            {
                f(g, v)?;
            }
        }
        Ok(())
    }

    fn for_each_subgraph_outer_mut(
        &mut self,
        node: NodeId,
        name: &str,
        f: &mut impl FnMut(&mut Graph, ValueId) -> Result<()>,
    ) -> Result<()> {
        let n = self.nodes[node.index()]
            .as_mut()
            .ok_or_else(|| Error::Edit(format!("node {} was removed", node.0)))?;
        for g in n.attributes.iter_mut().flat_map(|a| &mut a.subgraphs) {
            if let Some(v) = g
                .value_by_name(name)
                .filter(|v| matches!(g.value(*v).def, Def::Outer))
            {
                f(g, v)?;
            }
        }
        Ok(())
    }

    /// Removes a node whose outputs nobody uses (subgraph reads included); its output values become
    /// unnamed tombstones.
    pub fn remove_node(&mut self, id: NodeId) -> Result<Node> {
        let node = self.live_node(id)?;
        if let Some(v) = node
            .outputs
            .iter()
            .flatten()
            .find(|v| !self.values[v.index()].uses.is_empty())
        {
            return Err(Error::Edit(format!(
                "cannot remove node `{}`: its output `{}` is still used",
                node.name(),
                self.values[v.index()].name
            )));
        }
        let node = self.nodes[id.index()]
            .take()
            .unwrap_or_else(|| unreachable!("checked above"));
        for value in &mut self.values {
            value.uses.retain(|u| match *u {
                Use::Node { node, .. } | Use::Subgraph { node } => node != id,
                Use::Output(_) => true,
            });
        }
        for v in node.outputs.iter().flatten() {
            self.bury(*v);
        }
        Ok(node)
    }

    /// Removes an initializer nobody uses (subgraph reads included).
    pub fn remove_initializer(&mut self, value: ValueId) -> Result<pb::TensorProto> {
        self.check_live(value)?;
        let v = &self.values[value.index()];
        if !v.uses.is_empty() || self.inputs.iter().any(|p| p.value == value) {
            return Err(Error::Edit(format!(
                "cannot remove initializer `{}`: it is still used",
                v.name
            )));
        }
        let Def::Initializer(_) = v.def else {
            return Err(Error::Edit(format!("`{}` is not an initializer", v.name)));
        };
        self.initializers.retain(|x| *x != value);
        match self.bury(value) {
            Def::Initializer(t) => Ok(*t),
            _ => unreachable!("checked above"),
        }
    }

    /// Turns a value into an unnamed tombstone, freeing its name; returns its old definition.
    fn bury(&mut self, value: ValueId) -> Def {
        let name = std::mem::take(&mut self.values[value.index()].name);
        self.names.remove(&name);
        self.value_info.retain(|p| p.value != value);
        std::mem::replace(&mut self.values[value.index()].def, Def::Declared)
    }

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

    /// Checks every invariant: unique names, definitions and uses agree with the nodes, subgraphs
    /// and graph outputs, outer-scope values only inside subgraphs, no cycles; recursively.
    pub fn validate(&self) -> Result<()> {
        self.validate_scope(false)
    }

    /// [`Graph::validate`] for a subgraph body, where values of enclosing graphs may be read.
    pub fn validate_subgraph(&self) -> Result<()> {
        self.validate_scope(true)
    }

    fn validate_scope(&self, is_subgraph: bool) -> Result<()> {
        let bad = |m: String| Err(Error::Invariant(m));
        for (name, id) in &self.names {
            if self.values.get(id.index()).map(|v| &v.name) != Some(name) {
                return bad(format!("name map entry `{name}` does not match its value"));
            }
        }
        let mut expected: BTreeMap<ValueId, Vec<Use>> = BTreeMap::new();
        for (id, node) in self.nodes() {
            for (slot, v) in node.inputs.iter().enumerate() {
                if let Some(v) = v {
                    expected
                        .entry(*v)
                        .or_default()
                        .push(Use::Node { node: id, slot });
                }
            }
            for (slot, v) in node.outputs.iter().enumerate() {
                if let Some(v) = v
                    && !matches!(self.values[v.index()].def, Def::Node { node: n, slot: s } if n == id && s == slot)
                {
                    return bad(format!(
                        "output `{}` of node `{}` does not point back to it",
                        self.values[v.index()].name,
                        node.name()
                    ));
                }
            }
            let mut read = BTreeSet::new();
            for g in node.attributes.iter().flat_map(|a| &a.subgraphs) {
                g.validate_scope(true)?;
                read.extend(
                    g.values()
                        .filter(|(_, v)| matches!(v.def, Def::Outer))
                        .map(|(_, v)| v.name.as_str()),
                );
            }
            for name in read {
                match self.names.get(name) {
                    Some(v) => expected
                        .entry(*v)
                        .or_default()
                        .push(Use::Subgraph { node: id }),
                    None => {
                        return bad(format!(
                            "a subgraph of node `{}` reads `{name}`, unknown here",
                            node.name()
                        ));
                    }
                }
            }
        }
        for (i, p) in self.outputs.iter().enumerate() {
            expected.entry(p.value).or_default().push(Use::Output(i));
        }
        for (id, v) in self.values() {
            if v.name.is_empty() {
                if !v.uses.is_empty() {
                    return bad(format!("removed value {} still has uses", id.0));
                }
                continue;
            }
            if self.names.get(&v.name) != Some(&id) {
                return bad(format!("value `{}` is missing from the name map", v.name));
            }
            let mut have = v.uses.clone();
            have.sort();
            let mut want = expected.remove(&id).unwrap_or_default();
            want.sort();
            if have != want {
                return bad(format!(
                    "uses of `{}` disagree with the nodes that read it",
                    v.name
                ));
            }
            match v.def {
                Def::Node { node, slot }
                    if self.node(node).and_then(|n| n.outputs.get(slot)) != Some(&Some(id)) =>
                {
                    return bad(format!(
                        "`{}` names a producer that does not output it",
                        v.name
                    ));
                }
                Def::Outer if !is_subgraph => {
                    return bad(format!(
                        "`{}` refers to an outer scope from the main graph",
                        v.name
                    ));
                }
                _ => {}
            }
        }
        if let Some((v, _)) = expected.into_iter().next() {
            return bad(format!("value {} is read but has no name", v.0));
        }
        self.topological_order()
            .map_err(|e| Error::Invariant(e.to_string()))?;
        Ok(())
    }
}
