//! `onnxq quantize`: resolve flags and config into options, quantize, save, report.

mod auto;
pub(crate) mod bias_correction;
mod channels;
pub(crate) mod equalize;
mod gptq;
mod measured;
mod options;
mod ranges;
mod recovery;
pub(crate) mod rounding;
pub(crate) mod smooth;
mod stamp;
mod summary;
mod weight_only;

use anyhow::Result;
use onnxq_ir::{Layout, load};
use onnxq_quant::{lower_qoperator, quantize_dynamic, quantize_qdq};

use crate::args::{Format, Mode, QuantizeArgs};
use crate::outputs::{Outputs, Plan};
use crate::recovery_args::WeightRounding;
use crate::util::note;

pub(crate) fn run(a: &QuantizeArgs) -> Result<()> {
    if let Some(config) = &a.config {
        // Read before anything else: a pipe given as the config must not block option parsing.
        let mut plan = Plan::default();
        plan.read("config file", "--config", config);
        plan.check()?;
    }
    let options::Resolved {
        args,
        cfg,
        mode,
        mut notes,
    } = options::resolve(a)?;
    let a = &args;
    let mut model = load(&a.model)?;
    crate::shapes::refuse_invalid(&model)?;
    let layout = output_layout(&a.output, &model);
    io_plan(a, &model, &layout)?.check()?;
    notes.extend(options::check_op_types(&model, mode, &a.op_types)?);
    auto::check(a)?;
    if a.html.is_some() && a.calib.data.is_empty() {
        return Err(crate::util::fail(
            "--html compares the quantized model with the float model on sample data, and no \
             --data was given",
            "give --data SAMPLES (the calibration samples serve)",
        ));
    }
    let measure_lib = measured::preflight(a)?;
    // The float model, for --html's and --measure's comparisons (tensor bytes are shared).
    let float = (a.html.is_some() || a.measure).then(|| model.clone());
    // The float model after SmoothQuant (--rewritten).
    let mut rewritten = None;
    let report = match mode {
        Mode::Dynamic => {
            let opts = options::dynamic_options(a, &cfg)?;
            let report = quantize_dynamic(&mut model, &opts)?;
            stamp::stamp(
                &mut model,
                "dynamic",
                None,
                &opts,
                None,
                &Default::default(),
            )?;
            report
        }
        Mode::WeightOnly => {
            let opts = weight_only::weight_only_options(a, &cfg)?;
            // Quantized tensors are staged beside the output as they are made (memory holds the
            // tensors in flight, not the quantized model); the output's folder is checked already.
            let dir = match a.output.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => std::path::Path::new("."),
            };
            let report = if opts.algorithm == onnxq_quant::Algorithm::Gptq {
                gptq::quantize(a, &mut model, &opts, dir)
                    .map_err(crate::engine::hint_engine_errors)?
            } else {
                onnxq_quant::quantize_weight_only_spilling(&mut model, &opts, dir)?
            };
            stamp::stamp(
                &mut model,
                "weight-only",
                None,
                &opts,
                None,
                &Default::default(),
            )?;
            report
        }
        Mode::Static => {
            let (report, rw) = if a.auto.auto {
                auto::run(a, &cfg, &mut model, &mut notes)?
            } else {
                static_pass(a, &cfg, &mut model, &mut notes)?
            };
            rewritten = rw;
            report
        }
    };
    // Every output is written to a temporary, then all are renamed: none is left if one fails.
    let mut outputs = Outputs::default();
    let saved = outputs.model(&model, &a.output, &layout)?;
    if let (Some(path), Some(m)) = (&a.recovery.rewritten, &rewritten) {
        outputs.model(m, path, &output_layout(path, m))?;
    }
    if let Some(path) = &a.report {
        let json = serde_json::to_string_pretty(&report)? + "\n";
        outputs.file("report", path, json.as_bytes())?;
    }
    if let (Some(path), Some(float)) = (&a.html, &float) {
        let html = crate::compare::html_for(float, &model, &report, a)?;
        outputs.file("HTML report", path, html.as_bytes())?;
    }
    outputs.commit()?;
    for n in &notes {
        note(n);
    }
    let warnings = summary::print(&report);
    note(&crate::outputs::wrote_line(&a.output, &saved));
    summary::print_warnings(&warnings);
    if let (Some(lib), Some(float)) = (&measure_lib, &float) {
        measured::report(a, lib, float, &model)?;
    }
    Ok(())
}

/// The static pass: the recovery rewrites, calibration, QDQ (then bias correction, then the
/// QOperator lowering), the stamp. Returns the report and the rewritten float model when
/// `--rewritten` asks for it.
fn static_pass(
    a: &QuantizeArgs,
    cfg: &crate::config::Config,
    model: &mut onnxq_ir::Model,
    notes: &mut Vec<String>,
) -> Result<(onnxq_quant::Report, Option<onnxq_ir::Model>)> {
    let format = a.format.unwrap_or(Format::Qdq);
    let mut opts = options::static_options(a, cfg)?;
    let rw = recovery::rewrite(a, model, &mut opts)?;
    notes.extend(rw.notes);
    // The float model as the rewrites left it (tensor bytes are shared): for --rewritten, and
    // for bias correction, which measures it against the quantized model and quantizes it again.
    let float =
        (a.recovery.rewritten.is_some() || a.recovery.bias_correction).then(|| model.clone());
    onnxq_quant::overrides::validate(&model.graph, &opts)?;
    let (ranges, unranged, calibration) =
        ranges::static_ranges(a, cfg, model, &opts).map_err(crate::engine::hint_engine_errors)?;
    if a.recovery.weight_rounding == Some(WeightRounding::Gptq) {
        let (r, note) =
            rounding::collect(model, &a.calib).map_err(crate::engine::hint_engine_errors)?;
        opts.rounding = Some(r);
        notes.extend(note);
    }
    let mut report = quantize_qdq(model, &ranges, &opts)?;
    if let (true, Some(f)) = (a.recovery.bias_correction, &float) {
        bias_correction::correct(f, model, &mut report, &ranges, &opts, &a.calib)
            .map_err(crate::engine::hint_engine_errors)?;
    }
    report.notes.extend(unranged);
    if format == Format::Qoperator {
        lower_qoperator(model, &mut report)?;
    }
    report.calibration = Some(calibration.line());
    report.smoothing = rw.smoothing;
    report.equalization = rw.equalization;
    let format = format!("{format:?}").to_lowercase();
    stamp::stamp(
        model,
        "static",
        Some(&format),
        &opts,
        Some(&calibration),
        &stamp::Recovery::of(
            rw.smooth.as_ref(),
            rw.equalize.as_ref(),
            a.recovery.bias_correction,
            opts.rounding.is_some(),
        ),
    )?;
    let rewritten = if a.recovery.rewritten.is_some() {
        float
    } else {
        None
    };
    Ok((report, rewritten))
}

/// The output's layout: inline, or external data beside it when the input had external data.
fn output_layout(path: &std::path::Path, model: &onnxq_ir::Model) -> Layout {
    if model.external_files().is_empty() {
        return Layout::Inline;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Layout::External {
        location: format!("{name}.data"),
        threshold: onnxq_ir::DEFAULT_THRESHOLD,
    }
}

/// Every file the command reads (config included, with its paths resolved) and writes.
fn io_plan(a: &QuantizeArgs, model: &onnxq_ir::Model, layout: &Layout) -> Result<Plan> {
    let mut plan = Plan::default();
    plan.read_model(&a.model, model);
    plan.read_data(&a.calib.data)?;
    if let Some(p) = &a.ranges {
        plan.read("ranges file", "--ranges", p);
    }
    if let Some(p) = &a.config {
        plan.read("config file", "--config", p);
    }
    if let Some(p) = &a.overrides {
        plan.read("overrides file", "--overrides", p);
    }
    plan.write_model(&a.output, layout, "-o");
    if let Some(p) = &a.recovery.rewritten {
        plan.write_model(p, &output_layout(p, model), "--rewritten");
    }
    if let Some(p) = &a.report {
        plan.write("report", "--report", p);
    }
    if let Some(p) = &a.html {
        plan.write("HTML report", "--html", p);
    }
    Ok(plan)
}
