//! `onnxq preprocess`: the pre-processing pass (`onnxq_quant::preprocess`) between load and save,
//! with the output layout of `repack` (the input's kept unless told) and a summary of what it did:
//! the clean-ups that changed something, how many values got shapes, what could not be inferred.

use anyhow::Result;
use onnxq_ir::load;
use onnxq_quant::{PreprocessOptions, PreprocessReport, preprocess};

use crate::args::PreprocessArgs;
use crate::outputs::{Outputs, Plan};
use crate::util::{note, warn};

pub(crate) fn run(a: &PreprocessArgs) -> Result<()> {
    let cfg = match &a.config {
        Some(p) => crate::preprocess_config::read(p)?,
        None => Default::default(),
    };
    let mut model = load(&a.model)?;
    crate::shapes::refuse_invalid(&model)?;
    // Flags, then the config's quant_pre_process keys.
    let l = &a.layout;
    let threshold = match cfg.size_threshold {
        Some(t) if l.size_threshold == onnxq_ir::DEFAULT_THRESHOLD => t,
        _ => l.size_threshold,
    };
    let fallback = (cfg.external_data == Some(true)).then(|| cfg.external_data_location.clone());
    let layout = l.resolve(&a.output, &model, fallback, threshold);
    let mut plan = Plan::default();
    plan.read_model(&a.model, &model);
    plan.write_model(&a.output, &layout, "--external-data");
    if let Some(p) = &a.report {
        plan.write("report", "--report", p);
    }
    if let Some(p) = &a.config {
        plan.read("config file", "--config", p);
    }
    plan.check()?;
    let mut opts = PreprocessOptions {
        skip_optimization: a.skip_optimization || cfg.skip_optimization == Some(true),
        skip_shape_inference: a.skip_shape_inference || cfg.skip_shape_inference == Some(true),
        opset: a.opset.or(cfg.opset),
    };
    // --ort-optimizer: upgrade, then ONNX Runtime's optimizer in place of onnxq's rules, then
    // the rest of the pass (inference, stamp) on what ORT wrote.
    let mut ort_files = None;
    let mut upgraded = None;
    if a.ort_optimizer && !opts.skip_optimization {
        if let Some(target) = opts.opset.take() {
            let up = onnxq_quant::upgrade(&mut model, target)?;
            upgraded = (up.opset.0 != up.opset.1).then_some(up.opset);
        }
        let (optimized, dir) = crate::engine::ort_optimize(
            &model,
            &a.model,
            upgraded.is_some(),
            a.ort_lib.as_deref(),
        )?;
        model = optimized;
        ort_files = Some(dir);
        opts.skip_optimization = true;
    }
    let mut report = preprocess(&mut model, &opts)?;
    if ort_files.is_some() {
        report.optimizer = "onnxruntime-basic".into();
        report.upgraded = upgraded;
    }
    let mut outputs = Outputs::default();
    let saved = outputs.model(&model, &a.output, &layout)?;
    if let Some(path) = &a.report {
        let json = serde_json::to_string_pretty(&report)? + "\n";
        outputs.file("report", path, json.as_bytes())?;
    }
    outputs.commit()?;
    summarize(&report);
    note(&crate::outputs::wrote_line(&a.output, &saved));
    Ok(())
}

/// The summary lines: opset, clean-ups, shapes, then what could not be inferred (first three).
fn summarize(r: &PreprocessReport) {
    if let Some((from, to)) = r.upgraded {
        note(&format!("upgraded opset {from} -> {to}"));
    }
    let changed: Vec<String> = (r.rules.iter())
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    if r.optimizer == "onnxruntime-basic" {
        note("clean-ups: ONNX Runtime's basic-level optimizer");
    }
    if !r.rules.is_empty() {
        let what = if changed.is_empty() {
            "nothing to change".to_owned()
        } else {
            changed.join(", ")
        };
        note(&format!("clean-ups: {what}"));
    }
    if let Some((known, all)) = r.shapes {
        note(&format!(
            "shapes: {known} of {all} node outputs inferred, {} value_info entries written",
            r.value_info_written
        ));
    }
    for (node, op, why) in r.not_inferred.iter().take(3) {
        note(&format!("  not inferred: {node} ({op}): {why}"));
    }
    if r.not_inferred.len() > 3 {
        note(&format!(
            "  ... {} more (--report lists them all)",
            r.not_inferred.len() - 3
        ));
    }
    for (value, declared, inferred) in &r.conflicts {
        warn(&format!(
            "`{value}` is declared {declared} but inferred {inferred}; the declared shape is kept"
        ));
    }
}
