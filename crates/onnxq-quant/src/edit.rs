//! Small reads and edits of the IR shared by every pass: a node's label, inputs, outputs and
//! attributes, and adding a one-output node, an initializer under a fresh name or a tensor built
//! from raw bytes. One copy, so the passes name and build things the same way.

use onnxq_ir::proto as pb;
use onnxq_ir::{Graph, Node, NodeId, ValueId};

use crate::error::{Error, Result};

/// A node's label in reports and generated names: its name, else its first output's name.
pub(crate) fn node_label(g: &Graph, n: &Node) -> String {
    match n.name() {
        "" => n
            .outputs()
            .iter()
            .flatten()
            .next()
            .map(|v| g.value(*v).name().to_owned())
            .unwrap_or_default(),
        name => name.to_owned(),
    }
}

/// Input `i` of `n`, if given.
pub(crate) fn input(n: &Node, i: usize) -> Option<ValueId> {
    n.inputs().get(i).copied().flatten()
}

/// Output `i` of `n`, if given.
pub(crate) fn output(n: &Node, i: usize) -> Option<ValueId> {
    n.outputs().get(i).copied().flatten()
}

/// The FLOAT attribute `name` of `n`, or `default` when it is absent.
pub(crate) fn float_attr(n: &Node, name: &str, default: f32) -> f32 {
    n.attribute(name).and_then(|a| a.proto.f).unwrap_or(default)
}

/// The INT attribute `name` of `n`, or `default` when it is absent.
pub(crate) fn int_attr_of(n: &Node, name: &str, default: i64) -> i64 {
    n.attribute(name).and_then(|a| a.proto.i).unwrap_or(default)
}

/// The bytes of the STRING attribute `name` of `n`, if present.
pub(crate) fn bytes_attr<'n>(n: &'n Node, name: &str) -> Option<&'n [u8]> {
    n.attribute(name).and_then(|a| a.proto.s.as_deref())
}

/// A new INT attribute.
pub(crate) fn int_attr(name: &str, v: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: Some(name.into()),
        r#type: Some(2),
        i: Some(v),
        ..Default::default()
    }
}

/// A tensor proto from raw little-endian bytes.
pub(crate) fn tensor(dims: Vec<i64>, data_type: i32, raw: Vec<u8>) -> pb::TensorProto {
    pb::TensorProto {
        dims,
        data_type: Some(data_type),
        raw_data: Some(raw.into()),
        ..Default::default()
    }
}

/// Adds an initializer under a fresh name built from `name`.
pub(crate) fn init(g: &mut Graph, name: &str, t: pb::TensorProto) -> Result<ValueId> {
    let name = g.fresh_name(name);
    g.add_initializer(&name, t).map_err(Error::edit)
}

/// Adds a one-output node named `name` writing a fresh value named from `output`; returns the
/// node and its output.
pub(crate) fn add_node(
    g: &mut Graph,
    (op, domain): (&str, &str),
    name: &str,
    inputs: &[Option<ValueId>],
    output: &str,
    attrs: Vec<pb::AttributeProto>,
) -> Result<(NodeId, ValueId)> {
    let mut node = Node::new(op, domain, Some(name.to_owned()));
    node.attributes = attrs.into_iter().map(onnxq_ir::Attribute::new).collect();
    let out = g.fresh_name(output);
    let (id, outs) = g
        .add_node(node, inputs, &[Some(&out)])
        .map_err(Error::edit)?;
    let v = outs[0].ok_or_else(|| Error::Internal("node without output".into()))?;
    Ok((id, v))
}

/// [`add_node`] for callers that only need the output.
pub(crate) fn add(
    g: &mut Graph,
    op: (&str, &str),
    name: &str,
    inputs: &[Option<ValueId>],
    output: &str,
    attrs: Vec<pb::AttributeProto>,
) -> Result<ValueId> {
    add_node(g, op, name, inputs, output, attrs).map(|(_, v)| v)
}
