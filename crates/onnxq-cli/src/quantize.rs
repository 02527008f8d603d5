//! `onnxq quantize`: resolve flags and config into options, quantize, save, report.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use onnxq_ir::{Layout, load, save};
use onnxq_quant::numerics::QuantType;
use onnxq_quant::qdq::Ranges;
use onnxq_quant::report::Outcome;
use onnxq_quant::{
    DynamicOptions, Report, StaticOptions, lower_qoperator, quantize_dynamic, quantize_qdq,
};

use crate::args::{CalibMethod, Format, Mode, QType, QuantizeArgs};
use crate::config::Config;
use crate::util::{check_output, human_bytes, note};

pub(crate) fn run(a: &QuantizeArgs) -> Result<()> {
    let cfg = crate::config::load(a.config.as_deref(), &a.extra)?;
    let mode = a.mode.or(cfg.mode).unwrap_or(Mode::Dynamic);
    let mut model = load(&a.model)?;
    check_output(&a.model, &a.output)?;
    let report = match mode {
        Mode::Dynamic => quantize_dynamic(&mut model, &dynamic_options(a, &cfg)?)?,
        Mode::Static => {
            let format = a.format.or(cfg.format).unwrap_or(Format::Qdq);
            let mut opts = static_options(a, &cfg)?;
            opts.qoperator = format == Format::Qoperator;
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

fn qtype(t: QType) -> QuantType {
    match t {
        QType::Int8 => QuantType::I8,
        QType::Uint8 => QuantType::U8,
        QType::Int16 => QuantType::I16,
        QType::Uint16 => QuantType::U16,
        QType::Int4 => QuantType::I4,
        QType::Uint4 => QuantType::U4,
    }
}

/// A list flag if given, else the config's list.
fn pick(flag: &[String], file: &Option<Vec<String>>) -> Vec<String> {
    if flag.is_empty() {
        file.clone().unwrap_or_default()
    } else {
        flag.to_vec()
    }
}

fn dynamic_options(a: &QuantizeArgs, cfg: &Config) -> Result<DynamicOptions> {
    let weight_type = qtype(a.weight_type.or(cfg.weight_type).unwrap_or(QType::Int8));
    anyhow::ensure!(
        matches!(weight_type, QuantType::I8 | QuantType::U8),
        "dynamic quantization takes int8 or uint8 weights (ONNX Runtime's integer kernels)"
    );
    anyhow::ensure!(
        a.overrides.is_none() && cfg.extra_options.tensor_quant_overrides.is_none(),
        "tensor overrides are for --mode static"
    );
    anyhow::ensure!(
        a.activation_type.or(cfg.activation_type).is_none(),
        "--activation-type is for --mode static; dynamic activations are uint8, chosen at run time"
    );
    let x = &cfg.extra_options;
    Ok(DynamicOptions {
        weight_type,
        per_channel: a.per_channel || cfg.per_channel.unwrap_or(false),
        reduce_range: a.reduce_range || cfg.reduce_range.unwrap_or(false),
        op_types: pick(&a.op_types, &cfg.op_types),
        include: pick(&a.include, &cfg.include),
        exclude: pick(&a.exclude, &cfg.exclude),
        matmul_const_b_only: !a.dynamic_b && x.matmul_const_b_only.unwrap_or(true),
        enable_subgraph: a.enable_subgraph || x.enable_subgraph.unwrap_or(false),
        weight_symmetric: x.weight_symmetric,
        conv_per_channel: a.conv_per_channel || cfg.conv_per_channel.unwrap_or(false),
    })
}

fn static_options(a: &QuantizeArgs, cfg: &Config) -> Result<StaticOptions> {
    anyhow::ensure!(
        !a.conv_per_channel && !a.dynamic_b && !a.enable_subgraph,
        "--conv-per-channel, --dynamic-b and --enable-subgraph are dynamic-mode options"
    );
    let x = &cfg.extra_options;
    let activation_type = qtype(
        a.activation_type
            .or(cfg.activation_type)
            .unwrap_or(QType::Int8),
    );
    anyhow::ensure!(
        activation_type.storage_bits() != 4,
        "4-bit activations are not supported; 4-bit types are for weights"
    );
    let weight_type = qtype(a.weight_type.or(cfg.weight_type).unwrap_or(QType::Int8));
    anyhow::ensure!(
        !(activation_type == QuantType::I8 && weight_type == QuantType::U8),
        "int8 activations with uint8 weights is not a combination ONNX Runtime has kernels for \
         (its tool refuses it too); use int8 weights"
    );
    let d = StaticOptions::default();
    Ok(StaticOptions {
        activation_type,
        weight_type,
        per_channel: a.per_channel || cfg.per_channel.unwrap_or(false),
        reduce_range: a.reduce_range || cfg.reduce_range.unwrap_or(false),
        op_types: pick(&a.op_types, &cfg.op_types),
        include: pick(&a.include, &cfg.include),
        exclude: pick(&a.exclude, &cfg.exclude),
        activation_symmetric: x.activation_symmetric.unwrap_or(d.activation_symmetric),
        weight_symmetric: x.weight_symmetric,
        quantize_bias: x.quantize_bias.unwrap_or(d.quantize_bias),
        keep_removable_activations: x
            .keep_removable_activations
            .unwrap_or(d.keep_removable_activations),
        disable_weight_adjust: x.disable_weight_adjust.unwrap_or(d.disable_weight_adjust),
        force_quantize_no_input_check: x
            .force_quantize_no_input_check
            .unwrap_or(d.force_quantize_no_input_check),
        exclude_output_quantization: x.exclude_output_quantization.clone().unwrap_or_default(),
        contrib_ops: x.contrib_ops.unwrap_or(d.contrib_ops),
        dedicated_qdq_pair: x.dedicated_qdq_pair.unwrap_or(d.dedicated_qdq_pair),
        qoperator: false,
        min_real_range: x.min_real_range,
        restricted_asymmetric: x.restricted_asymmetric.unwrap_or(false),
        overrides: match &a.overrides {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read overrides `{}`", path.display()))?;
                serde_json::from_str(&text)
                    .with_context(|| format!("overrides `{}`", path.display()))?
            }
            None => x.tensor_quant_overrides.clone().unwrap_or_default(),
        },
    })
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
