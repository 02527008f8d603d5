//! `onnxq quantize`: resolve flags and config into options, quantize, save, report.

mod options;

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use onnxq_ir::{Layout, load, save};
use onnxq_quant::qdq::Ranges;
use onnxq_quant::report::Outcome;
use onnxq_quant::{Report, lower_qoperator, quantize_dynamic, quantize_qdq};

use crate::args::{CalibMethod, Format, Mode, QuantizeArgs};
use crate::config::Config;
use crate::util::{check_output, human_bytes, note};

pub(crate) fn run(a: &QuantizeArgs) -> Result<()> {
    let options::Resolved {
        args,
        cfg,
        mode,
        mut notes,
    } = options::resolve(a)?;
    let a = &args;
    let mut model = load(&a.model)?;
    check_output(&a.model, &a.output)?;
    notes.extend(options::check_op_types(&model, mode, &a.op_types)?);
    let report = match mode {
        Mode::Dynamic => quantize_dynamic(&mut model, &options::dynamic_options(a, &cfg)?)?,
        Mode::Static => {
            let format = a.format.unwrap_or(Format::Qdq);
            let opts = options::static_options(a, &cfg)?;
            onnxq_quant::overrides::validate(&model.graph, &opts)?;
            let (ranges, unranged) = static_ranges(a, &cfg, &model, &opts)?;
            let mut report = quantize_qdq(&mut model, &ranges, &opts)?;
            report.notes.extend(unranged);
            if format == Format::Qoperator {
                lower_qoperator(&mut model, &mut report)?;
            }
            report
        }
    };
    let layout = if model.external_files().is_empty() {
        Layout::Inline
    } else {
        let name = a
            .output
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Layout::External {
            location: format!("{name}.data"),
            threshold: onnxq_ir::DEFAULT_THRESHOLD,
        }
    };
    let saved = save(&model, &a.output, &layout)
        .with_context(|| format!("cannot write `{}`", a.output.display()))?;
    if let Some(path) = &a.report {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json + "\n")
            .with_context(|| format!("cannot write report `{}`", path.display()))?;
    }
    for n in &notes {
        note(n);
    }
    note(&summary(&report));
    let mut msg = format!(
        "wrote {} ({})",
        a.output.display(),
        human_bytes(saved.model_bytes)
    );
    if let Some(loc) = &saved.data_location {
        msg += &format!(" + {loc} ({})", human_bytes(saved.data_bytes));
    }
    note(&msg);
    Ok(())
}

/// The activation ranges: read from `--ranges`, or calibrated here from `--data`; and a note
/// naming the tensors quantization reads that calibration gave no range, with the reason (they
/// stay float unless an override or their op's rule fixes their parameters).
fn static_ranges(
    a: &QuantizeArgs,
    cfg: &Config,
    model: &onnxq_ir::Model,
    opts: &onnxq_quant::StaticOptions,
) -> Result<(Ranges, Option<String>)> {
    // Only the tensors quantization reads are calibrated from `--data`; the note names the same
    // ones from a full file.
    let targets = onnxq_quant::qdq::calibration_targets(model, opts);
    let ranges = match &a.ranges {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read ranges `{}`", path.display()))?;
            onnxq_calib::Ranges::from_json(&text)
                .map_err(|e| anyhow::anyhow!("ranges `{}`: {e}", path.display()))?
        }
        None => {
            anyhow::ensure!(
                !a.calib.data.is_empty(),
                "static quantization needs activation ranges: give --data (calibration samples) \
                 or --ranges (a file from `onnxq calibrate`)"
            );
            let x = &cfg.extra_options;
            let mut c = a.calib.clone();
            c.method = c.method.or(cfg.method).or(Some(CalibMethod::Minmax));
            c.symmetric = c.symmetric.or(x.calib_symmetric);
            c.moving_average |= x.calib_moving_average.unwrap_or(false);
            if let Some(p) = x.calib_percentile {
                c.percentile = p;
            }
            crate::calibrate::calibrate(model, &c, Some(&targets))?
        }
    };
    let known = ranges
        .tensors
        .keys()
        .filter(|t| model.graph.value_by_name(t).is_some())
        .count();
    anyhow::ensure!(
        known > 0 || ranges.tensors.is_empty(),
        "none of the {} tensors in the ranges names a tensor of this model; calibrate this model",
        ranges.tensors.len()
    );
    let note = unranged_note(&ranges.skipped, &targets);
    let ranges = ranges
        .tensors
        .iter()
        .map(|(k, r)| (k.clone(), (r.min, r.max)))
        .collect();
    Ok((ranges, note))
}

/// The note naming the tensors of `targets` calibration gave no range (`skipped`), grouped by
/// reason, with three names and three reasons at most: the note stays one line.
fn unranged_note(
    skipped: &BTreeMap<String, String>,
    targets: &std::collections::BTreeSet<String>,
) -> Option<String> {
    let mut unranged: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, reason) in skipped {
        if targets.contains(name) {
            unranged.entry(reason).or_default().push(name);
        }
    }
    let total: usize = unranged.values().map(Vec::len).sum();
    (total > 0).then(|| {
        let groups: Vec<String> = unranged
            .iter()
            .take(3)
            .map(|(reason, names)| {
                let more = if names.len() > 3 { ", ..." } else { "" };
                format!(
                    "{}{more} ({reason})",
                    names[..names.len().min(3)].join(", ")
                )
            })
            .collect();
        format!(
            "calibration gave {total} tensor(s) no range: {}{}",
            groups.join("; "),
            if unranged.len() > 3 { "; ..." } else { "" }
        )
    })
}

/// Below this weight SQNR the summary warns: per-tensor 8-bit weights normally reach 30-45 dB.
const LOW_SQNR_DB: f64 = 20.0;

/// "quantized 36 of 55 candidate nodes: MatMulInteger 36" plus skip reasons grouped by op type.
fn summary(r: &Report) -> String {
    let mut patterns: BTreeMap<&str, usize> = BTreeMap::new();
    let mut skips: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
    for e in &r.nodes {
        match &e.outcome {
            Outcome::Quantized { pattern } => *patterns.entry(pattern).or_default() += 1,
            Outcome::Skipped { reason } => {
                skips.entry((&e.op_type, reason)).or_default().push(&e.node)
            }
        }
    }
    let done: Vec<String> = patterns.iter().map(|(p, n)| format!("{p} {n}")).collect();
    let mut s = format!(
        "quantized {} of {} candidate nodes",
        r.quantized(),
        r.nodes.len()
    );
    if !done.is_empty() {
        s += &format!(" ({})", done.join(", "));
    }
    if r.opset.0 != r.opset.1 {
        s += &format!("; opset raised from {} to {}", r.opset.0, r.opset.1);
    }
    if let Some((e, db)) = r.worst_weight() {
        s += &format!(
            "\n  lowest weight SQNR {db:.1} dB at {} ({})",
            e.node, e.op_type
        );
        if db < LOW_SQNR_DB {
            s += &format!(
                "\nwarning: weights quantized below {LOW_SQNR_DB} dB SQNR lose much of their information; \
                 try --per-channel{}",
                if r.nodes
                    .iter()
                    .any(|e| e.op_type == "Conv"
                        && e.weight_sqnr_db.is_some_and(|d| d < LOW_SQNR_DB))
                {
                    " --conv-per-channel"
                } else {
                    ""
                }
            );
        }
    }
    for n in &r.notes {
        s += &format!("\n  note: {n}");
    }
    for ((op, reason), nodes) in &skips {
        let first: Vec<&str> = nodes.iter().take(3).copied().collect();
        let more = if nodes.len() > 3 {
            format!(", ... ({} in all)", nodes.len())
        } else {
            String::new()
        };
        s += &format!("\n  skipped {op} {}{more}: {reason}", first.join(", "));
    }
    s
}
