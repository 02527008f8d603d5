//! `--bias-correction`: once the static model is made, each quantized Conv / Gemm / MatMul's
//! output mean per channel is measured on the samples in the float model and in the quantized
//! one (the node's output before it is quantized), the difference is added to the float model's
//! bias, and the float model is quantized again with the same ranges. One round: every layer is
//! measured with its inputs as the first quantization left them.

use std::collections::BTreeMap;

use anyhow::Result;
use onnxq_calib::channel_stats::{ChannelAxis, ChannelTarget};
use onnxq_ir::Model;
use onnxq_quant::qdq::Ranges;
use onnxq_quant::report::Outcome;
use onnxq_quant::{BiasCorrectionReport, BiasTarget, Report, StaticOptions};

use crate::args::CalibSettings;

/// Replaces `quant` (and `report`) with the quantization of the bias-corrected `float`.
pub(crate) fn correct(
    float: &Model,
    quant: &mut Model,
    report: &mut Report,
    ranges: &Ranges,
    opts: &StaticOptions,
    calib: &CalibSettings,
) -> Result<()> {
    let quantized: std::collections::BTreeSet<&str> = report
        .nodes
        .iter()
        .filter(|e| matches!(e.outcome, Outcome::Quantized { .. }))
        .map(|e| e.node.as_str())
        .collect();
    let (targets, skipped) =
        onnxq_quant::bias_correction_targets(float, &|n| quantized.contains(n.name()));
    let target = |t: &BiasTarget, tensor: String| ChannelTarget {
        tensor,
        axis: if t.conv {
            ChannelAxis::One
        } else {
            ChannelAxis::Last
        },
        channels: t.channels,
    };
    // The node of the same name in the quantized model writes the output before its Q.
    let q_tensor = |name: &str| {
        let g = &quant.graph;
        g.nodes()
            .find(|(_, n)| n.name() == name)
            .and_then(|(_, n)| n.outputs().first().copied().flatten())
            .map(|v| g.value(v).name().to_owned())
    };
    let pairs: Vec<(&BiasTarget, String)> = targets
        .iter()
        .filter_map(|t| q_tensor(&t.node).map(|q| (t, q)))
        .collect();
    let f_targets: Vec<ChannelTarget> = pairs
        .iter()
        .map(|(t, _)| target(t, t.tensor.clone()))
        .collect();
    let q_targets: Vec<ChannelTarget> = pairs.iter().map(|(t, q)| target(t, q.clone())).collect();
    let f = crate::quantize::channels::ranges(
        float,
        calib,
        &f_targets,
        "bias correction (float model)",
    )?;
    let q =
        crate::quantize::channels::ranges(quant, calib, &q_targets, "bias correction (quantized)")?;
    let mut shifts = BTreeMap::new();
    let mut largest = 0.0f64;
    for (t, qn) in &pairs {
        let (Some(fr), Some(qr)) = (f.get(&t.tensor), q.get(qn)) else {
            continue;
        };
        let shift: Vec<f64> = fr.mean.iter().zip(&qr.mean).map(|(a, b)| a - b).collect();
        // Relative to the channel's magnitude on the data, for the summary.
        for ((s, lo), hi) in shift.iter().zip(&fr.min).zip(&fr.max) {
            let scale = f64::from(lo.abs().max(hi.abs()));
            if scale > 0.0 && s.is_finite() {
                largest = largest.max(s.abs() / scale);
            }
        }
        shifts.insert(t.node.clone(), shift);
    }
    let mut corrected = float.clone();
    let n = onnxq_quant::correct_biases(&mut corrected, &shifts)?;
    let mut again = onnxq_quant::quantize_qdq(&mut corrected, ranges, opts)?;
    again.bias_correction = Some(BiasCorrectionReport {
        corrected: n,
        largest_relative_shift: largest,
        skipped,
    });
    *quant = corrected;
    *report = again;
    Ok(())
}
