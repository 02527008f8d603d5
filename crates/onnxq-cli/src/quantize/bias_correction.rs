//! `--bias-correction`: once the static model is made, each quantized Conv / Gemm / MatMul's
//! own weight error is measured on the samples: the quantized model runs once with a probe per
//! layer (its op on its quantized input with the weight error `W − Ŵ`, see `onnxq-quant`'s
//! `bias_correction.rs`), each probe's per-channel mean is added to the float model's bias, and
//! the float model is quantized again with the same ranges.

use std::collections::BTreeMap;

use anyhow::Result;
use onnxq_calib::channel_stats::{ChannelAxis, ChannelTarget};
use onnxq_ir::Model;
use onnxq_quant::qdq::Ranges;
use onnxq_quant::{BiasCorrectionReport, Report, StaticOptions};

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
    let quantized: std::collections::BTreeSet<&str> =
        report.quantized_nodes().map(|e| e.node.as_str()).collect();
    let (targets, mut skipped) =
        onnxq_quant::bias_correction_targets(float, &|n| quantized.contains(n.name()));
    let probed = onnxq_quant::bias_probes(float, quant, &targets)?;
    skipped.extend(probed.skipped);
    // Each probe's mean, and the layer's own output for the shift's size in the summary.
    let mut wanted = Vec::new();
    for p in &probed.probes {
        let t = &targets[p.target];
        let axis = if t.conv {
            ChannelAxis::One
        } else {
            ChannelAxis::Last
        };
        for tensor in [&p.probe, &p.output] {
            wanted.push(ChannelTarget {
                tensor: tensor.clone(),
                axis,
                channels: t.channels,
            });
        }
    }
    let stats = super::channels::ranges(&probed.model, calib, &wanted, "bias correction")?;
    let mut shifts = BTreeMap::new();
    let mut largest = 0.0f64;
    for p in &probed.probes {
        let (Some(shift), Some(out)) = (stats.get(&p.probe), stats.get(&p.output)) else {
            continue;
        };
        for ((s, lo), hi) in shift.mean.iter().zip(&out.min).zip(&out.max) {
            let size = f64::from(lo.abs().max(hi.abs()));
            if size > 0.0 && s.is_finite() {
                largest = largest.max(s.abs() / size);
            }
        }
        shifts.insert(targets[p.target].node.clone(), shift.mean.clone());
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
