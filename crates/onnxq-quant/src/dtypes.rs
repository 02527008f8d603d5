//! Element types of a graph's tensors where they are certain without shape inference: declared
//! (graph inputs and outputs, `value_info`), constants, the outputs of ops with a fixed output
//! type (Shape, Size, Cast, comparisons, ...), and the ops that keep their data input's type.
//! The report uses it to leave integer shape arithmetic (`Shape → Gather → Concat → Reshape`) out
//! of the candidates: only float tensors can be quantized, so such nodes are not "skipped".

use std::collections::BTreeMap;

use onnxq_ir::{Graph, Node, ValueId};

use crate::edit::{input, int_attr_of};
use crate::weights::resolve;

/// ONNX element types quantization reads (float32, float16, bfloat16, float64).
pub(crate) fn is_float(t: i32) -> bool {
    matches!(t, 1 | 10 | 11 | 16)
}

/// Ops whose outputs have the type of their input 0 (data movement and elementwise arithmetic).
const SAME_AS_INPUT0: &[&str] = &[
    "Identity",
    "Reshape",
    "Squeeze",
    "Unsqueeze",
    "Flatten",
    "Transpose",
    "Gather",
    "GatherElements",
    "GatherND",
    "Slice",
    "Concat",
    "Split",
    "Expand",
    "Tile",
    "Pad",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Neg",
    "Abs",
    "Mod",
    "Pow",
    "Floor",
    "Ceil",
    "Sign",
    "Relu",
    "Clip",
    "Range",
    "CumSum",
    "ScatterND",
    "ScatterElements",
    "Min",
    "Max",
    "ReduceMin",
    "ReduceMax",
    "ReduceProd",
    "ReduceSum",
];

/// The type of each tensor of `g` whose type is certain; tensors missing from the map are unknown.
pub(crate) fn known_types(g: &Graph) -> BTreeMap<ValueId, i32> {
    let mut types: BTreeMap<ValueId, i32> = BTreeMap::new();
    for p in g.inputs().iter().chain(g.outputs()).chain(g.value_info()) {
        let t = p
            .info
            .r#type
            .as_ref()
            .and_then(|t| match &t.value {
                Some(onnxq_ir::proto::type_proto::Value::TensorType(tt)) => tt.elem_type,
                _ => None,
            })
            .unwrap_or(0);
        if t != 0 {
            types.insert(p.value, t);
        }
    }
    let order = g
        .topological_order()
        .unwrap_or_else(|_| g.nodes().map(|(id, _)| id).collect());
    for id in order {
        let Some(n) = g.node(id) else { continue };
        for v in n.inputs().iter().flatten() {
            if !types.contains_key(v)
                && let Some(c) = resolve(g, &[], *v)
            {
                types.insert(*v, c.tensor.data_type());
            }
        }
        if let Some(t) = output_type(n, &types) {
            for v in n.outputs().iter().flatten() {
                types.entry(*v).or_insert(t);
            }
        }
    }
    types
}

/// The type of node `n`'s outputs, when its op fixes it or keeps input 0's known type.
fn output_type(n: &Node, types: &BTreeMap<ValueId, i32>) -> Option<i32> {
    if !n.domain().is_empty() && n.domain() != "ai.onnx" {
        return None;
    }
    match n.op_type() {
        "Shape" | "Size" | "NonZero" | "ArgMax" | "ArgMin" => Some(7),
        "Equal" | "Less" | "LessOrEqual" | "Greater" | "GreaterOrEqual" | "Not" | "And" | "Or"
        | "Xor" | "IsNaN" | "IsInf" => Some(9),
        "Cast" => Some(int_attr_of(n, "to", 0) as i32).filter(|t| *t != 0),
        // Float32 zeros unless its `value` says otherwise.
        "ConstantOfShape" => Some(
            n.attribute("value")
                .and_then(|a| a.proto.t.as_ref())
                .map_or(1, |t| t.data_type()),
        ),
        "Where" => input(n, 1).and_then(|v| types.get(&v).copied()),
        op if SAME_AS_INPUT0.contains(&op) => input(n, 0).and_then(|v| types.get(&v).copied()),
        _ => None,
    }
}

/// Whether every tensor `n` reads or writes has a known type and none is float: such a node has
/// nothing to quantize.
pub(crate) fn all_non_float(n: &Node, types: &BTreeMap<ValueId, i32>) -> bool {
    n.inputs()
        .iter()
        .chain(n.outputs())
        .flatten()
        .all(|v| types.get(v).is_some_and(|t| !is_float(*t)))
}
