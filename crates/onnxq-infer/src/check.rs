//! What ONNX Runtime would refuse at load, found before a command writes a model from it: a
//! domain a node uses with no opset import, a Constant without a value, inputs of one type
//! variable with different element types (a float16 weight into a float32 MatMul), and known
//! dims that cannot broadcast. Each problem names the node. (Operator schemas, for input counts
//! and attribute types, are not checked yet.)

use onnxq_ir::{Model, Node};

use crate::fact::Fact;
use crate::infer::Inference;
use crate::rules::broadcast_dims;

/// A problem with a model, naming the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The node's name (or its first output's).
    pub node: String,
    /// What is wrong, in a sentence.
    pub message: String,
}

/// Ops whose inputs listed here share one element type (ONNX's type variable `T`).
const SAME_TYPE: &[(&str, &[usize])] = &[
    ("Add", &[0, 1]),
    ("Sub", &[0, 1]),
    ("Mul", &[0, 1]),
    ("Div", &[0, 1]),
    ("MatMul", &[0, 1]),
    ("Gemm", &[0, 1, 2]),
    ("Equal", &[0, 1]),
    ("Less", &[0, 1]),
    ("Greater", &[0, 1]),
    ("LessOrEqual", &[0, 1]),
    ("GreaterOrEqual", &[0, 1]),
    ("Where", &[1, 2]),
    ("Conv", &[0, 1, 2]),
    ("Max", &[0, 1]),
    ("Min", &[0, 1]),
];

/// Ops that broadcast their listed inputs (numpy rules).
const BROADCAST: &[(&str, &[usize])] = &[
    ("Add", &[0, 1]),
    ("Sub", &[0, 1]),
    ("Mul", &[0, 1]),
    ("Div", &[0, 1]),
    ("Pow", &[0, 1]),
    ("Equal", &[0, 1]),
    ("Less", &[0, 1]),
    ("Greater", &[0, 1]),
    ("And", &[0, 1]),
    ("Or", &[0, 1]),
    ("Where", &[0, 1, 2]),
];

/// The problems of `model`'s main graph, given its inference.
pub fn check(model: &Model, inf: &Inference) -> Vec<Problem> {
    let g = &model.graph;
    let mut out = Vec::new();
    for (_, n) in g.nodes() {
        let label = || {
            let first = n.outputs().iter().flatten().next();
            match (n.name(), first) {
                ("", Some(&v)) => g.value(v).name().to_owned(),
                (name, _) => name.to_owned(),
            }
        };
        let mut problem = |message: String| {
            out.push(Problem {
                node: label(),
                message,
            })
        };
        let domain = if n.domain() == "ai.onnx" {
            ""
        } else {
            n.domain()
        };
        if model.opset(domain).is_none() {
            let shown = if domain.is_empty() {
                "ai.onnx (\"\")"
            } else {
                domain
            };
            problem(format!(
                "its domain {shown} has no opset import in the model, so ONNX Runtime cannot resolve `{}`",
                n.op_type()
            ));
            continue;
        }
        if !domain.is_empty() {
            continue;
        }
        if n.op_type() == "Constant" && n.attributes.is_empty() {
            problem("a Constant node without a value attribute".into());
        }
        let fact = |i: usize| -> Option<&Fact> {
            let v = n.inputs().get(i).copied().flatten()?;
            inf.facts.get(g.value(v).name())
        };
        if let Some((_, slots)) = SAME_TYPE.iter().find(|(op, _)| *op == n.op_type()) {
            let elems: Vec<(usize, i32)> = slots
                .iter()
                .filter_map(|&i| fact(i).and_then(|f| f.elem).map(|e| (i, e)))
                .collect();
            if let Some(&(j, e)) = elems.iter().find(|(_, e)| *e != elems[0].1) {
                problem(format!(
                    "{} input {} is element type {} and input {j} is {e}; they must be one type",
                    n.op_type(),
                    elems[0].0,
                    elems[0].1
                ));
            }
        }
        if let Some((_, slots)) = BROADCAST.iter().find(|(op, _)| *op == n.op_type()) {
            broadcast_problem(n, slots, &fact, &mut problem);
        }
    }
    out
}

/// A problem when the listed inputs' known dims cannot broadcast.
fn broadcast_problem<'a>(
    n: &Node,
    slots: &[usize],
    fact: &dyn Fn(usize) -> Option<&'a Fact>,
    problem: &mut dyn FnMut(String),
) {
    let shapes: Vec<&[crate::dim::Dim]> = slots
        .iter()
        .filter_map(|&i| fact(i).and_then(|f| f.shape.as_deref()))
        .collect();
    if shapes.len() == slots.len()
        && let Err(e) = broadcast_dims(&shapes)
    {
        let shown: Vec<String> = shapes
            .iter()
            .map(|s| {
                format!(
                    "[{}]",
                    s.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
            .collect();
        problem(format!(
            "{} inputs {} cannot broadcast: {e}",
            n.op_type(),
            shown.join(" and ")
        ));
    }
}
