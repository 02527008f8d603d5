//! Rules for ops whose output shape follows from their inputs' by a fixed pattern: elementwise
//! (same shape, or numpy broadcasting), matrix products, transposes and reductions. Integer
//! contents propagate through elementwise arithmetic, which shape subgraphs use on dims.

use super::{Ctx, Outcome, axis};
use crate::dim::Dim;
use crate::fact::{Fact, MAX_VALUE_ELEMS, elem};

/// Ops whose one output has the first input's type and shape.
pub(crate) const UNARY: &[&str] = &[
    "Identity",
    "Relu",
    "Sigmoid",
    "Tanh",
    "Exp",
    "Log",
    "Sqrt",
    "Neg",
    "Abs",
    "Erf",
    "Reciprocal",
    "Floor",
    "Ceil",
    "Round",
    "Sign",
    "Sin",
    "Cos",
    "Tan",
    "Asin",
    "Acos",
    "Atan",
    "Sinh",
    "Cosh",
    "Asinh",
    "Acosh",
    "Atanh",
    "Softplus",
    "Softsign",
    "HardSigmoid",
    "HardSwish",
    "LeakyRelu",
    "Elu",
    "Selu",
    "Celu",
    "Gelu",
    "Mish",
    "ThresholdedRelu",
    "Not",
    "Softmax",
    "LogSoftmax",
    "Hardmax",
    "Clip",
    "BatchNormalization",
    "InstanceNormalization",
    "LpNormalization",
    "MeanVarianceNormalization",
    "CumSum",
    "Trilu",
    "Shrink",
    "BitwiseNot",
    "QuantizeLinear",
    "DequantizeLinear",
];

/// Broadcasting ops whose output has the first input's element type.
pub(crate) const BINARY: &[&str] = &[
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "Mod",
    "Max",
    "Min",
    "Sum",
    "Mean",
    "PRelu",
    "BitShift",
    "BitwiseAnd",
    "BitwiseOr",
    "BitwiseXor",
];

/// Broadcasting ops with a bool output.
pub(crate) const COMPARE: &[&str] = &[
    "Equal",
    "Less",
    "Greater",
    "LessOrEqual",
    "GreaterOrEqual",
    "And",
    "Or",
    "Xor",
];

/// Reductions with `keepdims` (axes as an attribute or, from some opset on, an input).
pub(crate) const REDUCE: &[&str] = &[
    "ReduceSum",
    "ReduceMean",
    "ReduceMax",
    "ReduceMin",
    "ReduceProd",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceSumSquare",
    "ArgMax",
    "ArgMin",
];

pub(crate) fn same_as_input(c: &Ctx<'_>) -> Outcome {
    let f = c.input(0)?;
    let mut out = Fact::tensor(f.elem, f.shape.clone());
    // Identity keeps contents; so do QuantizeLinear's zero-point-free casts (not tracked).
    if c.node.op_type() == "Identity" {
        out.value = f.value.clone();
    }
    // DequantizeLinear's output is its scale's type; QuantizeLinear's its zero point's (uint8
    // without one, or `output_dtype`).
    match c.node.op_type() {
        "DequantizeLinear" => out.elem = c.input(1)?.elem,
        "QuantizeLinear" => {
            let dtype = c.int("output_dtype", 0);
            out.elem = if dtype != 0 {
                Some(dtype as i32)
            } else {
                match c.inputs.get(2).copied().flatten() {
                    Some(z) => z.elem,
                    None => Some(2),
                }
            };
        }
        _ => {}
    }
    Ok(vec![out])
}

/// Numpy broadcasting of shapes; a symbolic dim against a known one other than 1 takes the known
/// one (they must be equal to broadcast), two different symbols give an opaque `max`.
pub(crate) fn broadcast(shapes: &[&[Dim]]) -> Result<Vec<Dim>, String> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let one = Dim::known(1);
    let mut out = vec![one.clone(); rank];
    for s in shapes {
        let off = rank - s.len();
        for (i, d) in s.iter().enumerate() {
            let o = &mut out[off + i];
            *o = match (o.value(), d.value()) {
                (Some(1), _) => d.clone(),
                (_, Some(1)) => o.clone(),
                (Some(a), Some(b)) if a != b => {
                    return Err(format!("dims {a} and {b} cannot broadcast"));
                }
                (Some(_), _) => o.clone(),
                (_, Some(_)) => d.clone(),
                _ => o.maximum(d),
            };
        }
    }
    Ok(out)
}

/// The broadcast shape of every present input.
fn broadcast_inputs(c: &Ctx<'_>) -> Result<Vec<Dim>, String> {
    let mut shapes = Vec::new();
    for i in 0..c.inputs.len() {
        if c.inputs[i].is_some() {
            shapes.push(c.shape(i)?);
        }
    }
    broadcast(&shapes)
}

pub(crate) fn broadcast_op(c: &Ctx<'_>) -> Outcome {
    let shape = broadcast_inputs(c)?;
    let mut out = Fact::tensor(c.input(0)?.elem, Some(shape));
    out.value = arithmetic(c);
    Ok(vec![out])
}

/// Elementwise integer arithmetic on known contents (shape computations), scalars broadcast.
fn arithmetic(c: &Ctx<'_>) -> Option<Vec<Dim>> {
    let op = c.node.op_type();
    elementwise(c, 0, 1, |x, y| match op {
        "Add" => x.add(y),
        "Sub" => x.sub(y),
        "Mul" => x.mul(y),
        "Div" => x.floor_div(y),
        "Max" => Some(x.maximum(y)),
        "Min" => Some(x.minimum(y)),
        _ => None,
    })
}

pub(crate) fn compare(c: &Ctx<'_>) -> Outcome {
    let mut out = Fact::tensor(Some(elem::BOOL), Some(broadcast_inputs(c)?));
    if c.node.op_type() == "Equal" {
        out.value = elementwise(c, 0, 1, |x, y| {
            let eq = match (x.value(), y.value()) {
                (Some(a), Some(b)) => a == b,
                _ if x == y => true,
                // A dimension is never negative: `dim == -1` (a Reshape's placeholder) is false.
                (None, Some(b)) | (Some(b), None) if b < 0 => false,
                _ => return None,
            };
            Some(Dim::known(i64::from(eq)))
        });
    }
    Ok(vec![out])
}

/// Contents of an elementwise op over inputs `a` and `b` whose contents are known, scalars
/// broadcast; `f` gives each element, or `None` when it cannot tell.
fn elementwise(
    c: &Ctx<'_>,
    a: usize,
    b: usize,
    f: impl Fn(&Dim, &Dim) -> Option<Dim>,
) -> Option<Vec<Dim>> {
    let va = c.inputs.get(a)?.as_ref()?.value.as_ref()?;
    let vb = c.inputs.get(b)?.as_ref()?.value.as_ref()?;
    let n = va.len().max(vb.len());
    let fits = |v: &[Dim]| v.len() == n || v.len() == 1;
    if !fits(va) || !fits(vb) || n > MAX_VALUE_ELEMS {
        return None;
    }
    let at = |v: &[Dim], i: usize| v[if v.len() == 1 { 0 } else { i }].clone();
    (0..n).map(|i| f(&at(va, i), &at(vb, i))).collect()
}

pub(crate) fn where_op(c: &Ctx<'_>) -> Outcome {
    let shape = broadcast(&[c.shape(0)?, c.shape(1)?, c.shape(2)?])?;
    let mut out = Fact::tensor(c.input(1)?.elem, Some(shape));
    // where(shape == -1, 1, shape) and the like, on shape vectors.
    if let Some(cond) = c.input(0)?.ints() {
        let xs = elementwise(c, 1, 2, |x, _| Some(x.clone()));
        let ys = elementwise(c, 1, 2, |_, y| Some(y.clone()));
        if let (Some(xs), Some(ys)) = (xs, ys)
            && (cond.len() == xs.len() || cond.len() == 1)
        {
            let at = |i: usize| cond[if cond.len() == 1 { 0 } else { i }];
            out.value = Some(
                (0..xs.len())
                    .map(|i| {
                        if at(i) != 0 {
                            xs[i].clone()
                        } else {
                            ys[i].clone()
                        }
                    })
                    .collect(),
            );
        }
    }
    Ok(vec![out])
}

pub(crate) fn cast(c: &Ctx<'_>) -> Outcome {
    let f = c.input(0)?;
    let to = c.int("to", 0) as i32;
    let mut out = Fact::tensor(Some(to), f.shape.clone());
    if to == elem::INT64 || to == elem::INT32 {
        out.value = f.value.clone();
    }
    Ok(vec![out])
}

pub(crate) fn matmul(c: &Ctx<'_>) -> Outcome {
    let (a, b) = (c.shape(0)?, c.shape(1)?);
    // The contracted dims: A's last and B's second to last (its only one when 1-D).
    let k_b = if b.len() == 1 {
        b.first()
    } else {
        b.get(b.len().wrapping_sub(2))
    };
    if let (Some(ka), Some(kb)) = (a.last().and_then(Dim::value), k_b.and_then(Dim::value))
        && ka != kb
    {
        return Err(c.invalid(format!(
            "MatMul contracts A's last dim {ka} with B's {kb}; they must be equal"
        )));
    }
    let shape = matmul_shape(a, b)?;
    Ok(vec![Fact::tensor(c.input(0)?.elem, Some(shape))])
}

/// Numpy matmul's output shape.
pub(crate) fn matmul_shape(a: &[Dim], b: &[Dim]) -> Result<Vec<Dim>, String> {
    if a.is_empty() || b.is_empty() {
        return Err("MatMul of a scalar".into());
    }
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    let (a1, b1) = (a.len() == 1, b.len() == 1);
    if a1 {
        a.insert(0, Dim::known(1));
    }
    if b1 {
        b.push(Dim::known(1));
    }
    let (ra, rb) = (a.len(), b.len());
    let mut out = broadcast(&[&a[..ra - 2], &b[..rb - 2]])?;
    if !a1 {
        out.push(a[ra - 2].clone());
    }
    if !b1 {
        out.push(b[rb - 1].clone());
    }
    Ok(out)
}

pub(crate) fn gemm(c: &Ctx<'_>) -> Outcome {
    let (a, b) = (c.shape(0)?, c.shape(1)?);
    if a.len() != 2 || b.len() != 2 {
        return Err("Gemm inputs must be 2-D".into());
    }
    let m = if c.int("transA", 0) != 0 {
        &a[1]
    } else {
        &a[0]
    };
    let n = if c.int("transB", 0) != 0 {
        &b[0]
    } else {
        &b[1]
    };
    Ok(vec![Fact::tensor(
        c.input(0)?.elem,
        Some(vec![m.clone(), n.clone()]),
    )])
}

pub(crate) fn transpose(c: &Ctx<'_>) -> Outcome {
    let s = c.shape(0)?;
    let perm = c
        .ints("perm")
        .unwrap_or_else(|| (0..s.len() as i64).rev().collect());
    if perm.len() != s.len() {
        return Err(format!("perm {perm:?} for rank {}", s.len()));
    }
    let out = perm
        .iter()
        .map(|&p| axis(p, s.len()).map(|p| s[p].clone()))
        .collect::<Result<_, _>>()?;
    Ok(vec![Fact::tensor(c.input(0)?.elem, Some(out))])
}

pub(crate) fn reduce(c: &Ctx<'_>) -> Outcome {
    let s = c.shape(0)?;
    let op = c.node.op_type();
    let keep = c.int("keepdims", 1) != 0;
    let arg = op.starts_with("Arg");
    // Axes moved to an input at opset 13 for ReduceSum and at 18 for the others.
    let axes_input = !arg && (c.opset >= 18 || (op == "ReduceSum" && c.opset >= 13));
    let axes: Vec<i64> = if arg {
        vec![c.int("axis", 0)]
    } else if axes_input {
        c.const_ints(1)?.unwrap_or_default()
    } else {
        c.ints("axes").unwrap_or_default()
    };
    let noop = !arg && axes.is_empty() && c.int("noop_with_empty_axes", 0) != 0;
    let axes: Vec<usize> = if axes.is_empty() && !arg {
        (0..s.len()).collect()
    } else {
        axes.iter()
            .map(|&a| axis(a, s.len()))
            .collect::<Result<_, _>>()?
    };
    let out: Vec<Dim> = if noop {
        s.to_vec()
    } else {
        (0..s.len())
            .filter_map(|i| match (axes.contains(&i), keep) {
                (false, _) => Some(s[i].clone()),
                (true, true) => Some(Dim::known(1)),
                (true, false) => None,
            })
            .collect()
    };
    let elem = if arg {
        Some(elem::INT64)
    } else {
        c.input(0)?.elem
    };
    Ok(vec![Fact::tensor(elem, Some(out))])
}

pub(crate) fn dropout(c: &Ctx<'_>) -> Outcome {
    let f = c.input(0)?;
    let mask = Fact::tensor(Some(elem::BOOL), f.shape.clone());
    Ok(vec![Fact::tensor(f.elem, f.shape.clone()), mask])
}

pub(crate) fn layer_norm(c: &Ctx<'_>) -> Outcome {
    let f = c.input(0)?;
    let s = c.shape(0)?;
    let a = axis(c.int("axis", -1), s.len())?;
    let stats: Vec<Dim> = (0..s.len())
        .map(|i| if i < a { s[i].clone() } else { Dim::known(1) })
        .collect();
    let stash = Some(c.int("stash_type", 1) as i32);
    Ok(vec![
        Fact::tensor(f.elem, f.shape.clone()),
        Fact::tensor(stash, Some(stats.clone())),
        Fact::tensor(stash, Some(stats)),
    ])
}
