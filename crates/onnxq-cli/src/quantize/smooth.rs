//! `--smooth-quant`: SmoothQuant before static calibration. The pass plans which activations to
//! smooth, the engine runs the float model on the samples once to collect each one's
//! per-channel `max |x|` (streamed: memory holds one sample's tensors), then the pass rewrites
//! the model; the Muls it inserts are kept float, as ONNX Runtime's tool excludes them.

use anyhow::Result;
use onnxq_calib::channel_max::{ChannelAxis, ChannelMaxes, ChannelTarget};
use onnxq_ir::{Def, Model};
use onnxq_quant::smooth::Axis;
use onnxq_quant::{SmoothOptions, SmoothReport, StaticOptions};

use crate::args::{CalibSettings, QuantizeArgs};
use crate::engine::Backend;
use crate::util::{Progress, fail};

/// SmoothQuant's options from the flags (and config), `None` when it is off; α or folding
/// without SmoothQuant is an error (no option is ignored).
pub(super) fn options(a: &QuantizeArgs, opts: &StaticOptions) -> Result<Option<SmoothOptions>> {
    let r = &a.recovery;
    if !r.smooth_quant {
        if r.rewritten.is_some() {
            return Err(fail(
                "--rewritten writes the float model as the accuracy-recovery rewrites leave it, \
                 and none was asked for",
                "add --smooth-quant, or drop --rewritten",
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
    let x_max = channel_maxes(model, calib, &targets)?;
    let report = onnxq_quant::apply_smoothing(model, &plan, &x_max, sq)?;
    opts.exclude.extend(report.inserted.iter().cloned());
    Ok(report)
}

/// Each target's per-channel `max |x|` over the samples: graph inputs from the feeds, the rest
/// from one engine run per sample of the model with those tensors as outputs.
fn channel_maxes(
    model: &Model,
    calib: &CalibSettings,
    targets: &[ChannelTarget],
) -> Result<std::collections::BTreeMap<String, Vec<f32>>> {
    let mut maxes = ChannelMaxes::new(targets);
    if targets.is_empty() {
        return Ok(maxes.finish());
    }
    let samples = crate::calibrate::open_samples(model, &calib.data)?;
    let g = &model.graph;
    let outputs: Vec<String> = targets
        .iter()
        .filter(|t| {
            g.value_by_name(&t.tensor)
                .is_some_and(|v| matches!(g.value(v).def(), Def::Node { .. }))
        })
        .map(|t| t.tensor.clone())
        .collect();
    let mut engine = if outputs.is_empty() {
        None
    } else {
        let backend = Backend::choose(calib.engine, calib.ort_lib.as_deref())?;
        let augmented = onnxq_calib::augmented(model, &outputs)?;
        Some(backend.load(&augmented, calib.threads)?)
    };
    let bar = Progress::new("SmoothQuant statistics", samples.len(), "samples");
    samples.each(|i, sample| {
        maxes.add_feeds(&sample)?;
        if let Some(e) = engine.as_mut() {
            let mut first_error = None;
            e.run_each(&sample, &mut |name, dims, data| {
                if first_error.is_none()
                    && let Err(err) = maxes.add(name, dims, data)
                {
                    first_error = Some(err);
                }
            })
            .map_err(|e| onnxq_calib::Error::Data(format!("{e:#}")))?;
            if let Some(err) = first_error {
                return Err(err);
            }
        }
        bar.set(i + 1);
        Ok::<(), onnxq_calib::Error>(())
    })?;
    Ok(maxes.finish())
}
