//! The edits the upgrade rules are made of: reading and changing a node's attributes, turning an
//! attribute into a constant input, and rebuilding a node with other inputs, attributes or op type
//! while its outputs keep their names (and their readers, graph outputs and `value_info`).

use std::collections::BTreeSet;

use onnxq_ir::proto as pb;
use onnxq_ir::{Attribute, Graph, Node, NodeId, ValueId};

use crate::edit::node_label;
use crate::error::{Error, Result};

/// ONNX data types used here.
pub(super) const FLOAT: i32 = 1;
pub(super) const INT64: i32 = 7;

/// Every value name of the model (all graphs, subgraphs included), so a constant added to a body
/// never shadows a name of an enclosing graph (ONNX wants names unique across scopes).
#[derive(Default)]
pub(super) struct Names(BTreeSet<String>);

impl Names {
    /// The names of `g` and every body below it.
    pub(super) fn collect(&mut self, g: &Graph) {
        for (_, v) in g.values() {
            self.0.insert(v.name().to_owned());
        }
        for (_, n) in g.nodes() {
            for sub in n.attributes.iter().flat_map(|a| &a.subgraphs) {
                self.collect(sub);
            }
        }
    }

    /// A name new to the model, built from `base`, now taken.
    pub(super) fn fresh(&mut self, g: &Graph, base: &str) -> String {
        let mut name = g.fresh_name(base);
        let mut i = 1u64;
        while self.0.contains(&name) {
            name = g.fresh_name(&format!("{base}_{i}"));
            i += 1;
        }
        self.0.insert(name.clone());
        name
    }
}

/// One graph being upgraded, with the model's names.
pub(super) struct Cx<'a> {
    pub(super) g: &'a mut Graph,
    pub(super) names: &'a mut Names,
}

/// A node's parts a rule changes before the node is rebuilt.
pub(super) struct Parts {
    pub(super) op_type: String,
    pub(super) attributes: Vec<Attribute>,
    pub(super) inputs: Vec<Option<ValueId>>,
    /// Outputs kept (a dropped one must be unused).
    pub(super) keep_outputs: usize,
}

impl Parts {
    /// The attribute `name`, taken out of the node.
    pub(super) fn take(&mut self, name: &str) -> Option<pb::AttributeProto> {
        let i = self.attributes.iter().position(|a| a.name() == name)?;
        Some(self.attributes.remove(i).proto)
    }

    /// Sets attribute `a` (replacing one of the same name).
    pub(super) fn set(&mut self, a: pb::AttributeProto) {
        self.attributes.retain(|x| x.name() != a.name());
        self.attributes.push(Attribute::new(a));
    }

    /// Input `slot`, padding the list with omitted inputs up to it.
    pub(super) fn set_input(&mut self, slot: usize, v: Option<ValueId>) {
        if self.inputs.len() <= slot {
            self.inputs.resize(slot + 1, None);
        }
        self.inputs[slot] = v;
    }
}

/// The node, or an internal error.
pub(super) fn node(g: &Graph, id: NodeId) -> Result<&Node> {
    g.node(id)
        .ok_or_else(|| Error::Internal("node vanished during the upgrade".into()))
}

/// Rebuilds node `id` from its parts as changed by `change`; the new node takes over the old
/// one's outputs (names, readers, graph outputs) and the old node is removed. Returns the new id.
pub(super) fn rebuild(
    cx: &mut Cx<'_>,
    id: NodeId,
    change: impl FnOnce(&mut Cx<'_>, &mut Parts) -> Result<()>,
) -> Result<NodeId> {
    let old = node(cx.g, id)?;
    let mut parts = Parts {
        op_type: old.op_type().to_owned(),
        attributes: old.attributes.clone(),
        inputs: old.inputs().to_vec(),
        keep_outputs: old.outputs().len(),
    };
    let mut proto = old.proto.clone();
    let outputs = old.outputs().to_vec();
    change(cx, &mut parts)?;
    // Trailing omitted inputs are dropped, as ONNX writers do.
    while parts.inputs.last() == Some(&None) {
        parts.inputs.pop();
    }
    proto.op_type = Some(parts.op_type.clone());
    let mut new = Node::new(&parts.op_type, "", None);
    new.proto = proto;
    new.attributes = parts.attributes;
    let temps: Vec<Option<String>> = outputs[..parts.keep_outputs]
        .iter()
        .map(|o| {
            o.map(|v| {
                cx.g.fresh_name(&format!("{}_upgraded", cx.g.value(v).name()))
            })
        })
        .collect();
    let temp_refs: Vec<Option<&str>> = temps.iter().map(|t| t.as_deref()).collect();
    let (new_id, new_outs) =
        cx.g.add_node(new, &parts.inputs, &temp_refs)
            .map_err(Error::edit)?;
    for (old_v, new_v) in outputs.iter().zip(&new_outs) {
        if let (Some(o), Some(n)) = (old_v, new_v) {
            cx.g.substitute(*o, *n).map_err(Error::edit)?;
        }
    }
    cx.g.remove_node(id).map_err(Error::edit)?;
    Ok(new_id)
}

/// A new initializer named from `base` (unique in the model).
pub(super) fn constant(cx: &mut Cx<'_>, base: &str, t: pb::TensorProto) -> Result<ValueId> {
    let name = cx.names.fresh(cx.g, base);
    cx.g.add_initializer(&name, t).map_err(Error::edit)
}

/// An int64 tensor of `dims` holding `v`.
pub(super) fn int64s(dims: Vec<i64>, v: &[i64]) -> pb::TensorProto {
    pb::TensorProto {
        dims,
        data_type: Some(INT64),
        raw_data: Some(
            v.iter()
                .flat_map(|x| x.to_le_bytes())
                .collect::<Vec<u8>>()
                .into(),
        ),
        ..Default::default()
    }
}

/// A float32 scalar.
pub(super) fn float_scalar(v: f32) -> pb::TensorProto {
    pb::TensorProto {
        dims: vec![],
        data_type: Some(FLOAT),
        raw_data: Some(v.to_le_bytes().to_vec().into()),
        ..Default::default()
    }
}

/// A STRING attribute.
pub(super) fn string_attr(name: &str, v: &str) -> pb::AttributeProto {
    pb::AttributeProto {
        name: Some(name.into()),
        r#type: Some(3),
        s: Some(v.as_bytes().to_vec().into()),
        ..Default::default()
    }
}

/// The INTS attribute `name` as an int64 `[n]` input named after the node: `None` when absent.
pub(super) fn ints_input(
    cx: &mut Cx<'_>,
    label: &str,
    parts: &mut Parts,
    name: &str,
) -> Result<Option<ValueId>> {
    let Some(a) = parts.take(name) else {
        return Ok(None);
    };
    let v = &a.ints;
    let t = int64s(vec![v.len() as i64], v);
    constant(cx, &format!("{label}_{name}"), t).map(Some)
}

/// A float32 constant `v` for an input of the type of `like` (the type of the node's first
/// input, `T`): the float32 tensor itself when `like` is known to be float32, else a `CastLike`
/// to its type (a float16 or double input, or one whose type the model does not declare).
pub(super) fn float_like(
    cx: &mut Cx<'_>,
    label: &str,
    what: &str,
    v: f32,
    like: ValueId,
) -> Result<ValueId> {
    let c = constant(cx, &format!("{label}_{what}"), float_scalar(v))?;
    if elem_type(cx.g, like) == Some(FLOAT) {
        return Ok(c);
    }
    let out = cx.names.fresh(cx.g, &format!("{label}_{what}_cast"));
    let cast = Node::new("CastLike", "", Some(format!("{label}_{what}_CastLike")));
    let (_, outs) =
        cx.g.add_node(cast, &[Some(c), Some(like)], &[Some(&out)])
            .map_err(Error::edit)?;
    outs[0].ok_or_else(|| Error::Internal("CastLike without output".into()))
}

/// A value's element type where the model states it (declared, or an initializer's).
pub(super) fn elem_type(g: &Graph, v: ValueId) -> Option<i32> {
    if let Some(t) = g.value(v).initializer() {
        return Some(t.data_type());
    }
    g.declared_type(v).and_then(|t| t.elem_type)
}

/// A value's rank where the model declares its shape.
pub(super) fn rank(g: &Graph, v: ValueId) -> Option<usize> {
    if let Some(t) = g.value(v).initializer() {
        return Some(t.dims.len());
    }
    g.declared_type(v)
        .and_then(|t| t.shape.as_ref())
        .map(|s| s.dim.len())
}

/// The node's label for names and messages.
pub(super) fn label(g: &Graph, id: NodeId) -> Result<String> {
    Ok(node_label(g, node(g, id)?))
}

/// Adds a one-output default-domain node `op` named `<label>_<op>`; returns its output.
pub(super) fn add(
    cx: &mut Cx<'_>,
    op: &str,
    label: &str,
    inputs: &[Option<ValueId>],
    attrs: Vec<pb::AttributeProto>,
) -> Result<ValueId> {
    let mut n = Node::new(op, "", Some(format!("{label}_{op}")));
    n.attributes = attrs.into_iter().map(Attribute::new).collect();
    let out = cx.names.fresh(cx.g, &format!("{label}_{op}_output"));
    let (_, outs) =
        cx.g.add_node(n, inputs, &[Some(&out)])
            .map_err(Error::edit)?;
    outs[0].ok_or_else(|| Error::Internal(format!("{op} without output")))
}
