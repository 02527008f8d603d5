//! The middle stage of weight-only quantization: every distinct planned weight quantized once, in
//! parallel, read in place from its tensor (a memory map for a loaded model), whose pages are
//! released once read. A weight holding NaN or an infinity is not quantized: its nodes stay float
//! with the reason (ORT's tool writes an infinite scale).

use std::collections::BTreeMap;

use onnxq_ir::proto as pb;
use onnxq_ir::{Graph, Sources};
use rayon::prelude::*;

use super::options::{Algorithm, WeightOnlyOptions};
use super::plan::{BFLOAT16, FLOAT16, Kind, Plan};
use crate::error::{Error, Result};
use crate::numerics::blocks::{self, BlockShape, Elems, NBits};
use crate::numerics::gather_blocks::{GatherBlocks, gather_blocks};
use crate::numerics::gptq::{Prepared, gptq};
use crate::numerics::hqq::hqq;
use crate::numerics::rtn::{RtnKind, rtn};
use crate::weights::{Source, f32_data, resolve};

/// A quantized weight.
pub(crate) enum Quantized {
    /// For MatMulNBits.
    NBits(NBits),
    /// For GatherBlockQuantized.
    Gather(GatherBlocks),
}

/// Why a weight stays float; `warn` for a broken weight (NaN or infinite values), which the
/// report also lists among its warnings.
pub(crate) struct Skip {
    pub(crate) reason: String,
    pub(crate) warn: bool,
}

/// Each distinct weight's quantization, or why it stays float.
pub(crate) type Results = BTreeMap<(Source, Kind), Result<Quantized, Skip>>;

/// Quantizes the weight of every plan, each distinct (weight, kind) once.
pub(crate) fn quantize_weights(
    g: &Graph,
    outer: &[&Graph],
    plans: &[Plan],
    opts: &WeightOnlyOptions,
    sources: &Sources,
) -> Result<Results> {
    let distinct: BTreeMap<(Source, Kind), &Plan> = plans.iter().map(|p| (p.key(), p)).collect();
    distinct
        .into_par_iter()
        .map(|(key, p)| {
            let c = resolve(g, outer, p.weight_input)
                .ok_or_else(|| Error::Internal("planned weight is not constant".into()))?;
            let q = with_elems(c.tensor, |w| quantize_one(w, p, opts, None))?;
            // The float weight has been read and is not needed again: drop its pages.
            if let Some(raw) = &c.tensor.raw_data {
                sources.release(raw);
            }
            Ok((key, q))
        })
        .collect()
}

/// One weight's quantization, or why it stays float; GPTQ needs its input's `prepared` Hessian.
pub(crate) fn quantize_one(
    w: &Elems<'_>,
    p: &Plan,
    opts: &WeightOnlyOptions,
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
    if let Some(i) = w.first_non_finite() {
        return Err(Skip {
            reason: format!(
                "weight `{}` holds {} at index {i}: it has no finite scale and stays float",
                p.weight_name,
                w.get(i)
            ),
            warn: true,
        });
    }
    Ok(match p.kind {
        Kind::MatMul { k, n } => {
            let shape = BlockShape {
                k,
                n,
                block: opts.block_size,
                bits: opts.bits,
                symmetric: opts.symmetric,
            };
            Quantized::NBits(match opts.algorithm {
                Algorithm::Default => blocks::nbits(w, shape),
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
            })
        }
        Kind::Gather { shape, .. } => {
            Quantized::Gather(gather_blocks(w, shape, opts.block_size, opts.symmetric))
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
