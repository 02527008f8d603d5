//! `--equalize`: cross-layer equalization before static calibration (and before SmoothQuant),
//! then bias absorption from the head outputs' per-channel minima on the samples. With `relu6`
//! the Clips made Relus change the float model: the rewritten model is compared with the input
//! on the samples and the summary says by how much.

use anyhow::Result;
use onnxq_calib::channel_stats::{ChannelAxis, ChannelTarget};
use onnxq_ir::Model;
use onnxq_quant::{EqualizeOptions, EqualizeReport, StaticOptions};

use crate::args::{CalibSettings, QuantizeArgs};
use crate::recovery_args::EqualizeMode;

/// Samples the float change of `relu6` is measured on.
const MEASURED_SAMPLES: usize = 64;

/// Equalization's options from the flags (and config); `None` when it is off.
pub(super) fn options(a: &QuantizeArgs, opts: &StaticOptions) -> Option<EqualizeOptions> {
    a.recovery.equalize.map(|mode| EqualizeOptions {
        relu6: mode == EqualizeMode::Relu6,
        op_types: opts.op_types.clone(),
        include: opts.include.clone(),
        exclude: opts.exclude.clone(),
    })
}

/// Equalizes `model`, absorbs biases on the samples of `calib`; with Clips made Relus, notes
/// how far the float model moved.
pub(crate) fn equalize(
    model: &mut Model,
    calib: &CalibSettings,
    eq: &EqualizeOptions,
) -> Result<(EqualizeReport, Option<String>)> {
    let plan = onnxq_quant::plan_equalization(model, eq);
    let original = (eq.relu6 && !plan.is_empty()).then(|| model.clone());
    let mut report = onnxq_quant::apply_equalization(model, &plan)?;
    let targets: Vec<ChannelTarget> = plan
        .absorption_targets(&model.graph)
        .into_iter()
        .map(|(tensor, conv, channels)| ChannelTarget {
            tensor,
            axis: if conv {
                ChannelAxis::One
            } else {
                ChannelAxis::Last
            },
            channels,
        })
        .collect();
    if !targets.is_empty() {
        let mins = super::channels::ranges(model, calib, &targets, "bias absorption statistics")?
            .into_iter()
            .map(|(k, r)| (k, r.min))
            .collect();
        onnxq_quant::absorb_biases(model, &plan, &mins, &mut report)?;
    }
    let note = match original {
        Some(orig) if report.clips_made_relu > 0 => Some(float_change(&orig, model, calib)?),
        _ => None,
    };
    Ok((report, note))
}

/// How far the rewritten float model's outputs are from the input model's on the samples.
fn float_change(original: &Model, rewritten: &Model, calib: &CalibSettings) -> Result<String> {
    let backend = crate::engine::Backend::choose(calib.engine, calib.ort_lib.as_deref())?;
    let mut samples = crate::calibrate::calib_samples(original, calib)?;
    samples.truncate(MEASURED_SAMPLES);
    let mut fe = backend.load(original, calib.threads)?;
    let outputs = crate::measure::shared_outputs(original, rewritten);
    let g = crate::measure::agreement(
        rewritten,
        &mut *fe,
        &backend,
        &samples,
        &outputs,
        calib.threads,
    )?;
    let top1 = g
        .top1
        .map_or_else(String::new, |t| format!(", top-1 agreement {t:.4}"));
    Ok(format!(
        "--equalize relu6 changed the float model (Clips made Relus): its outputs against the \
         input model's on {} samples: SQNR {:.1} dB, cosine {:.5}{top1}",
        samples.len(),
        g.sqnr_db,
        g.cosine
    ))
}
