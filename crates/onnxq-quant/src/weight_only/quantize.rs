//! The middle stage of weight-only quantization: every distinct planned weight quantized once, in
//! parallel, read in place from its tensor (a memory map for a loaded model), whose pages are
//! released once read. A weight holding NaN or an infinity is not quantized: its nodes stay float
//! with the reason (ORT's tool writes an infinite scale).

use std::collections::BTreeMap;

use onnxq_ir::proto as pb;
use onnxq_ir::{Graph, Sources, Spill};
use rayon::prelude::*;

use super::encode::{Encoded, Payload, Quantized, encode};
use super::options::{Algorithm, WeightOnlyFormat, WeightOnlyOptions};
use super::plan::{BFLOAT16, FLOAT, FLOAT16, Key, Kind, Plan};
use crate::error::{Error, Result};
use crate::numerics::blocks::{self, BlockShape};
use crate::numerics::elems::Elems;
use crate::numerics::gather_blocks::gather_blocks;
use crate::numerics::gptq::{Prepared, gptq};
use crate::numerics::hqq::hqq;
use crate::numerics::qdq_blocks;
use crate::numerics::relayout;
use crate::numerics::rtn::{RtnKind, rtn};
use crate::weights::{f32_data, resolve};

/// Why a weight stays float; `warn` for a broken weight (NaN or infinite values), which the
/// report also lists among its warnings.
pub(crate) struct Skip {
    pub(crate) reason: String,
    pub(crate) warn: bool,
}

/// Each distinct weight's tensors, or why it stays float.
pub(crate) type Results = BTreeMap<Key, Result<Encoded, Skip>>;

/// [`Results`] whose large tensors may still sit in the unmapped spill file.
pub(crate) type Pending = BTreeMap<Key, Result<Encoded<Payload>, Skip>>;

/// Quantizes the weight of every plan, each distinct (weight, kind, settings) once, and encodes
/// it as its tensors; with a `spill` the large ones are written to it as each weight finishes.
pub(crate) fn quantize_weights(
    g: &Graph,
    outer: &[&Graph],
    plans: &[Plan],
    opts: &WeightOnlyOptions,
    sources: &Sources,
    spill: Option<&Spill>,
) -> Result<Pending> {
    let distinct: BTreeMap<Key, &Plan> = plans.iter().map(|p| (p.key(), p)).collect();
    distinct
        .into_par_iter()
        .map(|(key, p)| {
            let c = resolve(g, outer, p.weight_input)
                .ok_or_else(|| Error::Internal("planned weight is not constant".into()))?;
            // Pages of rows a kernel has finished with go at once (the DEFAULT kernel reports
            // them band by band), so a large weight is never resident whole.
            let raw = c.tensor.raw_data.as_deref();
            let width = if p.dtype == FLOAT { 4 } else { 2 };
            let release = |r: std::ops::Range<usize>| {
                if let Some(raw) = raw
                    && let Some(part) = raw.get(r.start * width..r.end * width)
                {
                    sources.release(part);
                }
            };
            let q = with_elems(c.tensor, |w| quantize_one(w, p, opts, &release, None))?;
            // The float weight has been read and is not needed again: drop its pages.
            if let Some(raw) = &c.tensor.raw_data {
                sources.release(raw);
            }
            let e = match q {
                Ok(q) => Ok(encode(p, q, spill)?),
                Err(skip) => Err(skip),
            };
            Ok((key, e))
        })
        .collect()
}

/// Maps the spill file (if one was written) and resolves every pending tensor's bytes; returns
/// the spill's map for the model's sources.
pub(crate) fn finish(pending: Pending, spill: Option<Spill>) -> Result<(Results, Option<Sources>)> {
    let finished = match spill {
        Some(s) => s.finish().map_err(Error::Spill)?,
        None => None,
    };
    let map = finished.as_ref().map(|(m, _)| m);
    let results = pending
        .into_iter()
        .map(|(key, e)| {
            let e = match e {
                Ok(e) => Ok(e.resolve(map)?),
                Err(skip) => Err(skip),
            };
            Ok((key, e))
        })
        .collect::<Result<_>>()?;
    Ok((results, finished.map(|(_, s)| s)))
}

/// One weight's quantization, or why it stays float; `release` is told the value ranges a kernel
/// has finished reading, and GPTQ needs its input's `prepared` Hessian.
pub(crate) fn quantize_one(
    w: &Elems<'_>,
    p: &Plan,
    opts: &WeightOnlyOptions,
    release: &(dyn Fn(std::ops::Range<usize>) + Sync),
    prepared: Option<&Prepared>,
) -> Result<Quantized, Skip> {
    let count: usize = p.dims.iter().product();
    if w.len() != count {
        return Err(Skip {
            reason: format!(
                "weight `{}` holds {} values for its shape {:?}",
                p.weight_name,
                w.len(),
                p.dims
            ),
            warn: true,
        });
    }
    let broken = |i: usize| Skip {
        reason: format!(
            "weight `{}` holds {} at index {i}: it has no finite scale and stays float",
            p.weight_name,
            w.get(i)
        ),
        warn: true,
    };
    // The DEFAULT kernel checks each band as it goes (one read of the pages); the others first.
    let qdq = opts.format == WeightOnlyFormat::Qdq;
    let checks_itself =
        opts.algorithm == Algorithm::Default && matches!(p.kind, Kind::MatMul { .. });
    if !checks_itself && let Some(i) = w.first_non_finite() {
        return Err(broken(i));
    }
    Ok(match p.kind {
        Kind::MatMul { k, n } => {
            let shape = BlockShape {
                k,
                n,
                block: p.settings.block_size,
                bits: p.settings.bits,
                symmetric: p.settings.symmetric,
            };
            if qdq && opts.algorithm == Algorithm::Default {
                // MLAS's QDQ kernel (ORT's tool's QDQ output, bit for bit).
                let q = qdq_blocks::qdq_releasing(w, shape, release).map_err(broken)?;
                return Ok(Quantized::Qdq(q));
            }
            let q = match opts.algorithm {
                Algorithm::Default => blocks::nbits_releasing(w, shape, release).map_err(broken)?,
                Algorithm::Rtn => rtn(w, shape, RtnKind::Rtn),
                Algorithm::KQuant => rtn(w, shape, RtnKind::KQuant),
                Algorithm::Hqq => hqq(w, shape),
                Algorithm::Gptq => {
                    let fail = |reason: String| Skip {
                        reason: format!("GPTQ on weight `{}`: {reason}", p.weight_name),
                        warn: true,
                    };
                    let prepared =
                        prepared.ok_or_else(|| fail("no Hessian was prepared".into()))?;
                    gptq(w, shape, prepared).map_err(fail)?
                }
            };
            if qdq {
                // RTN and k-quant: their MatMulNBits blocks, re-laid out (`validate` refuses
                // HQQ's float zero points in this format).
                return relayout::nbits_to_qdq(&q).map(Quantized::Qdq).ok_or(Skip {
                    reason: "float zero points cannot be written as DequantizeLinear".into(),
                    warn: false,
                });
            }
            Quantized::NBits(q)
        }
        Kind::Gather { shape, .. } => {
            let (block, symmetric) = (p.settings.block_size, p.settings.symmetric);
            Quantized::Gather(gather_blocks(w, shape, block, symmetric, p.settings.bits))
        }
    })
}

/// Calls `f` on the tensor's values in place (a copy only for float16 held in `int32_data`).
pub(crate) fn with_elems<T>(t: &pb::TensorProto, f: impl FnOnce(&Elems<'_>) -> T) -> Result<T> {
    let dtype = t.data_type();
    if let Some(d) = f32_data(t) {
        return Ok(f(&Elems::F32(d)));
    }
    let owned: Vec<u8>;
    let bytes: &[u8] = match &t.raw_data {
        Some(raw) => raw,
        None => {
            // float16 and bfloat16 outside raw_data: one 16-bit value per int32 element.
            owned = t
                .int32_data
                .iter()
                .flat_map(|&v| (v as u16).to_le_bytes())
                .collect();
            &owned
        }
    };
    match dtype {
        FLOAT16 => Ok(f(&Elems::F16(bytes))),
        BFLOAT16 => Ok(f(&Elems::Bf16(bytes))),
        _ => Err(Error::Internal(format!(
            "planned weight has data type {dtype}"
        ))),
    }
}
