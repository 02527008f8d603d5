//! Constants, for every pass: finding the tensor behind a node input (an initializer, a Constant
//! node's value, an Identity of either, or such a constant of an enclosing graph, for nodes inside
//! subgraphs; ONNX Runtime's tool only accepts the first, "Expected ... to be an initializer"),
//! reading its float32 data in place, and removing it once nothing reads it.

use onnxq_ir::proto as pb;
use onnxq_ir::{Def, Graph, NodeId, ValueId};

use crate::edit::input;
use crate::numerics::F32Data;

/// Where a constant lives, relative to the graph of the node that reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Source {
    /// A dense initializer of this graph.
    Initializer(ValueId),
    /// The output of a Constant node of this graph.
    Constant(NodeId),
    /// A constant of the enclosing graph `depth` levels up (1 = parent), by value id there.
    Outer { depth: usize, value: ValueId },
}

/// A resolved constant.
#[derive(Debug, Clone)]
pub(crate) struct Const<'g> {
    /// Where it lives.
    pub(crate) source: Source,
    /// The name of the tensor's own value (the initializer or Constant output), a base for names.
    pub(crate) name: &'g str,
    /// The tensor.
    pub(crate) tensor: &'g pb::TensorProto,
}

/// Follows `v` to a constant tensor, through Identity nodes and into enclosing graphs
/// (`outer[0]` is the parent).
pub(crate) fn resolve<'g>(g: &'g Graph, outer: &[&'g Graph], v: ValueId) -> Option<Const<'g>> {
    resolve_at(g, outer, v, 0)
}

fn resolve_at<'g>(
    g: &'g Graph,
    outer: &[&'g Graph],
    v: ValueId,
    depth: usize,
) -> Option<Const<'g>> {
    let value = g.value(v);
    // A constant of an enclosing graph is named by its depth and value id there.
    let found = |local: Source, tensor| {
        let source = if depth == 0 {
            local
        } else {
            Source::Outer { depth, value: v }
        };
        Some(Const {
            source,
            name: value.name(),
            tensor,
        })
    };
    match value.def() {
        Def::Initializer(t) => found(Source::Initializer(v), t),
        Def::Node { node, .. } => {
            let n = g.node(*node)?;
            match (n.domain(), n.op_type()) {
                ("", "Constant") => found(
                    Source::Constant(*node),
                    n.attribute("value")?.proto.t.as_ref()?,
                ),
                ("", "Identity") => resolve_at(g, outer, input(n, 0)?, depth),
                _ => None,
            }
        }
        Def::Outer => {
            let (parent, rest) = outer.split_first()?;
            resolve_at(parent, rest, parent.value_by_name(value.name())?, depth + 1)
        }
        _ => None,
    }
}

/// The tensor's values, borrowed, if it is float32 (raw little-endian or `float_data`).
pub(crate) fn f32_data(t: &pb::TensorProto) -> Option<F32Data<'_>> {
    if t.data_type() != 1 {
        return None;
    }
    Some(match &t.raw_data {
        Some(raw) => F32Data::Le(raw),
        None => F32Data::Slice(&t.float_data),
    })
}

/// The values and dims of `v` when it is a constant float32 tensor of the main graph (copied:
/// the folds that read them compute new tensors from them).
pub(crate) fn f32_values(g: &Graph, v: ValueId) -> Option<(Vec<f32>, Vec<i64>)> {
    let c = resolve(g, &[], v)?;
    let d = f32_data(c.tensor)?;
    Some((
        (0..d.len()).map(|i| d.get(i)).collect(),
        c.tensor.dims.clone(),
    ))
}

/// The value of `v` when it is a constant float32 scalar (one element, any rank).
pub(crate) fn scalar_f32(g: &Graph, v: ValueId) -> Option<f32> {
    resolve(g, &[], v)
        .and_then(|c| f32_data(c.tensor).filter(|d| d.len() == 1))
        .map(|d| d.get(0))
}

/// The tensor's dims as sizes (dims are checked non-negative at load).
pub(crate) fn dims(t: &pb::TensorProto) -> Vec<usize> {
    t.dims
        .iter()
        .map(|&d| usize::try_from(d).unwrap_or(0))
        .collect()
}

/// Removes every initializer and Constant node of `g` nothing reads (no node, subgraph or graph
/// output), with the Identity chains leading to them: the float weights a pass replaced and any
/// the input model already carried. ONNX Runtime warns once per such initializer at load
/// ("Removing initializer ... It is not used by any node") and they cost file size; ORT's tool
/// leaves them. Initializers that are also graph inputs stay (the caller may feed them).
pub(crate) fn remove_unread_constants(g: &mut Graph) -> onnxq_ir::Result<()> {
    let mut values = g.initializers();
    for (_, n) in g.nodes() {
        if n.op_type() == "Constant" && matches!(n.domain(), "" | "ai.onnx") {
            values.extend(n.outputs().iter().flatten().copied());
        }
    }
    remove_all_if_unused(g, values)
}

/// [`remove_if_unused`] for many values, ending the same way, but level by level: the Constant and
/// Identity nodes writing the unused values go together, then what those Identity nodes read. A
/// constant read through N Identity nodes then costs its N uses once instead of N times.
pub(crate) fn remove_all_if_unused(
    g: &mut Graph,
    values: impl IntoIterator<Item = ValueId>,
) -> onnxq_ir::Result<()> {
    let mut level: Vec<ValueId> = values.into_iter().collect();
    while !level.is_empty() {
        level.sort_unstable();
        level.dedup();
        let mut nodes = Vec::new();
        let mut next = Vec::new();
        for v in level {
            if !g.value(v).uses().is_empty()
                || g.value(v).name().is_empty()
                || g.outputs().iter().any(|p| p.value == v)
            {
                continue;
            }
            match *g.value(v).def() {
                // Kept when it is also a graph input (IR < 4 style): the caller may feed it.
                Def::Initializer(_) => {
                    let _ = g.remove_initializer(v);
                }
                Def::Node { node, .. } => match g.node(node).map(|n| (n.op_type(), n.inputs())) {
                    Some(("Constant", _)) => nodes.push(node),
                    Some(("Identity", inputs)) => {
                        next.extend(inputs.first().copied().flatten());
                        nodes.push(node);
                    }
                    _ => {}
                },
                _ => {}
            }
        }
        g.remove_nodes(&nodes)?;
        level = next;
    }
    Ok(())
}

/// Removes what reading `v` kept alive once nothing reads it: the initializer, or the Constant node
/// and the Identity chain leading to it. Constants of enclosing graphs are left alone.
pub(crate) fn remove_if_unused(g: &mut Graph, v: ValueId) {
    if !g.value(v).uses().is_empty()
        || g.value(v).name().is_empty()
        || g.outputs().iter().any(|p| p.value == v)
    {
        return;
    }
    match *g.value(v).def() {
        Def::Initializer(_) => {
            // Kept when it is also a graph input (IR < 4 style): the caller may feed it.
            let _ = g.remove_initializer(v);
        }
        Def::Node { node, .. } => {
            let input = g.node(node).and_then(|n| match n.op_type() {
                "Constant" => Some(None),
                "Identity" => Some(input(n, 0)),
                _ => None,
            });
            if let Some(input) = input
                && g.remove_node(node).is_ok()
                && let Some(i) = input
            {
                remove_if_unused(g, i);
            }
        }
        _ => {}
    }
}
