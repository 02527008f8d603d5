//! SmoothQuant (Xiao et al. 2022), as ONNX Runtime's `quantize_static` offers it through Intel
//! Neural Compressor (extra options `SmoothQuant`, `SmoothQuantAlpha`, `SmoothQuantFolding`),
//! without that package. Activation outliers make per-tensor int8 ranges coarse; multiplying each
//! input channel `j` of a MatMul / Gemm / Conv's weight by `s_j` and its activation by `1/s_j`
//! leaves the float model's outputs unchanged and moves the outliers into the weights.
//!
//! The pass is two calls around a calibration run: [`plan_smoothing`] lists the activations to
//! smooth (and what cannot be, with the reason), the caller collects each one's per-channel
//! `max |x|` over the calibration data (`onnxq_calib::channel_max`), then [`apply_smoothing`]
//! computes the scales and edits the graph. Departures from Neural Compressor, each because its
//! choice is wrong or loses the fold:
//! - one scale per activation tensor, shared by every node that reads it (the paper's and
//!   NNCF's choice); Neural Compressor's default, one per node, can fold nowhere a tensor fans out
//!   (a LayerNorm feeding Q, K and V), so its Muls stay float;
//! - `max |x|` over the data, as the paper defines `s`; Neural Compressor takes the 99.999th
//!   percentile over all rows of all samples, which needs every activation in memory;
//! - a channel that is all zero (or all-zero weights) keeps `s = 1` (Neural Compressor's `1e-5`
//!   scales it by 1e5 before quantization);
//! - a producer folds only when it really absorbs `1/s`: a Conv without bias has its weight
//!   scaled (Neural Compressor drops the Mul and scales nothing), a Gemm with `transB` is scaled
//!   along its output rows, and a shared parameter or weight is copied, never scaled for all.

mod apply;
mod plan;

use std::collections::BTreeMap;

use onnxq_ir::Model;

pub use crate::report::{SmoothReport, Smoothed};
pub use plan::{Axis, SmoothPlan};

use crate::error::{Error, Result};
use crate::select::Selection;

/// SmoothQuant's settings (ORT's extra options).
#[derive(Debug, Clone, PartialEq)]
pub struct SmoothOptions {
    /// Migration strength α in `[0, 1]` (`SmoothQuantAlpha`, default 0.5).
    pub alpha: f32,
    /// Fold `1/s` into the producer where it can absorb it (`SmoothQuantFolding`, default true);
    /// elsewhere, and always when false, a Mul is inserted (and kept float).
    pub folding: bool,
    /// The static pass's selection: only nodes it may quantize are smoothed.
    pub op_types: Vec<String>,
    /// Node names or globs to smooth (the static pass's `--include`); empty: all.
    pub include: Vec<String>,
    /// Node names or globs never to smooth (the static pass's `--exclude`).
    pub exclude: Vec<String>,
}

impl Default for SmoothOptions {
    fn default() -> Self {
        SmoothOptions {
            alpha: 0.5,
            folding: true,
            op_types: Vec::new(),
            include: Vec::new(),
            exclude: Vec::new(),
        }
    }
}

/// Plans SmoothQuant on the main graph of `model`.
pub fn plan_smoothing(model: &Model, opts: &SmoothOptions) -> Result<SmoothPlan> {
    if !(0.0..=1.0).contains(&opts.alpha) {
        return Err(Error::Options {
            message: format!(
                "SmoothQuant's alpha is {}, and it must be in [0, 1]",
                opts.alpha
            ),
            hint: "give --smooth-quant-alpha between 0 and 1 (0.5 is ORT's default)",
        });
    }
    let sel = Selection {
        op_types: &opts.op_types,
        include: &opts.include,
        exclude: &opts.exclude,
    };
    Ok(plan::plan(&model.graph, &sel, opts.folding))
}

/// Applies `plan` with `x_max`, each planned activation's per-channel `max |x|` by tensor name
/// (an activation missing from it held no value on the data and is left alone, reported).
pub fn apply_smoothing(
    model: &mut Model,
    plan: &SmoothPlan,
    x_max: &BTreeMap<String, Vec<f32>>,
    opts: &SmoothOptions,
) -> Result<SmoothReport> {
    let mut report = SmoothReport {
        skipped: plan.skipped.clone(),
        ..Default::default()
    };
    let g = &mut model.graph;
    for gr in &plan.groups {
        let label = |g: &onnxq_ir::Graph, id| {
            g.node(id)
                .map(|n| crate::edit::node_label(g, n))
                .unwrap_or_default()
        };
        let consumers: Vec<String> = gr.consumers.iter().map(|c| label(g, c.node)).collect();
        let Some(x) = x_max.get(&gr.tensor).filter(|x| x.len() == gr.channels) else {
            for c in consumers {
                report.skipped.push((
                    c,
                    format!(
                        "its input `{}` held no value on the calibration data",
                        gr.tensor
                    ),
                ));
            }
            continue;
        };
        let s = apply::scales(g, gr, x, opts.alpha)?;
        let inverse = match (&gr.fold, &gr.no_fold) {
            (Some(f), _) => {
                let node = match f {
                    plan::Fold::Params { node, .. }
                    | plan::Fold::MulConst { node, .. }
                    | plan::Fold::AddConst { node, .. }
                    | plan::Fold::Weight { node, .. } => *node,
                };
                let op = g
                    .node(node)
                    .map(|n| n.op_type().to_owned())
                    .unwrap_or_default();
                format!("folded into {op} `{}`", label(g, node))
            }
            (None, why) => why.clone().unwrap_or_default(),
        };
        let inserted = apply::apply(g, gr, &s)?;
        let inverse = match inserted {
            Some(name) => {
                let text = format!("Mul `{name}` ({inverse})");
                report.inserted.push(name);
                text
            }
            None => inverse,
        };
        let lo = s.iter().copied().fold(f32::INFINITY, f32::min);
        let hi = s.iter().copied().fold(0.0, f32::max);
        report.smoothed.push(Smoothed {
            tensor: gr.tensor.clone(),
            consumers,
            inverse,
            scale_range: (lo, hi),
        });
    }
    crate::weights::remove_unread_constants(g).map_err(Error::edit)?;
    Ok(report)
}
