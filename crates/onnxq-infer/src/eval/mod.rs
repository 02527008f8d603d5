//! A small evaluator for constant folding: given a default-domain node whose inputs are all
//! constant, its outputs, or `None` when the op is not one it knows, an input is of a type it
//! does not handle, or the result would be over [`MAX_ELEMS`] elements. It covers the ops
//! exported constant subgraphs are made of (shape arithmetic, casts, transposed or scaled
//! weights, masks); random ops, quantization ops and ops with subgraphs are never evaluated, so
//! folding cannot change what a model computes or hide a Q/DQ pair. Inference uses it too, for
//! the contents of small tensors (a pads vector built by Concat, Slice and Transpose), and
//! `preprocess` folds with it, so both compute a constant the same way.

mod arith;
mod layout;
mod value;

pub use value::{Data, MAX_ELEMS, Val};

use onnxq_ir::Node;

use arith::{binary, cast, compare, not, unary, where_};
use layout::{
    concat, constant_of_shape, expand, flatten, gather, range, reshape, shape, slice, split,
    squeeze, tile, transpose, unsqueeze,
};

fn int_attr(n: &Node, name: &str) -> Option<i64> {
    n.attribute(name).and_then(|a| a.proto.i)
}

fn ints_attr<'n>(n: &'n Node, name: &str) -> Option<&'n [i64]> {
    n.attribute(name).map(|a| a.proto.ints.as_slice())
}

/// The ops [`eval`] knows, so a caller can skip reading the inputs of any other.
pub const OPS: &[&str] = &[
    "Identity",
    "Neg",
    "Abs",
    "Sqrt",
    "Exp",
    "Log",
    "Reciprocal",
    "Relu",
    "Sigmoid",
    "Tanh",
    "Floor",
    "Ceil",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "Max",
    "Min",
    "Equal",
    "Less",
    "Greater",
    "LessOrEqual",
    "GreaterOrEqual",
    "And",
    "Or",
    "Xor",
    "Not",
    "Where",
    "Cast",
    "Reshape",
    "Flatten",
    "Unsqueeze",
    "Squeeze",
    "Transpose",
    "Concat",
    "Split",
    "Gather",
    "Slice",
    "Expand",
    "Tile",
    "ConstantOfShape",
    "Shape",
    "Size",
    "Range",
];

/// The outputs of `n` at default-domain `opset`, from its inputs (`None` for an absent optional
/// input), when it can be evaluated exactly.
pub fn eval(n: &Node, ins: &[Option<&Val>], opset: i64) -> Option<Vec<Val>> {
    let x = |i: usize| ins.get(i).copied().flatten();
    let ints = |i: usize| x(i).and_then(|v| v.data.ints());
    let one = |v: Option<Val>| v.map(|v| vec![v]);
    let op = n.op_type();
    match op {
        "Identity" => one(x(0).cloned()),
        "Neg" | "Abs" | "Sqrt" | "Exp" | "Log" | "Reciprocal" | "Relu" | "Sigmoid" | "Tanh"
        | "Floor" | "Ceil" => one(unary(op, x(0)?)),
        "Add" | "Sub" | "Mul" | "Div" | "Pow" => one(binary(op, x(0)?, x(1)?)),
        "Max" | "Min" if ins.len() == 1 => one(x(0).cloned()),
        "Max" | "Min" if ins.len() == 2 => one(binary(op, x(0)?, x(1)?)),
        "Equal" | "Less" | "Greater" | "LessOrEqual" | "GreaterOrEqual" | "And" | "Or" | "Xor" => {
            one(compare(op, x(0)?, x(1)?))
        }
        "Not" => one(not(x(0)?)),
        "Where" => one(where_(x(0)?, x(1)?, x(2)?)),
        "Cast" => one(cast(x(0)?, int_attr(n, "to")?)),
        "Reshape" => one(reshape(
            x(0)?,
            &ints(1)?,
            int_attr(n, "allowzero") == Some(1),
        )),
        "Flatten" => one(flatten(x(0)?, int_attr(n, "axis").unwrap_or(1))),
        "Unsqueeze" if opset < 13 => one(unsqueeze(x(0)?, ints_attr(n, "axes")?)),
        "Unsqueeze" => one(unsqueeze(x(0)?, &ints(1)?)),
        "Squeeze" if opset < 13 => one(squeeze(x(0)?, ints_attr(n, "axes"))),
        "Squeeze" => match x(1) {
            Some(a) => one(squeeze(x(0)?, Some(&a.data.ints()?))),
            None => one(squeeze(x(0)?, None)),
        },
        "Transpose" => one(transpose(x(0)?, ints_attr(n, "perm"))),
        "Concat" => {
            let xs: Vec<&Val> = ins.iter().copied().collect::<Option<_>>()?;
            one(concat(&xs, int_attr(n, "axis")?))
        }
        "Split" => split_node(n, ins, opset),
        "Gather" => one(gather(x(0)?, x(1)?, int_attr(n, "axis").unwrap_or(0))),
        "Slice" => slice_node(n, ins, opset),
        "Expand" => one(expand(x(0)?, &ints(1)?)),
        "Tile" => one(tile(x(0)?, &ints(1)?)),
        "ConstantOfShape" => {
            let fill = match n.attribute("value") {
                Some(a) => Some(Val::from_tensor(a.proto.t.as_ref()?)?),
                None => None,
            };
            one(constant_of_shape(&ints(0)?, fill))
        }
        "Shape" => one(shape(
            x(0)?,
            int_attr(n, "start").unwrap_or(0),
            int_attr(n, "end"),
        )),
        "Size" => one(Val::i64s(vec![], vec![x(0)?.len() as i64])),
        "Range" => one(range(x(0)?, x(1)?, x(2)?)),
        _ => None,
    }
}

/// `Slice`: attributes before opset 10, inputs from then on (axes default to all, steps to 1).
fn slice_node(n: &Node, ins: &[Option<&Val>], opset: i64) -> Option<Vec<Val>> {
    let x = ins.first().copied().flatten()?;
    let ints = |i: usize| ins.get(i).copied().flatten().and_then(|v| v.data.ints());
    let (starts, ends, axes, steps) = if opset < 10 {
        let starts = ints_attr(n, "starts")?.to_vec();
        let axes = ints_attr(n, "axes").map(<[i64]>::to_vec);
        (starts, ints_attr(n, "ends")?.to_vec(), axes, None)
    } else {
        let absent = |i: usize| ins.get(i).copied().flatten().is_none();
        let axes = if absent(3) { None } else { Some(ints(3)?) };
        let steps = if absent(4) { None } else { Some(ints(4)?) };
        (ints(1)?, ints(2)?, axes, steps)
    };
    let axes = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = steps.unwrap_or_else(|| vec![1; starts.len()]);
    if starts.len() != axes.len() || ends.len() != axes.len() || steps.len() != axes.len() {
        return None;
    }
    Some(vec![slice(x, &starts, &ends, &axes, &steps)?])
}

/// `Split`: sizes from the attribute (before 13), the input (13+), or equal parts — exact before
/// opset 18, `num_outputs` with a smaller last part from 18.
fn split_node(n: &Node, ins: &[Option<&Val>], opset: i64) -> Option<Vec<Val>> {
    let x = ins.first().copied().flatten()?;
    let a = int_attr(n, "axis").unwrap_or(0);
    let outputs = n.outputs().len();
    let given: Option<Vec<i64>> = if opset < 13 {
        ints_attr(n, "split")
            .filter(|s| !s.is_empty())
            .map(<[i64]>::to_vec)
    } else {
        match ins.get(1).copied().flatten() {
            Some(v) => Some(v.data.ints()?),
            None => None,
        }
    };
    let d = *x.dims.get(value::axis(a, x.dims.len())?)?;
    let sizes: Vec<usize> = match given {
        Some(s) => s
            .iter()
            .map(|&v| usize::try_from(v).ok())
            .collect::<Option<_>>()?,
        None if opset >= 18 => {
            let k = usize::try_from(int_attr(n, "num_outputs")?).ok()?.max(1);
            let each = d.div_ceil(k);
            (0..k)
                .map(|i| each.min(d.saturating_sub(i * each)))
                .collect()
        }
        None if outputs > 0 && d.is_multiple_of(outputs) => vec![d / outputs; outputs],
        None => return None,
    };
    (sizes.len() == outputs).then_some(())?;
    split(x, a, &sizes)
}
