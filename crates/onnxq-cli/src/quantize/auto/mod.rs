//! `--auto`: the measured search for the fastest static model that keeps a stated accuracy.
//! The samples of `--data` are split: the first three quarters calibrate (once; every
//! candidate is quantized from the same ranges), the last quarter judges. Every configuration
//! (`search.rs`) is measured on the held-out samples and timed against the float model in
//! ONNX Runtime (`judge.rs`); the two fastest configurations that miss the target are refined
//! node by node. The best candidate that meets the target within `--max-float` is written
//! (`--objective`: the fastest or the smallest); when none does, the most accurate one is, with a
//! warning. The report lists every candidate.

mod judge;
mod search;

use std::time::Instant;

use anyhow::Result;
use onnxq_engine::find_ort_library;
use onnxq_ir::Model;
use onnxq_quant::{Decision, Report, SearchReport};

use super::{options, ranges, recovery, stamp};
use crate::args::{Format, QuantizeArgs};
use crate::auto_args::{Objective, Target};
use crate::config::Config;
use crate::engine::Backend;
use crate::util::{HintExt, fail};
use search::{Base, Made};

/// The configurations refined node by node when none meets the target.
const REFINED: usize = 2;

/// Refuses --auto's settings without --auto (no option is ignored).
pub(super) fn check(a: &QuantizeArgs) -> Result<()> {
    let s = &a.auto;
    let settings = s.target.is_some()
        || s.max_float.is_some()
        || s.objective.is_some()
        || s.budget.is_some()
        || s.eval_cmd.is_some();
    if !s.auto && settings {
        return Err(fail(
            "--target, --max-float, --objective, --budget or --eval-cmd was given without --auto",
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
    let rw = recovery::rewrite(&args, model, &mut opts)?;
    notes.extend(rw.notes);
    onnxq_quant::overrides::validate(&model.graph, &opts)?;
    let cal = calibrations(&args, cfg, model, &opts)?;
    let backend = Backend::choose(a.calib.engine, a.calib.ort_lib.as_deref())?;
    let mut judge = judge::Judge::new(&original, held, backend, lib, a.calib.threads)?;
    judge.eval_cmd = a.auto.eval_cmd.clone();
    let base = Base {
        float: model,
        ranges: &cal.sets,
        qoperator: a.format == Some(Format::Qoperator),
        calib: &args.calib,
    };
    let Searched {
        tried,
        timed,
        best,
        stopped,
    } = search_all(&base, &mut judge, &opts, a.recovery.bias_correction, s)?;
    let chosen = &tried[best];
    let calibration = &cal.records[chosen.recipe.ranges];
    let mut report = chosen.report.clone();
    report.notes.extend(cal.unranged);
    report.calibration = Some(calibration.line());
    report.smoothing = rw.smoothing;
    report.equalization = rw.equalization;
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
        not_tried: stopped
            .into_iter()
            .chain([
                "SmoothQuant and equalization as candidates (only when given, then in every \
                 candidate)"
                    .into(),
            ])
            .collect(),
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
    let rewritten = a.recovery.rewritten.as_ref().map(|_| model.clone());
    *model = chosen.saved.load()?;
    stamp::stamp(
        model,
        "static",
        Some(format),
        &opts,
        Some(calibration),
        &stamp::Recovery::of(
            rw.smooth.as_ref(),
            rw.equalize.as_ref(),
            chosen.recipe.bias_correction,
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

/// Every configuration, then the refinements.
fn search_all(
    base: &Base<'_>,
    judge: &mut judge::Judge,
    user: &onnxq_quant::StaticOptions,
    bias_correction: bool,
    s: Settings,
) -> Result<Searched> {
    let (mut tried, mut stopped) = (Vec::new(), Vec::new());
    for recipe in search::configs(user, base.ranges, bias_correction) {
        tried.push(search::make(base, judge, &recipe, &Default::default())?);
    }
    let mut timed = judge.speed(&tried.iter().map(|m| &m.saved).collect::<Vec<_>>())?;
    if !tried.iter().any(|m| s.meets(m)) {
        let mut order: Vec<usize> = (0..tried.len()).collect();
        order.sort_by(|&x, &y| timed[y].1.total_cmp(&timed[x].1));
        let mut refined = Vec::new();
        for &i in order.iter().take(REFINED) {
            let mut start = tried[i].clone();
            let config = start.recipe.config.clone();
            let in_time = s.deadline.is_none_or(|d| Instant::now() < d);
            if !bias_correction && in_time {
                // Bias correction helps some models and hurts others (BENCHMARKS.md): measured.
                let r = search::with_bias_correction(&start.recipe);
                let m = search::make(base, judge, &r, &Default::default())?;
                if search::score(s.target, &m) > search::score(s.target, &start) {
                    start = m.clone();
                }
                refined.push(m);
                if s.meets(&start) {
                    continue;
                }
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
                    "more nodes kept float from \"{}\" (--budget reached)",
                    config
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
            // Both meet it: the objective decides.
            (true, true) => match s.objective {
                Objective::Latency => timed[x].1 > timed[y].1,
                Objective::Size => timed[x].0 < timed[y].0,
            },
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

/// The ranges every candidate is quantized from, with what the metadata records of each.
struct Calibrations {
    /// Each one's name in the report, and its ranges.
    sets: Vec<(String, onnxq_quant::qdq::Ranges)>,
    records: Vec<stamp::Calibration>,
    /// The note on tensors left without a range (the first calibration's).
    unranged: Vec<String>,
}

/// The given `--ranges` or `--method` (in flags or config), else MinMax and Percentile at
/// 99.999 and 99.99: clipping rare outliers wins on some models (MobileNetV2: top-1 agreement
/// 0.70 → 0.78) and loses on others, so each is measured.
fn calibrations(
    args: &QuantizeArgs,
    cfg: &Config,
    model: &Model,
    opts: &onnxq_quant::StaticOptions,
) -> Result<Calibrations> {
    let given = args.ranges.is_some() || args.calib.method.is_some() || cfg.method.is_some();
    let methods: Vec<(String, Option<f64>)> = if given {
        vec![("the given ranges".into(), None)]
    } else {
        vec![
            ("MinMax ranges".into(), None),
            ("Percentile 99.999 ranges".into(), Some(99.999)),
            ("Percentile 99.99 ranges".into(), Some(99.99)),
        ]
    };
    let mut out = Calibrations {
        sets: Vec::new(),
        records: Vec::new(),
        unranged: Vec::new(),
    };
    for (name, percentile) in methods {
        let mut a = args.clone();
        if let Some(p) = percentile {
            a.calib.method = Some(crate::args::CalibMethod::Percentile);
            a.calib.percentile = p;
        }
        let (ranges, unranged, record) = ranges::static_ranges(&a, cfg, model, opts)
            .map_err(crate::engine::hint_engine_errors)?;
        if out.sets.is_empty() {
            out.unranged = unranged;
        }
        out.sets.push((name, ranges));
        out.records.push(record);
    }
    Ok(out)
}
