//! Where a quantized model keeps its quantized constants: one row per op that holds integer
//! weights with their parameters ([`AFFINE_OPS`]: DequantizeLinear, the QOperator ops, the
//! dynamic-mode integer ops), and the two weight-only ops whose codes are packed in their own
//! layouts (MatMulNBits, GatherBlockQuantized). Adding an op with an affine weight is one row.

use onnxq_ir::proto as pb;
use onnxq_ir::{Def, Graph, Node, ValueId};

/// How an op with an affine weight (`value = (code − zp) · scale`) names its parts.
pub(crate) struct AffineOp {
    /// Op type.
    pub(crate) op: &'static str,
    /// Input slot of the codes.
    pub(crate) codes: usize,
    /// Where the scale is.
    pub(crate) scale: Scale,
    /// Input slot of the zero point (absent or empty = 0).
    pub(crate) zero_point: Option<usize>,
    /// The channel axis of a per-channel scale.
    pub(crate) axis: Axis,
    /// Input slot of the float node the weight came from (Conv's W is 1, MatMul's B is 1, ...),
    /// for matching by node when names do not tell.
    pub(crate) float_slot: usize,
}

/// Where an op's weight scale is.
pub(crate) enum Scale {
    /// An input of the node.
    Input(usize),
    /// Not an input (MatMulInteger, ConvInteger apply it after the integer product): the
    /// constant named as ONNX Runtime's tool names it, the codes' name with `_quantized`
    /// replaced by `_scale`.
    Named,
}

/// The channel axis of a per-channel weight.
pub(crate) enum Axis {
    /// The `axis` attribute, with this default (DequantizeLinear).
    Attribute(i64),
    /// A fixed axis; negative counts from the end.
    Fixed(i64),
    /// Gemm-like: 0 when `transB` is set, else 1.
    TransB,
}

/// The ops whose weights are affine-quantized constants.
pub(crate) const AFFINE_OPS: &[AffineOp] = &[
    AffineOp {
        op: "DequantizeLinear",
        codes: 0,
        scale: Scale::Input(1),
        zero_point: Some(2),
        axis: Axis::Attribute(1),
        float_slot: 0,
    },
    AffineOp {
        op: "QLinearConv",
        codes: 3,
        scale: Scale::Input(4),
        zero_point: Some(5),
        axis: Axis::Fixed(0),
        float_slot: 1,
    },
    AffineOp {
        op: "QLinearMatMul",
        codes: 3,
        scale: Scale::Input(4),
        zero_point: Some(5),
        axis: Axis::Fixed(-1),
        float_slot: 1,
    },
    AffineOp {
        op: "QGemm",
        codes: 3,
        scale: Scale::Input(4),
        zero_point: Some(5),
        axis: Axis::TransB,
        float_slot: 1,
    },
    AffineOp {
        op: "QAttention",
        codes: 1,
        scale: Scale::Input(4),
        zero_point: Some(7),
        axis: Axis::Fixed(-1),
        float_slot: 1,
    },
    AffineOp {
        op: "MatMulIntegerToFloat",
        codes: 1,
        scale: Scale::Input(3),
        zero_point: Some(5),
        axis: Axis::Fixed(-1),
        float_slot: 1,
    },
    AffineOp {
        op: "DynamicQuantizeMatMul",
        codes: 1,
        scale: Scale::Input(2),
        zero_point: Some(3),
        axis: Axis::Fixed(-1),
        float_slot: 1,
    },
    AffineOp {
        op: "MatMulInteger",
        codes: 1,
        scale: Scale::Named,
        zero_point: Some(3),
        axis: Axis::Fixed(-1),
        float_slot: 1,
    },
    AffineOp {
        op: "ConvInteger",
        codes: 1,
        scale: Scale::Named,
        zero_point: Some(3),
        axis: Axis::Fixed(0),
        float_slot: 1,
    },
];

/// The constant tensor behind `v`: an initializer, a Constant node's value, or either through
/// Identity nodes.
pub(crate) fn constant(g: &Graph, v: ValueId) -> Option<&pb::TensorProto> {
    match g.value(v).def() {
        Def::Initializer(t) => Some(t),
        Def::Node { node, .. } => {
            let n = g.node(*node)?;
            match (n.domain(), n.op_type()) {
                ("", "Constant") => n.attribute("value")?.proto.t.as_ref(),
                ("", "Identity") => constant(g, (*n.inputs().first()?)?),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The constant at input `slot` of `n`, with its value's name.
pub(crate) fn input_constant<'g>(
    g: &'g Graph,
    n: &Node,
    slot: usize,
) -> Option<(&'g str, &'g pb::TensorProto)> {
    let v = (*n.inputs().get(slot)?)?;
    Some((g.value(v).name(), constant(g, v)?))
}

/// An integer attribute of `n`.
pub(crate) fn int_attr(n: &Node, name: &str) -> Option<i64> {
    n.attribute(name).and_then(|a| a.proto.i)
}

/// The row of an op with an affine weight.
pub(crate) fn affine_op(n: &Node) -> Option<&'static AffineOp> {
    let domain_ok = |op: &str| match op {
        "DequantizeLinear" => n.domain().is_empty() || n.domain() == "com.microsoft",
        "QLinearConv" | "QLinearMatMul" | "MatMulInteger" | "ConvInteger" => n.domain().is_empty(),
        _ => n.domain() == "com.microsoft",
    };
    AFFINE_OPS
        .iter()
        .find(|r| r.op == n.op_type() && domain_ok(r.op))
}

/// The channel axis of `n`'s weight of rank `rank` under `row`'s rule.
pub(crate) fn channel_axis(row: &AffineOp, n: &Node, rank: usize) -> Option<usize> {
    let a = match row.axis {
        Axis::Attribute(d) => int_attr(n, "axis").unwrap_or(d),
        Axis::Fixed(a) => a,
        Axis::TransB => i64::from(int_attr(n, "transB").unwrap_or(0) == 0),
    };
    let r = rank as i64;
    let a = if a < 0 { a + r } else { a };
    (0..r).contains(&a).then_some(a as usize)
}
