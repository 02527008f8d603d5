//! `onnxq compare FLOAT QUANT --data ...`: run both models on the samples, match and measure
//! every quantized weight and activation (`onnxq-debug`), print where the error starts and the
//! worst tensors, and write the JSON and HTML reports (together, atomically).

mod suggest;

use std::io::Write;

use anyhow::Result;
use onnxq_debug::{Options, Report};
use onnxq_ir::load;

use crate::args::CompareArgs;
use crate::calibrate::open_samples;
use crate::engine::Backend;
use crate::outputs::{Outputs, Plan};
use crate::util::{Progress, fail, note};

pub(crate) fn run(a: &CompareArgs) -> Result<()> {
    let float = load(&a.float)?;
    let quant = load(&a.quant)?;
    let mut plan = Plan::default();
    plan.read_model(&a.float, &float);
    plan.read_model(&a.quant, &quant);
    plan.read_data(&a.data)?;
    if let Some(p) = &a.json {
        plan.write("JSON report", "--json", p);
    }
    if let Some(p) = &a.html {
        plan.write("HTML report", "--html", p);
    }
    plan.check()?;
    let prepared = onnxq_debug::prepare(&float, &quant).map_err(debug_error)?;
    let mut samples = open_samples(&float, &a.data)?;
    if let Some(n) = a.samples {
        anyhow::ensure!(n > 0, "--samples must be at least 1");
        samples.truncate(n);
    }
    let backend = Backend::choose(a.engine, a.ort_lib.as_deref())?;
    let mut fe = backend.load(&prepared.float_augmented, a.threads)?;
    let mut qe = backend.load(&prepared.quant_augmented, a.threads)?;
    let opts = Options {
        threshold_db: a.drop_threshold,
        top: a.top,
    };
    let bar = Progress::new("comparing", samples.len(), "samples");
    let (mut report, _) =
        onnxq_debug::compare(&prepared, &mut *fe, &mut *qe, &samples, opts, |d| {
            bar.set(d)
        })
        .map_err(debug_error)?;
    drop(bar);
    drop((fe, qe));
    if a.suggest > 0 {
        suggest::suggest(&mut report, &float, a, &backend, &samples)?;
    }
    report.float_model = a.float.display().to_string();
    report.quant_model = a.quant.display().to_string();
    write_reports(&report, a)?;
    print_summary(&report)?;
    Ok(())
}

/// `quantize --html`: the comparison report of the model just made against its float model, on
/// the calibration samples, with the quantize report's nodes (no suggestions: the settings are
/// the ones just chosen).
pub(crate) fn html_for(
    float: &onnxq_ir::Model,
    quant: &onnxq_ir::Model,
    made: &onnxq_quant::Report,
    a: &crate::args::QuantizeArgs,
) -> Result<String> {
    let prepared = onnxq_debug::prepare(float, quant).map_err(debug_error)?;
    let samples = open_samples(float, &a.calib.data)?;
    let backend = Backend::choose(a.calib.engine, a.calib.ort_lib.as_deref())?;
    let mut fe = backend.load(&prepared.float_augmented, a.calib.threads)?;
    let mut qe = backend.load(&prepared.quant_augmented, a.calib.threads)?;
    let bar = Progress::new("comparing for --html", samples.len(), "samples");
    let (mut report, _) = onnxq_debug::compare(
        &prepared,
        &mut *fe,
        &mut *qe,
        &samples,
        Options::default(),
        |d| bar.set(d),
    )
    .map_err(debug_error)?;
    report.float_model = a.model.display().to_string();
    report.quant_model = a.output.display().to_string();
    if let Some(q) = &mut report.quantization {
        q.nodes = made
            .nodes
            .iter()
            .map(|e| {
                let (status, detail) = match &e.outcome {
                    onnxq_quant::report::Outcome::Quantized { pattern } => ("quantized", pattern),
                    onnxq_quant::report::Outcome::Skipped { reason } => ("skipped", reason),
                };
                onnxq_debug::report::NodeOutcome {
                    node: e.node.clone(),
                    op_type: e.op_type.clone(),
                    status: status.into(),
                    detail: detail.clone(),
                }
            })
            .collect();
    }
    Ok(onnxq_debug::html::render(&report))
}

/// The JSON and HTML files, renamed into place together.
fn write_reports(report: &Report, a: &CompareArgs) -> Result<()> {
    let mut outputs = Outputs::default();
    if let Some(p) = &a.json {
        let json = serde_json::to_string_pretty(report)? + "\n";
        outputs.file("JSON report", p, json.as_bytes())?;
    }
    if let Some(p) = &a.html {
        outputs.file(
            "HTML report",
            p,
            onnxq_debug::html::render(report).as_bytes(),
        )?;
    }
    outputs.commit()
}

/// `onnxq-debug`'s errors with their hints.
pub(crate) fn debug_error(e: onnxq_debug::Error) -> anyhow::Error {
    match e {
        onnxq_debug::Error::Mismatch { message, hint } => fail(message, hint),
        onnxq_debug::Error::Engine(e) => crate::engine::hint_engine_errors(e.into()),
        other => other.into(),
    }
}

/// The text summary on stdout: outputs, where error starts, the worst tensors.
fn print_summary(r: &Report) -> Result<()> {
    let mut o = std::io::stdout().lock();
    writeln!(
        o,
        "{} ({}) vs {}: {} samples on {}",
        r.quant_model, r.format, r.float_model, r.samples, r.engine
    )?;
    writeln!(
        o,
        "matched {} weights, {} activations",
        r.weights.len(),
        r.activations.len()
    )?;
    for out in &r.outputs {
        let top1 = out
            .top1_agreement
            .map_or(String::new(), |t| format!(", top-1 agreement {t:.4}"));
        writeln!(
            o,
            "output {}: SQNR {:.2} dB, cosine {:.6}, max |diff| {:.4e}{top1}",
            out.name, out.sqnr_db, out.cosine, out.max_abs_err
        )?;
    }
    match &r.ranking.first_drop {
        Some(d) => writeln!(
            o,
            "error starts at `{}` (node {}): {:.2} dB, {:.1} dB below its inputs",
            d.name,
            d.node.as_deref().unwrap_or("-"),
            d.sqnr_db,
            d.drop_db.unwrap_or(0.0)
        )?,
        None => writeln!(
            o,
            "no tensor drops more than {} dB below its inputs",
            r.ranking.threshold_db
        )?,
    }
    writeln!(o, "worst {}:", r.ranking.worst.len())?;
    for w in &r.ranking.worst {
        writeln!(
            o,
            "  {:>8.2} dB  {:<10} {}  (node {})",
            w.sqnr_db,
            w.kind,
            w.name,
            w.node.as_deref().unwrap_or("-")
        )?;
    }
    for s in &r.suggestions {
        writeln!(
            o,
            "exclude {}: output SQNR {:.2} -> {:.2} dB",
            s.exclude.join(","),
            s.output_sqnr_db.before,
            s.output_sqnr_db.after
        )?;
    }
    if let Some(b) = &r.best {
        writeln!(
            o,
            "best: {}  (output SQNR {:.2} -> {:.2} dB; config: {})",
            b.flag, b.output_sqnr_db.before, b.output_sqnr_db.after, b.config
        )?;
    }
    for n in &r.notes {
        note(n);
    }
    Ok(())
}
