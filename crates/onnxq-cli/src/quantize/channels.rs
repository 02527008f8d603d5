//! Per-channel activation ranges on the calibration samples, for the rewrites that rescale
//! channels (SmoothQuant, bias absorption): one run of the model per sample with the wanted
//! tensors as extra outputs, only running per-channel minima and maxima kept (memory holds one
//! sample's tensors, whatever the number of samples). The per-sample loop is shared with GPTQ
//! rounding's Hessians (`rounding.rs`).

use std::collections::BTreeMap;

use anyhow::Result;
use onnxq_calib::channel_stats::{ChannelRange, ChannelStats, ChannelTarget};
use onnxq_engine::{DataRef, Tensor};
use onnxq_ir::{Def, Model};

use crate::args::CalibSettings;
use crate::engine::Backend;
use crate::util::Progress;

/// Each target's per-channel range over the samples of `calib`: graph inputs from the feeds, the
/// rest from one engine run per sample of the model with those tensors as outputs.
pub(crate) fn ranges(
    model: &Model,
    calib: &CalibSettings,
    targets: &[ChannelTarget],
    label: &str,
) -> Result<BTreeMap<String, ChannelRange>> {
    let mut maxes = ChannelStats::new(targets);
    if targets.is_empty() {
        return Ok(maxes.finish());
    }
    let tensors: Vec<String> = targets.iter().map(|t| t.tensor.clone()).collect();
    let stats = std::cell::RefCell::new(&mut maxes);
    each_sample(
        model,
        calib,
        &tensors,
        label,
        |sample| stats.borrow_mut().add_feeds(sample),
        |name, dims, data| stats.borrow_mut().add(name, dims, data),
    )?;
    Ok(maxes.finish())
}

/// One engine run per sample of `calib` of `model` with those of `tensors` that are node outputs
/// as extra outputs: `feeds` sees each sample's feeds (the graph inputs), `add` every output
/// value; the first error of either stops the loop.
pub(crate) fn each_sample(
    model: &Model,
    calib: &CalibSettings,
    tensors: &[String],
    label: &str,
    mut feeds: impl FnMut(&[(String, Tensor)]) -> Result<(), onnxq_calib::Error>,
    mut add: impl FnMut(&str, &[usize], DataRef<'_>) -> Result<(), onnxq_calib::Error>,
) -> Result<()> {
    let samples = crate::calibrate::calib_samples(model, calib)?;
    let g = &model.graph;
    let mut outputs: Vec<String> = tensors
        .iter()
        .filter(|t| {
            g.value_by_name(t)
                .is_some_and(|v| matches!(g.value(v).def(), Def::Node { .. }))
        })
        .cloned()
        .collect();
    outputs.sort();
    outputs.dedup();
    let mut engine = if outputs.is_empty() {
        None
    } else {
        let backend = Backend::choose(calib.engine, calib.ort_lib.as_deref())?;
        let augmented = onnxq_calib::augmented(model, &outputs)?;
        Some(backend.load(&augmented, calib.threads)?)
    };
    let bar = Progress::new(label, samples.len(), "samples");
    samples.each(|i, sample| {
        feeds(&sample)?;
        if let Some(e) = engine.as_mut() {
            let mut first_error = None;
            e.run_each(&sample, &mut |name, dims, data| {
                if first_error.is_none()
                    && let Err(err) = add(name, dims, data)
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
    Ok(())
}
