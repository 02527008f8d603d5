//! Rules for the com.microsoft ops onnxq reads or writes (ContribOperators.md): the weight-only
//! ops, the fused transformer ops and the QLinear family.

use super::{Ctx, Outcome, Rule, axis};
use crate::dim::Dim;
use crate::fact::{Fact, elem};

/// Ops whose first output has the first input's type and shape.
pub(crate) const LIKE_INPUT: &[&str] = &[
    "FastGelu",
    "BiasGelu",
    "Gelu",
    "QuickGelu",
    "BiasAdd",
    "RotaryEmbedding",
    "QLinearSigmoid",
    "QLinearLeakyRelu",
    "QLinearSoftmax",
    "QLinearGlobalAveragePool",
];

pub(crate) fn like_input(c: &Ctx<'_>) -> Outcome {
    let f = c.input(0)?;
    let s = f.shape.clone();
    let shape = match (c.node.op_type(), s) {
        // Global pooling keeps N and C.
        ("QLinearGlobalAveragePool", Some(d)) => Some(
            (0..d.len())
                .map(|i| if i < 2 { d[i].clone() } else { Dim::known(1) })
                .collect(),
        ),
        (_, s) => s,
    };
    Ok(vec![Fact::tensor(f.elem, shape)])
}

/// QLinearAdd, QLinearMul, ...: `(A, A_scale, A_zp, B, B_scale, B_zp, C_scale, C_zp)`, A and B
/// broadcast, the output in C's zero point type (A's when it has none).
pub(crate) const QLINEAR_BINARY: &[&str] = &["QLinearAdd", "QLinearMul"];

pub(crate) fn qlinear_binary(c: &Ctx<'_>) -> Outcome {
    let shape = super::basic::broadcast(&[c.shape(0)?, c.shape(3)?])?;
    let e = c
        .inputs
        .get(7)
        .copied()
        .flatten()
        .and_then(|z| z.elem)
        .or(c.input(0)?.elem);
    Ok(vec![Fact::tensor(e, Some(shape))])
}

/// MatMulNBits: A `[..., K]` → `[..., N]` in A's type.
pub(crate) fn matmul_nbits(c: &Ctx<'_>) -> Outcome {
    let a = c.shape(0)?;
    let n = c.int("N", 0);
    if a.is_empty() || n <= 0 {
        return Err("MatMulNBits without N or of a scalar".into());
    }
    let mut out = a.to_vec();
    *out.last_mut()
        .unwrap_or_else(|| unreachable!("checked non-empty")) = Dim::known(n);
    Ok(vec![Fact::tensor(c.input(0)?.elem, Some(out))])
}

/// GatherBlockQuantized: Gather over the unpacked table (a uint8 table packs 8/bits codes per
/// byte along its last axis; int4 tables count elements), in the scales' type.
pub(crate) fn gather_block_quantized(c: &Ctx<'_>) -> Outcome {
    let data = c.shape(0)?;
    let idx = c.shape(1)?;
    let bits = c.int("bits", 4);
    let mut table = data.to_vec();
    if c.input(0)?.elem == Some(2) && bits < 8 {
        let last = table.len().checked_sub(1).ok_or("a scalar table")?;
        table[last] = table[last]
            .mul(&Dim::known(8 / bits))
            .ok_or("dimension overflow")?;
    }
    let a = axis(c.int("gather_axis", 0), table.len())?;
    let out = table[..a]
        .iter()
        .chain(idx)
        .chain(&table[a + 1..])
        .cloned()
        .collect();
    Ok(vec![Fact::tensor(c.input(2)?.elem, Some(out))])
}

/// SkipLayerNormalization: the output and the optional `input_skip_bias_sum` have the input's
/// shape; mean and inverse std deviation are float `[..., 1]`.
pub(crate) fn skip_layer_norm(c: &Ctx<'_>) -> Outcome {
    let f = c.input(0)?;
    let s = c.shape(0)?;
    let mut stats = s.to_vec();
    if let Some(l) = stats.last_mut() {
        *l = Dim::known(1);
    }
    let same = Fact::tensor(f.elem, Some(s.to_vec()));
    let stat = Fact::tensor(Some(elem::FLOAT), Some(stats));
    Ok(vec![same.clone(), stat.clone(), stat, same])
}

/// Attention, QAttention (output `[B, S, v_hidden]` from the weights' columns / 3 or
/// `qkv_hidden_sizes`) and MultiHeadAttention (the query's shape, or the value's hidden size).
pub(crate) fn attention(c: &Ctx<'_>) -> Outcome {
    let x = c.shape(0)?;
    if x.len() != 3 {
        return Err(format!("input rank {}", x.len()));
    }
    let e = if c.node.op_type() == "QAttention" {
        c.input(3)?.elem
    } else {
        c.input(0)?.elem
    };
    let hidden = if c.node.op_type() == "MultiHeadAttention" {
        match c
            .inputs
            .get(2)
            .copied()
            .flatten()
            .and_then(|v| v.shape.clone())
        {
            Some(v) if v.len() == 3 => v[2].clone(),
            _ => x[2].clone(),
        }
    } else if let Some(q) = c.ints("qkv_hidden_sizes") {
        Dim::known(*q.get(2).ok_or("qkv_hidden_sizes needs three values")?)
    } else {
        let w = c.shape(1)?;
        let cols = w.last().ok_or("a scalar weight")?;
        cols.floor_div(&Dim::known(3)).ok_or("a zero weight")?
    };
    let out = vec![x[0].clone(), x[1].clone(), hidden];
    let present_count = c.node.outputs().len().saturating_sub(1);
    let mut outs = vec![Fact::tensor(e, Some(out))];
    // `present` key/value caches: their shapes depend on past inputs, left to the declared types.
    outs.extend((0..present_count).map(|_| Fact::tensor(e, None)));
    Ok(outs)
}

/// DynamicQuantizeMatMul, MatMulIntegerToFloat: MatMul's shape, float output.
pub(crate) fn matmul_to_float(c: &Ctx<'_>) -> Outcome {
    let shape = super::basic::matmul_shape(c.shape(0)?, c.shape(1)?)?;
    Ok(vec![Fact::tensor(Some(elem::FLOAT), Some(shape))])
}

/// EmbedLayerNormalization: `[B, S, hidden]` (hidden from the word embedding table), the int32
/// mask index `[B]`, and the optional embedding sum `[B, S, hidden]`.
pub(crate) fn embed_layer_norm(c: &Ctx<'_>) -> Outcome {
    let ids = c.shape(0)?;
    let table = c.shape(2)?;
    if ids.len() != 2 || table.len() != 2 {
        return Err(format!(
            "input ids rank {} and table rank {}",
            ids.len(),
            table.len()
        ));
    }
    let e = c.input(2)?.elem;
    let out = vec![ids[0].clone(), ids[1].clone(), table[1].clone()];
    Ok(vec![
        Fact::tensor(e, Some(out.clone())),
        Fact::tensor(Some(elem::INT32), Some(vec![ids[0].clone()])),
        Fact::tensor(e, Some(out)),
    ])
}

/// GroupQueryAttention: the output `[B, S, num_heads · head_size]`, head_size from the query's
/// width (packed QKV when there is no key input); the present key/value caches' length depends
/// on the past and is left to the declared types.
pub(crate) fn group_query_attention(c: &Ctx<'_>) -> Outcome {
    let q = c.shape(0)?;
    if q.len() != 3 {
        return Err(format!("query rank {}", q.len()));
    }
    let (heads, kv) = (c.int("num_heads", 0), c.int("kv_num_heads", 0));
    let packed = c.inputs.get(1).copied().flatten().is_none();
    let parts = if packed { heads + 2 * kv } else { heads };
    if parts <= 0 {
        return Err("no num_heads".into());
    }
    let head = q[2]
        .floor_div(&Dim::known(parts))
        .ok_or("dimension overflow")?;
    let width = head.mul(&Dim::known(heads)).ok_or("dimension overflow")?;
    let e = c.input(0)?.elem;
    let out = Fact::tensor(e, Some(vec![q[0].clone(), q[1].clone(), width]));
    Ok(vec![out, Fact::tensor(e, None), Fact::tensor(e, None)])
}

/// A quantized op as its float op: `float_rule` run on the inputs at `slots` (the float op's
/// inputs, in its order), the output in the element type of input `zp` when it is given (else
/// as `float_rule` says). Problems the float rule finds are the quantized node's.
fn as_float_op(c: &Ctx<'_>, slots: &[usize], float_rule: Rule, zp: usize) -> Outcome {
    let inputs = (slots.iter())
        .map(|&i| c.inputs.get(i).copied().flatten())
        .collect();
    let inner = Ctx {
        node: c.node,
        inputs,
        opset: c.opset,
        invalid: Default::default(),
    };
    let out = float_rule(&inner);
    if let Some(why) = inner.invalid.take() {
        c.invalid(why);
    }
    let e = c.inputs.get(zp).copied().flatten().and_then(|f| f.elem);
    out.map(|mut fs| {
        for f in fs.iter_mut().filter(|_| e.is_some()) {
            f.elem = e;
        }
        fs
    })
}

/// QLinearConv (ai.onnx): `(x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, B)`.
pub(crate) fn qlinear_conv(c: &Ctx<'_>) -> Outcome {
    as_float_op(c, &[0, 3], super::nn::conv, 7)
}

/// QLinearAveragePool: `(X, x_scale, x_zp, y_scale, y_zp)`.
pub(crate) fn qlinear_average_pool(c: &Ctx<'_>) -> Outcome {
    as_float_op(c, &[0], super::nn::pool, 4)
}

/// QGemm: `(A, a_scale, a_zp, B, b_scale, b_zp, C, y_scale, y_zp)`; float output without
/// `y_scale`.
pub(crate) fn qgemm(c: &Ctx<'_>) -> Outcome {
    let quantized = c.inputs.get(7).copied().flatten().is_some();
    let mut out = as_float_op(c, &[0, 3, 6], super::basic::gemm, 8)?;
    if !quantized {
        let float = c.inputs.get(1).copied().flatten().and_then(|f| f.elem);
        out.iter_mut().for_each(|f| f.elem = float);
    }
    Ok(out)
}

/// QLinearConcat: `(Y_scale, Y_zp, X1, X1_scale, X1_zp, X2, ...)`, in Y's zero point type.
pub(crate) fn qlinear_concat(c: &Ctx<'_>) -> Outcome {
    let slots: Vec<usize> = (2..c.inputs.len()).step_by(3).collect();
    as_float_op(c, &slots, super::shape::concat, 1)
}
