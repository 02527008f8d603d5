//! The apply stage of weight-only quantization in the QDQ format (ort-quantization.md §7.4): a
//! constant MatMul weight becomes a blocked `DequantizeLinear(axis=0, block_size)` reading
//! `<B>_DQ_Q{bits}` (the `[K, N]` codes: INT4/INT8 when symmetric, UINT4/UINT8 with
//! `<B>_DQ_zero_points` when not) and `<B>_DQ_scales` (`[k_blocks, N]`, the weight's type), node
//! `<MatMul>_DQ_Q{bits}` writing `<B>_DQ_Q{bits}_output`; the MatMul reads it and is renamed
//! `<MatMul>_matmul_Q{bits}` — ORT's names. A Gather table (no QDQ form in ORT's tool) becomes a
//! `DequantizeLinear` along its quantize axis with GatherBlockQuantized's arithmetic, read by the
//! Gather (`<Gather>_gather_Q4`). A weight read by several nodes is dequantized once per graph
//! (ORT writes one DequantizeLinear per reader, all defining the same name).

use std::collections::BTreeMap;

use onnxq_ir::{Graph, ValueId};

use super::options::WeightOnlyOptions;
use super::plan::{BFLOAT16, FLOAT16, Kind, Plan};
use super::quantize::Quantized;
use crate::edit::{init, int_attr, tensor};
use crate::error::{Error, Result};
use crate::numerics::blocks::ScaleType;
use crate::weights::Source;

/// ONNX data types of the codes.
const INT8: i32 = 3;
const UINT8: i32 = 2;
const UINT4: i32 = 21;
const INT4: i32 = 22;

/// The dequantized weights added so far in this graph, by weight and kind.
#[derive(Default)]
pub(crate) struct Dequantized(BTreeMap<(Source, Kind), ValueId>);

fn scale_type(dtype: i32) -> ScaleType {
    match dtype {
        FLOAT16 => ScaleType::F16,
        BFLOAT16 => ScaleType::Bf16,
        _ => ScaleType::F32,
    }
}

fn code_type(bits: u32, symmetric: bool) -> i32 {
    match (bits, symmetric) {
        (4, true) => INT4,
        (4, false) => UINT4,
        (_, true) => INT8,
        (_, false) => UINT8,
    }
}

/// The codes, scales and zero points of one weight, as the DequantizeLinear reads them.
struct Blocked<'q> {
    dims: Vec<i64>,
    param_dims: Vec<i64>,
    bits: u32,
    data: &'q [u8],
    scales: &'q [f32],
    zero_points: Option<&'q [u8]>,
    axis: i64,
}

/// Rewrites `p`'s node to read a blocked DequantizeLinear of `q`; returns the report pattern.
pub(crate) fn apply(
    g: &mut Graph,
    done: &mut Dequantized,
    p: &Plan,
    q: &Quantized,
    opts: &WeightOnlyOptions,
) -> Result<String> {
    let (blocked, op) = match (q, p.kind) {
        (Quantized::Qdq(q), Kind::MatMul { k, n }) => {
            let s = q.shape;
            let b = Blocked {
                dims: vec![k as i64, n as i64],
                param_dims: vec![s.k_blocks() as i64, n as i64],
                bits: s.bits,
                data: &q.data,
                scales: &q.scales,
                zero_points: q.zero_points.as_deref(),
                axis: 0,
            };
            (b, "matmul")
        }
        (Quantized::Gather(q), Kind::Gather { axis, shape }) => {
            let dims: Vec<i64> = p.dims.iter().map(|&d| d as i64).collect();
            let mut param_dims = dims.clone();
            param_dims[axis] = (q.scales.len() / (shape.m * shape.n)) as i64;
            let b = Blocked {
                dims,
                param_dims,
                bits: 4,
                data: &q.data,
                scales: &q.scales,
                zero_points: q.zero_points.as_deref(),
                axis: axis as i64,
            };
            (b, "gather")
        }
        _ => return Err(Error::Internal("quantized weight of another kind".into())),
    };
    let bits = blocked.bits;
    let node_name = g
        .node(p.node)
        .ok_or_else(|| Error::Internal("planned node vanished".into()))?
        .name()
        .to_owned();
    let dq_out = match done.0.get(&p.key()) {
        Some(&v) => v,
        None => {
            let v = dequantize(g, p, &blocked, &node_name, opts)?;
            done.0.insert(p.key(), v);
            v
        }
    };
    // The node keeps its output; ORT renames it after the pattern.
    let slot = if op == "matmul" { 1 } else { 0 };
    g.set_input(p.node, slot, Some(dq_out))
        .map_err(Error::edit)?;
    if !node_name.is_empty()
        && let Some(n) = g.node_mut(p.node)
    {
        n.proto.name = Some(format!("{node_name}_{op}_Q{bits}"));
    }
    let what = if op == "matmul" { "MatMul" } else { "Gather" };
    Ok(format!("DequantizeLinear {bits}-bit + {what}"))
}

/// Adds the quantized tensors and the DequantizeLinear node; returns its output.
fn dequantize(
    g: &mut Graph,
    p: &Plan,
    b: &Blocked<'_>,
    node_name: &str,
    opts: &WeightOnlyOptions,
) -> Result<ValueId> {
    let name = &p.weight_name;
    // Signed codes without zero points (symmetric), unsigned codes with them.
    let codes = code_type(b.bits, b.zero_points.is_none());
    let data_name = g.fresh_name(&format!("{name}_DQ_Q{}", b.bits));
    let data = g
        .add_initializer(&data_name, tensor(b.dims.clone(), codes, b.data.to_vec()))
        .map_err(Error::edit)?;
    let scales = tensor(
        b.param_dims.clone(),
        p.dtype,
        scale_type(p.dtype).to_bytes(b.scales),
    );
    let scales = init(g, &format!("{name}_DQ_scales"), scales)?;
    let mut inputs = vec![Some(data), Some(scales)];
    if let Some(z) = b.zero_points {
        // Zero points share the codes' (unsigned) type.
        let zp = tensor(b.param_dims.clone(), codes, z.to_vec());
        inputs.push(Some(init(g, &format!("{name}_DQ_zero_points"), zp)?));
    }
    let name = (!node_name.is_empty()).then(|| format!("{node_name}_DQ_Q{}", b.bits));
    let mut node = onnxq_ir::Node::new("DequantizeLinear", "", name);
    node.attributes = [
        int_attr("axis", b.axis),
        int_attr("block_size", opts.block_size as i64),
    ]
    .into_iter()
    .map(onnxq_ir::Attribute::new)
    .collect();
    let out = g.fresh_name(&format!("{data_name}_output"));
    let (_, outs) = g
        .add_node(node, &inputs, &[Some(&out)])
        .map_err(Error::edit)?;
    outs[0].ok_or_else(|| Error::Internal("DequantizeLinear without output".into()))
}
