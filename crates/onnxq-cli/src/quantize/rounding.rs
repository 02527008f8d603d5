//! `--weight-rounding gptq`: the input Hessian of every Conv / MatMul / Gemm weight the static
//! pass may round (`onnxq_quant::rounding_requests`), on the calibration samples, for GPTQ on
//! the weights' own grids. One run of the float model per sample with the inputs as extra
//! outputs; only the running `XᵀX` sums are kept (a Conv's over its kernel's patches, one per
//! group), and when they would pass [`BUDGET`] the layers are split over several passes.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Result;
use onnxq_calib::hessian::{HessianSums, HessianTarget, Patches};
use onnxq_ir::{Def, Model};
use onnxq_quant::{LayerHessian, Layout, RoundingRequest, WeightRounding};

use crate::args::CalibSettings;
use crate::engine::Backend;
use crate::util::Progress;

/// Bytes of Hessians one pass over the samples may hold.
const BUDGET: u64 = 2 << 30;

/// The Hessians of `model`'s roundable weights on the samples of `calib`, and a note naming the
/// Conv / MatMul / Gemm nodes that stay rounded to nearest, with why.
pub(crate) fn collect(
    model: &Model,
    calib: &CalibSettings,
) -> Result<(Arc<WeightRounding>, Option<String>)> {
    let (requests, skipped) = onnxq_quant::rounding_requests(model);
    let note = (!skipped.is_empty()).then(|| {
        format!(
            "weight rounding (GPTQ) leaves {} node(s) rounded to nearest: {}",
            skipped.len(),
            skipped.join(", ")
        )
    });
    let mut layers = BTreeMap::new();
    let batches = batches(&requests);
    for (b, batch) in batches.iter().enumerate() {
        let targets: Vec<HessianTarget> = batch.iter().map(|r| target(r)).collect();
        let label = if batches.len() > 1 {
            format!(
                "GPTQ rounding Hessians (pass {} of {})",
                b + 1,
                batches.len()
            )
        } else {
            "GPTQ rounding Hessians".to_owned()
        };
        let hessians = run(model, calib, &targets, &label)?;
        for r in &requests {
            if let Some(i) = targets.iter().position(|t| *t == target(r)) {
                layers.insert(
                    r.weight.clone(),
                    LayerHessian {
                        k: r.k,
                        layout: r.layout,
                        values: hessians[i].values.clone(),
                    },
                );
            }
        }
    }
    Ok((Arc::new(WeightRounding { layers }), note))
}

/// The Hessian request `r` asks for, as the collector takes it.
fn target(r: &RoundingRequest) -> HessianTarget {
    HessianTarget {
        tensor: r.input.clone(),
        k: r.k,
        patches: r.conv.as_ref().map(|c| Patches {
            group: c.group,
            kernel: c.kernel.clone(),
            strides: c.strides.clone(),
            pads: c.pads.clone(),
            dilations: c.dilations.clone(),
        }),
    }
}

/// The distinct Hessians wanted, in passes of at most [`BUDGET`] bytes each (a Hessian larger
/// than that alone), a tensor read with two geometries (a 1×1 and a 3×3 Conv on one input) in
/// different passes.
fn batches(requests: &[RoundingRequest]) -> Vec<Vec<&RoundingRequest>> {
    let bytes = |r: &RoundingRequest| {
        let groups = match r.layout {
            Layout::Conv { group } => group as u64,
            _ => 1,
        };
        8 * groups * (r.k as u64).pow(2)
    };
    let mut out: Vec<(u64, Vec<&RoundingRequest>)> = Vec::new();
    'next: for r in requests {
        let t = target(r);
        let mut room = None;
        for (i, (used, batch)) in out.iter().enumerate() {
            if batch.iter().any(|b| target(b) == t) {
                continue 'next;
            }
            let clash = batch.iter().any(|b| b.input == r.input);
            if room.is_none() && !clash && used + bytes(r) <= BUDGET {
                room = Some(i);
            }
        }
        match room {
            Some(i) => {
                out[i].0 += bytes(r);
                out[i].1.push(r);
            }
            None => out.push((bytes(r), vec![r])),
        }
    }
    out.into_iter().map(|(_, b)| b).collect()
}

/// One pass over the samples collecting `targets`' Hessians: graph inputs from the feeds, the
/// rest from the engine.
fn run(
    model: &Model,
    calib: &CalibSettings,
    targets: &[HessianTarget],
    label: &str,
) -> Result<Vec<onnxq_calib::hessian::Hessian>> {
    let mut sums = HessianSums::new(targets);
    let samples = crate::calibrate::calib_samples(model, calib)?;
    let g = &model.graph;
    let mut outputs: Vec<String> = targets
        .iter()
        .filter(|t| {
            g.value_by_name(&t.tensor)
                .is_some_and(|v| matches!(g.value(v).def(), Def::Node { .. }))
        })
        .map(|t| t.tensor.clone())
        .collect();
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
        sums.add_feeds(&sample)?;
        if let Some(e) = engine.as_mut() {
            let mut first_error = None;
            e.run_each(&sample, &mut |name, dims, data| {
                if first_error.is_none()
                    && let Err(err) = sums.add(name, dims, data)
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
    Ok(sums.finish())
}
