//! The summary `quantize` prints: what was quantized, how the ranges were calibrated, what was
//! skipped and why, then the warnings, last, so they are the lines a user sees.

use std::collections::BTreeMap;

use onnxq_quant::Report;
use onnxq_quant::report::{Entry, Outcome};

use crate::util::{Verbosity, note, verbosity, warn};

/// Below this weight SQNR the summary warns: per-tensor 8-bit weights normally reach 30-45 dB.
const LOW_SQNR_DB: f64 = 20.0;

/// Below this the weight's values collapse onto a few codes (15 dB: quantization noise of about a
/// sixth of the signal's RMS): the threshold for "this will likely ruin accuracy".
const COLLAPSE_DB: f64 = 15.0;

/// Skipped node names shown per reason without `-v`.
const SHOWN: usize = 3;

/// Prints the summary (not with `-q`); returns the warnings, which the caller prints last with
/// [`print_warnings`].
pub(super) fn print(r: &Report) -> Vec<String> {
    note(&summary(r, verbosity() == Verbosity::Verbose));
    warnings(r)
}

/// Prints `warnings`, even with `-q`.
pub(super) fn print_warnings(warnings: &[String]) {
    for w in warnings {
        warn(w);
    }
}

/// "quantized 36 of 55 candidate nodes (MatMulInteger 36)", the calibration, the lowest weight
/// SQNR, the notes, and the skip reasons grouped by op type (every node named when `all`).
fn summary(r: &Report, all: bool) -> String {
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
    if let Some(c) = &r.calibration {
        s += &format!("\n  {c}");
    }
    if let Some(e) = &r.equalization {
        s += &format!(
            "\n  cross-layer equalization: {} layer pair(s) rescaled in {} sweep(s), {} bias(es) \
             absorbed, {} Clip(s) made Relu",
            e.pairs, e.sweeps, e.absorbed, e.clips_made_relu
        );
        if !e.skipped.is_empty() {
            s += &format!("; {} candidate(s) not equalized", e.skipped.len());
        }
        for (node, why) in e.skipped.iter().take(if all { usize::MAX } else { 1 }) {
            s += &format!("\n    not equalized {node}: {why}");
        }
    }
    if let Some(sm) = &r.smoothing {
        s += &smoothing_lines(sm, all);
    }
    if let Some(sr) = &r.search {
        s += &search_lines(sr, all);
    }
    if let Some(b) = &r.bias_correction {
        s += &format!(
            "\n  bias correction: {} layer(s) corrected, largest shift {:.2} % of its channel's \
             range",
            b.corrected,
            100.0 * b.largest_relative_shift
        );
        for (node, why) in b.skipped.iter().take(if all { usize::MAX } else { 1 }) {
            s += &format!("\n    not corrected {node}: {why}");
        }
        if !all && b.skipped.len() > 1 {
            s += &format!(" (and {} more; --report lists all)", b.skipped.len() - 1);
        }
    }
    if let Some((e, db)) = r.worst_weight() {
        s += &format!(
            "\n  lowest weight SQNR {db:.1} dB at {} ({})",
            e.node, e.op_type
        );
    }
    for n in &r.notes {
        s += &format!("\n  note: {n}");
    }
    for ((op, reason), nodes) in &skips {
        let shown = if all { nodes.len() } else { SHOWN };
        let first: Vec<&str> = nodes.iter().take(shown).copied().collect();
        let more = if nodes.len() > shown {
            format!(", ... ({} in all; -v names them all)", nodes.len())
        } else {
            String::new()
        };
        s += &format!("\n  skipped {op} {}{more}: {reason}", first.join(", "));
    }
    s
}

/// "SmoothQuant: 12 activations smoothed (8 folded, 4 through a float Mul); 2 nodes skipped",
/// then (with `all`) one line per activation and per skipped node.
fn smoothing_lines(sm: &onnxq_quant::SmoothReport, all: bool) -> String {
    let muls = sm.inserted.len();
    let mut s = format!(
        "\n  SmoothQuant: {} activation(s) smoothed ({} folded into their producer, {muls} \
         through an inserted Mul kept float)",
        sm.smoothed.len(),
        sm.smoothed.len() - muls
    );
    if !sm.skipped.is_empty() {
        s += &format!("; {} candidate node(s) not smoothed", sm.skipped.len());
        if !all {
            s += " (-v says why)";
        }
    }
    if all {
        for x in &sm.smoothed {
            let (lo, hi) = x.scale_range;
            s += &format!(
                "\n    smoothed `{}` for {} (s in [{lo:.3e}, {hi:.3e}]): 1/s {}",
                x.tensor,
                x.consumers.join(", "),
                x.inverse
            );
        }
        for (node, why) in &sm.skipped {
            s += &format!("\n    not smoothed {node}: {why}");
        }
    }
    s
}

/// The warnings: weights that lost most of their information, then the report's own.
fn warnings(r: &Report) -> Vec<String> {
    let mut out = Vec::new();
    let low = |limit: f64| -> Vec<&Entry> {
        r.nodes
            .iter()
            .filter(|e| e.weight_sqnr_db.is_some_and(|d| d < limit))
            .collect()
    };
    let collapsed = low(COLLAPSE_DB);
    if let Some((e, db)) = r.worst_weight().filter(|(_, db)| *db < LOW_SQNR_DB) {
        let at = names(&low(LOW_SQNR_DB));
        out.push(if collapsed.is_empty() {
            format!(
                "weights quantized below {LOW_SQNR_DB} dB SQNR lose much of their information \
                 (lowest {db:.1} dB at {}): {at}; try {}",
                e.node,
                remedy(r, &low(LOW_SQNR_DB))
            )
        } else {
            format!(
                "the quantized weights of {} collapsed (SQNR below {COLLAPSE_DB} dB, lowest \
                 {db:.1} dB at {}): this will likely ruin accuracy; try {}",
                names(&collapsed),
                e.node,
                remedy(r, &collapsed)
            )
        });
    }
    out.extend(r.warnings.iter().cloned());
    out
}

/// Up to three node names, then how many in all.
fn names(entries: &[&Entry]) -> String {
    let first: Vec<&str> = entries
        .iter()
        .take(SHOWN)
        .map(|e| e.node.as_str())
        .collect();
    if entries.len() > SHOWN {
        format!("{}, ... ({} nodes)", first.join(", "), entries.len())
    } else {
        first.join(", ")
    }
}

/// What to try for the weights of `low`: per-channel quantization (in dynamic mode Conv weights
/// need `--conv-per-channel` too), or leaving the nodes float.
fn remedy(r: &Report, low: &[&Entry]) -> String {
    let conv = r.mode == "dynamic" && low.iter().any(|e| e.op_type == "Conv");
    format!(
        "--per-channel{}, or keep those nodes float with --exclude",
        if conv { " --conv-per-channel" } else { "" },
    )
}

/// `--auto`'s decisions: the chosen candidate, then (all) every candidate measured.
fn search_lines(sr: &onnxq_quant::SearchReport, all: bool) -> String {
    let row = |d: &onnxq_quant::Decision| {
        let float = if d.excluded.is_empty() {
            String::new()
        } else {
            format!(" + {} float", d.excluded.join(", "))
        };
        let float = if d.sixteen_bit.is_empty() {
            float
        } else {
            format!("{float} + {} at 16 bits", d.sixteen_bit.join(", "))
        };
        let metric = d.metric.map_or(String::new(), |v| format!("metric {v}, "));
        format!(
            "{}{float}: {metric}cos {:.4}, SQNR {:.1} dB, {}, {:.0} % of Conv/MatMul/Gemm float",
            d.config,
            d.cosine,
            d.sqnr_db,
            d.speedup.map_or("not timed".into(), |x| format!(
                "{x:.2}× the float model's speed"
            )),
            100.0 * d.float_share
        )
    };
    let mut s = format!(
        "\n  --auto: {} candidate(s) judged on {} held-out sample(s) (calibrated on {}) in {:.0} s; \
         target {} {}",
        sr.decisions.len(),
        sr.held_out,
        sr.calibrated_on,
        sr.seconds,
        sr.target,
        if sr.met { "met" } else { "NOT met" }
    );
    if let Some(d) = sr.decisions.iter().find(|d| d.chosen) {
        s += &format!("\n    chosen: {}", row(d));
    }
    if all {
        for d in sr.decisions.iter().filter(|d| !d.chosen) {
            s += &format!("\n    tried:  {}", row(d));
        }
    } else {
        s += "\n    (-v lists every candidate; --report has them all)";
    }
    s
}
