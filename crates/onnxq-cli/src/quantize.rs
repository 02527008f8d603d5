//! `onnxq quantize`: resolve flags and config into options, quantize, save, report.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use onnxq_ir::{Layout, load, save};
use onnxq_quant::numerics::QuantType;
use onnxq_quant::report::Outcome;
use onnxq_quant::{DynamicOptions, Report, quantize_dynamic};

use crate::args::{Mode, QuantizeArgs, WeightType};
use crate::util::{check_output, human_bytes, note};

pub(crate) fn run(a: &QuantizeArgs) -> Result<()> {
    let cfg = match &a.config {
        Some(p) => crate::config::load(p)?,
        None => crate::config::Config::default(),
    };
    let Mode::Dynamic = a.mode.or(cfg.mode).unwrap_or(Mode::Dynamic);
    let weight_type = match a
        .weight_type
        .or(cfg.weight_type)
        .unwrap_or(WeightType::Int8)
    {
        WeightType::Int8 => QuantType::I8,
        WeightType::Uint8 => QuantType::U8,
    };
    let pick = |flag: &Vec<String>, file: &Option<Vec<String>>| {
        if flag.is_empty() {
            file.clone().unwrap_or_default()
        } else {
            flag.clone()
        }
    };
    let x = &cfg.extra_options;
    let opts = DynamicOptions {
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
    };

    let mut model = load(&a.model)?;
    check_output(&a.model, &a.output)?;
    let report = quantize_dynamic(&mut model, &opts)?;
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
