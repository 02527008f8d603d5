//! Weight matching: every quantized constant of the quantized model, whatever the pattern
//! (DequantizeLinear per tensor, channel or block; QOperator and dynamic integer ops;
//! MatMulNBits; GatherBlockQuantized), paired with the float model's weight and measured in
//! float64 without integer wrap-around. The float weight is found by name as ONNX Runtime's
//! tool and onnxq name quantized tensors (`W_quantized`, `W_Q4`), else through the node that
//! reads it (same node name, same input).

mod dequant;
mod patterns;

pub(crate) use patterns::constant;

use std::collections::BTreeSet;

use onnxq_ir::proto as pb;
use onnxq_ir::{Graph, Node, NodeId};
use rayon::prelude::*;

use crate::order::{Order, label};
use crate::report::WeightEntry;
use crate::values::Elements;
use dequant::{Layout, Quantized, ZeroPoint};
use patterns::{Scale, affine_op, channel_axis, input_constant, int_attr};

/// The weights matched, and what could not be.
#[derive(Debug, Default)]
pub struct Matched {
    /// One entry per quantized constant, in the float model's graph order.
    pub entries: Vec<WeightEntry>,
    /// Quantized constants that found no float weight, or whose float weight does not fit,
    /// with the reason.
    pub unmatched: Vec<String>,
    /// Of those, the ones whose float weight exists but has another shape (a sign that the two
    /// models are not a float model and its quantization).
    pub misfits: usize,
}

/// One quantized constant found in the quantized model.
struct Found<'q> {
    codes_name: String,
    node: &'q Node,
    quantized: Result<Quantized, String>,
    granularity: &'static str,
    dtype: String,
    /// The float node and input slot it replaced, for matching by node.
    float_node: Vec<String>,
    float_slot: usize,
}

/// Matches every quantized constant of `quant`'s main graph to `float`'s weights.
pub fn match_weights(float: &Graph, quant: &Graph, order: &Order) -> Matched {
    let mut seen = BTreeSet::new();
    let mut found = Vec::new();
    for (id, n) in quant.nodes() {
        if let Some(f) = find(quant, id, n)
            && seen.insert(f.codes_name.clone())
        {
            found.push(f);
        }
    }
    let results: Vec<Result<WeightEntry, (String, bool)>> =
        found.par_iter().map(|f| measure(float, order, f)).collect();
    let mut m = Matched::default();
    for r in results {
        match r {
            Ok(e) => m.entries.push(e),
            Err((why, misfit)) => {
                m.misfits += usize::from(misfit);
                m.unmatched.push(why);
            }
        }
    }
    m.entries
        .sort_by(|a, b| (a.index, &a.name).cmp(&(b.index, &b.name)));
    m
}

/// The quantized constant `n` holds, if any.
fn find<'q>(g: &'q Graph, id: NodeId, n: &'q Node) -> Option<Found<'q>> {
    match (n.domain(), n.op_type()) {
        ("com.microsoft", "MatMulNBits") => Some(nbits(g, n)),
        ("com.microsoft", "GatherBlockQuantized") => Some(gather(g, n)),
        _ => affine(g, id, n),
    }
}

/// A weight of an op in `patterns::AFFINE_OPS` (its codes a constant of an integer type).
fn affine<'q>(g: &'q Graph, id: NodeId, n: &'q Node) -> Option<Found<'q>> {
    let row = affine_op(n)?;
    let (codes_name, codes) = input_constant(g, n, row.codes)?;
    if matches!(codes.data_type(), 1 | 10 | 11 | 16) {
        return None;
    }
    let base = codes_name.strip_suffix("_quantized").unwrap_or(codes_name);
    let scale = match row.scale {
        Scale::Input(s) => input_constant(g, n, s).map(|(_, t)| t),
        Scale::Named => g
            .value_by_name(&format!("{base}_scale"))
            .and_then(|v| constant(g, v)),
    };
    let zp = row.zero_point.and_then(|s| input_constant(g, n, s));
    let dims: Vec<usize> = codes.dims.iter().map(|&d| d.max(0) as usize).collect();
    let block = int_attr(n, "block_size")
        .filter(|&b| b > 0)
        .map(|b| b as usize);
    let quantized = (|| {
        let scale = Elements::of(scale.ok_or("its scale is not a constant")?)?;
        let axis = if scale.len() == 1 {
            None
        } else {
            Some(channel_axis(row, n, dims.len()).ok_or("its axis is out of range")?)
        };
        let zero_point = match zp {
            Some((_, t)) => ZeroPoint::Values(Elements::of(t)?),
            None => ZeroPoint::Constant(0.0),
        };
        Ok(Quantized {
            codes: Elements::of(codes)?,
            packed_bits: None,
            scale,
            zero_point,
            layout: Layout::Affine { dims, axis, block },
        })
    })();
    let granularity = match (&quantized, block) {
        (_, Some(_)) => "per-block",
        (Ok(q), None) if q.scale.len() == 1 => "per-tensor",
        _ => "per-channel",
    };
    // For a DequantizeLinear the float node is the one reading its output, at that input.
    let (float_node, float_slot) = if row.op == "DequantizeLinear" {
        let out = (*n.outputs().first()?)?;
        match g.value(out).uses().first() {
            Some(onnxq_ir::Use::Node { node, slot }) => (vec![label(g, *node)], *slot),
            _ => (Vec::new(), 0),
        }
    } else {
        (stripped(&label(g, id), &["_quant"]), row.float_slot)
    };
    Some(Found {
        codes_name: codes_name.to_owned(),
        node: n,
        granularity,
        dtype: onnxq_ir::DataType(codes.data_type()).to_string(),
        quantized,
        float_node,
        float_slot,
    })
}

/// `name` and `name` less any of `suffixes`.
fn stripped(name: &str, suffixes: &[&str]) -> Vec<String> {
    let mut v = vec![name.to_owned()];
    v.extend(
        suffixes
            .iter()
            .filter_map(|s| name.strip_suffix(s))
            .map(str::to_owned),
    );
    v
}

/// MatMulNBits' packed weight (inputs B, scales, zero points, g_idx; attributes K, N, bits,
/// block_size).
fn nbits<'q>(g: &'q Graph, n: &'q Node) -> Found<'q> {
    let bits = int_attr(n, "bits").unwrap_or(4) as u32;
    let codes = input_constant(g, n, 1);
    let quantized = (|| {
        let (_, b) = codes.ok_or("its weight is not a constant")?;
        let (k, nn) = (int_attr(n, "K"), int_attr(n, "N"));
        let block = int_attr(n, "block_size").ok_or("it has no block_size")?;
        let (Some(k), Some(nn)) = (k, nn) else {
            return Err("it has no K or N attribute".to_owned());
        };
        let (k, nn, block) = (k as usize, nn as usize, block as usize);
        if !matches!(bits, 2 | 4 | 8) || block == 0 {
            return Err(format!("bits {bits} / block_size {block} are not read"));
        }
        let scale = scales(g, n)?;
        let zero_point = match input_constant(g, n, 3) {
            None => ZeroPoint::Constant(f64::from(1u32 << (bits - 1))),
            Some((_, t)) if t.data_type() == 2 => ZeroPoint::Packed {
                bytes: Elements::of(t)?,
                bits,
                row: t.dims.last().map_or(0, |&d| d as usize),
            },
            Some((_, t)) => ZeroPoint::Values(Elements::of(t)?),
        };
        let g_idx = input_constant(g, n, 4)
            .map(|(_, t)| Elements::of(t))
            .transpose()?;
        Ok(Quantized {
            codes: Elements::of(b)?,
            packed_bits: None,
            scale,
            zero_point,
            layout: Layout::NBits {
                k,
                n: nn,
                bits,
                block,
                g_idx,
            },
        })
    })();
    packed_found(n, codes.map(|c| c.0), quantized, format!("uint{bits}"), 1)
}

/// GatherBlockQuantized's table (inputs data, indices, scales, zero points; attributes bits,
/// block_size, quantize_axis).
fn gather<'q>(g: &'q Graph, n: &'q Node) -> Found<'q> {
    let bits = int_attr(n, "bits").unwrap_or(4) as u32;
    let codes = input_constant(g, n, 0);
    let quantized = (|| {
        let (_, t) = codes.ok_or("its table is not a constant")?;
        let packed = (t.data_type() == 2 && bits == 4).then_some(4);
        let mut dims: Vec<usize> = t.dims.iter().map(|&d| d.max(0) as usize).collect();
        if let (Some(_), Some(last)) = (packed, dims.last_mut()) {
            *last *= 2;
        }
        let rank = dims.len() as i64;
        let axis = int_attr(n, "quantize_axis").unwrap_or(rank - 1);
        let axis = if axis < 0 { axis + rank } else { axis };
        let block = int_attr(n, "block_size").unwrap_or(128).max(1) as usize;
        let scale = scales(g, n)?;
        let zero_point = match input_constant(g, n, 3) {
            Some((_, z)) => ZeroPoint::Values(Elements::of(z)?),
            None if t.data_type() == 22 => ZeroPoint::Constant(0.0),
            None => ZeroPoint::Constant(f64::from(1u32 << (bits - 1))),
        };
        Ok(Quantized {
            codes: Elements::of(t)?,
            packed_bits: packed,
            scale,
            zero_point,
            layout: Layout::Affine {
                dims,
                axis: usize::try_from(axis).ok(),
                block: Some(block),
            },
        })
    })();
    let dtype = match codes.map(|c| c.1.data_type()) {
        Some(22) => "int4".to_owned(),
        _ => format!("uint{bits}"),
    };
    packed_found(n, codes.map(|c| c.0), quantized, dtype, 0)
}

/// The scales at input 2 of a weight-only op.
fn scales(g: &Graph, n: &Node) -> Result<Elements, String> {
    let (_, t) = input_constant(g, n, 2).ok_or("its scales are not a constant")?;
    Elements::of(t)
}

fn packed_found<'q>(
    n: &'q Node,
    codes_name: Option<&str>,
    quantized: Result<Quantized, String>,
    dtype: String,
    float_slot: usize,
) -> Found<'q> {
    let node_label = n.name().to_owned();
    Found {
        codes_name: codes_name.unwrap_or(&node_label).to_owned(),
        node: n,
        quantized,
        granularity: "per-block",
        dtype,
        float_node: stripped(&node_label, &["_Q2", "_Q4", "_Q8"]),
        float_slot,
    }
}

/// The float weight of `f` and the entry; `Err((reason, misfit))` when there is none.
fn measure(float: &Graph, order: &Order, f: &Found<'_>) -> Result<WeightEntry, (String, bool)> {
    let here = format!(
        "`{}` ({} `{}`)",
        f.codes_name,
        f.node.op_type(),
        f.node.name()
    );
    let q = f
        .quantized
        .as_ref()
        .map_err(|e| (format!("{here}: {e}"), false))?;
    let (name, w, consumer) = float_weight(float, f).ok_or_else(|| {
        (
            format!("{here}: no float weight of that name or node"),
            false,
        )
    })?;
    let fw = Elements::of(w).map_err(|e| (format!("{here}: float weight `{name}`: {e}"), false))?;
    if !matches!(w.data_type(), 1 | 10 | 11 | 16) || fw.len() != q.len() {
        return Err((
            format!(
                "{here}: float weight `{name}` has {} {} elements, the quantized one {}",
                fw.len(),
                fw.type_name(),
                q.len()
            ),
            true,
        ));
    }
    let s = q.sums(&fw);
    let index = consumer
        .and_then(|c| float.node(c))
        .and_then(|n| n.outputs().iter().flatten().next().copied())
        .and_then(|v| order.index(float.value(v).name()))
        .unwrap_or(0);
    Ok(WeightEntry {
        name,
        quantized: f.codes_name.clone(),
        node: f.node.name().to_owned(),
        op: f.node.op_type().to_owned(),
        consumer: consumer.map(|c| label(float, c)),
        granularity: f.granularity.to_owned(),
        dtype: f.dtype.clone(),
        shape: w.dims.iter().map(|&d| d.max(0) as usize).collect(),
        index,
        sqnr_db: s.sqnr_db(),
        max_abs_err: s.max_abs,
        mean_abs_err: s.mean_abs(),
        mse: if s.n == 0 { 0.0 } else { s.dd / s.n as f64 },
    })
}

/// The float weight `f` came from: its name, tensor, and the float node reading it.
fn float_weight<'f>(
    float: &'f Graph,
    f: &Found<'_>,
) -> Option<(String, &'f pb::TensorProto, Option<NodeId>)> {
    for name in stripped(&f.codes_name, &["_quantized", "_Q2", "_Q4", "_Q8"])
        .into_iter()
        .skip(1)
    {
        if let Some(v) = float.value_by_name(&name)
            && let Some(t) = constant(float, v)
        {
            return Some((name, t, float.reader_nodes(v).first().copied()));
        }
    }
    let (id, n) = float
        .nodes()
        .find(|(id, _)| f.float_node.contains(&label(float, *id)))?;
    let v = (*n.inputs().get(f.float_slot)?)?;
    Some((
        float.value(v).name().to_owned(),
        constant(float, v)?,
        Some(id),
    ))
}
