//! [`Graph::validate`]: checks that names, definitions and uses agree, recursively through subgraphs.
//! Tests run it after every edit.

use std::collections::{BTreeMap, BTreeSet};

use super::types::{Def, Graph, Use, ValueId};
use crate::error::{Error, Result};

impl Graph {
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
