//! `--weight-rounding gptq`: the input Hessian of every Conv / MatMul / Gemm weight the static
//! pass may round (`onnxq_quant::rounding_requests`), on the calibration samples, for GPTQ on
//! the weights' own grids. One run of the float model per sample with the inputs as extra
//! outputs; only the running `XᵀX` sums are kept (a Conv's over its kernel's patches, one per
//! group), and when they would pass [`BUDGET`] the layers are split over several passes.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Result;
use onnxq_calib::hessian::{HessianSums, HessianTarget, Patches};
use onnxq_ir::Model;
use onnxq_quant::{LayerHessian, Layout, RoundingRequest, WeightRounding};

use crate::args::CalibSettings;

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
    let tensors: Vec<String> = targets.iter().map(|t| t.tensor.clone()).collect();
    let cell = std::cell::RefCell::new(&mut sums);
    super::channels::each_sample(
        model,
        calib,
        &tensors,
        label,
        |sample| cell.borrow_mut().add_feeds(sample),
        |name, dims, data| cell.borrow_mut().add(name, dims, data),
    )?;
    Ok(sums.finish())
}
