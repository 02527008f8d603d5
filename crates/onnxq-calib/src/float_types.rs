//! Which tensors of a model are known to be float32 without running it: declared types
//! (inputs, outputs, `value_info`, initializers, Constant values) carried forward through ops
//! whose output type is their first input's (and the few ops that fix their output type).
//!
//! `--ranges` uses this to tell which tensors the quantization reads a ranges file must cover:
//! `calibration_targets` lists every input and output of the selected nodes, int64 shape tensors
//! and weights included, and a ranges file has float32 activations only. A tensor whose type this
//! cannot tell is not counted, so a complete file for the model is never refused.

use std::collections::{BTreeMap, BTreeSet};

use onnxq_ir::proto as pb;
use onnxq_ir::{Def, Model, Node};

/// Ops whose every output has their first input's element type (ONNX and com.microsoft).
const SAME_AS_INPUT: &[&str] = &[
    "Abs",
    "Add",
    "AveragePool",
    "BatchNormalization",
    "BiasGelu",
    "Ceil",
    "Celu",
    "Clip",
    "Concat",
    "Conv",
    "ConvTranspose",
    "Cos",
    "CumSum",
    "DepthToSpace",
    "Div",
    "Einsum",
    "Elu",
    "Erf",
    "Exp",
    "Expand",
    "FastGelu",
    "Flatten",
    "Floor",
    "FusedMatMul",
    "GRU",
    "Gather",
    "GatherElements",
    "GatherND",
    "Gelu",
    "Gemm",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "HardSigmoid",
    "HardSwish",
    "Identity",
    "InstanceNormalization",
    "LRN",
    "LSTM",
    "LayerNormalization",
    "LeakyRelu",
    "Log",
    "LogSoftmax",
    "LpNormalization",
    "MatMul",
    "Max",
    "Mean",
    "Min",
    "Mish",
    "Mul",
    "Neg",
    "PRelu",
    "Pad",
    "Pow",
    "RNN",
    "Range",
    "Reciprocal",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSumExp",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceProd",
    "ReduceSum",
    "ReduceSumSquare",
    "Relu",
    "Reshape",
    "Resize",
    "Round",
    "ScatterElements",
    "ScatterND",
    "Selu",
    "Sigmoid",
    "Sign",
    "SimplifiedLayerNormalization",
    "Sin",
    "SkipLayerNormalization",
    "SkipSimplifiedLayerNormalization",
    "Slice",
    "Softmax",
    "Softplus",
    "Softsign",
    "SpaceToDepth",
    "Split",
    "Sqrt",
    "Squeeze",
    "Sub",
    "Sum",
    "Tanh",
    "Tile",
    "Transpose",
    "Trilu",
    "Unsqueeze",
    "Upsample",
];

/// The names of the main graph's tensors known to be float32.
pub fn float_tensors(model: &Model) -> BTreeSet<String> {
    let g = &model.graph;
    let mut types: BTreeMap<String, i32> = BTreeMap::new();
    let declared = |p: &onnxq_ir::Port| match p.info.r#type.as_ref().and_then(|t| t.value.as_ref())
    {
        Some(pb::type_proto::Value::TensorType(t)) if t.elem_type() != 0 => Some(t.elem_type()),
        _ => None,
    };
    for p in g.inputs().iter().chain(g.outputs()).chain(g.value_info()) {
        if let Some(t) = declared(p) {
            types.insert(g.value(p.value).name().to_owned(), t);
        }
    }
    for (_, v) in g.values() {
        if let Def::Initializer(t) = v.def() {
            types.insert(v.name().to_owned(), t.data_type());
        }
    }
    // Node order need not be topological: repeat until nothing new is learnt (each pass learns
    // at least one more tensor, or stops).
    loop {
        let mut learnt = false;
        for (_, n) in g.nodes() {
            let input = |i: usize| {
                n.inputs()
                    .get(i)
                    .copied()
                    .flatten()
                    .and_then(|v| types.get(g.value(v).name()).copied())
            };
            let outs: Vec<(String, i32)> = n
                .outputs()
                .iter()
                .enumerate()
                .filter_map(|(slot, v)| {
                    let name = g.value((*v)?).name();
                    if name.is_empty() || types.contains_key(name) {
                        return None;
                    }
                    output_type(n, slot, &input).map(|t| (name.to_owned(), t))
                })
                .collect();
            for (name, t) in outs {
                types.insert(name, t);
                learnt = true;
            }
        }
        if !learnt {
            break;
        }
    }
    types
        .into_iter()
        .filter(|(_, t)| *t == 1)
        .map(|(name, _)| name)
        .collect()
}

/// The element type of output `slot` of `n`, given its inputs' known types, if the op fixes it.
fn output_type(n: &Node, slot: usize, input: &dyn Fn(usize) -> Option<i32>) -> Option<i32> {
    const INT64: i32 = 7;
    const BOOL: i32 = 9;
    let attr_int = |name: &str| n.attribute(name).and_then(|a| a.proto.i);
    match (n.op_type(), slot) {
        ("Constant", 0) => {
            let a = |name: &str| n.attribute(name).map(|a| &a.proto);
            if let Some(t) = a("value").and_then(|p| p.t.as_ref()) {
                Some(t.data_type())
            } else if a("value_float").is_some() || a("value_floats").is_some() {
                Some(1)
            } else if a("value_int").is_some() || a("value_ints").is_some() {
                Some(INT64)
            } else {
                None
            }
        }
        ("Shape" | "Size" | "NonZero" | "ArgMax" | "ArgMin", 0) => Some(INT64),
        ("MaxPool" | "TopK", 1) => Some(INT64),
        ("Dropout", 1) => Some(BOOL),
        (
            "Equal" | "Less" | "Greater" | "LessOrEqual" | "GreaterOrEqual" | "And" | "Or" | "Xor"
            | "Not" | "IsNaN" | "IsInf",
            0,
        ) => Some(BOOL),
        ("Cast", 0) => attr_int("to").and_then(|t| i32::try_from(t).ok()),
        ("CastLike" | "Where", 0) => input(1),
        ("MaxPool" | "TopK" | "Dropout", 0) => input(0),
        (op, _) if n.domain().is_empty() || n.domain() == "com.microsoft" => {
            SAME_AS_INPUT.contains(&op).then(|| input(0)).flatten()
        }
        _ => None,
    }
}
