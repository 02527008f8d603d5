//! The editing verbs: the only code, besides building a graph from its proto, that changes
//! `names`, `def` and `uses`. Each checks everything before changing anything, so an error leaves
//! the graph as it was, and keeps names, definitions and uses in agreement ([`Graph::validate`]).

use std::collections::BTreeSet;

use onnxq_proto as pb;

use super::types::{Def, Graph, Node, NodeId, Port, Use, Value, ValueId};
use crate::error::{Error, Result};

impl Graph {
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

    pub(super) fn new_value(&mut self, name: String, def: Def) -> Result<ValueId> {
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

    /// Appends a `value_info` entry for `value` (with `info`'s type and doc; its name is the
    /// value's): shape inference records what it inferred this way.
    pub fn add_value_info(&mut self, value: ValueId, mut info: pb::ValueInfoProto) -> Result<()> {
        self.check_live(value)?;
        info.name = None;
        self.value_info_of
            .entry(value)
            .or_default()
            .push(self.value_info.len());
        self.value_info.push(Port { value, info });
        Ok(())
    }

    /// Points input `slot` of `node` at `value` (or leaves it empty); `slot` may be one past the
    /// last input, which appends one.
    pub fn set_input(&mut self, node: NodeId, slot: usize, value: Option<ValueId>) -> Result<()> {
        let n = self.live_node(node)?;
        // The slot just past the end appends an optional input (a Conv's bias); further is an error.
        if slot > n.inputs.len() {
            return Err(Error::Edit(format!(
                "node `{}` has no input {slot}",
                n.name()
            )));
        }
        let old = n.inputs.get(slot).copied().flatten();
        if let Some(v) = value {
            self.check_live(v)?;
        }
        if let Some(n) = self.nodes[node.index()].as_mut() {
            if n.inputs.len() == slot {
                n.inputs.push(None);
            }
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
        if let Some(entries) = self.value_info_of.remove(&old) {
            for &i in &entries {
                self.value_info[i].value = new;
            }
            self.value_info_of.entry(new).or_default().extend(entries);
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
        // Only the values the node reads hold uses by it: its inputs, and the values its subgraphs
        // read by name (`validate` checks that `Use::Subgraph` entries are exactly those). Visiting
        // just these keeps removal proportional to the node, not to the graph.
        let mut read: Vec<ValueId> = node.inputs.iter().flatten().copied().collect();
        for g in node.attributes.iter().flat_map(|a| &a.subgraphs) {
            read.extend(
                g.values
                    .iter()
                    .filter(|v| matches!(v.def, Def::Outer))
                    .filter_map(|v| self.names.get(&v.name).copied()),
            );
        }
        read.sort_unstable();
        read.dedup();
        let node = self.nodes[id.index()]
            .take()
            .unwrap_or_else(|| unreachable!("checked above"));
        for v in read {
            self.values[v.index()].uses.retain(|u| match *u {
                Use::Node { node, .. } | Use::Subgraph { node } => node != id,
                Use::Output(_) => true,
            });
        }
        for v in node.outputs.iter().flatten() {
            self.bury(*v);
        }
        Ok(node)
    }

    /// Removes several nodes whose outputs nobody uses, ending as `remove_node` on each in turn
    /// would, but visiting each value they read once: removing the N readers of one value one at
    /// a time costs N² (each removal scans that value's uses). Checks every node first, so an
    /// error changes nothing.
    pub fn remove_nodes(&mut self, ids: &[NodeId]) -> Result<()> {
        let mut gone = BTreeSet::new();
        let mut read: Vec<ValueId> = Vec::new();
        for &id in ids {
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
            if !gone.insert(id) {
                return Err(Error::Edit(format!(
                    "node `{}` is given twice for removal",
                    node.name()
                )));
            }
            // The values holding uses by the node: its inputs and what its subgraphs read.
            read.extend(node.inputs.iter().flatten());
            for g in node.attributes.iter().flat_map(|a| &a.subgraphs) {
                read.extend(
                    g.values
                        .iter()
                        .filter(|v| matches!(v.def, Def::Outer))
                        .filter_map(|v| self.names.get(&v.name).copied()),
                );
            }
        }
        read.sort_unstable();
        read.dedup();
        for v in read {
            self.values[v.index()].uses.retain(|u| match *u {
                Use::Node { node, .. } | Use::Subgraph { node } => !gone.contains(&node),
                Use::Output(_) => true,
            });
        }
        for &id in ids {
            let node = self.nodes[id.index()]
                .take()
                .unwrap_or_else(|| unreachable!("checked above"));
            for v in node.outputs.iter().flatten() {
                self.bury(*v);
            }
        }
        Ok(())
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
        // `bury` turns its definition into `Declared`, which makes its entry in `initializers` a
        // tombstone that `initializers()` and save skip (no scan of the list per removal).
        match self.bury(value) {
            Def::Initializer(t) => Ok(*t),
            _ => unreachable!("checked above"),
        }
    }

    /// Turns a value into an unnamed tombstone, freeing its name; returns its old definition.
    /// Forgets the values this (sub)graph reads from an enclosing graph that nothing in it reads
    /// any more, after an edit removed their last reader; then
    /// [`Graph::refresh_subgraph_uses`] on the enclosing node lets the enclosing graph see that
    /// (and, say, remove a weight only the subgraph read).
    pub fn forget_unread_outer(&mut self) {
        let unread: Vec<ValueId> = self
            .values()
            .filter(|(_, v)| matches!(v.def, Def::Outer) && v.uses.is_empty())
            .map(|(id, _)| id)
            .collect();
        for v in unread {
            self.bury(v);
        }
    }

    /// Re-derives the [`Use::Subgraph`] entries of node `id` from what its subgraphs read now
    /// (their `Def::Outer` values), after their bodies were edited. Values that lost their last
    /// reader inside are no longer used by the node.
    pub fn refresh_subgraph_uses(&mut self, id: NodeId) -> Result<()> {
        let node = self
            .node(id)
            .ok_or_else(|| Error::Edit(format!("node {} was removed", id.0)))?;
        let mut read: Vec<ValueId> = Vec::new();
        for g in node.attributes.iter().flat_map(|a| &a.subgraphs) {
            for (_, v) in g.values().filter(|(_, v)| matches!(v.def, Def::Outer)) {
                let here = self.names.get(&v.name).copied().ok_or_else(|| {
                    Error::Edit(format!(
                        "a subgraph of node {} reads `{}`, unknown here",
                        id.0, v.name
                    ))
                })?;
                read.push(here);
            }
        }
        read.sort_unstable();
        read.dedup();
        let entry = Use::Subgraph { node: id };
        for v in &mut self.values {
            v.uses.retain(|u| *u != entry);
        }
        for v in read {
            self.values[v.index()].uses.push(entry);
        }
        Ok(())
    }

    fn bury(&mut self, value: ValueId) -> Def {
        let name = std::mem::take(&mut self.values[value.index()].name);
        self.names.remove(&name);
        // Its entries become dead ones: they point at a tombstone, which `value_info()` and save skip.
        self.value_info_of.remove(&value);
        std::mem::replace(&mut self.values[value.index()].def, Def::Declared)
    }
}
