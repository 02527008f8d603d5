//! `--auto`'s candidates: whole configurations (activation type, per-channel weights, all op
//! types or only Conv / MatMul / Gemm, the calibrated ranges), each a `Recipe`; from a
//! configuration that misses the target, the recovery steps (SmoothQuant, equalization, bias
//! correction), then per-node decisions one at a time: the
//! comparison ranks where the error starts, and each of the first few nodes kept float and each
//! of the first few activations given 16 bits (an override of its type, so its producer and
//! readers stay quantized) is tried; the best gain is kept, until the target is met, the float
//! share would pass its bound, or nothing gains.

use anyhow::Result;
use onnxq_quant::numerics::QuantType;
use onnxq_quant::{Report, StaticOptions};

use super::floats::{Floats, Step};
use super::judge::{COMPUTE_OPS, Judge, Saved};
use crate::args::CalibSettings;
use crate::auto_args::Target;
use crate::measure::Agreement;

/// Nodes tried float per step of the per-node search.
const TRIES: usize = 6;
/// Activations tried at 16 bits per step.
const WIDE_TRIES: usize = 3;
/// Steps of the per-node search at most.
const STEPS: usize = 8;
/// A step must gain at least this much SQNR (dB) or cosine to be kept.
const MIN_GAIN_DB: f64 = 0.1;
/// See `MIN_GAIN_DB`.
const MIN_GAIN_COS: f64 = 5e-4;

/// Whether candidate `m` meets `t`.
pub(super) fn met(t: Target, m: &Made) -> bool {
    match t {
        Target::Cos(c) => m.agreement.cosine >= c,
        Target::Sqnr(db) => m.agreement.sqnr_db >= db,
        Target::Metric {
            bound,
            lower_is_better,
        } => m.metric.is_some_and(|v| {
            if lower_is_better {
                v <= bound
            } else {
                v >= bound
            }
        }),
    }
}

/// The figure `t` reads from `m`, higher is better (a lower-is-better metric negated).
pub(super) fn score(t: Target, m: &Made) -> f64 {
    match t {
        Target::Cos(_) => m.agreement.cosine,
        Target::Sqnr(_) => m.agreement.sqnr_db,
        Target::Metric {
            lower_is_better, ..
        } => {
            let v = m.metric.unwrap_or(f64::NAN);
            if lower_is_better { -v } else { v }
        }
    }
}

/// The least gain of `score` a refinement step must bring.
fn least_gain(t: Target) -> f64 {
    match t {
        Target::Cos(_) => MIN_GAIN_COS,
        Target::Sqnr(_) => MIN_GAIN_DB,
        // A thousandth of the bound: metrics come in any unit.
        Target::Metric { bound, .. } => 1e-3 * bound.abs().max(1e-3),
    }
}

/// How a candidate is made, before any node is kept float.
#[derive(Clone)]
pub(super) struct Recipe {
    /// What the report calls it.
    pub(super) config: String,
    pub(super) opts: StaticOptions,
    /// Which of `Floats::all` it is quantized from.
    pub(super) float: usize,
    /// Which of `Floats::methods` calibrated its ranges.
    pub(super) ranges: usize,
    pub(super) bias_correction: bool,
    /// Weights rounded by GPTQ (`--weight-rounding gptq`) instead of to nearest.
    pub(super) rounding: bool,
}

/// One quantized candidate and how it measured.
#[derive(Clone)]
pub(super) struct Made {
    pub(super) recipe: Recipe,
    pub(super) per_node: PerNode,
    /// The model, on disk.
    pub(super) saved: Saved,
    pub(super) report: Report,
    pub(super) agreement: Agreement,
    /// The first number `--eval-cmd` printed for it, when one is given.
    pub(super) metric: Option<f64>,
    pub(super) float_share: f64,
}

/// The per-node decisions on top of a recipe.
#[derive(Clone, Default)]
pub(super) struct PerNode {
    /// Nodes kept float.
    pub(super) float: Vec<String>,
    /// Activations quantized to 16 bits (the activation type's 16-bit twin).
    pub(super) wide: Vec<String>,
}

impl PerNode {
    /// The recipe's options with these decisions: exclusions, and a type override per wide
    /// activation.
    pub(super) fn options(&self, recipe: &Recipe) -> StaticOptions {
        let mut o = recipe.opts.clone();
        o.exclude.extend(self.float.iter().cloned());
        let wide = match o.activation_type {
            QuantType::I8 => QuantType::I16,
            _ => QuantType::U16,
        };
        for t in &self.wide {
            o.overrides.insert(
                t.clone(),
                vec![onnxq_quant::options::Override {
                    quant_type: Some(wide),
                    ..Default::default()
                }],
            );
        }
        o
    }
}

/// What every candidate is made from.
pub(super) struct Base<'a> {
    pub(super) floats: Floats<'a>,
    pub(super) qoperator: bool,
    /// Whether GPTQ rounding is a recovery step (the user did not give `--weight-rounding`).
    pub(super) try_rounding: bool,
    /// The samples bias correction measures on.
    pub(super) calib: &'a CalibSettings,
}

/// Which configurations the user's settings leave to search: a given activation type or weight
/// granularity (`--per-channel`, `--per-tensor`) is kept in every one.
#[derive(Clone, Copy)]
pub(super) struct Pins {
    pub(super) activation: Option<QuantType>,
    pub(super) per_channel: Option<bool>,
    /// `--weight-rounding`: GPTQ (`true`) or nearest in every candidate; `None` tries both.
    pub(super) rounding: Option<bool>,
}

/// The configurations: ranges × activation type × per-channel weights × op types (the given
/// ones, or all and Conv / MatMul / Gemm only), the fastest kinds first within each ranges.
pub(super) fn configs(
    user: &StaticOptions,
    methods: &[String],
    pins: Pins,
    bias_correction: bool,
) -> Vec<Recipe> {
    let ops: Vec<(Option<Vec<String>>, &str)> = if user.op_types.is_empty() {
        let compute = COMPUTE_OPS.iter().map(|s| (*s).to_owned()).collect();
        vec![(None, "all ops"), (Some(compute), "Conv/MatMul/Gemm only")]
    } else {
        vec![(None, "the given op types")]
    };
    let acts: Vec<QuantType> = match pins.activation {
        Some(t) => vec![t],
        None => vec![QuantType::U8, QuantType::I8],
    };
    let grains: Vec<bool> = match pins.per_channel {
        Some(p) => vec![p],
        None => vec![false, true],
    };
    let mut out = Vec::new();
    for (r, ranges_name) in methods.iter().enumerate() {
        for &act in &acts {
            for &per_channel in &grains {
                for (op_types, ops_name) in &ops {
                    let mut o = user.clone();
                    o.activation_type = act;
                    o.per_channel = per_channel;
                    if let Some(t) = op_types {
                        o.op_types = t.clone();
                    }
                    // ORT's names for the two 8-bit types.
                    let act_name = match act {
                        QuantType::U8 => "QUInt8",
                        QuantType::I8 => "QInt8",
                        t => t.name(),
                    };
                    let weights = if per_channel {
                        "per-channel"
                    } else {
                        "per-tensor"
                    };
                    let rounding = pins.rounding == Some(true);
                    let rounded = if rounding { ", GPTQ rounding" } else { "" };
                    out.push(Recipe {
                        config: format!(
                            "{act_name} activations, {weights}, {ops_name}, {ranges_name}{rounded}"
                        ),
                        opts: o,
                        float: 0,
                        ranges: r,
                        bias_correction,
                        rounding,
                    });
                }
            }
        }
    }
    out
}

/// `r` with bias correction added.
pub(super) fn with_bias_correction(r: &Recipe) -> Recipe {
    Recipe {
        config: format!("{}, bias correction", r.config),
        bias_correction: true,
        ..r.clone()
    }
}

/// `r` with GPTQ rounding added.
pub(super) fn with_rounding(r: &Recipe) -> Recipe {
    Recipe {
        config: format!("{}, GPTQ rounding", r.config),
        rounding: true,
        ..r.clone()
    }
}

/// Quantizes the recipe's float model by `recipe` with the `per_node` decisions, and measures it
/// (a rounded recipe's float model has its Hessians: `Floats::ensure_rounding`).
pub(super) fn make(
    base: &Base<'_>,
    judge: &mut Judge,
    recipe: &Recipe,
    per_node: &PerNode,
) -> Result<Made> {
    let float = &base.floats.all[recipe.float];
    let mut model = float.model.clone();
    let mut o = per_node.options(recipe);
    if recipe.rounding {
        o.rounding = Some(float.rounding.clone().ok_or_else(|| {
            anyhow::anyhow!("internal error: a GPTQ-rounded candidate of a model without Hessians")
        })?);
    }
    let ranges = &float.ranges(recipe.ranges).0;
    let mut report = onnxq_quant::quantize_qdq(&mut model, ranges, &o)?;
    if recipe.bias_correction {
        crate::quantize::bias_correction::correct(
            &float.model,
            &mut model,
            &mut report,
            ranges,
            &o,
            base.calib,
        )?;
    }
    if base.qoperator {
        onnxq_quant::lower_qoperator(&mut model, &mut report)?;
    }
    let agreement = judge.accuracy(&model)?;
    let saved = judge.keep(&model)?;
    let metric = judge.metric(&saved)?;
    Ok(Made {
        recipe: recipe.clone(),
        per_node: per_node.clone(),
        float_share: judge.float_share(&report),
        saved,
        report,
        agreement,
        metric,
    })
}

/// From configuration `start`, each recovery step measured: the same configuration on the
/// input rewritten by SmoothQuant and by equalization (when the user gave no rewrite and the
/// step finds something to change), then GPTQ rounding and bias correction, each on the best so
/// far (unless the user set them).
/// Every candidate goes to `tried`; returns the best-scoring one, `start` included.
pub(super) fn recover(
    base: &mut Base<'_>,
    judge: &mut Judge,
    start: &Made,
    target: Target,
    deadline: Option<std::time::Instant>,
    tried: &mut Vec<Made>,
) -> Result<Made> {
    let in_time = || deadline.is_none_or(|d| std::time::Instant::now() < d);
    let mut best = start.clone();
    let consider = |m: Made, best: &mut Made, tried: &mut Vec<Made>| {
        if score(target, &m) > score(target, best) {
            *best = m.clone();
        }
        tried.push(m);
    };
    let steps = if base.floats.no_rewrite.is_none() {
        vec![Step::Smooth, Step::Equalize]
    } else {
        Vec::new()
    };
    for step in steps {
        if met(target, &best) || !in_time() {
            break;
        }
        let Some(float) = base.floats.rewritten(step, start.recipe.ranges)? else {
            continue;
        };
        if start.recipe.rounding {
            base.floats.ensure_rounding(float)?;
        }
        let mut r = start.recipe.clone();
        r.config = format!("{}, {}", r.config, step.name());
        r.float = float;
        r.opts
            .exclude
            .extend(base.floats.all[float].inserted.iter().cloned());
        let m = make(base, judge, &r, &PerNode::default())?;
        consider(m, &mut best, tried);
    }
    if base.try_rounding && !best.recipe.rounding && !met(target, &best) && in_time() {
        // Before bias correction, which then corrects what mean shift the rounding leaves.
        base.floats.ensure_rounding(best.recipe.float)?;
        let m = make(
            base,
            judge,
            &with_rounding(&best.recipe),
            &PerNode::default(),
        )?;
        consider(m, &mut best, tried);
    }
    if !best.recipe.bias_correction && !met(target, &best) && in_time() {
        // Bias correction helps some models and hurts others (BENCHMARKS.md): measured.
        let m = make(
            base,
            judge,
            &with_bias_correction(&best.recipe),
            &PerNode::default(),
        )?;
        consider(m, &mut best, tried);
    }
    Ok(best)
}

/// From `start`, nodes kept float one at a time while the target is missed, the float share
/// stays within `max_float`, a node gains and `deadline` has not passed; every candidate measured
/// goes to `tried`. Returns the last kept and whether the deadline stopped it.
pub(super) fn refine(
    base: &Base<'_>,
    judge: &mut Judge,
    start: Made,
    target: Target,
    max_float: f64,
    deadline: Option<std::time::Instant>,
    tried: &mut Vec<Made>,
) -> Result<(Made, bool)> {
    let mut cur = start;
    // The start is listed by the caller; every later step's model is pushed here once.
    let mut cur_listed = true;
    let mut out_of_time = false;
    for _ in 0..STEPS {
        if met(target, &cur) {
            break;
        }
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            out_of_time = true;
            break;
        }
        let float = &base.floats.all[cur.recipe.float].model;
        let ranked = judge.rank(float, &cur.saved.load()?, TRIES * 2)?;
        let quantized: std::collections::HashSet<&str> = cur
            .report
            .quantized_nodes()
            .map(|e| e.node.as_str())
            .collect();
        let mut best: Option<Made> = None;
        let floats = ranked
            .nodes
            .into_iter()
            // Keeping float a node this candidate left float (a Softmax of a MatMul-only
            // configuration) would remake the same model.
            .filter(|n| quantized.contains(n.as_str()))
            .take(TRIES)
            .map(|n| {
                let mut p = cur.per_node.clone();
                p.float.push(n);
                p
            });
        // A tensor the user's overrides set is theirs.
        let wides = ranked
            .activations
            .into_iter()
            .filter(|t| {
                !cur.per_node.wide.contains(t) && !cur.recipe.opts.overrides.contains_key(t)
            })
            .take(WIDE_TRIES)
            .map(|t| {
                let mut p = cur.per_node.clone();
                p.wide.push(t);
                p
            });
        let choices: Vec<PerNode> = floats.chain(wides).collect();
        for per_node in choices {
            let m = make(base, judge, &cur.recipe, &per_node)?;
            let better = best
                .as_ref()
                .is_none_or(|b| score(target, &m) > score(target, b));
            if m.float_share <= max_float && better {
                if let Some(b) = best.replace(m) {
                    tried.push(b);
                }
            } else {
                tried.push(m);
            }
        }
        let Some(b) = best else { break };
        let gain = score(target, &b) - score(target, &cur);
        // NaN (a metric missing) is no gain either.
        if gain.is_nan() || gain < least_gain(target) {
            tried.push(b);
            break;
        }
        let old = std::mem::replace(&mut cur, b);
        if !cur_listed {
            tried.push(old);
        }
        cur_listed = false;
    }
    if !cur_listed {
        tried.push(cur.clone());
    }
    Ok((cur, out_of_time))
}
