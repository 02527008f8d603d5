//! Calibration: run the float model on sample inputs and collect, per activation, the statistics
//! static quantization needs, in memory that does not grow with the number of samples.
//!
//! A session of [`augmented`] (every tensor an output) tells which tensors are float32 without a
//! run; [`augmented_minmax`] then adds a `ReduceMin`/`ReduceMax` pair per tensor, and
//! [`calibrate_minmax`] runs the samples one at a time through an [`onnxq_engine::Executor`],
//! feeding each scalar into its tensor's observer, which keeps only a running summary.
//! [`hessian::HessianSums`] takes GPTQ's `XᵀX` sums from the same samples, run segment by segment
//! through [`segments::Sweep`] so the engine never holds the whole model.

pub mod channel_stats;
pub mod data;
mod feeds;
pub mod fingerprint;
mod fit;
mod float_types;
pub mod hessian;
pub mod histogram;
pub mod npy;
mod observe;
mod patches;
mod ranges;
pub mod segments;
mod testdata;
pub mod trt;

pub use fingerprint::ModelId;
pub use float_types::float_tensors;
pub use observe::{Method, MinMaxOptions};
pub use ranges::{Ranges, TensorRange};

use std::collections::{BTreeMap, BTreeSet};

use onnxq_engine::{DataRef, Executor};
use onnxq_ir::proto as pb;
use onnxq_ir::{Attribute, Def, Model, Node, ValueId};

use crate::data::{Dim, InputSpec, Samples};
use crate::observe::Observer;

/// A calibration failure (per-tensor problems are not failures).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Calibration data missing, unreadable or not matching the model.
    #[error("{0}")]
    Data(String),
    /// The engine could not load or run the model.
    #[error(transparent)]
    Engine(#[from] onnxq_engine::EngineError),
    /// The model could not be prepared.
    #[error(transparent)]
    Model(#[from] onnxq_ir::Error),
}

impl From<String> for Error {
    fn from(reason: String) -> Error {
        Error::Data(reason)
    }
}

/// The model's graph inputs that are fed at run time, with their declared types.
pub fn input_specs(model: &Model) -> Vec<InputSpec> {
    let g = &model.graph;
    g.inputs()
        .iter()
        .filter(|p| matches!(g.value(p.value).def(), Def::Input))
        .map(|p| {
            let tensor = match p.info.r#type.as_ref().and_then(|t| t.value.as_ref()) {
                Some(pb::type_proto::Value::TensorType(t)) => Some(t),
                _ => None,
            };
            InputSpec {
                name: g.value(p.value).name().to_owned(),
                elem_type: tensor.map_or(0, |t| t.elem_type()),
                dims: tensor
                    .and_then(|t| t.shape.as_ref())
                    .map(|s| s.dim.iter().map(declared_dim).collect()),
            }
        })
        .collect()
}

/// One declared input dimension: a positive value is fixed; a named parameter is symbolic, but
/// an empty or `?` one (exporters write them for "any") and a 0 or missing value mean any size.
fn declared_dim(d: &pb::tensor_shape_proto::Dimension) -> Dim {
    use pb::tensor_shape_proto::dimension::Value;
    match &d.value {
        Some(Value::DimValue(n)) if *n > 0 => Dim::Fixed(*n as usize),
        Some(Value::DimParam(p)) if !p.is_empty() && p != "?" => Dim::Named(p.clone()),
        _ => Dim::Unknown,
    }
}

/// The tensors the engine must return for calibration: every node output of the main graph
/// (subgraph tensors are not calibrated, as in ONNX Runtime). Graph inputs are observed straight
/// from the feeds: an output aliasing an input is not safe to read after the run. Non-float
/// tensors are dropped when their first value shows their type.
pub fn candidate_tensors(model: &Model) -> Vec<String> {
    let g = &model.graph;
    let mut seen = BTreeSet::new();
    let mut names = Vec::new();
    for v in g
        .nodes()
        .flat_map(|(_, n)| n.outputs().iter().flatten().copied())
    {
        let name = g.value(v).name();
        if seen.insert(name.to_owned()) {
            names.push(name.to_owned());
        }
    }
    names
}

/// A copy of the model whose graph outputs are the original ones plus every tensor in `names`
/// (tensor bytes are shared with `model`, not copied).
pub fn augmented(model: &Model, names: &[String]) -> Result<Model, Error> {
    let mut m = model.clone();
    let g = &mut m.graph;
    let present: BTreeSet<ValueId> = g.outputs().iter().map(|p| p.value).collect();
    for n in names {
        let v = value(g, n)?;
        if !present.contains(&v) {
            g.add_output(v, Default::default())?;
        }
    }
    Ok(m)
}

fn value(g: &onnxq_ir::Graph, name: &str) -> Result<ValueId, Error> {
    g.value_by_name(name)
        .ok_or_else(|| Error::Data(format!("the model has no tensor `{name}` to calibrate")))
}

/// A scalar reduction added for calibration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduction {
    /// `ReduceMin(T)`.
    Min,
    /// `ReduceMax(T)`.
    Max,
    /// `ReduceMin(Abs(T))`: where a histogram of `|x|` starts.
    AbsMin,
}

/// Extra outputs of a reduction-augmented model: output name → (tensor, reduction).
pub type ReducedOutputs = BTreeMap<String, (String, Reduction)>;

/// For MinMax: a copy of the model that also outputs each tensor's minimum and maximum as scalars
/// (`ReduceMin`/`ReduceMax`, keepdims = 0), as ONNX Runtime's calibrator does, so the engine keeps
/// no activation alive for the caller. Returns the bytes and, per added output, the tensor it
/// reduces and whether it is the maximum.
pub fn augmented_minmax(
    model: &Model,
    names: &[String],
    abs_min: bool,
) -> Result<(Model, ReducedOutputs), Error> {
    let mut m = model.clone();
    let g = &mut m.graph;
    let mut outputs = BTreeMap::new();
    let reductions: &[(&str, Reduction)] = if abs_min {
        &[
            ("ReduceMin", Reduction::Min),
            ("ReduceMax", Reduction::Max),
            ("AbsReduceMin", Reduction::AbsMin),
        ]
    } else {
        &[("ReduceMin", Reduction::Min), ("ReduceMax", Reduction::Max)]
    };
    let keepdims = pb::AttributeProto {
        name: Some("keepdims".into()),
        r#type: Some(2),
        i: Some(0),
        ..Default::default()
    };
    for t in names {
        let tensor = value(g, t)?;
        for &(suffix, kind) in reductions {
            let name = g.fresh_name(&format!("{t}_{suffix}"));
            let mut input = tensor;
            if kind == Reduction::AbsMin {
                let abs = g.fresh_name(&format!("{name}_abs"));
                let node = Node::new("Abs", "", Some(abs.clone()));
                input = g.add_node(node, &[Some(tensor)], &[Some(&abs)])?.1[0]
                    .ok_or_else(|| Error::Data(format!("cannot add `{abs}`")))?;
            }
            let op = if kind == Reduction::Max {
                "ReduceMax"
            } else {
                "ReduceMin"
            };
            let mut node = Node::new(op, "", Some(name.clone()));
            node.attributes.push(Attribute::new(keepdims.clone()));
            let out = g.add_node(node, &[Some(input)], &[Some(&name)])?.1[0]
                .ok_or_else(|| Error::Data(format!("cannot add `{name}`")))?;
            g.add_output(out, Default::default())?;
            outputs.insert(name, (t.clone(), kind));
        }
    }
    Ok((m, outputs))
}

/// Per-tensor ranges, and the tensors calibration gave no range with the reason.
pub type Calibrated = (BTreeMap<String, TensorRange>, BTreeMap<String, String>);

/// Runs `samples` through `engine`, a session of [`augmented_minmax`]'s model (whose extra outputs
/// `outputs` maps to tensors), and returns each tensor's MinMax range; graph inputs come from the
/// feeds. A tensor that held no value in any sample (empty, or NaN) is returned in the second map
/// with the reason, never as a made-up range. `progress` is called after each sample.
pub fn calibrate_minmax(
    engine: &mut dyn Executor,
    samples: &Samples,
    outputs: &ReducedOutputs,
    opts: MinMaxOptions,
    mut progress: impl FnMut(usize),
) -> Result<Calibrated, Error> {
    let method = Method::MinMax(opts);
    let mut observers: BTreeMap<String, Observer> = BTreeMap::new();
    samples.each(|i, sample| {
        for (name, t) in &sample {
            if let onnxq_engine::Data::F32(values) = &t.data {
                observers
                    .entry(name.clone())
                    .or_insert_with(|| Observer::new(&method))
                    .observe(values);
            }
        }
        let mut pending: BTreeMap<&str, (f32, f32)> = BTreeMap::new();
        engine.run_each(&sample, &mut |name, _dims, data| {
            if let (Some((tensor, kind)), DataRef::F32([v])) = (outputs.get(name), data) {
                let e = pending
                    .entry(tensor.as_str())
                    .or_insert((f32::NAN, f32::NAN));
                match kind {
                    Reduction::Min => e.0 = *v,
                    Reduction::Max => e.1 = *v,
                    Reduction::AbsMin => {}
                }
            }
        })?;
        for (tensor, (lo, hi)) in pending {
            observers
                .entry(tensor.to_owned())
                .or_insert_with(|| Observer::new(&method))
                .observe_range(lo, hi);
        }
        progress(i + 1);
        Ok::<(), Error>(())
    })?;
    let (mut ranges, mut skipped) = (BTreeMap::new(), BTreeMap::new());
    for (name, o) in observers {
        match o.range() {
            Ok(r) => {
                ranges.insert(name, r);
            }
            Err(reason) => {
                skipped.insert(name, reason);
            }
        }
    }
    Ok((ranges, skipped))
}

/// Float32 tensors among the engine's outputs (its resolved types of an [`augmented`] model, for
/// inputs like the first sample's).
pub fn float_outputs(engine: &mut dyn Executor, samples: &Samples) -> Result<Vec<String>, Error> {
    let first = samples.first()?;
    Ok(engine
        .output_types(&first)?
        .into_iter()
        .filter(|(_, t)| *t == 1)
        .map(|(n, _)| n)
        .collect())
}

/// A histogram method, with ONNX Runtime's meanings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HistogramMethod {
    /// The `percentile`-th percentile of the values (of `|x|` when `symmetric`).
    Percentile {
        /// Percentile in (0, 100].
        percentile: f64,
        /// Histogram bins.
        num_bins: usize,
        /// Histogram of `|x|` and a symmetric range.
        symmetric: bool,
    },
    /// The symmetric threshold minimising the KL divergence of the quantized distribution.
    Entropy {
        /// Histogram bins.
        num_bins: usize,
        /// Levels of the quantized distribution; equal to `num_bins`, the search has one candidate
        /// and gives the MinMax range (ORT's `quantize_static` default, 128/128).
        num_quantized_bins: usize,
    },
    /// Mean and standard deviation (for float8), and `±max|x|` as the range.
    Distribution {
        /// Histogram bins.
        num_bins: usize,
    },
}

/// A tensor's extremes over all samples (samples with a NaN or no value left out).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Extremes {
    /// Lowest value.
    pub min: f32,
    /// Highest value.
    pub max: f32,
    /// Lowest absolute value.
    pub abs_min: f32,
}

/// Pass 1 of the histogram methods: every tensor's extremes, from a session of
/// [`augmented_minmax`]'s model built with `abs_min`. Graph inputs come from the feeds. A sample
/// that held no value (a NaN, or a crossed pair: an empty tensor) is left out; a tensor with no
/// such sample at all maps to `None`. `progress` is called after each sample.
pub fn calibrate_extremes(
    engine: &mut dyn Executor,
    samples: &Samples,
    outputs: &ReducedOutputs,
    mut progress: impl FnMut(usize),
) -> Result<BTreeMap<String, Option<Extremes>>, Error> {
    let mut all: BTreeMap<String, Option<Extremes>> = BTreeMap::new();
    let mut merge = |name: &str, e: Extremes| {
        let slot = all.entry(name.to_owned()).or_default();
        if e.min.is_nan() || e.max.is_nan() || e.abs_min.is_nan() || e.min > e.max {
            return;
        }
        *slot = Some(match *slot {
            None => e,
            Some(s) => Extremes {
                min: s.min.min(e.min),
                max: s.max.max(e.max),
                abs_min: s.abs_min.min(e.abs_min),
            },
        });
    };
    samples.each(|i, sample| {
        for (name, t) in &sample {
            if let onnxq_engine::Data::F32(v) = &t.data
                && !v.is_empty()
            {
                let fold = |f: fn(f32, f32) -> f32, init: f32, abs: bool| {
                    v.iter()
                        .fold(init, |a, &x| f(a, if abs { x.abs() } else { x }))
                };
                merge(
                    name,
                    Extremes {
                        min: fold(f32::min, f32::INFINITY, false),
                        max: fold(f32::max, f32::NEG_INFINITY, false),
                        abs_min: fold(f32::min, f32::INFINITY, true),
                    },
                );
            }
        }
        let mut pending: BTreeMap<&str, Extremes> = BTreeMap::new();
        engine.run_each(&sample, &mut |name, _dims, data| {
            if let (Some((tensor, kind)), DataRef::F32([v])) = (outputs.get(name), data) {
                let e = pending.entry(tensor.as_str()).or_insert(Extremes {
                    min: f32::NAN,
                    max: f32::NAN,
                    abs_min: f32::NAN,
                });
                match kind {
                    Reduction::Min => e.min = *v,
                    Reduction::Max => e.max = *v,
                    Reduction::AbsMin => e.abs_min = *v,
                }
            }
        })?;
        for (tensor, e) in pending {
            merge(tensor, e);
        }
        progress(i + 1);
        Ok::<(), Error>(())
    })?;
    Ok(all)
}

/// Pass 2 of the histogram methods: streams every sample through a histogram per tensor over the
/// range pass 1 fixed (so the counts equal ONNX Runtime's single `np.histogram` over all samples),
/// then applies `method`. `engine` runs an [`augmented`] model (full tensors as outputs). Tensors
/// with infinite values (ORT's tool crashes on them) or no values at all (`None` extremes) are
/// returned in the second map with the reason.
pub fn calibrate_histogram(
    engine: &mut dyn Executor,
    samples: &Samples,
    extremes: &BTreeMap<String, Option<Extremes>>,
    method: HistogramMethod,
    mut progress: impl FnMut(usize),
) -> Result<Calibrated, Error> {
    use crate::histogram::Histogram;
    let (bins, absolute) = match method {
        HistogramMethod::Percentile {
            num_bins,
            symmetric,
            ..
        } => (num_bins, symmetric),
        HistogramMethod::Entropy { num_bins, .. } | HistogramMethod::Distribution { num_bins } => {
            (num_bins, false)
        }
    };
    let mut hists: BTreeMap<&str, Histogram> = BTreeMap::new();
    let mut skipped: BTreeMap<String, String> = BTreeMap::new();
    let mut seen: BTreeMap<&str, Extremes> = BTreeMap::new();
    for (name, e) in extremes {
        let Some(e) = *e else {
            skipped.insert(name.clone(), observe::NO_VALUES.to_owned());
            continue;
        };
        seen.insert(name.as_str(), e);
        let thr = e.min.abs().max(e.max.abs());
        let (first, last) = if absolute {
            (e.abs_min, thr)
        } else {
            (-thr, thr)
        };
        match Histogram::new(first, last, bins, absolute) {
            Ok(h) => {
                hists.insert(name.as_str(), h);
            }
            Err(reason) => {
                skipped.insert(
                    name.clone(),
                    format!(
                        "no histogram: {reason} (values reach {} .. {})",
                        e.min, e.max
                    ),
                );
            }
        }
    }
    samples.each(|i, sample| {
        for (name, t) in &sample {
            if let (Some(h), onnxq_engine::Data::F32(v)) = (hists.get_mut(name.as_str()), &t.data) {
                h.add(v);
            }
        }
        engine.run_each(&sample, &mut |name, _dims, data| {
            if let (Some(h), DataRef::F32(v)) = (hists.get_mut(name), data) {
                h.add(v);
            }
        })?;
        progress(i + 1);
        Ok::<(), Error>(())
    })?;
    let ranges = hists
        .into_iter()
        .map(|(name, h)| {
            let e = seen[name];
            let observed = (e.min, e.max);
            let range = match method {
                HistogramMethod::Percentile { percentile, .. } => {
                    let (min, max) = h.percentile(percentile, observed);
                    TensorRange {
                        min,
                        max,
                        avg_std: None,
                    }
                }
                HistogramMethod::Entropy {
                    num_quantized_bins, ..
                } => {
                    let (min, max) = h.entropy(num_quantized_bins, observed);
                    TensorRange {
                        min,
                        max,
                        avg_std: None,
                    }
                }
                HistogramMethod::Distribution { .. } => TensorRange {
                    min: h.edges[0],
                    max: h.edges[h.edges.len() - 1],
                    avg_std: Some(h.distribution()),
                },
            };
            (name.to_owned(), range)
        })
        .collect();
    Ok((ranges, skipped))
}
