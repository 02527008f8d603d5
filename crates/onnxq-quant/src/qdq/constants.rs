//! The static pass's constant stage: how each marked constant is quantized (its role, the options
//! and its override decide type, axis and symmetry), then every one quantized in parallel, with
//! the int32-bias weight-scale adjustment (§3.9), each weight rounded to nearest or, given its
//! input Hessian, by GPTQ (`rounding.rs`).

use std::collections::BTreeMap;

use onnxq_ir::{Def, Graph, NodeId, ValueId};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::numerics::{QuantType, quantize_with};
use crate::options::StaticOptions;
use crate::qdq::overrides::Resolved;
use crate::qdq::params::{adjust_for_bias, constant_params};
use crate::qdq::plan::{Bias, ConstSpec, DoneWeight, Marks, Params, Role, Rounding};
use crate::weights::{dims, f32_data, resolve};

/// The marked constants in marking order, each with how it is quantized (constants sharing
/// another tensor's parameters are not quantized on their own).
pub(crate) fn specs(
    g: &Graph,
    marks: &Marks<'_>,
    overrides: &BTreeMap<ValueId, Resolved>,
    opts: &StaticOptions,
) -> Vec<ConstSpec> {
    let weight_symmetric = opts
        .weight_symmetric
        .unwrap_or_else(|| opts.weight_type.signed());
    marks
        .order
        .iter()
        .flatten()
        .filter(|v| resolve(g, &[], **v).is_some())
        .filter_map(|&v| {
            let in_constant_node = !matches!(g.value(v).def(), Def::Initializer(_));
            let (qtype, axis, symmetric) = match marks.roles[&v] {
                // ORT quantizes a weight held in a Constant node as an activation (activation type
                // and symmetry, calibrated range = its min/max); per tensor onnxq does the same,
                // per channel it quantizes it as the weight it is.
                Role::Weight { axis: None } if in_constant_node => {
                    (opts.activation_type, None, opts.activation_symmetric)
                }
                Role::Weight { axis } => {
                    (opts.weight_type, axis, axis.is_some() || weight_symmetric)
                }
                // ORT's QOperator quirk: the weight symmetry when the two types are equal.
                Role::Activation
                    if opts.qoperator
                        && opts.activation_type == opts.weight_type
                        && matches!(g.value(v).def(), Def::Initializer(_)) =>
                {
                    (opts.activation_type, None, weight_symmetric)
                }
                Role::Activation => (opts.activation_type, None, opts.activation_symmetric),
                Role::SameAs(_) => return None,
            };
            let spec = ConstSpec {
                value: v,
                qtype,
                axis,
                symmetric,
            };
            Some(match overrides.get(&v) {
                None => spec,
                Some(o) => {
                    let axis = o.axis.or(axis);
                    ConstSpec {
                        value: v,
                        qtype: o.quant_type.unwrap_or(qtype),
                        axis,
                        symmetric: o.symmetric.unwrap_or(symmetric || axis.is_some()),
                    }
                }
            })
        })
        .collect()
}

/// The scale `consumer` reads `v` with: the converted one where it receives the conversion, else
/// the parameters `v` has or shares.
fn input_scale(
    marks: &Marks<'_>,
    overrides: &BTreeMap<ValueId, Resolved>,
    params: Params<'_>,
    v: ValueId,
    consumer: NodeId,
) -> Option<f32> {
    let key = marks.key(v);
    if overrides
        .get(&key)
        .and_then(|o| o.convert.as_ref())
        .is_some_and(|c| c.receives(consumer))
        && let Some(p) = params.converted.get(&key)
    {
        return Some(p.0.scale);
    }
    let mut v = v;
    while let Some(Role::SameAs(p)) = marks.roles.get(&v) {
        v = *p;
    }
    params.own.get(&marks.key(v)).map(|p| p.0.scale)
}

/// Quantizes every constant of `specs`, in parallel.
pub(crate) fn quantize(
    g: &Graph,
    marks: &Marks<'_>,
    params: Params<'_>,
    overrides: &BTreeMap<ValueId, Resolved>,
    specs: &[ConstSpec],
) -> Result<Vec<DoneWeight>> {
    let opts = marks.opts;
    // The first bias (in bias order) reading each weight, found once instead of by a scan of
    // every bias per constant.
    let mut bias_of: BTreeMap<ValueId, (ValueId, &Bias)> = BTreeMap::new();
    for (&b, bias) in &marks.biases {
        bias_of.entry(bias.weight).or_insert((b, bias));
    }
    specs
        .par_iter()
        .map(|spec| {
            let v = spec.value;
            let c = resolve(g, &[], v)
                .ok_or_else(|| Error::Internal("marked constant vanished".into()))?;
            let data = f32_data(c.tensor)
                .ok_or_else(|| Error::Internal("marked constant is not float32".into()))?;
            let d = dims(c.tensor);
            let o = overrides.get(&v);
            // QOperator quantizes constants in the activation role without reduced range.
            let activation_role = matches!(marks.roles[&v], Role::Activation)
                || (matches!(marks.roles[&v], Role::Weight { axis: None })
                    && !matches!(g.value(v).def(), Def::Initializer(_)));
            let reduce_range = o
                .and_then(|o| o.reduce_range)
                .unwrap_or(opts.reduce_range && !(opts.qoperator && activation_role));
            let mut p = constant_params(data, &d, spec, reduce_range, o, opts.min_real_range);
            if !opts.disable_weight_adjust
                && matches!(spec.qtype, QuantType::I8 | QuantType::I16)
                && p.iter().all(|p| p.zero_point == 0)
                && let Some(&(b, bias)) = bias_of.get(&v)
                && let Some(s_in) = input_scale(marks, overrides, params, bias.input, bias.node)
                && let Some(bc) = resolve(g, &[], b)
                && let Some(bd) = f32_data(bc.tensor)
            {
                adjust_for_bias(&mut p, s_in, bd, bias.beta);
            }
            let layer = opts
                .rounding
                .as_ref()
                .filter(|_| matches!(marks.roles[&v], Role::Weight { .. }))
                .and_then(|r| r.layers.get(g.value(v).name()));
            // A Hessian GPTQ cannot use (not finite, indefinite after damping) leaves the weight
            // rounded to nearest, and the report says why.
            let (q, rounding) = match layer {
                Some(l) => {
                    match crate::qdq::rounding::round(l, data, &d, spec.axis, p.clone(), spec.qtype)
                    {
                        Ok((q, e)) => (q, Some(Rounding::Gptq(e))),
                        Err(why) => (
                            quantize_with(data, &d, spec.axis, p, spec.qtype),
                            Some(Rounding::Nearest(why)),
                        ),
                    }
                }
                None => (quantize_with(data, &d, spec.axis, p, spec.qtype), None),
            };
            Ok(DoneWeight {
                value: v,
                qtype: spec.qtype,
                q,
                dims: d,
                rounding,
            })
        })
        .collect()
}
