//! Opset checks and safe upgrades of the default domain, and the opset imports of the domains a
//! pass emits into.

use onnxq_ir::{Graph, Model};

use crate::error::{Error, Result};

/// Ops whose definition changed between opset 10 and 11 (ONNX's operator changelog). A model using
/// none of them means the same at 11, so its import can simply be raised.
const CHANGED_AT_11: &[&str] = &[
    "ArgMax",
    "ArgMin",
    "AveragePool",
    "BitShift",
    "Clip",
    "Compress",
    "Concat",
    "ConcatFromSequence",
    "Conv",
    "ConvTranspose",
    "CumSum",
    "DepthToSpace",
    "Det",
    "DynamicQuantizeLinear",
    "Equal",
    "Flatten",
    "Gather",
    "GatherElements",
    "GatherND",
    "Gemm",
    "Hardmax",
    "If",
    "LogSoftmax",
    "Loop",
    "LpPool",
    "MaxPool",
    "MaxUnpool",
    "NonMaxSuppression",
    "OneHot",
    "Pad",
    "Range",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceProd",
    "ReduceSum",
    "ReduceSumSquare",
    "Resize",
    "Round",
    "Scan",
    "Scatter",
    "ScatterElements",
    "ScatterND",
    "SequenceAt",
    "SequenceConstruct",
    "SequenceEmpty",
    "SequenceErase",
    "SequenceInsert",
    "SequenceLength",
    "Slice",
    "Softmax",
    "Split",
    "SplitToSequence",
    "Squeeze",
    "TopK",
    "Unique",
    "Unsqueeze",
];

/// Makes sure the default-domain opset is at least `min` (only 10 → 11 is supported), raising the
/// import when no op in the model changed meaning. Returns the opset now in force.
pub(crate) fn require(model: &mut Model, min: i64) -> Result<i64> {
    let opset = model.opset("").unwrap_or(0);
    if opset < 10 {
        return Err(Error::Opset(format!(
            "the model uses opset {opset}; quantization needs opset 10 or newer (ONNX Runtime's tool refuses it too)"
        )));
    }
    if opset >= min {
        return Ok(opset);
    }
    debug_assert_eq!(min, 11, "only the 10 -> 11 step is known");
    if let Some(op) = first_changed(&model.graph) {
        return Err(Error::Opset(format!(
            "the model uses opset {opset} and DynamicQuantizeLinear needs 11, but `{op}` changed between 10 and 11, so \
             onnxq cannot raise the opset by itself"
        )));
    }
    for o in &mut model.proto.opset_import {
        if matches!(o.domain(), "" | "ai.onnx") {
            o.version = Some(min);
        }
    }
    Ok(min)
}

fn first_changed(g: &Graph) -> Option<String> {
    for (_, n) in g.nodes() {
        if n.domain().is_empty() && CHANGED_AT_11.contains(&n.op_type()) {
            return Some(n.op_type().to_owned());
        }
        for sub in n.attributes.iter().flat_map(|a| &a.subgraphs) {
            if let Some(op) = first_changed(sub) {
                return Some(op);
            }
        }
    }
    None
}

/// Adds an opset import of `domain`, version 1, unless the model has one (for the com.microsoft
/// operators a pass emits).
pub(crate) fn import_domain(model: &mut Model, domain: &str) {
    if model.opset(domain).is_none() {
        model
            .proto
            .opset_import
            .push(onnxq_ir::proto::OperatorSetIdProto {
                domain: Some(domain.to_owned()),
                version: Some(1),
            });
    }
}
