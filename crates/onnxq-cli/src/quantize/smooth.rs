//! `--smooth-quant`: SmoothQuant before static calibration. The pass plans which activations to
//! smooth, the engine runs the float model on the samples once to collect each one's
//! per-channel `max |x|` (`channels.rs`), then the pass rewrites
//! the model; the Muls it inserts are kept float, as ONNX Runtime's tool excludes them.

use anyhow::Result;
use onnxq_calib::channel_stats::{ChannelAxis, ChannelTarget};
use onnxq_ir::Model;
use onnxq_quant::smooth::Axis;
use onnxq_quant::{SmoothOptions, SmoothReport, StaticOptions};

use crate::args::{CalibSettings, QuantizeArgs};
use crate::util::fail;

/// SmoothQuant's options from the flags (and config), `None` when it is off; α or folding
/// without SmoothQuant is an error (no option is ignored).
pub(super) fn options(a: &QuantizeArgs, opts: &StaticOptions) -> Result<Option<SmoothOptions>> {
    let r = &a.recovery;
    if !r.smooth_quant {
        if r.rewritten.is_some() && r.equalize.is_none() {
            return Err(fail(
                "--rewritten writes the float model as the accuracy-recovery rewrites leave it, \
                 and none was asked for",
                "add --smooth-quant or --equalize, or drop --rewritten",
            ));
        }
        if r.smooth_quant_alpha.is_some() || r.smooth_quant_folding.is_some() {
            return Err(fail(
                "SmoothQuant's alpha or folding was given, and SmoothQuant is off",
                "add --smooth-quant (ORT's SmoothQuant=True), or drop the setting",
            ));
        }
        return Ok(None);
    }
    let d = SmoothOptions::default();
    Ok(Some(SmoothOptions {
        alpha: r.smooth_quant_alpha.unwrap_or(d.alpha),
        folding: r.smooth_quant_folding.unwrap_or(d.folding),
        op_types: opts.op_types.clone(),
        include: opts.include.clone(),
        exclude: opts.exclude.clone(),
    }))
}

/// Smooths `model` on the samples of `calib`; the Muls inserted join `opts.exclude`.
pub(crate) fn smooth(
    model: &mut Model,
    calib: &CalibSettings,
    sq: &SmoothOptions,
    opts: &mut StaticOptions,
) -> Result<SmoothReport> {
    let plan = onnxq_quant::plan_smoothing(model, sq)?;
    let targets: Vec<ChannelTarget> = plan
        .targets()
        .into_iter()
        .map(|(tensor, axis, channels)| ChannelTarget {
            tensor,
            axis: match axis {
                Axis::Last => ChannelAxis::Last,
                Axis::One => ChannelAxis::One,
            },
            channels,
        })
        .collect();
    let x_max = super::channels::ranges(model, calib, &targets, "SmoothQuant statistics")?
        .into_iter()
        .map(|(k, r)| (k, r.abs_max()))
        .collect();
    let report = onnxq_quant::apply_smoothing(model, &plan, &x_max, sq)?;
    opts.exclude.extend(report.inserted.iter().cloned());
    Ok(report)
}
