//! MatMul's output rank after MatMulNBits, for a weight `[1, …, 1, K, N]` of rank `r_b` when A's
//! rank `r_a` is unknown or lower: MatMul broadcasts B's unit batch dims, giving
//! `[1] * max(r_b - max(r_a, 2), 0) + A.shape[:-1] + [N]`, where MatMulNBits gives
//! `A.shape[:-1] + [N]`. The shape is computed at run time, with ops of opset 10 (ORT's tool
//! writes a 13-node chain for this; the result is the same):
//!
//! ```text
//! s = Shape(Y); r = Cast(Max(Cast(Shape(s), float), 2), int64)
//! Y' = Reshape(Y, Concat(Slice(ones[r_b], r, [r_b]), s))
//! ```
//! (Max runs in float because int64 Max needs opset 12; ranks are exact in float.)

use onnxq_ir::{Graph, ValueId};

use crate::edit::{add, init, int_attr, tensor};
use crate::error::Result;

/// ONNX data types.
const FLOAT: i32 = 1;
const INT64: i32 = 7;

fn ints(v: &[i64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Appends the chain reshaping `y` (MatMulNBits' output) to MatMul's rank for a weight of rank
/// `r_b`; returns the reshaped value. Nodes are named `<base>_rank_*`.
pub(crate) fn restore_rank(g: &mut Graph, y: ValueId, r_b: usize, base: &str) -> Result<ValueId> {
    let name = |s: &str| format!("{base}_rank_{s}");
    let ones = vec![1i64; r_b];
    let ones = init(
        g,
        &name("ones"),
        tensor(vec![r_b as i64], INT64, ints(&ones)),
    )?;
    let end = init(g, &name("end"), tensor(vec![1], INT64, ints(&[r_b as i64])))?;
    let two = init(
        g,
        &name("two"),
        tensor(vec![1], FLOAT, 2f32.to_le_bytes().to_vec()),
    )?;
    let d = "";
    let s = add(
        g,
        ("Shape", d),
        &name("shape"),
        &[Some(y)],
        &name("shape"),
        vec![],
    )?;
    let r = add(
        g,
        ("Shape", d),
        &name("rank"),
        &[Some(s)],
        &name("rank"),
        vec![],
    )?;
    let rf = add(
        g,
        ("Cast", d),
        &name("rank_f"),
        &[Some(r)],
        &name("rank_f"),
        vec![int_attr("to", i64::from(FLOAT))],
    )?;
    let m = add(
        g,
        ("Max", d),
        &name("max"),
        &[Some(rf), Some(two)],
        &name("max"),
        vec![],
    )?;
    let start = add(
        g,
        ("Cast", d),
        &name("start"),
        &[Some(m)],
        &name("start"),
        vec![int_attr("to", i64::from(INT64))],
    )?;
    let lead = add(
        g,
        ("Slice", d),
        &name("lead"),
        &[Some(ones), Some(start), Some(end)],
        &name("lead"),
        vec![],
    )?;
    let target = add(
        g,
        ("Concat", d),
        &name("target"),
        &[Some(lead), Some(s)],
        &name("target"),
        vec![int_attr("axis", 0)],
    )?;
    add(
        g,
        ("Reshape", d),
        &name("reshape"),
        &[Some(y), Some(target)],
        &name("out"),
        vec![],
    )
}
