//! The apply stage of weight-only quantization in the QDQ format (ort-quantization.md §7.4): a
//! constant MatMul weight becomes a blocked `DequantizeLinear(axis=0, block_size)` reading
//! `<B>_DQ_Q{bits}` (the `[K, N]` codes: INT4/INT8 when symmetric, UINT4/UINT8 with
//! `<B>_DQ_zero_points` when not) and `<B>_DQ_scales` (`[k_blocks, N]`, the weight's type), node
//! `<MatMul>_DQ_Q{bits}` writing `<B>_DQ_Q{bits}_output`; the MatMul reads it and is renamed
//! `<MatMul>_matmul_Q{bits}` — ORT's names. A Gather table (no QDQ form in ORT's tool) becomes a
//! `DequantizeLinear` along its quantize axis with GatherBlockQuantized's arithmetic, read by the
//! Gather (`<Gather>_gather_Q{bits}`). A weight read by several nodes is dequantized once per
//! graph (ORT writes one DequantizeLinear per reader, all defining the same name). An N-D weight
//! `[1, …, 1, K, N]` whose MatMul needs its rank back keeps its dims (blocked along axis r-2), so
//! the MatMul's output shape is the float model's without a reshape.

use std::collections::BTreeMap;

use onnxq_ir::{Graph, ValueId};

use super::encode::Encoded;
use super::plan::{Key, Kind, Plan};
use crate::edit::{init, int_attr};
use crate::error::{Error, Result};

/// ONNX data type of 8-bit unsigned codes.
const UINT8: i32 = 2;

/// The dequantized weights added so far in this graph, by weight, kind and settings.
#[derive(Default)]
pub(crate) struct Dequantized(BTreeMap<Key, ValueId>);

/// Rewrites `p`'s node to read a blocked DequantizeLinear of `e`; returns the report pattern.
pub(crate) fn apply(
    g: &mut Graph,
    done: &mut Dequantized,
    p: &Plan,
    e: &Encoded,
) -> Result<String> {
    let node_name = g
        .node(p.node)
        .ok_or_else(|| Error::Internal("planned node vanished".into()))?
        .name()
        .to_owned();
    let dq_out = match done.0.get(&p.key()) {
        Some(&v) => v,
        None => {
            let v = dequantize(g, p, e, &node_name)?;
            done.0.insert(p.key(), v);
            v
        }
    };
    let (slot, op, what) = match p.kind {
        Kind::MatMul { .. } => (1, "matmul", "MatMul"),
        Kind::Gather { .. } => (0, "gather", "Gather"),
    };
    // The node keeps its output; ORT renames it after the pattern.
    g.set_input(p.node, slot, Some(dq_out))
        .map_err(Error::edit)?;
    if !node_name.is_empty()
        && let Some(n) = g.node_mut(p.node)
    {
        n.proto.name = Some(format!("{node_name}_{op}_Q{}", e.bits));
    }
    Ok(format!("DequantizeLinear {}-bit + {what}", e.bits))
}

/// Adds the quantized tensors (`<W>_DQ_Q{bits}`, `<W>_DQ_scales`, `<W>_DQ_zero_points`) and the
/// DequantizeLinear node (`<node>_DQ_Q{bits}`, unnamed for an unnamed node as ORT does); returns
/// its output, `<W>_DQ_Q{bits}_output`.
fn dequantize(g: &mut Graph, p: &Plan, e: &Encoded, node_name: &str) -> Result<ValueId> {
    let (axis, nd) = match p.kind {
        Kind::MatMul { .. } => match p.restore_rank {
            Some(r) => (r as i64 - 2, Some(r)),
            None => (0, None),
        },
        Kind::Gather { axis, .. } => (axis as i64, None),
    };
    let mut inputs = Vec::new();
    let mut data_name = String::new();
    for (i, b) in e.tensors.iter().enumerate() {
        let mut dims = b.dims.clone();
        if let Some(r) = nd {
            // [K, N] and [k_blocks, N] as [1, …, 1, K, N]: the same bytes.
            let mut full = vec![1i64; r - 2];
            full.extend(&dims);
            dims = full;
        }
        let t = onnxq_ir::proto::TensorProto {
            dims,
            data_type: Some(b.dtype),
            raw_data: Some(b.bytes.clone()),
            ..Default::default()
        };
        let name = format!("{}_DQ{}", p.weight_name, b.suffix);
        let v = init(g, &name, t)?;
        if i == 0 {
            data_name = g.value(v).name().to_owned();
        }
        inputs.push(Some(v));
    }
    let symmetric_u8 = e.tensors.len() == 2 && e.tensors[0].dtype == UINT8;
    if symmetric_u8 {
        // GatherBlockQuantized's symmetric 8-bit table is UINT8 offset by its default zero
        // point, 128, which DequantizeLinear (default 0) needs written out.
        let s = &e.tensors[1];
        let count: i64 = s.dims.iter().product();
        let zp = onnxq_ir::proto::TensorProto {
            dims: s.dims.clone(),
            data_type: Some(UINT8),
            raw_data: Some(vec![128u8; count as usize].into()),
            ..Default::default()
        };
        inputs.push(Some(init(
            g,
            &format!("{}_DQ_zero_points", p.weight_name),
            zp,
        )?));
    }
    let name = (!node_name.is_empty()).then(|| format!("{node_name}_DQ_Q{}", e.bits));
    let mut node = onnxq_ir::Node::new("DequantizeLinear", "", name);
    node.attributes = [
        int_attr("axis", axis),
        int_attr("block_size", p.settings.block_size as i64),
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
