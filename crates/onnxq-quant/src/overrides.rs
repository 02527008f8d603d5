//! Per-tensor quantization overrides (ONNX Runtime's `TensorQuantOverrides` extra option): a list
//! of settings per tensor name, one entry for a per-tensor override, one or one per channel with
//! `axis` for a per-channel constant. Every entry is validated against the model before anything is
//! quantized (ORT stops validating after the first tensor).

use std::collections::BTreeMap;

use onnxq_ir::Graph;
use serde::Deserialize;

use crate::numerics::{QParams, QuantType};
use crate::weights::resolve;
use crate::{Error, Result};

/// One override entry, with ORT's keys.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    /// Quantization type: `QInt8`, `QUInt8`, `QInt16`, `QUInt16`, `QInt4`, `QUInt4` (or onnxq's
    /// `int8`, `uint8`, ...).
    #[serde(default, deserialize_with = "quant_type")]
    pub quant_type: Option<QuantType>,
    /// Fixed scale (with `zero_point`; then no range keys).
    pub scale: Option<f32>,
    /// Fixed zero point (with `scale`).
    pub zero_point: Option<i32>,
    /// Symmetric range.
    pub symmetric: Option<bool>,
    /// 7-bit range (constants only).
    pub reduce_range: Option<bool>,
    /// Replaces the calibrated (or observed) minimum.
    pub rmin: Option<f32>,
    /// Replaces the calibrated (or observed) maximum.
    pub rmax: Option<f32>,
    /// Per-channel axis (constants only).
    pub axis: Option<i64>,
    /// ORT's mixed-precision `convert` (not supported yet: refused with a clear error).
    #[serde(default)]
    pub convert: Option<serde::de::IgnoredAny>,
}

/// Overrides by tensor name.
pub type Overrides = BTreeMap<String, Vec<Override>>;

fn quant_type<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<QuantType>, D::Error> {
    let s = String::deserialize(d)?;
    let t = match s.trim_start_matches("QuantType.") {
        "QInt8" | "int8" => QuantType::I8,
        "QUInt8" | "uint8" => QuantType::U8,
        "QInt16" | "int16" => QuantType::I16,
        "QUInt16" | "uint16" => QuantType::U16,
        "QInt4" | "int4" => QuantType::I4,
        "QUInt4" | "uint4" => QuantType::U4,
        other => {
            return Err(serde::de::Error::custom(format!(
                "unknown quant_type `{other}` (QInt8, QUInt8, QInt16, QUInt16, QInt4, QUInt4)"
            )));
        }
    };
    Ok(Some(t))
}

/// What an override decides for one tensor, resolved.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Resolved {
    pub(crate) quant_type: Option<QuantType>,
    pub(crate) symmetric: Option<bool>,
    pub(crate) reduce_range: Option<bool>,
    pub(crate) range: (Option<f32>, Option<f32>),
    /// Per-channel axis (normalized), for constants.
    pub(crate) axis: Option<usize>,
    /// Fixed parameters: one, or one per channel.
    pub(crate) params: Option<Vec<QParams>>,
}

/// Checks every override against the graph (before a long calibration, so a typo fails fast).
pub fn validate(g: &Graph, overrides: &Overrides) -> Result<()> {
    resolve_all(g, overrides).map(|_| ())
}

/// Checks every override against the graph and resolves it; errors name the tensor and the key.
pub(crate) fn resolve_all(g: &Graph, overrides: &Overrides) -> Result<BTreeMap<String, Resolved>> {
    overrides
        .iter()
        .map(|(name, list)| Ok((name.clone(), check(g, name, list)?)))
        .collect()
}

fn check(g: &Graph, name: &str, list: &[Override]) -> Result<Resolved> {
    let bad = |what: String| Error::Selection(format!("TensorQuantOverrides `{name}`: {what}"));
    let v = g
        .value_by_name(name)
        .ok_or_else(|| bad("no tensor of the model has this name".into()))?;
    let constant = resolve(g, &[], v);
    let first = list
        .first()
        .ok_or_else(|| bad("the list is empty".into()))?;
    for (i, o) in list.iter().enumerate() {
        if o.convert.is_some() {
            return Err(bad(
                "`convert` (mixed precision) is not supported yet; quantize the tensor with one type"
                    .into(),
            ));
        }
        if o.scale.is_some() != o.zero_point.is_some() {
            return Err(bad(format!(
                "entry {i}: `scale` and `zero_point` go together"
            )));
        }
        if o.scale.is_some()
            && (o.symmetric.is_some()
                || o.reduce_range.is_some()
                || o.rmin.is_some()
                || o.rmax.is_some())
        {
            return Err(bad(format!(
                "entry {i}: `scale`/`zero_point` cannot be combined with symmetric, reduce_range, rmin or rmax"
            )));
        }
        if let Some(s) = o.scale
            && !(s.is_finite() && s > 0.0)
        {
            return Err(bad(format!(
                "entry {i}: scale {s} is not a positive number"
            )));
        }
        if o.reduce_range.is_some() && constant.is_none() {
            return Err(bad(
                "`reduce_range` applies to constants only (activations never use it)".into(),
            ));
        }
        if let (Some(lo), Some(hi)) = (o.rmin, o.rmax)
            && (lo > hi || lo.is_nan() || hi.is_nan())
        {
            return Err(bad(format!("entry {i}: rmin {lo} is above rmax {hi}")));
        }
        if i > 0 {
            let agree = (o.quant_type.is_none() || o.quant_type == first.quant_type)
                && (o.axis.is_none() || o.axis == first.axis)
                && (o.symmetric.is_none() || o.symmetric == first.symmetric)
                && (o.reduce_range.is_none() || o.reduce_range == first.reduce_range);
            if !agree {
                return Err(bad(format!(
                    "entry {i}: quant_type, axis, symmetric and reduce_range belong in the first entry and must agree"
                )));
            }
        }
    }
    let axis = match first.axis {
        None if list.len() > 1 => {
            return Err(bad(
                "several entries need `axis` in the first (per-channel overrides)".into(),
            ));
        }
        None => None,
        Some(a) => {
            let c = constant
                .ok_or_else(|| bad("`axis` (per-channel) applies to constants only".into()))?;
            let rank = c.tensor.dims.len() as i64;
            let norm = if a < 0 { a + rank } else { a };
            if !(0..rank).contains(&norm) {
                return Err(bad(format!("axis {a} is out of range for rank {rank}")));
            }
            let channels = c.tensor.dims[norm as usize] as usize;
            if list.len() != 1 && list.len() != channels {
                return Err(bad(format!(
                    "{} entries for {channels} channels (give 1 or one per channel)",
                    list.len()
                )));
            }
            Some(norm as usize)
        }
    };
    let qtype = first.quant_type;
    let params = if first.scale.is_some() {
        if list.iter().any(|o| o.scale.is_none()) {
            return Err(bad(
                "every entry needs `scale` and `zero_point`, or none".into()
            ));
        }
        let t = qtype.unwrap_or(QuantType::I8);
        let (lo, hi) = t.full_range();
        let p: Vec<QParams> = list
            .iter()
            .map(|o| QParams {
                scale: o.scale.unwrap_or(1.0),
                zero_point: o.zero_point.unwrap_or(0),
            })
            .collect();
        if let Some(z) = p.iter().find(|p| !(lo..=hi).contains(&p.zero_point)) {
            return Err(bad(format!(
                "zero point {} is outside {lo}..{hi}",
                z.zero_point
            )));
        }
        Some(p)
    } else {
        None
    };
    if axis.is_some() && list.iter().any(|o| o.rmin.is_some() || o.rmax.is_some()) {
        return Err(bad(
            "per-channel `rmin`/`rmax` are not supported yet; give scale and zero_point per channel"
                .into(),
        ));
    }
    Ok(Resolved {
        quant_type: qtype,
        symmetric: first.symmetric,
        reduce_range: first.reduce_range,
        range: (first.rmin, first.rmax),
        axis,
        params,
    })
}
