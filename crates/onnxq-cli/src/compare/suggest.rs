//! Measured suggestions: the float model re-quantized with the settings onnxq recorded in the
//! quantized model (`onnxq.settings`), once as recorded (the baseline) and once per candidate
//! node kept float, each run on the same samples; the output SQNR each exclusion buys, and the
//! best set (greedy, each step measured) as a ready-to-paste `--exclude` and config line.

use anyhow::{Context, Result};
use onnxq_calib::data::Samples;
use onnxq_debug::report::{BeforeAfter, Best, Report, Suggestion};
use onnxq_ir::Model;
use onnxq_quant::{DynamicOptions, StaticOptions};

use crate::args::{CalibMethod, CalibSettings, CompareArgs};
use crate::engine::Backend;
use crate::util::Progress;

/// A gain below this (dB) is noise, not a suggestion.
const MIN_GAIN_DB: f64 = 0.1;

/// How to remake the quantized model with more nodes excluded.
enum Remake {
    Static {
        opts: StaticOptions,
        qoperator: bool,
        ranges: onnxq_quant::qdq::Ranges,
        /// The float model as SmoothQuant rewrote it, when the settings record SmoothQuant.
        smoothed: Option<Box<Model>>,
        /// The samples to redo bias correction on, when the settings record it.
        bias_correction: Option<Box<CalibSettings>>,
    },
    Dynamic(DynamicOptions),
}

impl Remake {
    /// The float model quantized with `extra` excluded too.
    fn quantize(&self, float: &Model, extra: &[String]) -> Result<Model> {
        let mut m = float.clone();
        match self {
            Remake::Static {
                opts,
                qoperator,
                ranges,
                smoothed,
                bias_correction,
            } => {
                if let Some(s) = smoothed {
                    m = (**s).clone();
                }
                let mut o = opts.clone();
                o.exclude.extend(extra.iter().cloned());
                let base = bias_correction.is_some().then(|| m.clone());
                let mut report = onnxq_quant::quantize_qdq(&mut m, ranges, &o)?;
                if let (Some(calib), Some(base)) = (bias_correction, &base) {
                    crate::quantize::bias_correction::correct(
                        base,
                        &mut m,
                        &mut report,
                        ranges,
                        &o,
                        calib,
                    )?;
                }
                if *qoperator {
                    onnxq_quant::lower_qoperator(&mut m, &mut report)?;
                }
            }
            Remake::Dynamic(opts) => {
                let mut o = opts.clone();
                o.exclude.extend(extra.iter().cloned());
                onnxq_quant::quantize_dynamic(&mut m, &o)?;
            }
        }
        Ok(m)
    }
}

/// Reads the settings onnxq recorded; `Err` says why no suggestion can be measured.
fn remake(report: &Report, float: &Model, a: &CompareArgs) -> Result<Remake, String> {
    let settings = report.quantization.as_ref().map(|q| &q.settings).ok_or(
        "no suggestions: the quantized model records no onnxq settings (it was not made by \
                onnxq), so it cannot be re-made with exclusions; quantize with onnxq to get them",
    )?;
    let options = settings["options"].clone();
    match settings["mode"].as_str() {
        Some("static") => {
            let mut opts: StaticOptions = serde_json::from_value(options).map_err(|e| {
                format!("no suggestions: the recorded static options do not read: {e}")
            })?;
            let calib = CalibSettings {
                data: a.data.clone(),
                method: Some(CalibMethod::Minmax),
                symmetric: None,
                percentile: 99.999,
                num_bins: None,
                num_quantized_bins: 128,
                moving_average: false,
                engine: a.engine,
                ort_lib: a.ort_lib.clone(),
                threads: a.threads,
                first: None,
            };
            let smoothed = rewritten(float, settings, &calib, &opts)?;
            let base = smoothed.as_deref().unwrap_or(float);
            let (ranges, _) = crate::calibrate::calibrate(base, &calib, None)
                .map_err(|e| format!("no suggestions: calibrating the float model failed: {e}"))?;
            let bias_correction =
                (settings["bias_correction"] == true).then(|| Box::new(calib.clone()));
            if settings["gptq_rounding"] == true {
                let (r, _) = crate::quantize::rounding::collect(base, &calib).map_err(|e| {
                    format!("no suggestions: the GPTQ rounding's Hessians failed: {e:#}")
                })?;
                opts.rounding = Some(r);
            }
            Ok(Remake::Static {
                smoothed,
                bias_correction,
                qoperator: settings["format"] == "qoperator",
                opts,
                ranges: ranges
                    .tensors
                    .iter()
                    .map(|(k, r)| (k.clone(), (r.min, r.max)))
                    .collect(),
            })
        }
        Some("dynamic") => serde_json::from_value(options)
            .map(Remake::Dynamic)
            .map_err(|e| format!("no suggestions: the recorded dynamic options do not read: {e}")),
        other => Err(format!(
            "no suggestions for {} models: exclusions are measured for static and dynamic \
             quantization",
            other.unwrap_or("unknown")
        )),
    }
}

/// The float model rewritten again as the recorded settings say (`equalize`, then
/// `smooth_quant`; none recorded: `None`), on the compared samples.
fn rewritten(
    float: &Model,
    settings: &serde_json::Value,
    calib: &CalibSettings,
    opts: &StaticOptions,
) -> Result<Option<Box<Model>>, String> {
    let (eq, recorded) = (&settings["equalize"], &settings["smooth_quant"]);
    if eq.is_null() && recorded.is_null() {
        return Ok(None);
    }
    let mut m = float.clone();
    if let Some(mode) = eq.as_str() {
        let e = onnxq_quant::EqualizeOptions {
            relu6: mode == "relu6",
            op_types: opts.op_types.clone(),
            include: opts.include.clone(),
            exclude: opts.exclude.clone(),
        };
        crate::quantize::equalize::equalize(&mut m, calib, &e)
            .map_err(|e| format!("no suggestions: equalizing the float model failed: {e:#}"))?;
    }
    if recorded.is_null() {
        return Ok(Some(Box::new(m)));
    }
    let (Some(alpha), Some(folding)) = (recorded["alpha"].as_f64(), recorded["folding"].as_bool())
    else {
        return Err("no suggestions: the recorded SmoothQuant settings do not read".into());
    };
    let sq = onnxq_quant::SmoothOptions {
        alpha: alpha as f32,
        folding,
        op_types: opts.op_types.clone(),
        include: opts.include.clone(),
        exclude: opts.exclude.clone(),
    };
    crate::quantize::smooth::smooth(&mut m, calib, &sq, &mut opts.clone())
        .map_err(|e| format!("no suggestions: SmoothQuant on the float model failed: {e:#}"))?;
    Ok(Some(Box::new(m)))
}

/// Fills `report.suggestions` and `report.best` (or a note saying why not).
pub(crate) fn suggest(
    report: &mut Report,
    float_model: &Model,
    a: &CompareArgs,
    backend: &Backend,
    samples: &Samples,
) -> Result<()> {
    let remake = match remake(report, float_model, a) {
        Ok(r) => r,
        Err(why) => {
            report.notes.push(why);
            return Ok(());
        }
    };
    let candidates = onnxq_debug::rank::candidates(&report.activations, &report.weights, a.suggest);
    let outputs: Vec<String> = report.outputs.iter().map(|o| o.name.clone()).collect();
    let mut float = backend.load(float_model, a.threads)?;
    let mut run = |extra: &[String]| -> Result<(f64, f64)> {
        let m = remake
            .quantize(float_model, extra)
            .context("re-quantizing for a suggestion")?;
        let g = crate::measure::agreement(&m, &mut *float, backend, samples, &outputs, a.threads)?;
        Ok((g.sqnr_db, g.cosine))
    };
    let bar = Progress::new("measuring exclusions", candidates.len() + 1, "models");
    let before = run(&[])?;
    let mut singles = Vec::new();
    for (i, (node, why)) in candidates.iter().enumerate() {
        bar.set(i + 1);
        let after = run(std::slice::from_ref(node))?;
        singles.push((vec![node.clone()], after, why.clone()));
    }
    drop(bar);
    let entry = |exclude: Vec<String>, after: (f64, f64), reason: String| Suggestion {
        exclude,
        output_sqnr_db: BeforeAfter {
            before: before.0,
            after: after.0,
        },
        output_cosine: BeforeAfter {
            before: before.1,
            after: after.1,
        },
        reason,
    };
    // Greedy: the best single first, then each other gain kept if the set measures better.
    let mut gains: Vec<&(Vec<String>, (f64, f64), String)> = singles
        .iter()
        .filter(|s| s.1.0 > before.0 + MIN_GAIN_DB)
        .collect();
    gains.sort_by(|x, y| y.1.0.total_cmp(&x.1.0));
    let mut best: Option<(Vec<String>, (f64, f64))> = None;
    let mut combos = Vec::new();
    for g in gains {
        let Some((set, score)) = &best else {
            best = Some((g.0.clone(), g.1));
            continue;
        };
        let mut trial = set.clone();
        trial.extend(g.0.iter().cloned());
        let after = run(&trial)?;
        combos.push(entry(trial.clone(), after, "combined".into()));
        if after.0 > score.0 + MIN_GAIN_DB {
            best = Some((trial, after));
        }
    }
    report.suggestions = singles
        .into_iter()
        .map(|(e, a, r)| entry(e, a, r))
        .collect();
    report.suggestions.extend(combos);
    match best {
        Some((exclude, after)) => {
            let quoted: Vec<String> = exclude.iter().map(|n| format!("{n:?}")).collect();
            report.best = Some(Best {
                flag: format!("--exclude {}", exclude.join(",")),
                config: format!("exclude = [{}]", quoted.join(", ")),
                exclude,
                output_sqnr_db: BeforeAfter {
                    before: before.0,
                    after: after.0,
                },
            });
        }
        None => report.notes.push(format!(
            "no exclusion among the {} nodes tried gains more than {MIN_GAIN_DB} dB of output SQNR",
            candidates.len()
        )),
    }
    let given = report
        .outputs
        .iter()
        .map(|o| o.sqnr_db)
        .fold(f64::INFINITY, f64::min);
    if (given - before.0).abs() > 0.5 {
        report.notes.push(format!(
            "re-made with the recorded settings and MinMax ranges from these samples, the model's \
             output SQNR is {:.2} dB where the given model's is {given:.2} dB: its calibration \
             differed, so the gains are measured against the re-made model",
            before.0
        ));
    }
    Ok(())
}
