//! Per-tensor quantization overrides (ONNX Runtime's `TensorQuantOverrides` extra option), checked
//! and resolved for the static pass: a list of settings per tensor name, one entry for a
//! per-tensor override, one or one per channel with `axis` for a per-channel constant. Every entry
//! is validated against the model before anything is quantized (ORT stops validating after the
//! first tensor). The entries as the user writes them are in `options.rs`.

use std::collections::BTreeMap;

use onnxq_ir::{Graph, NodeId};

use crate::error::{Error, Result};
use crate::numerics::{QParams, QuantType};
use crate::options::StaticOptions;
pub use crate::options::{Convert, Override, Overrides};
use crate::weights::{Const, resolve};

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
    /// Mixed precision: the second type for some or all consumers.
    pub(crate) convert: Option<ResolvedConvert>,
}

/// A validated `convert` entry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ResolvedConvert {
    pub(crate) quant_type: QuantType,
    pub(crate) symmetric: Option<bool>,
    pub(crate) range: (Option<f32>, Option<f32>),
    pub(crate) params: Option<QParams>,
    /// The consumers reading the converted type; `None`: every consumer.
    pub(crate) recv_nodes: Option<Vec<NodeId>>,
}

impl ResolvedConvert {
    /// Whether `node` reads the converted type.
    pub(crate) fn receives(&self, node: NodeId) -> bool {
        self.recv_nodes.as_ref().is_none_or(|r| r.contains(&node))
    }
}

/// Checks every override against the graph and the options (before a long calibration, so a typo
/// fails fast).
pub fn validate(g: &Graph, opts: &StaticOptions) -> Result<()> {
    resolve_all(g, opts).map(|_| ())
}

/// Checks every override against the graph and resolves it; errors name the tensor and the key.
pub(crate) fn resolve_all(g: &Graph, opts: &StaticOptions) -> Result<BTreeMap<String, Resolved>> {
    opts.overrides
        .iter()
        .map(|(name, list)| Ok((name.clone(), check(g, name, list, opts)?)))
        .collect()
}

fn check(g: &Graph, name: &str, list: &[Override], opts: &StaticOptions) -> Result<Resolved> {
    let bad = |what: String| Error::Selection(format!("TensorQuantOverrides `{name}`: {what}"));
    let v = g
        .value_by_name(name)
        .ok_or_else(|| bad("no tensor of the model has this name".into()))?;
    let constant = resolve(g, &[], v);
    let first = list
        .first()
        .ok_or_else(|| bad("the list is empty".into()))?;
    for (i, o) in list.iter().enumerate() {
        check_entry(i, o, first, constant.is_some()).map_err(bad)?;
    }
    let axis = channel_axis(list, constant.as_ref()).map_err(bad)?;
    let qtype = first.quant_type;
    let params = fixed_params(list, constant.is_some(), opts).map_err(bad)?;
    if axis.is_some() && list.iter().any(|o| o.rmin.is_some() || o.rmax.is_some()) {
        return Err(bad(
            "per-channel `rmin`/`rmax` are not supported yet; give scale and zero_point per channel"
                .into(),
        ));
    }
    let convert = match &first.convert {
        None => None,
        Some(c) => {
            if constant.is_some() {
                return Err(bad(
                    "`convert` applies to activations; a constant is quantized once".into(),
                ));
            }
            Some(
                check_convert(g, v, c, qtype.unwrap_or(opts.activation_type), opts)
                    .map_err(|e| bad(format!("convert: {e}")))?,
            )
        }
    };
    Ok(Resolved {
        quant_type: qtype,
        symmetric: first.symmetric,
        reduce_range: first.reduce_range,
        range: (first.rmin, first.rmax),
        axis,
        params,
        convert,
    })
}

/// Checks entry `i` on its own and against the `first` (which carries the per-tensor keys).
fn check_entry(
    i: usize,
    o: &Override,
    first: &Override,
    constant: bool,
) -> std::result::Result<(), String> {
    if i > 0 && o.convert.is_some() {
        return Err(format!(
            "entry {i}: `convert` belongs in the only entry of an activation's override"
        ));
    }
    if o.scale.is_some() != o.zero_point.is_some() {
        return Err(format!("entry {i}: `scale` and `zero_point` go together"));
    }
    if o.scale.is_some()
        && (o.symmetric.is_some()
            || o.reduce_range.is_some()
            || o.rmin.is_some()
            || o.rmax.is_some())
    {
        return Err(format!(
            "entry {i}: `scale`/`zero_point` cannot be combined with symmetric, reduce_range, rmin or rmax"
        ));
    }
    if let Some(s) = o.scale
        && !(s.is_finite() && s > 0.0)
    {
        return Err(format!("entry {i}: scale {s} is not a positive number"));
    }
    if o.reduce_range.is_some() && !constant {
        return Err("`reduce_range` applies to constants only (activations never use it)".into());
    }
    if let (Some(lo), Some(hi)) = (o.rmin, o.rmax)
        && (lo > hi || lo.is_nan() || hi.is_nan())
    {
        return Err(format!("entry {i}: rmin {lo} is above rmax {hi}"));
    }
    if i > 0 {
        let agree = (o.quant_type.is_none() || o.quant_type == first.quant_type)
            && (o.axis.is_none() || o.axis == first.axis)
            && (o.symmetric.is_none() || o.symmetric == first.symmetric)
            && (o.reduce_range.is_none() || o.reduce_range == first.reduce_range);
        if !agree {
            return Err(format!(
                "entry {i}: quant_type, axis, symmetric and reduce_range belong in the first entry and must agree"
            ));
        }
    }
    Ok(())
}

/// The per-channel axis of the first entry, normalized, checked against the constant's rank and
/// the number of entries (1 or one per channel).
fn channel_axis(
    list: &[Override],
    constant: Option<&Const<'_>>,
) -> std::result::Result<Option<usize>, String> {
    match list.first().and_then(|o| o.axis) {
        None if list.len() > 1 => {
            Err("several entries need `axis` in the first (per-channel overrides)".into())
        }
        None => Ok(None),
        Some(a) => {
            let c = constant.ok_or("`axis` (per-channel) applies to constants only")?;
            let rank = c.tensor.dims.len() as i64;
            let norm = if a < 0 { a + rank } else { a };
            if !(0..rank).contains(&norm) {
                return Err(format!("axis {a} is out of range for rank {rank}"));
            }
            let channels = c.tensor.dims[norm as usize] as usize;
            if list.len() != 1 && list.len() != channels {
                return Err(format!(
                    "{} entries for {channels} channels (give 1 or one per channel)",
                    list.len()
                ));
            }
            Ok(Some(norm as usize))
        }
    }
}

/// The fixed parameters, when the first entry gives `scale` (then every entry must), each zero
/// point checked against the type it will have.
fn fixed_params(
    list: &[Override],
    constant: bool,
    opts: &StaticOptions,
) -> std::result::Result<Option<Vec<QParams>>, String> {
    let Some(first) = list.first().filter(|o| o.scale.is_some()) else {
        return Ok(None);
    };
    if list.iter().any(|o| o.scale.is_none()) {
        return Err("every entry needs `scale` and `zero_point`, or none".into());
    }
    let p: Vec<QParams> = list
        .iter()
        .map(|o| QParams {
            scale: o.scale.unwrap_or(1.0),
            zero_point: o.zero_point.unwrap_or(0),
        })
        .collect();
    // Without a type, a constant's role decides it (weight or activation type), so the zero
    // point must fit both.
    let types: Vec<QuantType> = match first.quant_type {
        Some(t) => vec![t],
        None if constant => vec![opts.weight_type, opts.activation_type],
        None => vec![opts.activation_type],
    };
    for z in &p {
        check_zero_point(z.zero_point, &types)?;
    }
    Ok(Some(p))
}

/// Fails unless `zp` fits every one of `types` (the type is one of them, not known yet).
fn check_zero_point(zp: i32, types: &[QuantType]) -> std::result::Result<(), String> {
    for t in types {
        let (lo, hi) = t.full_range();
        if !(lo..=hi).contains(&zp) {
            return Err(format!(
                "zero point {zp} is outside {lo}..{hi} ({}; give quant_type to choose)",
                t.name()
            ));
        }
    }
    Ok(())
}

fn check_convert(
    g: &Graph,
    v: onnxq_ir::ValueId,
    c: &Convert,
    own: QuantType,
    opts: &StaticOptions,
) -> std::result::Result<ResolvedConvert, String> {
    let quant_type = c
        .quant_type
        .ok_or("`quant_type` is required (the type consumers read)")?;
    if quant_type == own {
        return Err(format!(
            "`quant_type` {} is the tensor's own type; give another",
            quant_type.name()
        ));
    }
    if c.reduce_range.is_some() {
        return Err("`reduce_range` applies to constants only (activations never use it)".into());
    }
    if opts.qoperator {
        return Err(
            "mixed precision exists in the QDQ format only (use --format qdq, or drop `convert`)"
                .into(),
        );
    }
    let params = match (c.scale, c.zero_point) {
        (None, None) => None,
        (Some(scale), Some(zero_point)) => {
            if c.symmetric.is_some() || c.rmin.is_some() || c.rmax.is_some() {
                return Err(
                    "`scale`/`zero_point` cannot be combined with symmetric, rmin or rmax".into(),
                );
            }
            if !(scale.is_finite() && scale > 0.0) {
                return Err(format!("scale {scale} is not a positive number"));
            }
            check_zero_point(zero_point, &[quant_type])?;
            Some(QParams { scale, zero_point })
        }
        _ => return Err("`scale` and `zero_point` go together".into()),
    };
    if let (Some(lo), Some(hi)) = (c.rmin, c.rmax)
        && (lo > hi || lo.is_nan() || hi.is_nan())
    {
        return Err(format!("rmin {lo} is above rmax {hi}"));
    }
    let readers = g.reader_nodes(v);
    let recv_nodes = match &c.recv_nodes {
        None => None,
        Some(names) if names.is_empty() => {
            return Err("recv_nodes is empty (leave it out for every consumer)".into());
        }
        Some(names) => {
            let mut ids = Vec::with_capacity(names.len());
            for n in names {
                let id = readers
                    .iter()
                    .copied()
                    .find(|&r| g.node(r).is_some_and(|x| x.name() == n))
                    .ok_or_else(|| format!("recv_nodes: no node named `{n}` reads the tensor"))?;
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            Some(ids)
        }
    };
    if opts.dedicated_qdq_pair && readers.len() > 1 {
        return Err(
            "cannot be combined with DedicatedQDQPair on a tensor with several consumers (ORT refuses it too)"
                .into(),
        );
    }
    Ok(ResolvedConvert {
        quant_type,
        symmetric: c.symmetric,
        range: (c.rmin, c.rmax),
        params,
        recv_nodes,
    })
}
