//! `--auto`: the measured search for the fastest static model that keeps a stated accuracy.
//! The samples of `--data` are split: the first three quarters calibrate (once per float
//! model; every candidate of one is quantized from the same ranges), the last quarter judges.
//! Every configuration (`search.rs`) is measured on the held-out samples and timed against the
//! float model in ONNX Runtime (`judge.rs`); when none meets the target, the two most accurate
//! of the fastest configurations take the recovery steps (`floats.rs` rewrites the float model)
//! and are refined node by node. The best candidate that meets the target within `--max-float`
//! is written (`--objective`: the fastest or the smallest); when none does, the most accurate
//! one is, with a warning. The report lists every candidate.

mod floats;
mod judge;
mod search;

use std::time::Instant;

use anyhow::Result;
use onnxq_engine::find_ort_library;
use onnxq_ir::Model;
use onnxq_quant::{Decision, Report, SearchReport};

use super::{options, recovery, stamp};
use crate::args::{Format, QuantizeArgs};
use crate::auto_args::{Objective, Target};
use crate::config::Config;
use crate::engine::Backend;
use crate::util::{HintExt, fail};
use search::{Base, Made};

/// The configurations refined node by node when none meets the target.
const REFINED: usize = 2;
/// A configuration this close to the fastest one's speed counts as as fast (timing noise).
const NEAR_FASTEST: f64 = 0.95;

/// Refuses --auto's settings without --auto (no option is ignored).
pub(super) fn check(a: &QuantizeArgs) -> Result<()> {
    let s = &a.auto;
    let settings = s.target.is_some()
        || s.max_float.is_some()
        || s.objective.is_some()
        || s.budget.is_some()
        || s.eval_cmd.is_some()
        || s.per_tensor;
    if !s.auto && settings {
        return Err(fail(
            "--target, --max-float, --objective, --budget, --eval-cmd or --per-tensor was given \
             without --auto",
            "add --auto, or drop the setting",
        ));
    }
    let metric = matches!(s.target, Some(Target::Metric { .. }));
    match (metric, &s.eval_cmd) {
        (true, None) => Err(fail(
            "--target metric=… is judged by your metric script, and no --eval-cmd was given",
            "add --eval-cmd \"python eval.py {model}\" (it prints the metric first), or give \
             --target cos=C or sqnr=DB",
        )),
        (false, Some(_)) => Err(fail(
            "--eval-cmd prints a metric, and --target does not bound one",
            "add --target metric=X (at least X) or metric<=X (at most X)",
        )),
        (_, Some(cmd)) if !cmd.contains("{model}") => Err(fail(
            format!("--eval-cmd `{cmd}` has no {{model}} for the candidate's path"),
            "write {model} where the script takes the model, e.g. \"python eval.py {model}\"",
        )),
        _ => Ok(()),
    }
}

/// Runs the search on `model` (replaced by the chosen quantized model); returns its report and
/// the rewritten float model when `--rewritten` asks for it.
pub(super) fn run(
    a: &QuantizeArgs,
    cfg: &Config,
    model: &mut Model,
    notes: &mut Vec<String>,
) -> Result<(Report, Option<Model>)> {
    let started = Instant::now();
    let s = Settings {
        target: a.auto.target.unwrap_or(Target::Cos(0.99)),
        max_float: a.auto.max_float.unwrap_or(0.2),
        objective: a.auto.objective.unwrap_or(Objective::Latency),
        deadline: a
            .auto
            .budget
            .map(|b| started + std::time::Duration::from_secs_f64(b)),
    };
    let lib = find_ort_library(a.calib.ort_lib.as_deref()).hint(
        "--auto times its candidates in ONNX Runtime: `pip install onnxruntime==1.31.1`, or \
         point --ort-lib at libonnxruntime.so",
    )?;
    let original = model.clone();
    let mut held = crate::calibrate::open_samples(model, &a.calib.data)?;
    let n = held.len();
    if n < 2 {
        return Err(fail(
            format!("--auto holds a quarter of the samples out to judge, and --data has {n}"),
            "give --data with at least 2 samples (8 or more to judge on more than one)",
        ));
    }
    let calibrated_on = n - (n / 4).max(1);
    held.skip(calibrated_on);
    let mut args = a.clone();
    args.calib.first = Some(calibrated_on);
    let mut opts = options::static_options(&args, cfg)?;
    let mut rw = recovery::rewrite(&args, model, &mut opts)?;
    notes.append(&mut rw.notes);
    onnxq_quant::overrides::validate(&model.graph, &opts)?;
    let pins = pins(a, cfg, &opts);
    let backend = Backend::choose(a.calib.engine, a.calib.ort_lib.as_deref())?;
    let mut judge = judge::Judge::new(&original, held, backend, lib, a.calib.threads)?;
    judge.eval_cmd = a.auto.eval_cmd.clone();
    let (floats, unranged) = floats::Floats::new(&args, cfg, &opts, model.clone(), rw)?;
    let mut base = Base {
        floats,
        qoperator: a.format == Some(Format::Qoperator),
        try_rounding: pins.rounding.is_none(),
        calib: &args.calib,
    };
    let Searched {
        tried,
        timed,
        best,
        mut stopped,
    } = search_all(
        &mut base,
        &mut judge,
        &opts,
        pins,
        a.recovery.bias_correction,
        s,
    )?;
    if let Some(why) = base.floats.no_rewrite {
        stopped.push(format!("SmoothQuant and equalization as candidates: {why}"));
    }
    for step in &base.floats.inapplicable {
        stopped.push(format!("{}: it found nothing to change", step.name()));
    }
    let chosen = &tried[best];
    let float = &base.floats.all[chosen.recipe.float];
    let calibration = &float.ranges(chosen.recipe.ranges).1;
    let mut report = chosen.report.clone();
    report.notes.extend(unranged);
    report.calibration = Some(calibration.line());
    report.smoothing = float.smoothing.clone();
    report.equalization = float.equalization.clone();
    let met = s.meets(chosen);
    report.search = Some(SearchReport {
        target: s.target.to_string(),
        met,
        calibrated_on,
        held_out: n - calibrated_on,
        max_float: s.max_float,
        decisions: tried
            .iter()
            .zip(&timed)
            .enumerate()
            .map(|(i, (m, t))| decision(m, *t, i == best))
            .collect(),
        not_tried: stopped,
        seconds: started.elapsed().as_secs_f64(),
    });
    if !met {
        report.warnings.push(format!(
            "--auto: no candidate meets {} with at most {:.0} % of Conv/MatMul/Gemm float; \
             wrote the most accurate one ({})",
            s.target,
            100.0 * s.max_float,
            describe(chosen)
        ));
    }
    let format = if base.qoperator { "qoperator" } else { "qdq" };
    // Exclusions and 16-bit overrides included, so `compare --suggest` re-makes this model.
    let opts = chosen.per_node.options(&chosen.recipe);
    let rewritten = a.recovery.rewritten.as_ref().map(|_| float.model.clone());
    *model = chosen.saved.load()?;
    stamp::stamp(
        model,
        "static",
        Some(format),
        &opts,
        Some(calibration),
        &stamp::Recovery::of(
            float.smooth.as_ref(),
            float.equalize.as_ref(),
            chosen.recipe.bias_correction,
            chosen.recipe.rounding,
        ),
    )?;
    Ok((report, rewritten))
}

/// Every candidate measured, each one's (bytes, speed-up), and which one is chosen.
struct Searched {
    tried: Vec<Made>,
    timed: Vec<(u64, f64)>,
    best: usize,
    /// Refinements the budget cut short.
    stopped: Vec<String>,
}

/// The activation type and weight granularity the user gave (flag or config), kept in every
/// candidate.
fn pins(a: &QuantizeArgs, cfg: &Config, opts: &onnxq_quant::StaticOptions) -> search::Pins {
    let given = |id: &str, in_config: bool| a.given.has(id) || in_config;
    search::Pins {
        activation: given("activation_type", cfg.activation_type.is_some())
            .then_some(opts.activation_type),
        per_channel: if a.auto.per_tensor {
            Some(false)
        } else {
            given("per_channel", cfg.per_channel.is_some()).then_some(opts.per_channel)
        },
        rounding: a
            .recovery
            .weight_rounding
            .map(|r| r == crate::recovery_args::WeightRounding::Gptq),
    }
}

/// Every configuration, then, when none meets the target, the recovery steps and the per-node
/// refinements of the fastest ones.
fn search_all(
    base: &mut Base<'_>,
    judge: &mut judge::Judge,
    user: &onnxq_quant::StaticOptions,
    pins: search::Pins,
    bias_correction: bool,
    s: Settings,
) -> Result<Searched> {
    let (mut tried, mut stopped) = (Vec::new(), Vec::new());
    let methods: Vec<String> = base.floats.methods.iter().map(|m| m.name.clone()).collect();
    if pins.rounding == Some(true) {
        base.floats.ensure_rounding(0)?;
    }
    for recipe in search::configs(user, &methods, pins, bias_correction) {
        tried.push(search::make(base, judge, &recipe, &Default::default())?);
    }
    let mut timed = judge.speed(&tried.iter().map(|m| &m.saved).collect::<Vec<_>>())?;
    if !tried.iter().any(|m| s.meets(m)) {
        // The most accurate of the configurations within 5 % of the fastest's speed (same
        // node pattern, same timing: ranges differ only in accuracy), then the others by speed.
        let fastest = timed.iter().map(|t| t.1).fold(0.0, f64::max);
        let near = |i: usize| timed[i].1 >= NEAR_FASTEST * fastest;
        let mut order: Vec<usize> = (0..tried.len()).collect();
        order.sort_by(|&x, &y| {
            near(y).cmp(&near(x)).then_with(|| {
                if near(x) {
                    search::score(s.target, &tried[y])
                        .total_cmp(&search::score(s.target, &tried[x]))
                } else {
                    timed[y].1.total_cmp(&timed[x].1)
                }
            })
        });
        let mut refined = Vec::new();
        // Two starts that score the same are the same model for the search: one is refined.
        let mut starts: Vec<usize> = Vec::new();
        for &i in &order {
            let score = search::score(s.target, &tried[i]);
            if starts.len() < REFINED
                && starts
                    .iter()
                    .all(|&j| search::score(s.target, &tried[j]) != score)
            {
                starts.push(i);
            }
        }
        for i in starts {
            let config = tried[i].recipe.config.clone();
            let start =
                search::recover(base, judge, &tried[i], s.target, s.deadline, &mut refined)?;
            if s.meets(&start) {
                continue;
            }
            let (_, out_of_time) = search::refine(
                base,
                judge,
                start,
                s.target,
                s.max_float,
                s.deadline,
                &mut refined,
            )?;
            if out_of_time {
                stopped.push(format!(
                    "more per-node decisions from \"{config}\" (--budget reached)"
                ));
            }
        }
        timed.extend(judge.speed(&refined.iter().map(|m| &m.saved).collect::<Vec<_>>())?);
        tried.extend(refined);
    }
    let better = |x: usize, y: usize| -> bool {
        let (a, b) = (&tried[x], &tried[y]);
        match (s.meets(a), s.meets(b)) {
            (true, false) => true,
            (false, true) => false,
            // Both meet it: the objective decides, then (same nodes, same timing) accuracy.
            (true, true) => {
                let (fx, fy) = match s.objective {
                    Objective::Latency => (timed[x].1, timed[y].1),
                    Objective::Size => (-(timed[x].0 as f64), -(timed[y].0 as f64)),
                };
                fx > fy || (fx == fy && search::score(s.target, a) > search::score(s.target, b))
            }
            // Neither: the most accurate within the float share.
            (false, false) => {
                let within = |m: &Made| m.float_share <= s.max_float;
                (within(a), search::score(s.target, a)) > (within(b), search::score(s.target, b))
            }
        }
    };
    let mut best = 0;
    for i in 1..tried.len() {
        if better(i, best) {
            best = i;
        }
    }
    Ok(Searched {
        tried,
        timed,
        best,
        stopped,
    })
}

/// What the search aims at.
#[derive(Debug, Clone, Copy)]
struct Settings {
    target: Target,
    max_float: f64,
    objective: Objective,
    /// When refinement stops (`--budget`).
    deadline: Option<Instant>,
}

impl Settings {
    fn meets(&self, m: &Made) -> bool {
        search::met(self.target, m) && m.float_share <= self.max_float
    }
}

/// One candidate as the report lists it.
fn decision(m: &Made, (bytes, speedup): (u64, f64), chosen: bool) -> Decision {
    Decision {
        config: m.recipe.config.clone(),
        excluded: m.per_node.float.clone(),
        sixteen_bit: m.per_node.wide.clone(),
        cosine: m.agreement.cosine,
        sqnr_db: m.agreement.sqnr_db,
        metric: m.metric,
        speedup: Some(speedup),
        bytes,
        float_share: m.float_share,
        chosen,
    }
}

/// "QUInt8 activations, per-channel, all ops + 2 nodes float".
fn describe(m: &Made) -> String {
    let (f, w) = (m.per_node.float.len(), m.per_node.wide.len());
    let mut s = m.recipe.config.clone();
    if f > 0 {
        s += &format!(" + {f} node(s) float");
    }
    if w > 0 {
        s += &format!(" + {w} activation(s) at 16 bits");
    }
    s
}
