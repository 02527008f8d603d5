//! The QOperator format (ONNX Runtime's `QuantFormat.QOperator`) as a lowering of the QDQ model:
//! named pattern rules replace `DequantizeLinear → op → QuantizeLinear` by one quantized operator
//! (QLinearConv, QLinearMatMul, QGemm, QLinearAdd, ...) reading and writing the quantized tensors,
//! and data-movement ops whose input and output share parameters run on the quantized data
//! directly. Where no rule applies the QDQ form stays (ONNX Runtime fuses it at load time).
//!
//! The rules only read what the QDQ pass wrote, so the parameters are the QDQ pass's (ORT's exact
//! math); names follow ORT's QOperator scheme (`<node>_quant`, `<T>_quantized`).

use onnxq_ir::{Def, Graph, Model, Node, NodeId, Use, ValueId};

use crate::report::{Outcome, Report};
use crate::{Error, Result};

/// How a float op is lowered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lowering {
    /// A quantized operator: `op` in `domain`, inputs (x, scale, zero point) per float input,
    /// then the output's (scale, zero point); `bias` when a third input is an int32 bias.
    Linear {
        op: &'static str,
        domain: &'static str,
        /// Leading inputs passed through as they are (Where's condition).
        lead: usize,
        /// Float inputs after those that must be dequantized tensors (the rest are copied as they
        /// are).
        inputs: usize,
        /// Output parameters come first (QLinearConcat).
        output_first: bool,
        /// A third input is an int32 bias passed through quantized (Conv, Gemm).
        bias: bool,
    },
    /// The op runs unchanged on quantized data (input and outputs share one scale and zero point).
    Direct,
    /// The op reads the quantized input and has a non-float output (ArgMax: quantization keeps
    /// the order of values).
    ReadsQuantized,
}

/// The pattern rules, by float op type.
const RULES: &[(&str, Lowering)] = &[
    ("Conv", linear("QLinearConv", "", 2, true)),
    ("MatMul", linear("QLinearMatMul", "", 2, false)),
    ("Gemm", linear("QGemm", "com.microsoft", 2, true)),
    ("Add", linear("QLinearAdd", "com.microsoft", 2, false)),
    ("Mul", linear("QLinearMul", "com.microsoft", 2, false)),
    (
        "Sigmoid",
        linear("QLinearSigmoid", "com.microsoft", 1, false),
    ),
    (
        "LeakyRelu",
        linear("QLinearLeakyRelu", "com.microsoft", 1, false),
    ),
    (
        "AveragePool",
        linear("QLinearAveragePool", "com.microsoft", 1, false),
    ),
    (
        "GlobalAveragePool",
        linear("QLinearGlobalAveragePool", "com.microsoft", 1, false),
    ),
    (
        "Concat",
        Lowering::Linear {
            op: "QLinearConcat",
            domain: "com.microsoft",
            lead: 0,
            inputs: usize::MAX,
            output_first: true,
            bias: false,
        },
    ),
    (
        "Softmax",
        linear("QLinearSoftmax", "com.microsoft", 1, false),
    ),
    (
        "Where",
        Lowering::Linear {
            op: "QLinearWhere",
            domain: "com.microsoft",
            lead: 1,
            inputs: 2,
            output_first: false,
            bias: false,
        },
    ),
    ("Reshape", Lowering::Direct),
    ("Transpose", Lowering::Direct),
    ("Squeeze", Lowering::Direct),
    ("Unsqueeze", Lowering::Direct),
    ("Flatten", Lowering::Direct),
    ("MaxPool", Lowering::Direct),
    ("Resize", Lowering::Direct),
    ("Split", Lowering::Direct),
    ("Gather", Lowering::Direct),
    ("Pad", Lowering::Direct),
    ("ArgMax", Lowering::ReadsQuantized),
];

const fn linear(op: &'static str, domain: &'static str, inputs: usize, bias: bool) -> Lowering {
    Lowering::Linear {
        op,
        domain,
        lead: 0,
        inputs,
        output_first: false,
        bias,
    }
}

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

/// Lowers every matching pattern of the (QDQ-quantized) model and updates the report entries.
pub fn lower_qoperator(model: &mut Model, report: &mut Report) -> Result<()> {
    let opset = model.opset("").unwrap_or(0);
    let g = &mut model.graph;
    let ids: Vec<NodeId> = g.nodes().map(|(id, _)| id).collect();
    let mut lowered: Vec<(String, &'static str)> = Vec::new();
    let mut contrib = false;
    for id in ids {
        let Some(n) = g.node(id) else { continue };
        if !n.domain().is_empty() {
            continue;
        }
        let Some((_, rule)) = RULES.iter().find(|(t, _)| *t == n.op_type()) else {
            continue;
        };
        let label = crate::dynamic::node_label(g, n);
        let done = match *rule {
            Lowering::Linear {
                op,
                domain,
                lead,
                inputs,
                output_first,
                bias,
            } => lower_linear(g, opset, id, op, domain, (lead, inputs), output_first, bias)?.then(
                || {
                    contrib |= !domain.is_empty();
                    op
                },
            ),
            Lowering::Direct => lower_direct(g, opset, id)?.then_some("direct 8-bit"),
            Lowering::ReadsQuantized => {
                lower_reads_quantized(g, id)?.then_some("on quantized data")
            }
        };
        if let Some(op) = done {
            lowered.push((label, op));
        }
    }
    cleanup(g)?;
    rename_quantized(g)?;
    for (label, op) in lowered {
        for e in report.nodes.iter_mut().filter(|e| e.node == label) {
            e.outcome = Outcome::Quantized {
                pattern: op.to_owned(),
            };
        }
    }
    report.mode = "static-qoperator".into();
    if contrib {
        crate::import_domain(model, "com.microsoft");
    }
    model
        .graph
        .validate()
        .map_err(|e| Error::Internal(e.to_string()))
}

fn edit(e: onnxq_ir::Error) -> Error {
    Error::Internal(e.to_string())
}

/// `DQ(x…) → op → Q` ⇒ one quantized operator; false when the node does not fit the pattern.
#[allow(
    clippy::too_many_arguments,
    reason = "one rule's fields, passed through"
)]
fn lower_linear(
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
            .push(onnxq_ir::Attribute::new(crate::dynamic::int_attr(
                "opset", opset,
            )));
    }
    if op == "QLinearGlobalAveragePool" {
        node.attributes
            .push(onnxq_ir::Attribute::new(crate::dynamic::int_attr(
                "channels_last",
                0,
            )));
    }
    replace(g, id, q_node, node, &ins, &[y_q])?;
    Ok(true)
}

/// `DQ(x) → op → Q` with the output sharing the input's parameters ⇒ the op on quantized data.
/// A constant-mode Pad pads with the zero point (the quantized 0.0; the QDQ pass shares
/// parameters only for zero padding), and needs opset 11 for its `constant_value` input.
fn lower_direct(g: &mut Graph, opset: i64, id: NodeId) -> Result<bool> {
    let Some(n) = g.node(id) else {
        return Ok(false);
    };
    let Some(d) = n
        .inputs()
        .first()
        .copied()
        .flatten()
        .and_then(|x| dq_of(g, x))
    else {
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
        let constant_mode = n
            .attribute("mode")
            .and_then(|a| a.proto.s.as_deref())
            .is_none_or(|m| m == b"constant");
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
fn lower_reads_quantized(g: &mut Graph, id: NodeId) -> Result<bool> {
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
    .map_err(edit)?;
    Ok(true)
}

fn input(n: &Node, i: usize) -> Option<ValueId> {
    n.inputs().get(i).copied().flatten()
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
    let (_, news) = g.add_node(node, ins, &refs).map_err(edit)?;
    for (&q, new) in q_outs.iter().zip(&news) {
        let new = new.ok_or_else(|| Error::Internal("lowered node without output".into()))?;
        g.substitute(q, new).map_err(edit)?;
    }
    for &qn in q_nodes {
        g.remove_node(qn).map_err(edit)?;
    }
    g.remove_node(old).map_err(edit)?;
    Ok(())
}

/// Removes DequantizeLinear nodes nothing reads any more, then initializers nothing reads.
fn cleanup(g: &mut Graph) -> Result<()> {
    loop {
        let dead: Vec<NodeId> = g
            .nodes()
            .filter(|(_, n)| {
                n.op_type() == "DequantizeLinear"
                    && n.outputs()
                        .iter()
                        .flatten()
                        .all(|v| g.value(*v).uses().is_empty())
            })
            .map(|(id, _)| id)
            .collect();
        if dead.is_empty() {
            break;
        }
        for id in dead {
            let inputs: Vec<ValueId> = g
                .node(id)
                .map(|n| n.inputs().iter().flatten().copied().collect())
                .unwrap_or_default();
            g.remove_node(id).map_err(edit)?;
            for v in inputs {
                crate::weights::remove_if_unused(g, v);
            }
        }
    }
    Ok(())
}

/// Quantized tensors get ORT's QOperator names: `<T>_quantized` for the output of a
/// QuantizeLinear of T or of a lowered node that stands for T (`<T>quantized`, without the
/// underscore, for Split's outputs as in ORT).
fn rename_quantized(g: &mut Graph) -> Result<()> {
    let mut renames = Vec::new();
    for (_, n) in g.nodes() {
        let suffix = if n.op_type() == "Split" {
            "quantized"
        } else {
            "_quantized"
        };
        for &out in n.outputs().iter().flatten() {
            if let Some(t) = g.value(out).name().strip_suffix("_QuantizeLinear_Output") {
                renames.push((out, t.to_owned(), suffix));
            }
        }
    }
    for (v, base, suffix) in renames {
        let base = base.strip_suffix("_QuantizeLinear_Input").unwrap_or(&base);
        let name = g.fresh_name(&format!("{base}{suffix}"));
        g.rename(v, &name).map_err(edit)?;
    }
    Ok(())
}
