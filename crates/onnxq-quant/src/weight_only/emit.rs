//! The apply stage of weight-only quantization: each planned MatMul becomes a
//! `com.microsoft.MatMulNBits` reading the packed weight, in ONNX Runtime's layout and names
//! (`<B>_Q{bits}`, `<B>_scales`, `<B>_zero_points`, node `<MatMul>_Q{bits}`). A weight read by
//! several MatMuls is stored once.

use std::collections::BTreeMap;

use onnxq_ir::{Graph, Node, ValueId};

use super::options::WeightOnlyOptions;
use super::plan::MatMulPlan;
use crate::edit::{init, int_attr, tensor};
use crate::error::{Error, Result};
use crate::numerics::blocks::{NBits, ScaleType, pack_zero_points};
use crate::weights::Source;

/// The quantized tensors already added to the graph, by weight.
#[derive(Default)]
pub(crate) struct Stored {
    tensors: BTreeMap<Source, [Option<ValueId>; 3]>,
}

/// ONNX data type of uint8.
const UINT8: i32 = 2;

fn scale_type(dtype: i32) -> ScaleType {
    match dtype {
        super::plan::FLOAT16 => ScaleType::F16,
        super::plan::BFLOAT16 => ScaleType::Bf16,
        _ => ScaleType::F32,
    }
}

/// The packed weight, scales and zero points of `p`'s weight, added on first use.
fn stored(
    g: &mut Graph,
    store: &mut Stored,
    p: &MatMulPlan,
    q: &NBits,
) -> Result<[Option<ValueId>; 3]> {
    if let Some(v) = store.tensors.get(&p.weight) {
        return Ok(*v);
    }
    let s = q.shape;
    let (n, kb) = (s.n as i64, s.k_blocks() as i64);
    let name = &p.weight_name;
    let packed = tensor(vec![n, kb, s.blob() as i64], UINT8, q.packed.clone());
    let b = init(g, &format!("{name}_Q{}", s.bits), packed)?;
    let scales = tensor(
        vec![n, kb],
        p.dtype,
        scale_type(p.dtype).to_bytes(&q.scales),
    );
    let scales = init(g, &format!("{name}_scales"), scales)?;
    let zp = match &q.zero_points {
        Some(z) => {
            let packed = pack_zero_points(z, s.n, s.k_blocks(), s.bits);
            let row = (packed.len() / s.n) as i64;
            Some(init(
                g,
                &format!("{name}_zero_points"),
                tensor(vec![n, row], UINT8, packed),
            )?)
        }
        None => None,
    };
    let v = [Some(b), Some(scales), zp];
    store.tensors.insert(p.weight, v);
    Ok(v)
}

/// Replaces `p`'s MatMul by a MatMulNBits reading `q`; returns the pattern for the report.
pub(crate) fn matmul_nbits(
    g: &mut Graph,
    store: &mut Stored,
    p: &MatMulPlan,
    q: &NBits,
    opts: &WeightOnlyOptions,
) -> Result<String> {
    let [b, scales, zp] = stored(g, store, p, q)?;
    let old = g
        .node(p.node)
        .ok_or_else(|| Error::Internal("planned MatMul vanished".into()))?;
    let out = old
        .outputs()
        .first()
        .copied()
        .flatten()
        .ok_or_else(|| Error::Internal("MatMul without output".into()))?;
    let bits = q.shape.bits;
    let name = (!old.name().is_empty()).then(|| format!("{}_Q{bits}", old.name()));
    let mut node = Node::new("MatMulNBits", "com.microsoft", name);
    // Sorted by name, as onnx.helper.make_node writes ORT's.
    let mut attrs = vec![int_attr("K", p.k as i64), int_attr("N", p.n as i64)];
    if opts.accuracy_level > 0 {
        attrs.push(int_attr("accuracy_level", i64::from(opts.accuracy_level)));
    }
    attrs.push(int_attr("bits", i64::from(bits)));
    attrs.push(int_attr("block_size", opts.block_size as i64));
    node.attributes = attrs.into_iter().map(onnxq_ir::Attribute::new).collect();
    let mut inputs = vec![Some(p.a), b, scales];
    if zp.is_some() {
        inputs.push(zp);
    }
    let tmp = g.fresh_name(&format!("{}_nbits", g.value(out).name()));
    let (_, outs) = g
        .add_node(node, &inputs, &[Some(&tmp)])
        .map_err(Error::edit)?;
    let new = outs[0].ok_or_else(|| Error::Internal("MatMulNBits without output".into()))?;
    g.substitute(out, new).map_err(Error::edit)?;
    g.remove_node(p.node).map_err(Error::edit)?;
    Ok(format!("MatMulNBits {bits}-bit"))
}
