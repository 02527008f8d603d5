//! The static pass's parameter stage: calibrated ranges → activation parameters (after ORT's range
//! adjustments, the overrides and mixed-precision `convert`s), the parameters of each marked
//! constant, ORT's weight-scale enlargement for int32 biases, and the int32 bias codes.

use std::collections::{BTreeMap, BTreeSet};

use onnxq_ir::{Graph, Node, ValueId};

use crate::edit::{input, output};
use crate::error::{Error, Result};
use crate::numerics::{
    F32Data, QParams, QuantType, compute_qparams, min_max, snap_to_uint8, weight_params,
};
use crate::options::StaticOptions;
use crate::qdq::overrides::{Resolved, ResolvedConvert};
use crate::qdq::plan::{ConstSpec, ParamMap, Ranges, consumers};
use crate::weights::resolve;

/// Beyond this magnitude a calibrated bound is a sentinel (an attention mask of `finfo.min`), not
/// a value seen in use.
const SENTINEL: f32 = 1e30;

fn usable(bound: f32) -> bool {
    bound.is_finite() && bound.abs() < SENTINEL
}

/// The ranges by value, after ORT's adjustments: a Relu/Clip input that feeds only it takes the
/// output's range (the producer's Q/DQ then clips), a Softmax output is [0, 1]. Only nodes
/// `selected` adjust ranges.
pub(crate) fn adjusted_ranges(
    g: &Graph,
    ranges: &Ranges,
    selected: &dyn Fn(&Node) -> bool,
) -> BTreeMap<ValueId, (f32, f32)> {
    let mut range: BTreeMap<ValueId, (f32, f32)> = ranges
        .iter()
        .filter_map(|(name, r)| g.value_by_name(name).map(|v| (v, *r)))
        .collect();
    for (_, n) in g.nodes() {
        if !selected(n) {
            continue;
        }
        match n.op_type() {
            "Relu" | "Clip" => {
                // (An input left out of calibration, see `calibration_targets`, counts as ranged.)
                if let (Some(i), Some(o)) = (input(n, 0), output(n, 0))
                    && consumers(g, i) == 1
                    && (range.contains_key(&i) || resolve(g, &[], i).is_none())
                    && let Some(&r) = range.get(&o)
                {
                    range.insert(i, r);
                }
            }
            "Softmax" => {
                if let Some(o) = output(n, 0) {
                    range.insert(o, (0.0, 1.0));
                }
            }
            _ => {}
        }
    }
    range
}

/// Activation parameters of every tensor with a range or fixed override parameters.
pub(crate) struct ActivationParams {
    /// Each tensor's own parameters.
    pub(crate) own: ParamMap,
    /// Mixed precision: the second parameters of a tensor with a `convert` override.
    pub(crate) converted: ParamMap,
    /// Tensors left in float because their range is not usable.
    pub(crate) infinite: Vec<String>,
}

/// The parameters of every activation in `range` (overrides applied), then of those with fixed
/// override parameters and no range. `softmax_outputs` get ORT's fixed QLinearSoftmax output
/// parameters.
pub(crate) fn activation_params(
    g: &Graph,
    range: &BTreeMap<ValueId, (f32, f32)>,
    overrides: &BTreeMap<ValueId, Resolved>,
    opts: &StaticOptions,
    softmax_outputs: &BTreeSet<ValueId>,
) -> Result<ActivationParams> {
    let mut out = ActivationParams {
        own: BTreeMap::new(),
        converted: BTreeMap::new(),
        infinite: Vec::new(),
    };
    for (&v, &calibrated) in range {
        if softmax_outputs.contains(&v) && !overrides.contains_key(&v) {
            let qtype = opts.activation_type;
            let p = QParams {
                scale: 1.0 / 256.0,
                zero_point: qtype.full_range().0,
            };
            out.own.insert(v, (p, qtype));
            continue;
        }
        let o = overrides.get(&v);
        let qtype = o.and_then(|o| o.quant_type).unwrap_or(opts.activation_type);
        let symmetric = o
            .and_then(|o| o.symmetric)
            .unwrap_or(opts.activation_symmetric);
        let (lo, hi) = o.map_or(calibrated, |o| {
            (
                o.range.0.unwrap_or(calibrated.0),
                o.range.1.unwrap_or(calibrated.1),
            )
        });
        // An infinite range (an additive -inf attention mask), or one reaching a sentinel such as
        // torch's `finfo.min` mask, has no usable scale: every real value would land on the zero
        // point (ORT's tool quantizes it anyway and the model degrades badly); the tensor stays
        // float instead.
        if !(usable(lo) && usable(hi)) {
            out.infinite.push(g.value(v).name().to_owned());
            continue;
        }
        out.own
            .insert(v, (params_for(lo, hi, qtype, symmetric, opts), qtype));
        if let Some(c) = o.and_then(|o| o.convert.as_ref()) {
            let p = converted_params(g, v, c, calibrated, opts)?;
            out.converted.insert(v, (p, c.quant_type));
        }
    }
    for (&v, o) in overrides {
        if let Some(p) = &o.params
            && resolve(g, &[], v).is_none()
        {
            out.own
                .insert(v, (p[0], o.quant_type.unwrap_or(opts.activation_type)));
            if let Some(c) = &o.convert
                && let Some(p) = c.params
            {
                out.converted.insert(v, (p, c.quant_type));
            }
        }
    }
    Ok(out)
}

/// An activation's parameters for the range `[lo, hi]`.
fn params_for(
    lo: f32,
    hi: f32,
    qtype: QuantType,
    symmetric: bool,
    opts: &StaticOptions,
) -> QParams {
    let qrange = qtype.qrange(false, symmetric);
    if opts.restricted_asymmetric && qtype == QuantType::U8 && !symmetric {
        snap_to_uint8(lo, hi, qrange, opts.min_real_range)
    } else {
        compute_qparams(lo, hi, qrange, symmetric, opts.min_real_range)
    }
}

/// The converted parameters of `v`: from the calibrated range and the `convert` keys alone.
fn converted_params(
    g: &Graph,
    v: ValueId,
    c: &ResolvedConvert,
    (calibrated_lo, calibrated_hi): (f32, f32),
    opts: &StaticOptions,
) -> Result<QParams> {
    if let Some(p) = c.params {
        return Ok(p);
    }
    let lo = c.range.0.unwrap_or(calibrated_lo);
    let hi = c.range.1.unwrap_or(calibrated_hi);
    if !(usable(lo) && usable(hi)) {
        return Err(Error::Selection(format!(
            "TensorQuantOverrides `{}` convert: the calibrated range is not finite or reaches a mask sentinel; give rmin and rmax",
            g.value(v).name()
        )));
    }
    let symmetric = c.symmetric.unwrap_or(opts.activation_symmetric);
    Ok(params_for(lo, hi, c.quant_type, symmetric, opts))
}

/// The parameters of a marked constant with data `data` of shape `d`: its override's fixed
/// parameters (one repeated per channel if need be), its override's range, else its own min/max.
pub(crate) fn constant_params(
    data: F32Data<'_>,
    d: &[usize],
    spec: &ConstSpec,
    reduce_range: bool,
    o: Option<&Resolved>,
    min_real_range: Option<f32>,
) -> Vec<QParams> {
    let (qtype, axis, symmetric) = (spec.qtype, spec.axis, spec.symmetric);
    match o {
        Some(Resolved {
            params: Some(fixed),
            ..
        }) => match (axis, fixed.len()) {
            (Some(a), 1) => vec![fixed[0]; d[a]],
            _ => fixed.clone(),
        },
        Some(Resolved {
            range: (lo, hi), ..
        }) if axis.is_none() && (lo.is_some() || hi.is_some()) => {
            let (min, max) = min_max(data);
            let qrange = qtype.qrange(reduce_range, symmetric);
            vec![compute_qparams(
                lo.unwrap_or(min),
                hi.unwrap_or(max),
                qrange,
                symmetric,
                min_real_range,
            )]
        }
        _ => weight_params(
            data,
            d,
            axis,
            qtype,
            symmetric,
            reduce_range,
            min_real_range,
        ),
    }
}

/// ORT's weight-scale enlargement for int32 biases (§3.9): where `s_in · s_w` is below what the
/// bias needs to fit int32 (`1.0001 · 2 · |bias| / (2^32 - 2)`), the weight scale grows to it.
pub(crate) fn adjust_for_bias(p: &mut [QParams], s_in: f32, bias: F32Data<'_>, beta: f32) {
    const QRANGE: f64 = 4_294_967_294.0;
    let per_channel = p.len() > 1 && p.len() == bias.len();
    let absmax = |range: std::ops::Range<usize>| {
        range
            .map(|i| f64::from((beta * bias.get(i)).abs()))
            .fold(0.0, f64::max)
    };
    for (i, w) in p.iter_mut().enumerate() {
        let a = if per_channel {
            absmax(i..i + 1)
        } else {
            absmax(0..bias.len())
        };
        let smallest = 1.0001 * 2.0 * a / QRANGE;
        let candidate = f64::from(s_in) * f64::from(w.scale);
        if candidate > 0.0 && candidate < smallest {
            w.scale = (f64::from(w.scale) * (smallest / candidate)) as f32;
        }
    }
}

/// An int32 bias: the scales `alpha · s_in · s_w` (one, or one per channel of the weight) and the
/// codes of `beta · data`; `None` when the weight's channels do not match the bias.
pub(crate) fn int32_bias(
    data: F32Data<'_>,
    s_in: f32,
    w_params: &[QParams],
    (alpha, beta): (f32, f32),
) -> Option<(Vec<f32>, Vec<i32>)> {
    let n = data.len();
    let scales: Vec<f32> = w_params.iter().map(|w| alpha * (s_in * w.scale)).collect();
    if scales.len() != 1 && scales.len() != n {
        return None;
    }
    let q: Vec<i32> = (0..n)
        .map(|i| {
            let s = scales[if scales.len() == 1 { 0 } else { i }];
            let v = f64::from(beta * data.get(i)) / f64::from(s);
            v.round_ties_even()
                .clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32
        })
        .collect();
    Some((scales, q))
}
