//! The summary `quantize` prints: what was quantized, what was skipped and why, warnings.

use std::collections::BTreeMap;

use onnxq_quant::Report;
use onnxq_quant::report::Outcome;

/// Below this weight SQNR the summary warns: per-tensor 8-bit weights normally reach 30-45 dB.
const LOW_SQNR_DB: f64 = 20.0;

/// "quantized 36 of 55 candidate nodes: MatMulInteger 36" plus skip reasons grouped by op type.
pub(super) fn summary(r: &Report) -> String {
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
