//! The dynamic pass's middle stage: every distinct planned weight quantized once, in parallel, in
//! the layout its op stores it in (as is, transposed for Gemm `transB`, LSTM's `[D, K, 4H]`).
//! Reads the float weights in place and releases their pages once read.

use std::collections::BTreeMap;

use onnxq_ir::{Graph, Sources, ValueId};
use rayon::prelude::*;

use crate::dynamic::plan::{Layout, WeightKey, WeightPlan};
use crate::error::{Error, Result};
use crate::numerics::{F32Data, QuantizedTensor, nonfinite_count, quantize_weight};
use crate::weights::{dims, f32_data, resolve};

/// The weights quantized, and those that hold NaN or infinite values (with how many), which are
/// not: their nodes stay float.
pub(crate) struct Quantized {
    pub(crate) done: BTreeMap<WeightKey, QuantizedTensor>,
    pub(crate) nonfinite: BTreeMap<WeightKey, usize>,
}

/// Quantizes each distinct weight of `weights` (by [`WeightKey`]) once, in parallel.
pub(crate) fn quantize_weights<'p>(
    g: &Graph,
    outer: &[&Graph],
    weights: impl Iterator<Item = &'p WeightPlan>,
    sources: &Sources,
) -> Result<Quantized> {
    let keys: BTreeMap<WeightKey, ValueId> = weights.map(|w| (w.key.clone(), w.value)).collect();
    let results: Vec<(WeightKey, std::result::Result<QuantizedTensor, usize>)> = keys
        .into_par_iter()
        .map(|(key, v)| {
            let c = resolve(g, outer, v)
                .ok_or_else(|| Error::Internal("planned weight is not constant".into()))?;
            let data = f32_data(c.tensor)
                .ok_or_else(|| Error::Internal("planned weight is not float32".into()))?;
            // Checked first: a NaN or infinite value makes an infinite scale and a broken model.
            let bad = nonfinite_count(data);
            let q = (bad == 0).then(|| quantize_in_layout(&key, data, &dims(c.tensor)));
            // The float weight has been read once and is not needed again: drop its pages.
            if let Some(raw) = &c.tensor.raw_data {
                sources.release(raw);
            }
            Ok((key, q.ok_or(bad)))
        })
        .collect::<Result<_>>()?;
    let mut out = Quantized {
        done: BTreeMap::new(),
        nonfinite: BTreeMap::new(),
    };
    for (key, r) in results {
        match r {
            Ok(q) => out.done.insert(key, q).map(|_| ()),
            Err(bad) => out.nonfinite.insert(key, bad).map(|_| ()),
        };
    }
    Ok(out)
}

/// Quantizes float data of shape `d` as `key` says, in the stored layout.
fn quantize_in_layout(key: &WeightKey, data: F32Data<'_>, d: &[usize]) -> QuantizedTensor {
    match key.layout {
        Layout::Transposed => {
            let t = transpose2(data, d[0], d[1]);
            quantize_weight(
                F32Data::Slice(&t),
                &[d[1], d[0]],
                key.axis,
                key.qtype,
                key.symmetric,
                key.reduce_range,
            )
        }
        Layout::Lstm { per_channel } => {
            // Quantize rows (per gate row) or whole directions, then store each direction's
            // [4H, K] block transposed to [K, 4H].
            let (dirs, rows, cols) = (d[0], d[1], d[2]);
            let flat = if per_channel {
                [dirs * rows, cols]
            } else {
                [dirs, rows * cols]
            };
            let mut q = quantize_weight(
                data,
                &flat,
                Some(0),
                key.qtype,
                key.symmetric,
                key.reduce_range,
            );
            q.data = q
                .data
                .chunks(rows * cols)
                .flat_map(|block| transpose_bytes(block, rows, cols))
                .collect();
            q
        }
        Layout::AsIs | Layout::ConvChannels => quantize_weight(
            data,
            d,
            key.axis,
            key.qtype,
            key.symmetric,
            key.reduce_range,
        ),
    }
}

fn transpose_bytes(data: &[u8], rows: usize, cols: usize) -> Vec<u8> {
    let mut out = vec![0; data.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = data[r * cols + c];
        }
    }
    out
}

fn transpose2(data: F32Data<'_>, rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; data.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = data.get(r * cols + c);
        }
    }
    out
}
