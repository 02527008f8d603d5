//! The QOperator lowerings: each matches `DequantizeLinear → op → QuantizeLinear` around one node
//! and, when the pattern fits, replaces it by the quantized form. They only read what the QDQ pass
//! wrote; a node that does not fit is left as it is.

use onnxq_ir::{Def, Graph, Node, NodeId, Use, ValueId};

use crate::edit::{bytes_attr, input, int_attr};
use crate::error::{Error, Result};

/// A `DequantizeLinear` reading (quantized, scale, zero point).
#[derive(Debug, Clone, Copy)]
struct Dq {
    q: ValueId,
    scale: ValueId,
    zero_point: ValueId,
    per_axis: bool,
}

fn dq_of(g: &Graph, v: ValueId) -> Option<Dq> {
    let Def::Node { node, .. } = g.value(v).def() else {
        return None;
    };
    let n = g.node(*node)?;
    if n.op_type() != "DequantizeLinear" || n.inputs().len() != 3 {
        return None;
    }
    let i = |k: usize| n.inputs()[k];
    Some(Dq {
        q: i(0)?,
        scale: i(1)?,
        zero_point: i(2)?,
        per_axis: n.attribute("axis").is_some(),
    })
}

/// The `QuantizeLinear` that is `v`'s only reader: (node, its output, scale, zero point).
fn q_of(g: &Graph, v: ValueId) -> Option<(NodeId, ValueId, ValueId, ValueId)> {
    let [Use::Node { node, slot: 0 }] = g.value(v).uses() else {
        return None;
    };
    let n = g.node(*node)?;
    if n.op_type() != "QuantizeLinear" || n.inputs().len() != 3 {
        return None;
    }
    Some((*node, n.outputs()[0]?, n.inputs()[1]?, n.inputs()[2]?))
}

/// `DQ(x…) → op → Q` ⇒ one quantized operator; false when the node does not fit the pattern.
#[allow(
    clippy::too_many_arguments,
    reason = "one rule's fields, passed through"
)]
pub(crate) fn lower_linear(
    g: &mut Graph,
    opset: i64,
    id: NodeId,
    op: &str,
    domain: &str,
    (lead, inputs): (usize, usize),
    output_first: bool,
    bias: bool,
) -> Result<bool> {
    let Some(n) = g.node(id) else {
        return Ok(false);
    };
    if n.outputs().len() != 1 {
        return Ok(false);
    }
    let Some(y) = n.outputs()[0] else {
        return Ok(false);
    };
    let Some((q_node, y_q, y_s, y_zp)) = q_of(g, y) else {
        return Ok(false);
    };
    let end = lead.saturating_add(inputs).min(n.inputs().len());
    if end <= lead {
        return Ok(false);
    }
    let mut dqs = Vec::with_capacity(end - lead);
    for v in &n.inputs()[lead..end] {
        match v.and_then(|v| dq_of(g, v)) {
            Some(d) => dqs.push(d),
            None => return Ok(false),
        }
    }
    // Only weights (input 1 of Conv/MatMul/Gemm) may be per channel.
    if dqs
        .iter()
        .enumerate()
        .any(|(i, d)| d.per_axis && !(i == 1 && (bias || op == "QLinearMatMul")))
    {
        return Ok(false);
    }
    let bias_q = if bias && n.inputs().len() > 2 {
        match n.inputs()[2].and_then(|b| dq_of(g, b)) {
            Some(d) => Some(d.q),
            None => return Ok(false),
        }
    } else {
        None
    };
    let mut ins: Vec<Option<ValueId>> = n.inputs()[..lead].to_vec();
    if output_first {
        ins.extend([Some(y_s), Some(y_zp)]);
    }
    for d in &dqs {
        ins.extend([Some(d.q), Some(d.scale), Some(d.zero_point)]);
    }
    if op == "QGemm" {
        ins.push(bias_q);
    }
    if !output_first {
        ins.extend([Some(y_s), Some(y_zp)]);
    }
    if op == "QLinearConv"
        && let Some(b) = bias_q
    {
        ins.push(Some(b));
    }
    let name = (!n.name().is_empty()).then(|| format!("{}_quant", n.name()));
    let mut node = Node::new(op, domain, name);
    node.attributes = n
        .attributes
        .iter()
        .filter(|a| !(op == "QGemm" && a.name() == "beta"))
        .cloned()
        .collect();
    if op == "QLinearSoftmax" {
        node.attributes
            .push(onnxq_ir::Attribute::new(int_attr("opset", opset)));
    }
    if op == "QLinearGlobalAveragePool" {
        node.attributes
            .push(onnxq_ir::Attribute::new(int_attr("channels_last", 0)));
    }
    replace(g, id, q_node, node, &ins, &[y_q])?;
    Ok(true)
}

/// `DQ(x) → op → Q` with the output sharing the input's parameters ⇒ the op on quantized data.
/// A constant-mode Pad pads with the zero point (the quantized 0.0; the QDQ pass shares
/// parameters only for zero padding), and needs opset 11 for its `constant_value` input.
pub(crate) fn lower_direct(g: &mut Graph, opset: i64, id: NodeId) -> Result<bool> {
    let Some(n) = g.node(id) else {
        return Ok(false);
    };
    let Some(d) = input(n, 0).and_then(|x| dq_of(g, x)) else {
        return Ok(false);
    };
    if d.per_axis {
        return Ok(false);
    }
    let mut outs = Vec::new();
    for y in n.outputs() {
        match y.and_then(|y| q_of(g, y)) {
            Some((qn, yq, s, zp)) if s == d.scale && zp == d.zero_point => outs.push((qn, yq)),
            _ => return Ok(false),
        }
    }
    let mut ins = n.inputs().to_vec();
    ins[0] = Some(d.q);
    if n.op_type() == "Pad" {
        let constant_mode = bytes_attr(n, "mode").is_none_or(|m| m == b"constant");
        if opset < 11 {
            return Ok(false);
        }
        if constant_mode {
            ins.resize(ins.len().max(3), None);
            ins[2] = Some(d.zero_point);
        }
    }
    let mut node = Node::new(n.op_type(), "", Some(n.name().to_owned()));
    node.attributes = n.attributes.clone();
    node.proto.name = n.proto.name.clone();
    let q_nodes: Vec<NodeId> = outs.iter().map(|o| o.0).collect();
    let q_outs: Vec<ValueId> = outs.iter().map(|o| o.1).collect();
    replace_many(g, id, &q_nodes, node, &ins, &q_outs)?;
    Ok(true)
}

/// `DQ(x) → op` with a non-float output ⇒ the op on `x`'s quantized tensor.
pub(crate) fn lower_reads_quantized(g: &mut Graph, id: NodeId) -> Result<bool> {
    let Some(n) = g.node(id) else {
        return Ok(false);
    };
    let Some(x) = input(n, 0) else {
        return Ok(false);
    };
    let Some(d) = dq_of(g, x).filter(|d| !d.per_axis) else {
        return Ok(false);
    };
    g.replace_uses(
        x,
        d.q,
        |u| !matches!(u, Use::Node { node, slot: 0 } if *node == id),
    )
    .map_err(Error::edit)?;
    Ok(true)
}

fn replace(
    g: &mut Graph,
    old: NodeId,
    q_node: NodeId,
    node: Node,
    ins: &[Option<ValueId>],
    q_outs: &[ValueId],
) -> Result<()> {
    replace_many(g, old, &[q_node], node, ins, q_outs)
}

/// Adds `node` reading `ins`, whose outputs take over the values the `q_nodes` wrote
/// (`q_outs`); removes the float node and those QuantizeLinear nodes.
fn replace_many(
    g: &mut Graph,
    old: NodeId,
    q_nodes: &[NodeId],
    node: Node,
    ins: &[Option<ValueId>],
    q_outs: &[ValueId],
) -> Result<()> {
    let names: Vec<String> = q_outs
        .iter()
        .map(|&v| g.fresh_name(&format!("{}_lowered", g.value(v).name())))
        .collect();
    let refs: Vec<Option<&str>> = names.iter().map(|n| Some(n.as_str())).collect();
    let (_, news) = g.add_node(node, ins, &refs).map_err(Error::edit)?;
    for (&q, new) in q_outs.iter().zip(&news) {
        let new = new.ok_or_else(|| Error::Internal("lowered node without output".into()))?;
        g.substitute(q, new).map_err(Error::edit)?;
    }
    for &qn in q_nodes {
        g.remove_node(qn).map_err(Error::edit)?;
    }
    g.remove_node(old).map_err(Error::edit)?;
    Ok(())
}
