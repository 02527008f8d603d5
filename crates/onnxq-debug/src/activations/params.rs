//! The scale and zero point of an integer activation of a quantized model (QOperator models
//! keep activations as `X_quantized` integers): read from a DequantizeLinear that reads it, the
//! QuantizeLinear or QLinear op that writes it ([`OUTPUT_PARAMS`]: one row per op), or through
//! the data-movement ops that pass integers on unchanged.

use onnxq_ir::{Graph, ValueId};

use crate::values::Elements;

/// Ops that write a quantized output, with the input slots of its scale and zero point.
const OUTPUT_PARAMS: &[(&str, usize, usize)] = &[
    ("QuantizeLinear", 1, 2),
    ("QLinearConv", 6, 7),
    ("QLinearMatMul", 6, 7),
    ("QLinearAdd", 6, 7),
    ("QLinearMul", 6, 7),
    ("QGemm", 7, 8),
    ("QLinearConcat", 0, 1),
    ("QLinearAveragePool", 3, 4),
    ("QLinearGlobalAveragePool", 3, 4),
    ("QLinearLeakyRelu", 3, 4),
    ("QLinearSigmoid", 3, 4),
    ("QLinearSoftmax", 3, 4),
    ("QLinearReduceMean", 3, 4),
];

/// Ops that move integer elements without changing their quantization.
const PASS_THROUGH: &[&str] = &[
    "MaxPool",
    "Reshape",
    "Transpose",
    "Squeeze",
    "Unsqueeze",
    "Flatten",
    "Gather",
    "Slice",
    "Split",
    "Resize",
    "DepthToSpace",
    "SpaceToDepth",
    "Identity",
    "Expand",
    "Tile",
    "Pad",
];

/// The per-tensor `(scale, zero point)` of integer tensor `name`, when it exists and they are
/// found.
pub(crate) fn dequantized(g: &Graph, name: &str) -> Option<(f64, f64)> {
    params(g, g.value_by_name(name)?, 0)
}

/// Scalar `(scale, zero point)` of integer value `v`.
fn params(g: &Graph, v: ValueId, depth: usize) -> Option<(f64, f64)> {
    for reader in g.reader_nodes(v) {
        let n = g.node(reader)?;
        if n.op_type() == "DequantizeLinear" && n.inputs().first() == Some(&Some(v)) {
            return pair(g, n.inputs(), 1, 2);
        }
    }
    let n = g.node(g.producer(v)?)?;
    if let Some(&(_, s, z)) = OUTPUT_PARAMS.iter().find(|(op, ..)| *op == n.op_type()) {
        return pair(g, n.inputs(), s, z);
    }
    if PASS_THROUGH.contains(&n.op_type()) && depth < 8 {
        return params(g, (*n.inputs().first()?)?, depth + 1);
    }
    None
}

/// The scalar constants at `s` and `z` among `inputs` (an absent zero point is 0).
fn pair(g: &Graph, inputs: &[Option<ValueId>], s: usize, z: usize) -> Option<(f64, f64)> {
    let scalar = |slot: usize| -> Option<f64> {
        let v = (*inputs.get(slot)?)?;
        let e = Elements::of(crate::weights::constant(g, v)?).ok()?;
        (e.len() == 1).then(|| e.get(0))
    };
    let zp = match inputs.get(z) {
        Some(Some(_)) => scalar(z)?,
        _ => 0.0,
    };
    Some((scalar(s)?, zp))
}
