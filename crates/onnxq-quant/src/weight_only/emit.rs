//! The apply stage of weight-only quantization, in ONNX Runtime's layouts and names: a MatMul
//! becomes `com.microsoft.MatMulNBits` (`<B>_Q{bits}`, `<B>_scales`, `<B>_zero_points`, node
//! `<MatMul>_Q{bits}`), a Gather `com.microsoft.GatherBlockQuantized` (`<E>_Q4` INT4/UINT4,
//! `<E>_scales`, `<E>_zero_points`, node `<Gather>_Q4`). A weight read by several nodes the same
//! way is stored once.

use std::collections::BTreeMap;

use onnxq_ir::{Graph, Node, NodeId, ValueId};

use super::options::WeightOnlyOptions;
use super::plan::{BFLOAT16, FLOAT16, Kind, Plan};
use super::quantize::Quantized;
use crate::edit::{init, int_attr, tensor};
use crate::error::{Error, Result};
use crate::numerics::blocks::{NBits, ScaleType, ZeroPoints, pack_zero_points};
use crate::numerics::gather_blocks::GatherBlocks;
use crate::weights::Source;

/// What the apply stage has done so far: the quantized tensors added, by weight and kind, and
/// the outputs of replaced nodes with the values that took them over (a later plan may read one:
/// a MatMul after a quantized Gather).
#[derive(Default)]
pub(crate) struct Stored {
    tensors: BTreeMap<(Source, Kind), Vec<Option<ValueId>>>,
    replaced: BTreeMap<ValueId, ValueId>,
}

impl Stored {
    /// The value now standing for `v`.
    fn current(&self, v: ValueId) -> ValueId {
        self.replaced.get(&v).copied().unwrap_or(v)
    }
}

/// ONNX data types written here.
const UINT8: i32 = 2;
const UINT4: i32 = 21;
const INT4: i32 = 22;

fn scale_type(dtype: i32) -> ScaleType {
    match dtype {
        FLOAT16 => ScaleType::F16,
        BFLOAT16 => ScaleType::Bf16,
        _ => ScaleType::F32,
    }
}

/// Replaces `p`'s node by the quantized op reading `q`; returns the pattern for the report.
pub(crate) fn apply(
    g: &mut Graph,
    store: &mut Stored,
    p: &Plan,
    q: &Quantized,
    opts: &WeightOnlyOptions,
) -> Result<String> {
    match (q, p.kind) {
        (Quantized::NBits(q), Kind::MatMul { k, n }) => {
            let t = match store.tensors.get(&p.key()) {
                Some(t) => t.clone(),
                None => nbits_tensors(g, p, q)?,
            };
            store.tensors.insert(p.key(), t.clone());
            let bits = q.shape.bits;
            let mut attrs = vec![int_attr("K", k as i64), int_attr("N", n as i64)];
            if opts.accuracy_level > 0 {
                attrs.push(int_attr("accuracy_level", i64::from(opts.accuracy_level)));
            }
            attrs.push(int_attr("bits", i64::from(bits)));
            attrs.push(int_attr("block_size", opts.block_size as i64));
            let mut inputs = vec![Some(store.current(p.other))];
            inputs.extend(t);
            replace(
                g,
                store,
                p.node,
                "MatMulNBits",
                &format!("_Q{bits}"),
                &inputs,
                attrs,
            )?;
            Ok(format!("MatMulNBits {bits}-bit"))
        }
        (Quantized::Gather(q), Kind::Gather { axis, .. }) => {
            let t = match store.tensors.get(&p.key()) {
                Some(t) => t.clone(),
                None => gather_tensors(g, p, q, opts.symmetric)?,
            };
            store.tensors.insert(p.key(), t.clone());
            let node = g
                .node(p.node)
                .ok_or_else(|| Error::Internal("planned node vanished".into()))?;
            let rank = p.dims.len() as i64;
            let gather_axis = crate::edit::int_attr_of(node, "axis", 0).rem_euclid(rank.max(1));
            // Sorted by name, as onnx.helper.make_node writes ORT's.
            let attrs = vec![
                int_attr("block_size", opts.block_size as i64),
                int_attr("gather_axis", gather_axis),
                int_attr("quantize_axis", axis as i64),
            ];
            let mut inputs = vec![t[0], Some(store.current(p.other)), t[1]];
            if t[2].is_some() {
                inputs.push(t[2]);
            }
            replace(
                g,
                store,
                p.node,
                "GatherBlockQuantized",
                "_Q4",
                &inputs,
                attrs,
            )?;
            Ok("GatherBlockQuantized 4-bit".into())
        }
        _ => Err(Error::Internal("quantized weight of another kind".into())),
    }
}

/// MatMulNBits' packed weight `[N, k_blocks, blob]`, scales `[N, k_blocks]` and packed zero points.
fn nbits_tensors(g: &mut Graph, p: &Plan, q: &NBits) -> Result<Vec<Option<ValueId>>> {
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
    let mut t = vec![Some(b), Some(scales)];
    let zp = match &q.zero_points {
        ZeroPoints::Default => None,
        ZeroPoints::Codes(z) => {
            let packed = pack_zero_points(z, s.n, s.k_blocks(), s.bits);
            let row = (packed.len() / s.n) as i64;
            Some(tensor(vec![n, row], UINT8, packed))
        }
        // Unpacked, in the scales' type and shape.
        ZeroPoints::Float(z) => Some(tensor(
            vec![n, kb],
            p.dtype,
            scale_type(p.dtype).to_bytes(z),
        )),
    };
    if let Some(zp) = zp {
        t.push(Some(init(g, &format!("{name}_zero_points"), zp)?));
    }
    Ok(t)
}

/// GatherBlockQuantized's 4-bit table (the table's dims), scales and zero points (the table's
/// dims with the quantize axis cut to its block count).
fn gather_tensors(
    g: &mut Graph,
    p: &Plan,
    q: &GatherBlocks,
    symmetric: bool,
) -> Result<Vec<Option<ValueId>>> {
    let Kind::Gather { axis, shape } = p.kind else {
        return Err(Error::Internal("not a Gather plan".into()));
    };
    let dims: Vec<i64> = p.dims.iter().map(|&d| d as i64).collect();
    let mut param_dims = dims.clone();
    param_dims[axis] = (q.scales.len() / (shape.m * shape.n)) as i64;
    let name = &p.weight_name;
    let code_type = if symmetric { INT4 } else { UINT4 };
    let data = init(
        g,
        &format!("{name}_Q4"),
        tensor(dims, code_type, q.data.clone()),
    )?;
    let scales = tensor(
        param_dims.clone(),
        p.dtype,
        scale_type(p.dtype).to_bytes(&q.scales),
    );
    let scales = init(g, &format!("{name}_scales"), scales)?;
    let zp = match &q.zero_points {
        Some(z) => Some(init(
            g,
            &format!("{name}_zero_points"),
            tensor(param_dims, UINT4, z.clone()),
        )?),
        None => None,
    };
    Ok(vec![Some(data), Some(scales), zp])
}

/// Replaces node `id` by a `com.microsoft` node `op` named `<name><suffix>` (unnamed for an
/// unnamed original, as ORT does) reading `inputs` and writing the original's output.
fn replace(
    g: &mut Graph,
    store: &mut Stored,
    id: NodeId,
    op: &str,
    suffix: &str,
    inputs: &[Option<ValueId>],
    attrs: Vec<onnxq_ir::proto::AttributeProto>,
) -> Result<()> {
    let old = g
        .node(id)
        .ok_or_else(|| Error::Internal("planned node vanished".into()))?;
    let out = old
        .outputs()
        .first()
        .copied()
        .flatten()
        .ok_or_else(|| Error::Internal(format!("`{}` has no output", old.name())))?;
    let name = (!old.name().is_empty()).then(|| format!("{}{suffix}", old.name()));
    let mut node = Node::new(op, "com.microsoft", name);
    node.attributes = attrs.into_iter().map(onnxq_ir::Attribute::new).collect();
    let tmp = g.fresh_name(&format!("{}_{op}", g.value(out).name()));
    let (_, outs) = g
        .add_node(node, inputs, &[Some(&tmp)])
        .map_err(Error::edit)?;
    let new = outs[0].ok_or_else(|| Error::Internal(format!("{op} without output")))?;
    g.substitute(out, new).map_err(Error::edit)?;
    store.replaced.insert(out, new);
    g.remove_node(id).map_err(Error::edit)?;
    Ok(())
}
